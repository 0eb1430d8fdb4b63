import { Aspects, CfnOutput, CfnParameter, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { CachedImages, PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';

/** How the example wires its cache: with this library, or as the seed document did, by hand. */
export enum CacheStyle {
  /** `PullThroughCacheRules`: rules, credentials, repository templates and node grants. */
  CONSTRUCT = 'construct',
  /** `PullThroughCacheRules` with the seed's three upstreams only (Docker Hub, Quay, GHCR). */
  CONSTRUCT_SEED_UPSTREAMS = 'construct-seed-upstreams',
  /** The seed's three upstreams with scanning and monitoring off: rules, credentials, templates, grants; like for like with BARE_L1. */
  CONSTRUCT_RULES_ONLY = 'construct-rules-only',
  /** The seed's three hand-written `CfnPullThroughCacheRule`s (with its URLs corrected so they are valid). */
  BARE_L1 = 'bare-l1',
}

export interface ExampleStackProps extends StackProps {
  /** @default CacheStyle.CONSTRUCT */
  readonly cacheStyle?: CacheStyle;

  /**
   * Add a second node group whose nodes pull through the cache by node mirrors (CONSTRUCT style only). Off for
   * the synth benchmark, which compares the cache's own setup with the seed's hand-written rules.
   * @default false
   */
  readonly mirroredNodes?: boolean;
}

/**
 * A platform team's stack: an EKS cluster whose managed node group pulls every public image through
 * the ECR cache. Synthesizes offline, with no AWS account (environment-agnostic).
 */
export class ExampleStack extends Stack {
  constructor(scope: Construct, id: string, props: ExampleStackProps = {}) {
    super(scope, id, props);

    const vpc = new ec2.Vpc(this, 'Vpc', { maxAzs: 2, natGateways: 1 });
    const cluster = new eks.Cluster(this, 'Cluster', {
      version: eks.KubernetesVersion.V1_33,
      vpc,
      defaultCapacity: 0,
      defaultCapacityType: eks.DefaultCapacityType.NODEGROUP,
    });
    const nodes = cluster.addNodegroupCapacity('Nodes', {
      instanceTypes: [new ec2.InstanceType('m7g.large')],
      amiType: eks.NodegroupAmiType.AL2023_ARM_64_STANDARD,
      minSize: 2,
      maxSize: 6,
    });

    const style = props.cacheStyle ?? CacheStyle.CONSTRUCT;
    if (style === CacheStyle.BARE_L1) {
      new ecr.CfnPullThroughCacheRule(this, 'DockerHubCache', { ecrRepositoryPrefix: 'docker-hub', upstreamRegistryUrl: 'registry-1.docker.io' });
      new ecr.CfnPullThroughCacheRule(this, 'QuayCache', { ecrRepositoryPrefix: 'quay', upstreamRegistryUrl: 'quay.io' });
      new ecr.CfnPullThroughCacheRule(this, 'GHCRCache', { ecrRepositoryPrefix: 'ghcr', upstreamRegistryUrl: 'ghcr.io' });
      return;
    }

    const upstreams = [
      UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
      UpstreamRegistry.githubContainerRegistry({ credentials: UpstreamCredentials.createSecret() }),
      UpstreamRegistry.quay(),
    ];
    if (style === CacheStyle.CONSTRUCT) {
      upstreams.push(UpstreamRegistry.kubernetes(), UpstreamRegistry.ecrPublic());
    }
    const rulesOnly = style === CacheStyle.CONSTRUCT_RULES_ONLY;
    const cache = new PullThroughCacheRules(this, 'Cache', {
      upstreams, nodeRoles: [nodes.role], enableScanning: !rulesOnly, enableMonitoring: !rulesOnly,
    });
    if (!rulesOnly) {
      // Someone hears the alarms and the findings reports: the on-call address, given at deploy
      // (cdk deploy --parameters OnCallEmail=oncall@example.com). Without a subscription, synth warns that nobody does.
      const onCall = new CfnParameter(this, 'OnCallEmail', { description: 'Where the cache\'s alarms and findings reports are mailed' });
      for (const topic of [cache.monitoring!.alarmTopic!, cache.scanning!.findingsTopic]) {
        topic.addSubscription(new subscriptions.EmailSubscription(onCall.valueAsString));
      }
    }

    if (style === CacheStyle.CONSTRUCT && props.mirroredNodes) {
      // A node group whose nodes pull docker.io, quay.io, ghcr.io and registry.k8s.io images through the cache
      // with no image reference changed: containerd mirrors and ECR credentials in its launch template.
      cache.nodeMirrors().addNodegroup(cluster, 'MirroredNodes', {
        instanceTypes: [new ec2.InstanceType('m7g.large')],
        amiType: eks.NodegroupAmiType.AL2023_ARM_64_STANDARD,
        minSize: 1,
        maxSize: 3,
      });
    }

    if (style === CacheStyle.CONSTRUCT) {
      // A workload of the app, moved to the cache by the Aspect and warmed at deploy: its image is pulled through the
      // cache (by tag, for the task's ARM64 platform) before the task definition is created, and the task definition
      // runs the digest that was warmed (pin), which is also a stack output.
      const web = new ecs.FargateTaskDefinition(this, 'Web', {
        runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.ARM64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
      });
      web.addContainer('nginx', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 512 });
      Aspects.of(this).add(new CachedImages({ cache, warmUp: { pin: true } }));
    }

    new CfnOutput(this, 'NginxImage', { value: cache.imageUri('nginx:1.27'), description: 'nginx:1.27, served from the cache' });
    new CfnOutput(this, 'PrometheusImage', { value: cache.imageUri('quay.io/prometheus/prometheus:v3.5.0') });
  }
}
