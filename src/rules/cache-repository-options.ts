import { CfnTag, Duration } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';

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
