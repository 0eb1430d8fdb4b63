import { Annotations, CfnResource, IAspect, Stack } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { IConstruct } from 'constructs';
import { MappedImage, MappingStatus } from './image-mapping';
import { DocumentFormat } from './private/image-locator';
import { parseJsonWithTokens, rewriteObject } from './private/object-images';
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
        this.visitJsonProperty(node, 'Manifest', DocumentFormat.KUBERNETES);
        break;
      case EKS_HELM_CHART:
        this.visitJsonProperty(node, 'Values', DocumentFormat.HELM_VALUES);
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

  /**
   * A custom resource property holding JSON: a manifest (Kubernetes objects) or Helm values. Images are found where
   * they live (image-locator.ts, shared with the ecr-ptc CLI); values known only at deploy time stay as they are,
   * and only the images that hold one are reported.
   */
  private visitJsonProperty(cfn: CfnResource, property: string, format: DocumentFormat): void {
    const resolved = cfnProperties(cfn)?.[property];
    const chartDefaults = () => Annotations.of(cfn).addWarningV2('cdk-ecr-pull-through-cache:chartDefaults',
      'The values of this Helm chart name no image, so its images are the chart\'s defaults, which the Aspect cannot see or move. '
      + 'Set its image values (the README lists the conventions), or acknowledge this warning.');
    if (resolved === undefined) {
      if (format === DocumentFormat.HELM_VALUES) {
        chartDefaults();
      }
      return;
    }
    const json = parseJsonWithTokens(resolved);
    if (json === undefined) {
      Annotations.of(cfn).addWarningV2('cdk-ecr-pull-through-cache:unreadableJson',
        `${property} is not JSON that can be read before deployment, so its images were not checked against the pull through cache.`);
      return;
    }
    const mapping = this.cache.mapping;
    const mapped = new Map<string, MappedImage>(); // each reference is mapped once, then reported from here
    const mapOnce = (image: string) => mapped.get(image) ?? mapped.set(image, mapping.map(image)).get(image)!;
    const judge = (image: string) => {
      if (json.hasToken(image)) {
        return { deployTime: true };
      }
      const m = mapOnce(image);
      // planned in reportOnly too (on a copy that is not applied), so a map that would be held says so
      return m.status === MappingStatus.REWRITTEN ? { mapped: m, uri: m.uri, cachePath: m.repository } : { mapped: m };
    };
    const value = structuredClone(json.value);
    const documents = format === DocumentFormat.KUBERNETES && Array.isArray(value) ? value : [value];
    const results = documents.flatMap(document => rewriteObject(document, format, judge, mapping.registryDomain, json.hasToken)
      .map(result => ({ ...result, path: format === DocumentFormat.KUBERNETES ? `${describeObject(document)} ${result.path}` : result.path })));
    const shown = (image: string) => json.hasToken(image) ? image.replace(/@@ptc-[0-9a-f]+-\d+@@/g, '${Token}') : image;
    if (format === DocumentFormat.HELM_VALUES && results.length === 0) {
      chartDefaults();
    }

    for (const result of results) {
      const what = `${property} ${result.path}`;
      if ('skipped' in result) {
        if (result.uncertain) {
          Annotations.of(cfn).addInfo(`${what}: '${shown(result.image)}' was left alone: ${result.skipped}`);
        } else if (!result.informational) {
          this.report(cfn, `${what}: '${shown(result.image)}' was left alone: ${result.skipped}`);
        }
        continue;
      }
      const { mapped: m, deployTime } = result.verdict as { mapped?: MappedImage; deployTime?: boolean };
      if (deployTime) {
        Annotations.of(cfn).addWarningV2('cdk-ecr-pull-through-cache:deployTimeImage',
          `${what}: '${shown(result.image)}' is known only at deploy time, so it was not checked against the pull through cache: `
          + 'pass an image the cache serves (PullThroughCacheRules.imageUri), or acknowledge this warning.');
      } else if (m === undefined || m.status === MappingStatus.ALREADY_CACHED) {
        continue;
      } else if (m.status !== MappingStatus.REWRITTEN) {
        this.report(cfn, `${what}: '${m.input}' is not served by the pull through cache: ${m.reason}`);
      } else if (result.held !== undefined) {
        this.report(cfn, `${what}: '${m.input}' was not moved to the cache: ${result.held}`);
      } else if (this.reportOnly) {
        Annotations.of(cfn).addWarningV2('cdk-ecr-pull-through-cache:notCached', `${what}: '${m.input}' would be pulled through the cache as ${m.uri}`);
      } else if (m.warning) {
        Annotations.of(cfn).addWarningV2('cdk-ecr-pull-through-cache:firstPullByDigest', `${what}: ${m.warning}`);
      }
    }
    const written = JSON.stringify(value);
    if (!this.reportOnly && written !== JSON.stringify(json.value)) {
      cfn.addPropertyOverride(property, json.restore(written));
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

/** A Kubernetes object's kind and name, for messages about one object of a manifest. */
function describeObject(document: unknown): string {
  const object = document as { kind?: unknown; metadata?: { name?: unknown } } | undefined;
  return `${typeof object?.kind === 'string' ? object.kind : 'object'}/${typeof object?.metadata?.name === 'string' ? object.metadata.name : '?'}`;
}
