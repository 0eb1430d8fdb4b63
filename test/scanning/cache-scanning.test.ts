import { execFileSync } from 'child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { CacheScanning, FindingSeverity, PullThroughCacheRules, PullThroughCacheRulesProps, RegistryScanning, UpstreamCredentials, UpstreamRegistry } from '../../src';
import { testApp } from '../util';

const ACCOUNT = '111122223333';
const REGION = 'eu-west-1';

function synth(props: Partial<PullThroughCacheRulesProps> = {}, env = { account: ACCOUNT, region: REGION }) {
  const stack = new Stack(testApp(), 'Test', { env });
  const cache = new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [UpstreamRegistry.ecrPublic(), UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() })],
    enableMonitoring: false, // scanning alone here; test/monitoring/ covers what monitoring adds
    ...props,
  });
  return { stack, cache, template: Template.fromStack(stack) };
}

/** The functions of the cache's features, without the stack's rule handler (src/rules/, tested in test/rules/). */
const featureFunctions = (template: Template) => Object.fromEntries(Object.entries(template.findResources('AWS::Lambda::Function'))
  .filter(([id]) => !id.startsWith('EcrPullThroughCacheRuleHandler')));

const ruleWith = (template: Template, detailType: string) => {
  const rules = Object.values(template.findResources('AWS::Events::Rule', { Properties: { EventPattern: { 'detail-type': [detailType] } } }));
  expect(rules).toHaveLength(1);
  return (rules[0] as any).Properties;
};

describe('event rules', () => {
  const { template } = synth();

  test('pull through cache SUCCESS for exactly the cache\'s prefixes, in this account', () => {
    expect(ruleWith(template, 'ECR Pull Through Cache Action').EventPattern).toEqual({
      'source': ['aws.ecr'],
      'detail-type': ['ECR Pull Through Cache Action'],
      'account': [ACCOUNT],
      'detail': { 'sync-status': ['SUCCESS'], 'ecr-repository-prefix': ['ecr-public', 'docker-hub'] },
    });
  });

  test('image pushes under the prefixes (path prefixes with their slash: docker-hub-x/ is not docker-hub/)', () => {
    expect(ruleWith(template, 'ECR Image Action').EventPattern.detail).toEqual({
      'action-type': ['PUSH'], 'result': ['SUCCESS'], 'repository-name': [{ prefix: 'ecr-public/' }, { prefix: 'docker-hub/' }],
    });
  });

  test('finished basic scans (FAILED too: images ECR cannot scan) and Inspector scans (which name the repository by ARN) under the prefixes', () => {
    expect(ruleWith(template, 'ECR Image Scan').EventPattern.detail).toEqual({
      'scan-status': [{ 'anything-but': ['IN_PROGRESS'] }], 'repository-name': [{ prefix: 'ecr-public/' }, { prefix: 'docker-hub/' }],
    });
    const inspector = ruleWith(template, 'Inspector2 Scan').EventPattern;
    expect(inspector.source).toEqual(['aws.inspector2']);
    expect(inspector.detail['scan-status']).toEqual(['INITIAL_SCAN_COMPLETE']);
    expect(inspector.detail['repository-name']).toEqual([
      { prefix: 'ecr-public/' }, { prefix: 'docker-hub/' },
      { prefix: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:${REGION}:${ACCOUNT}:repository/ecr-public/`]] } },
      { prefix: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:${REGION}:${ACCOUNT}:repository/docker-hub/`]] } },
    ]);
  });

  test('new Inspector findings (continuous scanning): ACTIVE findings of ECR images under the prefixes, by plain repository name', () => {
    expect(ruleWith(template, 'Inspector2 Finding').EventPattern).toEqual({
      'source': ['aws.inspector2'],
      'detail-type': ['Inspector2 Finding'],
      'account': [ACCOUNT],
      'detail': {
        status: ['ACTIVE'],
        resources: {
          type: ['AWS_ECR_CONTAINER_IMAGE'],
          details: { awsEcrContainerImage: { repositoryName: [{ prefix: 'ecr-public/' }, { prefix: 'docker-hub/' }] } },
        },
      },
    });
  });

  test('every target retries for a day, then writes to its handler\'s dead-letter queue', () => {
    const rules = Object.values(template.findResources('AWS::Events::Rule')) as any[];
    expect(rules).toHaveLength(5);
    for (const rule of rules) {
      expect(rule.Properties.Targets).toHaveLength(1);
      expect(rule.Properties.Targets[0].RetryPolicy).toEqual({ MaximumEventAgeInSeconds: 86400, MaximumRetryAttempts: 185 });
      expect(rule.Properties.Targets[0].DeadLetterConfig.Arn['Fn::GetAtt'][0]).toMatch(/DeadLetterQueue/);
    }
  });

  test('a ROOT cache matches every repository (and every pull through cache event) of the registry', () => {
    const root = synth({ upstreams: [UpstreamRegistry.ecrPublic({ ecrRepositoryPrefix: 'ROOT' })] }).template;
    expect(ruleWith(root, 'ECR Pull Through Cache Action').EventPattern.detail).toEqual({ 'sync-status': ['SUCCESS'] });
    expect(ruleWith(root, 'ECR Image Scan').EventPattern.detail).toEqual({ 'scan-status': [{ 'anything-but': ['IN_PROGRESS'] }] });
    expect(ruleWith(root, 'Inspector2 Finding').EventPattern.detail).toEqual({ status: ['ACTIVE'], resources: { type: ['AWS_ECR_CONTAINER_IMAGE'] } });
  });
});

describe('an account whose Lambda concurrency quota is 10 (a new account: Lambda keeps 10 unreserved)', () => {
  // the defaults with everything on: scanning, monitoring with a credential canary
  const { template } = synth({ enableMonitoring: true });

  test('the defaults reserve no concurrency, so the stack deploys there', () => {
    const functions = Object.values(template.findResources('AWS::Lambda::Function')) as any[];
    expect(functions.length).toBeGreaterThanOrEqual(3);
    const reserved = functions.reduce((n, fn) => n + (fn.Properties.ReservedConcurrentExecutions ?? 0), 0);
    expect(reserved).toBe(0);
  });

  test('every redrive mapping is bounded by MaximumConcurrency (2, Lambda\'s minimum) instead', () => {
    const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping')) as any[];
    expect(mappings).toHaveLength(3);
    for (const mapping of mappings) {
      expect(mapping.Properties.ScalingConfig).toEqual({ MaximumConcurrency: 2 });
    }
  });

  test('each handler may send a failed redriven event back to its own dead-letter queue, and to no other', () => {
    const policies = Object.values(template.findResources('AWS::IAM::Policy')) as any[];
    const sends = policies.flatMap(p => (p.Properties.PolicyDocument.Statement as any[])
      .filter(st => [st.Action].flat().includes('sqs:SendMessage')).map(st => ({ policy: p.Properties.PolicyName, queue: st.Resource['Fn::GetAtt'][0] })));
    expect(sends).toHaveLength(3);
    for (const { policy, queue } of sends) {
      expect(queue.replace(/DeadLetterQueue.*$/, '')).toBe(policy.replace(/ServiceRoleDefaultPolicy.*$/, ''));
    }
  });
});

describe('handlers', () => {
  const { template, cache } = synth();

  test('two bundled functions: Node.js 22 on ARM64, a timeout, no reserved concurrency, their own log groups', () => {
    const functions = featureFunctions(template);
    expect(Object.keys(functions)).toHaveLength(2);
    for (const fn of Object.values(functions) as any[]) {
      expect(fn.Properties).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], Timeout: 60, MemorySize: 256 });
      expect(fn.Properties.ReservedConcurrentExecutions).toBeUndefined();
      expect(fn.Properties.LoggingConfig.LogGroup.Ref).toMatch(/LogGroup/);
    }
    const logGroups = Object.entries(template.findResources('AWS::Logs::LogGroup')).filter(([id]) => !id.startsWith('EcrPullThroughCacheRuleHandler'));
    expect(logGroups.map(([, g]) => g.Properties.RetentionInDays)).toEqual([30, 30]);
  });

  test('asynchronous failures: two retries, then the on-failure destination is the dead-letter queue', () => {
    template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 2);
    template.allResourcesProperties('AWS::Lambda::EventInvokeConfig', {
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 21600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('DeadLetterQueue'), 'Arn'] } } },
    });
  });

  test('dead-letter queues: encrypted, TLS only, 14 days; a disabled redrive mapping from each back to its function', () => {
    template.resourceCountIs('AWS::SQS::Queue', 2);
    template.allResourcesProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 1209600, SqsManagedSseEnabled: true, VisibilityTimeout: 360 });
    template.allResourcesProperties('AWS::Lambda::EventSourceMapping', {
      Enabled: false, BatchSize: 10, FunctionResponseTypes: ['ReportBatchItemFailures'], ScalingConfig: { MaximumConcurrency: 2 },
    });
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
    expect(cache.scanning?.deadLetterQueues).toHaveLength(2);
    expect(cache.scanning?.functions).toHaveLength(2);
  });

  test('least privilege: ECR actions on repository/<prefix>/* only, "*" only where AWS requires it', () => {
    const statements = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([id]) => !id.startsWith('EcrPullThroughCacheRuleHandler')).flatMap(([, p]: [string, any]) => p.Properties.PolicyDocument.Statement);
    const byAction = (action: string) => statements.filter(s => [s.Action].flat().includes(action));
    const prefixArns = ['ecr-public', 'docker-hub'].map(p => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:${REGION}:${ACCOUNT}:repository/${p}/*`]] }));
    expect(byAction('ecr:StartImageScan').map(s => s.Resource)).toEqual([prefixArns]);
    expect(byAction('ecr:BatchGetImage').map(s => s.Resource)).toEqual([prefixArns]);
    expect(byAction('ecr:DescribeImageScanFindings').map(s => s.Resource)).toEqual([prefixArns, prefixArns]);
    // "*" only for inspector2:ListFindings, which has no resource type
    expect(statements.filter(s => [s.Resource].flat().includes('*'))).toEqual([{ Action: 'inspector2:ListFindings', Effect: 'Allow', Resource: '*' }]);
    expect(byAction('sns:Publish')).toHaveLength(1);
    template.resourceCountIs('AWS::IAM::ManagedPolicy', 0);
    for (const role of Object.values(template.findResources('AWS::IAM::Role')) as any[]) {
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });

  test('the reporter is told the topic, the severity and the prefixes', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ REPORT_SEVERITY: 'HIGH', CACHE_PREFIXES: '["ecr-public","docker-hub"]', FINDINGS_TOPIC_ARN: { Ref: Match.anyValue() } }) },
    });
  });

  test('the findings topic is encrypted with the AWS managed key and refuses plain HTTP', () => {
    const topic = Object.values(template.findResources('AWS::SNS::Topic'))[0] as any;
    expect(JSON.stringify(topic.Properties.KmsMasterKeyId)).toMatch(/:alias\/aws\/sns"/);
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });
});

describe('options', () => {
  test('enableScanning: false creates no scanning resource', () => {
    const { template, cache } = synth({ enableScanning: false });
    expect(cache.scanning).toBeUndefined();
    expect(Object.keys(featureFunctions(template))).toEqual([]);
    template.resourceCountIs('AWS::Events::Rule', 0);
  });

  test('scanning options with enableScanning: false is a contradiction, refused', () => {
    expect(() => synth({ enableScanning: false, scanning: { reportSeverity: FindingSeverity.LOW } })).toThrow(/scanning options are set, but enableScanning is false/);
  });

  test('a topic of the user\'s, and a lower report severity', () => {
    const stack = new Stack(testApp(), 'T', { env: { account: ACCOUNT, region: REGION } });
    const topic = new sns.Topic(stack, 'MyTopic');
    new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [UpstreamRegistry.quay()], enableMonitoring: false, scanning: { findingsTopic: topic, reportSeverity: FindingSeverity.MEDIUM },
    });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ REPORT_SEVERITY: 'MEDIUM', FINDINGS_TOPIC_ARN: { Ref: stack.getLogicalId(topic.node.defaultChild as any) } }) },
    });
  });

  test('basic scan on push for the cache prefixes, beside the scan trigger', () => {
    const { template } = synth({ scanning: { registryScanning: RegistryScanning.BASIC_SCAN_ON_PUSH } });
    template.hasResourceProperties('AWS::ECR::RegistryScanningConfiguration', {
      ScanType: 'BASIC',
      Rules: [{ ScanFrequency: 'SCAN_ON_PUSH', RepositoryFilters: [{ Filter: 'ecr-public/*', FilterType: 'WILDCARD' }, { Filter: 'docker-hub/*', FilterType: 'WILDCARD' }] }],
    });
    expect(Object.keys(featureFunctions(template))).toHaveLength(2);
  });

  test('enhanced scanning: Inspector scans, so there is no scan trigger (ECR refuses manual scans there)', () => {
    const { template, cache } = synth({ scanning: { registryScanning: RegistryScanning.ENHANCED_CONTINUOUS_SCAN } });
    template.hasResourceProperties('AWS::ECR::RegistryScanningConfiguration', { ScanType: 'ENHANCED', Rules: [Match.objectLike({ ScanFrequency: 'CONTINUOUS_SCAN' })] });
    expect(cache.scanning?.scanFunction).toBeUndefined();
    expect(Object.keys(featureFunctions(template))).toHaveLength(1);
    expect(() => synth({ scanning: { registryScanning: RegistryScanning.ENHANCED_SCAN_ON_PUSH, scanOnCache: true } }))
      .toThrow(/ECR does not start manual scans in a registry with enhanced scanning/);
  });

  test('a prefix that ECR\'s scanning filter pattern cannot express is refused with the reason', () => {
    expect(() => synth({ upstreams: [UpstreamRegistry.quay({ ecrRepositoryPrefix: 'quay--mirror' })], scanning: { registryScanning: RegistryScanning.BASIC_SCAN_ON_PUSH } }))
      .toThrow(/'quay--mirror' cannot be written as a registry scanning filter/);
  });

  test('reservedConcurrentExecutions: Lambda\'s meaning, a whole number from 1; 0 (never run) is refused with the fix', () => {
    expect(() => synth({ scanning: { reservedConcurrentExecutions: 0 } }))
      .toThrow(/reservedConcurrentExecutions is 0; reserve a whole number from 1, or leave it unset to reserve none/);
    expect(() => synth({ scanning: { reservedConcurrentExecutions: 1.5 } })).toThrow(/reservedConcurrentExecutions is 1.5/);
    const capped = synth({ scanning: { reservedConcurrentExecutions: 3 } }).template;
    const scanners = Object.values(featureFunctions(capped)) as any[];
    expect(scanners).toHaveLength(2);
    for (const fn of scanners) {
      expect(fn.Properties.ReservedConcurrentExecutions).toBe(3);
    }
  });

  test('the standalone construct needs a cache, and checks its prefixes', () => {
    const stack = new Stack(testApp(), 'S');
    expect(() => new CacheScanning(stack, 'A', {} as any)).toThrow(/A: cache is missing\. Give the cache to scan: new CacheScanning\(this, 'A', \{ cache \}\)/);
    const cache = PullThroughCacheRules.fromPullThroughCacheRulesAttributes(stack, 'Imported', {
      prefixes: [{ registry: '111122223333.dkr.ecr.eu-west-1.amazonaws.com', ecrRepositoryPrefix: 'ROOT' }, { registry: 'quay.io', ecrRepositoryPrefix: 'quay' }],
    });
    expect(() => new CacheScanning(stack, 'B', { cache })).toThrow(/the cache S\/Imported has the prefix ROOT \(every repository\) and 1 more; ROOT already covers them/);
  });
});

describe('metrics', () => {
  const { cache } = synth();
  const scanning = cache.scanning!;

  test.each([
    ['metricScansStarted', 'ScansStarted'],
    ['metricScansSkipped', 'ScansSkipped'],
    ['metricScanFailures', 'ScanFailures'],
    ['metricScansReported', 'ScansReported'],
  ])('%s: %s, Sum over 5 minutes, for this cache', (method, name) => {
    const metric = (scanning as any)[method]();
    expect(metric).toMatchObject({ namespace: 'EcrPullThroughCache', metricName: name, statistic: 'Sum', dimensions: { Cache: scanning.cacheName } });
    expect(metric.period.toSeconds()).toBe(300);
  });

  test('findings by severity', () => {
    expect(scanning.metricFindings(FindingSeverity.CRITICAL)).toMatchObject({ metricName: 'Findings', dimensions: { Cache: scanning.cacheName, Severity: 'CRITICAL' } });
  });

  test('the Cache dimension is the construct\'s unique id, stable across synths', () => {
    expect(scanning.cacheName).toBe(synth().cache.scanning!.cacheName);
    expect(scanning.cacheName).toMatch(/^TestCache[0-9A-F]{8}$/);
  });
});

describe('the packed npm tarball', () => {
  const root = join(__dirname, '..', '..');

  test('ships each handler bundle, which loads and runs in a fresh folder with no node_modules', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ptc-pack-'));
    try {
      const listed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: root, encoding: 'utf-8', stdio: ['ignore', 'pipe', 'pipe'] }));
      const files: string[] = listed[0].files.map((f: { path: string }) => f.path);
      const bundles = files.filter(f => /^assets\/.+\.lambda\/index\.js$/.test(f)).sort();
      expect(bundles).toEqual(expect.arrayContaining(['assets/scanning/findings-report.lambda/index.js', 'assets/scanning/scan-trigger.lambda/index.js']));
      execFileSync('tar', ['xzf', join(dir, listed[0].filename), '-C', dir]);
      for (const bundle of bundles) {
        const packed = join(dir, 'package', bundle);
        expect(statSync(packed).size).toBeLessThan(500 * 1024);
        // alone in an empty folder, as Lambda runs it: the SDK and everything else must be inside the bundle
        const alone = join(dir, bundle.replace(/\W/g, '_'));
        mkdirSync(alone);
        copyFileSync(packed, join(alone, 'index.js'));
        const out = execFileSync('node', ['-e', `
          require('./index.js').handler({ nothing: true }).then(() => console.log('resolved'), e => console.log('rejected: ' + e.message));
        `], { cwd: alone, encoding: 'utf-8', env: { PATH: process.env.PATH, LOG_LEVEL: 'ERROR' } });
        // the custom resource handlers (rules, warm-up, backfill, teardown) answer CloudFormation, the others EventBridge
        expect(out).toMatch(/\/(rules|prewarm|repositories)\//.test(bundle)
          ? /rejected: invocation rejected: not a CloudFormation custom resource request/
          : /rejected: invocation rejected: not an EventBridge event/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
