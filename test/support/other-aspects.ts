/**
 * Aspects of someone else's, for checking that CachedImages keeps what others add. They act when they meet a
 * container, which comes after its task definition's L1 resource in the tree (so after CachedImages saw that).
 */
import { IAspect } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { IConstruct } from 'constructs';

export const SIDECAR = 'zz-sidecar';
export const SIDECAR_IMAGE = 'quay.io/org/sidecar:1';
export const ADDED_VARIABLE = { name: 'ADDED_LATER', value: 'yes' };

/** Adds a variable to every L2 container, and a sidecar container to its task definition. */
export class AddsSidecar implements IAspect {
  public visit(node: IConstruct): void {
    if (node instanceof ecs.ContainerDefinition && node.containerName !== SIDECAR) {
      node.addEnvironment(ADDED_VARIABLE.name, ADDED_VARIABLE.value);
      if (!node.taskDefinition.findContainer(SIDECAR)) {
        node.taskDefinition.addContainer(SIDECAR, { image: ecs.ContainerImage.fromRegistry(SIDECAR_IMAGE), memoryLimitMiB: 64, essential: false });
      }
    }
  }
}
