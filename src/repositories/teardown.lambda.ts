/**
 * Teardown: on the delete of `Custom::EcrCacheRepositoryTeardown`, deletes the repositories the cache's creation
 * templates created under its pull through cache prefixes, with their images (`DeleteRepository` with `force`,
 * https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DeleteRepository.html), or in `LIST_ONLY` lists them.
 *
 * What it deletes, and only that:
 * - repositories named `<prefix>/...` of the resource's prefixes, never anything else (checked again before each call);
 * - carrying the `CREATED_BY_TAG` the templates set while teardown is on, with THIS cache's value (`CreatedBy`): ECR
 *   applies a template's tags when it creates the repository, so a repository made before teardown was on, by hand,
 *   by another cache (a nested prefix) or by an earlier stack of the same name, is kept;
 * - only once no pull through cache rule remains for the prefix. The cache's rules depend on this resource, so on a
 *   stack delete CloudFormation deletes them first (dependents go first) and nothing can create a repository mid-way.
 *   A rule still there means this is not the cache going away (the resource was removed from the template, teardown
 *   switched off, the construct moved, or another stack owns the prefix now): everything is kept, and the log says so.
 * Create and Update do nothing. Idempotent: a retry after a partial run deletes what is left (a repository already gone
 * is success). A failure after every retry fails the delete with the counts; deleting the stack again finishes it.
 */
import { DeleteRepositoryCommand, DescribePullThroughCacheRulesCommand, ECRClient } from '@aws-sdk/client-ecr';
import { CREATED_BY_TAG, METRIC_NAMESPACE, RepositoryMetric, TEARDOWN_MODES, TeardownProperties } from './contract';
import { awsErrorInfo } from '../private/handlers/aws-errors';
import { mapBounded, retryTransient } from '../private/handlers/bounded';
import { CustomResourceEvent, customResourceHandler, isFailedCreateId } from '../private/handlers/custom-resource';
import { log } from '../private/handlers/log';
import { CONCURRENCY, repositoriesUnder, sample, tagsOf, underPrefixes, writeReport } from '../private/handlers/repository-listing';
import { sdkClientConfig } from '../private/handlers/sdk-config';

let client: ECRClient | undefined;
function ecr(): ECRClient {
  client ??= new ECRClient(sdkClientConfig());
  return client;
}

export function teardownProperties(raw: Record<string, unknown> | undefined): TeardownProperties {
  const prefixes = raw?.Prefixes;
  const mode = raw?.Mode;
  if (!Array.isArray(prefixes) || prefixes.length === 0 || prefixes.some(p => typeof p !== 'string' || p === '')
    || typeof mode !== 'string' || !(TEARDOWN_MODES as readonly string[]).includes(mode) || typeof raw?.CacheName !== 'string'
    || typeof raw?.CreatedBy !== 'string' || raw.CreatedBy === '') {
    throw new Error(`ResourceProperties must have Prefixes (a non-empty list of cache prefixes), Mode (${TEARDOWN_MODES.join(' or ')}), `
      + `CacheName and CreatedBy (the ${CREATED_BY_TAG.key} value of this cache's repositories); got ${JSON.stringify(raw)}`);
  }
  return { Prefixes: prefixes as string[], Mode: mode, CacheName: raw.CacheName, CreatedBy: raw.CreatedBy };
}

/** The prefixes that still have a pull through cache rule. */
async function prefixesWithRules(prefixes: readonly string[]): Promise<string[]> {
  const withRules: string[] = [];
  for (const prefix of prefixes) {
    try {
      const found = await retryTransient('DescribePullThroughCacheRules', () =>
        ecr().send(new DescribePullThroughCacheRulesCommand({ ecrRepositoryPrefixes: [prefix] })));
      if ((found.pullThroughCacheRules ?? []).some(r => r.ecrRepositoryPrefix === prefix)) {
        withRules.push(prefix);
      }
    } catch (error) {
      const info = awsErrorInfo(error);
      if (info.name !== 'PullThroughCacheRuleNotFoundException') {
        // fail closed: without knowing, nothing is deleted; the stack delete fails and says why
        throw new Error(`could not tell whether the prefix '${prefix}' still has a pull through cache rule, so nothing was deleted: `
          + `${info.name}: ${info.message}. Delete the stack again to retry.`);
      }
    }
  }
  return withRules;
}

type Outcome = { readonly name: string; readonly result: 'deleted' | 'would delete' | 'gone' }
| { readonly name: string; readonly result: 'kept'; readonly reason: string }
| { readonly name: string; readonly result: 'failed'; readonly reason: string };

async function tearDownOne(name: string, arn: string, properties: TeardownProperties): Promise<Outcome> {
  try {
    if (!underPrefixes(name, properties.Prefixes)) {
      return { name, result: 'kept', reason: 'outside the prefixes' };
    }
    const createdBy = (await tagsOf(ecr(), arn)).get(CREATED_BY_TAG.key);
    if (createdBy !== properties.CreatedBy) {
      return {
        name,
        result: 'kept',
        reason: createdBy === undefined ? `no ${CREATED_BY_TAG.key} tag` : `its ${CREATED_BY_TAG.key} tag is '${createdBy}'`,
      };
    }
    if (properties.Mode !== 'DESTROY_WITH_IMAGES') {
      return { name, result: 'would delete' };
    }
    await retryTransient('DeleteRepository', () => ecr().send(new DeleteRepositoryCommand({ repositoryName: name, force: true })));
    return { name, result: 'deleted' };
  } catch (error) {
    const info = awsErrorInfo(error);
    if (info.name === 'RepositoryNotFoundException') {
      return { name, result: 'gone' }; // a retry of a partial run, or deleted meanwhile: the goal is reached
    }
    return { name, result: 'failed', reason: `${info.name}: ${info.message}` };
  }
}

/**
 * How often the rules are looked for before concluding that one remains: the rules were deleted moments before this
 * request, and a read may still show a rule just deleted. Tests shorten the wait.
 */
export const ruleCheck = { attempts: 3, waitMs: 10_000 };

export async function tearDown(properties: TeardownProperties): Promise<void> {
  const started = Date.now();
  let ruled = await prefixesWithRules(properties.Prefixes);
  for (let attempt = 1; ruled.length > 0 && attempt < ruleCheck.attempts; attempt++) {
    log('INFO', 'a rule is still listed for the prefixes: looking again', { prefixes: ruled, attempt, waitMs: ruleCheck.waitMs });
    await new Promise(resolve => setTimeout(resolve, ruleCheck.waitMs));
    ruled = await prefixesWithRules(ruled);
  }
  if (ruled.length > 0) {
    log('WARN', 'teardown report', {
      cache: properties.CacheName,
      mode: properties.Mode,
      prefixes: properties.Prefixes,
      deleted: 0,
      reason: `the prefixes ${ruled.join(', ')} still have pull through cache rules, so this is not the cache being deleted (the `
        + 'teardown was removed from the template, switched off, or moved; or another stack owns the prefix): every repository is kept',
    });
    return;
  }
  const repositories = await repositoriesUnder(ecr(), properties.Prefixes);
  const outcomes = await mapBounded(repositories, CONCURRENCY, r => tearDownOne(r.repositoryName!, r.repositoryArn!, properties));
  const named = (result: Outcome['result']) => outcomes.filter(o => o.result === result).map(o => o.name);
  const failed = outcomes.filter((o): o is Extract<Outcome, { result: 'failed' }> => o.result === 'failed');
  const kept = outcomes.filter((o): o is Extract<Outcome, { result: 'kept' }> => o.result === 'kept');
  const counts = {
    [RepositoryMetric.TEARDOWN_DELETED]: named('deleted').length,
    [RepositoryMetric.TEARDOWN_WOULD_DELETE]: named('would delete').length,
    [RepositoryMetric.TEARDOWN_KEPT]: kept.length,
    [RepositoryMetric.TEARDOWN_FAILED]: failed.length,
  };
  writeReport('teardown report', { namespace: METRIC_NAMESPACE, cacheName: properties.CacheName, started, failed: failed.length }, counts, {
    mode: properties.Mode,
    prefixes: properties.Prefixes,
    repositories: repositories.length,
    gone: named('gone').length,
    deleted: sample(named('deleted')),
    wouldDelete: sample(named('would delete')),
    createdBy: properties.CreatedBy,
    kept: sample(kept.map(o => `${o.name} (not created by this cache: ${o.reason})`)),
    failed: sample(failed.map(o => `${o.name} (${o.reason})`)),
  });
  if (failed.length > 0) {
    throw new Error(`teardown could not delete ${failed.length} of ${repositories.length} repositories under `
      + `${properties.Prefixes.join(', ')} (first: ${failed[0].name}: ${failed[0].reason}); ${counts[RepositoryMetric.TEARDOWN_DELETED]} `
      + 'were deleted. Delete the stack again to finish (deleted ones are skipped). The log line "teardown report" lists them all.');
  }
}

function physicalIdOf(event: CustomResourceEvent): string {
  return event.PhysicalResourceId ?? `teardown:${event.LogicalResourceId}`;
}

export const handler = customResourceHandler({
  create: async event => {
    teardownProperties(event.ResourceProperties); // a malformed template fails at create, not at the stack's delete
    return { physicalResourceId: physicalIdOf(event) };
  },
  update: async event => {
    teardownProperties(event.ResourceProperties);
    return { physicalResourceId: physicalIdOf(event) };
  },
  delete: async event => {
    if (isFailedCreateId(event.PhysicalResourceId)) {
      log('INFO', 'the create had failed: nothing to tear down', { physicalResourceId: event.PhysicalResourceId });
      return;
    }
    await tearDown(teardownProperties(event.ResourceProperties));
  },
});
