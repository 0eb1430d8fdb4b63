import { Annotations, CfnResource, IAspect, Stack } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { IConstruct } from 'constructs';
import { MappedImage, MappingStatus } from './image-mapping';
import { rewriteObjectImages } from './private/object-images';
import { PullThroughCacheRules } from './pull-through-cache-rules';

/** How an image the cache cannot serve is reported. */
export enum UnservedImageLevel {
  /** An error annotation: `cdk synth` fails. */
  ERROR = 'ERROR',
  /** A warning annotation (fails only `cdk synth --strict`). */
  WARNING = 'WARNING',
}

/** Properties of `CachedImages`. */
export interface CachedImagesProps {
  /** The cache whose rules decide which images are served, and how. */
  readonly cache: PullThroughCacheRules;

  /**
   * Only report: annotate every image that does not come from the cache, and change nothing.
   * @default false
   */
  readonly reportOnly?: boolean;

  /**
   * How images the cache cannot serve (no rule for their registry, an unsupported registry) are reported.
   * @default UnservedImageLevel.ERROR
   */
  readonly unservedImages?: UnservedImageLevel;
}

/** CloudFormation types whose images the Aspect rewrites, and the property that holds them. */
const ECS_TASK_DEFINITION = 'AWS::ECS::TaskDefinition';
const EKS_MANIFEST = 'Custom::AWSCDK-EKS-KubernetesResource';
const EKS_HELM_CHART = 'Custom::AWSCDK-EKS-HelmChart';

/**
 * Rewrites the container images of a CDK app to the pull through cache: every container definition of ECS
 * task definitions, every pod template of EKS `KubernetesManifest`s (aws-eks and aws-eks-v2), and Helm chart
 * values that follow the `image.registry` / `image.repository` conventions. Images the cache cannot serve get
 * an annotation. ECS task definitions whose images move to the cache get an execution role with pull rights.
 *
 * @example
 * declare const app: App;
 * declare const cache: PullThroughCacheRules;
 * Aspects.of(app).add(new CachedImages({ cache }));
 */
export class CachedImages implements IAspect {
  private readonly cache: PullThroughCacheRules;
  private readonly reportOnly: boolean;
  private readonly level: UnservedImageLevel;

  constructor(props: CachedImagesProps) {
    if (!(props?.cache instanceof PullThroughCacheRules)) {
      throw new Error('CachedImages: cache is required, the PullThroughCacheRules whose rules serve the images.');
    }
    this.cache = props.cache;
    this.reportOnly = props.reportOnly ?? false;
    this.level = props.unservedImages ?? UnservedImageLevel.ERROR;
  }

  public visit(node: IConstruct): void {
    if (!CfnResource.isCfnResource(node)) {
      return;
    }
    switch (node.cfnResourceType) {
      case ECS_TASK_DEFINITION:
        this.visitTaskDefinition(node as ecs.CfnTaskDefinition);
        break;
      case EKS_MANIFEST:
        this.visitJsonProperty(node, 'Manifest');
        break;
      case EKS_HELM_CHART:
        this.visitJsonProperty(node, 'Values');
        break;
      default:
    }
  }

  private visitTaskDefinition(cfn: ecs.CfnTaskDefinition): void {
    const containers = Stack.of(cfn).resolve(cfn.containerDefinitions);
    if (!Array.isArray(containers)) {
      return;
    }
    let rewritten = false;
    // the L1 property, resolved: camelCase, as the L2 renders it
    containers.forEach((container: { image?: unknown; name?: string }, index: number) => {
      if (typeof container.image !== 'string') {
        return; // an ECR repository or asset image (a token): not a public registry image
      }
      const uri = this.decide(cfn, container.image, `container ${container.name ?? index}`);
      if (uri !== undefined) {
        cfn.addPropertyOverride(`ContainerDefinitions.${index}.Image`, uri);
        rewritten = true;
      }
    });
    const taskDefinition = cfn.node.scope;
    if (rewritten && taskDefinition instanceof ecs.TaskDefinition) {
      // ECS pulls with the execution role; a public image needed none, a cached one does.
      this.cache.grantPull(taskDefinition.obtainExecutionRole());
    }
  }

  /** A custom resource property holding JSON (a manifest or Helm values). */
  private visitJsonProperty(cfn: CfnResource, property: string): void {
    const stack = Stack.of(cfn);
    const resolved = cfnProperties(cfn)?.[property];
    if (typeof resolved !== 'string') {
      if (resolved !== undefined) {
        Annotations.of(cfn).addWarningV2('cdk-ecr-pull-through-cache:tokenManifest',
          `${property} holds values known only at deploy time, so its images were not checked against the pull through cache.`);
      }
      return;
    }
    const original = JSON.parse(resolved);
    const mapped = new Map<string, MappedImage>(); // each reference is mapped once, then reported from here
    const mapOnce = (image: string) => mapped.get(image) ?? mapped.set(image, this.cache.mapping.map(image)).get(image)!;
    const { value, unserved, found } = rewriteObjectImages(original, image => {
      const m = mapOnce(image);
      const served = m.status === MappingStatus.REWRITTEN || m.status === MappingStatus.ALREADY_CACHED;
      return { served, uri: m.status === MappingStatus.REWRITTEN ? m.uri : undefined, cachePath: m.repository };
    }, this.cache.mapping.registryDomain);
    for (const f of unserved) {
      this.report(cfn, `${f.path}: '${f.image}' is not served by the pull through cache: ${mapOnce(f.image).reason ?? 'see the cache upstreams'}`);
    }
    if (this.reportOnly) {
      for (const f of found.filter(x => mapOnce(x.image).status === MappingStatus.REWRITTEN)) {
        Annotations.of(cfn).addWarningV2('cdk-ecr-pull-through-cache:notCached',
          `${f.path}: '${f.image}' would be pulled through the cache as ${mapOnce(f.image).uri}`);
      }
      return;
    }
    if (JSON.stringify(value) !== JSON.stringify(original)) {
      cfn.addPropertyOverride(property, stack.toJsonString(value));
    }
  }

  /** The cache URI to use, or undefined to keep the image (reporting why). */
  private decide(scope: IConstruct, image: string, what: string): string | undefined {
    const mapped = this.cache.mapping.map(image);
    switch (mapped.status) {
      case MappingStatus.REWRITTEN:
        if (this.reportOnly) {
          Annotations.of(scope).addWarningV2('cdk-ecr-pull-through-cache:notCached', `${what}: '${image}' would be pulled through the cache as ${mapped.uri}`);
          return undefined;
        }
        if (mapped.warning) {
          Annotations.of(scope).addWarningV2('cdk-ecr-pull-through-cache:firstPullByDigest', mapped.warning);
        }
        return mapped.uri;
      case MappingStatus.ALREADY_CACHED:
        return undefined;
      default:
        this.report(scope, `${what}: '${image}' is not served by the pull through cache: ${mapped.reason}`);
        return undefined;
    }
  }

  private report(scope: IConstruct, message: string): void {
    if (this.level === UnservedImageLevel.ERROR) {
      Annotations.of(scope).addError(message);
    } else {
      Annotations.of(scope).addWarningV2('cdk-ecr-pull-through-cache:unservedImage', message);
    }
  }
}

/**
 * The properties of an L1 resource as CloudFormation will see them. Custom resources expose no typed getter for
 * them, so this reads the resource's own rendering (`_toCloudFormation`, the same call synthesis makes).
 */
function cfnProperties(cfn: CfnResource): Record<string, unknown> | undefined {
  const rendered = (cfn as unknown as { _toCloudFormation(): object })._toCloudFormation();
  const resolved: { Resources: Record<string, { Properties?: Record<string, unknown> }> } = Stack.of(cfn).resolve(rendered);
  return Object.values(resolved.Resources)[0]?.Properties;
}
