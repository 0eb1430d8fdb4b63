/**
 * Reading the repositories under cache prefixes, shared by the backfill and teardown handlers (src/repositories/).
 */
import { DescribeRepositoriesCommand, ECRClient, ListTagsForResourceCommand, Repository } from '@aws-sdk/client-ecr';
import { retryTransient } from './bounded';
import { log } from './log';
import { putMetrics } from './metrics';

/** DescribeRepositories' largest page (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeRepositories.html). */
const PAGE_SIZE = 1000;

/** Whether a repository name lies under one of the prefixes: `<prefix>/...`, never the prefix itself nor a sibling (`hub` vs `hub2/x`). */
export function underPrefixes(name: string, prefixes: readonly string[]): boolean {
  return prefixes.some(prefix => name.startsWith(`${prefix.replace(/\/+$/, '')}/`));
}

/**
 * Every repository of the registry under the prefixes, page by page. DescribeRepositories has no name filter, so the
 * registry's whole list is read (100 pages at the 100,000-repository quota); each page is retried on throttling.
 */
export async function repositoriesUnder(ecr: ECRClient, prefixes: readonly string[]): Promise<Repository[]> {
  const found: Repository[] = [];
  let nextToken: string | undefined;
  do {
    const page = await retryTransient('DescribeRepositories', () =>
      ecr.send(new DescribeRepositoriesCommand({ maxResults: PAGE_SIZE, nextToken })));
    found.push(...(page.repositories ?? []).filter(r => r.repositoryName && underPrefixes(r.repositoryName, prefixes)));
    nextToken = page.nextToken;
  } while (nextToken);
  return found.sort((a, b) => a.repositoryName!.localeCompare(b.repositoryName!));
}

/** A repository's tags as a map. */
export async function tagsOf(ecr: ECRClient, repositoryArn: string): Promise<Map<string, string>> {
  const result = await retryTransient('ListTagsForResource', () => ecr.send(new ListTagsForResourceCommand({ resourceArn: repositoryArn })));
  return new Map((result.tags ?? []).map(t => [t.Key ?? '', t.Value ?? '']));
}

/** At most `limit` names, then how many more: report lines stay readable (and under the log event size) at 2,000 repositories. */
export function sample(names: readonly string[], limit = 50): string[] {
  return names.length <= limit ? [...names] : [...names.slice(0, limit), `... and ${names.length - limit} more`];
}

/** Calls in flight per invocation: enough to finish 2,000 repositories in minutes, few enough not to be throttled for long. */
export const CONCURRENCY = 8;

/**
 * Writes a run's report: one log line people can find by its message (ERROR when any repository failed), with the
 * counts, how long it took and the named lists, and the same counts as metrics of the cache (dimension `Cache`).
 */
export function writeReport(message: string, run: { namespace: string; cacheName: string; started: number; failed: number },
  counts: Record<string, number>, fields: Record<string, unknown>): void {
  log(run.failed > 0 ? 'ERROR' : 'INFO', message, {
    cache: run.cacheName,
    ...counts,
    seconds: Math.round((Date.now() - run.started) / 100) / 10,
    ...fields,
  });
  putMetrics(run.namespace, { values: counts, dimensions: { Cache: run.cacheName }, dimensionSets: [['Cache']] });
}
