/**
 * Stages the CachedImages Aspect cannot reach. The Aspects of a scope never visit the constructs of a `Stage`
 * below it (by design: aws/aws-cdk#20468, https://github.com/aws/aws-cdk/issues/20468), and CDK synthesizes a
 * nested Stage before it runs the Aspects of its parent, so an Aspect cannot add itself to a Stage it meets: too
 * late. Every CDK Pipelines app keeps its stacks in Stages; an image there would stay upstream without a word.
 */
import { Aspects, CfnResource, IAspect, Stage } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { IConstruct } from 'constructs';

/** The CloudFormation types whose images the Aspect moves or reports (besides L2 ECS containers). */
export const IMAGE_BEARING_TYPES: readonly string[] = [
  'AWS::ECS::TaskDefinition',
  'Custom::AWSCDK-EKS-KubernetesResource',
  'Custom::AWSCDK-EKS-HelmChart',
  'AWS::Batch::JobDefinition',
  'AWS::CodeBuild::Project',
  'AWS::AppRunner::Service',
  'AWS::SageMaker::Model',
];

function bearsImages(node: IConstruct): boolean {
  if (node instanceof ecs.ContainerDefinition) {
    return true;
  }
  const renderedByL2 = node.node.scope instanceof ecs.TaskDefinition && node.node.scope.node.defaultChild === node; // its containers count
  return CfnResource.isCfnResource(node) && IMAGE_BEARING_TYPES.includes(node.cfnResourceType) && !renderedByL2;
}

/** The constructs of `stage` (not of Stages nested in it) that hold images and that no matching Aspect reaches. */
function unreached(stage: Stage, isCovering: (aspect: IAspect) => boolean): IConstruct[] {
  const found: IConstruct[] = [];
  const walk = (node: IConstruct, covered: boolean) => {
    const here = covered || Aspects.of(node).all.some(isCovering);
    if (!here && bearsImages(node)) {
      found.push(node);
    }
    for (const child of node.node.children) {
      if (!Stage.isStage(child)) {
        walk(child, here);
      }
    }
  };
  walk(stage, false);
  return found;
}

/**
 * The error for the Stages directly under `node` whose image-holding constructs no covering Aspect reaches, or
 * undefined. Stages nested deeper are checked when the Aspect (once added to their parent Stage) visits their parent.
 */
export function unreachedStagesProblem(node: IConstruct, isCovering: (aspect: IAspect) => boolean): string | undefined {
  const stages = node.node.children.filter(Stage.isStage)
    .map(stage => ({ stage, constructs: unreached(stage, isCovering) }))
    .filter(s => s.constructs.length > 0);
  if (stages.length === 0) {
    return undefined;
  }
  const listed = stages.map(({ stage, constructs }) => `${stage.node.path} (${constructs.length} with images, such as `
    + `${constructs[0].node.path})`).join(', ');
  return `CachedImages: the Aspects of ${node.node.path || 'the app'} do not reach the stacks of a Stage (aws/aws-cdk#20468), `
    + `so the images of ${listed} would stay where they are, unchecked. Add CachedImages to each Stage, as CDK Pipelines `
    + 'apps do before pipeline.addStage(stage): Aspects.of(stage).add(new CachedImages({ cache })); '
    + 'for a Stage the cache must not serve (another account), add it with reportOnly: true.';
}
