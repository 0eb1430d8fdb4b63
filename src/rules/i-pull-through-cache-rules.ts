import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { IConstruct } from 'constructs';
import { CachePrefix, ImageMapping } from '../image-mapping';

/**
 * A pull through cache, made in this app (`new PullThroughCacheRules`) or imported from another
 * (`PullThroughCacheRules.fromPullThroughCacheRulesAttributes`): what an application team, the `CachedImages`
 * Aspect, `SharedCache` and node mirrors need of it.
 */
export interface IPullThroughCacheRules extends IConstruct {
  /** The registry the cache is served from: `<account>.dkr.ecr.<region>.<url suffix>`. */
  readonly registryUri: string;

  /** The cache prefixes (`ecrRepositoryPrefix` of each upstream), `ROOT` for none. */
  readonly ecrRepositoryPrefixes: string[];

  /** The registry-to-prefix table that `imageUri` and the `CachedImages` Aspect map by. */
  readonly mapping: ImageMapping;

  /**
   * The cache's rules that carry upstream credentials, with their secrets: what the credential canary of
   * `CacheMonitoring` validates. Empty for an imported cache: its secrets are the platform team's, checked by the
   * platform team's own monitoring.
   */
  readonly ruleCredentials: RuleCredentials[];

  /**
   * Grant pulling cached images, including the first pull of an image that is not cached yet.
   * @throws if nothing would really be granted (see `PullThroughCacheRules.grantPull`)
   */
  grantPull(grantee: iam.IGrantable): iam.Grant;

  /**
   * The cache URI of an image: `nginx:1.25` -> `<registryUri>/docker-hub/library/nginx:1.25`.
   * @param image an image reference, for example `nginx:1.25`
   * @throws if the reference is invalid or no prefix of this cache serves its registry
   */
  imageUri(image: string): string;

  /** The ARNs that cover every repository of the cache: `arn:<partition>:ecr:<region>:<account>:repository/<prefix>/*` per prefix. */
  cacheRepositoryArns(): string[];

  /**
   * An EventBridge rule on the cache's failed syncs with its upstreams (`ECR Pull Through Cache Action`, `sync-status` not SUCCESS).
   * @param id the construct id of the rule
   * @param options a target, and more of the event pattern
   */
  onSyncFailed(id: string, options?: events.OnEventOptions): events.Rule;

  /**
   * An EventBridge rule on completed basic scans of cached images (`ECR Image Scan`, `scan-status` COMPLETE).
   * @param id the construct id of the rule
   * @param options a target, and more of the event pattern
   */
  onScanCompleted(id: string, options?: events.OnEventOptions): events.Rule;
}

/**
 * How to find a cache made in another CDK app of the same account, for `PullThroughCacheRules.fromPullThroughCacheRulesAttributes`.
 * Copy its prefixes from the platform team's app (its `mapping`, or `ecr-ptc --print-prefixes`).
 */
export interface PullThroughCacheRulesAttributes {
  /**
   * The cache's prefixes, by the registry they serve: `{ registry: 'docker.io', ecrRepositoryPrefix: 'docker-hub' }`.
   * A row with `copiedImages` is a prefix the cache copies images into: it is granted pulls only.
   */
  readonly prefixes: CachePrefix[];

  /**
   * The Region of the cache (pulling from another Region of the same account works, and costs transfer).
   * @default - the Region of the stack that imports it
   */
  readonly region?: string;

  /**
   * Whether the cache's repository creation templates tag the repositories they create (`repositoryOptions.resourceTags`):
   * the first pull of an image then also needs `ecr:TagResource`.
   * @default false
   */
  readonly taggedRepositories?: boolean;
}

/** The credentials of one pull through cache rule, as `IPullThroughCacheRules.ruleCredentials` lists them. */
export interface RuleCredentials {
  /** The rule's cache prefix. */
  readonly ecrRepositoryPrefix: string;

  /** The secret the rule reads its upstream credentials from. */
  readonly secret: secretsmanager.ISecret;

  /**
   * Whether the secret was created with a placeholder value (`UpstreamCredentials.createSecret`). Such a secret
   * that still has only its first version is reported as "not filled in" rather than as broken; the canary reads
   * its metadata (`secretsmanager:DescribeSecret`), never its value.
   * @default false
   */
  readonly createdWithPlaceholder?: boolean;
}
