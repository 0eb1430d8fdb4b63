import { App, BootstraplessSynthesizer, Stack, Stage, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import { organizationExample } from '../examples/organization';
import {
  PullThroughCacheRules, SharedCache, SharedCacheMember, SharedCacheProps, SharedCacheStackSet, UpstreamCredentials, UpstreamRegistry,
} from '../src';
import { testApp } from './util';
import { RULE_RESOURCE_TYPE } from '../src/rules/contract';

const CENTRAL_ENV = { account: '111122223333', region: 'eu-west-1' };
const CENTRAL_URL = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';

function central(app: App = testApp(), props: Partial<SharedCacheProps> = { organizationId: 'o-a1b2c3d4e5' }) {
  const stack = new Stack(app, 'Central', { env: CENTRAL_ENV });
  const cache = new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [UpstreamRegistry.ecrPublic(), UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() })],
    enableScanning: false,
    enableMonitoring: false,
  });
  const shared = new SharedCache(stack, 'Shared', { cache, ...props });
  return { app, stack, cache, shared };
}

const arn = (account: string, region: string, prefix: string) =>
  ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:${region}:${account}:repository/${prefix}/*`]] });

describe('SharedCache (central account)', () => {
  test('one registry policy: the downstream actions, org-scoped, on the cache prefixes only', () => {
    const { stack } = central();
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::ECR::RegistryPolicy', 1);
    template.hasResourceProperties('AWS::ECR::RegistryPolicy', {
      PolicyText: {
        Version: '2012-10-17',
        Statement: [{
          Sid: 'SharedPullThroughCache',
          Effect: 'Allow',
          Principal: { AWS: '*' },
          Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchImportUpstreamImage', 'ecr:GetImageCopyStatus', 'ecr:CreateRepository'],
          Condition: { StringEquals: { 'aws:PrincipalOrgID': 'o-a1b2c3d4e5' } },
          Resource: [arn('111122223333', 'eu-west-1', 'ecr-public'), arn('111122223333', 'eu-west-1', 'docker-hub')],
        }],
      },
    });
  });

  test('organization paths add aws:PrincipalOrgPaths', () => {
    const { stack } = central(testApp(), { organizationId: 'o-a1b2c3d4e5', organizationPaths: ['o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*'] });
    Template.fromStack(stack).hasResourceProperties('AWS::ECR::RegistryPolicy', {
      PolicyText: {
        Statement: [Match.objectLike({
          Condition: {
            'StringEquals': { 'aws:PrincipalOrgID': 'o-a1b2c3d4e5' },
            'ForAnyValue:StringLike': { 'aws:PrincipalOrgPaths': ['o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*'] },
          },
        })],
      },
    });
  });

  test('accounts become account principals, with no condition; additional statements are kept', () => {
    const { stack } = central(testApp(), {
      accounts: ['444455556666'],
      additionalStatements: [new iam.PolicyStatement({
        sid: 'Replication',
        principals: [new iam.AccountPrincipal('777788889999')],
        actions: ['ecr:ReplicateImage'],
        resources: ['arn:aws:ecr:eu-west-1:111122223333:repository/*'],
      })],
    });
    const policy = Object.values(Template.fromStack(stack).findResources('AWS::ECR::RegistryPolicy'))[0];
    const [shared, replication] = policy.Properties.PolicyText.Statement;
    expect(shared.Principal).toEqual({ AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::444455556666:root']] } });
    expect(shared.Condition).toBeUndefined();
    expect(replication.Sid).toBe('Replication');
  });

  test('only the organization form (principal "*" narrowed by conditions) acknowledges AwsSolutions-ECR1', () => {
    const acks = (shared: SharedCache) => shared.policy.node.metadata
      .filter(m => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY).flatMap(m => Object.keys(m.data));
    expect(acks(central().shared)).toEqual(['AwsSolutions-ECR1']);
    expect(acks(central(testApp(), { accounts: ['444455556666'] }).shared)).toEqual([]);
  });

  test.each([
    [{}, /nobody to share with/],
    [{ organizationId: 'o-a1b2c3d4e5', accounts: ['444455556666'] }, /accounts and organizationId\/organizationPaths are both set/],
    [{ organizationId: 'org-1' }, /'org-1' is not an organization id/],
    [{ organizationPaths: ['ou-ab12-11111111'] }, /'ou-ab12-11111111' is not an organization path/],
    [{ accounts: ['4444'] }, /'4444' is not a 12-digit account id/],
  ] as Array<[Partial<SharedCacheProps>, RegExp]>)('refuses %j', (props, message) => {
    expect(() => central(testApp(), props)).toThrow(message);
  });

  test('refuses a ROOT prefix (the grant would be repository/*) and an environment-agnostic stack', () => {
    const stack = new Stack(testApp(), 'Central', { env: CENTRAL_ENV });
    const cache = new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [UpstreamRegistry.ecrPublic({ ecrRepositoryPrefix: 'ROOT' })], enableScanning: false, enableMonitoring: false,
    });
    expect(() => new SharedCache(stack, 'Shared', { cache, organizationId: 'o-a1b2c3d4e5' })).toThrow(/cached under ROOT.*repository\/\*/);
    const agnostic = new Stack(testApp(), 'Agnostic');
    const cache2 = new PullThroughCacheRules(agnostic, 'Cache', { upstreams: [UpstreamRegistry.quay()], enableScanning: false, enableMonitoring: false });
    expect(() => new SharedCache(agnostic, 'Shared', { cache: cache2, organizationId: 'o-a1b2c3d4e5' })).toThrow(/no concrete account and Region/);
  });

  test('a second registry policy in the same account and Region fails synthesis', () => {
    const { stack } = central();
    new ecr.CfnRegistryPolicy(stack, 'MyOwnPolicy', { policyText: { Version: '2012-10-17', Statement: [] } });
    expect(() => Template.fromStack(stack)).toThrow(/Central\/Shared\/Resource and Central\/MyOwnPolicy both set the ECR registry policy of account 111122223333, Region eu-west-1/);
  });

  test('a registry policy in another Region is fine', () => {
    const { app, stack } = central();
    const other = new Stack(app, 'Other', { env: { account: '111122223333', region: 'us-east-1' } });
    new ecr.CfnRegistryPolicy(other, 'Policy', { policyText: { Version: '2012-10-17', Statement: [] } });
    expect(() => Template.fromStack(stack)).not.toThrow();
  });
});

describe('SharedCacheMember (member account)', () => {
  function member(props: { region?: string; account?: string } = {}) {
    const c = central();
    const stack = new Stack(c.app, 'Member', { env: { account: props.account ?? '444455556666', region: props.region ?? 'eu-west-1' } });
    const m = new SharedCacheMember(stack, 'Central', { sharedCache: c.shared });
    return { ...c, memberStack: stack, member: m };
  }

  test('one ECR upstream per central prefix, same prefix downstream, upstream prefix set, with the role', () => {
    const { memberStack, member: m } = member();
    const cache = new PullThroughCacheRules(memberStack, 'Cache', { upstreams: m.upstreams, enableScanning: false, enableMonitoring: false });
    const template = Template.fromStack(memberStack);
    // ECR upstreams: the rule type whose role changes in place (a StackSet member template, with no assets, has the L1)
    template.resourceCountIs(RULE_RESOURCE_TYPE, 2);
    for (const prefix of ['ecr-public', 'docker-hub']) {
      template.hasResourceProperties(RULE_RESOURCE_TYPE, {
        EcrRepositoryPrefix: prefix,
        UpstreamRegistry: 'ecr',
        UpstreamRegistryUrl: CENTRAL_URL,
        UpstreamRepositoryPrefix: prefix,
        CustomRoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^CentralRole'), 'Arn'] },
      });
    }
    // no credentials downstream: they live only in the central account
    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
    expect(cache.imageUri('nginx:1.27')).toBe('444455556666.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/library/nginx:1.27');
    expect(cache.imageUri('public.ecr.aws/nginx/nginx:1.27')).toBe('444455556666.dkr.ecr.eu-west-1.amazonaws.com/ecr-public/nginx/nginx:1.27');
    expect(cache.imageUri(`${CENTRAL_URL}/docker-hub/library/nginx:1.27`))
      .toBe('444455556666.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/library/nginx:1.27');
  });

  test('the role trusts pullthroughcache.ecr.amazonaws.com on behalf of this account only, and is scoped to the shared prefixes; only the token on "*"', () => {
    const { memberStack } = member();
    const template = Template.fromStack(memberStack);
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [{
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'pullthroughcache.ecr.amazonaws.com' },
          Condition: { StringEqualsIfExists: { 'aws:SourceAccount': '444455556666' } },
        }],
      },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [
          {
            Effect: 'Allow',
            Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchImportUpstreamImage', 'ecr:GetImageCopyStatus',
              'ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage'],
            Resource: [
              arn('111122223333', 'eu-west-1', 'ecr-public'), arn('111122223333', 'eu-west-1', 'docker-hub'),
              arn('444455556666', 'eu-west-1', 'ecr-public'), arn('444455556666', 'eu-west-1', 'docker-hub'),
            ],
          },
          // a chained first pull creates the central repository: cross-account, so granted on both sides
          { Effect: 'Allow', Action: 'ecr:CreateRepository', Resource: [arn('111122223333', 'eu-west-1', 'ecr-public'), arn('111122223333', 'eu-west-1', 'docker-hub')] },
          { Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
        ],
      },
    });
  });

  test('CreateRepository is granted on both sides of the cross-account call, on the shared prefixes only', () => {
    const { stack, memberStack } = member();
    const granted = (template: Template, type: string, path: string[]) => Object.values(template.findResources(type))
      .flatMap((r: any) => path.reduce((o, k) => o[k], r.Properties).Statement)
      .filter((st: any) => [st.Action].flat().includes('ecr:CreateRepository'))
      .map((st: any) => [st.Resource].flat());
    expect(granted(Template.fromStack(stack), 'AWS::ECR::RegistryPolicy', ['PolicyText']))
      .toEqual([[arn('111122223333', 'eu-west-1', 'ecr-public'), arn('111122223333', 'eu-west-1', 'docker-hub')]]);
    expect(granted(Template.fromStack(memberStack), 'AWS::IAM::Policy', ['PolicyDocument']))
      .toEqual([[arn('111122223333', 'eu-west-1', 'ecr-public'), arn('111122223333', 'eu-west-1', 'docker-hub')]]);
  });

  test('in a StackSet member stack (no env), the trust condition names the account it is deployed to', () => {
    const c = central();
    const memberStack = new Stack(new Stage(c.app, 'Members'), 'Member', { synthesizer: new BootstraplessSynthesizer() });
    new SharedCacheMember(memberStack, 'Central', { sharedCache: c.shared });
    Template.fromStack(memberStack).hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Condition: { StringEqualsIfExists: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } } })] },
    });
  });

  test('a subset of prefixes; an existing role is used as is', () => {
    const c = central();
    const stack = new Stack(c.app, 'Member', { env: { account: '444455556666', region: 'eu-west-1' } });
    const role = iam.Role.fromRoleArn(stack, 'Existing', 'arn:aws:iam::444455556666:role/ptc');
    const m = new SharedCacheMember(stack, 'Central', { sharedCache: c.shared, ecrRepositoryPrefixes: ['docker-hub'], role });
    expect(m.upstreams.map(u => u.ecrRepositoryPrefix)).toEqual(['docker-hub']);
    expect(m.role).toBe(role);
    Template.fromStack(stack).resourceCountIs('AWS::IAM::Role', 0);
  });

  test('refuses a prefix the central cache does not have (no upstream prefix to pull through)', () => {
    const c = central();
    const stack = new Stack(c.app, 'Member', { env: { account: '444455556666', region: 'eu-west-1' } });
    expect(() => new SharedCacheMember(stack, 'Central', { sharedCache: c.shared, ecrRepositoryPrefixes: ['quay'] }))
      .toThrow(/has no prefix 'quay', so no upstream prefix to pull through. Its prefixes: 'ecr-public', 'docker-hub'/);
  });

  test('refuses the central registry itself (same account and Region), through the existing ECR upstream check', () => {
    const { memberStack, member: m } = member({ account: '111122223333', region: 'eu-west-1' });
    expect(() => new PullThroughCacheRules(memberStack, 'Cache', { upstreams: m.upstreams, enableScanning: false, enableMonitoring: false }))
      .toThrow(/is this stack's own registry; an ECR upstream must be another Region or account/);
  });

  test('the same account in another Region works (a cross-Region cache)', () => {
    const { memberStack, member: m } = member({ account: '111122223333', region: 'us-east-1' });
    const cache = new PullThroughCacheRules(memberStack, 'Cache', { upstreams: m.upstreams, enableScanning: false, enableMonitoring: false });
    expect(cache.imageUri('nginx:1.27')).toBe('111122223333.dkr.ecr.us-east-1.amazonaws.com/docker-hub/library/nginx:1.27');
  });

  test('refuses a prefix clash with a local upstream', () => {
    const { memberStack, member: m } = member();
    expect(() => new PullThroughCacheRules(memberStack, 'Cache', {
      upstreams: [...m.upstreams, UpstreamRegistry.quay({ ecrRepositoryPrefix: 'docker-hub' })], enableScanning: false, enableMonitoring: false,
    })).toThrow(/the cache prefix 'docker-hub' is used by both 111122223333.dkr.ecr.eu-west-1.amazonaws.com and quay.io/);
  });

  test('refuses a local upstream for a registry the shared cache already serves', () => {
    const { memberStack, member: m } = member();
    expect(() => new PullThroughCacheRules(memberStack, 'Cache', {
      upstreams: [...m.upstreams, UpstreamRegistry.ecrPublic({ ecrRepositoryPrefix: 'local-ecr-public' })], enableScanning: false, enableMonitoring: false,
    })).toThrow(/public.ecr.aws images would be served twice: through the shared cache .* \(prefix 'ecr-public'\) and by the upstream with prefix 'local-ecr-public'/);
  });

  test('a local upstream for another registry sits beside the shared ones', () => {
    const { memberStack, member: m } = member();
    const cache = new PullThroughCacheRules(memberStack, 'Cache', {
      upstreams: [...m.upstreams, UpstreamRegistry.quay()], enableScanning: false, enableMonitoring: false,
    });
    expect(cache.imageUri('quay.io/prometheus/prometheus:v3.0.0')).toBe('444455556666.dkr.ecr.eu-west-1.amazonaws.com/quay/prometheus/prometheus:v3.0.0');
  });

  test('a hand-written ECR upstream on the shared cache without an upstream prefix fails synthesis', () => {
    const c = central();
    const stack = new Stack(c.app, 'Member', { env: { account: '444455556666', region: 'eu-west-1' } });
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('pullthroughcache.ecr.amazonaws.com') });
    new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [UpstreamRegistry.ecr({ registryUrl: CENTRAL_URL, role, ecrRepositoryPrefix: 'central' })], enableScanning: false, enableMonitoring: false,
    });
    expect(() => Template.fromStack(stack)).toThrow(/its upstreamRepositoryPrefix is missing \(the whole registry\); the shared cache grants only 'ecr-public', 'docker-hub'/);
  });
});

describe('SharedCacheStackSet', () => {
  function memberStage(app: App, synthesizer = new BootstraplessSynthesizer()) {
    return new Stack(new Stage(app, 'Member'), 'Cache', { synthesizer });
  }

  test('service-managed, auto-deployment on, the member template inline', () => {
    const { central: stack, member } = organizationExample(testApp());
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::CloudFormation::StackSet', 1);
    template.hasResourceProperties('AWS::CloudFormation::StackSet', {
      StackSetName: 'ecr-pull-through-cache-members',
      PermissionModel: 'SERVICE_MANAGED',
      AutoDeployment: { Enabled: true, RetainStacksOnAccountRemoval: false },
      CallAs: 'SELF',
      Capabilities: ['CAPABILITY_IAM'],
      StackInstancesGroup: [{ DeploymentTargets: { OrganizationalUnitIds: ['ou-ab12-workload1'] }, Regions: ['eu-west-1', 'us-east-1'] }],
      OperationPreferences: { MaxConcurrentPercentage: 25, FailureTolerancePercentage: 10, RegionConcurrencyType: 'PARALLEL' },
    });
    const body = JSON.parse(Object.values(template.findResources('AWS::CloudFormation::StackSet'))[0].Properties.TemplateBody);
    expect(body).toEqual(Template.fromStack(member).toJSON());
    // asset-free and bootstrap-free: no Lambda, no BootstrapVersion parameter
    expect(body.Parameters).toBeUndefined();
    expect(Object.values<any>(body.Resources).map(r => r.Type).sort()).toEqual([
      'AWS::ECR::PullThroughCacheRule', 'AWS::ECR::PullThroughCacheRule', 'AWS::ECR::PullThroughCacheRule', 'AWS::ECR::PullThroughCacheRule',
      'AWS::ECR::RepositoryCreationTemplate', 'AWS::ECR::RepositoryCreationTemplate', 'AWS::ECR::RepositoryCreationTemplate', 'AWS::ECR::RepositoryCreationTemplate',
      'AWS::IAM::Policy', 'AWS::IAM::Role',
    ]);
  });

  test('refuses a member stack in the same stage, with a bootstrapped synthesizer, or with an env', () => {
    const { app, stack } = central();
    const sameStage = new Stack(app, 'SameStage', { synthesizer: new BootstraplessSynthesizer() });
    expect(() => new SharedCacheStackSet(stack, 'A', { memberStack: sameStage, organizationalUnitIds: ['ou-ab12-11111111'], regions: ['eu-west-1'] }))
      .toThrow(/is in the same stage as this StackSet.*Create it in a Stage of its own/);
    const bootstrapped = new Stack(new Stage(app, 'M1'), 'Cache');
    expect(() => new SharedCacheStackSet(stack, 'B', { memberStack: bootstrapped, organizationalUnitIds: ['ou-ab12-11111111'], regions: ['eu-west-1'] }))
      .toThrow(/uses DefaultStackSynthesizer.*synthesizer: new BootstraplessSynthesizer\(\)/);
    const withEnv = new Stack(new Stage(app, 'M2'), 'Cache', { synthesizer: new BootstraplessSynthesizer(), env: CENTRAL_ENV });
    expect(() => new SharedCacheStackSet(stack, 'C', { memberStack: withEnv, organizationalUnitIds: ['ou-ab12-11111111'], regions: ['eu-west-1'] }))
      .toThrow(/has a concrete account or Region/);
    const ok = memberStage(app);
    expect(() => new SharedCacheStackSet(stack, 'D', { memberStack: ok, organizationalUnitIds: [], regions: ['eu-west-1'] }))
      .toThrow(/organizationalUnitIds and regions must each list at least one value/);
    expect(() => new SharedCacheStackSet(stack, 'E', { memberStack: ok, organizationalUnitIds: ['ou-ab12-11111111'], regions: ['eu-west-1'], maxConcurrentPercentage: 150 }))
      .toThrow(/maxConcurrentPercentage is 150; it is a whole percentage from 0 to 100/);
  });

  test('scanning or monitoring in the member stack is refused at synth (their Lambda code is an asset)', () => {
    const { app, stack, shared } = central();
    const member = memberStage(app);
    const m = new SharedCacheMember(member, 'Central', { sharedCache: shared });
    expect(() => new PullThroughCacheRules(member, 'Cache', { upstreams: m.upstreams })).toThrow(/BootstraplessSynthesizer|assets/);
    void stack;
  });
});
