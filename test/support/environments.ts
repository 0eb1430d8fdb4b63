/**
 * The concrete environments the CachedImages tests deploy to, and an existing VPC there: a VPC created in a stack
 * with a concrete environment names its Availability Zones literally, which cfn-lint rightly flags (W3010).
 */
import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';

export const ACCOUNT = '111122223333';
export const ENV = { account: ACCOUNT, region: 'eu-west-1' };
export const REGISTRY = `${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com`;

/** The VPC an EKS cluster of these tests runs in (imported, as most platform teams' clusters do). */
export function existingVpc(stack: Stack): ec2.IVpc {
  return ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
    vpcId: 'vpc-0a1b2c3d4e5f60718',
    availabilityZones: ['a', 'b'].map(z => `${stack.region}${z}`),
    privateSubnetIds: ['subnet-0a1b2c3d4e5f60718', 'subnet-0a1b2c3d4e5f60719'],
    publicSubnetIds: ['subnet-0a1b2c3d4e5f6071a', 'subnet-0a1b2c3d4e5f6071b'],
  });
}

/** An aws-eks-v2 cluster with the kubectl layer (needed for manifests and charts), in the existing VPC. */
export function eksV2Cluster(stack: Stack): eks.Cluster {
  return new eks.Cluster(stack, 'Cluster', {
    version: eks.KubernetesVersion.V1_33,
    defaultCapacity: 0,
    defaultCapacityType: eks.DefaultCapacityType.NODEGROUP,
    vpc: existingVpc(stack),
    kubectlProviderOptions: { kubectlLayer: new KubectlV35Layer(stack, 'Kubectl') },
  });
}
