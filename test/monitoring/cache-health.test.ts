import { CloudWatchClient, GetMetricDataCommand, ListMetricsCommand, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { ECRClient, ValidatePullThroughCacheRuleCommand } from '@aws-sdk/client-ecr';
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { countWindow, handler, resetClients } from '../../src/monitoring/cache-health.lambda';
import { destinationRecord, pullThroughCacheEvent, sqsBatch } from '../scanning/events';
import { captureLog, emfValues, MotoServer, startMoto, useEndpoint } from '../support/moto';

/** A scheduled run, as the schedule rules' input template makes it. */
const scheduled = (task: string, time = new Date().toISOString()) => ({ 'id': `s-${task}`, 'detail-type': 'Scheduled Event', 'source': 'aws.events', time, 'detail': { task } });

const BASE_ENV = {
  CACHE_PREFIXES: JSON.stringify(['docker-hub', 'quay', 'ghcr']),
  CACHE_NAME: 'TestCache',
  METRIC_NAMESPACE: 'Test',
  PULL_COUNT_PERIOD: '900',
  AWS_SDK_MAX_ATTEMPTS: '2',
};

let moto: MotoServer;
const config = () => ({ endpoint: moto.endpoint, region: 'us-east-1' });

beforeAll(async () => {
  moto = await startMoto();
  useEndpoint(moto.endpoint);
  Object.assign(process.env, BASE_ENV);
}, 40_000);

afterAll(async () => {
  await moto?.stop();
});

beforeEach(() => resetClients());

describe('pull counter (CloudWatch of moto on loopback)', () => {
  test('a retried or redriven pull count counts the window of its scheduled time, not of the moment it runs', async () => {
    const { lines } = await captureLog(() => handler(scheduled('count-pulls', '2026-11-28T08:07:12Z')));
    const block = lines.find(l => l._aws)!;
    expect(new Date(block._aws.Timestamp).toISOString()).toBe('2026-11-28T07:30:00.000Z');
    expect(block.windowEnd).toBe('2026-11-28T07:45:00.000Z');
  });

  test('the window is the last complete period, one period back so late data has arrived', () => {
    const { start, end } = countWindow(new Date('2026-11-28T08:07:12Z'), 900);
    expect([start.toISOString(), end.toISOString()]).toEqual(['2026-11-28T07:30:00.000Z', '2026-11-28T07:45:00.000Z']);
  });

  test('sums RepositoryPullCount over the repositories under each prefix, and only those', async () => {
    const cw = new CloudWatchClient(config());
    const { start, end } = countWindow(new Date(), 900);
    const at = new Date(start.getTime() + 60_000);
    const before = new Date(start.getTime() - 60_000);
    const pulls: Array<[string, number, Date]> = [
      ['docker-hub/library/nginx', 5, at], ['docker-hub/library/nginx', 2, new Date(at.getTime() + 60_000)],
      ['docker-hub/bitnami/redis', 3, at], ['quay/prometheus/prometheus', 7, at],
      ['my-app/api', 100, at], // not the cache's
      ['docker-hubx/other', 50, at], // a name prefix, not a path prefix
      ['quay/prometheus/prometheus', 1000, before], // before the window
      ['quay/prometheus/prometheus', 1000, end], // the window's end is excluded
    ];
    for (const [name, value, timestamp] of pulls) {
      await cw.send(new PutMetricDataCommand({
        Namespace: 'AWS/ECR',
        MetricData: [{ MetricName: 'RepositoryPullCount', Dimensions: [{ Name: 'RepositoryName', Value: name }], Value: value, Timestamp: timestamp, Unit: 'Count' }],
      }));
    }
    cw.destroy();
    const { error, lines } = await captureLog(() => handler(scheduled('count-pulls')));
    expect(error).toBeUndefined();
    expect(emfValues(lines)).toEqual({
      'Pulls{Cache=TestCache}': 17,
      'Pulls{Cache=TestCache,Prefix=docker-hub}': 10,
      'Pulls{Cache=TestCache,Prefix=quay}': 7,
      'Pulls{Cache=TestCache,Prefix=ghcr}': 0,
    });
    const block = lines.find(l => l._aws)!;
    expect(block._aws.Timestamp).toBe(start.getTime()); // published for the window it counts
  });
});

describe('credential canary', () => {
  let ecrMock: ReturnType<typeof mockClient>;
  let sm: SecretsManagerClient;
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    ecrMock = mockClient(ECRClient); // moto 5.2 has no pull through cache API
    sm = new SecretsManagerClient(config());
    for (const prefix of ['docker-hub', 'quay', 'ghcr']) {
      const created = await sm.send(new CreateSecretCommand({ Name: `ecr-pullthroughcache/${prefix}`, SecretString: '{"username":"REPLACE_ME","accessToken":"x"}' }));
      secrets[prefix] = created.ARN!;
    }
    // docker-hub was filled in after deploy (a second version); quay and ghcr still hold the placeholder
    await sm.send(new PutSecretValueCommand({ SecretId: secrets['docker-hub'], SecretString: '{"username":"u","accessToken":"dckr_pat_1"}' }));
    process.env.CREDENTIAL_SECRETS = JSON.stringify(secrets);
    process.env.CREATED_SECRET_PREFIXES = JSON.stringify(['docker-hub', 'quay']); // ghcr's secret is the user's own
  });
  afterAll(() => {
    ecrMock.restore();
    sm.destroy();
  });
  beforeEach(() => ecrMock.reset());

  const validation = (prefix: string, isValid: boolean, failure?: string) => ({
    ecrRepositoryPrefix: prefix, registryId: '123456789012', upstreamRegistryUrl: 'registry-1.docker.io', credentialArn: secrets[prefix], isValid, failure,
  });

  test('valid, rejected, not filled in: each said and counted per prefix; a placeholder is not an alarm', async () => {
    ecrMock.on(ValidatePullThroughCacheRuleCommand, { ecrRepositoryPrefix: 'docker-hub' }).resolves(validation('docker-hub', false, 'Invalid username or password'));
    ecrMock.on(ValidatePullThroughCacheRuleCommand, { ecrRepositoryPrefix: 'quay' }).resolves(validation('quay', false, 'Invalid username or password'));
    ecrMock.on(ValidatePullThroughCacheRuleCommand, { ecrRepositoryPrefix: 'ghcr' }).resolves(validation('ghcr', true));
    const { error, lines } = await captureLog(() => handler(scheduled('validate-credentials')));
    expect(error).toBeUndefined();
    const values = emfValues(lines);
    expect(values).toMatchObject({
      'CredentialChecks{Cache=TestCache}': 3,
      'CredentialCheckFailures{Cache=TestCache}': 1,
      'CredentialCheckFailures{Cache=TestCache,Prefix=docker-hub}': 1, // filled in, and rejected: broken
      'CredentialCheckFailures{Cache=TestCache,Prefix=quay}': 0,
      'CredentialsNotFilledIn{Cache=TestCache,Prefix=quay}': 1, // the construct's placeholder: not filled in
      'CredentialCheckFailures{Cache=TestCache,Prefix=ghcr}': 0,
      'CredentialCheckErrors{Cache=TestCache}': 0,
    });
    expect(lines.filter(l => l.message).map(l => [l.level, l.prefix, l.state])).toEqual([
      ['ERROR', 'docker-hub', 'invalid'], ['WARN', 'quay', 'not-filled-in'], ['INFO', 'ghcr', 'valid'],
    ]);
    expect(JSON.stringify(lines)).not.toMatch(/dckr_pat|accessToken/); // never a credential in a log
  });

  test('failed scheduled runs in the dead-letter queue are redriven: the check runs again, the queue drains', async () => {
    ecrMock.on(ValidatePullThroughCacheRuleCommand).resolves(validation('ghcr', true));
    const run = scheduled('validate-credentials', '2026-11-28T07:00:00Z');
    const { result, lines } = await captureLog(() => handler(sqsBatch([JSON.stringify(destinationRecord(run)), JSON.stringify(run)])));
    expect(result).toEqual({ batchItemFailures: [] });
    expect(emfValues(lines)['CredentialChecks{Cache=TestCache}']).toBe(6);
  });

  test('a user\'s own secret that ECR rejects is broken, whatever its versions', async () => {
    ecrMock.on(ValidatePullThroughCacheRuleCommand).resolves(validation('ghcr', false, 'Unauthorized'));
    const { lines } = await captureLog(() => handler(scheduled('validate-credentials')));
    expect(emfValues(lines)).toMatchObject({ 'CredentialCheckFailures{Cache=TestCache,Prefix=ghcr}': 1 });
  });

  test.each([
    ['ThrottlingException', 'Rate exceeded'],
    ['AccessDeniedException', 'not authorized to perform: ecr:ValidatePullThroughCacheRule'],
    ['PullThroughCacheRuleNotFoundException', 'rule not found'],
  ])('%s: the check could not run: counted, logged, and the invocation fails (never a quiet pass)', async (name, message) => {
    ecrMock.on(ValidatePullThroughCacheRuleCommand).rejects(Object.assign(new Error(message), { name }));
    const { error, lines } = await captureLog(() => handler(scheduled('validate-credentials')));
    expect(String(error)).toMatch(new RegExp(`credential checks could not run for docker-hub: ${name}`));
    expect(emfValues(lines)).toMatchObject({ 'CredentialCheckErrors{Cache=TestCache}': 3, 'CredentialCheckFailures{Cache=TestCache}': 0 });
  });
});

describe('pull counter paging (CloudWatch mocked: moto answers in one page)', () => {
  let cwMock: ReturnType<typeof mockClient>;
  beforeAll(() => {
    cwMock = mockClient(CloudWatchClient);
  });
  afterAll(() => cwMock.restore());

  test('every page of ListMetrics and GetMetricData is read, and 1,201 repositories go in batches of at most 500 queries', async () => {
    const names = Array.from({ length: 1201 }, (_, i) => `quay/team/app${i}`);
    const metric = (name: string) => ({ Namespace: 'AWS/ECR', MetricName: 'RepositoryPullCount', Dimensions: [{ Name: 'RepositoryName', Value: name }] });
    cwMock.on(ListMetricsCommand)
      .resolvesOnce({ Metrics: names.slice(0, 700).map(metric), NextToken: 'l2' })
      .resolvesOnce({ Metrics: names.slice(700).map(metric) });
    // each batch answers in two pages, one pull per repository over both
    cwMock.on(GetMetricDataCommand).callsFake((input: any) => {
      const results = input.MetricDataQueries.map((q: any) => ({ Id: q.Id, Values: [1] }));
      const half = Math.ceil(results.length / 2);
      return input.NextToken ? { MetricDataResults: results.slice(half) } : { MetricDataResults: results.slice(0, half), NextToken: 'g2' };
    });
    const { error, lines } = await captureLog(() => handler(scheduled('count-pulls', '2026-11-28T08:07:12Z')));
    expect(error).toBeUndefined();
    expect(cwMock.commandCalls(ListMetricsCommand).map(c => c.args[0].input.NextToken)).toEqual([undefined, 'l2']);
    const batches = cwMock.commandCalls(GetMetricDataCommand).filter(c => !c.args[0].input.NextToken)
      .map(c => c.args[0].input.MetricDataQueries!.length);
    expect(batches).toEqual([500, 500, 201]);
    expect(emfValues(lines)).toMatchObject({ 'Pulls{Cache=TestCache,Prefix=quay}': 1201, 'Pulls{Cache=TestCache,Prefix=docker-hub}': 0 });
  });
});

describe('sync failure recorder', () => {
  test('a failed sync is logged whole and counted by prefix and failure code', async () => {
    const event = pullThroughCacheEvent('docker-hub/library/nginx', `sha256:${'1'.repeat(64)}`, 'docker-hub', '1.27');
    Object.assign(event.detail, { 'sync-status': 'FAILED', 'failure-code': 'UPSTREAM_AUTHENTICATION_FAILED', 'failure-reason': 'unauthorized' });
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeUndefined();
    expect(emfValues(lines)).toEqual({
      'SyncFailures{Cache=TestCache}': 1,
      'SyncFailures{Cache=TestCache,Prefix=docker-hub}': 1,
      'SyncFailures{Cache=TestCache,FailureCode=UPSTREAM_AUTHENTICATION_FAILED}': 1,
    });
    expect(lines[0]).toMatchObject({ level: 'ERROR', failureCode: 'UPSTREAM_AUTHENTICATION_FAILED', failureReason: 'unauthorized', imageTag: '1.27' });
  });

  test('a SUCCESS sync that reaches the recorder is ignored, never counted as a failure', async () => {
    const { error, lines } = await captureLog(() => handler(pullThroughCacheEvent('quay/a/b', `sha256:${'3'.repeat(64)}`, 'quay')));
    expect(error).toBeUndefined();
    expect(emfValues(lines)).toEqual({});
    expect(lines[0]).toMatchObject({ level: 'WARN', message: 'a successful sync reached the failure recorder; ignored' });
  });

  test('a failure without a code is counted as Unknown', async () => {
    const event = pullThroughCacheEvent('quay/a/b', `sha256:${'2'.repeat(64)}`, 'quay');
    event.detail['sync-status'] = 'FAILED';
    const { lines } = await captureLog(() => handler(event));
    expect(emfValues(lines)).toHaveProperty(['SyncFailures{Cache=TestCache,FailureCode=Unknown}'], 1);
  });

  test('anything else is rejected with the reason', async () => {
    expect(String((await captureLog(() => handler({ task: 'reboot' }))).error)).toMatch(/invocation rejected: not an EventBridge event/);
    expect(String((await captureLog(() => handler(scheduled('reboot')))).error)).toMatch(/names no known task \('reboot'\)/);
    expect(String((await captureLog(() => handler(scheduled('count-pulls', 'yesterday')))).error)).toMatch(/has no valid time/);
  });
});
