import { DescribeImageScanFindingsCommand, ECRClient } from '@aws-sdk/client-ecr';
import {
  CreateQueueCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { MAX_REDRIVES, resetRedriveClient, retryDelaySeconds } from '../../src/private/handlers/redrive';
import { handler, resetClient } from '../../src/scanning/scan-trigger.lambda';
import { destinationRecord, pullThroughCacheEvent } from '../scanning/events';
import { putImage } from '../scanning/images';
import { FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { captureLog, emfValues, MotoServer, startMoto, useEndpoint } from '../support/moto';

/**
 * The redrive of a dead-letter queue, driven the way Lambda's SQS pollers drive it, against SQS and ECR of
 * moto on loopback. A "throttled" receive is what a poller does when Lambda throttles the invocation: the
 * message is received (ApproximateReceiveCount rises) and returned to the queue, the handler never runs.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
 */
const ENV = {
  CACHE_PREFIXES: JSON.stringify(['docker-hub']),
  CACHE_NAME: 'TestCache',
  METRIC_NAMESPACE: 'Test',
  HANDLER_NAME: 'ScanTrigger',
  AWS_SDK_MAX_ATTEMPTS: '1',
  REDRIVE_BASE_DELAY_SECONDS: '0',
};

let moto: MotoServer;
let proxy: FaultProxy;
let sqs: SQSClient;
let ecr: ECRClient;
/** Digests whose StartImageScan fails (server error), with how many more times. */
const failing = new Map<string, number>();

beforeAll(async () => {
  Object.assign(process.env, ENV);
  moto = await startMoto();
  proxy = await startFaultProxy(moto.endpoint, (operation, body) => {
    const left = operation === 'StartImageScan' ? failing.get(body.imageId?.imageDigest) ?? 0 : 0;
    if (left > 0) {
      failing.set(body.imageId.imageDigest, left - 1);
      return 'server-error';
    }
    return 'pass';
  });
  useEndpoint(proxy.endpoint);
  sqs = new SQSClient({ endpoint: moto.endpoint, region: 'us-east-1' });
  ecr = new ECRClient({ endpoint: moto.endpoint, region: 'us-east-1' });
}, 40_000);

afterAll(async () => {
  sqs?.destroy();
  ecr?.destroy();
  await proxy?.stop();
  await moto?.stop();
});

beforeEach(() => {
  resetClient();
  resetRedriveClient();
});

async function newQueue(name: string): Promise<{ url: string; arn: string }> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  return { url: QueueUrl!, arn: Attributes!.QueueArn! };
}

/**
 * One poll of the mapping: receive a batch; when `throttled`, return it unprocessed; else invoke the handler
 * with the SQS event Lambda would build and delete what it did not report as a batch item failure.
 * Returns the highest receive count seen.
 */
async function poll(queue: { url: string; arn: string }, throttled: boolean): Promise<number> {
  const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({
    QueueUrl: queue.url,
    MaxNumberOfMessages: 10,
    VisibilityTimeout: throttled ? 0 : 30,
    MessageSystemAttributeNames: ['All'],
    MessageAttributeNames: ['All'],
  }));
  const receives = Math.max(0, ...Messages.map(m => Number(m.Attributes?.ApproximateReceiveCount ?? 0)));
  if (throttled || Messages.length === 0) {
    return receives;
  }
  const event = {
    Records: Messages.map(m => ({
      messageId: m.MessageId,
      receiptHandle: m.ReceiptHandle,
      body: m.Body,
      attributes: { ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount },
      messageAttributes: Object.fromEntries(Object.entries(m.MessageAttributes ?? {})
        .map(([k, v]) => [k, { stringValue: v.StringValue, dataType: v.DataType, stringListValues: [], binaryListValues: [] }])),
      md5OfBody: m.MD5OfBody,
      eventSource: 'aws:sqs',
      eventSourceARN: queue.arn,
      awsRegion: 'us-east-1',
    })),
  };
  const result = await handler(event) as { batchItemFailures: { itemIdentifier: string }[] };
  const kept = new Set(result.batchItemFailures.map(f => f.itemIdentifier));
  for (const m of Messages) {
    if (!kept.has(m.MessageId!)) {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: m.ReceiptHandle }));
    }
  }
  return receives;
}

async function messagesIn(queue: { url: string }): Promise<number> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({
    QueueUrl: queue.url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
  }));
  return Object.values(Attributes ?? {}).reduce((n, v) => n + Number(v), 0);
}

test('throttled receives spend none of a message\'s attempts: an event that fails 3 times amid 12 throttles is scanned, not given up', async () => {
  const queue = await newQueue('scan-dlq-throttled');
  const digest = await putImage(ecr, 'docker-hub/library/busybox', '1.37');
  failing.set(digest, 3);
  // an EventBridge target dead letter keeps its error in message attributes, which must survive a retry
  await sqs.send(new SendMessageCommand({
    QueueUrl: queue.url,
    MessageBody: JSON.stringify(destinationRecord(pullThroughCacheEvent('docker-hub/library/busybox', digest, 'docker-hub', '1.37'))),
    MessageAttributes: { ERROR_CODE: { DataType: 'String', StringValue: 'SDK_CLIENT_ERROR' } },
  }));

  let highestReceiveCount = 0;
  const attributesSeen: string[] = [];
  const { lines } = await captureLog(async () => {
    // 4 throttled receives before each real one: 3 failures, then the success (16 receives in all)
    for (let round = 0; round < 4; round++) {
      for (let t = 0; t < 4; t++) {
        highestReceiveCount = Math.max(highestReceiveCount, await poll(queue, true));
      }
      const peek = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url, VisibilityTimeout: 0, MessageAttributeNames: ['All'] }));
      attributesSeen.push(Object.keys(peek.Messages?.[0]?.MessageAttributes ?? {}).sort().join(','));
      highestReceiveCount = Math.max(highestReceiveCount, await poll(queue, false));
    }
  });

  expect(highestReceiveCount).toBeGreaterThan(MAX_REDRIVES); // the old rule (receive count >= 5) would have deleted it
  expect(failing.get(digest)).toBe(0);
  const scan = await ecr.send(new DescribeImageScanFindingsCommand({ repositoryName: 'docker-hub/library/busybox', imageId: { imageDigest: digest } }));
  expect(scan.imageScanStatus?.status).toBe('COMPLETE');
  expect(await messagesIn(queue)).toBe(0);
  expect(emfValues(lines)).toMatchObject({ 'ScansStarted{Cache=TestCache}': 1 });
  expect(Object.keys(emfValues(lines)).filter(k => k.startsWith('EventsGivenUp'))).toEqual([]);
  expect(lines.filter(l => /sent back to the queue/.test(l.message)).map(l => l.attempts)).toEqual([1, 2, 3]);
  expect(attributesSeen).toEqual(['ERROR_CODE', 'ERROR_CODE,RedriveAttempts', 'ERROR_CODE,RedriveAttempts', 'ERROR_CODE,RedriveAttempts']);
}, 60_000);

test(`a poison event is given up after exactly ${MAX_REDRIVES} real attempts, however many throttles: logged whole and counted`, async () => {
  const queue = await newQueue('scan-dlq-poison');
  const digest = await putImage(ecr, 'docker-hub/library/poison', '1');
  failing.set(digest, 1_000);
  const body = JSON.stringify(pullThroughCacheEvent('docker-hub/library/poison', digest, 'docker-hub', '1'));
  await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: body }));

  const { lines } = await captureLog(async () => {
    for (let attempt = 1; attempt <= MAX_REDRIVES; attempt++) {
      for (let t = 0; t < 5; t++) {
        await poll(queue, true);
      }
      expect(await messagesIn(queue)).toBe(1);
      await poll(queue, false);
    }
  });

  expect(1_000 - failing.get(digest)!).toBe(MAX_REDRIVES);
  expect(await messagesIn(queue)).toBe(0);
  const values = emfValues(lines);
  expect(values['EventsGivenUp{Cache=TestCache}']).toBe(1);
  expect(values['EventsGivenUp{Cache=TestCache,Handler=ScanTrigger}']).toBe(1);
  const givenUp = lines.find(l => /given up/.test(l.message));
  expect(givenUp).toMatchObject({ level: 'ERROR', attempts: MAX_REDRIVES, body });
}, 60_000);

test('a message that cannot be sent back stays in the queue as it is (fail closed), and is not counted as given up', async () => {
  const sqsMock = mockClient(SQSClient);
  try {
    sqsMock.onAnyCommand().callsFake(() => ({ QueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/q' }));
    sqsMock.on(SendMessageCommand).rejects(Object.assign(new Error('AccessDenied: simulated'), { name: 'AccessDenied' }));
    const digest = `sha256:${'c'.repeat(64)}`;
    failing.set(digest, 1); // the scan fails once (server error), so the handler must send the event back
    const record = (attempts?: string) => ({
      messageId: 'm-1',
      receiptHandle: 'h',
      body: JSON.stringify(pullThroughCacheEvent('docker-hub/library/gone', digest, 'docker-hub')),
      attributes: { ApproximateReceiveCount: '40' },
      messageAttributes: attempts ? { RedriveAttempts: { stringValue: attempts, dataType: 'Number' } } : {},
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:q',
    });
    const { result, lines } = await captureLog(() => handler({ Records: [record()] }));
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-1' }] });
    expect(lines.find(l => /could not be sent back/.test(l.message))).toMatchObject({ level: 'ERROR', attempts: 1, sendError: expect.anything() });
    expect(Object.keys(emfValues(lines)).some(k => k.startsWith('EventsGivenUp'))).toBe(false);
  } finally {
    sqsMock.restore();
  }
});

test('retries back off: 60, 120, 240, 480 s, never beyond SQS\'s 900 s', () => {
  const saved = process.env.REDRIVE_BASE_DELAY_SECONDS;
  delete process.env.REDRIVE_BASE_DELAY_SECONDS;
  try {
    expect([1, 2, 3, 4, 5, 9].map(retryDelaySeconds)).toEqual([60, 120, 240, 480, 900, 900]);
  } finally {
    process.env.REDRIVE_BASE_DELAY_SECONDS = saved;
  }
});
