import { BootstraplessSynthesizer, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { PullThroughCacheRules, RegistryScanning, UpstreamCredentials, UpstreamRegistry } from '../../src';
import { keyedLogicalId } from '../../src/private/logical-ids';
import { RULE_RESOURCE_TYPE } from '../../src/rules/contract';
import { testApp } from '../util';

const ENV = { account: '111122223333', region: 'eu-west-1' };
const SECRET = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:ecr-pullthroughcache/hub-AbCdEf';
const ROLE = 'arn:aws:iam::111122223333:role/ptc';

function stackWithTwoCaches() {
  const stack = new Stack(testApp(), 'Platform', { env: ENV });
  const hub = UpstreamCredentials.fromSecret(secretsmanager.Secret.fromSecretCompleteArn(stack, 'Hub', SECRET));
  const role = iam.Role.fromRoleArn(stack, 'PtcRole', ROLE);
  const first = new PullThroughCacheRules(stack, 'Public', { upstreams: [UpstreamRegistry.quay(), UpstreamRegistry.dockerHub({ credentials: hub })] });
  const second = new PullThroughCacheRules(stack, 'Private', {
    upstreams: [UpstreamRegistry.ecr({ registryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com', role, ecrRepositoryPrefix: 'platform' })],
    enableScanning: false,
    enableMonitoring: false,
  });
  return { stack, first, second, template: Template.fromStack(stack) };
}

describe('the rule handler', () => {
  const { template, first, second } = stackWithTwoCaches();
  const handlerPolicies = () => Object.entries(template.findResources('AWS::IAM::Policy'))
    .filter(([id]) => id.startsWith('EcrPullThroughCacheRuleHandler'));

  test('one per stack, whichever cache, Node.js 22 on ARM64 with its own log group', () => {
    template.resourcePropertiesCountIs('AWS::Lambda::Function', { Handler: 'index.handler', Description: Match.stringLikeRegexp('^Creates, updates in place') }, 1);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Creates, updates in place'),
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Timeout: 120,
      LoggingConfig: { LogGroup: { Ref: Match.stringLikeRegexp('^EcrPullThroughCacheRuleHandlerLogGroup') } },
    });
    template.resourceCountIs(RULE_RESOURCE_TYPE, 2);
    expect(handlerPolicies()).toHaveLength(1);
  });

  test('least privilege: the rule actions on "*" (no resource type), the rules\' own secret and role, the service-linked role by name', () => {
    const statements = handlerPolicies()[0][1].Properties.PolicyDocument.Statement;
    expect(statements).toEqual([
      { Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Effect: 'Allow', Resource: { 'Fn::GetAtt': [expect.stringMatching(/^EcrPullThroughCacheRuleHandlerLogGroup/), 'Arn'] } },
      {
        Action: ['ecr:CreatePullThroughCacheRule', 'ecr:UpdatePullThroughCacheRule', 'ecr:DeletePullThroughCacheRule', 'ecr:DescribePullThroughCacheRules'],
        Effect: 'Allow',
        Resource: '*',
      },
      {
        Action: 'iam:CreateServiceLinkedRole',
        Effect: 'Allow',
        Condition: { StringEquals: { 'iam:AWSServiceName': 'pullthroughcache.ecr.amazonaws.com' } },
        Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::111122223333:role/aws-service-role/pullthroughcache.ecr.amazonaws.com/AWSServiceRoleForECRPullThroughCache']] },
      },
      { Action: 'secretsmanager:GetSecretValue', Effect: 'Allow', Resource: SECRET },
      { Action: 'iam:PassRole', Effect: 'Allow', Resource: ROLE },
    ]);
  });

  test('each rule waits for the handler\'s permissions (and is deleted before they go)', () => {
    for (const [, rule] of Object.entries(template.findResources(RULE_RESOURCE_TYPE))) {
      expect(rule.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^EcrPullThroughCacheRuleHandlerServiceRoleDefaultPolicy/)]));
    }
  });

  test('a request the handler never answers (a crash, an answer S3 never took) fails the deploy in 15 minutes, not CloudFormation\'s hour', () => {
    // 15 min: the function's 2 min, and Lambda's two retries of an asynchronous invocation, minutes apart
    const rules = Object.values(template.findResources(RULE_RESOURCE_TYPE));
    expect(rules).toHaveLength(2);
    for (const rule of rules) {
      expect(rule.Properties.ServiceTimeout).toBe('900'); // CDK renders it as a string, which CloudFormation takes
    }
  });

  test('rules expose their prefix through IPullThroughCacheRuleRef, whatever their type', () => {
    const stack = Stack.of(first);
    expect(first.rules.map(r => stack.resolve(r.pullThroughCacheRuleRef.ecrRepositoryPrefix))).toEqual([
      { Ref: keyedLogicalId('CacheRule', 'quay') }, { Ref: keyedLogicalId('CacheUpdatableRule', 'docker-hub') },
    ]);
    expect(second.rules).toHaveLength(1);
  });
});

describe('logical ids follow the prefix or name', () => {
  test('readable, with a hash so that prefixes that read alike differ', () => {
    expect(keyedLogicalId('CacheRule', 'docker-hub')).toMatch(/^CacheRuleDockerHub[0-9A-F]{8}$/);
    expect(keyedLogicalId('CacheRule', 'a-b')).not.toBe(keyedLogicalId('CacheRule', 'a/b'));
    expect(keyedLogicalId('CacheSecret', `ecr-pullthroughcache/${'x'.repeat(500)}`).length).toBeLessThanOrEqual(255);
  });

  test('rules, templates and a created secret carry them', () => {
    const stack = new Stack(testApp(), 'S', { env: ENV });
    new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [UpstreamRegistry.quay(), UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() })],
    });
    const resources = Template.fromStack(stack).toJSON().Resources;
    expect(resources[keyedLogicalId('CacheRule', 'quay')].Type).toBe('AWS::ECR::PullThroughCacheRule');
    expect(resources[keyedLogicalId('CacheUpdatableRule', 'docker-hub')].Type).toBe(RULE_RESOURCE_TYPE);
    expect(resources[keyedLogicalId('CacheTemplate', 'quay')].Properties.Prefix).toBe('quay');
    expect(resources[keyedLogicalId('CacheTemplate', 'docker-hub')].Properties.Prefix).toBe('docker-hub');
    expect(resources[keyedLogicalId('CacheSecret', 'ecr-pullthroughcache/docker-hub')].Properties.Name).toBe('ecr-pullthroughcache/docker-hub');
  });
});

test('a stack without assets (a StackSet member template) gets CloudFormation\'s rule type and no handler', () => {
  const stack = new Stack(testApp(), 'Member', { synthesizer: new BootstraplessSynthesizer() });
  const role = iam.Role.fromRoleArn(stack, 'PtcRole', ROLE);
  new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [UpstreamRegistry.ecr({ registryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com', role, ecrRepositoryPrefix: 'platform' })],
    enableScanning: false,
    enableMonitoring: false,
  });
  const template = Template.fromStack(stack);
  template.resourceCountIs(RULE_RESOURCE_TYPE, 0);
  template.resourceCountIs('AWS::Lambda::Function', 0);
  template.hasResourceProperties('AWS::ECR::PullThroughCacheRule', { EcrRepositoryPrefix: 'platform', CustomRoleArn: ROLE });
});

describe('keyed ids never hide a clash: the app-level checks name it first', () => {
  test.each([
    ['the same prefix', [UpstreamRegistry.quay()], [UpstreamRegistry.quay()], /both create a pull through cache rule with the prefix 'quay'/],
    ['the same secret name', [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret({ secretName: 'ecr-pullthroughcache/hub' }) })],
      [UpstreamRegistry.githubContainerRegistry({ credentials: UpstreamCredentials.createSecret({ secretName: 'ecr-pullthroughcache/hub' }) })],
      /both create the secret 'ecr-pullthroughcache\/hub'/],
  ])('two caches of one stack with %s', (_, one, two, message) => {
    const app = testApp();
    const stack = new Stack(app, 'S', { env: ENV });
    new PullThroughCacheRules(stack, 'One', { upstreams: one, enableScanning: false, enableMonitoring: false });
    new PullThroughCacheRules(stack, 'Two', { upstreams: two, enableScanning: false, enableMonitoring: false });
    expect(() => app.synth()).toThrow(message);
  });
});

test('a second registry scanning configuration in one stack is refused (the registry has one; both would share one logical id)', () => {
  const stack = new Stack(testApp(), 'S', { env: ENV });
  const scanned = { scanning: { registryScanning: RegistryScanning.BASIC_SCAN_ON_PUSH }, enableMonitoring: false };
  new PullThroughCacheRules(stack, 'One', { upstreams: [UpstreamRegistry.quay()], ...scanned });
  expect(() => new PullThroughCacheRules(stack, 'Two', { upstreams: [UpstreamRegistry.kubernetes()], ...scanned }))
    .toThrow(/S\/Two\/Scanning\/RegistryScanning and S\/One\/Scanning\/RegistryScanning both set the scanning configuration of the stack's registry/);
});
