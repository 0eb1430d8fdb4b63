import { ACCOUNT, failedImageScanEvent, imageScanEvent, inspectorFindingEvent, inspectorScanEvent } from './events';
import { completedScanOf, CompletedScan, findingsOf, linkFor, reportFor, severitiesAtOrAbove, subjectFor, topFindings } from '../../src/scanning/report-text';
import {
  findingAlreadyCovered, INITIAL_SCAN_WINDOW_MS, inspectorFindingOf, isFindingEvent, isUnscannedEvent, unscannedImageOf, unscannedReason,
} from '../../src/scanning/scan-outcomes';

/**
 * The pure half of the findings reporter: how events are read and reports written. Each test pins one
 * decision with the value it must produce (the reporter against moto and SNS is in findings-report.test.ts).
 */
const DIGEST = `sha256:${'a'.repeat(64)}`;
const TIMES = { pushedAt: 'Nov 2, 2026, 9:00:00 AM', firstObservedAt: 'Nov 30, 2026, 8:12:14 AM' };

describe('completed scans', () => {
  test('a basic scan: counts per severity (absent ones 0), tags, account and region of the event', () => {
    const scan = completedScanOf(imageScanEvent('quay/a/b', DIGEST, { CRITICAL: 2, LOW: 1 }, ['v1', 'latest']));
    expect(scan).toEqual({
      scanner: 'basic',
      repositoryName: 'quay/a/b',
      account: ACCOUNT,
      region: 'us-east-1',
      imageDigest: DIGEST,
      imageTags: ['v1', 'latest'],
      counts: { CRITICAL: 2, HIGH: 0, MEDIUM: 0, LOW: 1, INFORMATIONAL: 0, UNDEFINED: 0 },
      unranked: 0,
    });
  });

  test('an Inspector scan names its repository by ARN: the account and name come from it; TOTAL beyond the named counts is unranked', () => {
    const event = inspectorScanEvent('quay/a/b', DIGEST, { CRITICAL: 1, MEDIUM: 2, TOTAL: 10 });
    event.detail['repository-name'] = 'arn:aws:ecr:us-east-1:210987654321:repository/quay/a/b';
    expect(completedScanOf(event)).toMatchObject({ scanner: 'enhanced', repositoryName: 'quay/a/b', account: '210987654321', unranked: 7 });
  });

  test('counts that are not positive numbers are 0, and unranked is never negative', () => {
    const scan = completedScanOf(imageScanEvent('quay/a/b', DIGEST, { CRITICAL: -1, HIGH: '3', MEDIUM: Number.NaN, LOW: 2, TOTAL: 1 } as any));
    expect(scan.counts).toMatchObject({ CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 2 });
    expect(scan.unranked).toBe(0);
    expect(completedScanOf({ ...imageScanEvent('quay/a/b', DIGEST, {}), detail: { ...imageScanEvent('quay/a/b', DIGEST, {}).detail, 'finding-severity-counts': undefined } }).counts.LOW).toBe(0);
  });

  test('tags that are not strings are left out; no tags is an empty list', () => {
    expect(completedScanOf(imageScanEvent('quay/a/b', DIGEST, {}, ['v1', 7, null] as any)).imageTags).toEqual(['v1']);
    const untagged = imageScanEvent('quay/a/b', DIGEST, {});
    delete untagged.detail['image-tags'];
    expect(completedScanOf(untagged).imageTags).toEqual([]);
  });

  test.each([
    ['a basic scan from Inspector', { ...imageScanEvent('quay/a/b', DIGEST, {}), source: 'aws.inspector2' }, /unexpected event 'ECR Image Scan' from 'aws.inspector2' with scan-status 'COMPLETE'/],
    ['an Inspector scan from ECR', { ...inspectorScanEvent('quay/a/b', DIGEST, {}), source: 'aws.ecr' }, /unexpected event 'Inspector2 Scan' from 'aws.ecr'/],
    ['a basic scan that is not COMPLETE', failedImageScanEvent('quay/a/b', DIGEST), /scan-status 'FAILED'/],
    ['an Inspector scan that is not the initial one', { ...inspectorScanEvent('quay/a/b', DIGEST, {}), detail: { ...inspectorScanEvent('quay/a/b', DIGEST, {}).detail, 'scan-status': 'COMPLETE' } }, /scan-status 'COMPLETE'/],
    ['an empty repository name', { ...imageScanEvent('', DIGEST, {}) }, /has no detail.repository-name/],
    ['a digest with a space after it', imageScanEvent('quay/a/b', `${DIGEST} `, {}), /has no valid detail.image-digest/],
    ['a digest after other text', imageScanEvent('quay/a/b', `x/${DIGEST}`, {}), /has no valid detail.image-digest/],
    ['a tag for a digest', imageScanEvent('quay/a/b', 'latest', {}), /has no valid detail.image-digest/],
  ])('%s is refused', (_, event, message) => {
    expect(() => completedScanOf(event)).toThrow(message);
  });
});

describe('severities and links', () => {
  test.each([
    ['CRITICAL', ['CRITICAL']],
    ['HIGH', ['CRITICAL', 'HIGH']],
    ['LOW', ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW']],
    ['INFORMATIONAL', ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL']],
  ])('at or above %s', (threshold, expected) => {
    expect(severitiesAtOrAbove(threshold)).toEqual(expected);
  });

  test.each(['UNDEFINED', 'high', 'SEVERE', ''])('%j is no report severity, and the error lists the ones there are', threshold => {
    expect(() => severitiesAtOrAbove(threshold)).toThrow(`REPORT_SEVERITY is '${threshold}'; expected one of CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL`);
  });

  test('a link is the finding\'s own https address, else NVD for a CVE id, else none', () => {
    expect(linkFor('CVE-2026-1', 'https://example.org/a')).toBe('https://example.org/a');
    expect(linkFor('CVE-2026-1', 'http://example.org/a')).toBe('https://nvd.nist.gov/vuln/detail/CVE-2026-1');
    expect(linkFor('CVE-2026-1', 'https://example.org/a b')).toBe('https://nvd.nist.gov/vuln/detail/CVE-2026-1');
    expect(linkFor('CVE-2026-1', ' https://example.org/a')).toBe('https://nvd.nist.gov/vuln/detail/CVE-2026-1');
    expect(linkFor('GHSA-xxxx', undefined)).toBeUndefined();
    expect(linkFor('CVE-2026-1 x', undefined)).toBeUndefined();
    expect(linkFor('x CVE-2026-1', undefined)).toBeUndefined();
    expect(linkFor('CVE-26-1', undefined)).toBeUndefined();
  });
});

describe('findings of a page', () => {
  test('basic and enhanced findings, with package, link and severity; findings without an id are left out', () => {
    const page: any = {
      imageScanFindings: {
        findings: [
          { name: 'CVE-2026-0001', severity: 'HIGH', uri: 'https://example.org/1', attributes: [{ key: 'package_version', value: '1' }, { key: 'package_name', value: 'zlib' }] },
          { severity: 'LOW' },
          { name: 'CVE-2026-0002' },
        ],
        enhancedFindings: [
          { severity: 'CRITICAL', packageVulnerabilityDetails: { vulnerabilityId: 'CVE-2026-0003', sourceUrl: 'https://example.org/3', vulnerablePackages: [{ name: 'openssl' }] } },
          { severity: 'MEDIUM', title: 'GHSA-1 - lodash' },
          { severity: 'LOW' },
        ],
      },
    };
    expect(findingsOf(page)).toEqual([
      { id: 'CVE-2026-0001', severity: 'HIGH', packageName: 'zlib', link: 'https://example.org/1' },
      { id: 'CVE-2026-0002', severity: 'UNDEFINED', packageName: undefined, link: 'https://nvd.nist.gov/vuln/detail/CVE-2026-0002' },
      { id: 'CVE-2026-0003', severity: 'CRITICAL', packageName: 'openssl', link: 'https://example.org/3' },
      { id: 'GHSA-1 - lodash', severity: 'MEDIUM', packageName: undefined, link: undefined },
    ]);
    expect(findingsOf({} as any)).toEqual([]);
  });

  test('the most severe first, then by id; unknown severities last; one line per id at its worst; 10 unless told', () => {
    const many = Array.from({ length: 12 }, (_, i) => ({ id: `CVE-2026-${String(i).padStart(4, '0')}`, severity: 'MEDIUM' }));
    expect(topFindings([{ id: 'Z', severity: 'WEIRD' }, ...many, { id: 'A', severity: 'LOW' }, { id: 'B', severity: 'CRITICAL' }]).map(f => f.id))
      .toEqual(['B', ...many.slice(0, 9).map(f => f.id)]);
    expect(topFindings([{ id: 'Z', severity: 'WEIRD' }, { id: 'A', severity: 'UNDEFINED' }, { id: 'Y', severity: 'INFORMATIONAL' }]).map(f => f.id)).toEqual(['Y', 'A', 'Z']);
    // one CVE at two severities is one line, at the worse, whichever comes first
    expect(topFindings([{ id: 'C', severity: 'HIGH' }, { id: 'C', severity: 'LOW' }])).toEqual([{ id: 'C', severity: 'HIGH' }]);
    expect(topFindings([{ id: 'C', severity: 'LOW' }, { id: 'C', severity: 'HIGH' }])).toEqual([{ id: 'C', severity: 'HIGH' }]);
  });
});

describe('subject and report', () => {
  const scan: CompletedScan = {
    scanner: 'basic',
    repositoryName: 'quay/a/b',
    account: ACCOUNT,
    region: 'eu-west-1',
    imageDigest: DIGEST,
    imageTags: ['v1', 'v1.2'],
    counts: { CRITICAL: 1, HIGH: 2, MEDIUM: 3, LOW: 0 },
    unranked: 0,
  };

  test('the subject names the reported severities with a count, and the first tag', () => {
    expect(subjectFor(scan, ['CRITICAL', 'HIGH'])).toBe('ECR scan: 1 CRITICAL, 2 HIGH in quay/a/b:v1');
    expect(subjectFor({ ...scan, imageTags: [] }, ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'])).toBe('ECR scan: 1 CRITICAL, 2 HIGH, 3 MEDIUM in quay/a/b');
    expect(subjectFor({ ...scan, imageTags: ['vé'] }, ['CRITICAL'])).toBe('ECR scan: 1 CRITICAL in quay/a/b:v?');
    const exactly100 = { ...scan, repositoryName: 'r'.repeat(100 - 'ECR scan: 1 CRITICAL in :v1'.length) };
    expect(subjectFor(exactly100, ['CRITICAL'])).toHaveLength(100);
    expect(subjectFor(exactly100, ['CRITICAL'])).not.toMatch(/\.\.\.$/);
  });

  test('the report: the image, the scanner, the counts, the most severe with links, the console link', () => {
    const text = reportFor(scan, 'HIGH', [{ id: 'CVE-2026-1', severity: 'HIGH', packageName: 'zlib', link: 'https://x.org/1' }, { id: 'GHSA-2', severity: 'CRITICAL' }]);
    expect(text.split('\n')).toEqual([
      'Vulnerabilities at or above HIGH in an image of the ECR pull through cache.',
      '',
      'Repository: quay/a/b',
      'Tags:       v1, v1.2',
      `Digest:     ${DIGEST}`,
      'Scanner:    Amazon ECR basic scanning',
      'Findings:   CRITICAL 1, HIGH 2, MEDIUM 3',
      '',
      'Most severe (2):',
      '  HIGH     CVE-2026-1 (zlib)  https://x.org/1',
      '  CRITICAL GHSA-2',
      '',
      `Console: https://eu-west-1.console.aws.amazon.com/ecr/repositories/private/${ACCOUNT}/quay/a/b/_/image/${DIGEST}/details?region=eu-west-1`,
    ]);
  });

  test('no tags, enhanced scanning, details unreadable, no account: said so, and no console link', () => {
    const text = reportFor({ ...scan, scanner: 'enhanced', imageTags: [], account: undefined }, 'LOW', 'AccessDeniedException: no');
    expect(text).toMatch(/^Tags: {7}\(none\)$/m);
    expect(text).toMatch(/^Scanner: {4}Amazon Inspector \(enhanced scanning\)$/m);
    expect(text).toMatch(/^The finding details could not be read: AccessDeniedException: no$/m);
    expect(text).not.toMatch(/Console|Most severe/);
  });

  test('without a region on the scan, the function\'s own region is used; with none at all, no console link', () => {
    const saved = process.env.AWS_REGION;
    try {
      process.env.AWS_REGION = 'ap-south-2';
      expect(reportFor({ ...scan, region: undefined }, 'HIGH', [])).toMatch(/https:\/\/ap-south-2\.console\.aws\.amazon\.com\/.*\?region=ap-south-2$/);
      delete process.env.AWS_REGION;
      expect(reportFor({ ...scan, region: undefined }, 'HIGH', [])).not.toMatch(/Console/);
    } finally {
      process.env.AWS_REGION = saved;
    }
  });
});

describe('scans that did not complete', () => {
  test('an ECR Image Scan that is not COMPLETE, and only that, is an unscanned image', () => {
    expect(isUnscannedEvent(failedImageScanEvent('quay/a/b', DIGEST))).toBe(true);
    expect(isUnscannedEvent(imageScanEvent('quay/a/b', DIGEST, {}))).toBe(false);
    expect(isUnscannedEvent({ ...failedImageScanEvent('quay/a/b', DIGEST), source: 'aws.inspector2' })).toBe(false);
    expect(isUnscannedEvent({ ...failedImageScanEvent('quay/a/b', DIGEST), 'detail-type': 'Inspector2 Scan' })).toBe(false);
  });

  test('its image, tags and status; a missing status is UNKNOWN', () => {
    expect(unscannedImageOf(failedImageScanEvent('quay/a/b', DIGEST, ['v1']))).toEqual({ repositoryName: 'quay/a/b', imageDigest: DIGEST, imageTags: ['v1'], status: 'FAILED' });
    expect(unscannedImageOf(failedImageScanEvent('quay/a/b', DIGEST, ['v1'], '')).status).toBe('UNKNOWN');
    const bare = failedImageScanEvent('quay/a/b', DIGEST);
    delete bare.detail['scan-status'];
    bare.detail['image-tags'] = 'v1';
    expect(unscannedImageOf(bare)).toMatchObject({ status: 'UNKNOWN', imageTags: [] });
  });

  test.each([
    ['FAILED', 'UnsupportedImageError: The operating system and/or package manager are not supported.', 'UnsupportedImageError'],
    ['FAILED', 'ScanTimeoutException: took too long', 'ScanTimeoutException'],
    ['FAILED', 'An UnsupportedImageError happened', 'FAILED'],
    ['FAILED', 'UnsupportedImageErrorX: no word end', 'FAILED'],
    ['UNSUPPORTED_IMAGE', undefined, 'UNSUPPORTED_IMAGE'],
    ['failed', undefined, 'UNKNOWN'],
    ['FAILED NOW', undefined, 'UNKNOWN'],
    ['A'.repeat(41), undefined, 'UNKNOWN'],
    ['A'.repeat(40), undefined, 'A'.repeat(40)],
  ])('status %j with description %j is reason %j', (status, description, reason) => {
    expect(unscannedReason(status, description)).toBe(reason);
  });
});

describe('Inspector findings', () => {
  test('only an Inspector2 Finding from Inspector is one', () => {
    const event = inspectorFindingEvent('quay/a/b', DIGEST, 'HIGH', TIMES);
    expect(isFindingEvent(event)).toBe(true);
    expect(isFindingEvent({ ...event, source: 'aws.ecr' })).toBe(false);
    expect(isFindingEvent({ ...event, 'detail-type': 'Inspector2 Scan' })).toBe(false);
  });

  test('the documented finding is read whole', () => {
    expect(inspectorFindingOf(inspectorFindingEvent('quay/a/b', DIGEST, 'HIGH', TIMES, 'CVE-2026-7', ['v3']))).toEqual({
      repositoryName: 'quay/a/b',
      account: ACCOUNT,
      region: 'us-east-1',
      imageDigest: DIGEST,
      imageTags: ['v3'],
      severity: 'HIGH',
      id: 'CVE-2026-7',
      packageName: 'openssl',
      link: 'https://nvd.nist.gov/vuln/detail/CVE-2026-7',
      findingArn: `arn:aws:inspector2:us-east-1:${ACCOUNT}:finding/0f9e8d7c6b5a49382716f5e4d3c2b1a0`,
      firstObservedAt: Date.parse(TIMES.firstObservedAt),
      updatedAt: Date.parse(TIMES.firstObservedAt),
      pushedAt: Date.parse(TIMES.pushedAt),
    });
  });

  test('fallbacks: UNTRIAGED is UNDEFINED; the title, then "unnamed finding"; awsAccountId, then the event\'s account; the event\'s region', () => {
    const event = inspectorFindingEvent('quay/a/b', DIGEST, 'UNTRIAGED', TIMES);
    delete event.detail.packageVulnerabilityDetails.vulnerabilityId;
    delete event.detail.resources[0].details.awsEcrContainerImage.registry;
    delete event.detail.resources[0].region;
    event.detail.awsAccountId = '210987654321';
    event.region = 'eu-central-1';
    event.detail.packageVulnerabilityDetails.sourceUrl = 'http://insecure.example.org';
    expect(inspectorFindingOf(event)).toMatchObject({
      severity: 'UNDEFINED', id: 'CVE-2026-12345 - openssl', account: '210987654321', region: 'eu-central-1', link: undefined, packageName: 'openssl',
    });
    delete event.detail.title;
    delete event.detail.awsAccountId;
    delete event.detail.packageVulnerabilityDetails;
    event.detail.firstObservedAt = 'not a time';
    event.detail.updatedAt = 1_700_000_000_000;
    expect(inspectorFindingOf(event)).toMatchObject({ id: 'unnamed finding', account: ACCOUNT, packageName: undefined, firstObservedAt: undefined, updatedAt: 1_700_000_000_000 });
  });

  test('a vulnerable package, a link and a finding ARN are read only when they are what they should be', () => {
    const event = inspectorFindingEvent('quay/a/b', DIGEST, 'HIGH', TIMES);
    event.detail.packageVulnerabilityDetails.vulnerablePackages = [];
    event.detail.findingArn = 42;
    delete event.detail.resources[0].details.awsEcrContainerImage.pushedAt;
    delete event.detail.resources[0].details.awsEcrContainerImage.imageTags;
    expect(inspectorFindingOf(event)).toMatchObject({ packageName: undefined, findingArn: undefined, pushedAt: undefined, imageTags: [] });
    const linkOf = (sourceUrl: string) => {
      event.detail.packageVulnerabilityDetails.sourceUrl = sourceUrl;
      return inspectorFindingOf(event).link;
    };
    expect(linkOf('https://github.com/advisories/GHSA-1')).toBe('https://github.com/advisories/GHSA-1');
    expect(linkOf('see https://github.com/advisories/GHSA-1')).toBeUndefined();
    expect(linkOf('https://github.com/advisories/GHSA-1 and more')).toBeUndefined();
    expect(linkOf('https://')).toBeUndefined();
  });

  test('the ECR image is found among resources that are not objects', () => {
    const event = inspectorFindingEvent('quay/a/b', DIGEST, 'HIGH', TIMES);
    event.detail.resources.unshift(null);
    expect(inspectorFindingOf(event).repositoryName).toBe('quay/a/b');
  });

  test('a refusal names the event', () => {
    const event = inspectorFindingEvent('quay/a/b', DIGEST, 'HIGH', TIMES);
    event.detail.severity = 'SEVERE';
    expect(() => inspectorFindingOf(event)).toThrow(`event ${event.id} has no valid detail.severity (got "SEVERE")`);
    event.detail.resources = [];
    expect(() => inspectorFindingOf(event)).toThrow(`event ${event.id} is an Inspector2 Finding about no ECR image (no resource of type AWS_ECR_CONTAINER_IMAGE)`);
    expect(() => completedScanOf(imageScanEvent('quay/a/b', 'latest', {}))).toThrow(`event scan-${'latest'.slice(-12)} has no valid detail.image-digest`);
    expect(() => completedScanOf(imageScanEvent('', DIGEST, {}))).toThrow(`event scan-${DIGEST.slice(-12)} has no detail.repository-name`);
  });

  test.each([
    ['a severity Inspector does not use', (e: any) => { e.detail.severity = 'SEVERE'; }, /has no valid detail.severity \(got "SEVERE"\)/],
    ['a severity with text around it', (e: any) => { e.detail.severity = 'HIGH '; }, /has no valid detail.severity/],
    ['no resources', (e: any) => { delete e.detail.resources; }, /about no ECR image/],
    ['an image without details', (e: any) => { delete e.detail.resources[0].details; }, /about no ECR image/],
    ['a repository name that is not one', (e: any) => { e.detail.resources[0].details.awsEcrContainerImage.repositoryName = 'Quay/A'; }, /no valid awsEcrContainerImage.repositoryName/],
  ])('a finding with %s is refused', (_, change, message) => {
    const event = inspectorFindingEvent('quay/a/b', DIGEST, 'HIGH', TIMES);
    change(event);
    expect(() => inspectorFindingOf(event)).toThrow(message);
  });

  test('news, a finding of the initial scan, or an update: at the edges of the one-hour windows', () => {
    const at = (pushedAt: number | undefined, firstObservedAt: number | undefined, updatedAt?: number) =>
      findingAlreadyCovered({ repositoryName: 'r', imageDigest: DIGEST, imageTags: [], severity: 'HIGH', id: 'x', pushedAt, firstObservedAt, updatedAt });
    const hour = INITIAL_SCAN_WINDOW_MS;
    expect(hour).toBe(3_600_000);
    expect(at(0, hour - 1)).toBe('InitialScan');
    expect(at(0, hour)).toBeUndefined();
    expect(at(0, 5 * hour, 6 * hour)).toBeUndefined();
    expect(at(0, 5 * hour, 6 * hour + 1)).toBe('Update');
    expect(at(undefined, 0, 10 * hour)).toBe('Update');
    expect(at(0, undefined, 10 * hour)).toBeUndefined();
    expect(at(undefined, 10 * hour)).toBeUndefined();
  });
});
