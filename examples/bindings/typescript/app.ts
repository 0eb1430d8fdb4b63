// The bindings example, in TypeScript. examples/bindings/python/app.py and
// examples/bindings/java/.../BindingsApp.java build the same stack; `npx projen bindings:test` synthesizes all
// three and fails if their templates differ.
import { App, Aspects, CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import {
  CachedImages,
  ImageReference,
  PullThroughCacheRules,
  UnservedImageLevel,
  UpstreamCredentials,
  UpstreamRegistry,
} from '../../../src';

const app = new App();
// A fixed account and Region make every image URI concrete; nothing is looked up, so this synthesizes offline.
const stack = new Stack(app, 'EcrPullThroughCacheBindings', {
  env: { account: '111122223333', region: 'eu-west-1' },
  description: 'ECR pull through cache for EKS nodes, a build role and an ECS service',
});

// EKS worker nodes and a CI build role: both pull through the cache.
const nodeRole = new iam.Role(stack, 'NodeRole', {
  assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
});
const buildRole = new iam.Role(stack, 'BuildRole', {
  assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com'),
});

const cache = new PullThroughCacheRules(stack, 'Cache', {
  upstreams: [
    UpstreamRegistry.ecrPublic(),
    UpstreamRegistry.kubernetes(),
    UpstreamRegistry.quay(),
    // Docker Hub and GHCR need credentials: the construct creates 'ecr-pullthroughcache/<prefix>' secrets.
    UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
    UpstreamRegistry.githubContainerRegistry({
      credentials: UpstreamCredentials.createSecret({ secretName: 'ecr-pullthroughcache/github' }),
    }),
  ],
  nodeRoles: [nodeRole],
  repositoryOptions: {
    untaggedImageExpiration: Duration.days(3),
    maxImageCount: 50,
    resourceTags: [{ key: 'cost-center', value: 'platform' }],
  },
});
cache.grantPull(buildRole);

// An ECS task definition written with public images: the Aspect moves them to the cache.
const task = new ecs.FargateTaskDefinition(stack, 'Web', { cpu: 256, memoryLimitMiB: 512 });
task.addContainer('nginx', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), essential: true });
task.addContainer('exporter', {
  image: ecs.ContainerImage.fromRegistry('quay.io/prometheus/node-exporter:v1.9.1'),
  essential: false,
});
Aspects.of(app).add(new CachedImages({ cache, unservedImages: UnservedImageLevel.ERROR }));

const pause = ImageReference.parse('registry.k8s.io/pause:3.10');
new CfnOutput(stack, 'PauseImage', { value: cache.imageUri(pause.toString()) });
new CfnOutput(stack, 'NginxImage', { value: cache.imageUri('nginx:1.27') });
new CfnOutput(stack, 'RegistryUri', { value: cache.registryUri });

app.synth();
