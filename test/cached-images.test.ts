import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { Aspects, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import { CachedImages, PullThroughCacheRules, UnservedImageLevel, UpstreamCredentials, UpstreamRegistry } from '../src';
import { testApp } from './util';

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';

function setup() {
  const app = testApp();
  const stack = new Stack(app, 'Apps', { env: { account: '111122223333', region: 'eu-west-1' } });
  const cache = new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }), UpstreamRegistry.quay()],
  });
  return { app, stack, cache };
}

function cluster(stack: Stack): eks.Cluster {
  return new eks.Cluster(stack, 'Cluster', {
    version: eks.KubernetesVersion.V1_33,
    defaultCapacity: 0,
    defaultCapacityType: eks.DefaultCapacityType.NODEGROUP,
    kubectlProviderOptions: { kubectlLayer: new KubectlV35Layer(stack, 'Kubectl') },
  });
}

describe('ECS task definitions', () => {
  test('every container definition is rewritten, and the execution role may pull from the cache', () => {
    const { app, stack, cache } = setup();
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    task.addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 512 });
    task.addContainer('metrics', { image: ecs.ContainerImage.fromRegistry('quay.io/prometheus/nginx-exporter:1.3.0'), memoryLimitMiB: 128 });
    task.addContainer('own', { image: ecs.ContainerImage.fromEcrRepository(new ecr.Repository(stack, 'Repo')), memoryLimitMiB: 128 });
    Aspects.of(app).add(new CachedImages({ cache }));

    const template = Template.fromStack(stack);
    const containers = Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0].Properties.ContainerDefinitions;
    expect(containers[0].Image).toBe(`${REGISTRY}/docker-hub/library/nginx:1.27`);
    expect(containers[1].Image).toBe(`${REGISTRY}/quay/prometheus/nginx-exporter:1.3.0`);
    expect(Object.keys(containers[2].Image)).toEqual(['Fn::Join']); // its own ECR repository: untouched
    template.hasResourceProperties('AWS::ECS::TaskDefinition', { ExecutionRoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^TaskExecutionRole'), 'Arn'] } });
    const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
    expect(statements).toContainEqual(expect.objectContaining({
      Action: expect.arrayContaining(['ecr:BatchImportUpstreamImage']),
      Resource: expect.arrayContaining([{ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ecr:eu-west-1:111122223333:repository/docker-hub/*']] }]),
    }));
  });

  test('an image the cache cannot serve is an error by default, a warning on request, and is never rewritten', () => {
    for (const [level, find] of [[undefined, 'findError'], [UnservedImageLevel.WARNING, 'findWarning']] as const) {
      const { app, stack, cache } = setup();
      const task = new ecs.FargateTaskDefinition(stack, 'Task');
      task.addContainer('dotnet', { image: ecs.ContainerImage.fromRegistry('mcr.microsoft.com/dotnet/aspnet:8.0'), memoryLimitMiB: 512 });
      task.addContainer('gh', { image: ecs.ContainerImage.fromRegistry('ghcr.io/org/app:1'), memoryLimitMiB: 512 });
      Aspects.of(app).add(new CachedImages({ cache, unservedImages: level }));
      app.synth();
      const messages = Annotations.fromStack(stack)[find]('*', Match.anyValue()).map(m => String(m.entry.data));
      expect(messages).toEqual(expect.arrayContaining([
        expect.stringMatching(/container dotnet: 'mcr\.microsoft\.com\/dotnet\/aspnet:8\.0' is not served by the pull through cache: ECR cannot pull through/),
        expect.stringMatching(/container gh: 'ghcr\.io\/org\/app:1' is not served by the pull through cache: no cache prefix for ghcr\.io/),
      ]));
      const containers = Object.values(Template.fromStack(stack).findResources('AWS::ECS::TaskDefinition'))[0].Properties.ContainerDefinitions;
      expect(containers.map((c: any) => c.Image)).toEqual(['mcr.microsoft.com/dotnet/aspnet:8.0', 'ghcr.io/org/app:1']);
    }
  });

  test('report-only mode changes nothing and says what would move', () => {
    const { app, stack, cache } = setup();
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    task.addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 512 });
    Aspects.of(app).add(new CachedImages({ cache, reportOnly: true }));
    const template = Template.fromStack(stack);
    expect(Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0].Properties.ContainerDefinitions[0].Image).toBe('nginx:1.27');
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp(`'nginx:1.27' would be pulled through the cache as ${REGISTRY}/docker-hub/library/nginx:1.27`))).toHaveLength(1);
    // the task role only: no execution role was added (the cache's handlers have their own)
    expect(Object.keys(template.findResources('AWS::IAM::Role')).filter(id => !/^(Cache(Scanning|Monitoring)|EcrPullThroughCacheRuleHandler)/.test(id))).toHaveLength(1);
  });
});

describe('EKS manifests and Helm charts', () => {
  const podSpec = (image: string) => ({ containers: [{ name: 'c', image }], initContainers: [{ name: 'i', image: 'busybox:1.36' }] });

  test('every pod template shape in a KubernetesManifest is rewritten', () => {
    const { app, stack, cache } = setup();
    cluster(stack).addManifest('Workloads',
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: podSpec('nginx:1.27') },
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { template: { spec: podSpec('quay.io/org/app:1') } } },
      { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'c' }, spec: { jobTemplate: { spec: { template: { spec: podSpec('bitnami/kubectl:1.31') } } } } },
    );
    Aspects.of(app).add(new CachedImages({ cache }));
    const manifest = JSON.parse(Object.values(Template.fromStack(stack).findResources('Custom::AWSCDK-EKS-KubernetesResource'))[0].Properties.Manifest);
    expect(manifest[0].spec.containers[0].image).toBe(`${REGISTRY}/docker-hub/library/nginx:1.27`);
    expect(manifest[0].spec.initContainers[0].image).toBe(`${REGISTRY}/docker-hub/library/busybox:1.36`);
    expect(manifest[1].spec.template.spec.containers[0].image).toBe(`${REGISTRY}/quay/org/app:1`);
    expect(manifest[2].spec.jobTemplate.spec.template.spec.containers[0].image).toBe(`${REGISTRY}/docker-hub/bitnami/kubectl:1.31`);
    expect(manifest[1].metadata).toMatchObject({ name: 'd' });
  });

  test('Helm values: image.registry / image.repository maps and plain image strings', () => {
    const { app, stack, cache } = setup();
    cluster(stack).addHelmChart('Redis', {
      chart: 'redis',
      repository: 'oci://registry-1.docker.io/bitnamicharts',
      values: {
        image: { registry: 'docker.io', repository: 'bitnami/redis', tag: '7.4.1' },
        metrics: { image: { repository: 'quay.io/oliver006/redis_exporter', tag: 'v1.62.0' } },
        sidecar: { image: 'busybox:1.36' },
        other: { image: { repository: 'mcr.microsoft.com/mssql/server', tag: '2022-latest' } },
        replicas: 3,
      },
    });
    Aspects.of(app).add(new CachedImages({ cache, unservedImages: UnservedImageLevel.WARNING }));
    const values = JSON.parse(Object.values(Template.fromStack(stack).findResources('Custom::AWSCDK-EKS-HelmChart'))[0].Properties.Values);
    expect(values).toEqual({
      image: { registry: REGISTRY, repository: 'docker-hub/bitnami/redis', tag: '7.4.1' },
      // the chart's own default registry (docker.io) must not go in front of the cache: it is emptied
      metrics: { image: { repository: `${REGISTRY}/quay/oliver006/redis_exporter`, tag: 'v1.62.0', registry: '' } },
      sidecar: { image: `${REGISTRY}/docker-hub/library/busybox:1.36` },
      other: { image: { repository: 'mcr.microsoft.com/mssql/server', tag: '2022-latest' } },
      replicas: 3,
      global: { security: { allowInsecureImages: true } }, // Bitnami charts refuse relocated images without it
    });
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp("other\\.image: 'mcr\\.microsoft\\.com/mssql/server:2022-latest' is not served"))).toHaveLength(1);
  });

  test('report-only mode leaves manifests alone and lists what would move', () => {
    const { app, stack, cache } = setup();
    cluster(stack).addManifest('Pod', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: podSpec('nginx:1.27') });
    Aspects.of(app).add(new CachedImages({ cache, reportOnly: true }));
    const manifest = JSON.parse(Object.values(Template.fromStack(stack).findResources('Custom::AWSCDK-EKS-KubernetesResource'))[0].Properties.Manifest);
    expect(manifest[0].spec.containers[0].image).toBe('nginx:1.27');
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('would be pulled through the cache')).map(w => String(w.entry.data));
    expect(warnings).toEqual([
      `Manifest Pod/p spec.containers[0].image: 'nginx:1.27' would be pulled through the cache as ${REGISTRY}/docker-hub/library/nginx:1.27`,
      `Manifest Pod/p spec.initContainers[0].image: 'busybox:1.36' would be pulled through the cache as ${REGISTRY}/docker-hub/library/busybox:1.36`,
    ].map(w => expect.stringContaining(w)));
  });

  test('Helm global.imageRegistry: every image moves, or none', () => {
    const { app, stack, cache } = setup();
    const c = cluster(stack);
    c.addHelmChart('Served', { chart: 'a', values: { global: { imageRegistry: 'docker.io' }, image: { repository: 'bitnami/redis', tag: '7' } } });
    c.addHelmChart('Mixed', { chart: 'b', values: { global: { imageRegistry: 'registry.access.redhat.com' }, image: { repository: 'ubi9/ubi', tag: '9' } } });
    Aspects.of(app).add(new CachedImages({ cache, unservedImages: UnservedImageLevel.WARNING }));
    const charts = Object.values(Template.fromStack(stack).findResources('Custom::AWSCDK-EKS-HelmChart')).map((r: any) => [r.Properties.Chart, JSON.parse(r.Properties.Values)]);
    expect(Object.fromEntries(charts)).toEqual({
      a: { global: { imageRegistry: REGISTRY, security: { allowInsecureImages: true } }, image: { repository: 'docker-hub/bitnami/redis', tag: '7' } },
      b: { global: { imageRegistry: 'registry.access.redhat.com' }, image: { repository: 'ubi9/ubi', tag: '9' } },
    });
  });
});

test('the cache is required', () => {
  expect(() => new CachedImages({} as any)).toThrow(/cache is required/);
});
