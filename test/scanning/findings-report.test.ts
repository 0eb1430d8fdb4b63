import { DescribeImageScanFindingsCommand, ECRClient, FindingSeverity, StartImageScanCommand } from '@aws-sdk/client-ecr';
import { CreateTopicCommand, PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { destinationRecord, failedImageScanEvent, imageScanEvent, inspectorFindingEvent, inspectorScanEvent, sqsBatch } from './events';
import { putImage } from './images';
import { handler, resetClients, subjectFor, topFindings } from '../../src/scanning/findings-report.lambda';
import { captureLog, emfValues, MotoServer, startMoto, useEndpoint } from '../support/moto';

const ENV = { CACHE_PREFIXES: JSON.stringify(['docker-hub', 'quay']), CACHE_NAME: 'TestCache', METRIC_NAMESPACE: 'Test', REPORT_SEVERITY: 'HIGH', AWS_SDK_MAX_ATTEMPTS: '2' };

beforeAll(() => {
  Object.assign(process.env, ENV);
});

/** A basic scan finding as DescribeImageScanFindings returns it. */
const basic = (name: string, severity: string, pkg: string) => ({
  name, severity, uri: `https://security-tracker.debian.org/tracker/${name}`, attributes: [{ key: 'package_name', value: pkg }, { key: 'package_version', value: '1.0' }],
});

describe('against moto (ECR, SNS and SQS on loopback)', () => {
  let moto: MotoServer;
  let ecr: ECRClient;
  let sqs: SQSClient;
  let queueUrl: string;

  beforeAll(async () => {
    moto = await startMoto();
    useEndpoint(moto.endpoint);
    resetClients();
    const config = { endpoint: moto.endpoint, region: 'us-east-1' };
    ecr = new ECRClient(config);
    sqs = new SQSClient(config);
    const sns = new SNSClient(config);
    const topic = await sns.send(new CreateTopicCommand({ Name: 'findings' }));
    const queue = await sqs.send(new CreateQueueCommand({ QueueName: 'inbox' }));
    queueUrl = queue.QueueUrl!;
    const attributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
    await sns.send(new SubscribeCommand({ TopicArn: topic.TopicArn, Protocol: 'sqs', Endpoint: attributes.Attributes!.QueueArn }));
    process.env.FINDINGS_TOPIC_ARN = topic.TopicArn;
    sns.destroy();
  }, 40_000);

  afterAll(async () => {
    ecr?.destroy();
    sqs?.destroy();
    await moto?.stop();
  });

  /** Every report published since the last call: subject and text. */
  async function reports(): Promise<Array<{ subject: string; message: string }>> {
    const out: Array<{ subject: string; message: string }> = [];
    for (;;) {
      const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      if (!received.Messages?.length) {
        return out;
      }
      for (const m of received.Messages) {
        const envelope = JSON.parse(m.Body!);
        out.push({ subject: envelope.Subject, message: envelope.Message });
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
      }
      if (received.Messages.length < 10) {
        return out;
      }
    }
  }

  async function scannedImage(repositoryName: string, tag: string, findings: object, status = { status: 'COMPLETE', description: 'done' }): Promise<string> {
    const digest = await putImage(ecr, repositoryName, tag);
    await ecr.send(new StartImageScanCommand({ repositoryName, imageId: { imageDigest: digest } }));
    const response = await fetch(`${moto.endpoint}/moto-api/static/ecr/scan-finding-results`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        region: 'us-east-1',
        results: [{
          registryId: '123456789012',
          repositoryName,
          imageId: { imageDigest: digest },
          imageScanStatus: status,
          imageScanFindings: findings,
        }],
      }),
    });
    expect(response.ok).toBe(true);
    return digest;
  }

  test('a basic scan with HIGH and CRITICAL findings is published: counts, the most severe ids with links, a console link', async () => {
    const findings = [
      basic('CVE-2024-0001', 'MEDIUM', 'zlib'), basic('CVE-2024-0002', 'CRITICAL', 'openssl'), basic('CVE-2024-0003', 'HIGH', 'curl'),
      basic('CVE-2024-0004', 'LOW', 'bash'), basic('CVE-2024-0005', 'CRITICAL', 'glibc'), basic('CVE-2024-0003', 'HIGH', 'libcurl'),
    ];
    const digest = await scannedImage('docker-hub/library/nginx', '1.27', { findings, findingSeverityCounts: { CRITICAL: 2, HIGH: 1, MEDIUM: 1, LOW: 1 } });
    const { error, lines } = await captureLog(() => handler(imageScanEvent('docker-hub/library/nginx', digest, { CRITICAL: 2, HIGH: 1, MEDIUM: 1, LOW: 1 }, ['1.27'])));
    expect(error).toBeUndefined();
    const [report, ...more] = await reports();
    expect(more).toEqual([]);
    expect(report.subject).toBe('ECR scan: 2 CRITICAL, 1 HIGH in docker-hub/library/nginx:1.27');
    const lines_ = report.message.split('\n');
    expect(lines_).toEqual(expect.arrayContaining([
      'Repository: docker-hub/library/nginx',
      'Tags:       1.27',
      `Digest:     ${digest}`,
      'Scanner:    Amazon ECR basic scanning',
      'Findings:   CRITICAL 2, HIGH 1, MEDIUM 1, LOW 1',
      'Most severe (5):',
      `Console: https://us-east-1.console.aws.amazon.com/ecr/repositories/private/123456789012/docker-hub/library/nginx/_/image/${digest}/details?region=us-east-1`,
    ]));
    const top = lines_.filter(l => l.startsWith('  ')).map(l => l.trim().split(/\s+/).slice(0, 2).join(' '));
    expect(top).toEqual(['CRITICAL CVE-2024-0002', 'CRITICAL CVE-2024-0005', 'HIGH CVE-2024-0003', 'MEDIUM CVE-2024-0001', 'LOW CVE-2024-0004']);
    expect(report.message).toContain('https://security-tracker.debian.org/tracker/CVE-2024-0002');
    expect(emfValues(lines)).toEqual({
      'ScansReported{Cache=TestCache}': 1,
      'ScansReported{Cache=TestCache,Prefix=docker-hub}': 1,
      'Findings{Cache=TestCache,Severity=CRITICAL}': 2,
      'Findings{Cache=TestCache,Prefix=docker-hub,Severity=CRITICAL}': 2,
      'Findings{Cache=TestCache,Severity=HIGH}': 1,
      'Findings{Cache=TestCache,Prefix=docker-hub,Severity=HIGH}': 1,
      'Findings{Cache=TestCache,Severity=MEDIUM}': 1,
      'Findings{Cache=TestCache,Prefix=docker-hub,Severity=MEDIUM}': 1,
      'Findings{Cache=TestCache,Severity=LOW}': 1,
      'Findings{Cache=TestCache,Prefix=docker-hub,Severity=LOW}': 1,
    });
  });

  test('an Inspector scan (repository named by ARN) is reported from its enhanced findings', async () => {
    const enhancedFindings = [
      { severity: 'HIGH', title: 'CVE-2023-1111 - pkg', packageVulnerabilityDetails: { vulnerabilityId: 'CVE-2023-1111', sourceUrl: 'https://nvd.nist.gov/vuln/detail/CVE-2023-1111', vulnerablePackages: [{ name: 'pkg', version: '2' }] } },
      { severity: 'CRITICAL', title: 'GHSA-xxxx - lib', packageVulnerabilityDetails: { vulnerabilityId: 'GHSA-abcd-efgh-ijkl', vulnerablePackages: [{ name: 'lib', version: '1' }] } },
    ];
    const digest = await scannedImage('quay/prometheus/prometheus', 'v3.0.0', { enhancedFindings, findingSeverityCounts: { CRITICAL: 1, HIGH: 1 } });
    const { error } = await captureLog(() => handler(inspectorScanEvent('quay/prometheus/prometheus', digest, { CRITICAL: 1, HIGH: 1, TOTAL: 2 }, ['v3.0.0'])));
    expect(error).toBeUndefined();
    const [report] = await reports();
    expect(report.subject).toBe('ECR scan: 1 CRITICAL, 1 HIGH in quay/prometheus/prometheus:v3.0.0');
    expect(report.message).toContain('Scanner:    Amazon Inspector (enhanced scanning)');
    expect(report.message).toMatch(/\n {2}CRITICAL GHSA-abcd-efgh-ijkl \(lib\)\n {2}HIGH {5}CVE-2023-1111 \(pkg\) {2}https:\/\/nvd\.nist\.gov\/vuln\/detail\/CVE-2023-1111/);
  });

  test('a scan with nothing at or above the report severity publishes nothing, but is counted', async () => {
    const digest = await scannedImage('docker-hub/library/busybox', '1.37', { findings: [basic('CVE-2020-1', 'LOW', 'x')], findingSeverityCounts: { LOW: 1 } });
    const { lines } = await captureLog(() => handler(imageScanEvent('docker-hub/library/busybox', digest, { LOW: 1 })));
    expect(await reports()).toEqual([]);
    expect(emfValues(lines)).toHaveProperty(['Findings{Cache=TestCache,Prefix=docker-hub,Severity=LOW}'], 1);
    expect(lines.find(l => l.message === 'scan reported: nothing at or above HIGH')).toMatchObject({ level: 'INFO', repositoryName: 'docker-hub/library/busybox' });
  });

  test('when the details cannot be read, the report is still published with the counts and the reason', async () => {
    const digest = await putImage(ecr, 'docker-hub/library/redis', '8'); // never scanned: ScanNotFoundException
    const { error } = await captureLog(() => handler(imageScanEvent('docker-hub/library/redis', digest, { CRITICAL: 3 }, ['8'])));
    expect(error).toBeUndefined();
    const [report] = await reports();
    expect(report.subject).toBe('ECR scan: 3 CRITICAL in docker-hub/library/redis:8');
    expect(report.message).toMatch(/The finding details could not be read: ScanNotFoundException/);
  });

  test('a scan outside the cache is neither reported nor counted, and is logged', async () => {
    const { error, lines } = await captureLog(() => handler(imageScanEvent('my-team/app', `sha256:${'b'.repeat(64)}`, { CRITICAL: 1 })));
    expect(error).toBeUndefined();
    expect(await reports()).toEqual([]);
    expect(emfValues(lines)).toEqual({});
    expect(lines[0]).toMatchObject({ level: 'WARN', message: 'scan not reported: the repository is outside the cache', repositoryName: 'my-team/app', prefixes: ['docker-hub', 'quay'] });
  });

  test('an image basic scanning cannot scan (FAILED, UnsupportedImageError) is counted per prefix and reason, never thrown', async () => {
    const digest = await scannedImage('docker-hub/library/distroless', 'static', {},
      { status: 'FAILED', description: 'UnsupportedImageError: The operating system and/or package manager are not supported.' });
    const { error, lines } = await captureLog(() => handler(failedImageScanEvent('docker-hub/library/distroless', digest, ['static'])));
    expect(error).toBeUndefined();
    expect(await reports()).toEqual([]);
    expect(emfValues(lines)).toEqual({
      'ImagesNotScanned{Cache=TestCache}': 1,
      'ImagesNotScanned{Cache=TestCache,Prefix=docker-hub}': 1,
      'ImagesNotScanned{Cache=TestCache,Reason=UnsupportedImageError}': 1,
      'ImagesNotScanned{Cache=TestCache,Prefix=docker-hub,Reason=UnsupportedImageError}': 1,
    });
    expect(lines.find(l => l.message === 'image not scanned: the scanner could not scan it'))
      .toMatchObject({ level: 'WARN', reason: 'UnsupportedImageError', repositoryName: 'docker-hub/library/distroless', tags: ['static'] });
  });

  test('Inspector\'s scan event counts no LOW: a LOW-only image (TOTAL 7) is reported at reportSeverity LOW, its counts read from ECR', async () => {
    process.env.REPORT_SEVERITY = 'LOW';
    try {
      const enhancedFindings = [{ severity: 'LOW', title: 'CVE-2022-0001 - bash', packageVulnerabilityDetails: { vulnerabilityId: 'CVE-2022-0001', vulnerablePackages: [{ name: 'bash' }] } }];
      const digest = await scannedImage('quay/app/low', 'v1', { enhancedFindings, findingSeverityCounts: { LOW: 5, INFORMATIONAL: 2 } });
      const { error, lines } = await captureLog(() => handler(inspectorScanEvent('quay/app/low', digest, { TOTAL: 7 }, ['v1'])));
      expect(error).toBeUndefined();
      expect((await reports()).map(r => r.subject)).toEqual(['ECR scan: 5 LOW in quay/app/low:v1']);
      expect(emfValues(lines)).toMatchObject({ 'Findings{Cache=TestCache,Severity=LOW}': 5, 'Findings{Cache=TestCache,Severity=INFORMATIONAL}': 2 });
    } finally {
      process.env.REPORT_SEVERITY = 'HIGH';
    }
  });

  test('a new CRITICAL finding of continuous scanning (Inspector2 Finding, days after the push) is counted and reported', async () => {
    const digest = `sha256:${'7'.repeat(64)}`;
    const event = inspectorFindingEvent('quay/app/api', digest, 'CRITICAL', { pushedAt: 'Nov 2, 2026, 9:00:00 AM', firstObservedAt: 'Nov 30, 2026, 8:12:14 AM' }, 'CVE-2026-9999', ['v2']);
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeUndefined();
    const [report, ...more] = await reports();
    expect(more).toEqual([]);
    expect(report.subject).toBe('New finding: 1 CRITICAL in quay/app/api:v2');
    expect(report.message).toContain('Scanner:    Amazon Inspector (enhanced scanning)');
    expect(report.message).toMatch(/CRITICAL CVE-2026-9999 \(openssl\) {2}https:\/\/nvd\.nist\.gov\/vuln\/detail\/CVE-2026-9999/);
    expect(emfValues(lines)).toEqual({ 'Findings{Cache=TestCache,Severity=CRITICAL}': 1, 'Findings{Cache=TestCache,Prefix=quay,Severity=CRITICAL}': 1 });
  });

  test.each([
    ['of the initial scan (observed minutes after the push: the scan report covers it)', { pushedAt: 'Nov 2, 2026, 9:00:00 AM', firstObservedAt: 'Nov 2, 2026, 9:04:10 AM' }],
    ['that is an update of a finding reported when new', { pushedAt: 'Nov 2, 2026, 9:00:00 AM', firstObservedAt: 'Nov 10, 2026, 9:00:00 AM', updatedAt: 'Nov 30, 2026, 9:00:00 AM' }],
  ])('a finding %s is neither counted nor reported', async (_, times) => {
    const { error, lines } = await captureLog(() => handler(inspectorFindingEvent('quay/app/api', `sha256:${'8'.repeat(64)}`, 'CRITICAL', times)));
    expect(error).toBeUndefined();
    expect(await reports()).toEqual([]);
    expect(emfValues(lines)).toEqual({});
  });

  test('a redriven destination record is reported', async () => {
    const digest = await scannedImage('docker-hub/library/postgres', '17', { findings: [basic('CVE-2025-7', 'HIGH', 'pg')], findingSeverityCounts: { HIGH: 1 } });
    const { result } = await captureLog(() => handler(sqsBatch([JSON.stringify(destinationRecord(imageScanEvent('docker-hub/library/postgres', digest, { HIGH: 1 }, ['17'])))])));
    expect(result).toEqual({ batchItemFailures: [] });
    expect((await reports()).map(r => r.subject)).toEqual(['ECR scan: 1 HIGH in docker-hub/library/postgres:17']);
  });
});

/** ECR and SNS mocked for the describe block that calls it (the moto block above runs on real clients), reset before each test. */
function mockSnsAndEcr(): { sns: ReturnType<typeof mockClient>; ecr: ReturnType<typeof mockClient> } {
  const mocks = {} as { sns: ReturnType<typeof mockClient>; ecr: ReturnType<typeof mockClient> };
  beforeAll(() => {
    mocks.sns = mockClient(SNSClient);
    mocks.ecr = mockClient(ECRClient);
    process.env.FINDINGS_TOPIC_ARN = 'arn:aws:sns:us-east-1:123456789012:findings';
  });
  afterAll(() => {
    mocks.sns.restore();
    mocks.ecr.restore();
  });
  beforeEach(() => {
    mocks.sns.reset();
    mocks.ecr.reset();
    resetClients();
  });
  return mocks;
}

describe('error paths (SNS mocked)', () => {
  const mocks = mockSnsAndEcr();

  test.each([
    ['AuthorizationErrorException', 'User is not authorized to perform: SNS:Publish'],
    ['KMSAccessDeniedException', 'The ciphertext refers to a customer master key that does not exist or that you do not have access to.'],
    ['NotFoundException', 'Topic does not exist'],
  ])('metrics first: a publish refused with %s still counts the CRITICAL finding, counts the refusal, and is thrown', async (name, message) => {
    mocks.ecr.on(DescribeImageScanFindingsCommand).resolves({ imageScanFindings: { findings: [] } });
    mocks.sns.on(PublishCommand).rejects(Object.assign(new Error(message), { name }));
    const { error, lines } = await captureLog(() => handler(imageScanEvent('quay/a/b', `sha256:${'c'.repeat(64)}`, { CRITICAL: 1 })));
    expect((error as Error).name).toBe(name);
    expect(lines.find(l => l.level === 'ERROR')).toMatchObject({
      message: 'findings report not published (its metrics are written); the event is retried, then kept in the dead-letter queue', errorCode: name, repositoryName: 'quay/a/b',
    });
    expect(emfValues(lines)).toEqual({
      'ScansReported{Cache=TestCache}': 1,
      'ScansReported{Cache=TestCache,Prefix=quay}': 1,
      'Findings{Cache=TestCache,Severity=CRITICAL}': 1,
      'Findings{Cache=TestCache,Prefix=quay,Severity=CRITICAL}': 1,
      'ReportsNotPublished{Cache=TestCache}': 1,
      'ReportsNotPublished{Cache=TestCache,Prefix=quay}': 1,
    });
  });

  test('a FAILED scan whose status cannot be read is still counted, under its event status, and never thrown', async () => {
    mocks.ecr.onAnyCommand().rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const { error, lines } = await captureLog(() => handler(failedImageScanEvent('quay/a/b', `sha256:${'9'.repeat(64)}`)));
    expect(error).toBeUndefined();
    expect(emfValues(lines)).toHaveProperty(['ImagesNotScanned{Cache=TestCache,Prefix=quay,Reason=FAILED}'], 1);
    expect(mocks.sns.commandCalls(PublishCommand)).toHaveLength(0);
    expect(lines.find(l => l.level === 'WARN')).toMatchObject({
      message: 'the scan status description is unreadable; the image is counted under its event status', errorCode: 'ThrottlingException', errorMessage: 'Rate exceeded',
    });
  });

  test('a FAILED scan whose status ECR does not describe is counted under its event status, with no warning about reading it', async () => {
    mocks.ecr.on(DescribeImageScanFindingsCommand).resolves({});
    const { error, lines } = await captureLog(() => handler(failedImageScanEvent('quay/a/b', `sha256:${'9'.repeat(64)}`)));
    expect(error).toBeUndefined();
    expect(emfValues(lines)).toHaveProperty(['ImagesNotScanned{Cache=TestCache,Prefix=quay,Reason=FAILED}'], 1);
    expect(lines.filter(l => l.level === 'WARN').map(l => l.message)).toEqual(['image not scanned: the scanner could not scan it']);
  });

  test('LOW-only under enhanced scanning with the counts unreadable: reported as LOW rather than missed', async () => {
    process.env.REPORT_SEVERITY = 'LOW';
    try {
      mocks.ecr.onAnyCommand().rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
      mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
      const { error } = await captureLog(() => handler(inspectorScanEvent('quay/a/b', `sha256:${'a'.repeat(64)}`, { TOTAL: 3 })));
      expect(error).toBeUndefined();
      expect((mocks.sns.commandCalls(PublishCommand)[0].args[0].input as { Subject: string }).Subject).toBe('ECR scan: 3 LOW in quay/a/b:latest');
    } finally {
      process.env.REPORT_SEVERITY = 'HIGH';
    }
  });

  test('at the default report severity an Inspector scan with TOTAL only above its counts asks ECR nothing', async () => {
    const { error } = await captureLog(() => handler(inspectorScanEvent('quay/a/b', `sha256:${'b'.repeat(64)}`, { MEDIUM: 1, TOTAL: 9 })));
    expect(error).toBeUndefined();
    expect(mocks.ecr.calls()).toHaveLength(0);
    expect(mocks.sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  test.each([
    ['no ECR image resource', (e: any) => { e.detail.resources[0].type = 'AWS_LAMBDA_FUNCTION'; }],
    ['no severity', (e: any) => { delete e.detail.severity; }],
    ['an image hash that is not a digest', (e: any) => { e.detail.resources[0].details.awsEcrContainerImage.imageHash = 'latest'; }],
  ])('an Inspector2 Finding with %s is rejected loudly, never published', async (_, change) => {
    const event = inspectorFindingEvent('quay/a/b', `sha256:${'5'.repeat(64)}`, 'CRITICAL', { pushedAt: 'Nov 2, 2026, 9:00:00 AM', firstObservedAt: 'Nov 30, 2026, 8:12:14 AM' });
    change(event);
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeInstanceOf(Error);
    expect(mocks.sns.commandCalls(PublishCommand)).toHaveLength(0);
    expect(lines.find(l => l.level === 'ERROR')?.message).toMatch(/event rejected/);
  });

  test('an Inspector2 Finding whose ECR image is not its first resource (the rule matches any element) is read from that image', async () => {
    const digest = `sha256:${'6'.repeat(64)}`;
    const event = inspectorFindingEvent('quay/a/b', digest, 'CRITICAL', { pushedAt: 'Nov 2, 2026, 9:00:00 AM', firstObservedAt: 'Nov 30, 2026, 8:12:14 AM' });
    event.detail.resources.unshift({ type: 'AWS_EC2_INSTANCE', id: 'i-0123456789abcdef0', partition: 'aws', region: 'us-east-1', details: {} });
    mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeUndefined();
    expect(emfValues(lines)).toEqual({ 'Findings{Cache=TestCache,Severity=CRITICAL}': 1, 'Findings{Cache=TestCache,Prefix=quay,Severity=CRITICAL}': 1 });
    expect(mocks.sns.commandCalls(PublishCommand)[0].args[0].input.Message).toContain(`Digest:     ${digest}`);
  });

  test('REPORT_SEVERITY=CRITICAL: a scan with HIGH findings only is counted, not published', async () => {
    process.env.REPORT_SEVERITY = 'CRITICAL';
    try {
      const { error, lines } = await captureLog(() => handler(imageScanEvent('quay/a/b', `sha256:${'3'.repeat(64)}`, { HIGH: 9 })));
      expect(error).toBeUndefined();
      expect(mocks.sns.commandCalls(PublishCommand)).toHaveLength(0);
      expect(emfValues(lines)).toHaveProperty(['Findings{Cache=TestCache,Severity=HIGH}'], 9);
    } finally {
      process.env.REPORT_SEVERITY = 'HIGH';
    }
  });

  test('every page of findings is read (up to 5): the most severe may be on the last', async () => {
    const finding = (name: string, severity: FindingSeverity) => ({ name, severity, uri: `https://example.org/${name}` });
    mocks.ecr.on(DescribeImageScanFindingsCommand)
      .resolvesOnce({ imageScanFindings: { findings: [finding('CVE-2026-0001', 'LOW')] }, nextToken: 'p2' })
      .resolvesOnce({ imageScanFindings: { findings: [finding('CVE-2026-0002', 'MEDIUM')] }, nextToken: 'p3' })
      .resolvesOnce({ imageScanFindings: { findings: [finding('CVE-2026-0003', 'CRITICAL'), finding('CVE-2026-0001', 'HIGH')] } });
    mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const { error } = await captureLog(() => handler(imageScanEvent('quay/a/b', `sha256:${'4'.repeat(64)}`, { CRITICAL: 1, HIGH: 1, MEDIUM: 1 })));
    expect(error).toBeUndefined();
    expect(mocks.ecr.commandCalls(DescribeImageScanFindingsCommand).map(c => c.args[0].input.nextToken)).toEqual([undefined, 'p2', 'p3']);
    const message = (mocks.sns.commandCalls(PublishCommand)[0].args[0].input as { Message: string }).Message;
    // one line per CVE, at its most severe rating (CVE-2026-0001 is LOW on page 1, HIGH on page 3)
    expect(message.split('\n').filter(l => l.startsWith('  ')).map(l => l.trim().split(/\s+/).slice(0, 2).join(' ')))
      .toEqual(['CRITICAL CVE-2026-0003', 'HIGH CVE-2026-0001', 'MEDIUM CVE-2026-0002']);
  });

  test('a throttled DescribeImageScanFindings degrades to a report of the counts', async () => {
    mocks.ecr.onAnyCommand().rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    mocks.sns.on(PublishCommand).resolves({ MessageId: 'm1' });
    const { error, lines } = await captureLog(() => handler(imageScanEvent('quay/a/b', `sha256:${'d'.repeat(64)}`, { HIGH: 4 })));
    expect(error).toBeUndefined();
    const published = mocks.sns.commandCalls(PublishCommand)[0].args[0].input as { Message: string };
    expect(published.Message).toMatch(/could not be read: ThrottlingException: Rate exceeded/);
    expect(lines.find(l => l.level === 'WARN')).toMatchObject({
      message: 'finding details unavailable; the report carries the counts only', repositoryName: 'quay/a/b', errorCode: 'ThrottlingException', errorMessage: 'Rate exceeded',
    });
  });

  test.each([
    ['an Inspector scan that is not complete', { 'scan-status': 'IN_PROGRESS' }, inspectorScanEvent],
    ['a FAILED basic scan with no digest', { 'image-digest': undefined }, failedImageScanEvent],
    ['a FAILED basic scan with no repository', { 'repository-name': 'Not/A/Repo' }, failedImageScanEvent],
    ['no digest', { 'image-digest': undefined }, imageScanEvent],
    ['no repository', { 'repository-name': 42 }, imageScanEvent],
  ])('an event with %s is rejected loudly, never published', async (_, change, make: (...a: any[]) => any) => {
    const event = make('quay/a/b', `sha256:${'e'.repeat(64)}`, { CRITICAL: 1 });
    Object.assign(event.detail, change);
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeInstanceOf(Error);
    expect(mocks.sns.commandCalls(PublishCommand)).toHaveLength(0);
    expect(lines.find(l => l.level === 'ERROR')?.message).toMatch(/event rejected/);
  });

  test('a wrong report severity is a deployment error that names the variable', async () => {
    process.env.REPORT_SEVERITY = 'SEVERE';
    try {
      const { error } = await captureLog(() => handler(imageScanEvent('quay/a/b', `sha256:${'f'.repeat(64)}`, { CRITICAL: 1 })));
      expect(String(error)).toMatch(/REPORT_SEVERITY is 'SEVERE'/);
    } finally {
      process.env.REPORT_SEVERITY = 'HIGH';
    }
  });
});

describe('what the reporter asks ECR and writes down (ECR and SNS mocked)', () => {
  const mocks = mockSnsAndEcr();

  /** The DescribeImageScanFindings requests the handler sent. */
  const ecrRequests = () => mocks.ecr.commandCalls(DescribeImageScanFindingsCommand).map(c => c.args[0].input);
  /** The namespace of every EMF block written. */
  const namespaces = (lines: Record<string, any>[]) => lines.filter(l => l._aws).map(l => l._aws.CloudWatchMetrics[0].Namespace);

  test('at most 5 pages of findings are read (1,000 a page, each after the last page\'s token), however many ECR offers', async () => {
    let page = 0;
    mocks.ecr.on(DescribeImageScanFindingsCommand).callsFake(() => {
      page++;
      return { imageScanFindings: { findings: [{ name: `CVE-2026-000${page}`, severity: 'HIGH' }] }, nextToken: `after-${page}` };
    });
    mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const digest = `sha256:${'1'.repeat(64)}`;
    const { error } = await captureLog(() => handler(imageScanEvent('quay/a/b', digest, { HIGH: 6 })));
    expect(error).toBeUndefined();
    const request = { repositoryName: 'quay/a/b', registryId: '123456789012', imageId: { imageDigest: digest }, maxResults: 1000 };
    expect(ecrRequests()).toEqual([
      { ...request, nextToken: undefined }, { ...request, nextToken: 'after-1' }, { ...request, nextToken: 'after-2' },
      { ...request, nextToken: 'after-3' }, { ...request, nextToken: 'after-4' },
    ]);
    const message = (mocks.sns.commandCalls(PublishCommand)[0].args[0].input as { Message: string }).Message;
    expect(message).toContain('Most severe (5):');
  });

  test('a published report is logged with SNS\'s message id, and its metrics carry the scan in the default namespace when none is set', async () => {
    const saved = process.env.METRIC_NAMESPACE;
    delete process.env.METRIC_NAMESPACE;
    try {
      mocks.ecr.on(DescribeImageScanFindingsCommand).resolves({ imageScanFindings: { findings: [] } });
      mocks.sns.on(PublishCommand).resolves({ MessageId: 'msg-42' });
      const digest = `sha256:${'2'.repeat(64)}`;
      const { error, lines } = await captureLog(() => handler(imageScanEvent('quay/a/b', digest, { CRITICAL: 1 }, ['v9'])));
      expect(error).toBeUndefined();
      expect(namespaces(lines)).toEqual(['EcrPullThroughCache', 'EcrPullThroughCache']);
      const context = { eventId: `scan-${'2'.repeat(12)}`, scanner: 'basic', repositoryName: 'quay/a/b', imageDigest: digest };
      expect(lines.find(l => l.ScansReported === 1)).toMatchObject({ ...context, counts: { CRITICAL: 1, HIGH: 0, LOW: 0 } });
      expect(lines.find(l => l.message === 'findings report published')).toMatchObject({ level: 'INFO', ...context, messageId: 'msg-42' });
    } finally {
      process.env.METRIC_NAMESPACE = saved;
    }
  });

  test('reportSeverity LOW: an Inspector scan\'s unranked findings are read from the registry its ARN names; the event\'s own counts stand', async () => {
    process.env.REPORT_SEVERITY = 'LOW';
    try {
      const stored = { HIGH: 9, LOW: 3, INFORMATIONAL: 1 }; // ECR's counts; the event's own HIGH: 1 stands
      mocks.ecr.on(DescribeImageScanFindingsCommand, { maxResults: 1 }).resolves({ imageScanFindings: { findingSeverityCounts: stored } });
      mocks.ecr.on(DescribeImageScanFindingsCommand, { maxResults: 1000 }).resolves({ imageScanFindings: { enhancedFindings: [] } });
      mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
      const digest = `sha256:${'3'.repeat(64)}`;
      const event = inspectorScanEvent('quay/a/b', digest, { HIGH: 1, TOTAL: 5 });
      event.detail['repository-name'] = 'arn:aws:ecr:us-east-1:210987654321:repository/quay/a/b';
      const { error, lines } = await captureLog(() => handler(event));
      expect(error).toBeUndefined();
      expect(ecrRequests()[0]).toEqual({ repositoryName: 'quay/a/b', registryId: '210987654321', imageId: { imageDigest: digest }, maxResults: 1 });
      expect(emfValues(lines)).toMatchObject({
        'Findings{Cache=TestCache,Severity=HIGH}': 1, 'Findings{Cache=TestCache,Severity=LOW}': 3, 'Findings{Cache=TestCache,Severity=INFORMATIONAL}': 1,
      });
      expect((mocks.sns.commandCalls(PublishCommand)[0].args[0].input as { Subject: string }).Subject).toBe('ECR scan: 1 HIGH, 3 LOW in quay/a/b:latest');
    } finally {
      process.env.REPORT_SEVERITY = 'HIGH';
    }
  });

  test('reportSeverity LOW: unranked findings whose severities are unreadable are counted as LOW, and the warning says how many and why', async () => {
    process.env.REPORT_SEVERITY = 'LOW';
    try {
      mocks.ecr.on(DescribeImageScanFindingsCommand).rejects(Object.assign(new Error('no scan here'), { name: 'ScanNotFoundException' }));
      mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
      const { error, lines } = await captureLog(() => handler(inspectorScanEvent('quay/a/b', `sha256:${'4'.repeat(64)}`, { MEDIUM: 2, TOTAL: 6 })));
      expect(error).toBeUndefined();
      expect(lines.find(l => l.level === 'WARN' && /below MEDIUM/.test(l.message))).toMatchObject({
        message: '4 findings below MEDIUM and their severities unreadable: counted as LOW, so they are reported',
        reason: 'ScanNotFoundException: no scan here',
        repositoryName: 'quay/a/b',
      });
      expect(emfValues(lines)).toMatchObject({ 'Findings{Cache=TestCache,Severity=MEDIUM}': 2, 'Findings{Cache=TestCache,Severity=LOW}': 4 });
    } finally {
      process.env.REPORT_SEVERITY = 'HIGH';
    }
  });

  test('reportSeverity LOW: ECR answering with no severity counts at all does not make the unranked findings vanish', async () => {
    process.env.REPORT_SEVERITY = 'LOW';
    try {
      mocks.ecr.on(DescribeImageScanFindingsCommand).resolves({ imageScanStatus: { status: 'COMPLETE' } });
      mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
      const { error, lines } = await captureLog(() => handler(inspectorScanEvent('quay/a/b', `sha256:${'4'.repeat(64)}`, { TOTAL: 2 })));
      expect(error).toBeUndefined();
      expect(lines.find(l => l.level === 'WARN')).toMatchObject({ reason: 'ECR holds no severity counts for the image' });
      expect((mocks.sns.commandCalls(PublishCommand)[0].args[0].input as { Subject: string }).Subject).toBe('ECR scan: 2 LOW in quay/a/b:latest');
    } finally {
      process.env.REPORT_SEVERITY = 'HIGH';
    }
  });

  test('reportSeverity LOW: a basic scan names every severity, so the counts are not read again (only the details are)', async () => {
    process.env.REPORT_SEVERITY = 'LOW';
    try {
      mocks.ecr.on(DescribeImageScanFindingsCommand).resolves({ imageScanFindings: { findings: [{ name: 'CVE-2026-4', severity: 'LOW' }] } });
      mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
      const { error } = await captureLog(() => handler(imageScanEvent('quay/a/b', `sha256:${'5'.repeat(64)}`, { LOW: 1 })));
      expect(error).toBeUndefined();
      expect(ecrRequests().map(r => r.maxResults)).toEqual([1000]);
    } finally {
      process.env.REPORT_SEVERITY = 'HIGH';
    }
  });

  test('a new finding below the report severity is counted, not reported, and logged as such', async () => {
    const event = inspectorFindingEvent('quay/a/b', `sha256:${'6'.repeat(64)}`, 'MEDIUM', { pushedAt: 'Nov 2, 2026, 9:00:00 AM', firstObservedAt: 'Nov 30, 2026, 8:12:14 AM' }, 'CVE-2026-5');
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeUndefined();
    expect(mocks.sns.commandCalls(PublishCommand)).toHaveLength(0);
    expect(emfValues(lines)).toEqual({ 'Findings{Cache=TestCache,Severity=MEDIUM}': 1, 'Findings{Cache=TestCache,Prefix=quay,Severity=MEDIUM}': 1 });
    expect(lines.find(l => l.level === 'INFO')).toMatchObject({
      message: 'new finding below HIGH: counted, not reported',
      vulnerability: 'CVE-2026-5',
      severity: 'MEDIUM',
      findingArn: 'arn:aws:inspector2:us-east-1:123456789012:finding/0f9e8d7c6b5a49382716f5e4d3c2b1a0', // to look it up in Inspector
    });
  });

  test.each([
    ['of the initial scan', { pushedAt: 'Nov 2, 2026, 9:00:00 AM', firstObservedAt: 'Nov 2, 2026, 9:04:10 AM' }, 'finding of the initial scan: the scan report covers it'],
    ['updated after it was reported', { pushedAt: 'Nov 2, 2026, 9:00:00 AM', firstObservedAt: 'Nov 10, 2026, 9:00:00 AM', updatedAt: 'Nov 30, 2026, 9:00:00 AM' }, 'update of a finding reported when it was new'],
  ])('a finding %s is logged with the reason it is left out', async (_, times, message) => {
    const { lines } = await captureLog(() => handler(inspectorFindingEvent('quay/a/b', `sha256:${'7'.repeat(64)}`, 'CRITICAL', times, 'CVE-2026-6')));
    expect(lines).toEqual([expect.objectContaining({ level: 'INFO', message, vulnerability: 'CVE-2026-6', repositoryName: 'quay/a/b' })]);
  });

  test.each([
    ['an unscanned image', () => failedImageScanEvent('team/app', `sha256:${'8'.repeat(64)}`), 'unscanned image not counted: the repository is outside the cache'],
    ['a new finding', () => inspectorFindingEvent('team/app', `sha256:${'8'.repeat(64)}`, 'CRITICAL', { pushedAt: 'Nov 2, 2026, 9:00:00 AM', firstObservedAt: 'Nov 30, 2026, 8:12:14 AM' }),
      'finding not reported: the repository is outside the cache'],
  ])('%s outside the cache is neither counted nor looked up, and the warning names the prefixes', async (_, event, message) => {
    const { error, lines } = await captureLog(() => handler(event()));
    expect(error).toBeUndefined();
    expect(mocks.ecr.calls()).toHaveLength(0);
    expect(lines).toEqual([expect.objectContaining({ level: 'WARN', message, repositoryName: 'team/app', prefixes: ['docker-hub', 'quay'] })]);
  });

  test('an unscanned image\'s status is read from the event\'s registry, one result, and its description logged with the reason', async () => {
    mocks.ecr.on(DescribeImageScanFindingsCommand).resolves({ imageScanStatus: { status: 'FAILED', description: 'UnsupportedImageError: The operating system and/or package manager are not supported.' } });
    const digest = `sha256:${'9'.repeat(64)}`;
    const event = failedImageScanEvent('quay/a/b', digest, ['v1']);
    event.account = '210987654321';
    const { lines } = await captureLog(() => handler(event));
    expect(ecrRequests()).toEqual([{ repositoryName: 'quay/a/b', registryId: '210987654321', imageId: { imageDigest: digest }, maxResults: 1 }]);
    expect(lines.find(l => l.ImagesNotScanned === 1)).toMatchObject({ eventId: `failed-${'9'.repeat(12)}`, repositoryName: 'quay/a/b', imageDigest: digest, tags: ['v1'], status: 'FAILED' });
    expect(lines.find(l => l.level === 'WARN')).toMatchObject({
      message: 'image not scanned: the scanner could not scan it',
      reason: 'UnsupportedImageError',
      status: 'FAILED',
      description: 'UnsupportedImageError: The operating system and/or package manager are not supported.',
    });
  });

  test('an event that holds no scan is logged with its id, type and the reason before it is thrown', async () => {
    const event = imageScanEvent('quay/a/b', 'latest', { CRITICAL: 1 });
    const { error, lines } = await captureLog(() => handler(event));
    expect(lines).toEqual([expect.objectContaining({
      level: 'ERROR',
      message: 'event rejected: it holds no scan of an image',
      eventId: event.id,
      detailType: 'ECR Image Scan',
      error: { name: 'Error', message: (error as Error).message },
    })]);
    expect((error as Error).message).toMatch(/has no valid detail.image-digest/);
  });
});

describe('report text', () => {
  const scan = { scanner: 'basic' as const, repositoryName: 'docker-hub/library/' + 'x'.repeat(120), imageDigest: 'sha256:1', imageTags: ['t'], counts: { CRITICAL: 1, HIGH: 0 }, unranked: 0 };

  test('the subject is at most 100 printable ASCII characters', () => {
    const subject = subjectFor(scan, ['CRITICAL', 'HIGH']);
    expect(subject.length).toBe(100);
    expect(subject).toMatch(/^[\x20-\x7e]+\.\.\.$/);
  });

  test('the top list keeps the most severe, one line per id', () => {
    const top = topFindings([
      { id: 'B', severity: 'LOW' }, { id: 'A', severity: 'HIGH' }, { id: 'B', severity: 'CRITICAL' }, { id: 'C', severity: 'MEDIUM' },
    ], 2);
    expect(top.map(f => `${f.severity} ${f.id}`)).toEqual(['CRITICAL B', 'HIGH A']);
  });
});
