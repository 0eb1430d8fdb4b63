/**
 * Findings reporter: turns completed scans of cached images into metrics and readable reports.
 *
 * Invoked by EventBridge rules on `ECR Image Scan` (basic scanning, `scan-status` COMPLETE) and
 * `Inspector2 Scan` (enhanced scanning, INITIAL_SCAN_COMPLETE) for the cache's repositories, and by the
 * dead-letter queue's redrive mapping.
 *
 * - Every completed scan: `ScansReported` and `Findings` per severity (Embedded Metric Format), per cache
 *   and per cache prefix.
 * - A scan with findings at or above the report severity: a summary (repository, tags, digest, counts by
 *   severity, the most severe vulnerability ids with links, a console link) published to the SNS topic.
 *   When the finding details cannot be read, the summary is still published, saying so.
 * - A failed publish is thrown: Lambda retries it, then the dead-letter queue keeps the event.
 */
import { DescribeImageScanFindingsCommand, DescribeImageScanFindingsCommandOutput, ECRClient } from '@aws-sdk/client-ecr';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { DEFAULT_METRIC_NAMESPACE, ScanEnv, ScanMetric, SEVERITIES } from './contract';
import { awsErrorInfo } from '../private/handlers/aws-errors';
import { BatchResult, cachePrefixOf, dispatch, requiredEnv } from '../private/handlers/dispatch';
import { CloudEvent } from '../private/handlers/envelope';
import { log } from '../private/handlers/log';
import { putMetrics } from '../private/handlers/metrics';
import { sdkClientConfig } from '../private/handlers/sdk-config';

/** How many vulnerabilities a report lists. */
export const TOP_FINDINGS = 10;
/** At most this many pages of findings are read to find the most severe (1,000 findings a page). */
const MAX_PAGES = 5;

const REPOSITORY_ARN = /^arn:[a-z-]+:ecr:[a-z0-9-]+:(\d{12}):repository\/(.+)$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** A completed scan, from either event. */
export interface CompletedScan {
  readonly scanner: 'basic' | 'enhanced';
  readonly repositoryName: string;
  readonly account?: string;
  readonly region?: string;
  readonly imageDigest: string;
  readonly imageTags: string[];
  /** Count per severity; absent severities are 0. */
  readonly counts: Record<string, number>;
}

/** One vulnerability line of a report. */
export interface TopFinding {
  readonly id: string;
  readonly severity: string;
  readonly packageName?: string;
  readonly link?: string;
}

/** Read a completed scan from an `ECR Image Scan` or `Inspector2 Scan` event (Inspector names the repository by ARN). */
export function completedScanOf(event: CloudEvent): CompletedScan {
  const type = event['detail-type'];
  const detail = event.detail;
  let scanner: CompletedScan['scanner'];
  if (event.source === 'aws.ecr' && type === 'ECR Image Scan' && detail['scan-status'] === 'COMPLETE') {
    scanner = 'basic';
  } else if (event.source === 'aws.inspector2' && type === 'Inspector2 Scan' && detail['scan-status'] === 'INITIAL_SCAN_COMPLETE') {
    scanner = 'enhanced';
  } else {
    throw new Error(`unexpected event '${type}' from '${event.source}' with scan-status '${String(detail['scan-status'])}'`);
  }
  let repositoryName = detail['repository-name'];
  let account = event.account;
  if (typeof repositoryName === 'string') {
    const arn = REPOSITORY_ARN.exec(repositoryName);
    if (arn) {
      account = arn[1];
      repositoryName = arn[2];
    }
  }
  if (typeof repositoryName !== 'string' || repositoryName === '') {
    throw new Error(`event ${event.id ?? ''} has no detail.repository-name`);
  }
  const imageDigest = detail['image-digest'];
  if (typeof imageDigest !== 'string' || !DIGEST.test(imageDigest)) {
    throw new Error(`event ${event.id ?? ''} has no valid detail.image-digest`);
  }
  const tags = Array.isArray(detail['image-tags']) ? (detail['image-tags'] as unknown[]).filter((t): t is string => typeof t === 'string') : [];
  const raw = (detail['finding-severity-counts'] ?? {}) as Record<string, unknown>;
  const counts: Record<string, number> = {};
  for (const severity of SEVERITIES) {
    const n = raw[severity];
    counts[severity] = typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : 0;
  }
  return { scanner, repositoryName, account, region: event.region, imageDigest, imageTags: tags, counts };
}

/** The severities at or above `threshold`, the most severe first. */
export function severitiesAtOrAbove(threshold: string): string[] {
  const index = SEVERITIES.indexOf(threshold as typeof SEVERITIES[number]);
  if (index < 0 || threshold === 'UNDEFINED') {
    throw new Error(`${ScanEnv.REPORT_SEVERITY} is '${threshold}'; expected one of CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL`);
  }
  return SEVERITIES.slice(0, index + 1);
}

function rank(severity: string): number {
  const index = SEVERITIES.indexOf(severity as typeof SEVERITIES[number]);
  return index < 0 ? SEVERITIES.length : index;
}

function linkFor(id: string, url: string | undefined): string | undefined {
  if (url && /^https:\/\/[^\s]+$/.test(url)) {
    return url;
  }
  return /^CVE-\d{4}-\d+$/.test(id) ? `https://nvd.nist.gov/vuln/detail/${id}` : undefined;
}

/** The most severe vulnerabilities of one page of findings, basic and enhanced alike. */
export function findingsOf(page: DescribeImageScanFindingsCommandOutput): TopFinding[] {
  const result: TopFinding[] = [];
  for (const f of page.imageScanFindings?.findings ?? []) {
    if (f.name) {
      const pkg = f.attributes?.find(a => a.key === 'package_name')?.value;
      result.push({ id: f.name, severity: f.severity ?? 'UNDEFINED', packageName: pkg, link: linkFor(f.name, f.uri) });
    }
  }
  for (const f of page.imageScanFindings?.enhancedFindings ?? []) {
    const details = f.packageVulnerabilityDetails;
    const id = details?.vulnerabilityId ?? f.title;
    if (id) {
      result.push({ id, severity: f.severity ?? 'UNDEFINED', packageName: details?.vulnerablePackages?.[0]?.name, link: linkFor(id, details?.sourceUrl) });
    }
  }
  return result;
}

/** Keep the `limit` most severe, one line per vulnerability id. */
export function topFindings(findings: TopFinding[], limit = TOP_FINDINGS): TopFinding[] {
  const byId = new Map<string, TopFinding>();
  for (const f of findings) {
    const seen = byId.get(f.id);
    if (!seen || rank(f.severity) < rank(seen.severity)) {
      byId.set(f.id, f);
    }
  }
  return [...byId.values()].sort((a, b) => rank(a.severity) - rank(b.severity) || a.id.localeCompare(b.id)).slice(0, limit);
}

/** SNS subjects are at most 100 printable ASCII characters, with no line breaks. */
export function subjectFor(scan: CompletedScan, reported: string[]): string {
  const counts = reported.filter(s => scan.counts[s] > 0).map(s => `${scan.counts[s]} ${s}`).join(', ');
  const image = `${scan.repositoryName}${scan.imageTags[0] ? `:${scan.imageTags[0]}` : ''}`;
  const subject = `ECR scan: ${counts} in ${image}`.replace(/[^\x20-\x7e]/g, '?');
  return subject.length <= 100 ? subject : `${subject.slice(0, 97)}...`;
}

/** The readable report. */
export function reportFor(scan: CompletedScan, threshold: string, top: TopFinding[] | string): string {
  const region = scan.region ?? process.env.AWS_REGION ?? '';
  const lines = [
    `Vulnerabilities at or above ${threshold} in an image of the ECR pull through cache.`,
    '',
    `Repository: ${scan.repositoryName}`,
    `Tags:       ${scan.imageTags.length > 0 ? scan.imageTags.join(', ') : '(none)'}`,
    `Digest:     ${scan.imageDigest}`,
    `Scanner:    ${scan.scanner === 'basic' ? 'Amazon ECR basic scanning' : 'Amazon Inspector (enhanced scanning)'}`,
    `Findings:   ${SEVERITIES.filter(s => scan.counts[s] > 0).map(s => `${s} ${scan.counts[s]}`).join(', ')}`,
    '',
  ];
  if (typeof top === 'string') {
    lines.push(`The finding details could not be read: ${top}`);
  } else {
    lines.push(`Most severe (${top.length}):`);
    for (const f of top) {
      lines.push(`  ${f.severity.padEnd(8)} ${f.id}${f.packageName ? ` (${f.packageName})` : ''}${f.link ? `  ${f.link}` : ''}`);
    }
  }
  if (scan.account && region) {
    lines.push('', `Console: https://${region}.console.aws.amazon.com/ecr/repositories/private/${scan.account}/${scan.repositoryName}/_/image/${scan.imageDigest}/details?region=${region}`);
  }
  return lines.join('\n');
}

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

async function report(event: CloudEvent): Promise<void> {
  const namespace = process.env[ScanEnv.METRIC_NAMESPACE] ?? DEFAULT_METRIC_NAMESPACE;
  const cache = requiredEnv(ScanEnv.CACHE_NAME);
  const prefixes = JSON.parse(requiredEnv(ScanEnv.PREFIXES)) as string[];
  const threshold = requiredEnv(ScanEnv.REPORT_SEVERITY);
  const reported = severitiesAtOrAbove(threshold);
  let scan: CompletedScan;
  try {
    scan = completedScanOf(event);
  } catch (error) {
    log('ERROR', 'event rejected: it holds no completed scan', { eventId: event.id, detailType: event['detail-type'], error });
    throw error;
  }
  const prefix = cachePrefixOf(scan.repositoryName, prefixes);
  const { scanner, repositoryName, imageDigest, counts } = scan;
  const context = { eventId: event.id, scanner, repositoryName, imageDigest, counts };
  if (prefix === undefined) {
    log('WARN', 'scan not reported: the repository is outside the cache', { ...context, prefixes });
    return;
  }
  // metrics go out once the scan is handled (after a successful publish), so a retried publish is not counted twice
  const countScan = () => {
    putMetrics(namespace, { values: { [ScanMetric.REPORTED]: 1 }, dimensions: { Cache: cache, Prefix: prefix }, dimensionSets: [['Cache'], ['Cache', 'Prefix']], properties: context });
    for (const severity of SEVERITIES) {
      if (scan.counts[severity] > 0) {
        putMetrics(namespace, {
          values: { [ScanMetric.FINDINGS]: scan.counts[severity] },
          dimensions: { Cache: cache, Prefix: prefix, Severity: severity },
          dimensionSets: [['Cache', 'Severity'], ['Cache', 'Prefix', 'Severity']],
        });
      }
    }
  };
  if (!reported.some(s => scan.counts[s] > 0)) {
    log('INFO', `scan reported: nothing at or above ${threshold}`, context);
    countScan();
    return;
  }
  const top = await readTopFindings(scan);
  sns ??= new SNSClient(sdkClientConfig());
  try {
    const response = await sns.send(new PublishCommand({
      TopicArn: requiredEnv(ScanEnv.TOPIC_ARN),
      Subject: subjectFor(scan, reported),
      Message: reportFor(scan, threshold, top),
    }));
    log('INFO', 'findings report published', { ...context, messageId: response.MessageId });
  } catch (error) {
    const info = awsErrorInfo(error);
    log('ERROR', 'findings report not published; the event is retried, then kept in the dead-letter queue', {
      ...context, errorCode: info.name, errorMessage: info.message,
    });
    throw error;
  }
  countScan();
}

export async function handler(input: unknown): Promise<BatchResult | void> {
  return dispatch(input, report);
}

/** Tests only: forget the cached clients so a new endpoint or mock takes effect. */
export function resetClients(): void {
  ecr = undefined;
  sns = undefined;
}
