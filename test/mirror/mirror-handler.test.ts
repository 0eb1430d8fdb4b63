import { randomBytes, randomUUID } from 'crypto';
import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { MirrorEnv, MirrorUpstreamConfig } from '../../src/mirror/contract';
import { ecrDestination, handler, useDestination } from '../../src/mirror/mirror.lambda';
import { RegistryClient } from '../../src/mirror/oci-client';
import { startHttpFaultProxy } from '../support/fault-proxy';
import { MotoServer, captureLog, emfValues, freePort, startMoto, useEndpoint } from '../support/moto';
import { OciRegistry, REGISTRY_PASSWORD, REGISTRY_USER, digestOf, fetchManifest, pushImage, startRegistry } from '../support/oci-registry';

/**
 * The copy handler end to end on loopback: moto for SQS, Secrets Manager and GetAuthorizationToken; a token-auth
 * registry with credentials as the upstream; a Basic-auth registry standing in for ECR's registry endpoint.
 */
let moto: MotoServer;
let source: OciRegistry;
let destination: OciRegistry;
let sqs: SQSClient;
let workQueue: { url: string; arn: string };
let deadLetterQueue: { url: string; arn: string };
let secretArn: string;
let placeholderSecretArn: string;

async function queue(name: string) {
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  return { url, arn };
}

/** Every message waiting in a queue (received, so they leave it for this test). */
async function drain(q: { url: string }): Promise<Array<{ body: any; messageId: string }>> {
  const all: Array<{ body: any; messageId: string }> = [];
  for (;;) {
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 300 }));
    if (!got.Messages?.length) {
      return all;
    }
    all.push(...got.Messages.map(m => ({ body: JSON.parse(m.Body!), messageId: m.MessageId! })));
  }
}

/** The SQS event Lambda's event source mapping delivers. */
function sqsEvent(bodies: unknown[], from: { arn: string }, receiveCount = 1) {
  return {
    Records: bodies.map(body => ({
      messageId: randomUUID(),
      body: JSON.stringify(body),
      eventSource: 'aws:sqs',
      eventSourceARN: from.arn,
      attributes: { ApproximateReceiveCount: String(receiveCount) },
    })),
  };
}

const scheduled = (prefix?: string) => ({
  'id': randomUUID(), 'detail-type': 'Scheduled Event', 'source': 'aws.events', 'time': new Date().toISOString(), 'detail': prefix ? { prefix } : {},
});
const imageEvent = (prefix: string, repository: string, tag: string) => ({
  'detail-type': 'Mirror Image', 'source': 'cdk-ecr-pull-through-cache.mirror', 'detail': { prefix, repository, tag },
});

function configure(upstreams: MirrorUpstreamConfig[]): void {
  Object.assign(process.env, {
    [MirrorEnv.UPSTREAMS]: JSON.stringify(upstreams),
    [MirrorEnv.WORK_QUEUE_URL]: workQueue.url,
    [MirrorEnv.DEAD_LETTER_QUEUE_URL]: deadLetterQueue.url,
    [MirrorEnv.DEAD_LETTER_QUEUE_ARN]: deadLetterQueue.arn,
    [MirrorEnv.CACHE_NAME]: 'TestCache',
    [MirrorEnv.METRIC_NAMESPACE]: 'Test',
  });
}

const plenty = { getRemainingTimeInMillis: () => 900_000 };

beforeAll(async () => {
  [moto, source, destination] = await Promise.all([
    startMoto(), startRegistry({ tokenAuth: true, tokenCredentials: true }), startRegistry({ basicAuth: true }),
  ]);
  useEndpoint(moto.endpoint);
  process.env.AWS_SDK_MAX_ATTEMPTS = '2';
  sqs = new SQSClient({ endpoint: moto.endpoint, region: 'us-east-1' });
  [workQueue, deadLetterQueue] = await Promise.all([queue('mirror-work'), queue('mirror-dlq')]);
  const secrets = new SecretsManagerClient({ endpoint: moto.endpoint, region: 'us-east-1' });
  secretArn = (await secrets.send(new CreateSecretCommand({
    Name: 'ecr-pullthroughcache/mcr', SecretString: JSON.stringify({ username: REGISTRY_USER, accessToken: REGISTRY_PASSWORD }),
  }))).ARN!;
  placeholderSecretArn = (await secrets.send(new CreateSecretCommand({
    Name: 'ecr-pullthroughcache/unfilled', SecretString: JSON.stringify({ username: 'REPLACE_ME', accessToken: 'x'.repeat(32) }),
  }))).ARN!;
  secrets.destroy();
  useDestination(async () => new RegistryClient({ url: destination.url, authorization: destination.authorization }));
}, 60_000);

afterAll(async () => {
  useDestination(undefined);
  sqs?.destroy();
  await Promise.all([moto?.stop(), source?.stop(), destination?.stop()]);
});

afterEach(async () => {
  await Promise.all([drain(workQueue), drain(deadLetterQueue)]);
});

const upstream = (images: string[], extra: Partial<MirrorUpstreamConfig> = {}): MirrorUpstreamConfig => ({
  prefix: 'mcr', registry: source.url, images, maxTagsPerPattern: 2, secretArn, ...extra,
});

test('a scheduled run lists the images (a pattern becomes its highest tags) and queues one message per image; a pattern that matches nothing is a failure with its reason', async () => {
  for (const tag of ['8.0.9', '8.0.10', '8.0.11', '9.0.0']) {
    await pushImage(source, 'dotnet/sdk', tag, [randomBytes(1000)]);
  }
  configure([upstream(['dotnet/runtime:8.0', 'dotnet/sdk:8.0.*', 'dotnet/sdk:7.*'])]);
  const { error, lines } = await captureLog(() => handler(scheduled('mcr'), plenty));
  expect(error).toBeUndefined();
  const queued = (await drain(workQueue)).map(m => m.body);
  expect(queued.map(m => `${m.detail.repository}:${m.detail.tag}`)).toEqual(['dotnet/runtime:8.0', 'dotnet/sdk:8.0.11', 'dotnet/sdk:8.0.10']);
  expect(queued[0]).toMatchObject({ 'detail-type': 'Mirror Image', 'source': 'cdk-ecr-pull-through-cache.mirror', 'detail': { prefix: 'mcr' } });
  const failed = (await drain(deadLetterQueue)).map(m => m.body.detail);
  expect(failed).toEqual([{ prefix: 'mcr', repository: 'dotnet/sdk', tag: '7.*', reason: 'NoMatchingTag', error: 'no tag of dotnet/sdk matches \'7.*\'' }]);
  expect(emfValues(lines)).toMatchObject({
    'ImagesQueued{Cache=TestCache,Prefix=mcr}': 3,
    'ImageCopyFailures{Cache=TestCache,Reason=NoMatchingTag}': 1,
  });
});

test('queued images are copied with their digests; one that vanished upstream goes to the dead-letter queue with its reason, the others are copied', async () => {
  const runtime = await pushImage(source, 'dotnet/runtime', '8.0', [randomBytes(200_000), randomBytes(3000)]);
  const aspnet = await pushImage(source, 'dotnet/aspnet', '8.0', [randomBytes(100_000)]);
  configure([upstream(['dotnet/runtime:8.0'])]);
  const event = sqsEvent([imageEvent('mcr', 'dotnet/runtime', '8.0'), imageEvent('mcr', 'dotnet/gone', '1.0'), imageEvent('mcr', 'dotnet/aspnet', '8.0')], workQueue);
  const { result, error, lines } = await captureLog(() => handler(event, plenty));
  expect(error).toBeUndefined();
  expect(result).toEqual({ batchItemFailures: [] }); // every message handled: two copied, one recorded as failed
  expect(digestOf((await fetchManifest(destination, 'mcr/dotnet/runtime', '8.0'))!)).toBe(runtime.digest);
  expect(digestOf((await fetchManifest(destination, 'mcr/dotnet/aspnet', '8.0'))!)).toBe(aspnet.digest);
  const metrics = emfValues(lines);
  expect(metrics).toMatchObject({ 'ImagesCopied{Cache=TestCache,Prefix=mcr}': 2, 'ImageCopyFailures{Cache=TestCache,Reason=TagNotFound}': 1 });
  expect(metrics['BytesCopied{Cache=TestCache}']).toBeGreaterThan(303_000);
  const failed = (await drain(deadLetterQueue)).map(m => m.body);
  expect(failed).toEqual([expect.objectContaining({
    'detail-type': 'Mirror Image',
    'detail': { prefix: 'mcr', repository: 'dotnet/gone', tag: '1.0', reason: 'TagNotFound', error: expect.stringMatching(/dotnet\/gone:1\.0 does not exist upstream/) },
  })]);
  expect(lines.find(l => l.level === 'ERROR')).toMatchObject({ message: expect.stringMatching(/image not copied/), reason: 'TagNotFound', repository: 'dotnet/gone' });

  // the next run finds them unchanged: nothing is copied again
  const again = await captureLog(() => handler(sqsEvent([imageEvent('mcr', 'dotnet/runtime', '8.0')], workQueue), plenty));
  expect(emfValues(again.lines)).toMatchObject({ 'ImagesUnchanged{Cache=TestCache,Prefix=mcr}': 1, 'BytesCopied{Cache=TestCache}': 0 });
});

test('out of time between blobs: the rest of the image is handed to a new invocation, which finishes it', async () => {
  await pushImage(source, 'first/app', 'v1', [randomBytes(50_000)]);
  const big = await pushImage(source, 'second/app', 'v1', [randomBytes(400_000), randomBytes(300_000)]);
  configure([upstream(['first/app:v1', 'second/app:v1'])]);
  // once the first image's tag is written, only 35 s are left: 5 s after the safety margin, too little for any blob
  const running = { getRemainingTimeInMillis: () => (destination.requests().includes('PUT /v2/mcr/first/app/manifests/v1') ? 35_000 : 900_000) };
  const { error, lines } = await captureLog(() => handler(sqsEvent([imageEvent('mcr', 'first/app', 'v1'), imageEvent('mcr', 'second/app', 'v1')], workQueue), running));
  expect(error).toBeUndefined();
  expect(emfValues(lines)).toMatchObject({ 'ImagesCopied{Cache=TestCache,Prefix=mcr}': 1, 'ImageCopyResumes{Cache=TestCache,Prefix=mcr}': 1 });
  expect(await fetchManifest(destination, 'mcr/second/app', 'v1')).toBeUndefined();
  const handedOver = (await drain(workQueue)).map(m => m.body);
  expect(handedOver).toEqual([expect.objectContaining({ detail: { prefix: 'mcr', repository: 'second/app', tag: 'v1', resumes: 1 } })]);

  const resumed = await captureLog(() => handler(sqsEvent(handedOver, workQueue), plenty));
  expect(emfValues(resumed.lines)).toMatchObject({ 'ImagesCopied{Cache=TestCache,Prefix=mcr}': 1 });
  expect(digestOf((await fetchManifest(destination, 'mcr/second/app', 'v1'))!)).toBe(big.digest);
});

test('a blob that slows down mid-stream ends in a clean handover with the reason, not a kill by the timeout', async () => {
  const big = randomBytes(2_000_000);
  const pushed = await pushImage(source, 'stalling/app', 'v1', [big]);
  // the upstream sends 400 kB at full speed, then 50 kB/s: the 2 MB blob would need about 32 s more
  const proxy = await startHttpFaultProxy(source.url, (method, path) => (method === 'GET' && path.endsWith(`/blobs/${digestOf(big)}`)
    ? { kind: 'slow', afterBytes: 400_000, bytesPerSecond: 50_000 } : { kind: 'pass' }));
  try {
    configure([upstream(['stalling/app:v1'], { registry: proxy.endpoint })]);
    // 44 s left in the invocation: 14 s after the handler's 30 s safety margin, room for the blob at the assumed rate
    const endsAt = Date.now() + 44_000;
    const started = Date.now();
    const { error, lines } = await captureLog(() => handler(sqsEvent([imageEvent('mcr', 'stalling/app', 'v1')], workQueue),
      { getRemainingTimeInMillis: () => endsAt - Date.now() }));
    expect(error).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(8_000); // it stopped ~10 s before its own deadline, not at the stream's end
    expect(emfValues(lines)).toMatchObject({ 'ImageCopyResumes{Cache=TestCache,Prefix=mcr}': 1 });
    expect(JSON.stringify(lines)).toMatch(/out of time: the rest of the image is handed to a new invocation.*stopped during blob sha256:[a-f0-9]{64} \(2000000 bytes\) after \d+ s: it streamed slower than measured/);
    expect(await fetchManifest(destination, 'mcr/stalling/app', 'v1')).toBeUndefined();
    const handedOver = (await drain(workQueue)).map(m => m.body);
    expect(handedOver).toEqual([expect.objectContaining({ detail: { prefix: 'mcr', repository: 'stalling/app', tag: 'v1', resumes: 1 } })]);
    expect(await drain(deadLetterQueue)).toEqual([]);

    // the next invocation, from an upstream at full speed again, finishes the image
    configure([upstream(['stalling/app:v1'])]);
    const resumed = await captureLog(() => handler(sqsEvent(handedOver, workQueue), plenty));
    expect(emfValues(resumed.lines)).toMatchObject({ 'ImagesCopied{Cache=TestCache,Prefix=mcr}': 1 });
    expect(digestOf((await fetchManifest(destination, 'mcr/stalling/app', 'v1'))!)).toBe(pushed.digest);
  } finally {
    await proxy.stop();
  }
}, 60_000);

test('a blob stopped part-way is handed over with its upload session; the next invocation sends only the rest', async () => {
  const big = randomBytes(9_000_000);
  const pushed = await pushImage(source, 'resumable/app', 'v1', [big]);
  const chunk = 8 * 1024 * 1024; // DEFAULT_CHUNK_BYTES
  // 8.5 MB reach the destination at full speed in the streamed PATCH; then the upstream drops to 20 kB/s, the PATCH ends
  // where it stands (past one chunk: ECR's part minimum) and the rest, in chunks, never fills one before the deadline
  const proxy = await startHttpFaultProxy(source.url, (method, path) => (method === 'GET' && path.endsWith(`/blobs/${digestOf(big)}`)
    ? { kind: 'slow', afterBytes: 8_500_000, bytesPerSecond: 20_000 } : { kind: 'pass' }));
  try {
    configure([upstream(['resumable/app:v1'], { registry: proxy.endpoint })]);
    const endsAt = Date.now() + 44_000;
    const { error, lines } = await captureLog(() => handler(sqsEvent([imageEvent('mcr', 'resumable/app', 'v1')], workQueue),
      { getRemainingTimeInMillis: () => endsAt - Date.now() }));
    expect(error).toBeUndefined();
    const held: number = lines.find(l => /out of time/.test(String(l.message)))?.openUploads?.[0]?.offset;
    expect(lines.find(l => /out of time/.test(String(l.message)))).toMatchObject({ openUploads: [{ digest: digestOf(big), offset: held }] });
    expect(held).toBeGreaterThanOrEqual(chunk);
    expect(held).toBeLessThan(big.length);
    const handedOver = (await drain(workQueue)).map(m => m.body);
    expect(handedOver).toEqual([expect.objectContaining({
      detail: {
        prefix: 'mcr',
        repository: 'resumable/app',
        tag: 'v1',
        resumes: 1,
        uploads: [{ digest: digestOf(big), location: expect.stringContaining(`${destination.url}/v2/mcr/resumable/app/blobs/uploads/`), offset: held }],
      },
    })]);

    // the next invocation resumes the session: only the bytes it does not hold (and the config) are sent
    configure([upstream(['resumable/app:v1'])]);
    const resumed = await captureLog(() => handler(sqsEvent(handedOver, workQueue), plenty));
    expect(resumed.lines.filter(l => l.level === 'WARN')).toEqual([]);
    const config = JSON.parse(String(pushed.manifest)).config;
    const copiedFirst = emfValues(lines)['BytesCopied{Cache=TestCache}'];
    const copiedThen = emfValues(resumed.lines)['BytesCopied{Cache=TestCache}'];
    expect(emfValues(resumed.lines)).toMatchObject({ 'ImagesCopied{Cache=TestCache,Prefix=mcr}': 1 });
    // the stored bytes count once, in the invocation that stored them; every byte of the image is counted exactly once
    expect(copiedFirst).toBeGreaterThanOrEqual(held);
    expect(copiedThen).toBeGreaterThanOrEqual(big.length - held);
    expect(copiedFirst + copiedThen).toBe(big.length + config.size);
    expect(digestOf((await fetchManifest(destination, 'mcr/resumable/app', 'v1'))!)).toBe(pushed.digest);
  } finally {
    await proxy.stop();
  }
}, 60_000);

test('a transient failure stays in the work queue until its last delivery, then goes to the dead-letter queue with its reason', async () => {
  const closed = await freePort(); // nothing listens there: every connection is refused
  configure([upstream(['down/app:v1'], { prefix: 'down', registry: `http://127.0.0.1:${closed}`, secretArn: undefined })]);
  const first = await captureLog(() => handler(sqsEvent([imageEvent('down', 'down/app', 'v1')], workQueue, 1), plenty));
  expect((first.result as any).batchItemFailures).toHaveLength(1);
  expect(await drain(deadLetterQueue)).toEqual([]);
  expect(first.lines.find(l => l.message === 'copy failed; the message is delivered again later')).toMatchObject({ reason: 'UpstreamUnavailable' });

  const last = await captureLog(() => handler(sqsEvent([imageEvent('down', 'down/app', 'v1')], workQueue, 3), plenty));
  expect(last.result).toEqual({ batchItemFailures: [] });
  expect((await drain(deadLetterQueue)).map(m => m.body.detail)).toEqual([
    expect.objectContaining({ prefix: 'down', repository: 'down/app', reason: 'UpstreamUnavailable', error: expect.stringMatching(/ECONNREFUSED/) }),
  ]);
  expect(emfValues(last.lines)).toMatchObject({ 'ImageCopyFailures{Cache=TestCache,Reason=UpstreamUnavailable}': 1 });
}, 60_000);

test('credentials the user never filled in are a failure that says so', async () => {
  configure([upstream(['private/app:v1'], { secretArn: placeholderSecretArn })]);
  const { lines } = await captureLog(() => handler(sqsEvent([imageEvent('mcr', 'private/app', 'v1')], workQueue), plenty));
  expect((await drain(deadLetterQueue)).map(m => m.body.detail)).toEqual([expect.objectContaining({
    reason: 'CredentialsNotSet', error: expect.stringMatching(/still holds its placeholder: put \{"username": "...", "accessToken": "..."\} in it/),
  })]);
  expect(emfValues(lines)).toMatchObject({ 'ImageCopyFailures{Cache=TestCache,Reason=CredentialsNotSet}': 1 });
});

test('a redriven dead letter is copied when it can be; one that still fails goes back to the dead-letter queue with its real attempts', async () => {
  const pushed = await pushImage(source, 'later/app', 'v2', [randomBytes(10_000)]);
  configure([upstream(['later/app:v2'])]);
  process.env.REDRIVE_BASE_DELAY_SECONDS = '0';
  const letters = [
    { ...imageEvent('mcr', 'later/app', 'v2'), detail: { prefix: 'mcr', repository: 'later/app', tag: 'v2', reason: 'TagNotFound', error: 'was missing' } },
    { ...imageEvent('mcr', 'still/gone', 'v1'), detail: { prefix: 'mcr', repository: 'still/gone', tag: 'v1', reason: 'TagNotFound', error: 'missing' } },
  ];
  // received 7 times (throttled receives raise the count) but failed by a handler only once before: not given up
  const event = sqsEvent(letters, deadLetterQueue, 7);
  (event.Records[1] as any).messageAttributes = { RedriveAttempts: { stringValue: '1', dataType: 'Number' } };
  const { result, lines } = await captureLog(() => handler(event, plenty));
  expect(digestOf((await fetchManifest(destination, 'mcr/later/app', 'v2'))!)).toBe(pushed.digest);
  // the failed record was sent back by the shared give-up rule, so the batch reports no failure (nothing is lost)
  expect(result).toEqual({ batchItemFailures: [] });
  const back = await sqs.send(new ReceiveMessageCommand({ QueueUrl: deadLetterQueue.url, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }));
  expect(back.Messages).toHaveLength(1);
  expect(JSON.parse(back.Messages![0].Body!).detail.repository).toBe('still/gone');
  expect(back.Messages![0].MessageAttributes?.RedriveAttempts?.StringValue).toBe('2');
  expect(lines.find(l => l.level === 'ERROR' && /attempt 2 of 5/.test(String(l.message)))).toBeDefined();
  await drain(deadLetterQueue);
});

test('a redriven dead letter that fails its fifth real attempt is given up: removed, logged with its body and counted', async () => {
  configure([upstream(['still/gone:v1'])]);
  const letter = { ...imageEvent('mcr', 'still/gone', 'v1'), detail: { prefix: 'mcr', repository: 'still/gone', tag: 'v1', reason: 'TagNotFound', error: 'missing' } };
  const event = sqsEvent([letter], deadLetterQueue, 1);
  (event.Records[0] as any).messageAttributes = { RedriveAttempts: { stringValue: '4', dataType: 'Number' } };
  const { result, lines } = await captureLog(() => handler(event, plenty));
  expect(result).toEqual({ batchItemFailures: [] });
  expect(await drain(deadLetterQueue)).toEqual([]);
  expect(lines.find(l => l.level === 'ERROR' && /given up/.test(String(l.message)))).toMatchObject({ body: event.Records[0].body });
  expect(emfValues(lines)).toMatchObject({ 'EventsGivenUp{Cache=TestCache}': 1, 'ImageCopyFailures{Cache=TestCache,Reason=TagNotFound}': 1 });
});

test('an invocation with no event is rejected with the reason (Lambda retries it, then the dead-letter queue keeps it)', async () => {
  configure([upstream(['a/b:1'])]);
  const { error, lines } = await captureLog(() => handler({ hello: 'world' }, plenty));
  expect(String(error)).toMatch(/invocation rejected: not an EventBridge event/);
  expect(lines[0]).toMatchObject({ level: 'ERROR', message: 'invocation rejected' });
});

describe('the destination is ECR\'s registry endpoint, with the token of GetAuthorizationToken', () => {
  test('against moto: the proxy endpoint and the Basic token', async () => {
    const ecr = new ECRClient({ endpoint: moto.endpoint, region: 'us-east-1' });
    try {
      const client = await ecrDestination(ecr);
      const data = (await ecr.send(new GetAuthorizationTokenCommand({}))).authorizationData![0];
      expect(client.url).toBe(data.proxyEndpoint);
      expect(client.url).toMatch(/^https:\/\/\d{12}\.dkr\.ecr\.us-east-1\.amazonaws\.com$/);
      expect(Buffer.from(data.authorizationToken!, 'base64').toString()).toMatch(/^AWS:/);
    } finally {
      ecr.destroy();
    }
  });

  test('no token in the answer is an error, never an anonymous push', async () => {
    const ecr = new ECRClient({ region: 'us-east-1' });
    const mock = mockClient(ecr);
    mock.on(GetAuthorizationTokenCommand).resolves({ authorizationData: [] });
    await expect(ecrDestination(ecr)).rejects.toThrow(/GetAuthorizationToken returned no token or endpoint/);
    mock.restore();
  });
});

test('a failed scheduled run redriven from the dead-letter queue is planned again', async () => {
  await pushImage(source, 'redo/app', 'v1', [randomBytes(100)]);
  configure([upstream(['redo/app:v1'])]);
  const { result } = await captureLog(() => handler(sqsEvent([scheduled('mcr')], deadLetterQueue), plenty));
  expect(result).toEqual({ batchItemFailures: [] });
  expect((await drain(workQueue)).map(m => m.body.detail)).toEqual([{ prefix: 'mcr', repository: 'redo/app', tag: 'v1' }]);
  // an unknown prefix is an error, not a silent no-op
  const unknown = await captureLog(() => handler(scheduled('nope'), plenty));
  expect(String(unknown.error)).toMatch(/no mirrored upstream has the prefix 'nope'/);
});
