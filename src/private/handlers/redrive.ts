/**
 * What happens to a dead-letter message a handler failed while its queue was being redriven.
 *
 * The give-up rule counts real attempts, never deliveries. SQS raises `ApproximateReceiveCount` each time
 * the Lambda poller receives a message, including receives whose invocation Lambda throttled, where the
 * handler never ran ("Lambda ... returns the messages to the queue" on a throttle, and the pollers start
 * at five concurrent batches whatever the function's concurrency:
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html). A give-up decided on the receive
 * count would therefore delete an event after a single real failure. Instead a failed message is sent
 * again with its attempts in the `RedriveAttempts` message attribute and a delay, and the received copy
 * is deleted (it is not reported as a batch item failure). A throttled receive changes nothing in the
 * message, so throttles cannot spend its retry budget.
 *
 * After `MAX_REDRIVES` real attempts the message is given up: its whole body goes to an ERROR log line
 * and `EventsGivenUp` is counted (per cache and handler), which the monitoring alarms on.
 * Whenever the message cannot be sent again, the received copy stays in the queue (fail closed).
 */
import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ATTEMPTS_ATTRIBUTE, QueuedEvent } from './envelope';
import { log } from './log';
import { putMetrics } from './metrics';
import { sdkClientConfig } from './sdk-config';
import { REDRIVE_ENV, REDRIVE_METRIC } from '../redrive-contract';

/** A redriven event that a handler failed this many times is given up. */
export const MAX_REDRIVES = 5;

/** The longest delay SQS allows on a message (seconds). */
const MAX_DELAY_SECONDS = 900;

/**
 * Seconds before a failed message is delivered again: 60, 120, 240, 480 (the base doubles per attempt, at
 * most 900). `REDRIVE_BASE_DELAY_SECONDS` changes the base (tests on loopback set 0).
 */
export function retryDelaySeconds(attempts: number): number {
  const base = Number(process.env[REDRIVE_ENV.BASE_DELAY_SECONDS] ?? '60');
  return Math.min(MAX_DELAY_SECONDS, (Number.isFinite(base) && base >= 0 ? base : 60) * 2 ** Math.max(0, attempts - 1));
}

/** What became of a failed queued event. */
export type RetryDecision =
  /** Sent again with one more attempt recorded; the received copy may be deleted. */
  | 'requeued'
  /** Out of attempts: logged whole, counted in `EventsGivenUp`; the received copy may be deleted. */
  | 'given-up'
  /** Could not be sent again: the received copy must stay in the queue (report it as a batch item failure). */
  | 'kept';

let sqs: SQSClient | undefined;
const queueUrls = new Map<string, string>();

/** The URL of a queue by its ARN (asked of SQS, so it is right for every partition and endpoint). */
async function queueUrlOf(client: SQSClient, queueArn: string): Promise<string> {
  let url = queueUrls.get(queueArn);
  if (!url) {
    const parts = /^arn:[a-z-]+:sqs:[a-z0-9-]+:(\d{12}):([A-Za-z0-9_-]{1,80}(?:\.fifo)?)$/.exec(queueArn);
    if (!parts) {
      throw new Error(`'${queueArn}' is not an SQS queue ARN`);
    }
    const answer = await client.send(new GetQueueUrlCommand({ QueueName: parts[2], QueueOwnerAWSAccountId: parts[1] }));
    if (!answer.QueueUrl) {
      throw new Error(`SQS returned no URL for ${queueArn}`);
    }
    url = answer.QueueUrl;
    queueUrls.set(queueArn, url);
  }
  return url;
}

/** Count one given-up event: `EventsGivenUp`, per cache and per cache and handler. */
function countGiveUp(record: QueuedEvent): void {
  const env = process.env;
  putMetrics(env[REDRIVE_ENV.METRIC_NAMESPACE] || REDRIVE_ENV.DEFAULT_NAMESPACE, {
    values: { [REDRIVE_METRIC.GIVEN_UP]: 1 },
    dimensions: { Cache: env[REDRIVE_ENV.CACHE_NAME] || 'unknown', Handler: env[REDRIVE_ENV.HANDLER_NAME] || env.AWS_LAMBDA_FUNCTION_NAME || 'unknown' },
    dimensionSets: [['Cache'], ['Cache', 'Handler']],
    properties: { messageId: record.messageId, attempts: record.attempts + 1 },
  });
}

/**
 * Whether a failure of this attempt at a queued event is its last: the event is then given up. A handler that
 * counts failed events (not attempts) counts on this attempt only.
 */
export function isLastAttempt(record: QueuedEvent): boolean {
  return record.attempts + 1 >= MAX_REDRIVES;
}

/**
 * Decide the fate of a queued event whose handling failed with `error`: send it again with one more attempt
 * recorded, or give it up after `MAX_REDRIVES` attempts. Never throws.
 */
export async function retryLater(record: QueuedEvent, error: unknown): Promise<RetryDecision> {
  const attempts = record.attempts + 1;
  const context = { messageId: record.messageId, attempts, receiveCount: record.receiveCount, queueArn: record.queueArn, error };
  if (isLastAttempt(record)) {
    log('ERROR', `redriven event failed ${attempts} times: given up and removed from the queue; its body follows`, { ...context, body: record.body });
    countGiveUp(record);
    return 'given-up';
  }
  if (!record.queueArn) {
    log('ERROR', 'redriven event failed; the record names no queue to send it back to, so it stays as it is', context);
    return 'kept';
  }
  try {
    // the client's own endpoint, not the queue URL's host: they agree in AWS, and tests point the endpoint at loopback
    sqs ??= new SQSClient({ ...sdkClientConfig(), useQueueUrlAsEndpoint: false });
    const delaySeconds = retryDelaySeconds(attempts);
    await sqs.send(new SendMessageCommand({
      QueueUrl: await queueUrlOf(sqs, record.queueArn),
      MessageBody: record.body,
      DelaySeconds: delaySeconds,
      MessageAttributes: {
        // SQS allows 10 attributes a message: the attempts come first, the original's fill the rest
        ...Object.fromEntries(Object.entries(record.messageAttributes).filter(([name]) => name !== ATTEMPTS_ATTRIBUTE).slice(0, 9)
          .map(([name, a]) => [name, { DataType: a.dataType, StringValue: a.stringValue }])),
        [ATTEMPTS_ATTRIBUTE]: { DataType: 'Number', StringValue: String(attempts) },
      },
    }));
    log('ERROR', `redriven event failed (attempt ${attempts} of ${MAX_REDRIVES}); sent back to the queue, due again in ${delaySeconds} s`, context);
    return 'requeued';
  } catch (sendError) {
    log('ERROR', 'redriven event failed and could not be sent back with its attempts; it stays in the queue as it is', { ...context, sendError });
    return 'kept';
  }
}

/** Tests only: forget the cached client and queue URLs so a new endpoint or mock takes effect. */
export function resetRedriveClient(): void {
  sqs = undefined;
  queueUrls.clear();
}
