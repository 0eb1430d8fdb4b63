import { BatchGetImageCommand, DescribeImageScanFindingsCommand, ECRClient, StartImageScanCommand } from '@aws-sdk/client-ecr';
import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { destinationRecord, imagePushEvent, pullThroughCacheEvent, sqsBatch } from './events';
import { putImage } from './images';
import { resetRedriveClient } from '../../src/private/handlers/redrive';
import { handler, resetClient } from '../../src/scanning/scan-trigger.lambda';
import { captureLog, emfValues, MotoServer, startMoto, useEndpoint } from '../support/moto';

const ENV = { CACHE_PREFIXES: JSON.stringify(['docker-hub', 'ecr-public', 'team/k8s']), CACHE_NAME: 'TestCache', METRIC_NAMESPACE: 'Test' };

beforeAll(() => {
  Object.assign(process.env, ENV, { AWS_SDK_MAX_ATTEMPTS: '2' });
});

describe('against the ECR API of moto on loopback', () => {
  let moto: MotoServer;
  let ecr: ECRClient;

  beforeAll(async () => {
    moto = await startMoto();
    useEndpoint(moto.endpoint);
    resetClient();
    ecr = new ECRClient({ endpoint: moto.endpoint, region: 'us-east-1' });
  }, 40_000);

  afterAll(async () => {
    ecr?.destroy();
    await moto?.stop();
  });

  test('a pull through cache SUCCESS event starts a scan of that image, by digest', async () => {
    const digest = await putImage(ecr, 'docker-hub/library/nginx', '1.27');
    const { error, lines } = await captureLog(() => handler(pullThroughCacheEvent('docker-hub/library/nginx', digest, 'docker-hub', '1.27')));
    expect(error).toBeUndefined();
    const findings = await ecr.send(new DescribeImageScanFindingsCommand({ repositoryName: 'docker-hub/library/nginx', imageId: { imageDigest: digest } }));
    expect(findings.imageScanStatus?.status).toBe('COMPLETE');
    expect(findings.imageId?.imageDigest).toBe(digest);
    expect(emfValues(lines)).toEqual({ 'ScansStarted{Cache=TestCache}': 1, 'ScansStarted{Cache=TestCache,Prefix=docker-hub}': 1 });
    expect(lines.find(l => l.message === 'scan started')).toMatchObject({ repositoryName: 'docker-hub/library/nginx', imageDigest: digest, tag: '1.27' });
  });

  test('the same event again starts no second scan: ECR\'s 24-hour limit makes it "already scanned"', async () => {
    const digest = await putImage(ecr, 'ecr-public/nginx/nginx', 'stable');
    const event = pullThroughCacheEvent('ecr-public/nginx/nginx', digest, 'ecr-public', 'stable');
    await captureLog(() => handler(event));
    const again = await captureLog(() => handler(event));
    const push = await captureLog(() => handler(imagePushEvent('ecr-public/nginx/nginx', digest, 'stable')));
    expect(again.error).toBeUndefined();
    expect(push.error).toBeUndefined();
    for (const run of [again, push]) {
      expect(emfValues(run.lines)).toEqual({
        'ScansSkipped{Cache=TestCache}': 1,
        'ScansSkipped{Cache=TestCache,Prefix=ecr-public}': 1,
        'ScansSkipped{Cache=TestCache,Reason=AlreadyScanned}': 1,
      });
    }
  });

  test('a nested prefix is matched as a path, and the longest prefix wins', async () => {
    const digest = await putImage(ecr, 'team/k8s/pause', '3.10');
    const { lines } = await captureLog(() => handler(imagePushEvent('team/k8s/pause', digest, '3.10')));
    expect(emfValues(lines)).toHaveProperty(['ScansStarted{Cache=TestCache,Prefix=team/k8s}'], 1);
  });

  test('an image that is gone is skipped, not retried', async () => {
    const { error, lines } = await captureLog(() => handler(pullThroughCacheEvent('docker-hub/library/nginx', `sha256:${'0'.repeat(64)}`, 'docker-hub')));
    expect(error).toBeUndefined();
    expect(emfValues(lines)).toHaveProperty(['ScansSkipped{Cache=TestCache,Reason=ImageGone}'], 1);
  });

  test('a repository outside the cache is not scanned, and says so', async () => {
    const digest = await putImage(ecr, 'my-app/api', 'v1');
    const { error, lines } = await captureLog(() => handler(imagePushEvent('my-app/api', digest)));
    expect(error).toBeUndefined();
    expect(emfValues(lines)).toEqual({
      'ScansSkipped{Cache=TestCache}': 1, 'ScansSkipped{Cache=TestCache,Prefix=none}': 1, 'ScansSkipped{Cache=TestCache,Reason=OutsideCache}': 1,
    });
    expect(lines.find(l => l.message)).toMatchObject({
      level: 'WARN', message: 'scan skipped: the repository is outside the cache', repositoryName: 'my-app/api', prefixes: ['docker-hub', 'ecr-public', 'team/k8s'],
    });
    await expect(ecr.send(new DescribeImageScanFindingsCommand({ repositoryName: 'my-app/api', imageId: { imageDigest: digest } })))
      .rejects.toThrow(/ScanNotFound|not found|does not exist/i);
  });

  test('a redrive batch unwraps destination records and target dead letters; what holds no event stays in the queue', async () => {
    const a = await putImage(ecr, 'docker-hub/bitnami/redis', '7.4');
    const b = await putImage(ecr, 'docker-hub/bitnami/redis', '7.2');
    const batch = sqsBatch([
      JSON.stringify(destinationRecord(pullThroughCacheEvent('docker-hub/bitnami/redis', a, 'docker-hub', '7.4'))),
      JSON.stringify(pullThroughCacheEvent('docker-hub/bitnami/redis', b, 'docker-hub', '7.2')),
      'not json',
      JSON.stringify({ hello: 'world' }),
    ]);
    const { result, lines } = await captureLog(() => handler(batch));
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-2' }, { itemIdentifier: 'm-3' }] });
    expect(emfValues(lines)['ScansStarted{Cache=TestCache}']).toBe(2);
    expect(lines.filter(l => l.level === 'ERROR').map(l => l.messageId)).toEqual(['m-2', 'm-3']);
  });
});

describe('error paths (the ECR client mocked)', () => {
  let ecrMock: ReturnType<typeof mockClient>;
  beforeAll(() => {
    ecrMock = mockClient(ECRClient); // mocks every ECRClient until restored, so only inside this block
  });
  afterAll(() => ecrMock.restore());
  const digest = `sha256:${'a'.repeat(64)}`;
  const event = pullThroughCacheEvent('docker-hub/library/alpine', digest, 'docker-hub');
  /** The event as the redrive mapping delivers it on its last real attempt (4 failures recorded): a failure now gives it up. */
  const lastAttempt = (e: unknown) => sqsBatch([JSON.stringify(destinationRecord(e))], 7, 4);
  const awsError = (name: string, status: number) => Object.assign(new Error(`${name}: simulated`), { name, $metadata: { httpStatusCode: status } });

  beforeEach(() => {
    ecrMock.reset();
    resetClient();
    resetRedriveClient();
  });

  test('LimitExceededException for an image with a scan on record: already scanned, skipped', async () => {
    ecrMock.on(StartImageScanCommand).rejects(awsError('LimitExceededException', 400));
    ecrMock.on(DescribeImageScanFindingsCommand).resolves({ imageScanStatus: { status: 'COMPLETE' } });
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeUndefined();
    expect(emfValues(lines)).toHaveProperty(['ScansSkipped{Cache=TestCache,Reason=AlreadyScanned}'], 1);
  });

  test('LimitExceededException whose scan lookup fails is a failure, kept for a retry: never skipped as "already scanned"', async () => {
    ecrMock.on(StartImageScanCommand).rejects(awsError('LimitExceededException', 400));
    ecrMock.on(DescribeImageScanFindingsCommand).rejects(awsError('ThrottlingException', 400));
    const { error, lines } = await captureLog(() => handler(event));
    expect((error as Error).name).toBe('ThrottlingException');
    expect(emfValues(lines)).toEqual({}); // neither skipped nor, on an attempt Lambda retries, counted as failed
    const last = await captureLog(() => handler(lastAttempt(event)));
    expect(emfValues(last.lines)).toMatchObject({ 'ScanFailures{Cache=TestCache}': 1, 'ScanFailures{Cache=TestCache,Prefix=docker-hub}': 1 });
    expect(emfValues(last.lines)).not.toHaveProperty(['ScansSkipped{Cache=TestCache}']);
  });

  test('LimitExceededException for an image with no scan is the registry\'s daily quota: a failure, kept for a retry', async () => {
    ecrMock.on(StartImageScanCommand).rejects(awsError('LimitExceededException', 400));
    ecrMock.on(DescribeImageScanFindingsCommand).rejects(awsError('ScanNotFoundException', 400));
    const { error, lines } = await captureLog(() => handler(event));
    expect((error as Error).name).toBe('LimitExceededException');
    expect(emfValues(lines)).toEqual({});
    expect(lines.find(l => l.level === 'ERROR')).toMatchObject({ errorCode: 'LimitExceededException', lastAttempt: false });
  });

  test('a multi-architecture image is scanned through its platform images, without attestations', async () => {
    const child = (n: string) => `sha256:${n.repeat(64)}`;
    ecrMock.on(StartImageScanCommand).resolves({ imageScanStatus: { status: 'IN_PROGRESS' } }); // the default first, then the specific answers
    ecrMock.on(StartImageScanCommand, { imageId: { imageDigest: digest } }).rejects(awsError('UnsupportedImageTypeException', 400));
    ecrMock.on(StartImageScanCommand, { imageId: { imageDigest: child('2') } }).rejects(awsError('LimitExceededException', 400));
    ecrMock.on(DescribeImageScanFindingsCommand).resolves({ imageScanStatus: { status: 'COMPLETE' } });
    ecrMock.on(BatchGetImageCommand).resolves({
      images: [{
        imageManifestMediaType: 'application/vnd.oci.image.index.v1+json',
        imageManifest: JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [
            { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: child('1'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
            { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: child('2'), size: 1, platform: { os: 'linux', architecture: 'arm64' } },
            { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: child('3'), size: 1, platform: { os: 'unknown', architecture: 'unknown' } },
          ],
        }),
      }],
    });
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeUndefined();
    const scanned = ecrMock.commandCalls(StartImageScanCommand).map(c => (c.args[0].input as any).imageId.imageDigest);
    expect(scanned).toEqual([digest, child('1'), child('2')]);
    expect(emfValues(lines)).toMatchObject({ 'ScansStarted{Cache=TestCache}': 1, 'ScansSkipped{Cache=TestCache,Reason=AlreadyScanned}': 1 });
  });

  /** BatchGetImage answering with an index of `entries` (OCI media types unless given). */
  const indexOf = (entries: unknown[], mediaType: string | undefined = 'application/vnd.oci.image.index.v1+json', inManifest = mediaType) => ({
    images: [{
      imageManifestMediaType: mediaType,
      imageManifest: JSON.stringify({ schemaVersion: 2, ...(inManifest ? { mediaType: inManifest } : {}), manifests: entries }),
    }],
  });
  const platform = (digestOf: string, os: string, architecture: string) =>
    ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf, size: 1, platform: { os, architecture } });

  test('a scan ECR starts is recorded with its digest and tag, and the manifest is never read', async () => {
    ecrMock.on(StartImageScanCommand).resolves({ imageScanStatus: { status: 'IN_PROGRESS' } });
    const { error, lines } = await captureLog(() => handler(pullThroughCacheEvent('docker-hub/library/alpine', digest, 'docker-hub', '3.21')));
    expect(error).toBeUndefined();
    expect(ecrMock.commandCalls(BatchGetImageCommand)).toHaveLength(0);
    expect(ecrMock.commandCalls(StartImageScanCommand).map(c => c.args[0].input)).toEqual([
      { repositoryName: 'docker-hub/library/alpine', imageId: { imageDigest: digest } },
    ]);
    expect(lines.filter(l => l.message).map(l => [l.level, l.message, l.scannedDigest, l.tag, l.eventId, l.detailType])).toEqual([
      ['INFO', 'scan started', digest, '3.21', expect.stringMatching(/./), 'ECR Pull Through Cache Action'],
    ]);
    expect(emfValues(lines)).toEqual({ 'ScansStarted{Cache=TestCache}': 1, 'ScansStarted{Cache=TestCache,Prefix=docker-hub}': 1 });
  });

  test('an event with an empty tag is logged without one', async () => {
    ecrMock.on(StartImageScanCommand).resolves({});
    for (const tag of ['', 7, undefined]) {
      const { lines } = await captureLog(() => handler({ ...event, detail: { ...event.detail, 'image-tag': tag } }));
      expect(lines.find(l => l.message === 'scan started')).not.toHaveProperty('tag');
    }
  });

  test('a skip is logged with its reason and ECR\'s error, and counted per reason', async () => {
    ecrMock.on(StartImageScanCommand).rejects(awsError('ImageArchivedException', 400));
    ecrMock.on(BatchGetImageCommand).rejects(new Error('must not be read: only an unsupported image may be an index'));
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeUndefined();
    expect(lines.find(l => l.message === 'scan skipped')).toMatchObject({
      level: 'INFO', reason: 'ImageArchived', errorCode: 'ImageArchivedException', errorMessage: 'ImageArchivedException: simulated', scannedDigest: digest,
    });
    expect(emfValues(lines)).toEqual({
      'ScansSkipped{Cache=TestCache}': 1, 'ScansSkipped{Cache=TestCache,Prefix=docker-hub}': 1, 'ScansSkipped{Cache=TestCache,Reason=ImageArchived}': 1,
    });
  });

  test('LimitExceededException when ECR answers the lookup with no scan status is the daily quota, not "already scanned"', async () => {
    ecrMock.on(StartImageScanCommand).rejects(awsError('LimitExceededException', 400));
    ecrMock.on(DescribeImageScanFindingsCommand).resolves({ imageId: { imageDigest: digest } });
    const { error, lines } = await captureLog(() => handler(event));
    expect((error as Error).name).toBe('LimitExceededException');
    expect(emfValues(lines)).toEqual({});
    expect(ecrMock.commandCalls(DescribeImageScanFindingsCommand).map(c => c.args[0].input)).toEqual([
      { repositoryName: 'docker-hub/library/alpine', imageId: { imageDigest: digest }, maxResults: 1 },
    ]);
  });

  test('the index is asked for in every index and manifest media type, and each platform scanned is logged with its index', async () => {
    const child = (n: string) => `sha256:${n.repeat(64)}`;
    ecrMock.on(StartImageScanCommand).resolves({});
    ecrMock.on(StartImageScanCommand, { imageId: { imageDigest: digest } }).rejects(awsError('UnsupportedImageTypeException', 400));
    ecrMock.on(BatchGetImageCommand).resolves(indexOf([platform(child('1'), 'linux', 'amd64'), platform(child('2'), 'linux', 'arm64')]));
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeUndefined();
    expect(ecrMock.commandCalls(BatchGetImageCommand).map(c => c.args[0].input)).toEqual([{
      repositoryName: 'docker-hub/library/alpine',
      imageIds: [{ imageDigest: digest }],
      acceptedMediaTypes: [
        'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
        'application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json',
      ],
    }]);
    expect(lines.find(l => /multi-architecture image/.test(l.message))).toMatchObject({
      level: 'INFO',
      message: 'multi-architecture image: scanning its 2 platform images',
      platforms: [child('1'), child('2')],
    });
    expect(lines.filter(l => l.message === 'scan started').map(l => [l.scannedDigest, l.index])).toEqual([[child('1'), digest], [child('2'), digest]]);
    // the index itself is not recorded as skipped: its platforms are the outcome
    expect(emfValues(lines)).toEqual({ 'ScansStarted{Cache=TestCache}': 2, 'ScansStarted{Cache=TestCache,Prefix=docker-hub}': 2 });
  });

  test.each([
    ['the media type only in the manifest', indexOf([platform(`sha256:${'1'.repeat(64)}`, 'linux', 'amd64')], undefined, 'application/vnd.oci.image.index.v1+json'), 1],
    ['the media type only in ECR\'s answer', indexOf([platform(`sha256:${'1'.repeat(64)}`, 'linux', 'amd64')], 'application/vnd.oci.image.index.v1+json', ''), 1],
    ['a Docker manifest list', indexOf([platform(`sha256:${'1'.repeat(64)}`, 'linux', 'amd64')], 'application/vnd.docker.distribution.manifest.list.v2+json'), 1],
    ['an entry without a digest, and an empty one, left out', indexOf([platform(`sha256:${'1'.repeat(64)}`, 'linux', 'amd64'), { mediaType: 'x', size: 1 }, null]), 1],
    ['an entry without a platform, scanned', indexOf([{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'1'.repeat(64)}`, size: 1 }]), 1],
    ['a platform of unknown OS but known architecture, scanned', indexOf([platform(`sha256:${'1'.repeat(64)}`, 'unknown', 'amd64')]), 1],
    ['a platform of known OS but unknown architecture, scanned', indexOf([platform(`sha256:${'1'.repeat(64)}`, 'linux', 'unknown')]), 1],
  ])('an index with %s', async (_, answer, platforms) => {
    ecrMock.on(StartImageScanCommand).resolves({});
    ecrMock.on(StartImageScanCommand, { imageId: { imageDigest: digest } }).rejects(awsError('UnsupportedImageTypeException', 400));
    ecrMock.on(BatchGetImageCommand).resolves(answer);
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeUndefined();
    expect(emfValues(lines)).toEqual({ 'ScansStarted{Cache=TestCache}': platforms, 'ScansStarted{Cache=TestCache,Prefix=docker-hub}': platforms });
  });

  test.each([
    ['a single-platform manifest', { images: [{ imageManifestMediaType: 'application/vnd.oci.image.manifest.v1+json', imageManifest: '{"schemaVersion":2,"manifests":[]}' }] }],
    ['an index without a manifests list', { images: [{ imageManifestMediaType: 'application/vnd.oci.image.index.v1+json', imageManifest: '{"schemaVersion":2}' }] }],
    ['no image at all', { images: [], failures: [{ failureCode: 'ImageNotFound' }] }],
    ['an answer without an image list', { failures: [{ failureCode: 'ImageNotFound' }] }],
    ['an index media type without a manifest body', { images: [{ imageManifestMediaType: 'application/vnd.oci.image.index.v1+json' }] }],
  ])('an unsupported image that is %s stays an UnsupportedImage skip', async (_, answer) => {
    ecrMock.on(StartImageScanCommand).rejects(awsError('UnsupportedImageTypeException', 400));
    ecrMock.on(BatchGetImageCommand).resolves(answer as any);
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeUndefined();
    expect(ecrMock.commandCalls(StartImageScanCommand)).toHaveLength(1);
    expect(emfValues(lines)).toEqual({
      'ScansSkipped{Cache=TestCache}': 1, 'ScansSkipped{Cache=TestCache,Prefix=docker-hub}': 1, 'ScansSkipped{Cache=TestCache,Reason=UnsupportedImage}': 1,
    });
  });

  test('a platform image missing under a cached index is counted as PlatformNotCached, not as gone', async () => {
    const child = (n: string) => `sha256:${n.repeat(64)}`;
    ecrMock.on(StartImageScanCommand).resolves({ imageScanStatus: { status: 'IN_PROGRESS' } });
    ecrMock.on(StartImageScanCommand, { imageId: { imageDigest: digest } }).rejects(awsError('UnsupportedImageTypeException', 400));
    ecrMock.on(StartImageScanCommand, { imageId: { imageDigest: child('5') } }).rejects(awsError('ImageNotFoundException', 400));
    ecrMock.on(BatchGetImageCommand).resolves({
      images: [{
        imageManifestMediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
        imageManifest: JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
          manifests: [
            { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: child('4'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
            { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: child('5'), size: 1, platform: { os: 'linux', architecture: 's390x' } },
          ],
        }),
      }],
    });
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeUndefined();
    const values = emfValues(lines);
    expect(values).toMatchObject({ 'ScansStarted{Cache=TestCache}': 1, 'ScansSkipped{Cache=TestCache,Reason=PlatformNotCached}': 1 });
    expect(values['ScansSkipped{Cache=TestCache,Reason=ImageGone}']).toBeUndefined();
  });

  test.each([
    ['UnsupportedImageTypeException', 400, 'UnsupportedImage'],
    ['ImageArchivedException', 400, 'ImageArchived'],
    ['RepositoryNotFoundException', 400, 'ImageGone'],
  ])('%s is a permanent answer: skipped as %s, never retried', async (name, status, reason) => {
    ecrMock.on(StartImageScanCommand).rejects(awsError(name, status));
    ecrMock.on(BatchGetImageCommand).resolves({ images: [{ imageManifestMediaType: 'application/vnd.oci.image.manifest.v1+json', imageManifest: '{}' }] });
    const { error, lines } = await captureLog(() => handler(event));
    expect(error).toBeUndefined();
    expect(ecrMock.commandCalls(StartImageScanCommand)).toHaveLength(1);
    expect(emfValues(lines)).toHaveProperty([`ScansSkipped{Cache=TestCache,Reason=${reason}}`], 1);
  });

  test.each([
    ['ThrottlingException', 400],
    ['ServerException', 500],
    ['AccessDeniedException', 400],
    ['ValidationException', 400],
  ])('%s that outlasts the SDK retries fails the invocation (Lambda retries, then the dead-letter queue keeps it) and is counted', async (name, status) => {
    ecrMock.on(StartImageScanCommand).rejects(awsError(name, status));
    const { error, lines } = await captureLog(() => handler(event));
    expect((error as Error).name).toBe(name);
    expect(emfValues(lines)).toEqual({}); // an attempt, not an event: Lambda retries it
    const logged = lines.filter(l => l.level === 'ERROR');
    expect(logged).toEqual([expect.objectContaining({
      message: 'scan failed; the event is retried, then kept in the dead-letter queue',
      errorCode: name,
      repositoryName: 'docker-hub/library/alpine',
      imageDigest: digest,
      lastAttempt: false,
    })]);
    const last = await captureLog(() => handler(lastAttempt(event)));
    expect(last.result).toEqual({ batchItemFailures: [] });
    expect(emfValues(last.lines)).toEqual({
      'ScanFailures{Cache=TestCache}': 1,
      'ScanFailures{Cache=TestCache,Prefix=docker-hub}': 1,
      'EventsGivenUp{Cache=TestCache}': 1,
      'EventsGivenUp{Cache=TestCache,Handler=unknown}': 1,
    });
    expect(last.lines.find(l => l.errorCode === name)).toMatchObject({ level: 'ERROR', message: expect.stringMatching(/last real attempt: counted in ScanFailures/) });
  });

  test('ScanFailures counts events, not attempts: 3 Lambda attempts and 5 redriven ones of one event count once, on the last', async () => {
    const sqsMock = mockClient(SQSClient);
    try {
      sqsMock.on(GetQueueUrlCommand).resolves({ QueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/dlq' });
      sqsMock.on(SendMessageCommand).resolves({ MessageId: 'again' });
      ecrMock.on(StartImageScanCommand).rejects(awsError('AccessDeniedException', 400));
      const body = JSON.stringify(destinationRecord(event));
      const runs = [];
      for (let i = 0; i < 3; i++) {
        runs.push(await captureLog(() => handler(event))); // Lambda's asynchronous attempts
      }
      for (let attempts = 0; attempts < 5; attempts++) {
        runs.push(await captureLog(() => handler(sqsBatch([body], 2 * attempts + 1, attempts || undefined)))); // redriven, throttled receives between
      }
      const failures = runs.map(run => emfValues(run.lines)['ScanFailures{Cache=TestCache,Prefix=docker-hub}'] ?? 0);
      expect(failures).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
      expect(sqsMock.commandCalls(SendMessageCommand)).toHaveLength(4);
    } finally {
      sqsMock.restore();
    }
  });

  test.each([
    ['no digest', { ...event, detail: { ...event.detail, 'image-digest': undefined } }],
    ['a digest that is not one', { ...event, detail: { ...event.detail, 'image-digest': 'latest' } }],
    ['a repository name that is not one', { ...event, detail: { ...event.detail, 'repository-name': '../../etc' } }],
    ['another event type', { ...event, 'detail-type': 'ECR Image Scan' }],
    ['another source', { ...event, source: 'aws.inspector2' }],
    ['a digest with text around it', { ...event, detail: { ...event.detail, 'image-digest': `${digest} ` } }],
    ['a digest with text before it', { ...event, detail: { ...event.detail, 'image-digest': `x/${digest}` } }],
    ['a repository name with a trailing slash', { ...event, detail: { ...event.detail, 'repository-name': 'docker-hub/library/alpine/' } }],
    ['a repository name with a leading slash', { ...event, detail: { ...event.detail, 'repository-name': '/docker-hub/library/alpine' } }],
    ['a repository name that is a number', { ...event, detail: { ...event.detail, 'repository-name': 42 } }],
    ['a digest in a list', { ...event, detail: { ...event.detail, 'image-digest': [digest] } }],
  ])('an event with %s is rejected loudly and kept (thrown), never scanned', async (_, bad) => {
    const { error, lines } = await captureLog(() => handler(bad));
    expect(error).toBeInstanceOf(Error);
    expect(lines.find(l => l.level === 'ERROR')).toMatchObject({
      eventId: bad.id, detailType: bad['detail-type'], lastAttempt: false, error: { name: 'Error', message: (error as Error).message },
    });
    expect(ecrMock.commandCalls(StartImageScanCommand)).toHaveLength(0);
    expect(lines.find(l => l.level === 'ERROR')?.message).toMatch(/event rejected/);
    expect(emfValues(lines)).toEqual({});
    const last = await captureLog(() => handler(lastAttempt(bad)));
    expect(emfValues(last.lines)).toMatchObject({ 'ScanFailures{Cache=TestCache}': 1, 'ScanFailures{Cache=TestCache,Prefix=none}': 1 });
  });

  test('an event of another type or source is refused with both named', async () => {
    const { error } = await captureLog(() => handler({ ...event, 'source': 'aws.inspector2', 'detail-type': 'Inspector2 Scan' }));
    expect((error as Error).message).toBe('unexpected event \'Inspector2 Scan\' from \'aws.inspector2\'');
  });

  test.each([
    ['no digest', { 'image-digest': undefined }, `event ${event.id} has no valid detail.image-digest`],
    ['no repository name', { 'repository-name': undefined }, `event ${event.id} has no valid detail.repository-name`],
  ])('an event with %s says which field, of which event', async (_, change, message) => {
    const { error } = await captureLog(() => handler({ ...event, detail: { ...event.detail, ...change } }));
    expect((error as Error).message).toBe(message);
    const anonymous = await captureLog(() => handler({ ...event, id: undefined, detail: { ...event.detail, ...change } }));
    expect((anonymous.error as Error).message).toBe(message.replace(event.id, ''));
  });

  test.each([
    // the algorithm grammar of the OCI image spec (descriptor.md: "multihash+base58", "sha256+b64u"), and
    // repository components with separators, as ECR allows them
    ['docker-hub/bitnami/redis-cluster', 'sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564'],
    ['docker-hub/kube-state-metrics/kube-state-metrics', 'multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8'],
    ['docker-hub/a.b_c/d-e', digest],
  ])('a valid repository %s and digest %s are scanned', async (repositoryName, imageDigest) => {
    ecrMock.on(StartImageScanCommand).resolves({});
    const { error } = await captureLog(() => handler({ ...event, detail: { ...event.detail, 'repository-name': repositoryName, 'image-digest': imageDigest } }));
    expect(error).toBeUndefined();
    expect(ecrMock.commandCalls(StartImageScanCommand).map(c => c.args[0].input)).toEqual([{ repositoryName, imageId: { imageDigest } }]);
  });

  test('a redriven message is given up on its 5th real failure, whatever its receive count: logged whole, counted, removed', async () => {
    const sqsMock = mockClient(SQSClient);
    try {
      sqsMock.on(GetQueueUrlCommand).resolves({ QueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/dlq' });
      sqsMock.on(SendMessageCommand).resolves({ MessageId: 'again' });
      ecrMock.on(StartImageScanCommand).rejects(awsError('AccessDeniedException', 400));
      const body = JSON.stringify(event);
      // received 40 times (throttles), failed by a handler 3 times: sent back with its 4th attempt recorded
      const early = await captureLog(() => handler(sqsBatch([body], 40, 3)));
      expect(early.result).toEqual({ batchItemFailures: [] });
      expect(sqsMock.commandCalls(SendMessageCommand).map(c => c.args[0].input.MessageAttributes?.RedriveAttempts?.StringValue)).toEqual(['4']);
      expect(early.lines.some(l => /given up/.test(l.message))).toBe(false);
      const late = await captureLog(() => handler(sqsBatch([body, 'garbage'], 5, 4)));
      expect(late.result).toEqual({ batchItemFailures: [] }); // given up
      expect(sqsMock.commandCalls(SendMessageCommand)).toHaveLength(1);
      const givenUp = late.lines.filter(l => /given up and removed from the queue/.test(l.message));
      expect(givenUp.map(l => l.body)).toEqual([body, 'garbage']); // the message survives in the log
      expect(emfValues(late.lines)).toMatchObject({ 'EventsGivenUp{Cache=TestCache}': 2 });
    } finally {
      sqsMock.restore();
    }
  });

  test('an invocation that is no event at all is rejected with the reason', async () => {
    const { error, lines } = await captureLog(() => handler({ foo: 1 }));
    expect(String(error)).toMatch(/invocation rejected: not an EventBridge event/);
    expect(lines[0]).toMatchObject({ level: 'ERROR', message: 'invocation rejected' });
  });

  test('a function deployed without its environment says what is missing', async () => {
    const saved = process.env.CACHE_NAME;
    delete process.env.CACHE_NAME;
    try {
      const { error } = await captureLog(() => handler(event));
      expect(String(error)).toMatch(/CACHE_NAME is not set/);
    } finally {
      process.env.CACHE_NAME = saved;
    }
  });
});
