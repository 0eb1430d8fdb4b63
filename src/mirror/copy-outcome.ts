/**
 * How a copy of one image ends when it does not succeed: a `CopyError` with its reason (the `Reason` dimension
 * of the failure metric), or `OutOfTime`, a clean stop before the deadline that a new invocation resumes.
 *
 * Pure Node.js: no AWS SDK, no aws-cdk-lib.
 */
import type { UploadSession } from './blob-upload';

/** Why an image could not be copied (the `Reason` dimension of the failure metric). */
export const FailureReason = {
  /** The tag (or the repository) does not exist upstream (any more). */
  TAG_NOT_FOUND: 'TagNotFound',
  /** The upstream refused the credentials, or asks for some and none are set. */
  UNAUTHORIZED: 'Unauthorized',
  /** The manifest is of a kind the copy does not handle (Docker schema 1, an unknown media type). */
  UNSUPPORTED_MANIFEST: 'UnsupportedManifest',
  /** A blob is too large to stream within one invocation at the measured rate. */
  TOO_LARGE: 'TooLarge',
  /** The upstream kept failing (5xx, resets, short bodies) through every retry. */
  UPSTREAM_UNAVAILABLE: 'UpstreamUnavailable',
  /** The destination refused what was pushed (no repository, denied, invalid). */
  DESTINATION_REJECTED: 'DestinationRejected',
  /** A tag pattern matched nothing upstream. */
  NO_MATCHING_TAG: 'NoMatchingTag',
  /** The image did not finish within the allowed number of invocations. */
  TOO_MANY_RESUMES: 'TooManyResumes',
  /** The upstream credentials secret still holds the placeholder the construct created. */
  CREDENTIALS_NOT_SET: 'CredentialsNotSet',
  /** Anything else (a bug, an unexpected answer): see the log line. */
  INTERNAL: 'Internal',
} as const;

/** A copy that failed, with its reason and whether trying again later may help. */
export class CopyError extends Error {
  constructor(message: string, public readonly reason: string, public readonly retryable: boolean) {
    super(message);
    this.name = 'CopyError';
  }
}

/** The copy stopped before its deadline; everything stored so far stays, the next run resumes (with these open uploads). */
export class OutOfTime extends Error {
  constructor(message: string, public readonly progress: CopyProgress, public readonly uploads: readonly UploadSession[] = []) {
    super(message);
    this.name = 'OutOfTime';
  }
}

export interface CopyProgress {
  blobsCopied: number;
  blobsSkipped: number;
  blobsMounted: number;
  bytesCopied: number;
}
