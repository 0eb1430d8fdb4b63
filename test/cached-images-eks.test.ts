/**
 * The CachedImages Aspect on EKS manifests and Helm values: the same locator as the ecr-ptc CLI
 * (test/locator/), on templates synthesized from aws-eks-v2 and classic aws-eks clusters.
 */
import * as fs from 'fs';
import { join } from 'path';
import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { App, Aspects, CfnParameter, Fn, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as eksClassic from 'aws-cdk-lib/aws-eks';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import { CachedImages, PullThroughCacheRules, UnservedImageLevel, UpstreamCredentials, UpstreamRegistry } from '../src';
import { testApp, testDir } from './util';

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';

function setup() {
  // IRSA service accounts read `cluster.openIdConnectProvider`: with this flag (on in every new CDK app) the cluster
  // makes the native AWS::IAM::OIDCProvider instead of the deprecated custom-resource OpenIdConnectProvider
  const app = testApp({ context: { '@aws-cdk/aws-eks:useNativeOidcProvider': true } });
  const stack = new Stack(app, 'Apps', { env: { account: '111122223333', region: 'eu-west-1' } });
  const cache = new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [
      UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }), UpstreamRegistry.quay(), UpstreamRegistry.kubernetes(),
      UpstreamRegistry.githubContainerRegistry({ credentials: UpstreamCredentials.createSecret() }),
    ],
  });
  const cluster = new eks.Cluster(stack, 'Cluster', {
    version: eks.KubernetesVersion.V1_33,
    defaultCapacity: 0,
    defaultCapacityType: eks.DefaultCapacityType.NODEGROUP,
    kubectlProviderOptions: { kubectlLayer: new KubectlV35Layer(stack, 'Kubectl') },
  });
  return { app, stack, cache, cluster };
}

/** The manifest or values each custom resource of a type deploys, parsed; tokens are left as CloudFormation has them. */
function deployed(stack: Stack, type: 'Custom::AWSCDK-EKS-KubernetesResource' | 'Custom::AWSCDK-EKS-HelmChart', property: 'Manifest' | 'Values'): unknown[] {
  return Object.values(Template.fromStack(stack).findResources(type)).map((r: any) => {
    const value = r.Properties[property];
    return typeof value === 'string' ? JSON.parse(value) : value;
  });
}

function messages(stack: Stack): string[] {
  const all = [
    ...Annotations.fromStack(stack).findError('*', Match.anyValue()),
    ...Annotations.fromStack(stack).findWarning('*', Match.anyValue()),
  ];
  // (the caution that the cache has no nodeRoles, and the one that its topics have no subscription, have their own
  // tests: cached-images-apps.test.ts, defaults.test.ts)
  return all.map(m => String(m.entry.data)).filter(m => /cache|Helm|image/i.test(m) && !/kubectl|deprecated|:nodeRoles\]|:unheardTopic\]/i.test(m));
}

describe('Helm values: the conventions of popular charts, as the chart will render them', () => {
  test('ingress-nginx, gpu-operator, tags and digests inside repository, and a repository-only map', () => {
    const { app, stack, cache, cluster } = setup();
    cluster.addHelmChart('IngressNginx', {
      chart: 'ingress-nginx',
      repository: 'https://kubernetes.github.io/ingress-nginx',
      values: {
        global: { image: { registry: 'registry.k8s.io' } },
        controller: { image: { image: 'ingress-nginx/controller', tag: 'v1.11.2', digest: '' } },
      },
    });
    cluster.addHelmChart('Charts', {
      chart: 'any',
      repository: 'https://example.com/charts',
      values: {
        driver: { repository: 'ghcr.io/nvidia', image: 'driver', version: '550' },
        app: { image: { repository: 'nginx:1.27' } },
        pinned: { image: { registry: '', repository: 'quay.io/a/b@sha256:d5f8217feeac4887cb1ed21f27c2674e58be06bd8f5184cacea2a69abaf78dce' } },
        bitnamiStyle: { image: { repository: 'bitnami/redis', tag: '7.4' } },
      },
    });
    Aspects.of(app).add(new CachedImages({ cache }));
    expect(deployed(stack, 'Custom::AWSCDK-EKS-HelmChart', 'Values')).toEqual([{
      global: { image: { registry: REGISTRY } },
      controller: { image: { image: 'k8s/ingress-nginx/controller', tag: 'v1.11.2', digest: '' } },
    }, {
      driver: { repository: `${REGISTRY}/ghcr/nvidia`, image: 'driver', version: '550' },
      // the tag written in repository stays; a chart default registry (Bitnami: docker.io) must not go in front
      app: { image: { repository: `${REGISTRY}/docker-hub/library/nginx:1.27`, registry: '' } },
      pinned: { image: { registry: '', repository: `${REGISTRY}/quay/a/b@sha256:d5f8217feeac4887cb1ed21f27c2674e58be06bd8f5184cacea2a69abaf78dce` } },
      bitnamiStyle: { image: { repository: `${REGISTRY}/docker-hub/bitnami/redis`, tag: '7.4', registry: '' } },
      // a Bitnami image moved: its charts refuse relocated images without this (bitnami/charts#30850)
      global: { security: { allowInsecureImages: true } },
    }]);
    // the digest-only reference warns: ECR fills the cache only on a pull by tag
    expect(messages(stack)).toEqual([expect.stringMatching(/^Values pinned\.image: .*pinned by digest only/)]);
  });

  test('a map the locator cannot read safely is refused, with its path and the reason', () => {
    const { app, stack, cache, cluster } = setup();
    cluster.addHelmChart('Chart', {
      chart: 'any',
      repository: 'https://example.com/charts',
      values: { image: { registry: 'docker.io', repository: 'quay.io/prometheus/x', tag: 'v1' } },
    });
    Aspects.of(app).add(new CachedImages({ cache }));
    expect(Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp(
      "^Values image: 'registry: docker.io, repository: quay.io/prometheus/x, tag: v1' was left alone: Helm image map left whole: the repository .* names a registry"))).toHaveLength(1);
    expect(deployed(stack, 'Custom::AWSCDK-EKS-HelmChart', 'Values')).toEqual([{ image: { registry: 'docker.io', repository: 'quay.io/prometheus/x', tag: 'v1' } }]);
  });

  test('a chart whose values name no image says its default images were not moved', () => {
    const { app, stack, cache, cluster } = setup();
    cluster.addHelmChart('NoValues', { chart: 'any', repository: 'https://example.com/charts' });
    cluster.addHelmChart('Empty', { chart: 'any', repository: 'https://example.com/charts', values: {} });
    cluster.addHelmChart('Replicas', { chart: 'any', repository: 'https://example.com/charts', values: { replicaCount: 2 } });
    cluster.addHelmChart('WithImage', { chart: 'any', repository: 'https://example.com/charts', values: { image: { repository: 'quay.io/org/app' } } });
    Aspects.of(app).add(new CachedImages({ cache }));
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('name no image, so its images are the chart\'s defaults'));
    expect(warnings.map(w => w.id.split('/')[3])).toEqual(['chart-NoValues', 'chart-Empty', 'chart-Replicas']);
  });

  test('reportOnly says when a map would be held, as a real run does', () => {
    const build = (reportOnly: boolean) => {
      const { app, stack, cache, cluster } = setup();
      cluster.addHelmChart('Chart', {
        chart: 'any',
        repository: 'https://example.com/charts',
        values: {
          global: { imageRegistry: 'docker.io' },
          image: { repository: 'bitnami/redis', tag: '7' },
          other: { image: { registry: 'ghcr.io', repository: 'org/x' } },
        },
      });
      Aspects.of(app).add(new CachedImages({ cache, reportOnly, unservedImages: UnservedImageLevel.WARNING }));
      return messages(stack);
    };
    const held = /^Values image: 'docker\.io\/bitnami\/redis:7' was not moved to the cache: Helm image map left whole: another image under global\.imageRegistry/;
    expect(build(false)).toContainEqual(expect.stringMatching(held));
    expect(build(true)).toContainEqual(expect.stringMatching(held));
  });

  test('a deploy-time value beside the images (clusterName) does not stop them from moving', () => {
    const { app, stack, cache, cluster } = setup();
    cluster.addHelmChart('Chart', {
      chart: 'any',
      repository: 'https://example.com/charts',
      values: { clusterName: cluster.clusterName, image: { registry: 'quay.io', repository: 'org/app', tag: '1' } },
    });
    Aspects.of(app).add(new CachedImages({ cache }));
    const values = Object.values(Template.fromStack(stack).findResources('Custom::AWSCDK-EKS-HelmChart'))[0].Properties.Values;
    const joined = JSON.stringify(values);
    expect(joined).toContain(`\\"registry\\":\\"${REGISTRY}\\",\\"repository\\":\\"quay/org/app\\"`);
    expect(values['Fn::Join'][1]).toContainEqual({ Ref: expect.stringMatching(/^Cluster/) }); // the deploy-time value, kept
    expect(messages(stack)).toEqual([]);
  });
});

describe('manifests: only where images live', () => {
  test('ConfigMaps, annotations, Flux ImageRepository and node OS images are not container images', () => {
    const { app, stack, cache, cluster } = setup();
    const objects = [
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ui' }, data: { backgroundImage: '/static/bg.png', image: 'true' } },
      { apiVersion: 'image.toolkit.fluxcd.io/v1beta2', kind: 'ImageRepository', metadata: { name: 'app' }, spec: { image: 'ghcr.io/org/app' } },
      { apiVersion: 'example.com/v1', kind: 'NodeClass', metadata: { name: 'n' }, spec: { os: { image: 'ubuntu-22.04-lts' } } },
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', annotations: { image: 'nginx:1.27' } }, spec: { containers: [{ name: 'a', image: 'nginx:1.27' }] } },
    ];
    cluster.addManifest('Objects', ...objects);
    Aspects.of(app).add(new CachedImages({ cache }));
    const [manifest] = deployed(stack, 'Custom::AWSCDK-EKS-KubernetesResource', 'Manifest') as any[];
    expect(manifest.slice(0, 3)).toEqual(objects.slice(0, 3));
    expect(manifest[3].metadata.annotations.image).toBe('nginx:1.27');
    expect(manifest[3].spec.containers[0].image).toBe(`${REGISTRY}/docker-hub/library/nginx:1.27`);
    expect(messages(stack)).toEqual([]);
  });

  test('a container of a kind the locator does not know is reported, not rewritten', () => {
    const { app, stack, cache, cluster } = setup();
    cluster.addManifest('Runner', { apiVersion: 'example.com/v1', kind: 'Runner', metadata: { name: 'r' }, spec: { pod: { containers: [{ name: 'a', image: 'nginx:1.27' }] } } });
    Aspects.of(app).add(new CachedImages({ cache, unservedImages: UnservedImageLevel.WARNING }));
    expect(messages(stack)).toEqual([expect.stringMatching(
      /^Manifest Runner\/r spec\.pod\.containers\[0\]\.image: 'nginx:1\.27' was left alone: a container of kind Runner \(example\.com\/v1\)/)]);
  });

  test('deploy-time values: the rest of the manifest moves; only an image that holds one is reported, precisely', () => {
    const { app, stack, cache, cluster } = setup();
    cluster.addManifest('Mixed',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { cluster: cluster.clusterName } },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p' },
        spec: {
          containers: [
            { name: 'a', image: 'nginx:1.27', env: [{ name: 'CLUSTER', value: cluster.clusterName }] },
            // a token in the repository path (one in the tag alone moves: cached-images-apps.test.ts)
            { name: 'b', image: Fn.join('', ['quay.io/', new CfnParameter(stack, 'Org').valueAsString, '/app:1']) },
          ],
        },
      },
    );
    // an IRSA service account: a role ARN (a token) in an annotation, and no image at all
    cluster.addServiceAccount('Irsa', { name: 'irsa' });
    Aspects.of(app).add(new CachedImages({ cache }));
    const manifests = Object.values(Template.fromStack(stack).findResources('Custom::AWSCDK-EKS-KubernetesResource')).map((r: any) => JSON.stringify(r.Properties.Manifest));
    const mixed = manifests.find(m => m.includes('ConfigMap'))!;
    expect(mixed).toContain(`${REGISTRY}/docker-hub/library/nginx:1.27`);
    expect(mixed).toContain('\\"image\\":\\"quay.io/",{"Ref":"Org"},"/app:1'); // the token image stays as written
    expect(messages(stack)).toEqual([expect.stringMatching(
      /^Manifest Pod\/p spec\.containers\[1\]\.image: 'quay\.io\/\$\{Token\}\/app:1' is known only at deploy time/)]);
  });

  test('a digest-only image warns that the first pull fails; ALREADY cached images are left as they are', () => {
    const { app, stack, cache, cluster } = setup();
    const digest = 'sha256:d5f8217feeac4887cb1ed21f27c2674e58be06bd8f5184cacea2a69abaf78dce';
    cluster.addManifest('Pod', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: {
        containers: [
          { name: 'a', image: `quay.io/org/app@${digest}` },
          { name: 'b', image: `${REGISTRY}/quay/org/app:1` },
        ],
      },
    });
    Aspects.of(app).add(new CachedImages({ cache }));
    const [manifest] = deployed(stack, 'Custom::AWSCDK-EKS-KubernetesResource', 'Manifest') as any[];
    expect(manifest[0].spec.containers.map((c: any) => c.image)).toEqual([`${REGISTRY}/quay/org/app@${digest}`, `${REGISTRY}/quay/org/app:1`]);
    expect(messages(stack)).toEqual([expect.stringMatching(/^Manifest Pod\/p spec\.containers\[0\]\.image: .*pinned by digest only/)]);
  });

  test('reportOnly leaves every template byte-identical, tokens included, and lists what would move', () => {
    const build = (withAspect: boolean) => {
      const { app, stack, cache, cluster } = setup();
      cluster.addManifest('Pod', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p' },
        spec: {
          containers: [
            { name: 'a', image: 'nginx:1.27', env: [{ name: 'CLUSTER', value: cluster.clusterName }] },
          ],
        },
      });
      cluster.addHelmChart('Chart', { chart: 'any', repository: 'https://example.com/charts', values: { clusterName: cluster.clusterName, image: { repository: 'bitnami/redis' } } });
      if (withAspect) {
        Aspects.of(app).add(new CachedImages({ cache, reportOnly: true }));
      }
      return { template: JSON.stringify(Template.fromStack(stack).toJSON()), stack };
    };
    const plain = build(false);
    const reported = build(true);
    expect(reported.template).toBe(plain.template);
    expect(messages(reported.stack)).toEqual([
      expect.stringMatching(/^Manifest Pod\/p spec\.containers\[0\]\.image: 'nginx:1\.27' would be pulled through the cache/),
      expect.stringMatching(/^Values image: 'bitnami\/redis' would be pulled through the cache/),
    ]);
  });
});

describe('classic aws-eks clusters (kubectl layer)', () => {
  test('manifests and Helm values are rewritten the same way', () => {
    const app = testApp();
    const stack = new Stack(app, 'Classic', { env: { account: '111122223333', region: 'eu-west-1' } });
    const cache = new PullThroughCacheRules(stack, 'Cache', { upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }), UpstreamRegistry.quay()] });
    const cluster = new eksClassic.Cluster(stack, 'Cluster', {
      version: eksClassic.KubernetesVersion.V1_33,
      defaultCapacity: 0,
      kubectlLayer: new KubectlV35Layer(stack, 'Kubectl'),
    });
    cluster.addManifest('Deploy', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { template: { spec: { containers: [{ name: 'a', image: 'nginx:1.27' }] } } } });
    cluster.addHelmChart('Chart', { chart: 'any', repository: 'https://example.com/charts', values: { image: { registry: 'quay.io', repository: 'org/app' } } });
    Aspects.of(app).add(new CachedImages({ cache }));
    const [manifest] = deployed(stack, 'Custom::AWSCDK-EKS-KubernetesResource', 'Manifest') as any[];
    expect(manifest[0].spec.template.spec.containers[0].image).toBe(`${REGISTRY}/docker-hub/library/nginx:1.27`);
    expect(deployed(stack, 'Custom::AWSCDK-EKS-HelmChart', 'Values')).toEqual([{ image: { registry: REGISTRY, repository: 'quay/org/app' } }]);
    expect(app).toBeInstanceOf(App);
  });
});

describe('images that are the app\'s own business stay quiet (second hostile review)', () => {
  test('an image of another account\'s private ECR (a shared-services registry) is noted, not an error', () => {
    const { app, stack, cache } = setup();
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    task.addContainer('shared', { image: ecs.ContainerImage.fromRegistry('222233334444.dkr.ecr.eu-west-1.amazonaws.com/shared/app:1'), memoryLimitMiB: 512 });
    Aspects.of(app).add(new CachedImages({ cache }));
    app.synth();
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
    expect(Annotations.fromStack(stack).findInfo('*', Match.stringLikeRegexp("'222233334444\\.dkr\\.ecr\\.eu-west-1\\.amazonaws\\.com/shared/app:1' is in another private ECR registry"))).toHaveLength(1);
  });

  test('a container image built from an asset gets no deploy-time warning', () => {
    const { app, stack, cache } = setup();
    const dir = testDir('asset-');
    fs.writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    task.addContainer('built', { image: ecs.ContainerImage.fromAsset(dir), memoryLimitMiB: 512 });
    Aspects.of(app).add(new CachedImages({ cache }));
    app.synth();
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('known only at deploy time'))).toEqual([]);
  });
});
