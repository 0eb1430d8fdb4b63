/**
 * What the scanning construct and its handlers agree on: environment variables, metric names and
 * dimensions, event names. Pure constants: the construct and the bundled handlers both import this file,
 * and nothing else crosses between them.
 */

/** Environment variables of the scanning handlers. */
export const ScanEnv = {
  /** JSON array of the cache's repository prefixes (`ROOT` for the whole registry). */
  PREFIXES: 'CACHE_PREFIXES',
  /** The `Cache` dimension value of every metric. */
  CACHE_NAME: 'CACHE_NAME',
  METRIC_NAMESPACE: 'METRIC_NAMESPACE',
  /** Reporter: the topic findings reports go to. */
  TOPIC_ARN: 'FINDINGS_TOPIC_ARN',
  /** Reporter: the lowest severity that is reported (CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL). */
  REPORT_SEVERITY: 'REPORT_SEVERITY',
  /** Attempts of each SDK call (first try plus retries, with exponential backoff and full jitter). */
  MAX_ATTEMPTS: 'AWS_SDK_MAX_ATTEMPTS',
} as const;

/** Metric names the scanning handlers publish (Embedded Metric Format). */
export const ScanMetric = {
  /** A scan was started (StartImageScan accepted). */
  STARTED: 'ScansStarted',
  /** No scan was needed or possible; dimension `Reason` says why. */
  SKIPPED: 'ScansSkipped',
  /**
   * Events whose scan failed for good: counted once per event, on the attempt after which it is given up (a
   * redriven event's last real attempt), never per attempt. Events waiting in the dead-letter queue are its messages.
   */
  FAILED: 'ScanFailures',
  /** A completed scan was reported (ECR Image Scan or Inspector2 Scan). */
  REPORTED: 'ScansReported',
  /**
   * Findings of a completed scan, and each new finding Amazon Inspector reports later (continuous
   * scanning); dimension `Severity`.
   */
  FINDINGS: 'Findings',
  /**
   * An image the scanner answered without a completed scan (basic scanning's FAILED, mostly
   * `UnsupportedImageError` for images FROM scratch and distroless ones); dimensions `Prefix`, `Reason`.
   */
  NOT_SCANNED: 'ImagesNotScanned',
  /** A findings report SNS refused (deleted topic, KMS key denied); its metrics were written first. */
  REPORTS_NOT_PUBLISHED: 'ReportsNotPublished',
} as const;

/** Why a scan was skipped (the `Reason` dimension of `ScansSkipped`). */
export const SkipReason = {
  /** ECR refused: the image was scanned in the last 24 hours (a duplicate event included). */
  ALREADY_SCANNED: 'AlreadyScanned',
  /** ECR cannot scan this image type (for example a Windows image or a non-image artifact). */
  UNSUPPORTED_IMAGE: 'UnsupportedImage',
  /** The image is archived. */
  ARCHIVED: 'ImageArchived',
  /** The image or its repository is gone (expired by the lifecycle policy, deleted). */
  GONE: 'ImageGone',
  /**
   * A platform image of a multi-architecture image that is not in the repository (yet): not gone, not
   * scanned. See the README (Scanning, multi-architecture images) for how to scan it when it arrives.
   */
  PLATFORM_NOT_CACHED: 'PlatformNotCached',
  /** The event names a repository outside the cache's prefixes. */
  OUTSIDE_CACHE: 'OutsideCache',
} as const;

export const DEFAULT_METRIC_NAMESPACE = 'EcrPullThroughCache';

/** Severities in the order ECR and Inspector rank them, the most severe first. */
export const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL', 'UNDEFINED'] as const;
