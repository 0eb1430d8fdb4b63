import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { organizationExample } from '../examples/organization';
import { CacheStyle, ExampleStack } from '../examples/stack';
import { PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';
import { testApp } from './util';

/**
 * The major scenarios, each a stack of its own: snapshotted, linted with cfn-lint and checked by cdk-nag.
 * Every scenario builds a fresh App, so tests can run them in any order.
 */
export const SCENARIOS: Record<string, () => Stack> = {
  /** The README's example app: EKS, a managed node group and a mirrored one, five upstreams. */
  'example-app': () => new ExampleStack(testApp(), 'Example', { mirroredNodes: true }),

  /** Every upstream ECR supports, with existing secrets, in one account and Region. */
  'every-upstream': () => {
    const stack = new Stack(testApp(), 'EveryUpstream', { env: { account: '111122223333', region: 'eu-west-1' } });
    const secret = (name: string) => UpstreamCredentials.fromSecret(secretsmanager.Secret.fromSecretCompleteArn(stack, name,
      `arn:aws:secretsmanager:eu-west-1:111122223333:secret:ecr-pullthroughcache/${name}-AbCdEf`));
    new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [
        UpstreamRegistry.ecrPublic(),
        UpstreamRegistry.kubernetes(),
        UpstreamRegistry.quay(),
        UpstreamRegistry.dockerHub({ credentials: secret('docker-hub') }),
        UpstreamRegistry.githubContainerRegistry({ credentials: secret('ghcr') }),
        UpstreamRegistry.gitlabContainerRegistry({ credentials: secret('gitlab') }),
        UpstreamRegistry.azureContainerRegistry({ credentials: secret('azure'), registryUrl: 'contoso.azurecr.io' }),
        UpstreamRegistry.chainguard({ credentials: secret('chainguard') }),
        UpstreamRegistry.ecr({ registryUrl: '111122223333.dkr.ecr.us-east-1.amazonaws.com', ecrRepositoryPrefix: 'us-east-1' }),
      ],
    });
    return stack;
  },

  /** Encrypted, tagged cache repositories (custom template role) pulled by an EC2 node role. */
  'kms-and-tags': () => {
    const stack = new Stack(testApp(), 'KmsAndTags');
    const key = new kms.Key(stack, 'CacheKey', { enableKeyRotation: true, description: 'Encrypts cached images' });
    const nodeRole = new iam.Role(stack, 'NodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [UpstreamRegistry.ecrPublic(), UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() })],
      nodeRoles: [nodeRole],
      repositoryOptions: {
        encryptionKey: key,
        resourceTags: [{ key: 'cost-center', value: 'platform' }],
        untaggedImageExpiration: undefined,
        maxImageCount: 50,
      },
    });
    return stack;
  },

  /** ECR to ECR across accounts, mirroring one upstream prefix under another. */
  'ecr-to-ecr': () => {
    const stack = new Stack(testApp(), 'EcrToEcr', { env: { account: '111122223333', region: 'eu-west-1' } });
    const role = new iam.Role(stack, 'PullThroughCacheRole', { assumedBy: new iam.ServicePrincipal('pullthroughcache.ecr.amazonaws.com') });
    new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [UpstreamRegistry.ecr({
        registryUrl: '444455556666.dkr.ecr.us-east-1.amazonaws.com', role, ecrRepositoryPrefix: 'platform', upstreamRepositoryPrefix: 'golden-images',
      })],
    });
    return stack;
  },

  /** Node groups of an existing cluster that pull the cached registries through the cache: AL2023 on x86 and on Graviton. */
  'node-mirrors': () => {
    const stack = new Stack(testApp(), 'NodeMirrors', { env: { account: '111122223333', region: 'eu-west-1' } });
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
      vpcId: 'vpc-0123456789abcdef0',
      availabilityZones: ['eu-west-1a', 'eu-west-1b'],
      privateSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
    });
    const cluster = eks.Cluster.fromClusterAttributes(stack, 'Cluster', { clusterName: 'platform', vpc });
    const cache = new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [
        UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
        UpstreamRegistry.quay(),
        UpstreamRegistry.kubernetes(),
        UpstreamRegistry.ecrPublic(),
      ],
      enableScanning: false,
      enableMonitoring: false,
    });
    cache.nodeMirrors().addNodegroup(cluster, 'Al2023Nodes', {
      amiType: eks.NodegroupAmiType.AL2023_X86_64_STANDARD, instanceTypes: [new ec2.InstanceType('m7i.large')],
    });
    cache.nodeMirrors().addNodegroup(cluster, 'Al2023ArmNodes', {
      amiType: eks.NodegroupAmiType.AL2023_ARM_64_STANDARD, instanceTypes: [new ec2.InstanceType('m7g.large')],
    });
    return stack;
  },

  /**
   * Native upstreams and mirrors of registries ECR cannot pull through (Microsoft's, Red Hat's with credentials),
   * in one cache pulled by a node role.
   */
  'mirror': () => {
    const stack = new Stack(testApp(), 'Mirror', { env: { account: '111122223333', region: 'eu-west-1' } });
    const nodeRole = new iam.Role(stack, 'NodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [
        UpstreamRegistry.ecrPublic(),
        UpstreamRegistry.copied({ registryUrl: 'mcr.microsoft.com', images: ['dotnet/runtime:8.0', 'dotnet/aspnet:8.0.*'] }),
        UpstreamRegistry.copied({
          registryUrl: 'registry.redhat.io',
          ecrRepositoryPrefix: 'redhat',
          images: ['ubi9/ubi-minimal:9.4'],
          credentials: UpstreamCredentials.createSecret(),
          schedule: events.Schedule.cron({ minute: '0', hour: '3' }),
        }),
      ],
      nodeRoles: [nodeRole],
    });
    return stack;
  },

  /** The central account of an organization-wide cache, with its registry policy and the members' StackSet. */
  'organization-central': () => organizationExample(testApp()).central,

  /** The member template the StackSet deploys to every account of the OU. */
  'organization-member': () => organizationExample(testApp()).member,
};

/** The seed's hand-written rules in the same EKS app: the baseline of the synth benchmark. */
export function bareL1ExampleStack(): Stack {
  return new ExampleStack(testApp(), 'Example', { cacheStyle: CacheStyle.BARE_L1 });
}
