import { Duration } from 'aws-cdk-lib';
import { FindingSeverity } from '../scanning/cache-scanning';

/** What the scan gate does with an image the scanner cannot scan (distroless and FROM-scratch images under basic scanning). */
export enum UnscannableImages {
  /** Fail the deploy, naming the image and the scanner's answer. */
  FAIL = 'FAIL',
  /** Let the image pass; the warm-up's log says so, image by image. */
  ALLOW = 'ALLOW',
}

/**
 * The scan gate of a warm-up: the deploy waits for the scan of each warmed image and fails, with a summary of the
 * findings, when any image has one at or above `severity`.
 */
export interface ScanGateOptions {
  /**
   * The lowest severity that fails the deploy.
   * @default FindingSeverity.CRITICAL
   */
  readonly severity?: FindingSeverity;

  /**
   * Vulnerability ids (`CVE-2026-1234`) that never fail the deploy.
   * @default - none
   */
  readonly allowCves?: string[];

  /**
   * Images whose findings never fail the deploy, as the app writes them: `nginx` (every tag) or `nginx:1.27` (a digest is refused).
   * @default - none
   */
  readonly allowImages?: string[];

  /**
   * What an image the scanner cannot scan does.
   * @default UnscannableImages.FAIL
   */
  readonly unscannable?: UnscannableImages;

  /**
   * How long the deploy waits for every image's scan; an image with no finished scan by then fails the deploy.
   * At most 10 minutes (the warm-up runs in one Lambda invocation of at most 15).
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
}

/**
 * Warming the cache at deploy: every image the Aspect moves to the cache, or finds written for it (`imageUri`), is
 * pulled through the cache by a custom resource of its stack, before the workloads that use it are created or
 * updated. See docs/PREWARM.md.
 */
export interface WarmUpOptions {
  /**
   * Give each workload the digest its tag resolved to at this deploy (`<cache>/<repository>@sha256:...`), so what was
   * warmed (and scanned) is what runs; each deploy resolves the tags again. The digests are stack outputs.
   * @default false
   */
  readonly pin?: boolean;

  /**
   * The platforms (`linux/amd64`, `linux/arm64`, `linux/arm/v7`) warmed of a multi-platform image.
   * @default - the platforms the app's workloads run: an ECS task or Batch job definition's `runtimePlatform.cpuArchitecture`,
   * the AMI types of the node groups of an EKS manifest's stack; `linux/amd64` where none says
   */
  readonly platforms?: string[];

  /**
   * How long one image may spend retrying throttled (429, 503) or failing requests, from its first failure, before
   * it fails the deploy.
   * @default Duration.minutes(2)
   */
  readonly retryBudget?: Duration;

  /**
   * How many images are warmed at once.
   * @default 8
   */
  readonly concurrency?: number;

  /**
   * Wait for each warmed image's scan, and fail the deploy on findings.
   * @default - no gate: the deploy does not wait for scans
   */
  readonly gate?: ScanGateOptions;
}
