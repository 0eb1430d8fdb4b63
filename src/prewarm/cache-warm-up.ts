import { Annotations, CfnOutput, CustomResource, Duration, Lazy, Stack, Stage, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, IConstruct } from 'constructs';
import { IMAGES_PER_RESOURCE, ScanGateProperties, WARM_UP_RESOURCE_TYPE, WarmUpImageProperties, WarmUpProperties, digestAttribute } from './contract';
import { WarmUpFunction } from './warm-up-function';
import { UnscannableImages, WarmUpOptions } from './warm-up-options';
import { ImageMapping, MappingStatus } from '../image-mapping';
import { acknowledgeFinding, acknowledgeWildcardResources } from '../private/acknowledge';
import { ecrRegistryRegion } from '../private/catalogue';
import { FindingSeverity } from '../scanning/cache-scanning';

/** What the warm-up needs of a cache: its mapping (for allowImages) and its pull grant, scoped to its prefixes. */
export interface WarmUpCache extends IConstruct {
  readonly mapping: ImageMapping;
  grantPull(grantee: iam.IGrantable): iam.Grant;
  cacheRepositoryArns(): string[];
}

/**
 * The context key whose value, when set, replaces the time of synthesis in the warm-up's `Refresh` property (tests
 * and reproducible builds set it; a deploy that should not re-resolve the tags can too).
 */
export const WARM_UP_REFRESH_CONTEXT = 'cdk-ecr-pull-through-cache:warmUpRefresh';

interface Entry {
  readonly index: number;
  readonly resource: CustomResource;
  /** `<registry URI>/<repository>` */
  readonly base: string;
  /** `<registry URI>` */
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
  readonly platforms: Set<string>;
}

/**
 * The warm-up of one stack: `Custom::EcrPullThroughCacheWarmUp` resources (one per `IMAGES_PER_RESOURCE` images), the
 * function that answers them, and each image's digest as a stack output when pinning. Made by the `CachedImages`
 * Aspect, at a fixed place under the stack, the first time it meets a workload of the stack with a cached image.
 */
export class CacheWarmUp extends Construct {
  /** The stack's warm-up, made on first use; a second cache or other options in the same stack are refused. */
  public static of(workload: IConstruct, cache: WarmUpCache, options: WarmUpOptions): CacheWarmUp {
    const stack = Stack.of(workload);
    const existing = stack.node.tryFindChild(CacheWarmUp.ID) as CacheWarmUp | undefined;
    if (!existing) {
      return new CacheWarmUp(stack, CacheWarmUp.ID, cache, options);
    }
    if (existing.cache !== cache || existing.options !== options) {
      throw new Error(`${stack.node.path}: two CachedImages Aspects with warmUp options (caches ${existing.cache.node.path} and `
        + `${cache.node.path}) warm images of this stack; a stack has one warm-up. Give warmUp to one Aspect only, with the same options object.`);
    }
    return existing;
  }

  private static readonly ID = 'EcrPullThroughCacheWarmUp';

  public readonly function: lambda.Function;
  private readonly entries = new Map<string, Entry>();
  private readonly resources: CustomResource[] = [];
  private readonly refresh: string;

  private constructor(scope: Construct, id: string, private readonly cache: WarmUpCache, private readonly options: WarmUpOptions) {
    super(scope, id);
    this.refresh = String(this.node.tryGetContext(WARM_UP_REFRESH_CONTEXT) ?? new Date().toISOString());
    const logGroup = new logs.LogGroup(this, 'LogGroup', { retention: logs.RetentionDays.ONE_YEAR });
    const role = new iam.Role(this, 'ServiceRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Pulls the images of this stack through the ECR pull through cache at deploy (warm-up)',
    });
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
    // the first pull of an image, exactly as a node's: import from the upstream, on the cache prefixes only
    cache.grantPull(role);
    if (options.gate) {
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ecr:DescribeImageScanFindings'], resources: cache.cacheRepositoryArns() }));
    }
    const policy = role.node.findChild('DefaultPolicy');
    acknowledgeWildcardResources(policy, cache.cacheRepositoryArns(),
      'Pull through cache repositories are created on first pull, so the warm-up covers <prefix>/* of each cache prefix');
    acknowledgeWildcardResources(policy, ['*'], 'ecr:GetAuthorizationToken has no resource type; AWS requires "*" for it');
    // Built directly rather than with BundledHandler, as the rule handler is: CloudFormation invokes it asynchronously
    // and it answers every request itself (a failure as the resource's reason); a dead-letter queue would keep a
    // request nobody waits for.
    this.function = new WarmUpFunction(this, 'Function', {
      description: 'Pulls the images of this stack through the ECR pull through cache at deploy, pins and gates them',
      role,
      logGroup,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 512,
      timeout: Duration.minutes(15),
      environment: { LOG_LEVEL: 'INFO' },
    });
    acknowledgeFinding(this.function, 'AwsSolutions-L1',
      'Pinned to Node.js 22, the runtime the bundled handler is built and tested for; moving to a newer runtime is a deliberate release');
  }

  /**
   * Adds an image of `workload` (a cache URI, `<domain>/<repository>:<tag>`) to the warm-up and makes the workload wait
   * for it; returns what the workload should pull: the URI, or with `pin`, the digest it resolved to at this deploy.
   */
  public use(workload: IConstruct, uri: string, platforms: readonly string[]): string {
    const slash = uri.indexOf('/');
    const path = uri.slice(slash + 1);
    if (slash < 0 || path.includes('@')) {
      // a digest is pinned already, and a first pull by digest does not fill the cache (aws/containers-roadmap#2837)
      Annotations.of(workload).addInfo(`Warm-up: ${uri} names a digest, so it is not warmed (a pull by digest does not fill the cache); `
        + 'name a tag to have it warmed and pinned at deploy.');
      return uri;
    }
    const region = ecrRegistryRegion(uri.slice(0, slash));
    const here = Stack.of(this).region;
    if (region !== undefined && !Token.isUnresolved(here) && region !== here) {
      // ECR pulls across Regions, but the function's token is for its own Region's registry (the handler refuses it too)
      throw new Error(`${Stack.of(this).node.path}: the warm-up cannot warm ${uri} from ${here} (its function pulls from its own Region's `
        + `registry). Add CachedImages with warmUp to the stacks in ${region} only (Aspects.of(stack)), and without it here.`);
    }
    const colon = path.lastIndexOf(':');
    const tagged = colon > path.lastIndexOf('/');
    const repository = tagged ? path.slice(0, colon) : path;
    const tag = tagged ? path.slice(colon + 1) : 'latest';
    const base = `${uri.slice(0, slash)}/${repository}`;
    const key = `${base}:${tag}`;
    let entry = this.entries.get(key);
    if (!entry) {
      const index = this.entries.size;
      entry = { index, resource: this.resourceFor(index), base, registry: uri.slice(0, slash), repository, tag, platforms: new Set() };
      this.entries.set(key, entry);
      if (this.options.pin) {
        new CfnOutput(this, `Digest${index}`, {
          value: this.digestOf(entry),
          // an output's description is a literal: a tag known only at deploy time is not in it
          description: `Digest of ${repository}${Token.isUnresolved(tag) ? ' (its tag set at deploy)' : `:${tag}`} pulled through the cache at `
            + 'this deploy (the workloads run it pinned)',
        });
      }
    }
    (this.options.platforms ?? platforms).forEach(p => entry!.platforms.add(p));
    // the workload's own resource waits, not its roles and policies (an L2 task definition's children)
    (workload.node.defaultChild ?? workload).node.addDependency(entry.resource);
    return this.options.pin ? `${base}@${this.digestOf(entry)}` : uri;
  }

  private digestOf(entry: Entry): string {
    return entry.resource.getAttString(digestAttribute(entry.index % IMAGES_PER_RESOURCE));
  }

  /** The resource that holds image `index` (each holds `IMAGES_PER_RESOURCE`, so its digests fit CloudFormation's 4 KB answer). */
  private resourceFor(index: number): CustomResource {
    const n = Math.floor(index / IMAGES_PER_RESOURCE);
    if (this.resources[n]) {
      return this.resources[n];
    }
    const images = () => [...this.entries.values()].filter(e => e.resource === resource).sort((a, b) => a.index - b.index)
      // the registry too: an image written for a cache of another account or region is refused by the handler, whose token
      // is for its own registry (it would warm and pin another image than the workload pulls)
      .map((e): WarmUpImageProperties => ({ Registry: e.registry, Repository: e.repository, Tag: e.tag, Platforms: [...e.platforms].sort().join(',') }));
    const properties: WarmUpProperties = {
      Images: Lazy.any({ produce: images }) as unknown as WarmUpImageProperties[],
      RetryBudgetSeconds: String((this.options.retryBudget ?? Duration.minutes(2)).toSeconds()),
      Concurrency: String(this.options.concurrency ?? 8),
      Gate: this.gateProperties(),
      Refresh: this.refresh,
    };
    const resource = new CustomResource(this, n === 0 ? 'Resource' : `Resource${n + 1}`, {
      serviceToken: this.function.functionArn,
      resourceType: WARM_UP_RESOURCE_TYPE,
      // the function's 15 minutes and a retry of its invocation: a request never answered ends the deploy, with a reason
      serviceTimeout: Duration.minutes(35),
      properties: { ...properties },
    });
    // the whole cache first: a pull before its rule exists fails, a repository the pull creates before its template
    // exists never gets the template's settings, and an import before the scanning rules exist is never scanned (so the
    // gate would wait for nothing). Across stacks this is a stack dependency;
    // a cache in another Stage is another deployment, which no template can order)
    if (Stage.of(this.cache) === Stage.of(this)) {
      resource.node.addDependency(this.cache);
    }
    this.resources[n] = resource;
    return resource;
  }

  private gateProperties(): ScanGateProperties | undefined {
    const gate = this.options.gate;
    if (!gate) {
      return undefined;
    }
    const allowImages = (gate.allowImages ?? []).map(image => {
      if (image.includes('@')) {
        // the gate matches the repository or repository:tag it warmed; a digest would become a tag that allows nothing
        const repository = image.slice(0, image.indexOf('@'));
        throw new Error(`${this.node.path}: warmUp.gate.allowImages has '${image}', which names a digest; the gate allows a repository `
          + `(${repository}) or a tag (${repository}:1.27). Allow the CVE ids instead (allowCves) to allow one image's findings only.`);
      }
      const mapped = this.cache.mapping.map(image);
      if ((mapped.status !== MappingStatus.REWRITTEN && mapped.status !== MappingStatus.ALREADY_CACHED) || !mapped.repository) {
        throw new Error(`${this.node.path}: warmUp.gate.allowImages has '${image}', which the cache ${this.cache.node.path} does not serve`
          + `${mapped.reason ? ` (${mapped.reason})` : ''}; list images as the app writes them, for example nginx or nginx:1.27.`);
      }
      const tag = /:([^/:@]+)$/.exec(image)?.[1];
      return tag ? `${mapped.repository}:${tag}` : mapped.repository;
    });
    return {
      Severity: gate.severity ?? FindingSeverity.CRITICAL,
      AllowCves: gate.allowCves ?? [],
      AllowImages: allowImages,
      Unscannable: gate.unscannable ?? UnscannableImages.FAIL,
      TimeoutSeconds: String((gate.timeout ?? Duration.minutes(5)).toSeconds()),
    };
  }
}
