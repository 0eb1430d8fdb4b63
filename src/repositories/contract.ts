/**
 * What the cached-repository custom resources (`cached-repositories.ts`) and their handlers (`backfill.lambda.ts`,
 * `teardown.lambda.ts`) agree on. No CDK imports: the handler bundles and the tests read it too.
 */

/** Applies the creation template's lifecycle policy and tags to the repositories that exist already. */
export const BACKFILL_RESOURCE_TYPE = 'Custom::EcrCacheRepositoryBackfill';

/** Deletes, when the stack is deleted, the repositories the cache's creation templates created. */
export const TEARDOWN_RESOURCE_TYPE = 'Custom::EcrCacheRepositoryTeardown';

/**
 * The tag the creation templates put on every repository they create while teardown is on (`LIST_ONLY` or
 * `DESTROY_WITH_IMAGES`): ECR applies a template's `ResourceTags` when it creates the repository
 * (https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-creation-templates.html). Its value names the
 * cache that created the repository (`TeardownProperties.CreatedBy`: the stack's UUID and the construct's address), so
 * teardown deletes only what THIS cache of THIS stack created: not a nested prefix's repositories of another cache, not
 * those a deleted stack of the same name (another UUID) left behind. Backfill never sets it: a repository made before
 * (by hand, by an older rule) is adopted for its settings but never becomes the cache's to delete.
 */
export const CREATED_BY_TAG = { key: 'cdk-ecr-pull-through-cache:created-by' } as const;

/** One resource tag, as CloudFormation passes it. */
export interface TagProperty {
  readonly Key: string;
  readonly Value: string;
}

/** The backfill resource's properties (every scalar arrives as a string). */
export interface BackfillProperties {
  /** The cache prefixes whose repositories are adopted (`<prefix>/...`). */
  readonly Prefixes: string[];
  /** The template's lifecycle policy (JSON text); absent when the template has none. */
  readonly LifecyclePolicy?: string;
  /** The template's resource tags. */
  readonly ResourceTags?: TagProperty[];
  /** The template's encryption (`AES256`, `KMS`); absent means ECR's default, AES256. */
  readonly EncryptionType?: string;
  /** The template's KMS key ARN, with `KMS`. */
  readonly KmsKey?: string;
  /** 'true' to replace lifecycle policies this cache did not write. */
  readonly ReplaceOtherLifecyclePolicies?: string;
  /** Name of the cache, the `Cache` dimension of the metrics. */
  readonly CacheName: string;
}

/** The teardown resource's properties. */
export interface TeardownProperties {
  /** The pull through cache prefixes whose repositories go with the stack. */
  readonly Prefixes: string[];
  /** `LIST_ONLY` or `DESTROY_WITH_IMAGES`. */
  readonly Mode: string;
  readonly CacheName: string;
  /** The value of `CREATED_BY_TAG` on the repositories this cache created: only those are deleted. */
  readonly CreatedBy: string;
}

/** The teardown modes the handler acts on (the values of `CachedRepositoryRemoval` that have a resource). */
export const TEARDOWN_MODES = ['LIST_ONLY', 'DESTROY_WITH_IMAGES'] as const;

/** The namespace of the handlers' metrics (the scanning handlers' too). */
export const METRIC_NAMESPACE = 'EcrPullThroughCache';

/** The metrics the handlers publish, one value per run, dimension `Cache`. */
export const RepositoryMetric = {
  /** Repositories given the template's lifecycle policy or tags. */
  BACKFILL_CHANGED: 'BackfillChanged',
  /** Repositories this run did not change (already as the template makes them, or their own policy kept). */
  BACKFILL_CURRENT: 'BackfillCurrent',
  /** Repositories whose own lifecycle policy was kept (their tags may still have been set: counted as changed too). */
  BACKFILL_SKIPPED: 'BackfillSkipped',
  /** Repositories whose encryption differs from the template's (never changed: ECR cannot). */
  BACKFILL_ENCRYPTION_DIFFERS: 'BackfillEncryptionDiffers',
  /** Repositories the backfill could not change after every retry. */
  BACKFILL_FAILED: 'BackfillFailed',
  /** Repositories deleted with their images. */
  TEARDOWN_DELETED: 'TeardownDeleted',
  /** Repositories a dry run (`LIST_ONLY`) would delete. */
  TEARDOWN_WOULD_DELETE: 'TeardownWouldDelete',
  /** Repositories under the prefixes kept because the cache did not create them. */
  TEARDOWN_KEPT: 'TeardownKept',
  /** Repositories teardown could not delete after every retry. */
  TEARDOWN_FAILED: 'TeardownFailed',
} as const;
