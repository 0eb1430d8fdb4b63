// An application team's app: the platform team's cache lives in another CDK app of the same account
// (examples/bindings), so this one imports it by its attributes and uses imageUri and grantPull.
// python/app.py and java/.../ApplicationTeamApp.java build the same stack; `npx projen bindings:test`
// synthesizes all three and fails if their templates differ.
import { App, Aspects, CfnOutput, Stack } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { CachedImages, PullThroughCacheRules } from '../../../src';

const app = new App();
const stack = new Stack(app, 'ApplicationTeam', {
  env: { account: '111122223333', region: 'eu-west-1' },
  description: 'An application team pulling through the platform team\'s ECR pull through cache',
});

// The prefixes the platform team's cache serves, copied from its app (`cache.mapping.prefixes`).
const cache = PullThroughCacheRules.fromPullThroughCacheRulesAttributes(stack, 'Cache', {
  prefixes: [
    { registry: 'docker.io', ecrRepositoryPrefix: 'docker-hub' },
    { registry: 'quay.io', ecrRepositoryPrefix: 'quay' },
    { registry: 'public.ecr.aws', ecrRepositoryPrefix: 'ecr-public' },
  ],
  taggedRepositories: true,
});

// A CI role that pulls images by their cache URIs.
const ciRole = new iam.Role(stack, 'CiRole', { assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com') });
cache.grantPull(ciRole);

// A task written with the cache URI; the Aspect moves the second container and grants the execution role.
const task = new ecs.FargateTaskDefinition(stack, 'Api', { cpu: 256, memoryLimitMiB: 512 });
task.addContainer('api', { image: ecs.ContainerImage.fromRegistry(cache.imageUri('nginx:1.27')), essential: true });
task.addContainer('metrics', {
  image: ecs.ContainerImage.fromRegistry('quay.io/prometheus/node-exporter:v1.9.1'),
  essential: false,
});
Aspects.of(app).add(new CachedImages({ cache }));

new CfnOutput(stack, 'NginxImage', { value: cache.imageUri('nginx:1.27') });

app.synth();
