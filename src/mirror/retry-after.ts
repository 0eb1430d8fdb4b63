/**
 * `Retry-After` (RFC 9110, section 10.2.3): how long a registry that answered 429 Too Many Requests or
 * 503 Service Unavailable asks the client to wait, as seconds or an HTTP date. The copy waits that long
 * before its next attempt (at most `MAX_RETRY_AFTER_MS`, so one answer cannot park an invocation), instead of
 * retrying within a second and spending its attempts while the registry still refuses.
 *
 * Pure Node.js: no AWS SDK, no aws-cdk-lib.
 */

/** The longest wait one `Retry-After` may ask of the copy; a longer one is cut to this. */
export const MAX_RETRY_AFTER_MS = 60_000;

/** The statuses whose `Retry-After` the copy honours. */
const HONOURED = new Set([429, 503]);

/**
 * The wait asked by a response, in milliseconds, capped at `MAX_RETRY_AFTER_MS`; undefined when the status is not
 * 429 or 503, or the header is absent or not a valid value (then the copy's own backoff applies).
 */
export function retryAfterMs(status: number | undefined, header: string | string[] | undefined, now = Date.now()): number | undefined {
  if (status === undefined || !HONOURED.has(status) || typeof header !== 'string') {
    return undefined;
  }
  const value = header.trim();
  let ms: number;
  if (/^\d+$/.test(value)) {
    ms = Number(value) * 1000;
  } else {
    const date = Date.parse(value);
    if (Number.isNaN(date) || !/\d{4}.*GMT$/.test(value)) {
      return undefined;
    }
    ms = Math.max(0, date - now);
  }
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}
