/**
 * What the mirror construct and its copy handler agree on: environment variables, event and message shapes,
 * metric names. Pure constants and types: both import this file, and nothing else crosses between them.
 */

export const MirrorEnv = {
  /** JSON array of `MirrorUpstreamConfig`. */
  UPSTREAMS: 'MIRROR_UPSTREAMS',
  /** The queue of images to copy (one message per image; the handler consumes it). */
  WORK_QUEUE_URL: 'MIRROR_WORK_QUEUE_URL',
  /** The dead-letter queue: each image that could not be copied, with the reason. */
  DEAD_LETTER_QUEUE_URL: 'MIRROR_DEAD_LETTER_QUEUE_URL',
  /** The dead-letter queue's ARN: a record from it is a redrive, not new work. */
  DEAD_LETTER_QUEUE_ARN: 'MIRROR_DEAD_LETTER_QUEUE_ARN',
  CACHE_NAME: 'CACHE_NAME',
  METRIC_NAMESPACE: 'METRIC_NAMESPACE',
} as const;

/** One mirrored upstream, as the handler receives it. */
export interface MirrorUpstreamConfig {
  /** The cache prefix the images are copied under. */
  readonly prefix: string;
  /** The upstream registry host (`mcr.microsoft.com`), reached over HTTPS. */
  readonly registry: string;
  /** `repository:tag` or `repository:pattern` (with `*`). */
  readonly images: string[];
  /** At most this many tags per pattern, the highest versions. */
  readonly maxTagsPerPattern: number;
  /** The Secrets Manager secret with `{"username", "accessToken"}`, when the upstream needs credentials. */
  readonly secretArn?: string;
}

/** `detail-type` of the events the handler reads. */
export const MirrorEvent = {
  /** A scheduled run (EventBridge): `detail.prefix` names the upstream whose images are listed and queued. */
  SCHEDULED: 'Scheduled Event',
  /** One image to copy (a work-queue message), or one that failed (a dead-letter message, with `reason`). */
  IMAGE: 'Mirror Image',
} as const;

/** The `source` of the handler's own messages. */
export const MIRROR_SOURCE = 'cdk-ecr-pull-through-cache.mirror';

/** The `detail` of a `Mirror Image` message. */
export interface MirrorImageDetail {
  readonly prefix: string;
  /** The upstream repository. */
  readonly repository: string;
  /** An exact tag, or (for a pattern that could not be listed) the pattern. */
  readonly tag: string;
  /** Invocations that already worked on this image and ran out of time. */
  readonly resumes?: number;
  /**
   * Blob uploads the last invocation stopped part-way (a hand-over only): the destination's upload session of each
   * blob and the bytes it holds, so the next invocation sends only the rest.
   */
  readonly uploads?: MirrorUploadDetail[];
  /** Dead-letter messages only: why the image was not copied (a `FailureReason`), and the error. */
  readonly reason?: string;
  readonly error?: string;
}

/** An open blob upload handed from one invocation to the next. */
export interface MirrorUploadDetail {
  readonly digest: string;
  /** The destination's upload location (only followed when it is one of the destination's sessions of the repository). */
  readonly location: string;
  /** Bytes of the blob the session holds. */
  readonly offset: number;
}

export const MirrorMetric = {
  /** Images whose tag now points at the upstream's digest after a copy. */
  COPIED: 'ImagesCopied',
  /** Images whose tag already had the upstream's digest. */
  UNCHANGED: 'ImagesUnchanged',
  /** Images that could not be copied; dimension `Reason`. Each is in the dead-letter queue with its reason. */
  FAILED: 'ImageCopyFailures',
  /** Invocations that ran out of time and handed the rest of an image to the next one. */
  RESUMED: 'ImageCopyResumes',
  /** Bytes of blobs streamed into the cache. */
  BYTES: 'BytesCopied',
  /** Images queued by a scheduled run. */
  QUEUED: 'ImagesQueued',
} as const;

/** An image is handed to a new invocation at most this many times; then it fails with `TooManyResumes`. */
export const MAX_RESUMES = 20;

/** Deliveries of one work message before a transient failure is given up (sent to the dead-letter queue with its reason). */
export const MAX_DELIVERIES = 3;

/**
 * The template metadata key, on the copy function, that lists each mirror: `[{ registryUrl, ecrRepositoryPrefix,
 * images }]`. A mirror has no `AWS::ECR::PullThroughCacheRule`, so `ecr-ptc --from-cdk-out` reads its prefix here.
 */
export const MIRROR_METADATA = 'cdk-ecr-pull-through-cache:mirrors';
