/**
 * A cache imported by its attributes (`PullThroughCacheRules.fromPullThroughCacheRulesAttributes`): what an
 * application team in another CDK app gets, and that it maps and grants exactly as the platform team's construct does.
 */
import { App, Aspects, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import {
  CachedImages, IPullThroughCacheRules, NodeMirrors, PullThroughCacheRules, SharedCache, UpstreamCredentials, UpstreamRegistry,
} from '../src';
import { testApp } from './util';

const ENV = { account: '111122223333', region: 'eu-west-1' };
const DOMAIN = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const PREFIXES = [
  { registry: 'docker.io', ecrRepositoryPrefix: 'docker-hub' },
  { registry: 'quay.io', ecrRepositoryPrefix: 'quay' },
];

function importedIn(app: App = testApp(), attrs: Partial<Parameters<typeof PullThroughCacheRules.fromPullThroughCacheRulesAttributes>[2]> = {}) {
  const stack = new Stack(app, 'ApplicationTeam', { env: ENV });
  const cache = PullThroughCacheRules.fromPullThroughCacheRulesAttributes(stack, 'Cache', { prefixes: PREFIXES, ...attrs });
  return { stack, cache };
}

function pullPolicy(stack: Stack, roleLogicalIdStart: string) {
  const policies = Template.fromStack(stack).findResources('AWS::IAM::Policy');
  const [, policy] = Object.entries(policies).find(([id]) => id.startsWith(roleLogicalIdStart))!;
  return stack.resolve(policy.Properties.PolicyDocument.Statement) as Array<{ Action: string | string[]; Resource: unknown }>;
}

const arn = (region: string, prefix: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:${region}:111122223333:repository/${prefix}/*`]] });

describe('imported by attributes', () => {
  test('imageUri and grantPull give what the platform team\'s own construct gives for the same prefixes', () => {
    const { stack, cache } = importedIn();
    const role = new iam.Role(stack, 'Ci', { assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com') });
    cache.grantPull(role);

    const platform = new Stack(testApp(), 'Platform', { env: ENV });
    const made = new PullThroughCacheRules(platform, 'Cache', {
      upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }), UpstreamRegistry.quay()],
      enableScanning: false,
      enableMonitoring: false,
    });
    const platformRole = new iam.Role(platform, 'Ci', { assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com') });
    made.grantPull(platformRole);

    expect(cache.imageUri('nginx:1.27')).toBe(`${DOMAIN}/docker-hub/library/nginx:1.27`);
    expect(cache.imageUri('quay.io/prometheus/prometheus:v2.53.0')).toBe(made.imageUri('quay.io/prometheus/prometheus:v2.53.0'));
    expect(cache.registryUri).toBe(made.registryUri);
    expect(cache.ecrRepositoryPrefixes).toEqual(made.ecrRepositoryPrefixes);
    expect(pullPolicy(stack, 'CiDefaultPolicy')).toEqual(pullPolicy(platform, 'CiDefaultPolicy'));
    expect(pullPolicy(stack, 'CiDefaultPolicy')[0]).toEqual({
      Effect: 'Allow',
      Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage', 'ecr:BatchImportUpstreamImage', 'ecr:CreateRepository'],
      Resource: [arn('eu-west-1', 'docker-hub'), arn('eu-west-1', 'quay')],
    });
    // nothing of the cache is created in the application team's stack
    const types = Object.values(Template.fromStack(stack).toJSON().Resources).map((r: any) => r.Type);
    expect(types.filter(t => t.startsWith('AWS::ECR') || t.startsWith('Custom::'))).toEqual([]);
  });

  test('a copied prefix is granted pulls only; a tagging cache adds ecr:TagResource to the first pull', () => {
    const { stack, cache } = importedIn(testApp(), {
      prefixes: [...PREFIXES, { registry: 'mcr.microsoft.com', ecrRepositoryPrefix: 'mcr', copiedImages: ['dotnet/runtime:8.0'] }],
      taggedRepositories: true,
    });
    cache.grantPull(new iam.Role(stack, 'Ci', { assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com') }));
    const statements = pullPolicy(stack, 'CiDefaultPolicy');
    expect(statements[0].Action).toContain('ecr:TagResource');
    expect(statements[0].Resource).toEqual([arn('eu-west-1', 'docker-hub'), arn('eu-west-1', 'quay')]);
    expect(statements[2]).toEqual({ Effect: 'Allow', Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'], Resource: arn('eu-west-1', 'mcr') });
    expect(() => cache.imageUri('mcr.microsoft.com/dotnet/sdk:8.0')).toThrow(/the copier copies only dotnet\/runtime:8\.0 into 'mcr'/);
  });

  test('a cache in another Region of the account: its domain and ARNs name that Region', () => {
    const { stack, cache } = importedIn(testApp(), { region: 'us-east-1' });
    cache.grantPull(new iam.Role(stack, 'Ci', { assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com') }));
    expect(cache.imageUri('nginx:1.27')).toBe('111122223333.dkr.ecr.us-east-1.amazonaws.com/docker-hub/library/nginx:1.27');
    expect(pullPolicy(stack, 'CiDefaultPolicy')[0].Resource).toEqual([arn('us-east-1', 'docker-hub'), arn('us-east-1', 'quay')]);
  });

  test('the Aspect moves an application team\'s images to the imported cache and grants the execution role', () => {
    const app = testApp();
    const { stack, cache } = importedIn(app);
    const task = new ecs.FargateTaskDefinition(stack, 'Api', { cpu: 256, memoryLimitMiB: 512 });
    task.addContainer('api', { image: ecs.ContainerImage.fromRegistry('quay.io/prometheus/node-exporter:v1.9.1') });
    Aspects.of(app).add(new CachedImages({ cache }));
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [Match.objectLike({ Image: `${DOMAIN}/quay/prometheus/node-exporter:v1.9.1` })],
    });
    expect(pullPolicy(stack, 'ApiExecutionRoleDefaultPolicy')[0].Resource).toEqual([arn('eu-west-1', 'docker-hub'), arn('eu-west-1', 'quay')]);
    Annotations.fromStack(stack).hasNoError('*', Match.anyValue());
  });

  test('node mirrors work from an imported cache', () => {
    const { cache } = importedIn();
    const mirrors = new NodeMirrors(cache);
    expect(mirrors.mirrors.map(m => [m.registry, m.endpoint])).toEqual([
      ['docker.io', `https://${DOMAIN}/v2/docker-hub`], ['quay.io', `https://${DOMAIN}/v2/quay`],
    ]);
  });

  test('a SharedCache is written where the cache is: an imported cache of another stack is refused', () => {
    const app = testApp();
    const { cache } = importedIn(app);
    const central = new Stack(app, 'Central', { env: ENV });
    expect(() => new SharedCache(central, 'Shared', { cache, accounts: ['444455556666'] }))
      .toThrow(/the cache ApplicationTeam\/Cache is in the stack ApplicationTeam, not in Central: the registry policy is written in the cache's registry/);
  });

  test('what cannot be imported says what was wrong and how to write it', () => {
    expect(() => importedIn(testApp(), { prefixes: [] })).toThrow(/prefixes is empty\. List the cache's prefixes by registry, for example prefixes: \[\{ registry: 'docker\.io', ecrRepositoryPrefix: 'docker-hub' \}\]/);
    expect(() => importedIn(testApp(), { region: 'Ireland' })).toThrow(/region 'Ireland' is not an AWS Region; write it like 'eu-west-1'/);
    expect(() => importedIn(testApp(), {
      prefixes: [{ registry: 'docker.io', ecrRepositoryPrefix: 'hub' }, { registry: 'quay.io', ecrRepositoryPrefix: 'hub', copiedImages: ['a/b:1'] }],
    })).toThrow(/the prefix 'hub' is listed both with and without copiedImages/);
    const { stack, cache } = importedIn();
    expect(() => cache.imageUri('ghcr.io/org/app:1')).toThrow(/no pull through cache rule serves 'ghcr\.io\/org\/app:1'/);
    const immutable = iam.Role.fromRoleArn(stack, 'Fixed', 'arn:aws:iam::111122223333:role/fixed', { mutable: false });
    expect(() => cache.grantPull(immutable)).toThrow(/nothing was granted\. The role is immutable/);
  });

  test('the construct and the import are both IPullThroughCacheRules', () => {
    const { cache } = importedIn();
    const stack = new Stack(testApp(), 'Platform', { env: ENV });
    const made: IPullThroughCacheRules = new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [UpstreamRegistry.quay()], enableScanning: false, enableMonitoring: false,
    });
    for (const c of [cache, made]) {
      expect(c.cacheRepositoryArns().length).toBeGreaterThan(0);
      expect(c.mapping.registryUri).toBe(DOMAIN);
    }
  });
});
