// Over 400 lines: the L3 construct, its props and the composition of its features read together (grants, imageUri, events, the import and the upstream checks are in src/rules/, backfill and teardown in src/repositories/).
import { Annotations, CfnResource, ITaggable, Names, Stack, TagManager, TagType, Token } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { Construct } from 'constructs';
import { ImageMapping } from './image-mapping';
import { CacheCopier, CacheCopierOptions } from './mirror/cache-mirror';
import { MIRROR_METADATA } from './mirror/contract';
import { CacheMonitoring, CacheMonitoringOptions } from './monitoring/cache-monitoring';
import { NodeMirrorOptions, NodeMirrors } from './node-mirror/node-mirrors';
import { acknowledgeWildcardResources } from './private/acknowledge';
import { checkSharedCacheUpstreams, registerCache } from './private/app-validation';
import { accountProblem, checkedRegistryUri, environmentProblem } from './private/cache-environment';
import { UNHEARD_TOPIC_WARNING, warnWhenUnheard } from './private/unheard-topics';
import { manageCachedRepositories, templateResourceTags } from './repositories/cached-repositories';
import { CacheAdoptionOptions, CachedRepositoryRemoval } from './repositories/cached-repository-options';
import { onScanCompletedRule, onSyncFailedRule } from './rules/cache-events';
import { CacheRepositoryOptions } from './rules/cache-repository-options';
import { createCacheRule } from './rules/cache-rule';
import { IPullThroughCacheRules, PullThroughCacheRulesAttributes, RuleCredentials } from './rules/i-pull-through-cache-rules';
import { cacheImageUri } from './rules/image-uri';
import { ImportedPullThroughCacheRules } from './rules/imported-cache';
import { PullTarget, grantCachePull, pullStatements } from './rules/pull-grant';
import { keyedTemplate, templateSettings } from './rules/repository-templates';
import { checkEcrUpstream, validateUpstreams } from './rules/upstream-checks';
import { CacheScanning, CacheScanningOptions } from './scanning/cache-scanning';
import { UpstreamRegistry, UpstreamRegistryType } from './upstream-registry';


/** Properties of `PullThroughCacheRules`. */
export interface PullThroughCacheRulesProps {
  /** The registries to cache, one pull through cache rule each (at most 50, ECR's per-Region quota). */
  readonly upstreams: UpstreamRegistry[];

  /**
   * Roles that pull images from the cache: EKS node roles, Karpenter node roles, Fargate pod execution
   * roles, ECS task execution roles. Each gets `grantPull`.
   * @default - none; call `grantPull` yourself
   */
  readonly nodeRoles?: iam.IRole[];

  /**
   * Settings of the cached repositories (lifecycle, encryption, tags), applied through repository
   * creation templates.
   * @default - untagged images expire after 7 days, at most 100 images per repository, AES-256, mutable tags
   */
  readonly repositoryOptions?: CacheRepositoryOptions;

  /**
   * Whether to create a repository creation template per cache prefix. Turn it off when the registry
   * already has templates for these prefixes (a prefix can have only one template).
   * @default true
   */
  readonly createRepositoryTemplates?: boolean;

  /**
   * Scan every image the cache imports and report findings (see `CacheScanning`).
   * @default true
   */
  readonly enableScanning?: boolean;

  /**
   * How cached images are scanned and their findings reported.
   * @default - a basic scan of every cached image, reports of HIGH and CRITICAL findings to a new SNS topic
   */
  readonly scanning?: CacheScanningOptions;

  /**
   * Measure, alarm on and show the cache's health (see `CacheMonitoring`).
   * @default true
   */
  readonly enableMonitoring?: boolean;

  /**
   * How the copier copies the images of `UpstreamRegistry.copied` upstreams (see `CacheCopier`).
   * @default - up to 2 copies at once, 1024 MB, logs kept a month
   */
  readonly copier?: CacheCopierOptions;

  /**
   * How the cache's health is measured, alarmed and shown.
   * @default - alarms on sync failures, CRITICAL findings, handler errors, dead letters and rejected credentials,
   * to a new SNS topic; a credential canary every hour; pulls counted every 15 minutes; a dashboard
   */
  readonly monitoring?: CacheMonitoringOptions;

  /**
   * Give the repositories that already exist under the cache prefixes the lifecycle policy and tags of the creation
   * templates, at the first deploy and at every deploy that changes them (templates apply only to repositories
   * created after them). Lifecycle policies someone else wrote are kept unless `adoption` says otherwise; encryption,
   * which ECR cannot change, is reported. Off by default: it changes repositories this stack did not create, and a
   * lifecycle policy expires images. See docs/ADOPTION.md.
   * @default false
   */
  readonly adoptExistingRepositories?: boolean;

  /**
   * How existing repositories are adopted.
   * @default - lifecycle policies this cache did not write are kept and reported
   */
  readonly adoption?: CacheAdoptionOptions;

  /**
   * What happens to the repositories the cache created, and their images, when the stack is deleted. Like a
   * repository's `removalPolicy` plus `emptyOnDelete`: `DESTROY_WITH_IMAGES` deletes them, `LIST_ONLY` only lists them.
   * See docs/ADOPTION.md.
   * @default CachedRepositoryRemoval.RETAIN
   */
  readonly cachedRepositoryRemoval?: CachedRepositoryRemoval;
}

/**
 * Amazon ECR pull through cache rules for a set of upstream registries, with their credentials,
 * repository creation templates and least-privilege pull grants.
 *
 * @example
 * const cache = new PullThroughCacheRules(this, 'Cache', {
 *   upstreams: [
 *     UpstreamRegistry.ecrPublic(),
 *     UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
 *   ],
 * });
 * cache.imageUri('nginx:1.25'); // <account>.dkr.ecr.<region>.amazonaws.com/docker-hub/library/nginx:1.25
 */
export class PullThroughCacheRules extends Construct implements IPullThroughCacheRules, ITaggable {
  /**
   * A cache made in another CDK app of this account (the platform team's), for an application team's `imageUri`
   * and `grantPull`. Nothing is created; the attributes are trusted, as `ecr.Repository.fromRepositoryAttributes` does.
   *
   * @example
   * const cache = PullThroughCacheRules.fromPullThroughCacheRulesAttributes(this, 'Cache', {
   *   prefixes: [{ registry: 'docker.io', ecrRepositoryPrefix: 'docker-hub' }, { registry: 'public.ecr.aws', ecrRepositoryPrefix: 'ecr-public' }],
   * });
   * cache.imageUri('nginx:1.27'); // <account>.dkr.ecr.<region>.amazonaws.com/docker-hub/library/nginx:1.27
   */
  public static fromPullThroughCacheRulesAttributes(scope: Construct, id: string, attrs: PullThroughCacheRulesAttributes): IPullThroughCacheRules {
    return new ImportedPullThroughCacheRules(scope, id, attrs);
  }

  /** The upstreams, in the order given. */
  public readonly upstreams: UpstreamRegistry[];

  /**
   * One rule per upstream ECR pulls through, in the order of `upstreams` (mirrored upstreams have none): an
   * `AWS::ECR::PullThroughCacheRule`, or for an upstream with credentials or a role a `Custom::EcrPullThroughCacheRule`,
   * which changes them in place (CloudFormation's type cannot).
   */
  public readonly rules: ecr.IPullThroughCacheRuleRef[];

  /** One `AWS::ECR::RepositoryCreationTemplate` per cache prefix (empty when `createRepositoryTemplates` is false). */
  public readonly repositoryTemplates: ecr.CfnRepositoryCreationTemplate[];

  /**
   * The role ECR creates cached repositories with.
   * @default - ECR's service-linked role
   */
  public readonly templateRole?: iam.IRole;

  /** The registry the cache is served from: `<account>.dkr.ecr.<region>.<url suffix>` (tokens unless the stack has an env). */
  public readonly registryUri: string;

  /** The cache prefixes, in the order of `upstreams` (copied prefixes included). */
  public readonly ecrRepositoryPrefixes: string[];

  /** The registry-to-prefix table of this cache's rules: what `imageUri`, the `CachedImages` Aspect and the CLI map by. */
  public readonly mapping: ImageMapping;

  /** The rules that carry upstream credentials, with their secrets, in the order of `upstreams`: what the credential canary validates. */
  public readonly ruleCredentials: RuleCredentials[];

  /**
   * The scanning of cached images: its functions, rules, dead-letter queues, findings topic and metrics.
   * @default - undefined when `enableScanning` is false
   */
  public readonly scanning?: CacheScanning;

  /**
   * The monitoring of the cache: its alarms, alarm topic, health function and dashboard.
   * @default - undefined when `enableMonitoring` is false
   */
  public readonly monitoring?: CacheMonitoring;

  /**
   * The copier that copies the images of `UpstreamRegistry.copied` upstreams: its copy function, queues,
   * schedules and metrics.
   * @default - undefined when no upstream is copied
   */
  public readonly copier?: CacheCopier;

  /**
   * Tags for the repositories ECR creates in the cache (they carry its storage cost): `Tags.of(cache)`, or of any
   * scope above it, reaches them through the repository creation templates' resource tags, beside
   * `repositoryOptions.resourceTags`. Select them with `includeResourceTypes: ['AWS::ECR::Repository']`.
   */
  public readonly tags: TagManager = new TagManager(TagType.KEY_VALUE, 'AWS::ECR::Repository');

  private readonly templatesTagRepositories: boolean;

  constructor(scope: Construct, id: string, props: PullThroughCacheRulesProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const upstreams = props?.upstreams;
    validateUpstreams(this, upstreams);
    this.upstreams = [...upstreams];
    this.ecrRepositoryPrefixes = upstreams.map(u => u.ecrRepositoryPrefix);
    // prefix clashes and the 50-rule quota across the app (mirrored prefixes clash too, but have no rule)
    const prefixesOf = (list: UpstreamRegistry[]) => list.map(u => u.ecrRepositoryPrefix);
    registerCache(this, prefixesOf(upstreams.filter(u => !isMirror(u))), prefixesOf(upstreams.filter(isMirror)),
      new Map(upstreams.map(u => [u.ecrRepositoryPrefix, u.registryUrl])));
    checkSharedCacheUpstreams(this, upstreams); // ECR upstreams on a SharedCache of this app: only its shared prefixes
    // A concrete Region gives a concrete domain suffix, so image URIs read plainly in manifests.
    const urlSuffix = Token.isUnresolved(stack.region) ? stack.urlSuffix : RegionInfo.get(stack.region).domainSuffix ?? stack.urlSuffix;
    // env-agnostic: refused, at synth, by any stack of a concrete environment (it would read another account's registry)
    this.registryUri = checkedRegistryUri(this, `${stack.account}.dkr.ecr.${stack.region}.${urlSuffix}`);
    this.mapping = new ImageMapping({
      registryUri: this.registryUri,
      // a rule through a shared central cache also serves its central upstream's images (`nginx` -> `docker-hub/...`)
      prefixes: upstreams.flatMap(u => [
        {
          registry: u.registry,
          ecrRepositoryPrefix: u.ecrRepositoryPrefix,
          upstreamRepositoryPrefix: u.upstreamRepositoryPrefix,
          copiedImages: u._mirror?.images,
          copiedTagsPerPattern: u._mirror?.maxTagsPerPattern,
        },
        ...(u._origin
          ? [{
            registry: u._origin.registry,
            ecrRepositoryPrefix: u.ecrRepositoryPrefix,
            upstreamRepositoryPrefix: u._origin.upstreamRepositoryPrefix,
          }]
          : []),
      ]),
    });

    const removal = props.cachedRepositoryRemoval ?? CachedRepositoryRemoval.RETAIN;
    // with teardown on, the templates also tag what they create, so teardown knows the cache's repositories
    const options: CacheRepositoryOptions = {
      ...props.repositoryOptions,
      resourceTags: templateResourceTags(this, props.repositoryOptions?.resourceTags, removal),
    };
    const createTemplates = props.createRepositoryTemplates ?? true;
    if (!createTemplates && props.repositoryOptions) {
      throw new Error(`${this.node.path}: repositoryOptions are applied through repository creation templates, `
        + 'but createRepositoryTemplates is false. Remove one of them.');
    }
    this.templatesTagRepositories = createTemplates && (options.resourceTags?.length ?? 0) > 0;
    const mirrored = upstreams.filter(isMirror);
    const template = createTemplates ? templateSettings(this, options) : undefined;
    this.templateRole = template?.role;

    this.rules = [];
    this.repositoryTemplates = [];
    const ruleCredentials: RuleCredentials[] = [];
    this.ruleCredentials = ruleCredentials;
    for (const upstream of upstreams) {
      const upstreamScope = new Construct(this, constructIdFor(upstream.ecrRepositoryPrefix));
      if (template && isMirror(upstream)) {
        // no rule: the mirror pushes, and ECR creates each repository on its first push from this template
        this.repositoryTemplates.push(keyedTemplate(new ecr.CfnRepositoryCreationTemplate(upstreamScope, 'RepositoryTemplate', {
          prefix: upstream.ecrRepositoryPrefix,
          appliedFor: ['CREATE_ON_PUSH'],
          description: `Repositories of the '${upstream.ecrRepositoryPrefix}' mirror (images copied from ${upstream.registryUrl})`,
          ...template.properties,
        })));
      }
      if (isMirror(upstream)) {
        continue;
      }
      const { rule, secret } = this.createRule(upstreamScope, upstream);
      this.rules.push(rule);
      if (secret) {
        ruleCredentials.push({
          ecrRepositoryPrefix: upstream.ecrRepositoryPrefix,
          secret,
          createdWithPlaceholder: secret instanceof secretsmanager.Secret && secret.node.scopes.includes(this),
        });
      }
      if (template) {
        this.repositoryTemplates.push(keyedTemplate(new ecr.CfnRepositoryCreationTemplate(upstreamScope, 'RepositoryTemplate', {
          prefix: upstream.ecrRepositoryPrefix,
          appliedFor: ['PULL_THROUGH_CACHE'],
          description: `Repositories of the '${upstream.ecrRepositoryPrefix}' pull through cache (${upstream.registryUrl})`,
          ...template.properties,
        })));
      }
    }

    manageCachedRepositories(this, {
      cacheName: Names.uniqueId(this),
      templatePrefixes: this.repositoryTemplates.map(t => t.prefix),
      rulePrefixes: upstreams.filter(u => !isMirror(u)).map(u => u.ecrRepositoryPrefix),
      templates: this.repositoryTemplates,
      rules: this.rules,
      templateSettings: template?.properties,
      adopt: props.adoptExistingRepositories ?? false,
      adoption: props.adoption,
      removal,
    });

    if (props.enableScanning === false && props.scanning) {
      throw new Error(`${this.node.path}: scanning options are set, but enableScanning is false. Remove one of them.`);
    }
    if (props.enableScanning ?? true) {
      this.scanning = new CacheScanning(this, 'Scanning', { ...props.scanning, cache: this });
    }

    if (props.copier && mirrored.length === 0) {
      throw new Error(`${this.node.path}: copier options are set, but no upstream is copied. Add an UpstreamRegistry.copied() upstream or drop them.`);
    }
    if (mirrored.length > 0) {
      this.copier = CacheCopier._create(this, 'Mirror', {
        ...props.copier,
        cache: this,
        upstreams: mirrored,
        metricNamespace: props.copier?.metricNamespace ?? props.scanning?.metricNamespace,
        tagsRepositories: this.templatesTagRepositories,
      });
      // what each mirror copies, for readers of the synthesized template (`ecr-ptc --from-cdk-out`)
      (this.copier.copyFunction.node.defaultChild as CfnResource).addMetadata(MIRROR_METADATA,
        mirrored.map(u => ({ registryUrl: u.registryUrl, ecrRepositoryPrefix: u.ecrRepositoryPrefix, images: u._mirror!.images })));
    }

    if (props.enableMonitoring === false && props.monitoring) {
      throw new Error(`${this.node.path}: monitoring options are set, but enableMonitoring is false. Remove one of them.`);
    }
    if (props.enableMonitoring ?? true) {
      // it finds the scanning and the copier made above, as it would for a cache given to it alone
      this.monitoring = new CacheMonitoring(this, 'Monitoring', { ...props.monitoring, cache: this });
      this.warnOfUnheardAlarms(this.monitoring, props.monitoring);
    }
    if (this.scanning && !props.scanning?.findingsTopic) {
      warnWhenUnheard(this, this.scanning.findingsTopic, 'Reports of vulnerability findings in cached images', 'scanning.findingsTopic');
    }

    const nodeRoles = props.nodeRoles ?? [];
    for (const role of nodeRoles) {
      // the policy names its roles by name: a role of another account would be a same-named role of this one
      const problem = environmentProblem(this, role) ?? accountProblem(this, role.env.account, `the node role ${role.node.path}`);
      if (problem) {
        throw new Error(`${this.node.path} nodeRoles: ${problem}`);
      }
    }
    if (nodeRoles.length > 0) {
      // One policy of our own for every node role, so the wildcards it needs are acknowledged here, with
      // their reasons, instead of on the user's roles (where they could hide the user's own findings).
      const policy = new iam.Policy(this, 'NodePullPolicy', { roles: nodeRoles, statements: pullStatements(this.pullTargets(), this.templatesTagRepositories) });
      acknowledgeWildcardResources(policy, this.cacheRepositoryArns(),
        'Pull through cache repositories are created on first pull, so the grant covers <prefix>/* of each cache prefix');
      acknowledgeWildcardResources(policy, ['*'], 'ecr:GetAuthorizationToken has no resource type; AWS requires "*" for it, '
        + 'and it is the only action granted on "*"');
    }
  }

  /**
   * Grant pulling cached images, including the first pull of an image that is not cached yet.
   *
   * Grants `ecr:BatchGetImage`, `ecr:GetDownloadUrlForLayer`, `ecr:BatchCheckLayerAvailability`,
   * `ecr:BatchImportUpstreamImage` and `ecr:CreateRepository` (plus `ecr:TagResource` when the cached
   * repositories are tagged) on `repository/<prefix>/*` of each cache prefix only, and
   * `ecr:GetAuthorizationToken`, which has no resource type, on `*`.
   *
   * For ECS, grant the task *execution* role (`taskDefinition.obtainExecutionRole()`): it pulls the images.
   *
   * @throws if nothing would really be granted: a principal without a policy of its own (`AccountPrincipal`,
   * `ArnPrincipal`, `ServicePrincipal`), an immutable role, a principal of another account than the cache, or a
   * stack of a concrete environment using a cache of an environment-agnostic one
   */
  public grantPull(grantee: iam.IGrantable): iam.Grant {
    return grantCachePull(this, grantee, this.pullTargets(), this.templatesTagRepositories);
  }

  /** The ARNs that cover every repository of the cache: `arn:<partition>:ecr:<region>:<account>:repository/<prefix>/*` per prefix. */
  public cacheRepositoryArns(): string[] {
    const stack = Stack.of(this);
    return this.upstreams.map(u => stack.formatArn({
      service: 'ecr',
      resource: 'repository',
      resourceName: u.ecrRepositoryPrefix === 'ROOT' ? '*' : `${u.ecrRepositoryPrefix}/*`,
    }));
  }

  /**
   * The cache URI of an image, for container definitions and manifests in CDK code.
   *
   * `nginx:1.25` becomes `<account>.dkr.ecr.<region>.amazonaws.com/docker-hub/library/nginx:1.25`
   * (Docker Hub official images keep `library/`); a URI already in the cache is returned unchanged.
   *
   * @param image an image reference, for example `nginx:1.25` or `quay.io/prometheus/prometheus:v2.53.0`
   * @throws if the reference is invalid or no rule of this cache serves its registry
   */
  public imageUri(image: string): string {
    return cacheImageUri(this, this.mapping, image);
  }

  /**
   * The node configuration that sends pulls of the cached registries through the cache with no image
   * reference changed (`docker.io/library/nginx:1.27` is pulled from `<cache>/docker-hub/library/nginx:1.27`):
   * containerd mirrors plus ECR credentials for them, as Amazon Linux 2023 user data or an EKS managed node group
   * (`addNodegroup`), with the cache as the only host (no fallback, no Bottlerocket: see `NodeMirrorOptions`).
   * Upstreams the nodes cannot mirror are listed in `unmirrored`.
   *
   * Experimental: containerd node mirrors have never run on an EKS node against a live cache.
   *
   * @experimental
   */
  public nodeMirrors(options: NodeMirrorOptions = {}): NodeMirrors {
    return new NodeMirrors(this, options);
  }

  /**
   * Define an EventBridge rule that fires when the cache fails to sync an image with its upstream (an expired or
   * refused credential, an upstream outage, a rate limit, a missing tag): `ECR Pull Through Cache Action` events
   * whose `sync-status` is not SUCCESS, for this cache's prefixes.
   *
   * @param id the construct id of the rule, in this cache's scope
   * @param options a target, and more of the event pattern
   */
  public onSyncFailed(id: string, options: events.OnEventOptions = {}): events.Rule {
    return onSyncFailedRule(this, id, this.ecrRepositoryPrefixes, options);
  }

  /**
   * Define an EventBridge rule that fires when a basic scan of a cached image completes (`ECR Image Scan`,
   * `scan-status` COMPLETE, repositories under this cache's prefixes), like `ecr.Repository.onImageScanCompleted`.
   * The event carries `finding-severity-counts`. Enhanced scanning (Amazon Inspector) sends `Inspector2 Scan` events instead.
   *
   * @param id the construct id of the rule, in this cache's scope
   * @param options a target, and more of the event pattern
   */
  public onScanCompleted(id: string, options: events.OnEventOptions = {}): events.Rule {
    return onScanCompletedRule(this, id, this.ecrRepositoryPrefixes, options);
  }

  /**
   * The templates' resource tags: `resourceTags`, then the tags `Tags.of` gave the cache (known once Aspects have run).
   * They need the custom role and pullers' `ecr:TagResource`, set up when `resourceTags` is given: without those,
   * tags from `Tags.of` are left out, with a warning, rather than make ECR fail to create a repository on a first pull.
   */
  /** Alarms that notify nobody are said at synth, naming the property that gives them somewhere to go. */
  private warnOfUnheardAlarms(monitoring: CacheMonitoring, options: CacheMonitoringOptions | undefined): void {
    if (options?.alarmActions?.length === 0) {
      Annotations.of(this).addWarningV2(UNHEARD_TOPIC_WARNING, 'monitoring.alarmActions is empty, so the cache\'s alarms notify nobody. '
        + 'Give them an action (new SnsAction(topic)), or leave alarmActions out to get an alarm topic.');
    } else if (monitoring.alarmTopic && !options?.alarmTopic) {
      warnWhenUnheard(this, monitoring.alarmTopic, 'The cache\'s alarms', 'monitoring.alarmActions (or monitoring.alarmTopic)');
    }
  }

  /** The repositories a pull grant covers, one entry per prefix. */
  private pullTargets(): PullTarget[] {
    const arns = this.cacheRepositoryArns();
    return this.upstreams.map((u, i) => ({ prefix: u.ecrRepositoryPrefix, arn: arns[i], copied: isMirror(u) }));
  }

  private createRule(scope: Construct, upstream: UpstreamRegistry): { rule: ecr.IPullThroughCacheRuleRef; secret?: secretsmanager.ISecret } {
    const credentials = upstream.credentials?.bind(scope, upstream.ecrRepositoryPrefix);
    if (upstream.registryType === UpstreamRegistryType.ECR) {
      checkEcrUpstream(this, upstream);
    }
    const rule = createCacheRule(scope, {
      ecrRepositoryPrefix: upstream.ecrRepositoryPrefix,
      upstreamRegistry: upstream.registryType,
      upstreamRegistryUrl: upstream.registryUrl,
      upstreamRepositoryPrefix: upstream.upstreamRepositoryPrefix,
      credentials: credentials?.secret,
      role: upstream.role,
      // whether this kind of upstream can carry a credential or role, now or after a later change
      authenticated: upstream.credentials !== undefined || upstream.registryType === UpstreamRegistryType.ECR,
    });
    return { rule, secret: credentials?.secret };
  }

}


function isMirror(upstream: UpstreamRegistry): boolean {
  return upstream.registryType === UpstreamRegistryType.COPIED;
}

/** Construct ids are API: derive them from the prefix (stable across reordering), never from a position. */
function constructIdFor(prefix: string): string {
  return prefix.replace(/\//g, '+');
}
