// The README's and docs/'s quantitative and "never" claims, each checked against what the construct synthesizes.
// A claim changed in the code fails here first: change the sentence quoted in the test's name with it.
import { readFileSync } from 'fs';
import { join } from 'path';
import { CfnOutput, RemovalPolicy, Stack, Stage } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eksClassic from 'aws-cdk-lib/aws-eks';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { PullThroughCacheRules, PullThroughCacheRulesProps, UpstreamCredentials, UpstreamRegistry } from '../src';
import { testApp } from './util';

const ENV = { account: '111122223333', region: 'eu-west-1' };

function synth(props: PullThroughCacheRulesProps): { stack: Stack; cache: PullThroughCacheRules; template: Template } {
  const stack = new Stack(testApp(), 'Claims', { env: ENV });
  const cache = new PullThroughCacheRules(stack, 'Cache', props);
  return { stack, cache, template: Template.fromStack(stack) };
}

/** The construct ids of the stack's CloudWatch alarms, sorted. */
function alarmIds(stack: Stack): string[] {
  return stack.node.findAll()
    .filter(c => (c.node.defaultChild as { cfnResourceType?: string } | undefined)?.cfnResourceType === 'AWS::CloudWatch::Alarm')
    .map(c => c.node.id)
    .sort();
}

describe('README Before you start: the floors are package.json\'s peer dependencies', () => {
  test('aws-cdk-lib and constructs', () => {
    const root = join(__dirname, '..');
    const peers = JSON.parse(readFileSync(join(root, 'package.json'), 'utf-8')).peerDependencies as Record<string, string>;
    const readme = readFileSync(join(root, 'README.md'), 'utf-8');
    const floor = (name: string) => /^\^(\d+\.\d+\.\d+)$/.exec(peers[name])?.[1];
    expect(floor('aws-cdk-lib')).toBeDefined();
    expect(readme).toContain(`\`aws-cdk-lib\` ${floor('aws-cdk-lib')} or newer`);
    expect(readme).toContain(`\`constructs\` ${floor('constructs')} or newer`);
  });
});

describe('README Minimal example: "What it creates"', () => {
  test('55 resources: 3 rules and templates, 3 functions, 7 EventBridge rules, 2 topics, 5 alarms, a dashboard, no repository', () => {
    const stack = new Stack(testApp(), 'Minimal', { env: ENV });
    const nodeRole = iam.Role.fromRoleName(stack, 'NodeRole', 'nodes');
    new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [UpstreamRegistry.ecrPublic(), UpstreamRegistry.kubernetes(), UpstreamRegistry.quay()],
      nodeRoles: [nodeRole],
    });
    const resources = Object.values(Template.fromStack(stack).toJSON().Resources) as Array<{ Type: string }>;
    const count = (type: string) => resources.filter(r => r.Type === type).length;
    expect(resources).toHaveLength(55);
    expect([
      count('AWS::ECR::PullThroughCacheRule'), count('AWS::ECR::RepositoryCreationTemplate'), count('AWS::Lambda::Function'),
      count('AWS::Events::Rule'), count('AWS::SNS::Topic'), count('AWS::CloudWatch::Alarm'), count('AWS::CloudWatch::Dashboard'),
      count('AWS::SQS::Queue'), count('AWS::Logs::LogGroup'), count('AWS::ECR::Repository'),
    ]).toEqual([3, 3, 3, 7, 2, 5, 1, 3, 3, 0]);
  });
});

describe('README: "4 to 6 alarms, by options"', () => {
  const ALWAYS = ['DeadLetters', 'EventsGivenUp', 'HandlerErrors', 'SyncFailures'];

  test.each([
    ['scanning off, anonymous upstreams', { upstreams: [UpstreamRegistry.quay()], enableScanning: false }, ALWAYS],
    ['the defaults, anonymous upstreams (scanning adds CriticalFindings)', { upstreams: [UpstreamRegistry.quay()] },
      [...ALWAYS, 'CriticalFindings']],
    ['an upstream with credentials (adds the CredentialCheck canary\'s alarm)',
      { upstreams: [UpstreamRegistry.quay(), UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() })] },
      [...ALWAYS, 'CriticalFindings', 'CredentialCheck']],
  ])('%s', (_name, props, expected) => {
    const { stack, cache, template } = synth(props as PullThroughCacheRulesProps);
    expect(alarmIds(stack)).toEqual([...expected].sort());
    template.resourceCountIs('AWS::CloudWatch::Alarm', expected.length);
    expect(cache.monitoring!.alarms).toHaveLength(expected.length);
  });

  test('monitoring off: no alarm at all', () => {
    const { template } = synth({ upstreams: [UpstreamRegistry.quay()], enableMonitoring: false });
    template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
  });
});

describe('README: "no handler reserves concurrency by default; a copy mirror reserves its copies plus 3"', () => {
  function reserved(template: Template): Record<string, unknown> {
    const functions = template.findResources('AWS::Lambda::Function');
    return Object.fromEntries(Object.entries(functions)
      .filter(([, f]) => f.Properties.ReservedConcurrentExecutions !== undefined)
      .map(([id, f]) => [id, f.Properties.ReservedConcurrentExecutions]));
  }

  test('the defaults, with a credential (scanning, monitoring and the rule handler), reserve nothing', () => {
    const { template } = synth({
      upstreams: [UpstreamRegistry.ecrPublic(), UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() })],
    });
    expect(Object.keys(template.findResources('AWS::Lambda::Function')).length).toBeGreaterThanOrEqual(4);
    expect(reserved(template)).toEqual({});
  });

  test('the copier\'s function reserves 5 by default (2 copies, 2 redrive pollers, 1 scheduled run)', () => {
    const { template } = synth({
      upstreams: [UpstreamRegistry.copied({ registryUrl: 'mcr.microsoft.com', images: ['dotnet/runtime:8.0'] })],
    });
    expect(Object.values(reserved(template))).toEqual([5]);
  });

  test('copier: { reserveConcurrency: false } reserves nothing, for an account that cannot reserve', () => {
    const { template } = synth({
      upstreams: [UpstreamRegistry.copied({ registryUrl: 'mcr.microsoft.com', images: ['dotnet/runtime:8.0'] })],
      copier: { reserveConcurrency: false },
    });
    expect(reserved(template)).toEqual({});
  });
});

describe('README: "a created secret is deleted with the stack, at once: CloudFormation skips the recovery window"', () => {
  // CloudFormation deletes an AWS::SecretsManager::Secret without recovery (ForceDeleteWithoutRecovery), whatever
  // Secrets Manager's own 7-30 day default: aws-cloudformation/cloudformation-coverage-roadmap#1999 and #838.
  // So what the README promises rests on the DeletionPolicy the construct writes.
  function secretPolicies(props: Parameters<typeof UpstreamCredentials.createSecret>[0]) {
    const { template } = synth({ upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret(props) })] });
    const secrets = Object.values(template.findResources('AWS::SecretsManager::Secret'));
    expect(secrets).toHaveLength(1);
    return { deletion: secrets[0].DeletionPolicy, replace: secrets[0].UpdateReplacePolicy };
  }

  test('by default it is kept (and the token in it) when the stack or the upstream goes', () => {
    expect(secretPolicies(undefined)).toEqual({ deletion: 'Retain', replace: 'Retain' });
  });

  test('removalPolicy DESTROY deletes it with the stack, at once', () => {
    expect(secretPolicies({ removalPolicy: RemovalPolicy.DESTROY })).toEqual({ deletion: 'Delete', replace: 'Delete' });
  });
});

describe('README: addNodegroup is one call on an aws-eks-v2 cluster, and acknowledges only its own policy', () => {
  function clusterStack() {
    const stack = new Stack(testApp(), 'Nodes', { env: ENV });
    const cache = new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [UpstreamRegistry.quay()], enableScanning: false, enableMonitoring: false,
    });
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
      vpcId: 'vpc-0123456789abcdef0',
      availabilityZones: ['eu-west-1a', 'eu-west-1b'],
      privateSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
    });
    return { stack, cache, vpc };
  }

  /** cdk-nag's IAM5 findings, as "<finding id> at <construct path>" (run on the scope, as in nag.test.ts). */
  function iam5(stack: Stack): string[] {
    const report = new AwsSolutionsChecks(stack.node.root).validateScope(stack);
    return report.violations.filter(v => v.ruleName.startsWith('AwsSolutions-IAM5'))
      .flatMap(v => v.violatingResources.map(r => `${v.ruleName} at ${r.constructPath}`));
  }

  test('it takes an aws-eks-v2 cluster; a classic aws-eks cluster does not type-check', () => {
    const { stack, cache, vpc } = clusterStack();
    const cluster = eks.Cluster.fromClusterAttributes(stack, 'Cluster', { clusterName: 'platform', vpc });
    cache.nodeMirrors().addNodegroup(cluster, 'Nodes', { amiType: eks.NodegroupAmiType.AL2023_X86_64_STANDARD });
    Template.fromStack(stack).resourceCountIs('AWS::EKS::Nodegroup', 1);

    const classic = eksClassic.Cluster.fromClusterAttributes(stack, 'Classic', { clusterName: 'classic', vpc });
    // The README's "Classic aws-eks clusters" example is the way there: userData(amiType) in a launch template.
    // @ts-expect-error a classic aws-eks ICluster is not an aws-eks-v2 ICluster (test/tsconfig.json type-checks this)
    const typedAway: eks.ICluster = classic;
    expect(typedAway).toBe(classic);
  });

  test('docs/NODE-MIRRORS.md\'s classic aws-eks path: userData in a launch template of your own, and grantPull', () => {
    const { stack, cache, vpc } = clusterStack();
    const classicCluster = eksClassic.Cluster.fromClusterAttributes(stack, 'Classic', { clusterName: 'classic', vpc });
    const launchTemplate = new ec2.LaunchTemplate(stack, 'MirrorLaunchTemplate', {
      userData: cache.nodeMirrors().userData(eks.NodegroupAmiType.AL2023_X86_64_STANDARD),
    });
    const nodegroup = new eksClassic.Nodegroup(stack, 'ClassicNodes', {
      cluster: classicCluster,
      amiType: eksClassic.NodegroupAmiType.AL2023_X86_64_STANDARD,
      launchTemplateSpec: { id: launchTemplate.launchTemplateId!, version: launchTemplate.latestVersionNumber },
    });
    cache.grantPull(nodegroup.role);
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({ UserData: { 'Fn::Base64': cache.nodeMirrors().al2023UserData() } }),
    });
    template.hasResourceProperties('AWS::EKS::Nodegroup', { AmiType: 'AL2023_x86_64_STANDARD', LaunchTemplate: Match.objectLike({}) });
    const statements = JSON.stringify(template.findResources('AWS::IAM::Policy'));
    expect(statements).toContain('ecr:BatchImportUpstreamImage');
    expect(statements).toContain(':ecr:eu-west-1:111122223333:repository/quay/*');
  });

  test('its grant is a policy of its own, which alone carries the acknowledgements: a "*" you add to the node role is still reported', () => {
    const { stack, cache, vpc } = clusterStack();
    const cluster = eks.Cluster.fromClusterAttributes(stack, 'Cluster', { clusterName: 'platform', vpc });
    const nodegroup = cache.nodeMirrors().addNodegroup(cluster, 'Nodes', { amiType: eks.NodegroupAmiType.AL2023_X86_64_STANDARD });
    // with nothing of yours, the grant's two wildcards are acknowledged: no IAM5 finding at all
    expect(iam5(stack)).toEqual([]);
    // your statements, added to the node role afterwards (its default policy) and in a policy of your own: both reported
    nodegroup.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ec2:DescribeInstances'], resources: ['*'] }));
    nodegroup.role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:GetObject'], resources: ['arn:aws:s3:::build-cache/*'],
    }));
    new iam.Policy(stack, 'Yours', {
      roles: [nodegroup.role],
      statements: [new iam.PolicyStatement({ actions: ['ec2:DescribeVolumes'], resources: ['*'] })],
    });
    expect(iam5(stack).sort()).toEqual([
      'AwsSolutions-IAM5[Resource::*] at Nodes/Cluster/Nodes/NodeGroupRole/DefaultPolicy/Resource',
      'AwsSolutions-IAM5[Resource::*] at Nodes/Yours/Resource',
      'AwsSolutions-IAM5[Resource::arn:aws:s3:::build-cache/*] at Nodes/Cluster/Nodes/NodeGroupRole/DefaultPolicy/Resource',
    ]);
    // the grant is in Nodes/CachePullPolicy, on the node role, and nowhere else
    const policies = Template.fromStack(stack).findResources('AWS::IAM::Policy');
    const granting = Object.entries(policies).filter(([, p]) => JSON.stringify(p).includes('ecr:BatchImportUpstreamImage')).map(([id]) => id);
    expect(granting).toEqual([expect.stringMatching(/^ClusterNodesCachePullPolicy/)]);
    expect(policies[granting[0]].Properties.Roles).toEqual([{ Ref: expect.stringMatching(/^ClusterNodesNodeGroupRole/) }]);
  });

  test('grantPull on a role of yours acknowledges nothing: both wildcards are reported for you', () => {
    const { stack, cache } = clusterStack();
    const role = new iam.Role(stack, 'BuildRole', { assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com') });
    cache.grantPull(role);
    expect(iam5(stack).sort()).toEqual([
      'AwsSolutions-IAM5[Resource::*] at Nodes/BuildRole/DefaultPolicy/Resource',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:eu-west-1:111122223333:repository/quay/*] at Nodes/BuildRole/DefaultPolicy/Resource',
    ]);
  });
});

describe('README Deletion: "cdk destroy leaves the log groups, the created secret and ECR\'s repositories, and deletes the rest"', () => {
  test('the defaults with a created secret: only the log groups and the secret are retained', () => {
    const { template } = synth({
      upstreams: [UpstreamRegistry.quay(), UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() })],
    });
    const resources = Object.values(template.toJSON().Resources) as Array<{ Type: string; DeletionPolicy?: string }>;
    const retained = resources.filter(r => r.DeletionPolicy === 'Retain' || r.DeletionPolicy === 'Snapshot').map(r => r.Type);
    expect(retained.length).toBeGreaterThanOrEqual(4); // scan trigger, findings reporter, health, rule handler
    expect(new Set(retained)).toEqual(new Set(['AWS::Logs::LogGroup', 'AWS::SecretsManager::Secret']));
    // and nothing creates a repository: ECR creates each on its first pull, outside the stack
    template.resourceCountIs('AWS::ECR::Repository', 0);
    for (const type of ['AWS::SNS::Topic', 'AWS::ECR::PullThroughCacheRule', 'AWS::SQS::Queue']) {
      const ofType = resources.filter(r => r.Type === type);
      expect(ofType.every(r => r.DeletionPolicy === undefined || r.DeletionPolicy === 'Delete')).toBe(true);
    }
  });
});

describe('README Multi-stack apps: a cache used from another stack of the app, same environment', () => {
  test('imageUri and grantPull in another stack make no cross-stack reference', () => {
    const app = testApp();
    const env = { account: '111122223333', region: 'eu-west-1' };
    const platform = new Stack(app, 'Platform', { env });
    const cache = new PullThroughCacheRules(platform, 'Cache', { upstreams: [UpstreamRegistry.ecrPublic()] });
    const service = new Stack(app, 'Service', { env });
    const role = new iam.Role(service, 'ExecutionRole', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    const uri = cache.imageUri('public.ecr.aws/nginx/nginx:1.27');
    cache.grantPull(role);
    expect(service.resolve(uri)).toBe('111122223333.dkr.ecr.eu-west-1.amazonaws.com/ecr-public/nginx/nginx:1.27');
    const json = JSON.stringify(Template.fromStack(service).toJSON());
    expect(json).not.toContain('Fn::ImportValue');
    expect(json).toContain('arn:');
    expect(json).toContain(':ecr:eu-west-1:111122223333:repository/ecr-public/*');
    expect(service.dependencies).toEqual([]);
  });

  test('the same across two Stages (as CDK Pipelines deploys them): nothing crosses the Stage boundary', () => {
    const app = testApp();
    const env = { account: '111122223333', region: 'eu-west-1' };
    const platform = new Stack(new Stage(app, 'PlatformStage', { env }), 'Platform');
    const cache = new PullThroughCacheRules(platform, 'Cache', { upstreams: [UpstreamRegistry.ecrPublic()] });
    const service = new Stack(new Stage(app, 'ServiceStage', { env }), 'Service');
    const role = new iam.Role(service, 'ExecutionRole', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    cache.grantPull(role);
    new CfnOutput(service, 'Image', { value: cache.imageUri('public.ecr.aws/nginx/nginx:1.27') });
    const json = JSON.stringify(Template.fromStack(service).toJSON());
    expect(json).toContain('111122223333.dkr.ecr.eu-west-1.amazonaws.com/ecr-public/nginx/nginx:1.27');
    expect(json).not.toContain('Fn::ImportValue');
    expect(() => app.synth()).not.toThrow();
  });
});

