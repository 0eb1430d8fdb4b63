/**
 * The checks of a cache's upstream list that need nothing but the list and the stack: the rule quota, one prefix
 * and one cache URI per upstream, a shared cache not served twice, the Region, and an ECR upstream's account.
 */
import { Stack, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { ECR_REGISTRY_URL, UNSUPPORTED_REGIONS } from '../private/catalogue';
import { UpstreamRegistry, UpstreamRegistryType } from '../upstream-registry';

/** ECR allows 50 pull through cache rules per registry (per Region), a quota that cannot be raised. */
const MAX_RULES = 50;

export function validateUpstreams(scope: Construct, upstreams: UpstreamRegistry[] | undefined): asserts upstreams is UpstreamRegistry[] {
  const where = scope.node.path;
  if (!Array.isArray(upstreams) || upstreams.length === 0) {
    throw new Error(`${where}: upstreams is empty. List at least one registry, for example upstreams: [UpstreamRegistry.ecrPublic()].`);
  }
  const ruleCount = upstreams.filter(u => u?.registryType !== UpstreamRegistryType.COPIED).length;
  if (ruleCount > MAX_RULES) {
    throw new Error(`${where}: ${ruleCount} upstreams, but ECR allows at most ${MAX_RULES} pull through cache rules per Region `
      + '(a quota that cannot be raised). Split them across Regions or drop some.');
  }
  const byPrefix = new Map<string, UpstreamRegistry>();
  const byUpstream = new Map<string, UpstreamRegistry>();
  for (const upstream of upstreams) {
    if (!(upstream instanceof UpstreamRegistry)) {
      throw new Error(`${where}: every upstream must be made with an UpstreamRegistry factory (for example UpstreamRegistry.quay()).`);
    }
    const samePrefix = byPrefix.get(upstream.ecrRepositoryPrefix);
    if (samePrefix) {
      throw new Error(`${where}: the cache prefix '${upstream.ecrRepositoryPrefix}' is used by both ${samePrefix.registryUrl} and `
        + `${upstream.registryUrl}. Each rule needs its own prefix: set ecrRepositoryPrefix on one of them.`);
    }
    byPrefix.set(upstream.ecrRepositoryPrefix, upstream);
    const key = `${upstream.registryUrl} ${upstream.upstreamRepositoryPrefix ?? 'ROOT'}`;
    const sameUpstream = byUpstream.get(key);
    if (sameUpstream) {
      throw new Error(`${where}: ${upstream.registryUrl} is listed twice (prefixes '${sameUpstream.ecrRepositoryPrefix}' and `
        + `'${upstream.ecrRepositoryPrefix}'). Cache each upstream once, so every image has one cache URI.`);
    }
    byUpstream.set(key, upstream);
  }
  for (const shared of upstreams.filter(u => u._origin)) {
    const origin = shared._origin!;
    const local = upstreams.find(u => u !== shared && (u._origin ?? u).registry === origin.registry
      && (u._origin ?? u).upstreamRepositoryPrefix === origin.upstreamRepositoryPrefix);
    if (local) {
      throw new Error(`${where}: ${origin.registry} images would be served twice: through the shared cache ${shared.registryUrl} `
        + `(prefix '${shared.ecrRepositoryPrefix}') and by the upstream with prefix '${local.ecrRepositoryPrefix}'. `
        + 'Keep one: drop the local upstream, or leave that prefix out of the member\'s ecrRepositoryPrefixes.');
    }
  }
  const region = Stack.of(scope).region;
  if (!Token.isUnresolved(region) && UNSUPPORTED_REGIONS.includes(region)) {
    throw new Error(`${where}: ECR pull through cache is not available in ${region} (nor in ${UNSUPPORTED_REGIONS.filter(r => r !== region).join(', ')}). `
      + 'Deploy the cache in a commercial Region.');
  }
}

/** ECR to ECR: the upstream must be another registry, and another account needs a role. */
export function checkEcrUpstream(scope: Construct, upstream: UpstreamRegistry): void {
  const match = ECR_REGISTRY_URL.exec(upstream.registryUrl);
  const stack = Stack.of(scope);
  if (!match || Token.isUnresolved(stack.account)) {
    return;
  }
  const [, account, region] = match;
  const where = `${scope.node.path}: the ECR upstream ${upstream.registryUrl}`;
  if (account === stack.account && region === stack.region) {
    throw new Error(`${where} is this stack's own registry; an ECR upstream must be another Region or account.`);
  }
  if (account !== stack.account && !upstream.role) {
    throw new Error(`${where} is in account ${account}, not ${stack.account}: ECR needs a role to pull across accounts. `
      + 'Pass role: a role that trusts pullthroughcache.ecr.amazonaws.com, and allow this account to pull in the upstream registry policy.');
  }
}
