/**
 * The scan events other than a completed scan, read into what the findings reporter needs. Pure: no SDK,
 * no CDK; the reporter (findings-report.lambda.ts) imports it.
 *
 * - `ECR Image Scan` with a `scan-status` other than COMPLETE: basic scanning answers FAILED for images it
 *   cannot scan, and DescribeImageScanFindings then says why, for example
 *   "UnsupportedImageError: The operating system and/or package manager are not supported." (images built
 *   FROM scratch and distroless images; https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-troubleshooting.html,
 *   aws/containers-roadmap#2066 and #2228).
 * - `Inspector2 Finding`: with enhanced continuous scanning, a vulnerability published after an image's
 *   initial scan arrives as one of these (https://docs.aws.amazon.com/inspector/latest/user/eventbridge-integration.html);
 *   the `Inspector2 Scan` event covers only the initial scan.
 */
import { eventImage } from './event-image';
import { CloudEvent } from '../private/handlers/envelope';

/** An image the scanner answered without a completed scan. */
export interface UnscannedImage {
  readonly repositoryName: string;
  readonly imageDigest: string;
  readonly imageTags: string[];
  /** The event's `scan-status` (FAILED, or another status that is not COMPLETE). */
  readonly status: string;
}

/** One vulnerability Amazon Inspector found in an image (an `Inspector2 Finding` event). */
export interface InspectorFinding {
  readonly repositoryName: string;
  readonly account?: string;
  readonly region?: string;
  readonly imageDigest: string;
  readonly imageTags: string[];
  readonly severity: string;
  /** The vulnerability id (CVE-...), or the finding's title when it has none. */
  readonly id: string;
  readonly packageName?: string;
  readonly link?: string;
  readonly findingArn?: string;
  /** Milliseconds since the epoch, when the event carries them. */
  readonly firstObservedAt?: number;
  readonly updatedAt?: number;
  readonly pushedAt?: number;
}

const SEVERITY = /^(?:CRITICAL|HIGH|MEDIUM|LOW|INFORMATIONAL|UNTRIAGED)$/;

/**
 * A finding observed this close to the image's push belongs to its initial scan, which the `Inspector2 Scan`
 * event reports; one updated this long after it was first observed was reported when it was new. Our choice,
 * not an AWS figure: AWS documents no time for the initial scan, only that Inspector sends a finding event when
 * a finding is created, updated or closed, keeping its id (image-scanning-enhanced-events.html).
 */
export const INITIAL_SCAN_WINDOW_MS = 60 * 60 * 1000;

/** Whether an event is a basic scan that did not complete (it is then never a completed scan). */
export function isUnscannedEvent(event: CloudEvent): boolean {
  return event.source === 'aws.ecr' && event['detail-type'] === 'ECR Image Scan' && event.detail['scan-status'] !== 'COMPLETE';
}

export function unscannedImageOf(event: CloudEvent): UnscannedImage {
  const detail = event.detail;
  const { repositoryName, imageDigest } = eventImage(event, detail['repository-name'], detail['image-digest']);
  const status = typeof detail['scan-status'] === 'string' && detail['scan-status'] !== '' ? detail['scan-status'] : 'UNKNOWN';
  return { repositoryName, imageDigest, imageTags: stringsOf(detail['image-tags']), status };
}

/**
 * The `Reason` dimension of an image not scanned: the error name ECR puts first in the scan status
 * description (`UnsupportedImageError: ...`), else the status itself (`FAILED`, `UNSUPPORTED_IMAGE`, ...).
 */
export function unscannedReason(status: string, description: string | undefined): string {
  const named = /^([A-Za-z][A-Za-z0-9]*(?:Error|Exception))\b/.exec(description ?? '');
  return named ? named[1] : /^[A-Z_]{1,40}$/.test(status) ? status : 'UNKNOWN';
}

/** Whether an event is an Amazon Inspector finding. */
export function isFindingEvent(event: CloudEvent): boolean {
  return event.source === 'aws.inspector2' && event['detail-type'] === 'Inspector2 Finding';
}

/** Read the image and vulnerability of an `Inspector2 Finding` event about an ECR image; anything else is refused. */
export function inspectorFindingOf(event: CloudEvent): InspectorFinding {
  const d = event.detail as Record<string, any>;
  const resource = (Array.isArray(d.resources) ? d.resources : []).find((r: any) => r?.type === 'AWS_ECR_CONTAINER_IMAGE');
  const image = resource?.details?.awsEcrContainerImage;
  if (!image) {
    throw new Error(`event ${event.id ?? ''} is an Inspector2 Finding about no ECR image (no resource of type AWS_ECR_CONTAINER_IMAGE)`);
  }
  const { repositoryName, imageDigest } = eventImage(event, image.repositoryName, image.imageHash,
    { repository: 'awsEcrContainerImage.repositoryName', digest: 'awsEcrContainerImage.imageHash' });
  if (typeof d.severity !== 'string' || !SEVERITY.test(d.severity)) {
    throw new Error(`event ${event.id ?? ''} has no valid detail.severity (got ${JSON.stringify(d.severity)})`);
  }
  const vulnerability = d.packageVulnerabilityDetails ?? {};
  const id = typeof vulnerability.vulnerabilityId === 'string' ? vulnerability.vulnerabilityId : typeof d.title === 'string' ? d.title : 'unnamed finding';
  const account = typeof image.registry === 'string' ? image.registry : typeof d.awsAccountId === 'string' ? d.awsAccountId : event.account;
  return {
    repositoryName,
    account,
    region: typeof resource.region === 'string' ? resource.region : event.region,
    imageDigest,
    imageTags: stringsOf(image.imageTags),
    severity: d.severity === 'UNTRIAGED' ? 'UNDEFINED' : d.severity,
    id,
    packageName: typeof vulnerability.vulnerablePackages?.[0]?.name === 'string' ? vulnerability.vulnerablePackages[0].name : undefined,
    link: typeof vulnerability.sourceUrl === 'string' && /^https:\/\/\S+$/.test(vulnerability.sourceUrl) ? vulnerability.sourceUrl : undefined,
    findingArn: typeof d.findingArn === 'string' ? d.findingArn : undefined,
    firstObservedAt: timeOf(d.firstObservedAt),
    updatedAt: timeOf(d.updatedAt),
    pushedAt: timeOf(image.pushedAt),
  };
}

/**
 * Why a finding is not reported on its own, or undefined when it is news: a finding of the initial scan
 * (the `Inspector2 Scan` event reports those), or an update of a finding reported when it was new.
 * A finding without the times to tell is news (reported rather than missed).
 */
export function findingAlreadyCovered(finding: InspectorFinding): string | undefined {
  const { firstObservedAt, updatedAt, pushedAt } = finding;
  if (firstObservedAt !== undefined && pushedAt !== undefined && firstObservedAt - pushedAt < INITIAL_SCAN_WINDOW_MS) {
    return 'InitialScan';
  }
  if (firstObservedAt !== undefined && updatedAt !== undefined && updatedAt - firstObservedAt > INITIAL_SCAN_WINDOW_MS) {
    return 'Update';
  }
  return undefined;
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((t): t is string => typeof t === 'string') : [];
}

/** Inspector's examples write times as "Mar 22, 2022, 8:05:29 PM"; ISO 8601 is read too. */
function timeOf(value: unknown): number | undefined {
  const ms = typeof value === 'string' ? Date.parse(value) : typeof value === 'number' ? value : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}
