/**
 * What the warm-up custom resource (`cache-warm-up.ts`) and its handler (`warm-up.lambda.ts`) agree on. No CDK
 * imports: the handler bundle reads it too.
 */

/** The custom resource type of a stack's warm-up. */
export const WARM_UP_RESOURCE_TYPE = 'Custom::EcrPullThroughCacheWarmUp';

/**
 * The most images one warm-up resource holds. CloudFormation accepts a response of at most 4096 bytes, and each
 * pinned image's digest is one attribute of it (`Digest<n>`: about 80 bytes); a stack with more images gets a
 * second resource (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html).
 */
export const IMAGES_PER_RESOURCE = 30;

/** The attribute holding the digest of the image at `index` of `Images`: `sha256:<hex>`. */
export function digestAttribute(index: number): string {
  return `Digest${index}`;
}

/** One image to warm, as the template gives it (CloudFormation turns every value into a string). */
export interface WarmUpImageProperties {
  /**
   * The registry the workload pulls from (`<account>.dkr.ecr.<region>.amazonaws.com`): the handler warms only images of
   * its own account's and region's registry, the one its token is for.
   */
  readonly Registry?: string;
  /** The repository inside the cache registry: `docker-hub/library/nginx`. */
  readonly Repository: string;
  /** The tag to pull (by tag, so a pull through cache fills: aws/containers-roadmap#2837). */
  readonly Tag: string;
  /** The platforms to warm of a multi-platform image, `os/architecture[/variant]`, comma-separated. */
  readonly Platforms: string;
}

/** The scan gate, as the template gives it. */
export interface ScanGateProperties {
  /** The lowest severity that fails the deploy: CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL. */
  readonly Severity: string;
  /** Vulnerability ids that never fail the deploy. */
  readonly AllowCves?: string[];
  /** Repositories (`docker-hub/library/nginx`) or repository:tag whose findings never fail the deploy. */
  readonly AllowImages?: string[];
  /** FAIL or ALLOW: what an image the scanner cannot scan does. */
  readonly Unscannable: string;
  /** How long to wait, in seconds, for every image's scan. */
  readonly TimeoutSeconds: string;
}

export interface WarmUpProperties {
  readonly Images: WarmUpImageProperties[];
  /** Seconds one image may spend retrying throttled or failing requests before the deploy fails. */
  readonly RetryBudgetSeconds: string;
  /** Images warmed at once. */
  readonly Concurrency: string;
  readonly Gate?: ScanGateProperties;
  /** Changes on each synthesis, so each deploy re-resolves the tags (CloudFormation calls Update only on a change). */
  readonly Refresh?: string;
}

/** What an unscannable image does at the gate. */
export const UNSCANNABLE = { FAIL: 'FAIL', ALLOW: 'ALLOW' } as const;

/** The metric namespace of the warm-up handler. */
export const WARM_UP_NAMESPACE = 'EcrPullThroughCache/WarmUp';
