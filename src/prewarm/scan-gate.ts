/**
 * The scan gate of the warm-up: wait, within a limit, for the scan of every image warmed, then fail the deploy when any
 * has a finding at or above the severity the user set, less the vulnerabilities and images allowed. An image the
 * scanner cannot scan (distroless and FROM-scratch images under basic scanning answer `UNSUPPORTED_IMAGE` or
 * `FAILED`: https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-troubleshooting.html) follows the
 * user's rule, and says so in the log either way; an image with no scan result when the wait ends fails: the gate
 * never passes what it did not see.
 *
 * Statuses are `ImageScanStatus.status` of DescribeImageScanFindings
 * (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageScanStatus.html).
 *
 * Pure: no SDK, no CDK; the handler gives it a function that reads one image's scan.
 */

/** One finding: its vulnerability id (CVE-...) and severity. */
export interface ScanFinding {
  readonly id: string;
  readonly severity: string;
}

/** An image's scan as DescribeImageScanFindings answers it; undefined from the reader means "no scan yet" (ScanNotFoundException). */
export interface ScanState {
  readonly status: string;
  readonly description?: string;
  readonly findings: readonly ScanFinding[];
}

/** An image to judge: where it is, and the manifest digest that was scanned. */
export interface GatedImage {
  readonly repository: string;
  readonly tag: string;
  readonly imageDigest: string;
}

export interface GateRules {
  readonly severity: string;
  readonly allowCves: readonly string[];
  /** `repository` or `repository:tag` in the cache registry. */
  readonly allowImages: readonly string[];
  /** FAIL or ALLOW. */
  readonly unscannable: string;
}

export interface GateOptions {
  readonly timeoutMs: number;
  /** Milliseconds between two reads of the scans not finished yet. @default 10000 */
  readonly pollMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

/** What the gate decided of each image. */
export interface GateVerdict {
  readonly image: GatedImage;
  readonly outcome: 'PASSED' | 'ALLOWED' | 'FAILED' | 'UNSCANNABLE_ALLOWED' | 'UNSCANNABLE' | 'SCAN_STOPPED' | 'NOT_SCANNED';
  /** Findings at or above the severity, not allowed. */
  readonly blocking: readonly ScanFinding[];
  readonly detail?: string;
}

/** Severities from the lowest; UNDEFINED and UNTRIAGED (no rating) gate nothing. */
export const SEVERITIES = ['INFORMATIONAL', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];

const FINISHED = new Set(['COMPLETE', 'ACTIVE']);
const UNSCANNABLE = new Set(['FAILED', 'UNSUPPORTED_IMAGE', 'SCAN_ELIGIBILITY_EXPIRED', 'FINDINGS_UNAVAILABLE', 'IMAGE_ARCHIVED']);
/**
 * Final without findings, though the image can be scanned (the account's scan limit): nothing to wait for, and not the
 * image's fault, so the unscannable rule does not apply; it fails at once, with the status.
 */
const STOPPED = new Set(['LIMIT_EXCEEDED']);

/** The outcomes that fail the deploy. */
export const FAILING_OUTCOMES: ReadonlyArray<GateVerdict['outcome']> = ['FAILED', 'UNSCANNABLE', 'SCAN_STOPPED', 'NOT_SCANNED'];

/** The verdict on one image's finished (or unscannable) scan. */
export function judgeScan(image: GatedImage, state: ScanState, rules: GateRules): GateVerdict {
  const detail = `${state.status}${state.description ? `: ${state.description}` : ''}`;
  if (STOPPED.has(state.status)) {
    return { image, outcome: 'SCAN_STOPPED', blocking: [], detail };
  }
  if (UNSCANNABLE.has(state.status)) {
    return { image, outcome: rules.unscannable === 'ALLOW' ? 'UNSCANNABLE_ALLOWED' : 'UNSCANNABLE', blocking: [], detail };
  }
  const floor = SEVERITIES.indexOf(rules.severity);
  const atOrAbove = state.findings.filter(f => SEVERITIES.indexOf(f.severity) >= floor && floor >= 0);
  const blocking = atOrAbove.filter(f => !rules.allowCves.includes(f.id));
  if (blocking.length === 0) {
    return { image, outcome: 'PASSED', blocking, detail: atOrAbove.length > 0 ? `${atOrAbove.length} allowed by allowCves` : undefined };
  }
  if (rules.allowImages.includes(image.repository) || rules.allowImages.includes(`${image.repository}:${image.tag}`)) {
    return { image, outcome: 'ALLOWED', blocking, detail: 'allowed by allowImages' };
  }
  return { image, outcome: 'FAILED', blocking };
}

/**
 * Reads each image's scan until every one is finished, unscannable or the time is up; returns a verdict per image
 * (NOT_SCANNED for those still waiting at the end).
 */
export async function gateScans(images: readonly GatedImage[], read: (image: GatedImage) => Promise<ScanState | undefined>,
  rules: GateRules, options: GateOptions): Promise<GateVerdict[]> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? (ms => new Promise(resolve => setTimeout(resolve, ms)));
  const end = now() + options.timeoutMs;
  const verdicts = new Map<GatedImage, GateVerdict>();
  const last = new Map<GatedImage, string>();
  for (;;) {
    for (const image of images.filter(i => !verdicts.has(i))) {
      const state = await read(image);
      last.set(image, state?.status ?? 'no scan yet');
      if (state && (FINISHED.has(state.status) || UNSCANNABLE.has(state.status) || STOPPED.has(state.status))) {
        verdicts.set(image, judgeScan(image, state, rules));
      }
    }
    const waiting = images.filter(i => !verdicts.has(i));
    if (waiting.length === 0 || now() >= end) {
      return images.map(image => verdicts.get(image) ?? {
        image, outcome: 'NOT_SCANNED', blocking: [], detail: `no finished scan within ${Math.round(options.timeoutMs / 100) / 10} s (last status: ${last.get(image)})`,
      });
    }
    await sleep(Math.min(options.pollMs ?? 10_000, Math.max(0, end - now())));
  }
}

/** The deploy's failure reason from the verdicts, or undefined when the gate passes. */
export function gateFailure(verdicts: readonly GateVerdict[], rules: GateRules): string | undefined {
  const failed = verdicts.filter(v => FAILING_OUTCOMES.includes(v.outcome));
  if (failed.length === 0) {
    return undefined;
  }
  const lines = failed.map(v => {
    const name = `${v.image.repository}:${v.image.tag} (${v.image.imageDigest.slice(0, 19)})`;
    switch (v.outcome) {
      case 'FAILED': {
        const counts = SEVERITIES.slice().reverse().map(s => [s, v.blocking.filter(f => f.severity === s).length] as const)
          .filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`).join(', ');
        const ids = v.blocking.slice(0, 5).map(f => f.id).join(', ');
        return `${name}: ${counts} (${ids}${v.blocking.length > 5 ? `, and ${v.blocking.length - 5} more` : ''})`;
      }
      case 'UNSCANNABLE':
        return `${name}: cannot be scanned (${v.detail}); set the gate's unscannable rule to ALLOW to let such images pass`;
      case 'SCAN_STOPPED':
        return `${name}: the scan ended with no findings to judge (${v.detail}); deploy again when the scanner can scan it, or allow the image (allowImages)`;
      default:
        return `${name}: ${v.detail}; is scanning on for this prefix (the cache's scanning), or is the gate's timeout too short?`;
    }
  });
  return `Scan gate: ${failed.length} of ${verdicts.length} images fail at ${rules.severity} or above. ${lines.join('; ')}. `
    + 'Fix or update the images, or allow them (allowCves, allowImages).';
}
