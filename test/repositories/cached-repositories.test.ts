import { BootstraplessSynthesizer, Stack, Stage } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CachedRepositoryRemoval, PullThroughCacheRules, PullThroughCacheRulesProps, UpstreamCredentials, UpstreamRegistry } from '../../src';
import { BACKFILL_RESOURCE_TYPE, CREATED_BY_TAG, TEARDOWN_RESOURCE_TYPE } from '../../src/repositories/contract';
import { lintedTemplates } from '../support/cfn-lint';
import { testApp } from '../util';

const ENV = { account: '111122223333', region: 'eu-west-1' };
const SECRET = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:ecr-pullthroughcache/hub-AbCdEf';
const synth = lintedTemplates();

function cache(props: Partial<PullThroughCacheRulesProps> = {}, name = 'Platform') {
  const stack = new Stack(testApp(), name, { env: ENV });
  const hub = UpstreamCredentials.fromSecret(secretsmanager.Secret.fromSecretCompleteArn(stack, 'Hub', SECRET));
  const rules = new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [UpstreamRegistry.quay(), UpstreamRegistry.dockerHub({ credentials: hub })],
    ...props,
  });
  return { stack, rules };
}

const prefixArn = (prefix: string) => `arn:${'${AWS::Partition}'}:ecr:eu-west-1:111122223333:repository/${prefix}/*`;
const arnOf = (prefix: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:eu-west-1:111122223333:repository/${prefix}`]] });
/** The created-by value of the construct at `path`: its stack's UUID and its address. */
const ownerOf = (stack: Stack, path: string) => ({
  'Fn::Join': ['/', [{ 'Fn::Select': [2, { 'Fn::Split': ['/', { Ref: 'AWS::StackId' }] }] }, stack.node.findChild(path).node.addr]],
});
const logicalIdOf = (template: Template, type: string) => Object.keys(template.findResources(type))[0];
/** The statements of a handler's own policy. */
const statementsOf = (template: Template, handlerId: string) => Object.entries(template.findResources('AWS::IAM::Policy'))
  .filter(([id]) => id.startsWith(handlerId)).flatMap(([, r]) => r.Properties.PolicyDocument.Statement);

describe('the default keeps everything and adds nothing', () => {
  test('no custom resource, no teardown tag on the templates', () => {
    const template = synth(cache().stack, 'default');
    template.resourceCountIs(BACKFILL_RESOURCE_TYPE, 0);
    template.resourceCountIs(TEARDOWN_RESOURCE_TYPE, 0);
    template.hasResourceProperties('AWS::ECR::RepositoryCreationTemplate', { ResourceTags: Match.absent() });
  });
});

describe('backfill', () => {
  const { stack } = cache({
    adoptExistingRepositories: true,
    adoption: { replaceOtherLifecyclePolicies: true },
    repositoryOptions: { resourceTags: [{ key: 'team', value: 'platform' }], maxImageCount: 30 },
  }, 'Backfill');
  const template = synth(stack, 'backfill');

  test('carries the templates\' settings, so a change of any of them runs it again', () => {
    const templateProps = Object.values(template.findResources('AWS::ECR::RepositoryCreationTemplate'))[0].Properties;
    template.hasResourceProperties(BACKFILL_RESOURCE_TYPE, {
      Prefixes: ['quay', 'docker-hub'],
      LifecyclePolicy: templateProps.LifecyclePolicy,
      ResourceTags: [{ Key: 'team', Value: 'platform' }],
      ReplaceOtherLifecyclePolicies: 'true',
      CacheName: Match.stringLikeRegexp('^BackfillCache[0-9A-F]{8}$'),
    });
    expect(templateProps.LifecyclePolicy).toContain('"countNumber":30');
  });

  test('runs after the templates exist (depends on each)', () => {
    const backfill = Object.values(template.findResources(BACKFILL_RESOURCE_TYPE))[0];
    const templates = Object.keys(template.findResources('AWS::ECR::RepositoryCreationTemplate'));
    expect(templates).toHaveLength(2);
    expect(backfill.DependsOn).toEqual(expect.arrayContaining(templates));
  });

  test('changes only <prefix>/*; lists the registry (DescribeRepositories has no name filter); deletes nothing', () => {
    const statements = statementsOf(template, 'EcrCacheRepositoryBackfillHandler');
    expect(statements).toEqual(expect.arrayContaining([
      { Action: 'ecr:DescribeRepositories', Effect: 'Allow', Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ecr:eu-west-1:111122223333:repository/*']] } },
      {
        Action: ['ecr:GetLifecyclePolicy', 'ecr:PutLifecyclePolicy', 'ecr:ListTagsForResource', 'ecr:TagResource', 'ecr:UntagResource'],
        Effect: 'Allow',
        Resource: [arnOf('quay/*'), arnOf('docker-hub/*')],
      },
    ]));
    expect(JSON.stringify(statements)).not.toContain('DeleteRepository');
    expect(prefixArn('quay')).toContain('quay/*');
  });

  test('Node.js 22 on ARM64, 15 minutes, its own log group', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Gives existing ECR pull through cache repositories'),
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Timeout: 900,
      LoggingConfig: { LogGroup: { Ref: Match.stringLikeRegexp('^EcrCacheRepositoryBackfillHandlerLogGroup') } },
    });
  });
});

describe.each([CachedRepositoryRemoval.DESTROY_WITH_IMAGES, CachedRepositoryRemoval.LIST_ONLY])('teardown %s', removal => {
  const { stack } = cache({ cachedRepositoryRemoval: removal, repositoryOptions: { resourceTags: [{ key: 'team', value: 'platform' }] } },
    `Teardown${removal === CachedRepositoryRemoval.LIST_ONLY ? 'List' : 'Destroy'}`);
  const template = synth(stack, `teardown-${removal}`);

  test('the templates tag what they create with the stack\'s and the cache\'s identity, and teardown deletes only that value', () => {
    template.allResourcesProperties('AWS::ECR::RepositoryCreationTemplate', {
      ResourceTags: [{ Key: 'team', Value: 'platform' }, { Key: CREATED_BY_TAG.key, Value: ownerOf(stack, 'Cache') }],
      CustomRoleArn: Match.anyValue(), // ECR needs a custom role to tag
    });
    template.hasResourceProperties(TEARDOWN_RESOURCE_TYPE, { Prefixes: ['quay', 'docker-hub'], Mode: removal, CreatedBy: ownerOf(stack, 'Cache') });
  });

  test('every rule depends on it: CloudFormation deletes the rules first, so nothing re-creates a repository mid-teardown', () => {
    const teardown = logicalIdOf(template, TEARDOWN_RESOURCE_TYPE);
    const rules = { ...template.findResources('AWS::ECR::PullThroughCacheRule'), ...template.findResources('Custom::EcrPullThroughCacheRule') };
    expect(Object.keys(rules)).toHaveLength(2);
    for (const rule of Object.values(rules)) {
      expect(rule.DependsOn).toContain(teardown);
    }
  });

  test(removal === CachedRepositoryRemoval.LIST_ONLY
    ? 'a dry run may not delete: no ecr:DeleteRepository at all'
    : 'deletes only <prefix>/* repositories carrying the templates\' tag (IAM refuses any other)', () => {
    const statements = statementsOf(template, 'EcrCacheRepositoryTeardownHandler');
    expect(statements).toEqual(expect.arrayContaining([
      { Action: 'ecr:DescribePullThroughCacheRules', Effect: 'Allow', Resource: '*' },
    ]));
    expect(statements.filter((s: any) => [s.Action].flat().includes('ecr:DeleteRepository'))).toEqual(
      removal === CachedRepositoryRemoval.LIST_ONLY ? [] : [{
        Action: 'ecr:DeleteRepository',
        Effect: 'Allow',
        Resource: [arnOf('quay/*'), arnOf('docker-hub/*')],
        Condition: { StringEquals: { [`aws:ResourceTag/${CREATED_BY_TAG.key}`]: ownerOf(stack, 'Cache') } },
      }]);
    expect(statements.filter((s: any) => s.Resource === '*').map((s: any) => s.Action)).toEqual(['ecr:DescribePullThroughCacheRules']);
  });

  test('cdk-nag: no finding left unacknowledged', () => {
    const report = new AwsSolutionsChecks(stack.node.root).validateScope(stack);
    expect(report.violations.flatMap(v => v.violatingResources.map(r => `${v.ruleName} at ${r.constructPath}`))).toEqual([]);
  });
});

test('cdk-nag: backfill and teardown together, no finding left unacknowledged', () => {
  const { stack } = cache({ adoptExistingRepositories: true, cachedRepositoryRemoval: CachedRepositoryRemoval.DESTROY_WITH_IMAGES }, 'Both');
  synth(stack, 'both');
  const report = new AwsSolutionsChecks(stack.node.root).validateScope(stack);
  expect(report.violations.flatMap(v => v.violatingResources.map(r => `${v.ruleName} at ${r.constructPath}`))).toEqual([]);
});

test('two caches in a stack share one handler of each kind', () => {
  const { stack } = cache({ adoptExistingRepositories: true, cachedRepositoryRemoval: CachedRepositoryRemoval.DESTROY_WITH_IMAGES }, 'Two');
  new PullThroughCacheRules(stack, 'Other', {
    upstreams: [UpstreamRegistry.ecrPublic()],
    adoptExistingRepositories: true,
    cachedRepositoryRemoval: CachedRepositoryRemoval.LIST_ONLY,
    enableMonitoring: false,
    enableScanning: false,
  });
  const template = synth(stack, 'two');
  template.resourceCountIs(BACKFILL_RESOURCE_TYPE, 2);
  template.resourceCountIs(TEARDOWN_RESOURCE_TYPE, 2);
  template.resourcePropertiesCountIs('AWS::Lambda::Function', { Description: Match.stringLikeRegexp('^Deletes the ECR pull through cache') }, 1);
  template.resourcePropertiesCountIs('AWS::Lambda::Function', { Description: Match.stringLikeRegexp('^Gives existing ECR') }, 1);
  // each cache deletes only its own repositories: its prefixes with its own created-by value, in IAM and in the handler
  const deletes = statementsOf(template, 'EcrCacheRepositoryTeardownHandler').filter((s: any) => s.Action === 'ecr:DeleteRepository');
  // (the LIST_ONLY cache may delete nothing)
  expect(deletes.map((s: any) => [s.Resource, s.Condition.StringEquals[`aws:ResourceTag/${CREATED_BY_TAG.key}`]])).toEqual([
    [[arnOf('quay/*'), arnOf('docker-hub/*')], ownerOf(stack, 'Cache')],
  ]);
  expect(ownerOf(stack, 'Cache')).not.toEqual(ownerOf(stack, 'Other'));
  template.hasResourceProperties(TEARDOWN_RESOURCE_TYPE, { Prefixes: ['ecr-public'], CreatedBy: ownerOf(stack, 'Other') });
});

test('in a Stage, two stacks: each has its own handlers, allowed only its own prefixes', () => {
  const stage = new Stage(testApp(), 'Prod', { env: ENV });
  const stacks = ['quay', 'ghcr'].map(prefix => {
    const stack = new Stack(stage, `Cache-${prefix}`);
    new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [prefix === 'quay' ? UpstreamRegistry.quay() : UpstreamRegistry.ecrPublic({ ecrRepositoryPrefix: prefix })],
      cachedRepositoryRemoval: CachedRepositoryRemoval.DESTROY_WITH_IMAGES,
      enableMonitoring: false,
      enableScanning: false,
    });
    return stack;
  });
  const templates = stacks.map((stack, i) => synth(stack, `stage-${i}`));
  const deletable = (template: Template) => statementsOf(template, 'EcrCacheRepositoryTeardownHandler')
    .filter((s: any) => s.Action === 'ecr:DeleteRepository').flatMap((s: any) => s.Resource);
  expect(deletable(templates[0])).toEqual([arnOf('quay/*')]);
  expect(deletable(templates[1])).toEqual([arnOf('ghcr/*')]);
});

describe('settings that cannot work are refused, with the fix', () => {
  test.each([
    [{ adoption: { replaceOtherLifecyclePolicies: true } }, /adoption options are set, but adoptExistingRepositories is not true/],
    [{ adoptExistingRepositories: true, createRepositoryTemplates: false },
      /adoptExistingRepositories applies the creation templates' settings, but createRepositoryTemplates is false/],
    [{ cachedRepositoryRemoval: CachedRepositoryRemoval.DESTROY_WITH_IMAGES, createRepositoryTemplates: false },
      /cachedRepositoryRemoval DESTROY_WITH_IMAGES deletes only what the creation templates created, but createRepositoryTemplates is false/],
    [{ cachedRepositoryRemoval: CachedRepositoryRemoval.LIST_ONLY, repositoryOptions: { resourceTags: [{ key: CREATED_BY_TAG.key, value: 'x' }] } },
      /resourceTags has the key 'cdk-ecr-pull-through-cache:created-by', which marks the repositories the cache created/],
    [{
      cachedRepositoryRemoval: CachedRepositoryRemoval.DESTROY_WITH_IMAGES,
      repositoryOptions: { resourceTags: Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: 'v' })) },
    },
    /50 resourceTags, and cachedRepositoryRemoval DESTROY_WITH_IMAGES adds the tag 'cdk-ecr-pull-through-cache:created-by' .* Drop one of yours/],
  ])('%#', (props, message) => {
    expect(() => cache(props as Partial<PullThroughCacheRulesProps>)).toThrow(message);
  });

  // a ROOT rule's repositories have no prefix (`library/nginx`): the handlers' `ROOT/*` would adopt and delete
  // nothing while reporting success, and any wider scope is the whole registry
  test.each([
    [{ adoptExistingRepositories: true }, /adoptExistingRepositories/],
    [{ cachedRepositoryRemoval: CachedRepositoryRemoval.DESTROY_WITH_IMAGES }, /cachedRepositoryRemoval DESTROY_WITH_IMAGES/],
    [{ cachedRepositoryRemoval: CachedRepositoryRemoval.LIST_ONLY }, /cachedRepositoryRemoval LIST_ONLY/],
  ])('the ROOT prefix (%#): the whole registry is no cache\'s to adopt or delete', (props, setting) => {
    const stack = new Stack(testApp(), 'Root', { env: ENV });
    expect(() => new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [UpstreamRegistry.quay({ ecrRepositoryPrefix: 'ROOT' })], enableMonitoring: false, enableScanning: false, ...props,
    })).toThrow(new RegExp(`${setting.source}.*the prefix 'ROOT'.* Give the upstream a prefix \\(ecrRepositoryPrefix\\), or leave this off`));
  });

  test('a stack without assets (StackSet member template)', () => {
    const stack = new Stack(testApp(), 'Member', { env: ENV, synthesizer: new BootstraplessSynthesizer() });
    expect(() => new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [UpstreamRegistry.quay()], adoptExistingRepositories: true, enableMonitoring: false, enableScanning: false,
    })).toThrow(/need a bundled Lambda function, which a stack without assets \(a StackSet member template\) cannot hold/);
  });
});
