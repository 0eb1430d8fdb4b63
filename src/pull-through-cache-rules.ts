import { Annotations, CfnResource, CfnTag, Duration, Names, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { Construct } from 'constructs';
import { ImageMapping, MappingStatus } from './image-mapping';
import { CacheMirror, CacheMirrorOptions } from './mirror/cache-mirror';
import { MIRROR_METADATA } from './mirror/contract';
import { CacheMonitoring, CacheMonitoringOptions, CredentialCheck } from './monitoring/cache-monitoring';
import { NodeMirrorOptions, NodeMirrors } from './node-mirror/node-mirrors';
import { acknowledgeWildcardResources } from './private/acknowledge';
import { checkSharedCacheUpstreams, registerCache } from './private/app-validation';
import { accountProblem, checkedRegistryDomain, environmentProblem } from './private/cache-environment';
import { mappingWarningId } from './private/cache-mapping';
import { ECR_REGISTRY_URL, UNSUPPORTED_REGIONS } from './private/catalogue';
import { renderLifecyclePolicy } from './private/lifecycle';
import { CDK_TOKEN, mapTokenTag } from './private/token-tags';
import { manageCachedRepositories, templateResourceTags } from './repositories/cached-repositories';
import { CacheAdoptionOptions, CachedRepositoryRemoval } from './repositories/cached-repository-options';
import { createCacheRule } from './rules/cache-rule';
import { LogicalIdKind, followKey } from './rules/logical-ids';
import { CacheScanning, CacheScanningOptions, FindingSeverity } from './scanning/cache-scanning';
import { UpstreamRegistry, UpstreamRegistryType } from './upstream-registry';

/** ECR allows 50 pull through cache rules per registry (per Region), a quota that cannot be raised. */
const MAX_RULES = 50;

/** What a node pulls with (the actions `Repository.grantPull` grants). */
const PULL_ACTIONS = ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'];
/** What the first pull of an image also needs: import it from upstream, creating its repository. */
const FIRST_PULL_ACTIONS = ['ecr:BatchImportUpstreamImage', 'ecr:CreateRepository'];

/**
 * Settings of the repositories ECR creates in the cache, applied through one repository creation
 * template per cache prefix (`AppliedFor: PULL_THROUGH_CACHE`).
 */
export interface CacheRepositoryOptions {
  /**
   * Expire untagged images this long after they were cached. Ignored when `lifecycleRules` is set.
   * @default Duration.days(7)
   */
  readonly untaggedImageExpiration?: Duration;

  /**
   * Keep at most this many images per cached repository, expiring the oldest. Ignored when
   * `lifecycleRules` is set. An expired image is fetched from upstream again on its next pull.
   * @default 100
   */
  readonly maxImageCount?: number;

  /**
   * The lifecycle rules of every cached repository, replacing the defaults. `[]` for none.
   * @default - expire untagged images after `untaggedImageExpiration`, keep the newest `maxImageCount` images
   */
  readonly lifecycleRules?: ecr.LifecycleRule[];

  /**
   * Tag mutability of cached repositories. Only `MUTABLE` is accepted: ECR refreshes a cached tag in
   * place when upstream moves it, and immutable tags would freeze the cache on its first copy.
   * @default ecr.TagMutability.MUTABLE
   */
  readonly imageTagMutability?: ecr.TagMutability;

  /**
   * How cached images are encrypted. `KMS` uses `encryptionKey`, or the AWS managed key for ECR without one.
   * @default - `KMS` when `encryptionKey` is set, otherwise `AES_256`
   */
  readonly encryption?: ecr.RepositoryEncryption;

  /**
   * The customer managed KMS key for `KMS` encryption. Given to ECR by its full ARN; ECR needs a
   * custom role for it, which is created unless `role` is given.
   * @default - no customer managed key
   */
  readonly encryptionKey?: kms.IKey;

  /**
   * Tags for every cached repository. ECR needs a custom role to apply them, which is created unless
   * `role` is given, and pullers are granted `ecr:TagResource` on the cache.
   * @default - no tags
   */
  readonly resourceTags?: CfnTag[];

  /**
   * A repository policy for every cached repository, for example to let other accounts pull.
   * @default - no repository policy
   */
  readonly repositoryPolicy?: iam.PolicyDocument;

  /**
   * The role ECR assumes to create cached repositories. It must trust `ecr.amazonaws.com`.
   * @default - a role is created when `resourceTags` or `encryptionKey` is set; otherwise ECR's
   * service-linked role is used
   */
  readonly role?: iam.IRole;
}

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
   * How the mirror copies the images of `UpstreamRegistry.mirror` upstreams (see `CacheMirror`).
   * @default - up to 2 copies at once, 1024 MB, logs kept a month
   */
  readonly mirror?: CacheMirrorOptions;

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
export class PullThroughCacheRules extends Construct {
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
  public readonly registryDomain: string;

  /** The registry-to-prefix table of this cache's rules: what `imageUri`, the `CachedImages` Aspect and the CLI map by. */
  public readonly mapping: ImageMapping;

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
   * The mirror that copies the images of `UpstreamRegistry.mirror` upstreams: its copy function, queues,
   * schedules and metrics.
   * @default - undefined when no upstream is a mirror
   */
  public readonly mirror?: CacheMirror;

  private readonly templatesTagRepositories: boolean;

  constructor(scope: Construct, id: string, props: PullThroughCacheRulesProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const upstreams = props?.upstreams;
    validateUpstreams(this, upstreams);
    this.upstreams = [...upstreams];
    // prefix clashes and the 50-rule quota across the app (mirrored prefixes clash too, but have no rule)
    const prefixesOf = (list: UpstreamRegistry[]) => list.map(u => u.ecrRepositoryPrefix);
    registerCache(this, prefixesOf(upstreams.filter(u => !isMirror(u))), prefixesOf(upstreams.filter(isMirror)),
      new Map(upstreams.map(u => [u.ecrRepositoryPrefix, u.registryUrl])));
    checkSharedCacheUpstreams(this, upstreams); // ECR upstreams on a SharedCache of this app: only its shared prefixes
    // A concrete Region gives a concrete domain suffix, so image URIs read plainly in manifests.
    const urlSuffix = Token.isUnresolved(stack.region) ? stack.urlSuffix : RegionInfo.get(stack.region).domainSuffix ?? stack.urlSuffix;
    // env-agnostic: refused, at synth, by any stack of a concrete environment (it would read another account's registry)
    this.registryDomain = checkedRegistryDomain(this, `${stack.account}.dkr.ecr.${stack.region}.${urlSuffix}`);
    this.mapping = new ImageMapping({
      registryDomain: this.registryDomain,
      // a rule through a shared central cache also serves its central upstream's images (`nginx` -> `docker-hub/...`)
      prefixes: upstreams.flatMap(u => [
        {
          registry: u.referenceHost,
          prefix: u.ecrRepositoryPrefix,
          upstreamRepositoryPrefix: u.upstreamRepositoryPrefix,
          mirroredImages: u._mirror?.images,
          mirroredTagsPerPattern: u._mirror?.maxTagsPerPattern,
        },
        ...(u._origin
          ? [{ registry: u._origin.referenceHost, prefix: u.ecrRepositoryPrefix, upstreamRepositoryPrefix: u._origin.upstreamRepositoryPrefix }]
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
    const template = createTemplates ? this.templateSettings(options) : undefined;
    this.templateRole = template?.role;

    this.rules = [];
    this.repositoryTemplates = [];
    const credentialChecks: CredentialCheck[] = [];
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
        credentialChecks.push({
          repositoryPrefix: upstream.ecrRepositoryPrefix,
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
      this.scanning = new CacheScanning(this, 'Scanning', {
        ...props.scanning,
        repositoryPrefixes: upstreams.map(u => u.ecrRepositoryPrefix),
        cacheName: Names.uniqueId(this),
      });
    }

    if (props.mirror && mirrored.length === 0) {
      throw new Error(`${this.node.path}: mirror options are set, but no upstream is a mirror. Add an UpstreamRegistry.mirror() upstream or drop them.`);
    }
    if (mirrored.length > 0) {
      this.mirror = new CacheMirror(this, 'Mirror', {
        ...props.mirror,
        upstreams: mirrored,
        cacheName: Names.uniqueId(this),
        metricNamespace: props.mirror?.metricNamespace ?? props.scanning?.metricNamespace,
        tagsRepositories: this.templatesTagRepositories,
      });
      // what each mirror copies, for readers of the synthesized template (`ecr-ptc --from-cdk-out`)
      (this.mirror.copyFunction.node.defaultChild as CfnResource).addMetadata(MIRROR_METADATA,
        mirrored.map(u => ({ registryUrl: u.registryUrl, ecrRepositoryPrefix: u.ecrRepositoryPrefix, images: u._mirror!.images })));
    }

    if (props.enableMonitoring === false && props.monitoring) {
      throw new Error(`${this.node.path}: monitoring options are set, but enableMonitoring is false. Remove one of them.`);
    }
    if (props.enableMonitoring ?? true) {
      this.monitoring = new CacheMonitoring(this, 'Monitoring', {
        ...props.monitoring,
        repositoryPrefixes: upstreams.map(u => u.ecrRepositoryPrefix),
        credentialChecks,
        scanning: this.scanning,
        mirror: this.mirror,
        cacheName: Names.uniqueId(this),
      });
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
      const policy = new iam.Policy(this, 'NodePullPolicy', { roles: nodeRoles, statements: this.pullStatements() });
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
    const principal = grantee.grantPrincipal;
    const where = `${this.node.path}.grantPull(${Construct.isConstruct(principal) ? principal.node.path : principal})`;
    const problem = (Construct.isConstruct(principal) ? environmentProblem(this, principal) : undefined)
      ?? accountProblem(this, principal.principalAccount, 'the grantee');
    if (problem) {
      throw new Error(`${where}: ${problem}`);
    }
    const statements = this.pullStatements();
    const grant = statements
      .map(statement => iam.Grant.addToPrincipal({ grantee, actions: statement.actions, resourceArns: statement.resources }))
      .reduce((all, next) => all.combine(next));
    if (!grant.success || !policyLanded(principal)) {
      throw new Error(`${where}: nothing was granted. ${grant.success
        ? 'The role is immutable (imported with mutable: false, withoutPolicyUpdates(), or from another account), so no policy of this app can be attached to it.'
        : 'This principal has no IAM policy of its own (an AccountPrincipal, ArnPrincipal or ServicePrincipal), so there is nothing to add the permissions to.'} `
        + 'Grant a role or user of this app (for ECS, the task definition\'s execution role), or give the role these permissions where it is '
        + `managed: ${statements[0].actions.join(', ')} on the repositories ${this.upstreams.map(u => u.ecrRepositoryPrefix === 'ROOT' ? '*' : `${u.ecrRepositoryPrefix}/*`).join(', ')} `
        + 'of the cache\'s registry (cacheRepositoryArns()), and ecr:GetAuthorizationToken on *.');
    }
    return grant;
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
    // a tag known only at deploy time (`nginx:${tag.valueAsString}`) keeps its token; the cache path is known
    const mapped = (Token.isUnresolved(image) ? mapTokenTag(this.mapping, image, CDK_TOKEN) : undefined) ?? this.mapping.map(image);
    switch (mapped.status) {
      case MappingStatus.REWRITTEN:
        if (mapped.warning) {
          Annotations.of(this).addWarningV2(mappingWarningId(mapped.warning), mapped.warning);
        }
        return mapped.uri!;
      case MappingStatus.ALREADY_CACHED:
        return image;
      case MappingStatus.NO_RULE:
        throw new Error(`${this.node.path}: no pull through cache rule serves '${image}': ${mapped.reason}.${
          mapped.reason!.includes('UpstreamRegistry.') ? '' : ' Add an upstream for that registry to this cache\'s upstreams.'}`);
      default:
        throw new Error(`${this.node.path}: no pull through cache rule serves '${image}'. ${mapped.reason}`);
    }
  }

  /**
   * The node configuration that sends pulls of the cached registries through the cache with no image
   * reference changed (`docker.io/library/nginx:1.27` is pulled from `<cache>/docker-hub/library/nginx:1.27`):
   * containerd mirrors plus ECR credentials for them, as Amazon Linux 2023 user data or an EKS managed node group
   * (`addNodegroup`), with the cache as the only host (no fallback, no Bottlerocket: see `NodeMirrorOptions`).
   * Upstreams the nodes cannot mirror are listed in `unmirrored`.
   */
  public nodeMirrors(options: NodeMirrorOptions = {}): NodeMirrors {
    return new NodeMirrors(this, options);
  }

  /**
   * Pulls of cached images: `AWS/ECR RepositoryPullCount` summed over every repository of the cache (all
   * prefixes), as the monitoring's health function counts it.
   * @default - sum over the pull count interval (15 minutes)
   */
  public metricPulls(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.requireMonitoring('metricPulls').metricPulls(props);
  }

  /**
   * Pulls of the images cached from one upstream (its prefix).
   * @default - sum over the pull count interval (15 minutes)
   */
  public metricUpstreamPulls(upstream: UpstreamRegistry, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.requireMonitoring('metricUpstreamPulls').metricPrefixPulls(this.prefixOf(upstream), props);
  }

  /**
   * Failed syncs with the upstreams: `ECR Pull Through Cache Action` events with a `sync-status` other than SUCCESS.
   * @default - sum over 5 minutes
   */
  public metricSyncFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.requireMonitoring('metricSyncFailures').metricSyncFailures(props);
  }

  /**
   * Failed syncs with one upstream.
   * @default - sum over 5 minutes
   */
  public metricUpstreamSyncFailures(upstream: UpstreamRegistry, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.requireMonitoring('metricUpstreamSyncFailures').metricPrefixSyncFailures(this.prefixOf(upstream), props);
  }

  /**
   * Credential checks ECR rejected (expired or revoked upstream tokens), from the credential canary.
   * @default - maximum over the credential check interval (1 hour)
   */
  public metricCredentialCheckFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.requireMonitoring('metricCredentialCheckFailures').metricCredentialCheckFailures(props);
  }

  /**
   * Scans started by the scan trigger.
   * @default - sum over 5 minutes
   */
  public metricScansStarted(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.requireScanning('metricScansStarted').metricScansStarted(props);
  }

  /**
   * Images not scanned on purpose (already scanned in 24 hours, unsupported, gone).
   * @default - sum over 5 minutes
   */
  public metricScansSkipped(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.requireScanning('metricScansSkipped').metricScansSkipped(props);
  }

  /**
   * Scans that could not be started after every retry.
   * @default - sum over 5 minutes
   */
  public metricScanFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.requireScanning('metricScanFailures').metricScanFailures(props);
  }

  /**
   * Findings of completed scans at one severity.
   * @default - sum over 5 minutes
   */
  public metricFindings(severity: FindingSeverity, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.requireScanning('metricFindings').metricFindings(severity, props);
  }

  /**
   * Errors of every handler of the cache (scanning and health), summed.
   * @default - sum over 5 minutes
   */
  public metricHandlerErrors(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric {
    return this.requireMonitoring('metricHandlerErrors').metricHandlerErrors(props);
  }

  /**
   * Throttles of every handler of the cache, summed.
   * @default - sum over 5 minutes
   */
  public metricHandlerThrottles(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric {
    return this.requireMonitoring('metricHandlerThrottles').metricHandlerThrottles(props);
  }

  /**
   * Messages waiting in the cache's dead-letter queues.
   * @default - maximum over 5 minutes, summed over the queues
   */
  public metricDeadLetterMessages(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric {
    return this.requireMonitoring('metricDeadLetterMessages').metricDeadLetterMessages(props);
  }

  /**
   * Age of the oldest message in the cache's dead-letter queues, in seconds.
   * @default - maximum over 5 minutes
   */
  public metricDeadLetterAge(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric {
    return this.requireMonitoring('metricDeadLetterAge').metricDeadLetterAge(props);
  }

  /** A mirrored registry serves only the images its mirror copies: any other is missing from the cache at pull time. */
  private requireMonitoring(method: string): CacheMonitoring {
    if (!this.monitoring) {
      throw new Error(`${this.node.path}.${method}(): monitoring is off (enableMonitoring: false), so nothing publishes this metric.`);
    }
    return this.monitoring;
  }

  private requireScanning(method: string): CacheScanning {
    if (!this.scanning) {
      throw new Error(`${this.node.path}.${method}(): scanning is off (enableScanning: false), so nothing publishes this metric.`);
    }
    return this.scanning;
  }

  private prefixOf(upstream: UpstreamRegistry): string {
    if (!this.upstreams.includes(upstream)) {
      throw new Error(`${this.node.path}: ${upstream.registryUrl} (prefix '${upstream.ecrRepositoryPrefix}') is not an upstream of this cache. `
        + 'Pass one of the UpstreamRegistry objects given in upstreams.');
    }
    return upstream.ecrRepositoryPrefix;
  }

  /**
   * The statements of a pull grant: the cache repositories, and the token (which has no resource type). Mirrored
   * prefixes are pulled only: their images are pushed by the mirror, never imported on a pull.
   */
  private pullStatements(): iam.PolicyStatement[] {
    const actions = [...PULL_ACTIONS, ...FIRST_PULL_ACTIONS, ...(this.templatesTagRepositories ? ['ecr:TagResource'] : [])];
    const arns = this.cacheRepositoryArns();
    const pulledThrough = arns.filter((_, i) => !isMirror(this.upstreams[i]));
    const mirrored = arns.filter((_, i) => isMirror(this.upstreams[i]));
    return [
      ...(pulledThrough.length > 0 ? [new iam.PolicyStatement({ actions, resources: pulledThrough })] : []),
      new iam.PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }),
      ...(mirrored.length > 0 ? [new iam.PolicyStatement({ actions: PULL_ACTIONS, resources: mirrored })] : []),
    ];
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

  /** The template properties shared by every prefix, and the role ECR needs for them. */
  private templateSettings(options: CacheRepositoryOptions) {
    const where = `${this.node.path} repositoryOptions`;
    const mutability = options.imageTagMutability ?? ecr.TagMutability.MUTABLE;
    if (mutability !== ecr.TagMutability.MUTABLE) {
      throw new Error(`${where}: imageTagMutability ${mutability} would stop ECR from refreshing cached tags when upstream `
        + 'moves them (the cache would serve its first copy forever). Cached repositories must be MUTABLE; pin images by digest instead.');
    }
    const encryption = this.encryptionSettings(options, where);

    const usesLifecycleDefaults = options.lifecycleRules === undefined;
    if (!usesLifecycleDefaults && (options.untaggedImageExpiration !== undefined || options.maxImageCount !== undefined)) {
      throw new Error(`${where}: lifecycleRules replaces the default rules, so untaggedImageExpiration and maxImageCount `
        + 'would be ignored. Set either lifecycleRules or those two.');
    }
    const lifecycleRules = options.lifecycleRules ?? [
      { description: 'Expire untagged images', tagStatus: ecr.TagStatus.UNTAGGED, maxImageAge: options.untaggedImageExpiration ?? Duration.days(7) },
      { description: 'Keep the newest images', tagStatus: ecr.TagStatus.ANY, maxImageCount: options.maxImageCount ?? 100 },
    ];
    const lifecyclePolicy = lifecycleRules.length > 0 ? renderLifecyclePolicy(lifecycleRules, where) : undefined;

    const tags = options.resourceTags ?? [];
    if (tags.length > 50) {
      throw new Error(`${where}: ${tags.length} resourceTags; ECR allows at most 50.`);
    }
    const needsRole = tags.length > 0 || encryption?.kmsKey !== undefined;
    const role = options.role ?? (needsRole ? this.createTemplateRole(options.encryptionKey) : undefined);

    const properties: Partial<ecr.CfnRepositoryCreationTemplateProps> = {
      imageTagMutability: mutability,
      lifecyclePolicy,
      encryptionConfiguration: encryption,
      resourceTags: tags.length > 0 ? tags.map(t => ({ key: t.key, value: t.value })) : undefined,
      repositoryPolicy: options.repositoryPolicy ? Stack.of(this).toJsonString(options.repositoryPolicy.toJSON()) : undefined,
      customRoleArn: role?.roleArn,
    };
    return { properties, role };
  }

  private encryptionSettings(options: CacheRepositoryOptions, where: string):
  ecr.CfnRepositoryCreationTemplate.EncryptionConfigurationProperty | undefined {
    const type = options.encryption ?? (options.encryptionKey ? ecr.RepositoryEncryption.KMS : ecr.RepositoryEncryption.AES_256);
    if (type === ecr.RepositoryEncryption.KMS_DSSE) {
      throw new Error(`${where}: KMS_DSSE encryption exists only in the GovCloud (US) Regions, where ECR has no pull through cache. Use KMS.`);
    }
    if (options.encryptionKey && type !== ecr.RepositoryEncryption.KMS) {
      throw new Error(`${where}: encryptionKey is set, but encryption is ${type.value}. Use RepositoryEncryption.KMS or drop the key.`);
    }
    const keyArn = options.encryptionKey?.keyArn;
    const aliasName = (options.encryptionKey as Partial<kms.IAlias> | undefined)?.aliasName;
    if (aliasName !== undefined || (keyArn !== undefined && !Token.isUnresolved(keyArn) && /:alias\//.test(keyArn))) {
      throw new Error(`${where}: encryptionKey is the alias '${aliasName ?? keyArn}', but ECR needs the full ARN of the key itself. `
        + 'Import it with kms.Key.fromKeyArn(scope, id, \'arn:aws:kms:<region>:<account>:key/<key id>\').');
    }
    if (type === ecr.RepositoryEncryption.AES_256 && options.encryption === undefined) {
      return undefined; // ECR's default: keep the template free of it
    }
    return { encryptionType: type.value, kmsKey: keyArn };
  }

  /** The documented custom role for templates that tag or use KMS, scoped to the cache prefixes and the key. */
  private createTemplateRole(key?: kms.IKey): iam.Role {
    const role = new iam.Role(this, 'TemplateRole', {
      assumedBy: new iam.ServicePrincipal('ecr.amazonaws.com'),
      description: 'Lets ECR create pull through cache repositories with tags and KMS encryption from the repository creation templates',
    });
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['ecr:CreateRepository', 'ecr:TagResource'],
      resources: this.cacheRepositoryArns(),
    }));
    key?.grant(role, 'kms:CreateGrant', 'kms:RetireGrant', 'kms:DescribeKey');
    acknowledgeWildcardResources(role, this.cacheRepositoryArns(),
      'ECR creates cached repositories on demand under each cache prefix, so the role covers <prefix>/* of each prefix');
    return role;
  }
}

/** A template's logical id follows its prefix (`rules/logical-ids.ts`): renaming or moving the cache keeps it. */
function keyedTemplate(template: ecr.CfnRepositoryCreationTemplate): ecr.CfnRepositoryCreationTemplate {
  followKey(template, LogicalIdKind.TEMPLATE, template.prefix);
  return template;
}

function isMirror(upstream: UpstreamRegistry): boolean {
  return upstream.registryType === UpstreamRegistryType.MIRROR;
}

/** Construct ids are API: derive them from the prefix (stable across reordering), never from a position. */
function constructIdFor(prefix: string): string {
  return prefix.replace(/\//g, '+');
}

function validateUpstreams(scope: Construct, upstreams: UpstreamRegistry[] | undefined): asserts upstreams is UpstreamRegistry[] {
  const where = scope.node.path;
  if (!Array.isArray(upstreams) || upstreams.length === 0) {
    throw new Error(`${where}: upstreams is empty. List at least one registry, for example upstreams: [UpstreamRegistry.ecrPublic()].`);
  }
  const ruleCount = upstreams.filter(u => u?.registryType !== UpstreamRegistryType.MIRROR).length;
  if (ruleCount > MAX_RULES) {
    throw new Error(`${where}: ${ruleCount} upstreams, but ECR allows at most ${MAX_RULES} pull through cache rules per Region `
      + '(a quota that cannot be raised). Split them across Regions or drop some.');
  }
  const byPrefix = new Map<string, UpstreamRegistry>();
  const byUpstream = new Map<string, UpstreamRegistry>();
  for (const upstream of upstreams) {
    if (!(upstream instanceof UpstreamRegistry)) {
      throw new Error(`${where}: every upstream must be made with an UpstreamRegistry factory (for example UpstreamRegistry.quay()).`);
    }
    const samePrefix = byPrefix.get(upstream.ecrRepositoryPrefix);
    if (samePrefix) {
      throw new Error(`${where}: the cache prefix '${upstream.ecrRepositoryPrefix}' is used by both ${samePrefix.registryUrl} and `
        + `${upstream.registryUrl}. Each rule needs its own prefix: set ecrRepositoryPrefix on one of them.`);
    }
    byPrefix.set(upstream.ecrRepositoryPrefix, upstream);
    const key = `${upstream.registryUrl} ${upstream.upstreamRepositoryPrefix ?? 'ROOT'}`;
    const sameUpstream = byUpstream.get(key);
    if (sameUpstream) {
      throw new Error(`${where}: ${upstream.registryUrl} is listed twice (prefixes '${sameUpstream.ecrRepositoryPrefix}' and `
        + `'${upstream.ecrRepositoryPrefix}'). Cache each upstream once, so every image has one cache URI.`);
    }
    byUpstream.set(key, upstream);
  }
  for (const shared of upstreams.filter(u => u._origin)) {
    const origin = shared._origin!;
    const local = upstreams.find(u => u !== shared && (u._origin ?? u).referenceHost === origin.referenceHost
      && (u._origin ?? u).upstreamRepositoryPrefix === origin.upstreamRepositoryPrefix);
    if (local) {
      throw new Error(`${where}: ${origin.referenceHost} images would be served twice: through the shared cache ${shared.registryUrl} `
        + `(prefix '${shared.ecrRepositoryPrefix}') and by the upstream with prefix '${local.ecrRepositoryPrefix}'. `
        + 'Keep one: drop the local upstream, or leave that prefix out of the shared cache\'s repositoryPrefixes.');
    }
  }
  const region = Stack.of(scope).region;
  if (!Token.isUnresolved(region) && UNSUPPORTED_REGIONS.includes(region)) {
    throw new Error(`${where}: ECR pull through cache is not available in ${region} (nor in ${UNSUPPORTED_REGIONS.filter(r => r !== region).join(', ')}). `
      + 'Deploy the cache in a commercial Region.');
  }
}

/** ECR to ECR: the upstream must be another registry, and another account needs a role. */
function checkEcrUpstream(scope: Construct, upstream: UpstreamRegistry): void {
  const match = ECR_REGISTRY_URL.exec(upstream.registryUrl);
  const stack = Stack.of(scope);
  if (!match || Token.isUnresolved(stack.account)) {
    return;
  }
  const [, account, region] = match;
  const where = `${scope.node.path}: the ECR upstream ${upstream.registryUrl}`;
  if (account === stack.account && region === stack.region) {
    throw new Error(`${where} is this stack's own registry; an ECR upstream must be another Region or account.`);
  }
  if (account !== stack.account && !upstream.role) {
    throw new Error(`${where} is in account ${account}, not ${stack.account}: ECR needs a role to pull across accounts. `
      + 'Pass role: a role that trusts pullthroughcache.ecr.amazonaws.com, and allow this account to pull in the upstream registry policy.');
  }
}

/**
 * Whether a principal that accepted a statement really holds it: a role or user of the app gets a policy construct
 * beneath it, while an immutable imported role accepts every statement and keeps none.
 */
function policyLanded(principal: iam.IPrincipal): boolean {
  if (!Construct.isConstruct(principal)) {
    return true; // not a construct (PrincipalWithConditions, ...): its grant result is all there is to go by
  }
  return principal.node.findAll().some(c => c instanceof iam.Policy || c instanceof iam.ManagedPolicy);
}
