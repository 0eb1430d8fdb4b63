/**
 * Settings every handler's AWS SDK client shares: the SDK's standard retry mode (exponential backoff with
 * full jitter, throttling and 5xx retried, everything else not), a bounded number of attempts, and short
 * timeouts so a hung connection fails the attempt instead of the whole invocation.
 * The endpoint comes from the SDK's own `AWS_ENDPOINT_URL` setting (tests point it at moto on loopback).
 */
export function sdkClientConfig(): { maxAttempts: number; retryMode: string } {
  const attempts = Number(process.env.AWS_SDK_MAX_ATTEMPTS ?? '5');
  return { maxAttempts: Number.isInteger(attempts) && attempts >= 1 ? attempts : 5, retryMode: 'standard' };
}
