/**
 * What the findings reporter reads from scan events and writes to people: completed scans, the most severe
 * findings, the SNS subject and the report text. Pure (no SDK client, no CDK): the reporter imports it.
 */
import type { DescribeImageScanFindingsCommandOutput } from '@aws-sdk/client-ecr';
import { ScanEnv, SEVERITIES } from './contract';
import { CloudEvent } from '../private/handlers/envelope';

/** How many vulnerabilities a report lists. */
export const TOP_FINDINGS = 10;
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
  /**
   * Findings the event counts in TOTAL but at no severity it names (an Inspector scan names CRITICAL, HIGH
   * and MEDIUM only, so these are LOW, INFORMATIONAL or UNTRIAGED). 0 for basic scans.
   */
  readonly unranked: number;
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
  const number = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : 0;
  for (const severity of SEVERITIES) {
    counts[severity] = number(raw[severity]);
  }
  const unranked = Math.max(0, number(raw.TOTAL) - SEVERITIES.reduce((sum, severity) => sum + counts[severity], 0));
  return { scanner, repositoryName, account, region: event.region, imageDigest, imageTags: tags, counts, unranked };
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

export function linkFor(id: string, url: string | undefined): string | undefined {
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
