/** What the handlers need to know of an AWS SDK v3 error, without importing the SDK's error classes. */
export interface AwsErrorInfo {
  /** The service's error code, for example `LimitExceededException`. */
  readonly name: string;
  readonly message: string;
  /** HTTP status, when the error came from a response. */
  readonly status?: number;
}

export function awsErrorInfo(error: unknown): AwsErrorInfo {
  if (error && typeof error === 'object') {
    const e = error as { name?: unknown; message?: unknown; $metadata?: { httpStatusCode?: unknown } };
    return {
      name: typeof e.name === 'string' ? e.name : 'Error',
      message: typeof e.message === 'string' ? e.message : String(error),
      status: typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined,
    };
  }
  return { name: 'Error', message: String(error) };
}

const THROTTLING = new Set([
  'ThrottlingException', 'Throttling', 'TooManyRequestsException', 'RequestLimitExceeded', 'ThrottledException',
  'SlowDown', 'RequestThrottled', 'RequestThrottledException', 'ProvisionedThroughputExceededException',
]);

/** A throttle or a server-side failure: worth retrying later (after the SDK's own retries gave up). */
export function isTransient(info: AwsErrorInfo): boolean {
  return THROTTLING.has(info.name) || info.name === 'ServerException' || info.name === 'ServiceUnavailable'
    || info.name === 'TimeoutError' || (info.status !== undefined && info.status >= 500);
}
