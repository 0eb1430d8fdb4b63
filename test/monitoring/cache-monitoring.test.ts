import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { CacheMonitoring, FindingSeverity, PullThroughCacheRules, PullThroughCacheRulesProps, UpstreamCredentials, UpstreamRegistry } from '../../src';
import { testApp } from '../util';

const ACCOUNT = '111122223333';
const REGION = 'eu-west-1';
const SECRET = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:ecr-pullthroughcache/ghcr-AbCdEf`;

function synth(props: Partial<PullThroughCacheRulesProps> = {}) {
  const stack = new Stack(testApp(), 'Test', { env: { account: ACCOUNT, region: REGION } });
  const quay = UpstreamRegistry.quay();
  const hub = UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() });
  const ghcr = UpstreamRegistry.githubContainerRegistry({
    credentials: UpstreamCredentials.fromSecret(secretsmanager.Secret.fromSecretCompleteArn(stack, 'Ghcr', SECRET)),
  });
  const cache = new PullThroughCacheRules(stack, 'Cache', { upstreams: [quay, hub, ghcr], ...props });
  return { stack, cache, quay, hub, ghcr, template: Template.fromStack(stack) };
}

const alarm = (template: Template, id: string) => {
  const found = Object.entries(template.findResources('AWS::CloudWatch::Alarm')).filter(([logicalId]) => logicalId.startsWith(`CacheMonitoring${id}`));
  expect(found).toHaveLength(1);
  return (found[0][1] as any).Properties;
};

describe('alarms', () => {
  const { template, cache } = synth();

  test('six alarms, each notifying the alarm topic on ALARM and on OK', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 6);
    const topic = { Ref: Match.stringLikeRegexp('^CacheMonitoringAlarmTopic') };
    template.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: [topic], OKActions: [topic] });
    expect(cache.monitoring!.alarms).toHaveLength(6);
  });

  test('SyncFailures: the failure rule\'s MatchedEvents >= 5 in 5 minutes (one mistyped tag does not page); no events is no failure', () => {
    expect(alarm(template, 'SyncFailures')).toMatchObject({
      Namespace: 'AWS/Events',
      MetricName: 'MatchedEvents',
      Statistic: 'Sum',
      Period: 300,
      Dimensions: [{ Name: 'RuleName', Value: { Ref: expect.stringMatching(/^CacheMonitoringSyncFailureRule/) } }],
      Threshold: 5,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
  });

  test('CriticalFindings: any CRITICAL finding of a cached image', () => {
    expect(alarm(template, 'CriticalFindings')).toMatchObject({
      Namespace: 'EcrPullThroughCache',
      MetricName: 'Findings',
      Statistic: 'Sum',
      Period: 300,
      Dimensions: [{ Name: 'Cache', Value: cache.scanning!.cacheName }, { Name: 'Severity', Value: 'CRITICAL' }],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
  });

  test('HandlerErrors: the errors of the three handlers, summed, in 3 consecutive 5-minute periods (errors that retries fix do not page)', () => {
    const props = alarm(template, 'HandlerErrors');
    expect(props).toMatchObject({
      Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', EvaluationPeriods: 3, DatapointsToAlarm: 3, TreatMissingData: 'notBreaching',
    });
    const expression = props.Metrics.find((m: any) => m.Expression);
    expect(expression.Expression).toBe('FILL(errors0, 0) + FILL(errors1, 0) + FILL(errors2, 0)');
    const inputs = props.Metrics.filter((m: any) => m.MetricStat);
    const stat = (m: any) => [m.MetricStat.Metric.Namespace, m.MetricStat.Metric.MetricName, m.MetricStat.Stat, m.MetricStat.Period, m.ReturnData];
    expect(inputs.map(stat))
      .toEqual(Array(3).fill(['AWS/Lambda', 'Errors', 'Sum', 300, false]));
  });

  test('DeadLetters: any message in any of the three dead-letter queues', () => {
    const props = alarm(template, 'DeadLetters');
    expect(props.Metrics.find((m: any) => m.Expression).Expression).toBe('FILL(dlq0, 0) + FILL(dlq1, 0) + FILL(dlq2, 0)');
    expect(props.Metrics.filter((m: any) => m.MetricStat).map((m: any) => [m.MetricStat.Metric.MetricName, m.MetricStat.Stat]))
      .toEqual(Array(3).fill(['ApproximateNumberOfMessagesVisible', 'Maximum']));
    expect(props).toMatchObject({ Threshold: 1, TreatMissingData: 'notBreaching' });
  });

  test('EventsGivenUp: any redriven event a handler gave up (its body is in the log); one metric per cache, not per handler', () => {
    const props = alarm(template, 'EventsGivenUp');
    expect(props).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', EvaluationPeriods: 1, TreatMissingData: 'notBreaching' });
    expect(props.AlarmDescription).toMatch(/runbook: EventsGivenUp/);
    expect(props.Metrics.find((m: any) => m.Expression).Expression).toBe('FILL(givenup0, 0)');
    expect(props.Metrics.filter((m: any) => m.MetricStat).map((m: any) => m.MetricStat))
      .toEqual([{
        Metric: { Namespace: 'EcrPullThroughCache', MetricName: 'EventsGivenUp', Dimensions: [{ Name: 'Cache', Value: cache.scanning!.cacheName }] },
        Period: 300,
        Stat: 'Sum',
      }]);
  });

  test('EventsGivenUp sums every namespace and cache name the handlers publish under', () => {
    const stack = new Stack(testApp(), 'G', { env: { account: ACCOUNT, region: REGION } });
    const rules = new PullThroughCacheRules(stack, 'Cache', { upstreams: [UpstreamRegistry.quay()], enableMonitoring: false });
    const monitoring = new CacheMonitoring(stack, 'Own', { cache: rules, metricNamespace: 'Mine' });
    const metrics = Template.fromStack(stack).toJSON().Resources;
    const props = (Object.entries(metrics).find(([id]) => id.startsWith('OwnEventsGivenUp'))![1] as any).Properties;
    expect(props.Metrics.filter((m: any) => m.MetricStat).map((m: any) => [m.MetricStat.Metric.Namespace, m.MetricStat.Metric.Dimensions[0].Value]))
      .toEqual([['Mine', rules.scanning!.cacheName], ['EcrPullThroughCache', rules.scanning!.cacheName]]);
    expect(monitoring.alarms).toHaveLength(5);
  });

  test('CredentialCheck: no page on a fresh deploy (missing data is INSUFFICIENT_DATA, not ALARM); the first rejected check alarms', () => {
    const props = alarm(template, 'CredentialCheck');
    expect(props).toMatchObject({
      Namespace: 'EcrPullThroughCache',
      MetricName: 'CredentialCheckFailures',
      Statistic: 'Maximum',
      Period: 3600,
      Threshold: 1,
      EvaluationPeriods: 2,
      DatapointsToAlarm: 1,
      TreatMissingData: 'missing',
    });
    // a canary silent for two intervals notifies too
    expect(props.InsufficientDataActions).toEqual([{ Ref: expect.stringMatching(/^CacheMonitoringAlarmTopic/) }]);
    expect(props.AlarmDescription).toMatch(/or the upstream refused the login/);
  });

  test('only CredentialCheck notifies on INSUFFICIENT_DATA: every other alarm is quiet while it has no data', () => {
    const withInsufficient = Object.entries(template.findResources('AWS::CloudWatch::Alarm'))
      .filter(([, a]) => (a as any).Properties.InsufficientDataActions).map(([id]) => id.replace(/[0-9A-F]{8}$/, ''));
    expect(withInsufficient).toEqual(['CacheMonitoringCredentialCheck']);
  });

  test('thresholds are overridable', () => {
    const custom = synth({ monitoring: { syncFailureThreshold: 2, criticalFindingsThreshold: 3 } }).template;
    expect(alarm(custom, 'SyncFailures').Threshold).toBe(2);
    expect(alarm(custom, 'CriticalFindings').Threshold).toBe(3);
  });

  test('without scanning there is no findings alarm, and the handler alarms cover the health handler only', () => {
    const { template: t } = synth({ enableScanning: false });
    t.resourceCountIs('AWS::CloudWatch::Alarm', 5);
    expect(alarm(t, 'HandlerErrors').Metrics.find((m: any) => m.Expression).Expression).toBe('FILL(errors0, 0)');
  });

  test('without credentials there is no canary schedule and no credential alarm', () => {
    const stack = new Stack(testApp(), 'T', { env: { account: ACCOUNT, region: REGION } });
    new PullThroughCacheRules(stack, 'Cache', { upstreams: [UpstreamRegistry.quay()] });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 5);
    expect(Object.keys(t.findResources('AWS::Events::Rule')).filter(id => id.includes('CredentialCheck'))).toEqual([]);
  });
});

describe('the health handler and its rules', () => {
  const { template } = synth();
  const rules = template.findResources('AWS::Events::Rule');
  const rule = (id: string) => (Object.entries(rules).find(([logicalId]) => logicalId.startsWith(`CacheMonitoring${id}`))![1] as any).Properties;

  test('the sync failure rule: anything but SUCCESS, for exactly the cache\'s prefixes', () => {
    expect(rule('SyncFailureRule').EventPattern).toEqual({
      'source': ['aws.ecr'],
      'detail-type': ['ECR Pull Through Cache Action'],
      'account': [ACCOUNT],
      'detail': { 'sync-status': [{ 'anything-but': 'SUCCESS' }], 'ecr-repository-prefix': ['quay', 'docker-hub', 'ghcr'] },
    });
  });

  test('schedules: pulls every 15 minutes, credentials every hour, each an event naming its task and carrying its time', () => {
    const input = (task: string) => ({
      InputPathsMap: { id: '$.id', time: '$.time' },
      InputTemplate: `{"id":<id>,"detail-type":"Scheduled Event","source":"aws.events","time":<time>,"detail":{"task":"${task}"}}`,
    });
    expect(rule('PullCountSchedule')).toMatchObject({ ScheduleExpression: 'rate(15 minutes)', Targets: [{ InputTransformer: input('count-pulls') }] });
    expect(rule('CredentialCheckSchedule')).toMatchObject({ ScheduleExpression: 'rate(1 hour)', Targets: [{ InputTransformer: input('validate-credentials') }] });
  });

  test('the canary validates exactly the rules with credentials, and knows which secrets the construct created', () => {
    const fn = Object.values(template.findResources('AWS::Lambda::Function')).find((f: any) => f.Properties.Environment.Variables.PULL_COUNT_PERIOD) as any;
    const vars = fn.Properties.Environment.Variables;
    expect(vars.PULL_COUNT_PERIOD).toBe('900');
    expect(vars.CREATED_SECRET_PREFIXES).toBe('["docker-hub"]');
    const credentials = JSON.stringify(vars.CREDENTIAL_SECRETS);
    expect(credentials).toContain('ghcr');
    expect(credentials).toContain(SECRET);
    expect(credentials).toContain('docker-hub');
    expect(credentials).not.toContain('quay');
  });

  test('least privilege: DescribeSecret (metadata, never the value) on the created secret only; "*" only for APIs without a resource type', () => {
    const statements = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('CacheMonitoringHealth'))
      .flatMap(([, p]: [string, any]) => p.Properties.PolicyDocument.Statement);
    const star = statements.filter(s => s.Resource === '*').flatMap(s => [s.Action].flat()).sort();
    expect(star).toEqual(['cloudwatch:GetMetricData', 'cloudwatch:ListMetrics', 'ecr:ValidatePullThroughCacheRule']);
    const secretStatements = statements.filter(s => [s.Action].flat().some((a: string) => a.startsWith('secretsmanager:')));
    expect(secretStatements).toEqual([{ Action: 'secretsmanager:DescribeSecret', Effect: 'Allow', Resource: { Ref: expect.stringMatching(/^CacheSecretEcrPullthroughcacheDockerHub/) } }]);
  });

  test('the alarm topic refuses plain HTTP', () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: Match.stringLikeRegexp('^CacheMonitoringAlarmTopic') }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });
});

describe('metrics', () => {
  const { cache, quay, stack } = synth();
  const name = cache.monitoring!.cacheName;
  const resolved = (metric: cloudwatch.IMetric) => {
    const stat = (metric as cloudwatch.Metric).toMetricConfig().metricStat!;
    return { ...stat, dimensions: stack.resolve(stat.dimensions ?? []) };
  };

  test.each([
    ['monitoring', 'metricPulls', 'EcrPullThroughCache', 'Pulls', 'Sum', 900, { Cache: name }],
    ['monitoring', 'metricSyncFailures', 'AWS/Events', 'MatchedEvents', 'Sum', 300, undefined],
    ['monitoring', 'metricCredentialCheckFailures', 'EcrPullThroughCache', 'CredentialCheckFailures', 'Maximum', 3600, { Cache: name }],
    ['scanning', 'metricScansStarted', 'EcrPullThroughCache', 'ScansStarted', 'Sum', 300, { Cache: name }],
    ['scanning', 'metricScansSkipped', 'EcrPullThroughCache', 'ScansSkipped', 'Sum', 300, { Cache: name }],
    ['scanning', 'metricScanFailures', 'EcrPullThroughCache', 'ScanFailures', 'Sum', 300, { Cache: name }],
  ])('cache.%s.%s: %s %s, %s over %i s', (member, method, namespace, metricName, statistic, period, dimensions) => {
    const stat = resolved((cache as any)[member][method]());
    expect(stat).toMatchObject({ namespace, metricName, statistic, period: expect.anything() });
    expect(stat.period.toSeconds()).toBe(period);
    if (dimensions) {
      expect(Object.fromEntries(stat.dimensions.map((d: any) => [d.name, d.value]))).toEqual(dimensions);
    }
  });

  test('per prefix: pulls and sync failures of one upstream', () => {
    const pulls = resolved(cache.monitoring!.metricPrefixPulls(quay.ecrRepositoryPrefix));
    expect(Object.fromEntries(pulls.dimensions.map((d: any) => [d.name, d.value]))).toEqual({ Cache: name, Prefix: 'quay' });
    const failures = resolved(cache.monitoring!.metricPrefixSyncFailures('quay'));
    expect(failures).toMatchObject({ metricName: 'SyncFailures', statistic: 'Sum' });
    expect(() => cache.monitoring!.metricPrefixPulls('k8s')).toThrow(/k8s/);
  });

  test('findings by severity, and the handler and queue expressions', () => {
    expect(resolved(cache.scanning!.metricFindings(FindingSeverity.HIGH))).toMatchObject({ metricName: 'Findings' });
    const m = cache.monitoring!;
    const expressions = [m.metricHandlerErrors(), m.metricHandlerThrottles(), m.metricDeadLetterMessages(), m.metricDeadLetterAge()];
    for (const metric of expressions) {
      expect(metric).toBeInstanceOf(cloudwatch.MathExpression);
      expect(Object.keys((metric as cloudwatch.MathExpression).usingMetrics)).toHaveLength(3);
    }
  });

  test('a capability that is off has no member, so none of its metrics can be asked for (nothing would publish them)', () => {
    const off = synth({ enableMonitoring: false, enableScanning: false }).cache;
    expect(off.monitoring).toBeUndefined();
    expect(off.scanning).toBeUndefined();
    expect((off as any).metricPulls).toBeUndefined(); // the metrics live on the members, not on the cache
    expect(() => synth({ enableMonitoring: false, monitoring: {} })).toThrow(/monitoring options are set, but enableMonitoring is false/);
  });
});

describe('dashboard', () => {
  test('widgets: alarms, pulls per upstream, sync failures by code, scans, findings, handlers, queues, canary', () => {
    const { template } = synth({ monitoring: { dashboardName: 'ptc-cache' } });
    const dashboard = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0] as any;
    expect(dashboard.Properties.DashboardName).toBe('ptc-cache');
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    for (const title of ['Alarms', 'Pulls per upstream prefix', 'Sync failures, by failure code', 'Scans', 'Findings by severity',
      'Handlers: errors and throttles', 'Dead-letter queues', 'Credential canary']) {
      expect(body).toContain(`\\"title\\":\\"${title}\\"`);
    }
    expect(body).toContain('SEARCH(');
    expect(body).toMatch(/MetricName=\\\\\\"SyncFailures\\\\\\"/);
  });

  test('createDashboard: false makes none', () => {
    synth({ monitoring: { createDashboard: false } }).template.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
  });
});

describe('validation', () => {
  test('intervals are whole minutes', () => {
    expect(() => synth({ monitoring: { pullCountInterval: Duration.seconds(30) } })).toThrow(/pullCountInterval is 30 seconds; it must be a whole number of minutes/);
    expect(() => synth({ monitoring: { credentialCheckInterval: Duration.days(4) } })).toThrow(/credentialCheckInterval is 4 days; .* to 3.5 days/);
  });

  test('a topic of the user\'s is used as it is', () => {
    const stack = new Stack(testApp(), 'U', { env: { account: ACCOUNT, region: REGION } });
    const topic = new sns.Topic(stack, 'Pager');
    new PullThroughCacheRules(stack, 'Cache', { upstreams: [UpstreamRegistry.quay()], monitoring: { alarmTopic: topic } });
    Template.fromStack(stack).allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: [{ Ref: stack.getLogicalId(topic.node.defaultChild as sns.CfnTopic) }] });
  });

  test('the standalone construct needs prefixes', () => {
    expect(() => new CacheMonitoring(new Stack(testApp(), 'S'), 'M', {} as any)).toThrow(/M: cache is missing\. Give the cache to monitor: new CacheMonitoring\(this, 'M', \{ cache \}\)/);
  });
});
