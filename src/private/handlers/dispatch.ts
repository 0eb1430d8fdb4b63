import { CloudEvent, openEnvelope } from './envelope';
import { log } from './log';
import { isLastAttempt, MAX_REDRIVES, retryLater } from './redrive';

export { MAX_REDRIVES };

/** What a batch invocation (the dead-letter redrive mapping) returns: the records to keep in the queue. */
export interface BatchResult {
  readonly batchItemFailures: { itemIdentifier: string }[];
}

/** Where an attempt stands in its event's retries. */
export interface Attempt {
  /**
   * Whether a failure of this attempt is the event's last: true only for a redriven event's last real attempt
   * (`MAX_REDRIVES`), after which it is given up. A direct invocation is never the last: Lambda retries it,
   * then keeps it in the dead-letter queue. Handlers count a failed event (not each attempt) when this is true.
   */
  readonly last: boolean;
}

/**
 * Run `handle` on every event an invocation carries.
 *
 * A direct event that fails throws, so Lambda retries it and then sends it to the function's on-failure
 * destination (the dead-letter queue). In a redrive batch, a failed record goes to `retryLater`: sent back
 * to its queue with one more real attempt recorded, or, after `MAX_REDRIVES` real attempts, given up (its
 * whole body logged, `EventsGivenUp` counted and alarmed), so one poison message cannot keep the queue busy
 * for 14 days while a throttled receive never counts as an attempt. A record that cannot be sent back is
 * returned as a batch item failure and stays in the queue. Input that holds no event is logged and thrown
 * (direct) or treated as a failed record (batch): it is never dropped silently.
 */
export async function dispatch(input: unknown, handle: (event: CloudEvent, attempt: Attempt) => Promise<void>): Promise<BatchResult | void> {
  const envelope = openEnvelope(input);
  switch (envelope.kind) {
    case 'event':
      return handle(envelope.event, { last: false });
    case 'invalid':
      log('ERROR', 'invocation rejected', { reason: envelope.problem });
      throw new Error(`invocation rejected: ${envelope.problem}`);
    case 'queue': {
      const batchItemFailures: { itemIdentifier: string }[] = [];
      for (const record of envelope.records) {
        try {
          if (!record.event) {
            throw new Error(record.problem);
          }
          await handle(record.event, { last: isLastAttempt(record) });
        } catch (error) {
          if (await retryLater(record, error) === 'kept') {
            batchItemFailures.push({ itemIdentifier: record.messageId });
          }
        }
      }
      return { batchItemFailures };
    }
  }
}

/** The cache prefix a repository belongs to: the longest listed prefix it is under (`ROOT` takes any). */
export function cachePrefixOf(repositoryName: string, prefixes: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const prefix of prefixes) {
    const under = prefix === 'ROOT' || repositoryName.startsWith(`${prefix.replace(/\/$/, '')}/`);
    if (under && (best === undefined || best === 'ROOT' || (prefix !== 'ROOT' && prefix.length > best.length))) {
      best = prefix;
    }
  }
  return best;
}

/** A required environment variable, or a clear error (a deployment defect, not an event's fault). */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`environment variable ${name} is not set: the function was not deployed by its construct`);
  }
  return value;
}
