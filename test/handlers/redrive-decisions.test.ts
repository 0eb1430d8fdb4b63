import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { QueuedEvent } from '../../src/private/handlers/envelope';
import { isLastAttempt, MAX_REDRIVES, resetRedriveClient, retryDelaySeconds, retryLater } from '../../src/private/handlers/redrive';
import { captureLog, emfValues } from '../support/moto';

/**
 * The decisions of `retryLater` one by one, SQS mocked (the redrive against SQS of moto, with throttled
 * receives, is in redrive.test.ts): what is sent back and how, what is given up and how it is counted, and
 * where a message stays when it cannot be sent back.
 */
const QUEUE_ARN = 'arn:aws:sqs:us-east-1:123456789012:scan-dlq';
const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/scan-dlq';
const ENV = ['CACHE_NAME', 'METRIC_NAMESPACE', 'HANDLER_NAME', 'AWS_LAMBDA_FUNCTION_NAME', 'REDRIVE_BASE_DELAY_SECONDS'];

const record = (attempts: number, extra: Partial<QueuedEvent> = {}): QueuedEvent => ({
  messageId: 'm-1', receiveCount: 9, attempts, messageAttributes: {}, queueArn: QUEUE_ARN, body: '{"the":"event"}', ...extra,
});

let sqsMock: ReturnType<typeof mockClient>;
let saved: Record<string, string | undefined>;

beforeAll(() => {
  sqsMock = mockClient(SQSClient);
});
afterAll(() => sqsMock.restore());
beforeEach(() => {
  saved = Object.fromEntries(ENV.map(name => [name, process.env[name]]));
  Object.assign(process.env, { CACHE_NAME: 'TestCache', METRIC_NAMESPACE: 'Test', HANDLER_NAME: 'ScanTrigger' });
  delete process.env.REDRIVE_BASE_DELAY_SECONDS;
  sqsMock.reset();
  sqsMock.on(GetQueueUrlCommand).resolves({ QueueUrl: QUEUE_URL });
  sqsMock.on(SendMessageCommand).resolves({ MessageId: 'again' });
  resetRedriveClient();
});
afterEach(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) {
      delete process.env[name];
    } else {
      process.env[name] = value;
    }
  }
});

describe('sent back', () => {
  test('with one more attempt recorded, the body as received, the delay of that attempt, the queue found by its ARN', async () => {
    const { result, lines } = await captureLog(() => retryLater(record(2), new Error('boom')));
    expect(result).toBe('requeued');
    expect(sqsMock.commandCalls(GetQueueUrlCommand).map(c => c.args[0].input)).toEqual([{ QueueName: 'scan-dlq', QueueOwnerAWSAccountId: '123456789012' }]);
    expect(sqsMock.commandCalls(SendMessageCommand).map(c => c.args[0].input)).toEqual([{
      QueueUrl: QUEUE_URL,
      MessageBody: '{"the":"event"}',
      DelaySeconds: 240,
      MessageAttributes: { RedriveAttempts: { DataType: 'Number', StringValue: '3' } },
    }]);
    expect(lines).toEqual([expect.objectContaining({
      level: 'ERROR',
      message: `redriven event failed (attempt 3 of ${MAX_REDRIVES}); sent back to the queue, due again in 240 s`,
      messageId: 'm-1',
      attempts: 3,
      receiveCount: 9,
      queueArn: QUEUE_ARN,
    })]);
    expect(emfValues(lines)).toEqual({});
  });

  test('the message\'s own attributes go with it, the old attempt count replaced, at most 10 in all', async () => {
    const own = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`A${String(i).padStart(2, '0')}`, { stringValue: `v${i}`, dataType: 'String' }]));
    await retryLater(record(1, { messageAttributes: { RedriveAttempts: { stringValue: '1', dataType: 'Number' }, ...own } }), new Error('boom'));
    const sent = sqsMock.commandCalls(SendMessageCommand)[0].args[0].input.MessageAttributes!;
    expect(Object.keys(sent)).toHaveLength(10);
    expect(sent.RedriveAttempts).toEqual({ DataType: 'Number', StringValue: '2' });
    expect(sent.A00).toEqual({ DataType: 'String', StringValue: 'v0' });
    expect(Object.keys(sent).filter(k => k !== 'RedriveAttempts')).toEqual(['A00', 'A01', 'A02', 'A03', 'A04', 'A05', 'A06', 'A07', 'A08']);
  });

  test('the queue URL is asked for once per queue, also for a FIFO queue', async () => {
    await retryLater(record(0), new Error('boom'));
    await retryLater(record(1), new Error('boom'));
    await retryLater(record(0, { queueArn: 'arn:aws:sqs:eu-west-1:210987654321:other.fifo' }), new Error('boom'));
    expect(sqsMock.commandCalls(GetQueueUrlCommand).map(c => c.args[0].input.QueueName)).toEqual(['scan-dlq', 'other.fifo']);
    expect(sqsMock.commandCalls(SendMessageCommand)).toHaveLength(3);
  });
});

describe('kept in the queue as it is (fail closed)', () => {
  test.each([
    ['an ARN that is not an SQS queue\'s', 'arn:aws:sns:us-east-1:123456789012:topic', /is not an SQS queue ARN/],
    ['an ARN with text around it', ` ${QUEUE_ARN}`, /is not an SQS queue ARN/],
    ['an ARN with a path after the name', `${QUEUE_ARN}/x`, /is not an SQS queue ARN/],
  ])('%s: nothing is sent, the reason is logged', async (_, queueArn, reason) => {
    const { result, lines } = await captureLog(() => retryLater(record(1, { queueArn }), new Error('boom')));
    expect(result).toBe('kept');
    expect(sqsMock.commandCalls(SendMessageCommand)).toHaveLength(0);
    expect(lines[0]).toMatchObject({ level: 'ERROR', message: expect.stringMatching(/could not be sent back/), sendError: { name: 'Error', message: expect.stringMatching(reason) } });
  });

  test('SQS answering without a URL', async () => {
    sqsMock.on(GetQueueUrlCommand).resolves({});
    const { result, lines } = await captureLog(() => retryLater(record(1), new Error('boom')));
    expect(result).toBe('kept');
    expect(lines[0].sendError).toEqual({ name: 'Error', message: `SQS returned no URL for ${QUEUE_ARN}` });
  });

  test('a record that names no queue', async () => {
    const { result, lines } = await captureLog(() => retryLater(record(1, { queueArn: undefined }), new Error('boom')));
    expect(result).toBe('kept');
    expect(lines).toEqual([expect.objectContaining({ level: 'ERROR', message: 'redriven event failed; the record names no queue to send it back to, so it stays as it is' })]);
    expect(sqsMock.commandCalls(GetQueueUrlCommand)).toHaveLength(0);
  });
});

describe('given up', () => {
  test(`on the ${MAX_REDRIVES}th real attempt, never before: logged whole, counted per cache and handler, not sent`, async () => {
    expect([0, 1, 2, 3, 4, 5].map(attempts => isLastAttempt(record(attempts)))).toEqual([false, false, false, false, true, true]);
    const { result, lines } = await captureLog(() => retryLater(record(MAX_REDRIVES - 1), new Error('boom')));
    expect(result).toBe('given-up');
    expect(sqsMock.commandCalls(SendMessageCommand)).toHaveLength(0);
    expect(lines[0]).toMatchObject({
      level: 'ERROR',
      message: `redriven event failed ${MAX_REDRIVES} times: given up and removed from the queue; its body follows`,
      body: '{"the":"event"}',
      attempts: MAX_REDRIVES,
    });
    expect(emfValues(lines)).toEqual({ 'EventsGivenUp{Cache=TestCache}': 1, 'EventsGivenUp{Cache=TestCache,Handler=ScanTrigger}': 1 });
    const block = lines.find(l => l._aws)!;
    expect(block._aws.CloudWatchMetrics[0].Namespace).toBe('Test');
    expect(block).toMatchObject({ messageId: 'm-1', attempts: MAX_REDRIVES });
  });

  test('without a namespace, cache or handler name: the library namespace, the function name, then "unknown"', async () => {
    delete process.env.METRIC_NAMESPACE;
    delete process.env.HANDLER_NAME;
    delete process.env.CACHE_NAME;
    process.env.AWS_LAMBDA_FUNCTION_NAME = 'fn-1';
    const first = await captureLog(() => retryLater(record(MAX_REDRIVES - 1), new Error('boom')));
    expect(first.lines.find(l => l._aws)?._aws.CloudWatchMetrics[0].Namespace).toBe('EcrPullThroughCache');
    expect(emfValues(first.lines)).toEqual({ 'EventsGivenUp{Cache=unknown}': 1, 'EventsGivenUp{Cache=unknown,Handler=fn-1}': 1 });
    delete process.env.AWS_LAMBDA_FUNCTION_NAME;
    const second = await captureLog(() => retryLater(record(MAX_REDRIVES - 1), new Error('boom')));
    expect(emfValues(second.lines)).toHaveProperty(['EventsGivenUp{Cache=unknown,Handler=unknown}'], 1);
  });
});

describe('delays', () => {
  test.each([
    ['the default base of 60 s', undefined, [60, 60, 120, 240, 480, 900, 900]],
    ['a base of 10 s', '10', [10, 10, 20, 40, 80, 160, 640]],
    ['a base of 0 (tests on loopback)', '0', [0, 0, 0, 0, 0, 0, 0]],
    ['a negative base, which falls back to 60 s', '-5', [60, 60, 120, 240, 480, 900, 900]],
    ['a base that is no number, which falls back to 60 s', 'soon', [60, 60, 120, 240, 480, 900, 900]],
  ])('%s: attempts 0, 1, 2, 3, 4, 5, 7', (_, base, expected) => {
    if (base !== undefined) {
      process.env.REDRIVE_BASE_DELAY_SECONDS = base;
    }
    expect([0, 1, 2, 3, 4, 5, 7].map(retryDelaySeconds)).toEqual(expected);
  });
});
