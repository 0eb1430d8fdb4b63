/**
 * The shapes an event reaches a handler in, reduced to the EventBridge events inside.
 *
 * - an EventBridge event (the rule's target invocation, asynchronous);
 * - a Lambda on-failure destination record (`requestPayload` holds the event), when a dead-letter message
 *   is redriven;
 * - an SQS event from the dead-letter queue's redrive mapping: each record's body is one of the two above,
 *   or the event itself (an EventBridge target dead-letter message).
 */

/** An EventBridge event: the fields the handlers read. */
export interface CloudEvent {
  readonly 'id'?: string;
  readonly 'detail-type': string;
  readonly 'source': string;
  readonly 'account'?: string;
  readonly 'region'?: string;
  readonly 'time'?: string;
  readonly 'resources'?: string[];
  readonly 'detail': Record<string, unknown>;
}

/** One SQS record of a redrive batch: its id (for a partial batch failure) and its event. */
export interface QueuedEvent {
  readonly messageId: string;
  /**
   * How many times the queue has delivered this message (SQS `ApproximateReceiveCount`). Informational only:
   * a delivery Lambda throttled raises it without the handler ever running, so it must not decide a give-up.
   */
  readonly receiveCount: number;
  /**
   * How many times a handler really tried this event from the queue and failed (the `RedriveAttempts`
   * message attribute, written by `retryLater` in `redrive.ts`); 0 for a message no handler has failed yet.
   */
  readonly attempts: number;
  /** The message's attributes (an EventBridge dead letter carries its error code and rule there), kept when it is sent again. */
  readonly messageAttributes: Record<string, { readonly stringValue: string; readonly dataType: string }>;
  /** The ARN of the queue the message came from. */
  readonly queueArn?: string;
  /** The message body as received, kept for the log when the message is given up. */
  readonly body: string;
  /** The event, or the reason the message holds none. */
  readonly event?: CloudEvent;
  readonly problem?: string;
}

export type Envelope =
  | { readonly kind: 'event'; readonly event: CloudEvent }
  | { readonly kind: 'queue'; readonly records: QueuedEvent[] }
  | { readonly kind: 'invalid'; readonly problem: string };

function isCloudEvent(value: unknown): value is CloudEvent {
  const v = value as Partial<CloudEvent> | null;
  return typeof v === 'object' && v !== null && typeof v['detail-type'] === 'string' && typeof v.source === 'string'
    && typeof v.detail === 'object' && v.detail !== null && !Array.isArray(v.detail);
}

/** An event, or a destination record around one; anything else is described. */
function unwrap(value: unknown): { event?: CloudEvent; problem?: string } {
  if (isCloudEvent(value)) {
    return { event: value };
  }
  const payload = (value as { requestPayload?: unknown } | null)?.requestPayload;
  if (payload !== undefined) {
    return isCloudEvent(payload) ? { event: payload } : { problem: 'the destination record\'s requestPayload is not an EventBridge event' };
  }
  return { problem: 'not an EventBridge event (no detail-type, source and detail object)' };
}

/** The fields of an SQS record (Lambda event source mapping) the handlers read. */
interface SqsRecord {
  readonly messageId: string;
  readonly body: string;
  readonly eventSourceARN?: string;
  readonly attributes?: { readonly ApproximateReceiveCount?: string };
  readonly messageAttributes?: Record<string, { readonly stringValue?: string; readonly dataType?: string } | undefined>;
}

/** The message attribute that carries the real attempts of a redriven event (see `redrive.ts`). */
export const ATTEMPTS_ATTRIBUTE = 'RedriveAttempts';

/** The attempts recorded in a message; a missing or malformed value is 0 (the message was never failed by a handler). */
function attemptsOf(record: SqsRecord): number {
  const value = Number(record.messageAttributes?.[ATTEMPTS_ATTRIBUTE]?.stringValue);
  return Number.isInteger(value) && value > 0 ? value : 0;
}

/** The string and number attributes of a message (binary ones cannot be sent back through SendMessage as text). */
function textAttributesOf(record: SqsRecord): QueuedEvent['messageAttributes'] {
  const kept: Record<string, { stringValue: string; dataType: string }> = {};
  for (const [name, value] of Object.entries(record.messageAttributes ?? {})) {
    if (typeof value?.stringValue === 'string' && typeof value.dataType === 'string' && /^(String|Number)/.test(value.dataType)) {
      kept[name] = { stringValue: value.stringValue, dataType: value.dataType };
    }
  }
  return kept;
}

/** Classify what the handler was invoked with. */
export function openEnvelope(input: unknown): Envelope {
  const records = (input as { Records?: unknown } | null)?.Records;
  if (Array.isArray(records) && records.every(r => (r as { eventSource?: unknown })?.eventSource === 'aws:sqs')) {
    return {
      kind: 'queue',
      records: records.map((record: SqsRecord) => {
        const receiveCount = Number(record.attributes?.ApproximateReceiveCount ?? '1') || 1;
        const base = {
          messageId: record.messageId,
          body: record.body,
          receiveCount,
          attempts: attemptsOf(record),
          messageAttributes: textAttributesOf(record),
          queueArn: record.eventSourceARN,
        };
        let body: unknown;
        try {
          body = JSON.parse(record.body);
        } catch {
          return { ...base, problem: 'the message body is not JSON' };
        }
        return { ...base, ...unwrap(body) };
      }),
    };
  }
  const { event, problem } = unwrap(input);
  return event ? { kind: 'event', event } : { kind: 'invalid', problem: problem! };
}
