/**
 * Findings reporter: turns scans of cached images into metrics and readable reports.
 *
 * Invoked by EventBridge rules on `ECR Image Scan` (basic scanning, any `scan-status` but IN_PROGRESS),
 * `Inspector2 Scan` (enhanced scanning, INITIAL_SCAN_COMPLETE) and `Inspector2 Finding` (enhanced
 * continuous scanning: a vulnerability found after the initial scan) for the cache's repositories, and by
 * the dead-letter queue's redrive mapping.
 *
 * - Every completed scan: `ScansReported` and `Findings` per severity (Embedded Metric Format), per cache
 *   and per cache prefix. An Inspector scan's event counts CRITICAL, HIGH, MEDIUM and TOTAL only; when the
 *   report severity is LOW or below and TOTAL holds more, the counts are read from ECR.
 * - A basic scan that did not complete (FAILED: `UnsupportedImageError` for images FROM scratch and
 *   distroless ones): `ImagesNotScanned` per prefix and reason, read from the scan status. Never thrown.
 * - A new Inspector finding: `Findings` at its severity, and a report when it is at or above the report
 *   severity (findings of the initial scan and later updates are left to the scan report).
 * - Metrics first, notification second: a report at or above the report severity is then published to SNS
 *   (repository, tags, digest, counts, the most severe vulnerability ids with links, a console link). A
 *   failed publish is counted (`ReportsNotPublished`), logged as an ERROR and thrown: Lambda retries it, then
 *   the dead-letter queue keeps the event. A retried event counts its findings again (see the README).
 */
import { DescribeImageScanFindingsCommand, ECRClient } from '@aws-sdk/client-ecr';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { DEFAULT_METRIC_NAMESPACE, ScanEnv, ScanMetric, SEVERITIES } from './contract';
import {
  CompletedScan, completedScanOf, findingsOf, linkFor, reportFor, severitiesAtOrAbove, subjectFor, TOP_FINDINGS, TopFinding, topFindings,
} from './report-text';
import { findingAlreadyCovered, inspectorFindingOf, isFindingEvent, isUnscannedEvent, unscannedImageOf, unscannedReason } from './scan-outcomes';
import { awsErrorInfo } from '../private/handlers/aws-errors';
import { BatchResult, cachePrefixOf, dispatch, requiredEnv } from '../private/handlers/dispatch';
import { CloudEvent } from '../private/handlers/envelope';
import { log } from '../private/handlers/log';
import { putMetrics } from '../private/handlers/metrics';
import { sdkClientConfig } from '../private/handlers/sdk-config';

/** At most this many pages of findings are read to find the most severe (1,000 findings a page). */
const MAX_PAGES = 5;

export { completedScanOf, findingsOf, reportFor, severitiesAtOrAbove, subjectFor, topFindings, TOP_FINDINGS };
export type { CompletedScan, TopFinding };

let ecr: ECRClient | undefined;
let sns: SNSClient | undefined;

async function readTopFindings(scan: CompletedScan): Promise<TopFinding[] | string> {
  ecr ??= new ECRClient(sdkClientConfig());
  const all: TopFinding[] = [];
  let nextToken: string | undefined;
  try {
    for (let page = 0; page < MAX_PAGES; page++) {
      const response = await ecr.send(new DescribeImageScanFindingsCommand({
        repositoryName: scan.repositoryName,
        registryId: scan.account,
        imageId: { imageDigest: scan.imageDigest },
        maxResults: 1000,
        nextToken,
      }));
      all.push(...findingsOf(response));
      nextToken = response.nextToken;
      if (!nextToken) {
        break;
      }
    }
  } catch (error) {
    const info = awsErrorInfo(error);
    log('WARN', 'finding details unavailable; the report carries the counts only', { repositoryName: scan.repositoryName, errorCode: info.name, errorMessage: info.message });
    return `${info.name}: ${info.message}`;
  }
  return topFindings(all);
}

/** What every event of the reporter needs from the environment. */
interface Settings {
  readonly namespace: string;
  readonly cache: string;
  readonly prefixes: string[];
  readonly threshold: string;
  readonly reported: string[];
}

function settings(): Settings {
  const threshold = requiredEnv(ScanEnv.REPORT_SEVERITY);
  return {
    namespace: process.env[ScanEnv.METRIC_NAMESPACE] ?? DEFAULT_METRIC_NAMESPACE,
    cache: requiredEnv(ScanEnv.CACHE_NAME),
    prefixes: JSON.parse(requiredEnv(ScanEnv.PREFIXES)) as string[],
    threshold,
    reported: severitiesAtOrAbove(threshold),
  };
}

/** Read an event's content, or log it as rejected and throw (kept: retried, then in the dead-letter queue). */
function parsed<T>(event: CloudEvent, read: (e: CloudEvent) => T): T {
  try {
    return read(event);
  } catch (error) {
    log('ERROR', 'event rejected: it holds no scan of an image', { eventId: event.id, detailType: event['detail-type'], error });
    throw error;
  }
}

/** `Findings` at each severity with a count, per cache and per cache prefix. */
function countFindings(s: Settings, prefix: string, counts: Record<string, number>): void {
  for (const severity of SEVERITIES) {
    if (counts[severity] > 0) {
      putMetrics(s.namespace, {
        values: { [ScanMetric.FINDINGS]: counts[severity] },
        dimensions: { Cache: s.cache, Prefix: prefix, Severity: severity },
        dimensionSets: [['Cache', 'Severity'], ['Cache', 'Prefix', 'Severity']],
      });
    }
  }
}

/** Publish a report; a refusal is counted and logged, then thrown so the event is retried and kept. */
async function publish(s: Settings, prefix: string, subject: string, message: string, context: Record<string, unknown>): Promise<void> {
  sns ??= new SNSClient(sdkClientConfig());
  try {
    const response = await sns.send(new PublishCommand({ TopicArn: requiredEnv(ScanEnv.TOPIC_ARN), Subject: subject, Message: message }));
    log('INFO', 'findings report published', { ...context, messageId: response.MessageId });
  } catch (error) {
    const info = awsErrorInfo(error);
    putMetrics(s.namespace, {
      values: { [ScanMetric.REPORTS_NOT_PUBLISHED]: 1 },
      dimensions: { Cache: s.cache, Prefix: prefix },
      dimensionSets: [['Cache'], ['Cache', 'Prefix']],
    });
    log('ERROR', 'findings report not published (its metrics are written); the event is retried, then kept in the dead-letter queue', {
      ...context, errorCode: info.name, errorMessage: info.message,
    });
    throw error;
  }
}

/** The severity counts ECR holds for an image (Inspector's event lacks LOW and INFORMATIONAL), or the reason they cannot be read. */
async function storedCounts(scan: CompletedScan): Promise<Record<string, number> | string> {
  ecr ??= new ECRClient(sdkClientConfig());
  try {
    const response = await ecr.send(new DescribeImageScanFindingsCommand({
      repositoryName: scan.repositoryName, registryId: scan.account, imageId: { imageDigest: scan.imageDigest }, maxResults: 1,
    }));
    const stored = response.imageScanFindings?.findingSeverityCounts; // absent: no count to trust, so they are LOW (below)
    return stored ? Object.fromEntries(SEVERITIES.map(severity => [severity, scan.counts[severity] || stored[severity] || 0])) : 'ECR holds no severity counts for the image';
  } catch (error) {
    const info = awsErrorInfo(error);
    return `${info.name}: ${info.message}`;
  }
}

async function reportCompleted(event: CloudEvent, s: Settings): Promise<void> {
  let scan = parsed(event, completedScanOf);
  const prefix = cachePrefixOf(scan.repositoryName, s.prefixes);
  const { scanner, repositoryName, imageDigest } = scan;
  const context = { eventId: event.id, scanner, repositoryName, imageDigest, counts: scan.counts };
  if (prefix === undefined) {
    log('WARN', 'scan not reported: the repository is outside the cache', { ...context, prefixes: s.prefixes });
    return;
  }
  if (scan.unranked > 0 && s.reported.includes('LOW')) {
    // LOW-only images must not pass unreported: ask ECR which severities TOTAL holds
    const stored = await storedCounts(scan);
    if (typeof stored === 'string') {
      log('WARN', `${scan.unranked} findings below MEDIUM and their severities unreadable: counted as LOW, so they are reported`, { ...context, reason: stored });
      scan = { ...scan, counts: { ...scan.counts, LOW: scan.counts.LOW + scan.unranked } };
    } else {
      scan = { ...scan, counts: stored };
    }
  }
  putMetrics(s.namespace, {
    values: { [ScanMetric.REPORTED]: 1 },
    dimensions: { Cache: s.cache, Prefix: prefix },
    dimensionSets: [['Cache'], ['Cache', 'Prefix']],
    properties: { ...context, counts: scan.counts },
  });
  countFindings(s, prefix, scan.counts);
  if (!s.reported.some(severity => scan.counts[severity] > 0)) {
    log('INFO', `scan reported: nothing at or above ${s.threshold}`, context);
    return;
  }
  const top = await readTopFindings(scan);
  await publish(s, prefix, subjectFor(scan, s.reported), reportFor(scan, s.threshold, top), context);
}

async function reportUnscanned(event: CloudEvent, s: Settings): Promise<void> {
  const image = parsed(event, unscannedImageOf);
  const prefix = cachePrefixOf(image.repositoryName, s.prefixes);
  const { repositoryName, imageDigest, status } = image;
  const context = { eventId: event.id, repositoryName, imageDigest, tags: image.imageTags, status };
  if (prefix === undefined) {
    log('WARN', 'unscanned image not counted: the repository is outside the cache', { ...context, prefixes: s.prefixes });
    return;
  }
  // the event does not say why; the scan status ECR keeps does ("UnsupportedImageError: ...")
  let description: string | undefined;
  ecr ??= new ECRClient(sdkClientConfig());
  try {
    const found = await ecr.send(new DescribeImageScanFindingsCommand({
      repositoryName: image.repositoryName, registryId: event.account, imageId: { imageDigest: image.imageDigest }, maxResults: 1,
    }));
    description = found.imageScanStatus?.description;
  } catch (error) {
    const info = awsErrorInfo(error);
    log('WARN', 'the scan status description is unreadable; the image is counted under its event status', { ...context, errorCode: info.name, errorMessage: info.message });
  }
  const reason = unscannedReason(image.status, description);
  putMetrics(s.namespace, {
    values: { [ScanMetric.NOT_SCANNED]: 1 },
    dimensions: { Cache: s.cache, Prefix: prefix, Reason: reason },
    dimensionSets: [['Cache'], ['Cache', 'Prefix'], ['Cache', 'Reason'], ['Cache', 'Prefix', 'Reason']],
    properties: context,
  });
  log('WARN', 'image not scanned: the scanner could not scan it', { ...context, reason, description });
}

async function reportFinding(event: CloudEvent, s: Settings): Promise<void> {
  const finding = parsed(event, inspectorFindingOf);
  const prefix = cachePrefixOf(finding.repositoryName, s.prefixes);
  const { repositoryName, imageDigest, severity } = finding;
  const context = { eventId: event.id, repositoryName, imageDigest, vulnerability: finding.id, severity, findingArn: finding.findingArn };
  if (prefix === undefined) {
    log('WARN', 'finding not reported: the repository is outside the cache', { ...context, prefixes: s.prefixes });
    return;
  }
  const covered = findingAlreadyCovered(finding);
  if (covered) {
    log('INFO', covered === 'InitialScan' ? 'finding of the initial scan: the scan report covers it' : 'update of a finding reported when it was new', context);
    return;
  }
  countFindings(s, prefix, { [finding.severity]: 1 });
  if (!s.reported.includes(finding.severity)) {
    log('INFO', `new finding below ${s.threshold}: counted, not reported`, context);
    return;
  }
  const scan: CompletedScan = {
    scanner: 'enhanced',
    repositoryName: finding.repositoryName,
    account: finding.account,
    region: finding.region,
    imageDigest: finding.imageDigest,
    imageTags: finding.imageTags,
    counts: { [finding.severity]: 1 },
    unranked: 0,
  };
  const top = [{ id: finding.id, severity: finding.severity, packageName: finding.packageName, link: linkFor(finding.id, finding.link) }];
  await publish(s, prefix, subjectFor(scan, s.reported).replace(/^ECR scan:/, 'New finding:'), reportFor(scan, s.threshold, top), context);
}

async function report(event: CloudEvent): Promise<void> {
  const s = settings();
  if (isUnscannedEvent(event)) {
    return reportUnscanned(event, s);
  }
  if (isFindingEvent(event)) {
    return reportFinding(event, s);
  }
  return reportCompleted(event, s);
}

export async function handler(input: unknown): Promise<BatchResult | void> {
  return dispatch(input, report);
}

/** Tests only: forget the cached clients so a new endpoint or mock takes effect. */
export function resetClients(): void {
  ecr = undefined;
  sns = undefined;
}
