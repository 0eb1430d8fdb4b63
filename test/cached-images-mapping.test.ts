import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { App, Aspects, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as eksClassic from 'aws-cdk-lib/aws-eks';
import {
  CachedImages, ImageMapping, MappingStatus, PullThroughCacheRules, UnservedImageLevel, UpstreamCredentials, UpstreamRegistry,
} from '../src';
import { cfnLint } from './support/cfn-lint';
import { ACCOUNT, ENV, REGISTRY, eksV2Cluster, existingVpc } from './support/environments';
import { testApp } from './util';

const quiet = { enableMonitoring: false, enableScanning: false };

const linted: Record<string, object> = {};
afterAll(() => expect(cfnLint(linted)).toBe(''));

describe('registry hosts as people write them', () => {
  const stack = new Stack(testApp(), 'Apps', { env: ENV });
  const cache = new PullThroughCacheRules(stack, 'Cache', {
    ...quiet,
    upstreams: [
      UpstreamRegistry.quay(),
      UpstreamRegistry.azureContainerRegistry({ registryUrl: 'contoso1.azurecr.io', credentials: UpstreamCredentials.createSecret() }),
    ],
  });

  test.each([
    ['Quay.io/org/app:1', `${REGISTRY}/quay/org/app:1`],
    ['QUAY.IO/org/app:1', `${REGISTRY}/quay/org/app:1`],
    ['CONTOSO1.azurecr.io/team/app:2', `${REGISTRY}/azure/team/app:2`],
    ['quay.io:443/org/app:1', `${REGISTRY}/quay/org/app:1`],
    [`${REGISTRY.toUpperCase()}/quay/org/app:1`, `${REGISTRY.toUpperCase()}/quay/org/app:1`], // already in the cache
  ])('%s is served', (image, uri) => {
    expect(cache.imageUri(image)).toBe(uri);
  });

  test('another port is another registry: not served, and said so', () => {
    expect(cache.mapping.map('quay.io:5000/org/app:1')).toMatchObject({ status: MappingStatus.UNSUPPORTED_REGISTRY });
  });
});

describe('ImageMapping registryUri', () => {
  test.each(['https://111122223333.dkr.ecr.eu-west-1.amazonaws.com/', 'http://111122223333.dkr.ecr.eu-west-1.amazonaws.com', `${REGISTRY}//`, ` ${REGISTRY} `])(
    '%j is normalised to the host (no // in URIs)', domain => {
      const mapping = new ImageMapping({ registryUri: domain });
      expect(mapping.registryUri).toBe(REGISTRY);
      expect(mapping.map('nginx:1.27').uri).toBe(`${REGISTRY}/docker-hub/library/nginx:1.27`);
      expect(mapping.map(`${REGISTRY}/docker-hub/library/nginx:1.27`).status).toBe(MappingStatus.ALREADY_CACHED);
    });

  test.each([`${REGISTRY}/docker-hub`, 'https://', 'my registry'])('%j is refused', domain => {
    expect(() => new ImageMapping({ registryUri: domain })).toThrow(/is not a registry host\. Give the host alone/);
  });
});

describe('bad props from other languages are refused', () => {
  const cache = new PullThroughCacheRules(new Stack(testApp(), 'S', { env: ENV }), 'Cache', { ...quiet, upstreams: [UpstreamRegistry.quay()] });
  test.each([['warning'], ['FAIL'], [1]])('unservedImages %j', level => {
    expect(() => new CachedImages({ cache, unservedImages: level as any }))
      .toThrow(/unservedImages must be one of UnservedImageLevel\.ERROR, UnservedImageLevel\.WARNING, not/);
  });
  test('reportOnly that is not a boolean', () => {
    expect(() => new CachedImages({ cache, reportOnly: 'yes' as any })).toThrow(/reportOnly must be true or false, not "yes"/);
  });
});

describe('two images must never share a cache URI', () => {
  test('a ROOT upstream beside a k8s rule is refused at synth', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    new PullThroughCacheRules(stack, 'Cache', { ...quiet, upstreams: [UpstreamRegistry.quay({ ecrRepositoryPrefix: 'ROOT' }), UpstreamRegistry.kubernetes()] });
    expect(() => app.synth()).toThrow(/Apps\/Cache use the cache prefixes 'ROOT' and 'k8s' in account 111122223333, Region eu-west-1: an image of the 'ROOT' upstream under 'k8s\/' would get the cache repository of an image of the 'k8s' upstream/);
  });

  test('prefixes of which one is a path prefix of another are refused, across caches of one registry too', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    new PullThroughCacheRules(stack, 'A', { ...quiet, upstreams: [UpstreamRegistry.quay({ ecrRepositoryPrefix: 'cache' })] });
    new PullThroughCacheRules(stack, 'B', { ...quiet, upstreams: [UpstreamRegistry.kubernetes({ ecrRepositoryPrefix: 'cache/k8s' })] });
    expect(() => app.synth()).toThrow(/Apps\/B and Apps\/A use the cache prefixes 'cache' and 'cache\/k8s'/);
  });

  test('a mirror\'s prefix under a rule\'s, or under another mirror\'s, is refused at synth as well (second hostile review)', () => {
    for (const upstreams of [
      [UpstreamRegistry.quay({ ecrRepositoryPrefix: 'xx' }), UpstreamRegistry.copied({ registryUrl: 'gcr.io', ecrRepositoryPrefix: 'xx/yy', images: ['a/b:1'] })],
      [UpstreamRegistry.copied({ registryUrl: 'mcr.microsoft.com', ecrRepositoryPrefix: 'xx', images: ['a/b:1'] }),
        UpstreamRegistry.copied({ registryUrl: 'gcr.io', ecrRepositoryPrefix: 'xx/yy', images: ['a/b:1'] })],
    ]) {
      const app = testApp();
      new PullThroughCacheRules(new Stack(app, 'Apps', { env: ENV }), 'Cache', { ...quiet, upstreams });
      expect(() => app.synth()).toThrow(/Apps\/Cache use the cache prefixes 'xx' and 'xx\/yy'/);
    }
  });

  test('prefixes that only share a beginning are fine, and so are the same prefixes in another account', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    new PullThroughCacheRules(stack, 'A', { ...quiet, upstreams: [UpstreamRegistry.quay({ ecrRepositoryPrefix: 'cache' }), UpstreamRegistry.kubernetes({ ecrRepositoryPrefix: 'cache-k8s' })] });
    const other = new Stack(app, 'Other', { env: { account: '999999999999', region: 'eu-west-1' } });
    new PullThroughCacheRules(other, 'B', { ...quiet, upstreams: [UpstreamRegistry.kubernetes({ ecrRepositoryPrefix: 'cache/k8s' })] });
    expect(() => app.synth()).not.toThrow();
  });

  test('the mapping itself never gives an image a URI that another rule claims (the CLI uses it without the construct)', () => {
    const mapping = new ImageMapping({
      registryUri: REGISTRY,
      prefixes: [{ registry: 'quay.io', ecrRepositoryPrefix: 'ROOT' }, { registry: 'registry.k8s.io', ecrRepositoryPrefix: 'k8s' }, { registry: 'ghcr.io', ecrRepositoryPrefix: 'cache' }, { registry: 'docker.io', ecrRepositoryPrefix: 'cache/hub' }],
    });
    expect(mapping.map('quay.io/k8s/pause:1')).toMatchObject({
      status: MappingStatus.NO_RULE, reason: "its cache path k8s/pause lies under the prefix 'k8s' of registry.k8s.io, whose rule ECR would pull it through instead",
    });
    expect(mapping.map('ghcr.io/hub/x:1')).toMatchObject({ status: MappingStatus.NO_RULE, reason: expect.stringContaining("under the prefix 'cache/hub' of docker.io") });
    expect(mapping.map('quay.io/org/app:1').uri).toBe(`${REGISTRY}/org/app:1`);
    expect(mapping.map('registry.k8s.io/pause:3.10').uri).toBe(`${REGISTRY}/k8s/pause:3.10`);
    expect(mapping.map('ghcr.io/org/x:1').uri).toBe(`${REGISTRY}/cache/org/x:1`);
  });
});

describe('two caches with one Aspect each: ECS and EKS decide alike', () => {
  function app(kind: 'eks-v2' | 'eks') {
    const a = testApp();
    const stack = new Stack(a, `Apps-${kind}`, { env: ENV });
    const upstream = (prefix: string) => UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret(), ecrRepositoryPrefix: prefix });
    const first = new PullThroughCacheRules(stack, 'First', { ...quiet, upstreams: [upstream('hub-a')] });
    const second = new PullThroughCacheRules(stack, 'Second', { ...quiet, upstreams: [upstream('hub-b')] });
    new ecs.FargateTaskDefinition(stack, 'Task').addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 128 });
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] } };
    if (kind === 'eks-v2') {
      eksV2Cluster(stack).addManifest('Pod', pod);
    } else {
      new eksClassic.Cluster(stack, 'Cluster', { version: eksClassic.KubernetesVersion.V1_33, defaultCapacity: 0, vpc: existingVpc(stack), kubectlLayer: new KubectlV35Layer(stack, 'Kubectl') })
        .addManifest('Pod', pod);
    }
    Aspects.of(a).add(new CachedImages({ cache: first }));
    Aspects.of(a).add(new CachedImages({ cache: second }));
    return { app: a, stack };
  }

  test.each(['eks-v2', 'eks'] as const)('with %s: the first cache moves both, the second sees them cached', kind => {
    const { stack } = app(kind);
    const template = Template.fromStack(stack);
    linted[`two-caches-${kind}`] = template.toJSON();
    const container = Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0].Properties.ContainerDefinitions[0];
    const manifest = JSON.parse(Object.values(template.findResources('Custom::AWSCDK-EKS-KubernetesResource'))[0].Properties.Manifest);
    expect(container.Image).toBe(`${REGISTRY}/hub-a/library/nginx:1.27`);
    expect(manifest[0].spec.containers[0].image).toBe(container.Image);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  });
});

test('a second Aspect whose cache cannot serve what the first made reports it, for ECS and EKS alike', () => {
  const a: App = testApp();
  const stack = new Stack(a, 'Apps', { env: ENV });
  const first = new PullThroughCacheRules(stack, 'First', { ...quiet, upstreams: [UpstreamRegistry.quay()] });
  const other = new Stack(a, 'Virginia', { env: { account: ACCOUNT, region: 'us-east-1' } });
  const second = new PullThroughCacheRules(other, 'Second', { ...quiet, upstreams: [UpstreamRegistry.quay()] });
  new ecs.FargateTaskDefinition(stack, 'Task').addContainer('web', { image: ecs.ContainerImage.fromRegistry('quay.io/org/app:1'), memoryLimitMiB: 128 });
  eksV2Cluster(stack).addManifest('Pod', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'web', image: 'quay.io/org/app:1' }] } });
  Aspects.of(a).add(new CachedImages({ cache: first }));
  Aspects.of(a).add(new CachedImages({ cache: second, unservedImages: UnservedImageLevel.WARNING }));
  a.synth();
  const messages = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('is not served')).map(m => String(m.entry.data));
  expect(messages).toEqual([
    expect.stringMatching(new RegExp(`^container web: '${REGISTRY}/quay/org/app:1' is not served by the pull through cache`)),
    expect.stringMatching(new RegExp(`^Manifest Pod\\/p spec\\.containers\\[0\\]\\.image: '${REGISTRY}/quay/org/app:1' is not served by the pull through cache`)),
  ]);
});
