/**
 * The only two places this library reaches past aws-cdk-lib's public API, kept here so they are easy to find and to
 * check on each aws-cdk-lib upgrade (the tests of the Aspect exercise both).
 *
 * 1. `CfnResource._toCloudFormation()`: the resource as synthesis renders it, property overrides included. The
 *    public API has no reader for a rendered resource: an L1's properties are protected (`cfnProperties`), a custom
 *    resource's (`CfnResource` with `properties`) are not exposed at all, and overrides live in a private field.
 * 2. `ContainerDefinition.renderContainerDefinition`: the ECS L2 fixes a container's image at construction and has
 *    no setter, and a property override of `ContainerDefinitions.<n>.Image` needs the container's position, which
 *    the task definition keeps private (a container may also be created in another scope than its task definition).
 *    So the Aspect wraps the public render method of that one container object.
 */
import { CfnResource } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';

/** `cfn` as synthesis renders it: `{ Resources: { <logical id>: { Type, Properties, ... } } }`, tokens unresolved. */
export function renderedResource(cfn: CfnResource): object {
  return (cfn as unknown as { _toCloudFormation(): object })._toCloudFormation();
}

/**
 * Make `container` render with the image `image()` gives at synthesis, and without repository credentials (they
 * were for the registry the image leaves; ECR is pulled with the task's execution role).
 */
export function renderWithImage(container: ecs.ContainerDefinition, image: () => string): void {
  const render = container.renderContainerDefinition.bind(container);
  container.renderContainerDefinition = (taskDefinition?: ecs.TaskDefinition) => ({
    ...render(taskDefinition), image: image(), repositoryCredentials: undefined,
  });
}
