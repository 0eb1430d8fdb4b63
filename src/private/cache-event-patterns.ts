/**
 * EventBridge patterns on the events ECR sends about the cache's repositories (ECR-FACTS.md section 5), written
 * once for the rules of scanning and monitoring and for the cache's `onSyncFailed`/`onScanCompleted`. A ROOT rule
 * caches the whole registry, so for it every event of the account is the cache's: no filter on names.
 */
import * as events from 'aws-cdk-lib/aws-events';

/** `ECR Pull Through Cache Action` events of the account, for the cache's prefixes, with a `sync-status` that matches. */
export function syncEventPattern(account: string, prefixes: readonly string[], syncStatus: unknown[]): events.EventPattern {
  return {
    source: ['aws.ecr'],
    detailType: ['ECR Pull Through Cache Action'],
    account: [account],
    detail: { 'sync-status': syncStatus, ...(prefixes.includes('ROOT') ? {} : { 'ecr-repository-prefix': [...prefixes] }) },
  };
}

/**
 * The `repository-name` filter of events about repositories under the prefixes (`<prefix>/...`); with `arnPrefix`,
 * their ARNs too (Inspector names a repository by its ARN).
 */
export function repositoryNameFilter(prefixes: readonly string[], arnPrefix?: string): Record<string, unknown> {
  if (prefixes.includes('ROOT')) {
    return {};
  }
  const matches: unknown[] = prefixes.map(p => ({ prefix: `${p}/` }));
  if (arnPrefix) {
    matches.push(...prefixes.map(p => ({ prefix: `${arnPrefix}${p}/` })));
  }
  return { 'repository-name': matches };
}
