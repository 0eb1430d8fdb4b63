/**
 * Deployable integration test: a cache of three anonymous upstreams plus Docker Hub with a created secret,
 * and assertions that ECR reports exactly those rules and that the deployed scan trigger handles a
 * pull through cache event (an image that is not cached is skipped, not failed) and the health handler
 * counts pulls. Its snapshot is verified on every test run
 * (`npx projen integ`, no deploy); with an AWS account, `npx integ-runner --directory test --force` deploys it.
 */
import { ExpectedResult, IntegTest } from '@aws-cdk/integ-tests-alpha';
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';

const app = new App();
const stack = new Stack(app, 'PullThroughCacheIntegStack');

const nodeRole = new iam.Role(stack, 'NodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
const cache = new PullThroughCacheRules(stack, 'Cache', {
  upstreams: [
    UpstreamRegistry.ecrPublic({ ecrRepositoryPrefix: 'integ/ecr-public' }),
    UpstreamRegistry.kubernetes({ ecrRepositoryPrefix: 'integ/k8s' }),
    UpstreamRegistry.quay({ ecrRepositoryPrefix: 'integ/quay' }),
    // an integ deployment leaves nothing behind: the secret goes with the stack (the library's default keeps it)
    UpstreamRegistry.dockerHub({
      ecrRepositoryPrefix: 'integ/docker-hub',
      credentials: UpstreamCredentials.createSecret({ removalPolicy: RemovalPolicy.DESTROY }),
    }),
  ],
  nodeRoles: [nodeRole],
});

const integ = new IntegTest(app, 'PullThroughCacheInteg', { testCases: [stack] });

integ.assertions
  .awsApiCall('ECR', 'describePullThroughCacheRules', { ecrRepositoryPrefixes: ['integ/ecr-public', 'integ/k8s', 'integ/quay', 'integ/docker-hub'] })
  .expect(ExpectedResult.objectLike({
    pullThroughCacheRules: [
      { ecrRepositoryPrefix: 'integ/ecr-public', upstreamRegistryUrl: 'public.ecr.aws', upstreamRegistry: 'ecr-public' },
      { ecrRepositoryPrefix: 'integ/k8s', upstreamRegistryUrl: 'registry.k8s.io', upstreamRegistry: 'k8s' },
      { ecrRepositoryPrefix: 'integ/quay', upstreamRegistryUrl: 'quay.io', upstreamRegistry: 'quay' },
      { ecrRepositoryPrefix: 'integ/docker-hub', upstreamRegistryUrl: 'registry-1.docker.io', upstreamRegistry: 'docker-hub' },
    ],
  }));

integ.assertions
  .awsApiCall('ECR', 'describeRepositoryCreationTemplates', { prefixes: ['integ/quay'] })
  .expect(ExpectedResult.objectLike({
    repositoryCreationTemplates: [{ prefix: 'integ/quay', appliedFor: ['PULL_THROUGH_CACHE'], imageTagMutability: 'MUTABLE' }],
  }));

// A function that throws still answers StatusCode 200 (with FunctionError set), so each assertion also expects
// the handler's own answer: `null`, the JSON of what it returns when it succeeds.
// The deployed scan trigger, invoked with a documented `ECR Pull Through Cache Action` event for an image that
// is not in the cache: ECR answers RepositoryNotFoundException, which the handler counts as skipped and returns.
integ.assertions
  .invokeFunction({
    functionName: cache.scanning!.scanFunction!.functionName,
    payload: JSON.stringify({
      'version': '0',
      'id': 'integ-ptc-event',
      'detail-type': 'ECR Pull Through Cache Action',
      'source': 'aws.ecr',
      'detail': {
        'rule-version': '1',
        'sync-status': 'SUCCESS',
        'ecr-repository-prefix': 'integ/quay',
        'repository-name': 'integ/quay/not-cached/image',
        'upstream-registry-url': 'quay.io',
        'image-tag': 'v1',
        'image-digest': `sha256:${'0'.repeat(64)}`,
      },
    }),
  })
  .expect(ExpectedResult.objectLike({ StatusCode: 200, ExecutedVersion: '$LATEST', Payload: 'null' }));

// The deployed health handler counts pulls per prefix (no pulls yet: zeros, published, no error).
integ.assertions
  .invokeFunction({
    functionName: cache.monitoring!.healthFunction.functionName,
    payload: JSON.stringify({ 'id': 'integ-count', 'detail-type': 'Scheduled Event', 'source': 'aws.events', 'time': '2026-11-28T08:00:00Z', 'detail': { task: 'count-pulls' } }),
  })
  .expect(ExpectedResult.objectLike({ StatusCode: 200, ExecutedVersion: '$LATEST', Payload: 'null' }));
