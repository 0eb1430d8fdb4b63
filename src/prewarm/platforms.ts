import { Annotations, CfnResource, Stack, Tokenization } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as eks from 'aws-cdk-lib/aws-eks';
import { IConstruct } from 'constructs';

/** What a workload runs on when nothing says: the warm-up falls back to it, and says so. */
export const FALLBACK_PLATFORM = 'linux/amd64';

/**
 * The platforms a workload's images run on, read from the app: an ECS task definition's or a Batch job definition's
 * `runtimePlatform.cpuArchitecture` (ARM64 or X86_64); for an EKS manifest or Helm chart, the AMI types of the node
 * groups of its stack (`AL2023_ARM_64_STANDARD` is linux/arm64, any other linux/amd64). Where nothing says (Fargate
 * without a runtime platform, Auto Mode, Karpenter), `linux/amd64`, with an info annotation.
 */
export function workloadPlatforms(workload: IConstruct): string[] {
  const found = new Set<string>();
  const cfn = CfnResource.isCfnResource(workload) ? workload : workload.node.defaultChild;
  if (cfn instanceof ecs.CfnTaskDefinition) {
    const platform = cfn.runtimePlatform;
    const cpu = platform && !Tokenization.isResolvable(platform)
      ? (platform as ecs.CfnTaskDefinition.RuntimePlatformProperty).cpuArchitecture : undefined;
    if (typeof cpu === 'string' && !Tokenization.isResolvable(cpu)) {
      found.add(cpu.toUpperCase() === 'ARM64' ? 'linux/arm64' : 'linux/amd64');
    }
  } else if (cfn instanceof batch.CfnJobDefinition) {
    const container = cfn.containerProperties as batch.CfnJobDefinition.ContainerPropertiesProperty | undefined;
    const platform = container && !Tokenization.isResolvable(container) ? container.runtimePlatform : undefined;
    const cpu = platform && !Tokenization.isResolvable(platform)
      ? (platform as batch.CfnJobDefinition.RuntimePlatformProperty).cpuArchitecture : undefined;
    if (typeof cpu === 'string' && !Tokenization.isResolvable(cpu)) {
      found.add(cpu.toUpperCase() === 'ARM64' ? 'linux/arm64' : 'linux/amd64');
    }
  } else if (CfnResource.isCfnResource(cfn) && cfn.cfnResourceType.startsWith('Custom::AWSCDK-EKS-')) {
    // aws-eks and aws-eks-v2 node groups alike (each module has its own L1 class): by CloudFormation type
    const nodegroups = Stack.of(cfn).node.findAll()
      .filter((c): c is eks.CfnNodegroup => CfnResource.isCfnResource(c) && c.cfnResourceType === eks.CfnNodegroup.CFN_RESOURCE_TYPE_NAME);
    for (const nodegroup of nodegroups) {
      const ami = nodegroup.amiType;
      if (typeof ami === 'string' && !Tokenization.isResolvable(ami)) {
        found.add(/ARM_64/.test(ami) ? 'linux/arm64' : 'linux/amd64');
      }
    }
  }
  if (found.size === 0) {
    Annotations.of(workload).addInfo(`Warm-up: nothing in the app says which platform ${workload.node.path} runs on, so ${FALLBACK_PLATFORM} `
      + 'is warmed of its multi-platform images; name others with warmUp.platforms.');
    return [FALLBACK_PLATFORM];
  }
  return [...found].sort();
}
