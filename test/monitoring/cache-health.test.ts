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

  test('a rejection ECR gives no reason for still says so; without the created-secrets list every secret is the user\'s own', async () => {
    ecrMock.on(ValidatePullThroughCacheRuleCommand).resolves(validation('quay', false));
    const saved = process.env.CREATED_SECRET_PREFIXES;
    delete process.env.CREATED_SECRET_PREFIXES;
    try {
      const { error, lines } = await captureLog(() => handler(scheduled('validate-credentials')));
      expect(error).toBeUndefined();
      // quay still holds its placeholder, but nothing says the construct made it: broken, not "not filled in"
      expect(emfValues(lines)).toMatchObject({ 'CredentialCheckFailures{Cache=TestCache}': 3, 'CredentialsNotFilledIn{Cache=TestCache}': 0 });
      expect(lines.filter(l => l.message).map(l => [l.level, l.message, l.prefix, l.state, l.detail, l.secretArn])).toEqual(['docker-hub', 'quay', 'ghcr'].map(prefix => [
        'ERROR', 'credentials rejected by the upstream registry: the token expired, was revoked or is wrong', prefix, 'invalid', 'ECR gave no reason', secrets[prefix],
      ]));
    } finally {
      process.env.CREATED_SECRET_PREFIXES = saved;
    }
  });

  test('each state has its own message, and a not-filled-in rule keeps ECR\'s failure text', async () => {
    ecrMock.on(ValidatePullThroughCacheRuleCommand, { ecrRepositoryPrefix: 'docker-hub' }).resolves(validation('docker-hub', true));
    ecrMock.on(ValidatePullThroughCacheRuleCommand, { ecrRepositoryPrefix: 'quay' }).resolves(validation('quay', false, 'Invalid username or password'));
    ecrMock.on(ValidatePullThroughCacheRuleCommand, { ecrRepositoryPrefix: 'ghcr' }).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const { error, lines } = await captureLog(() => handler(scheduled('validate-credentials')));
    expect(String(error)).toBe('Error: credential checks could not run for ghcr: ThrottlingException: Rate exceeded');
    expect(lines.filter(l => l.message).map(l => [l.level, l.message, l.detail])).toEqual([
      ['INFO', 'credentials valid', undefined],
      ['WARN', 'credentials not filled in: put the upstream user name and token into the secret (see the README)', 'Invalid username or password'],
      ['ERROR', 'credential check could not run', 'ThrottlingException: Rate exceeded'],
    ]);
    const states = lines.filter(l => l._aws)
      .map(l => [l.Prefix, l.state, l.CredentialChecks, l.CredentialCheckFailures, l.CredentialsNotFilledIn, l.CredentialCheckErrors]);
    expect(states).toEqual([['docker-hub', 'valid', 1, 0, 0, 0], ['quay', 'not-filled-in', 1, 0, 1, 0], ['ghcr', 'error', 1, 0, 0, 1]]);
  });

  test.each([
    ['ThrottlingException', 'Rate exceeded'],
    ['AccessDeniedException', 'not authorized to perform: ecr:ValidatePullThroughCacheRule'],
    ['PullThroughCacheRuleNotFoundException', 'rule not found'],
  ])('%s: the check could not run: counted, logged, and the invocation fails (never a quiet pass)', async (name, message) => {
    ecrMock.on(ValidatePullThroughCacheRuleCommand).rejects(Object.assign(new Error(message), { name }));
    const { error, lines } = await captureLog(() => handler(scheduled('validate-credentials')));
    expect(String(error)).toBe(`Error: credential checks could not run for ${['docker-hub', 'quay', 'ghcr'].map(p => `${p}: ${name}: ${message}`).join('; ')}`);
    expect(emfValues(lines)).toMatchObject({ 'CredentialCheckErrors{Cache=TestCache}': 3, 'CredentialCheckFailures{Cache=TestCache}': 0 });
  });
});

describe('pull counter paging (CloudWatch mocked: moto answers in one page)', () => {
  let cwMock: ReturnType<typeof mockClient>;
  beforeAll(() => {
    cwMock = mockClient(CloudWatchClient);
  });
  afterAll(() => cwMock.restore());

  test('each result is added to its own repository\'s prefix, across batches and pages', async () => {
    // 1,001 repositories alternating between two prefixes, each pulled as often as its number: a result
    // credited to the wrong repository moves pulls between the prefixes
    const names = Array.from({ length: 1001 }, (_, i) => `${i % 2 ? 'docker-hub/lib' : 'quay/team'}/app${i}`);
    const metric = (name: string) => ({ Namespace: 'AWS/ECR', MetricName: 'RepositoryPullCount', Dimensions: [{ Name: 'RepositoryName', Value: name }] });
    cwMock.reset();
    cwMock.on(ListMetricsCommand).resolves({ Metrics: names.map(metric) });
    cwMock.on(GetMetricDataCommand).callsFake((input: any) => {
      const results = input.MetricDataQueries.map((q: any) => {
        const name: string = q.MetricStat.Metric.Dimensions[0].Value;
        return { Id: q.Id, Values: [Number(/app(\d+)$/.exec(name)![1]), 0] };
      });
      const half = Math.ceil(results.length / 2);
      return input.NextToken ? { MetricDataResults: results.slice(half) } : { MetricDataResults: results.slice(0, half), NextToken: 'g2' };
    });
    const { error, lines } = await captureLog(() => handler(scheduled('count-pulls', '2026-11-28T08:07:12Z')));
    expect(error).toBeUndefined();
    const odd = names.map((_, i) => i).filter(i => i % 2).reduce((a, b) => a + b, 0);
    const even = names.map((_, i) => i).filter(i => !(i % 2)).reduce((a, b) => a + b, 0);
    expect(emfValues(lines)).toEqual({
      'Pulls{Cache=TestCache}': odd + even,
      'Pulls{Cache=TestCache,Prefix=docker-hub}': odd,
      'Pulls{Cache=TestCache,Prefix=quay}': even,
      'Pulls{Cache=TestCache,Prefix=ghcr}': 0,
    });
    const query = cwMock.commandCalls(GetMetricDataCommand)[0].args[0].input;
    expect(query).toMatchObject({ StartTime: new Date('2026-11-28T07:30:00Z'), EndTime: new Date('2026-11-28T07:45:00Z') });
    expect(query.MetricDataQueries![0]).toEqual({ Id: 'r0', MetricStat: { Metric: metric(names[0]), Period: 900, Stat: 'Sum' } });
    expect(lines.find(l => l.message === 'pulls counted')).toMatchObject({
      level: 'INFO', windowStart: '2026-11-28T07:30:00.000Z', repositories: 1001, pulls: { 'quay': even, 'docker-hub': odd, 'ghcr': 0 },
    });
  });

  test('only the per-repository metric is read: one with more dimensions, or none, is left out', async () => {
    cwMock.reset();
    cwMock.on(ListMetricsCommand).resolves({
      Metrics: [
        { Namespace: 'AWS/ECR', MetricName: 'RepositoryPullCount', Dimensions: [{ Name: 'RepositoryName', Value: 'quay/a/b' }] },
        { Namespace: 'AWS/ECR', MetricName: 'RepositoryPullCount', Dimensions: [{ Name: 'RepositoryName', Value: 'quay/a/c' }, { Name: 'Other', Value: 'x' }] },
        { Namespace: 'AWS/ECR', MetricName: 'RepositoryPullCount', Dimensions: [{ Name: 'Other', Value: 'quay/a/d' }] },
        { Namespace: 'AWS/ECR', MetricName: 'RepositoryPullCount' },
      ],
    });
    cwMock.on(GetMetricDataCommand)
      .callsFake((input: any) => ({ MetricDataResults: input.MetricDataQueries.map((q: any) => ({ Id: q.Id, Values: [4] })) }));
    const { error, lines } = await captureLog(() => handler(scheduled('count-pulls', '2026-11-28T08:07:12Z')));
    expect(error).toBeUndefined();
    expect(cwMock.commandCalls(ListMetricsCommand)[0].args[0].input).toEqual({ Namespace: 'AWS/ECR', MetricName: 'RepositoryPullCount', NextToken: undefined });
    expect(cwMock.commandCalls(GetMetricDataCommand)[0].args[0].input.MetricDataQueries!.map(q => q.MetricStat!.Metric!.Dimensions![0].Value)).toEqual(['quay/a/b']);
    expect(emfValues(lines)).toMatchObject({ 'Pulls{Cache=TestCache,Prefix=quay}': 4 });
  });

  test('GetMetricData answering without results, or a result without values, counts 0 pulls', async () => {
    cwMock.reset();
    cwMock.on(ListMetricsCommand).resolves({ Metrics: [{ Namespace: 'AWS/ECR', MetricName: 'RepositoryPullCount', Dimensions: [{ Name: 'RepositoryName', Value: 'quay/a/b' }] }] });
    cwMock.on(GetMetricDataCommand).resolvesOnce({ NextToken: 't' }).resolvesOnce({ MetricDataResults: [{ Id: 'r0' }] });
    const { error, lines } = await captureLog(() => handler(scheduled('count-pulls', '2026-11-28T08:07:12Z')));
    expect(error).toBeUndefined();
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(2);
    expect(emfValues(lines)).toMatchObject({ 'Pulls{Cache=TestCache}': 0, 'Pulls{Cache=TestCache,Prefix=quay}': 0 });
  });

  test('no repository of the cache with pull data: every prefix publishes 0, nothing is asked of GetMetricData', async () => {
    cwMock.reset();
    cwMock.on(ListMetricsCommand).resolves({});
    const { error, lines } = await captureLog(() => handler(scheduled('count-pulls', '2026-11-28T08:07:12Z')));
    expect(error).toBeUndefined();
    expect(cwMock.commandCalls(GetMetricDataCommand)).toHaveLength(0);
    expect(emfValues(lines)).toEqual({
      'Pulls{Cache=TestCache}': 0, 'Pulls{Cache=TestCache,Prefix=docker-hub}': 0, 'Pulls{Cache=TestCache,Prefix=quay}': 0, 'Pulls{Cache=TestCache,Prefix=ghcr}': 0,
    });
  });

  test('every page of ListMetrics and GetMetricData is read, and 1,201 repositories go in batches of at most 500 queries', async () => {
    cwMock.reset();
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
    expect(lines[0]).toEqual(expect.objectContaining({
      level: 'ERROR',
      message: 'pull through cache sync failed',
      eventId: event.id,
      prefix: 'docker-hub',
      repositoryName: 'docker-hub/library/nginx',
      failureCode: 'UPSTREAM_AUTHENTICATION_FAILED',
      failureReason: 'unauthorized',
      syncStatus: 'FAILED',
      upstreamRegistryUrl: 'public.ecr.aws',
      imageTag: '1.27',
      imageDigest: `sha256:${'1'.repeat(64)}`,
    }));
  });

  test.each([
    ['without ecr-repository-prefix: the prefix its repository is under', { 'ecr-repository-prefix': undefined }, 'quay'],
    ['without a prefix or a repository of the cache: unknown', { 'ecr-repository-prefix': undefined, 'repository-name': 'elsewhere/x' }, 'unknown'],
    ['without a prefix or any repository name: unknown', { 'ecr-repository-prefix': undefined, 'repository-name': undefined }, 'unknown'],
    ['without a prefix, with a repository name that is no string: unknown', { 'ecr-repository-prefix': undefined, 'repository-name': 42 }, 'unknown'],
    ['with its prefix but no repository name: that prefix', { 'ecr-repository-prefix': 'ghcr', 'repository-name': undefined }, 'ghcr'],
  ])('a failure %s', async (_, change, prefix) => {
    const event = pullThroughCacheEvent('quay/a/b', `sha256:${'4'.repeat(64)}`, 'quay');
    Object.assign(event.detail, { 'sync-status': 'FAILED', 'failure-code': '' }, change);
    const { lines } = await captureLog(() => handler(event));
    expect(emfValues(lines)).toEqual({
      'SyncFailures{Cache=TestCache}': 1,
      [`SyncFailures{Cache=TestCache,Prefix=${prefix}}`]: 1,
      'SyncFailures{Cache=TestCache,FailureCode=Unknown}': 1,
    });
  });

  test('a SUCCESS sync that reaches the recorder is ignored, never counted as a failure', async () => {
    const { error, lines } = await captureLog(() => handler(pullThroughCacheEvent('quay/a/b', `sha256:${'3'.repeat(64)}`, 'quay')));
    expect(error).toBeUndefined();
    expect(emfValues(lines)).toEqual({});
    expect(lines[0]).toMatchObject({ level: 'WARN', message: 'a successful sync reached the failure recorder; ignored', eventId: `ptc-${'3'.repeat(12)}` });
  });

  test('a failure without a code is counted as Unknown', async () => {
    const event = pullThroughCacheEvent('quay/a/b', `sha256:${'2'.repeat(64)}`, 'quay');
    event.detail['sync-status'] = 'FAILED';
    const { lines } = await captureLog(() => handler(event));
    expect(emfValues(lines)).toHaveProperty(['SyncFailures{Cache=TestCache,FailureCode=Unknown}'], 1);
  });

  test('anything else is rejected with the reason', async () => {
    expect(String((await captureLog(() => handler({ task: 'reboot' }))).error)).toMatch(/invocation rejected: not an EventBridge event/);
    expect(String((await captureLog(() => handler(scheduled('reboot')))).error)).toBe('Error: scheduled event s-reboot names no known task (\'reboot\')');
    expect(String((await captureLog(() => handler({ ...scheduled('reboot'), id: undefined }))).error)).toBe('Error: scheduled event  names no known task (\'reboot\')');
    expect(String((await captureLog(() => handler(scheduled('count-pulls', 'yesterday')))).error)).toBe('Error: scheduled event s-count-pulls has no valid time (\'yesterday\')');
    expect(String((await captureLog(() => handler({ ...scheduled('count-pulls', 'yesterday'), id: undefined }))).error)).toMatch(/^Error: scheduled event {2}has no valid time/);
  });

  test.each([
    ['a scheduled run from another source', { ...scheduled('count-pulls'), source: 'aws.ecr' }],
    ['another event type from the scheduler', { ...scheduled('count-pulls'), 'detail-type': 'Object Created' }],
    ['a sync failure from another source', { ...pullThroughCacheEvent('quay/a/b', `sha256:${'5'.repeat(64)}`, 'quay'), source: 'aws.events' }],
    ['another ECR event', { ...pullThroughCacheEvent('quay/a/b', `sha256:${'5'.repeat(64)}`, 'quay'), 'detail-type': 'ECR Image Action' }],
  ])('%s is refused with its type and source, and nothing runs', async (_, event) => {
    const { error, lines } = await captureLog(() => handler(event));
    expect(String(error)).toBe(`Error: unexpected event '${event['detail-type']}' from '${event.source}'`);
    expect(emfValues(lines)).toEqual({});
  });
});
