import { Stack, Token } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { IPullThroughCacheRules } from './i-pull-through-cache-rules';
import { environmentProblem } from '../private/cache-environment';
import { ecrRegistryRegion } from '../private/catalogue';

/** The cache's Region: the one its registry domain names, else its stack's (a token in an environment-agnostic stack). */
export function cacheRegion(cache: IPullThroughCacheRules): string {
  return ecrRegistryRegion(cache.registryUri) ?? Stack.of(cache).region;
}

/**
 * The cache a feature made alone is given (`new CacheScanning(this, id, { cache })`), checked: present, with prefixes,
 * and watched from where its ECR events can be seen (ECR sends them to EventBridge in the cache's own account and
 * Region only, and its metrics are there too).
 * @param feature what is being built, for the messages: `CacheScanning`, `CacheMonitoring`
 * @param verb what it does to the cache: `scan`, `monitor`
 */
export function featureCache(scope: IConstruct, id: string, cache: IPullThroughCacheRules | undefined,
  feature: string, verb: string): IPullThroughCacheRules {
  if (!cache) {
    throw new Error(`${scope.node.path}: cache is missing. Give the cache to ${verb}: new ${feature}(this, '${id}', { cache }), with a `
      + 'PullThroughCacheRules or PullThroughCacheRules.fromPullThroughCacheRulesAttributes(...).');
  }
  if (!Array.isArray(cache.ecrRepositoryPrefixes) || cache.ecrRepositoryPrefixes.length === 0) {
    throw new Error(`${scope.node.path}: the cache ${cache.node.path} has no prefixes, so there is nothing to ${verb}. Give it its upstreams' prefixes.`);
  }
  const problem = environmentProblem(cache, scope);
  if (problem) {
    throw new Error(`${scope.node.path} (${feature} of ${cache.node.path}): ${problem}`);
  }
  // one of each per cache: a second scanning scans every image again (ECR allows one manual scan per image a day), a
  // second monitoring publishes and alarms twice under the same Cache dimension
  const twins = scope.node.root.node.findAll().filter(c => c !== scope && c.constructor === scope.constructor
    && (c as { cache?: unknown }).cache === cache);
  if (twins.length > 0) {
    throw new Error(`${scope.node.path}: the cache ${cache.node.path} has a ${feature} already (${twins.map(c => c.node.path).join(', ')}), `
      + `and a second would ${verb === 'scan' ? 'scan every image again' : 'publish and alarm on everything twice'}. Keep one; to make your own, `
      + `set ${feature === 'CacheScanning' ? 'enableScanning' : 'enableMonitoring'}: false on the cache.`);
  }
  const here = Stack.of(scope).region;
  const there = cacheRegion(cache);
  if (!Token.isUnresolved(here) && !Token.isUnresolved(there) && here !== there) {
    throw new Error(`${scope.node.path} (${feature} of ${cache.node.path}): the cache is in ${there}, and ECR sends its events and `
      + `metrics there only, so a ${feature} in this stack (${here}) would never see them. Create it in a stack of ${there}.`);
  }
  return cache;
}
