import { awsErrorInfo, isTransient } from './aws-errors';
import { log } from './log';

/**
 * Runs `work` on every item with at most `limit` calls in flight, in order of the items; resolves when all have
 * settled. `work` must not throw (a throw rejects the whole run and leaves the rest undone): report failures in
 * what it returns.
 */
export async function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** How `retryTransient` waits; tests shorten it. */
export const transientRetry = {
  /** Attempts after the SDK's own retries gave up (each of those is itself up to `AWS_SDK_MAX_ATTEMPTS` tries). */
  attempts: 4,
  /** Milliseconds before the second attempt, doubled for each next one, with full jitter. */
  baseMs: 1_000,
  /** The longest single wait. */
  capMs: 20_000,
};

/**
 * Runs `call` again, with exponential backoff and full jitter, while it fails with a throttle or a server error
 * (`isTransient`), up to `transientRetry.attempts` times: a long run of thousands of calls meets sustained throttling
 * that outlasts the SDK's own few retries. Any other error, or the last transient one, is thrown as it is.
 */
export async function retryTransient<T>(what: string, call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const info = awsErrorInfo(error);
      if (!isTransient(info) || attempt >= transientRetry.attempts) {
        throw error;
      }
      const waitMs = Math.random() * Math.min(transientRetry.capMs, transientRetry.baseMs * 2 ** (attempt - 1));
      log('WARN', 'throttled or failed transiently: retrying', { what, attempt, error: info.name, waitMs: Math.round(waitMs) });
      await new Promise(resolve => setTimeout(resolve, waitMs));
    }
  }
}
