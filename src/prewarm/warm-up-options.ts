import { Duration, Token } from 'aws-cdk-lib';
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
   * Images whose findings never fail the deploy, as the app writes them: `nginx` (every tag) or `nginx:1.27`.
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
   * @default - the platforms the app's workloads run: an ECS task definition's `runtimePlatform.cpuArchitecture`,
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

/** `linux/amd64`, `linux/arm/v7`: an OCI platform as `os/architecture[/variant]`. */
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/;
const FIFTEEN_MINUTES_MS = 15 * 60_000;

/** The options, checked: every error says what was wrong, shows the value and how to fix it. */
export function checkWarmUpOptions(where: string, options: WarmUpOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new Error(`${where}: warmUp must be an object of WarmUpOptions, not ${JSON.stringify(options)}.`);
  }
  for (const platform of options.platforms ?? []) {
    if (Token.isUnresolved(platform) || !PLATFORM.test(platform)) {
      throw new Error(`${where}: warmUp.platforms has ${JSON.stringify(platform)}; write each platform as os/architecture[/variant], `
        + 'for example linux/amd64 or linux/arm64, literally.');
    }
  }
  if (options.platforms !== undefined && options.platforms.length === 0) {
    throw new Error(`${where}: warmUp.platforms is empty; name at least one platform (linux/amd64), or leave it unset to warm the platforms the workloads run.`);
  }
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 32) {
    throw new Error(`${where}: warmUp.concurrency is ${options.concurrency}; use a whole number from 1 to 32.`);
  }
  const budget = (options.retryBudget ?? Duration.minutes(2)).toMilliseconds();
  if (budget < 1000 || budget > 5 * 60_000) {
    throw new Error(`${where}: warmUp.retryBudget is ${options.retryBudget?.toHumanString()}; use 1 second to 5 minutes.`);
  }
  const gate = options.gate;
  if (gate) {
    const timeout = (gate.timeout ?? Duration.minutes(5)).toMilliseconds();
    if (timeout < 1000 || timeout > 10 * 60_000) {
      throw new Error(`${where}: warmUp.gate.timeout is ${gate.timeout?.toHumanString()}; use 1 second to 10 minutes.`);
    }
    if (budget + timeout > FIFTEEN_MINUTES_MS - 2 * 60_000) {
      throw new Error(`${where}: warmUp.retryBudget (${Duration.millis(budget).toHumanString()}) and warmUp.gate.timeout `
        + `(${Duration.millis(timeout).toHumanString()}) add up to more than 13 minutes; the warm-up runs in one Lambda invocation of at most 15. `
        + 'Shorten one of them.');
    }
    for (const cve of gate.allowCves ?? []) {
      if (Token.isUnresolved(cve) || !/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(cve)) {
        throw new Error(`${where}: warmUp.gate.allowCves has ${JSON.stringify(cve)}; write vulnerability ids as the scanner names them, for example CVE-2026-1234.`);
      }
    }
    const levels: string[] = Object.values(UnscannableImages);
    if (gate.unscannable !== undefined && !levels.includes(gate.unscannable)) {
      throw new Error(`${where}: warmUp.gate.unscannable is ${JSON.stringify(gate.unscannable)}; use UnscannableImages.FAIL or UnscannableImages.ALLOW.`);
    }
    const severities: string[] = Object.values(FindingSeverity);
    if (gate.severity !== undefined && !severities.includes(gate.severity)) {
      throw new Error(`${where}: warmUp.gate.severity is ${JSON.stringify(gate.severity)}; use one of ${severities.map(s => `FindingSeverity.${s}`).join(', ')}.`);
    }
  }
}
