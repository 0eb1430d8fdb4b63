/**
 * Cache health: the credential canary, the pull counter and the sync-failure recorder, in one bundled handler.
 *
 * Scheduled runs arrive as `{ "source": "aws.events", "detail-type": "Scheduled Event", "time", "detail": { "task" } }`.
 *
 * - task `validate-credentials`: `ValidatePullThroughCacheRule` for every rule with
 *   credentials. A rule whose created secret was never given a value (only its first version exists) is
 *   "not filled in", not broken. Publishes, per prefix, `CredentialChecks`, `CredentialCheckFailures`,
 *   `CredentialsNotFilledIn` and `CredentialCheckErrors`.
 * - task `count-pulls`: sums `AWS/ECR RepositoryPullCount` over the repositories under each prefix for the
 *   last complete period before the scheduled time (so a retry counts the same window), and publishes it as `Pulls`. CloudWatch cannot do this itself:
 *   Metrics Insights' WHERE clause has only `=`, `!=` and `AND`, no prefix match
 *   (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-metrics-insights-querylanguage.html),
 *   and SEARCH, which matches tokens rather than prefixes, cannot be alarmed on
 *   (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Create-alarm-on-metric-math-expression.html).
 * - an `ECR Pull Through Cache Action` event whose sync failed: logged whole, and `SyncFailures` published
 *   per prefix and per `FailureCode`.
 *
 * Every metric goes out as Embedded Metric Format. A check that could not run is counted and makes the
 * invocation fail (Lambda retries it, then the dead-letter queue keeps it), never passes quietly.
 */
import { CloudWatchClient, GetMetricDataCommand, ListMetricsCommand, MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { ECRClient, ValidatePullThroughCacheRuleCommand } from '@aws-sdk/client-ecr';
import { DescribeSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { HealthEnv, HealthMetric, HealthTask } from './contract';
import { awsErrorInfo } from '../private/handlers/aws-errors';
import { BatchResult, cachePrefixOf, dispatch, requiredEnv } from '../private/handlers/dispatch';
import { CloudEvent } from '../private/handlers/envelope';
import { log } from '../private/handlers/log';
import { putMetrics } from '../private/handlers/metrics';
import { sdkClientConfig } from '../private/handlers/sdk-config';

/** What a credential check found. */
export type CredentialState = 'valid' | 'invalid' | 'not-filled-in' | 'error';

let ecr: ECRClient | undefined;
let secrets: SecretsManagerClient | undefined;
let cloudwatch: CloudWatchClient | undefined;

function settings() {
  return {
    namespace: requiredEnv(HealthEnv.METRIC_NAMESPACE),
    cache: requiredEnv(HealthEnv.CACHE_NAME),
    prefixes: JSON.parse(requiredEnv(HealthEnv.PREFIXES)) as string[],
  };
}

/** Whether a secret the construct created still holds its placeholder: it has never had a second version. */
async function isPlaceholder(secretArn: string): Promise<boolean> {
  secrets ??= new SecretsManagerClient(sdkClientConfig());
  const described = await secrets.send(new DescribeSecretCommand({ SecretId: secretArn }));
  return Object.keys(described.VersionIdsToStages ?? {}).length <= 1;
}

/** Check one rule's credentials. */
export async function checkCredentials(prefix: string, secretArn: string, createdByConstruct: boolean):
Promise<{ state: CredentialState; detail?: string }> {
  ecr ??= new ECRClient(sdkClientConfig());
  try {
    const result = await ecr.send(new ValidatePullThroughCacheRuleCommand({ ecrRepositoryPrefix: prefix }));
    if (result.isValid) {
      return { state: 'valid' };
    }
    if (createdByConstruct && await isPlaceholder(secretArn)) {
      return { state: 'not-filled-in', detail: result.failure };
    }
    return { state: 'invalid', detail: result.failure ?? 'ECR gave no reason' };
  } catch (error) {
    const info = awsErrorInfo(error);
    return { state: 'error', detail: `${info.name}: ${info.message}` };
  }
}

async function validateCredentials(): Promise<void> {
  const { namespace, cache } = settings();
  const credentials = JSON.parse(requiredEnv(HealthEnv.CREDENTIALS)) as Record<string, string>;
  const created = new Set(JSON.parse(process.env[HealthEnv.CREATED_SECRETS] ?? '[]') as string[]);
  const errors: string[] = [];
  for (const [prefix, secretArn] of Object.entries(credentials)) {
    const { state, detail } = await checkCredentials(prefix, secretArn, created.has(prefix));
    const values = {
      [HealthMetric.CREDENTIAL_CHECKS]: 1,
      [HealthMetric.CREDENTIAL_FAILURES]: state === 'invalid' ? 1 : 0,
      [HealthMetric.CREDENTIALS_NOT_FILLED_IN]: state === 'not-filled-in' ? 1 : 0,
      [HealthMetric.CREDENTIAL_CHECK_ERRORS]: state === 'error' ? 1 : 0,
    };
    putMetrics(namespace, { values, dimensions: { Cache: cache, Prefix: prefix }, dimensionSets: [['Cache'], ['Cache', 'Prefix']], properties: { state } });
    const fields = { prefix, state, detail, secretArn };
    if (state === 'valid') {
      log('INFO', 'credentials valid', fields);
    } else if (state === 'not-filled-in') {
      log('WARN', 'credentials not filled in: put the upstream user name and token into the secret (see the README)', fields);
    } else if (state === 'invalid') {
      log('ERROR', 'credentials rejected by the upstream registry: the token expired, was revoked or is wrong', fields);
    } else {
      log('ERROR', 'credential check could not run', fields);
      errors.push(`${prefix}: ${detail}`);
    }
  }
  if (errors.length > 0) {
    throw new Error(`credential checks could not run for ${errors.join('; ')}`);
  }
}

/** The complete period to count: [end - period, end), `end` one period back from now so late data has arrived. */
export function countWindow(now: Date, periodSeconds: number): { start: Date; end: Date } {
  const period = periodSeconds * 1000;
  const end = Math.floor(now.getTime() / period) * period - period;
  return { start: new Date(end - period), end: new Date(end) };
}

async function countPulls(now: Date): Promise<void> {
  const { namespace, cache, prefixes } = settings();
  const period = Number(requiredEnv(HealthEnv.PULL_COUNT_PERIOD));
  cloudwatch ??= new CloudWatchClient(sdkClientConfig());
  // every repository with pull data in the last two weeks, reduced to the cache's
  const repositories = new Map<string, string>();
  let nextToken: string | undefined;
  do {
    const page = await cloudwatch.send(new ListMetricsCommand({ Namespace: 'AWS/ECR', MetricName: 'RepositoryPullCount', NextToken: nextToken }));
    for (const metric of page.Metrics ?? []) {
      const name = metric.Dimensions?.find(d => d.Name === 'RepositoryName')?.Value;
      const prefix = name === undefined ? undefined : cachePrefixOf(name, prefixes);
      if (name !== undefined && prefix !== undefined && metric.Dimensions?.length === 1) {
        repositories.set(name, prefix);
      }
    }
    nextToken = page.NextToken;
  } while (nextToken);

  const { start, end } = countWindow(now, period);
  const totals = new Map<string, number>(prefixes.map(p => [p, 0]));
  const names = [...repositories.keys()];
  for (let i = 0; i < names.length; i += 500) { // GetMetricData takes at most 500 queries
    const queries: MetricDataQuery[] = names.slice(i, i + 500).map((name, j) => ({
      Id: `r${i + j}`,
      MetricStat: { Metric: { Namespace: 'AWS/ECR', MetricName: 'RepositoryPullCount', Dimensions: [{ Name: 'RepositoryName', Value: name }] }, Period: period, Stat: 'Sum' },
    }));
    let token: string | undefined;
    do {
      const data = await cloudwatch.send(new GetMetricDataCommand({ MetricDataQueries: queries, StartTime: start, EndTime: end, NextToken: token }));
      for (const result of data.MetricDataResults ?? []) {
        const name = names[Number(result.Id!.slice(1))];
        const prefix = repositories.get(name)!;
        totals.set(prefix, totals.get(prefix)! + (result.Values ?? []).reduce((a, b) => a + b, 0));
      }
      token = data.NextToken;
    } while (token);
  }
  for (const [prefix, pulls] of totals) {
    putMetrics(namespace, {
      values: { [HealthMetric.PULLS]: pulls },
      dimensions: { Cache: cache, Prefix: prefix },
      dimensionSets: [['Cache'], ['Cache', 'Prefix']],
      properties: { windowStart: start.toISOString(), windowEnd: end.toISOString() },
      timestamp: start.getTime(),
    });
  }
  log('INFO', 'pulls counted', { windowStart: start.toISOString(), repositories: names.length, pulls: Object.fromEntries(totals) });
}

async function recordSyncFailure(event: CloudEvent): Promise<void> {
  const { namespace, cache, prefixes } = settings();
  const detail = event.detail;
  const repositoryName = typeof detail['repository-name'] === 'string' ? detail['repository-name'] : undefined;
  const prefix = typeof detail['ecr-repository-prefix'] === 'string' ? detail['ecr-repository-prefix']
    : (repositoryName && cachePrefixOf(repositoryName, prefixes)) || 'unknown';
  const failureCode = typeof detail['failure-code'] === 'string' && detail['failure-code'] !== '' ? detail['failure-code'] : 'Unknown';
  log('ERROR', 'pull through cache sync failed', {
    eventId: event.id,
    prefix,
    repositoryName,
    failureCode,
    failureReason: detail['failure-reason'],
    syncStatus: detail['sync-status'],
    upstreamRegistryUrl: detail['upstream-registry-url'],
    imageTag: detail['image-tag'],
    imageDigest: detail['image-digest'],
  });
  putMetrics(namespace, {
    values: { [HealthMetric.SYNC_FAILURES]: 1 },
    dimensions: { Cache: cache, Prefix: prefix, FailureCode: failureCode },
    dimensionSets: [['Cache'], ['Cache', 'Prefix'], ['Cache', 'FailureCode']],
  });
}

async function handle(event: CloudEvent): Promise<void> {
  if (event.source === 'aws.events' && event['detail-type'] === 'Scheduled Event') {
    const task = event.detail.task;
    if (task === HealthTask.VALIDATE_CREDENTIALS) {
      return validateCredentials();
    }
    if (task === HealthTask.COUNT_PULLS) {
      const time = new Date(String(event.time));
      if (Number.isNaN(time.getTime())) {
        throw new Error(`scheduled event ${event.id ?? ''} has no valid time ('${String(event.time)}')`);
      }
      return countPulls(time);
    }
    throw new Error(`scheduled event ${event.id ?? ''} names no known task ('${String(task)}')`);
  }
  if (event.source === 'aws.ecr' && event['detail-type'] === 'ECR Pull Through Cache Action') {
    if (event.detail['sync-status'] === 'SUCCESS') {
      log('WARN', 'a successful sync reached the failure recorder; ignored', { eventId: event.id });
      return;
    }
    return recordSyncFailure(event);
  }
  throw new Error(`unexpected event '${event['detail-type']}' from '${event.source}'`);
}

export async function handler(input: unknown): Promise<BatchResult | void> {
  return dispatch(input, handle);
}

/** Tests only: forget the cached clients. */
export function resetClients(): void {
  ecr = undefined;
  secrets = undefined;
  cloudwatch = undefined;
}
