/**
 * The copy's watch on the invocation's deadline while a blob streams.
 *
 * Pure Node.js: no AWS SDK, no aws-cdk-lib.
 */

/**
 * What a copy keeps clear of its deadline when it decides to wait or to stop a blob that is streaming. What follows
 * the stop fits in it, each step with a timeout of its own: the registry asked what a broken session holds (4 s,
 * blob-stream.ts), then the session cancelled (3 s, oci-client.ts).
 *
 * Only the blob's stream is under the deadline's signal (the source's GET, its token request included, and the
 * PATCH). The short requests around it (HEAD, mount, the session's POST and its committing PUT, manifests) are
 * started only while the margin is clear (`checkTime`, the retry's wait) and are bounded by the idle timeout alone
 * (60 s without a byte, oci-http.ts): a registry that goes silent in one of them near the deadline can still hold
 * the copy until Lambda's timeout ends it, and the message is then retried from its queue.
 */
export const DEADLINE_MARGIN_MS = 10_000;

/** A running watch: whether it fired, a signal for the requests in flight, and actions to take when it fires. */
export interface DeadlineWatch {
  readonly stopped: boolean;
  readonly signal: AbortSignal;
  onStop(action: () => void): void;
  clear(): void;
}

/**
 * Watches the deadline while a blob streams: a blob that slows down after it started (a stalling upstream) is
 * stopped `DEADLINE_MARGIN_MS` before the deadline (its source destroyed, its PATCH in flight aborted), so the
 * copy hands over with a reason (OutOfTime) instead of being killed by Lambda's timeout with none. Without
 * `timeLeft` it never fires.
 */
export function watchDeadline(timeLeft: (() => number) | undefined, pollMs = 250): DeadlineWatch {
  const controller = new AbortController();
  const actions: Array<() => void> = [];
  let timer: NodeJS.Timeout | undefined;
  const watch = {
    stopped: false,
    signal: controller.signal,
    onStop: (action: () => void) => {
      if (watch.stopped) {
        action(); // fired already: a stream handed over after the deadline's stop is stopped at once
      } else {
        actions.push(action);
      }
    },
    clear: () => clearInterval(timer),
  };
  if (timeLeft) {
    timer = setInterval(() => {
      if (timeLeft() <= DEADLINE_MARGIN_MS) {
        watch.stopped = true;
        clearInterval(timer);
        controller.abort();
        actions.forEach(action => action());
      }
    }, pollMs);
  }
  return watch;
}
