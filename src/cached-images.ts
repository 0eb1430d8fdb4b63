// Over 400 lines: one Aspect visiting every kind of workload (ECS L2 and L1, Batch, EKS manifests and charts), each its own method.
import { Annotations, CfnParameter, CfnResource, IAspect, IResolvable, Reference, Stack, Token, Tokenization } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { IConstruct } from 'constructs';
import { MappedImage, MappingStatus } from './image-mapping';
import { CacheWarmUp } from './prewarm/cache-warm-up';
import { workloadPlatforms } from './prewarm/platforms';
import { checkWarmUpOptions } from './prewarm/warm-up-checks';
import { WarmUpOptions } from './prewarm/warm-up-options';
import { environmentCaution, environmentProblem } from './private/cache-environment';
import { canonicalEcrHost, mappingWarningId } from './private/cache-mapping';
import { ECR_REGISTRY_URL } from './private/catalogue';
import { renderWithImage } from './private/cdk-internals';
import { inCacheRegistry } from './private/ecr-url-suffix';
import { deployTimeArnCaution, executionRoleOf } from './private/execution-role';
import { moveJsonPropertyImages, nodeRolesProblem } from './private/json-property-images';
import { DocumentFormat } from './private/locator-tree';
import { unreachedStagesProblem } from './private/stage-coverage';
import { CDK_TOKEN, mapTokenTag, tokensOnlyInTag } from './private/token-tags';
import { reportUnmovedImages, reportsImagesOf } from './private/unmoved-images';
import { IPullThroughCacheRules } from './rules/i-pull-through-cache-rules';

/** How an image the cache cannot serve is reported. */
export enum UnservedImageLevel {
  /** An error annotation: `cdk synth` fails. */
  ERROR = 'ERROR',
  /** A warning annotation (fails only `cdk synth --strict`). */
  WARNING = 'WARNING',
}

/** Properties of `CachedImages`. */
export interface CachedImagesProps {
  /** The cache whose rules decide which images are served, and how: made in this app, or imported (`fromPullThroughCacheRulesAttributes`). */
  readonly cache: IPullThroughCacheRules;

  /**
   * Only report: annotate every image that does not come from the cache, and change nothing (the synthesized
   * templates are byte for byte those of the app without the Aspect).
   * @default false
   */
  readonly reportOnly?: boolean;

  /**
   * How images the cache cannot serve (no rule for their registry, an unsupported registry) are reported.
   * @default - `UnservedImageLevel.ERROR`; `UnservedImageLevel.WARNING` with `reportOnly`
   */
  readonly unservedImages?: UnservedImageLevel;

  /**
   * Warm the cache at deploy: every image moved to the cache, or written for it (`imageUri`), is pulled through it
   * before the workloads that use it are created or updated; optionally pinned to its digest and gated on its scan
   * (docs/PREWARM.md).
   * @default - no warm-up: the first pod or task that needs an image pays its first pull
   */
  readonly warmUp?: WarmUpOptions;
}

/** CloudFormation types whose images the Aspect rewrites, and the property that holds them. */
const ECS_TASK_DEFINITION = 'AWS::ECS::TaskDefinition';
const EKS_MANIFEST = 'Custom::AWSCDK-EKS-KubernetesResource';
const EKS_HELM_CHART = 'Custom::AWSCDK-EKS-HelmChart';

/**
 * The image each moved ECS container has now, shared by every `CachedImages` of the app: a second Aspect (another
 * cache) decides on what the first one made, exactly as it does on a manifest the first one rewrote.
 */
const movedContainers = new WeakMap<ecs.ContainerDefinition, string>();
/** The same for the containers of L1 task definitions, by index. */
const movedL1Containers = new WeakMap<ecs.CfnTaskDefinition, Map<number, string>>();
/** What each moved ECS container renders: its cache URI, or as the warm-up gives it (pinned). */
const renderedImages = new WeakMap<ecs.ContainerDefinition, string>();
/** The same for AWS Batch job definitions (their single container). */
const movedJobs = new WeakMap<batch.CfnJobDefinition, string>();

/**
 * Rewrites the container images of a CDK app to the pull through cache: every container definition of ECS
 * task definitions, every pod template of EKS `KubernetesManifest`s (aws-eks and aws-eks-v2), and Helm chart
 * values that follow the `image.registry` / `image.repository` conventions. Images the cache cannot serve get
 * an annotation. ECS task definitions whose images move to the cache get an execution role with pull rights.
 *
 * @example
 * declare const app: App;
 * declare const cache: IPullThroughCacheRules;
 * Aspects.of(app).add(new CachedImages({ cache }));
 */
export class CachedImages implements IAspect {
  private readonly cache: IPullThroughCacheRules;
  private readonly reportOnly: boolean;
  private readonly level: UnservedImageLevel;
  private readonly warmUp?: WarmUpOptions;

  constructor(props: CachedImagesProps) {
    if (!isCache(props?.cache)) {
      throw new Error('CachedImages: cache is required, the PullThroughCacheRules whose rules serve the images '
        + '(or one imported with PullThroughCacheRules.fromPullThroughCacheRulesAttributes).');
    }
    if (props.reportOnly !== undefined && typeof props.reportOnly !== 'boolean') {
      throw new Error(`CachedImages: reportOnly must be true or false, not ${JSON.stringify(props.reportOnly)}.`);
    }
    const levels: string[] = Object.values(UnservedImageLevel);
    if (props.unservedImages !== undefined && !levels.includes(props.unservedImages)) {
      throw new Error(`CachedImages: unservedImages must be one of ${levels.map(l => `UnservedImageLevel.${l}`).join(', ')}, `
        + `not ${JSON.stringify(props.unservedImages)}.`);
    }
    if (props.warmUp !== undefined) {
      checkWarmUpOptions('CachedImages', props.warmUp);
      if (props.reportOnly) {
        throw new Error('CachedImages: warmUp and reportOnly are both set; a report changes nothing, so it warms nothing. Remove one of them.');
      }
    }
    this.cache = props.cache;
    this.warmUp = props.warmUp;
    this.reportOnly = props.reportOnly ?? false;
    // a report must not fail the synth it reports on, unless asked to
    this.level = props.unservedImages ?? (this.reportOnly ? UnservedImageLevel.WARNING : UnservedImageLevel.ERROR);
  }

  public visit(node: IConstruct): void {
    const unreached = unreachedStagesProblem(node, aspect => aspect instanceof CachedImages);
    if (unreached) {
      throw new Error(unreached); // fail closed: a Stage was synthesized already, its images unchecked
    }
    if (node instanceof ecs.TaskDefinition) {
      // Its containers are moved here, before any Aspect meets its L1 resource (a child, visited after it): a reader
      // of that resource (cdk-nag's AwsSolutions-ECS2) resolves the container list, and CDK caches that rendering.
      node.node.children.filter((c): c is ecs.ContainerDefinition => c instanceof ecs.ContainerDefinition)
        .forEach(c => this.visitContainer(c));
      return;
    }
    if (node instanceof ecs.ContainerDefinition) {
      this.visitContainer(node);
      return;
    }
    if (!CfnResource.isCfnResource(node)) {
      return;
    }
    switch (node.cfnResourceType) {
      case ECS_TASK_DEFINITION:
        if (!(node.node.scope instanceof ecs.TaskDefinition && node.node.scope.node.defaultChild === node)) {
          this.visitL1TaskDefinition(node as ecs.CfnTaskDefinition); // an L2 task definition's containers are visited themselves
        }
        break;
      case EKS_MANIFEST:
        if (this.inCacheEnvironment(node)) {
          this.visitJsonProperty(node, 'Manifest', DocumentFormat.KUBERNETES);
        }
        break;
      case EKS_HELM_CHART:
        if (this.inCacheEnvironment(node)) {
          this.visitJsonProperty(node, 'Values', DocumentFormat.HELM_VALUES);
        }
        break;
      default:
        if (node instanceof batch.CfnJobDefinition) {
          this.visitJobDefinition(node);
        }
        if (reportsImagesOf(node)) {
          this.reportUnmoved(node); // (a Batch job's container property is moved above, and skipped there)
        }
    }
  }

  /**
   * An AWS Batch job definition (`batch.EcsJobDefinition`, or L1) of one container: its image moves by a property
   * override (the L2 renders its container when it is made, so nothing is frozen), and the container's execution
   * role, which Batch pulls with, is granted.
   */
  private visitJobDefinition(cfn: batch.CfnJobDefinition): void {
    const container = cfn.containerProperties as batch.CfnJobDefinition.ContainerPropertiesProperty | undefined;
    const image = movedJobs.get(cfn) ?? inCacheRegistry(cfn, this.cache.mapping, container?.image);
    if (typeof image !== 'string' || Tokenization.isResolvable(container)) {
      return;
    }
    const owner = cfn.node.scope instanceof batch.EcsJobDefinition && cfn.node.scope.node.defaultChild === cfn ? cfn.node.scope : undefined;
    const arn = container!.executionRoleArn;
    const role = () => owner?.container.executionRole
      ?? (typeof arn === 'string' ? executionRoleOf(cfn, arn) : undefined);
    const grant = () => role() === undefined
      ? Annotations.of(cfn).addError(`${cfn.node.path} has an image in the pull through cache, but its container has no executionRoleArn, `
        + 'which Batch pulls images from ECR with. Set one, and the Aspect grants it.')
      : this.grantPull(cfn, () => role()!);
    if (this.servedAsWritten(image)) {
      if (!movedJobs.has(cfn) && this.warmUp) {
        cfn.addPropertyOverride('ContainerProperties.Image', this.warmed(cfn, image)); // written for the cache: warmed where it is
        movedJobs.set(cfn, image);
        return grant();
      }
      return movedJobs.has(cfn) ? undefined : grant();
    }
    if (Token.isUnresolved(image) && !tokensOnlyInTag(image, CDK_TOKEN)) {
      return this.reportTokenImage(cfn, 'container: the image', image);
    }
    const uri = this.inCacheEnvironment(cfn) ? this.decide(cfn, image, 'container') : undefined;
    if (uri !== undefined) {
      cfn.addPropertyOverride('ContainerProperties.Image', this.warmed(cfn, uri));
      if (container!.repositoryCredentials !== undefined) {
        cfn.addPropertyDeletionOverride('ContainerProperties.RepositoryCredentials');
      }
      movedJobs.set(cfn, uri);
      grant();
    }
  }

  /** The images of a resource the Aspect does not move, each one said (unmoved-images.ts). */
  private reportUnmoved(cfn: CfnResource): void {
    reportUnmovedImages(cfn, this.cache.mapping, cfn instanceof batch.CfnJobDefinition ? ['ContainerProperties'] : []);
  }

  /**
   * An L2 container. Its image is rendered late, by the task definition's container list, so the move goes into
   * that rendering: whatever else is added to the container or the task definition later (by code or by other
   * Aspects) stays, and nothing is resolved (or frozen) here.
   */
  private visitContainer(container: ecs.ContainerDefinition): void {
    const what = `container ${container.containerName}`;
    const image = movedContainers.get(container) ?? inCacheRegistry(container, this.cache.mapping, container.imageName);
    if (this.servedAsWritten(image)) {
      if (!movedContainers.has(container)) {
        // written for the cache already (imageUri, registryUri): nothing to move, but ECS pulls it with the execution role
        this.grantPull(container, () => container.taskDefinition.obtainExecutionRole());
        if (this.warmUp) {
          this.moveContainer(container, image); // and the warm-up warms (and pins) it where it is written
        }
      }
      return;
    }
    if (Token.isUnresolved(image) && !tokensOnlyInTag(image, CDK_TOKEN)) {
      this.reportTokenImage(container, `${what}: the image`, image);
      return;
    }
    if (!this.inCacheEnvironment(container)) {
      return;
    }
    const uri = this.decide(container, image, what);
    if (uri === undefined) {
      return;
    }
    this.moveContainer(container, uri);
    // ECS pulls with the execution role; a public image needed none, a cached one does.
    this.grantPull(container, () => container.taskDefinition.obtainExecutionRole());
  }

  /** Renders the container with `uri` (as the warm-up gives it: pinned, with `pin`), keeping everything else. */
  private moveContainer(container: ecs.ContainerDefinition, uri: string): void {
    if (!movedContainers.has(container)) {
      // the latest decision of any CachedImages of the app (private/cdk-internals.ts says why this is not public API)
      renderWithImage(container, () => renderedImages.get(container)!);
    }
    movedContainers.set(container, uri);
    renderedImages.set(container, this.warmed(container.taskDefinition, uri));
  }

  /** The image a workload pulls: `uri`, or with `warmUp`, `uri` warmed at deploy before the workload (and pinned, with `pin`). */
  private warmed(workload: IConstruct, uri: string): string {
    return this.warmUp === undefined ? uri
      : CacheWarmUp.of(workload, this.cache, this.warmUp).use(workload, uri, this.warmUp.platforms ?? workloadPlatforms(workload));
  }

  /** An L1 task definition of the user's own: its literal container list, moved by property overrides. */
  private visitL1TaskDefinition(cfn: ecs.CfnTaskDefinition): void {
    const containers = cfn.containerDefinitions;
    if (containers === undefined) {
      return;
    }
    if (!Array.isArray(containers)) {
      this.reportTokenImage(cfn, 'containerDefinitions', undefined); // a list known only at deploy time
      return;
    }
    const moved = movedL1Containers.get(cfn) ?? new Map<number, string>();
    let movedHere = false;
    let pullsFromCache = false;
    containers.forEach((c: ecs.CfnTaskDefinition.ContainerDefinitionProperty | IResolvable, index: number) => {
      const container = Tokenization.isResolvable(c) ? undefined : c as ecs.CfnTaskDefinition.ContainerDefinitionProperty;
      const what = `container ${typeof container?.name === 'string' ? container.name : index}`;
      const image = moved.get(index) ?? inCacheRegistry(cfn, this.cache.mapping, container?.image);
      if (typeof image === 'string' && !moved.has(index) && this.servedAsWritten(image)) {
        pullsFromCache = true; // written for the cache already: pulled with the execution role all the same
        if (this.warmUp) {
          cfn.addPropertyOverride(`ContainerDefinitions.${index}.Image`, this.warmed(cfn, image));
        }
        return;
      }
      if (typeof image !== 'string' || (Token.isUnresolved(image) && !tokensOnlyInTag(image, CDK_TOKEN))) {
        this.reportTokenImage(cfn, `${what}: the image`, image);
        return;
      }
      if (!this.inCacheEnvironment(cfn)) {
        return;
      }
      const uri = this.decide(cfn, image, what);
      if (uri !== undefined) {
        cfn.addPropertyOverride(`ContainerDefinitions.${index}.Image`, this.warmed(cfn, uri));
        if (container?.repositoryCredentials !== undefined) {
          cfn.addPropertyDeletionOverride(`ContainerDefinitions.${index}.RepositoryCredentials`);
        }
        moved.set(index, uri);
        movedHere = true;
      }
    });
    movedL1Containers.set(cfn, moved);
    if (!movedHere && !pullsFromCache) {
      return;
    }
    const executionRoleArn = cfn.executionRoleArn;
    if (executionRoleArn === undefined) {
      Annotations.of(cfn).addError(`${cfn.node.path} has images in the pull through cache, but no executionRoleArn: ECS pulls `
        + 'images from ECR with the task execution role. Set executionRoleArn to a role of this app and call cache.grantPull(role), '
        + 'or use an ecs.TaskDefinition (the Aspect then creates and grants its execution role).');
      return;
    }
    this.grantPull(cfn, () => executionRoleOf(cfn, executionRoleArn));
  }

  /** Whether an image is written for this cache already (`imageUri`, or built on `registryUri`, literal or token). */
  private servedAsWritten(image: string): boolean {
    const mapped = this.cache.mapping.map(image);
    return !this.reportOnly && mapped.status === MappingStatus.ALREADY_CACHED && mapped.repository !== undefined;
  }

  /** Grants the role pulls from the cache, or says at synth why it cannot. */
  private grantPull(scope: IConstruct, role: () => iam.IRole): void {
    try {
      const grantee = role();
      this.cache.grantPull(grantee);
      const caution = warnedRoles.has(grantee) ? undefined : deployTimeArnCaution(grantee);
      if (caution) {
        warnedRoles.add(grantee);
        Annotations.of(scope).addWarningV2('cdk-ecr-pull-through-cache:executionRoleFromArn', `${scope.node.path}: ${caution}`);
      }
    } catch (e) {
      Annotations.of(scope).addError(`${scope.node.path}: its images were moved to the pull through cache, but the execution role `
        + `cannot pull them: ${(e as Error).message}`);
    }
  }

  /** Whether `scope` may use the cache; if not, an error says why (the URIs would name a registry with no cache). */
  private inCacheEnvironment(scope: IConstruct): boolean {
    const problem = environmentProblem(this.cache, scope);
    if (problem) {
      Annotations.of(scope).addError(`CachedImages: ${problem}`);
    }
    const caution = problem === undefined ? environmentCaution(this.cache, scope) : undefined;
    if (caution && !cautioned.has(Stack.of(scope))) {
      cautioned.add(Stack.of(scope));
      Annotations.of(Stack.of(scope)).addWarningV2('cdk-ecr-pull-through-cache:stackWithoutEnvironment', `CachedImages: ${caution}`);
    }
    return problem === undefined;
  }

  /**
   * An image known only at deploy time (a parameter, `Fn.join`, an SSM value): it cannot be checked. Images of
   * the app's own ECR repositories and assets carry `.dkr.ecr.` in their literal part and are the app's business.
   */
  private reportTokenImage(scope: IConstruct, subject: string, image: string | undefined): void {
    // an asset's URI is a token whole (`Fn::Sub` of `${AWS::AccountId}.dkr.ecr...`): read what it resolves to
    const rendered = image === undefined ? '' : JSON.stringify(Stack.of(scope).resolve(image));
    if (rendered.includes('.dkr.ecr.')) {
      return;
    }
    if (image !== undefined && isAwsFluentBit(image)) {
      Annotations.of(scope).addInfo(`${subject} is AWS's own FireLens image (aws-for-fluent-bit, from its public SSM parameter), `
        + 'in an ECR registry of AWS that the execution role may pull from: left as it is');
      return;
    }
    Annotations.of(scope).addWarningV2('cdk-ecr-pull-through-cache:tokenImage', `${subject} is known only at deploy time `
      + `(${image === undefined ? 'a token' : JSON.stringify(Stack.of(scope).resolve(image))}), so it was not checked against the pull `
      + 'through cache. Write it as a literal (a parameter or SSM value can hold the tag alone), or build it from cache.registryUri.');
  }

  /** A custom resource property holding JSON: a manifest (Kubernetes objects) or Helm values (json-property-images.ts). */
  private visitJsonProperty(cfn: CfnResource, property: string, format: DocumentFormat): void {
    const moved = moveJsonPropertyImages(cfn, property, format, {
      mapping: this.cache.mapping,
      reportOnly: this.reportOnly,
      report: (scope, message) => this.report(scope, message),
      reportUnserved: (scope, what, mapped) => this.reportUnserved(scope, what, mapped),
      warm: this.warmUp && (uri => this.warmed(cfn, uri)),
    });
    const unpermitted = moved ? nodeRolesProblem(this.cache, cfn) : undefined;
    if (unpermitted) {
      Annotations.of(cfn).addWarningV2('cdk-ecr-pull-through-cache:nodeRoles', unpermitted);
    }
  }

  /** The cache URI to use, or undefined to keep the image (reporting why). */
  private decide(scope: IConstruct, image: string, what: string): string | undefined {
    const mapped = (Token.isUnresolved(image) ? mapTokenTag(this.cache.mapping, image, CDK_TOKEN) : undefined) ?? this.cache.mapping.map(image);
    switch (mapped.status) {
      case MappingStatus.REWRITTEN:
        if (this.reportOnly) {
          Annotations.of(scope).addWarningV2('cdk-ecr-pull-through-cache:notCached', `${what}: '${image}' would be pulled through the cache as ${mapped.uri}`);
          return undefined;
        }
        if (mapped.warning) {
          Annotations.of(scope).addWarningV2(mappingWarningId(mapped.warning), `${what}: ${mapped.warning}`);
        }
        return mapped.uri;
      case MappingStatus.ALREADY_CACHED:
        return undefined;
      default:
        this.reportUnserved(scope, what, mapped);
        return undefined;
    }
  }

  /**
   * An image the cache does not serve. One in the private ECR registry of another account (a shared-services
   * account's) is the app's own business, as its own repositories are: noted, not an error. (One in the cache's
   * account, in another Region, is most likely another cache's: reported.)
   */
  private reportUnserved(scope: IConstruct, what: string, mapped: MappedImage): void {
    const registry = ECR_REGISTRY_URL.exec(canonicalEcrHost(mapped.input.split('/')[0])); // dual-stack and FIPS hosts too
    if (mapped.status === MappingStatus.NO_RULE && registry && !this.cache.mapping.registryUri.startsWith(`${registry[1]}.`)) {
      Annotations.of(scope).addInfo(`${what}: '${mapped.input}' is in another private ECR registry, not pulled through the cache: left as it is`);
      return;
    }
    this.report(scope, `${what}: '${mapped.input}' is not served by the pull through cache: ${mapped.reason}`);
  }

  private report(scope: IConstruct, message: string): void {
    if (this.level === UnservedImageLevel.ERROR) {
      Annotations.of(scope).addError(message);
    } else {
      Annotations.of(scope).addWarningV2('cdk-ecr-pull-through-cache:unservedImage', message);
    }
  }
}

/** Roles imported from a deploy-time ARN already warned about (once each, however many containers they pull). */
const warnedRoles = new WeakSet<iam.IRole>();
/** Stacks already told that they have no environment (once each, however many images they hold). */
const cautioned = new WeakSet<Stack>();

/**
 * Whether an image is the one `ecs.obtainDefaultFluentBitECRImage` (and the FireLens log router ECS adds) names: the
 * value of AWS's public SSM parameter `/aws/service/aws-for-fluent-bit/...`
 * (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/firelens-using-fluentbit.html).
 */
function isAwsFluentBit(image: string): boolean {
  const reference = Tokenization.reverse(image, { failConcat: false }); // a whole token, or nothing
  const target = Reference.isReference(reference) ? reference.target : undefined;
  return target instanceof CfnParameter && typeof target.default === 'string' && target.default.startsWith('/aws/service/aws-for-fluent-bit/');
}

/** Whether a value given as the cache is one (jsii passes objects of other languages as proxies: no `instanceof`). */
function isCache(cache: IPullThroughCacheRules | undefined): cache is IPullThroughCacheRules {
  return cache !== undefined && cache !== null && typeof cache.grantPull === 'function' && typeof cache.imageUri === 'function'
    && cache.mapping !== undefined;
}
