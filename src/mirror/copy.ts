/**
 * Copies one tagged image from a source registry to a destination registry through the OCI distribution API,
 * keeping every digest: the same manifest bytes, the same blobs.
 *
 * - Re-copies nothing that is already there: when the destination's tag already has the source's digest the
 *   image is UNCHANGED after two HEAD requests; a blob the destination has is skipped, one that another
 *   repository of the destination has (copied earlier in the run) is mounted.
 * - Blobs are streamed from source to destination (never a whole layer in memory), a few at a time.
 * - A multi-architecture index is copied with every platform manifest it lists (a subset would change the
 *   index, and so its digest); platform manifests are stored by digest, and the tag is written last, so it
 *   never points at a partial image.
 * - Transient failures are retried with backoff (a 429 or 503 waits its `Retry-After`, capped); a blob is
 *   restarted from its first byte (a fresh upload).
 * - Before each blob, the time left is checked: when it cannot finish in this invocation the copy stops with
 *   `OutOfTime` (what is stored stays stored, so the next invocation resumes where this one stopped); a blob
 *   too large for any single invocation fails with `TOO_LARGE` instead of being cut short. While a blob streams
 *   the deadline is watched too: one that slows down is stopped before it, its upload cancelled, with `OutOfTime`.
 *
 * Pure Node.js: no AWS SDK, no aws-cdk-lib.
 */
import { INDEX_TYPES, Manifest, MediaType, RegistryClient, RegistryError } from './oci-client';

export { compareVersions, selectTags } from './tags';

/** What a copy keeps clear of its deadline when it decides to wait or to stop a blob that is streaming. */
const DEADLINE_MARGIN_MS = 10_000;

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

/** The copy stopped before its deadline; everything stored so far stays, the next run resumes. */
export class OutOfTime extends Error {
  constructor(message: string, public readonly progress: CopyProgress) {
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

export interface CopyResult extends CopyProgress {
  /** `COPIED` (the tag now points at `digest`) or `UNCHANGED` (it already did). */
  readonly outcome: 'COPIED' | 'UNCHANGED';
  readonly digest: string;
  readonly mediaType: string;
  /** Manifests written (an index and its platform manifests count one each). */
  readonly manifests: number;
}

export interface CopyImageRequest {
  readonly sourceRepository: string;
  readonly destinationRepository: string;
  readonly tag: string;
}

export interface CopyOptions {
  /** Milliseconds left before the copy must stop. @default - no deadline */
  readonly timeLeft?: () => number;
  /** True when this invocation has not copied anything yet (then a blob that cannot fit is TOO_LARGE, not resumed). @default true */
  readonly freshInvocation?: boolean;
  /** Blobs copied at once. @default 3 */
  readonly concurrency?: number;
  /** Attempts per request or blob, first included. @default 4 */
  readonly attempts?: number;
  /** Milliseconds before the first retry (doubled each time, with jitter). @default 500 */
  readonly retryDelayMs?: number;
  /** Bytes per second assumed before a blob has been measured. @default 20 MB/s */
  readonly assumedBytesPerSecond?: number;
  /** Repositories of the destination known to hold a blob (digest -> repository), shared across copies of one run. */
  readonly knownBlobs?: Map<string, string>;
  /** Called after each retried failure, with the wait before the next attempt (for the log). */
  readonly onRetry?: (what: string, attempt: number, error: Error, waitMs: number) => void;
}

interface Descriptor {
  readonly mediaType?: string;
  readonly digest: string;
  readonly size: number;
  readonly urls?: string[];
}

/**
 * Layers that are not distributable (Windows base layers): their bytes stay with their URLs. Only the media type
 * says so (`application/vnd.docker.image.rootfs.foreign.diff.tar.gzip`, the OCI `...nondistributable...` types):
 * `urls` on a distributable layer are only alternative places to fetch it (OCI image-spec descriptor.md), and a
 * registry such as ECR refuses a manifest whose distributable layer it does not hold (MANIFEST_BLOB_UNKNOWN).
 */
function isForeign(d: Descriptor): boolean {
  return /foreign|nondistributable/.test(d.mediaType ?? '');
}

function parseManifest(manifest: Manifest, what: string): any {
  const json = JSON.parse(manifest.body.toString('utf-8'));
  if (json.schemaVersion !== 2) {
    throw new CopyError(`${what}: schema version ${json.schemaVersion} (Docker schema 1 images cannot be copied with their digest)`,
      FailureReason.UNSUPPORTED_MANIFEST, false);
  }
  return json;
}

function checkDescriptor(d: any, what: string): Descriptor {
  if (typeof d?.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(d.digest) || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new CopyError(`${what}: a descriptor has no valid sha256 digest and size`, FailureReason.UNSUPPORTED_MANIFEST, false);
  }
  return d;
}

/** Maps what a registry error means for the image. */
function classify(error: unknown, side: 'source' | 'destination'): unknown {
  if (!(error instanceof RegistryError)) {
    return error;
  }
  if (error.code === 'UNAUTHORIZED' || (side === 'source' && (error.status === 401 || error.status === 403))) {
    return new CopyError(`${side}: ${error.message}`, side === 'source' ? FailureReason.UNAUTHORIZED : FailureReason.DESTINATION_REJECTED, false);
  }
  if (error.retryable) {
    return new CopyError(`${side}: ${error.message}`, side === 'source' ? FailureReason.UPSTREAM_UNAVAILABLE : FailureReason.DESTINATION_REJECTED, true);
  }
  return new CopyError(`${side}: ${error.message}`, side === 'source' ? FailureReason.UPSTREAM_UNAVAILABLE : FailureReason.DESTINATION_REJECTED, false);
}

export class ImageCopier {
  private readonly attempts: number;
  private readonly retryDelayMs: number;
  private readonly concurrency: number;
  private readonly knownBlobs: Map<string, string>;
  private bytesPerSecond: number;
  private fresh: boolean;

  constructor(private readonly source: RegistryClient, private readonly destination: RegistryClient, private readonly options: CopyOptions = {}) {
    this.attempts = options.attempts ?? 4;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.concurrency = options.concurrency ?? 3;
    this.knownBlobs = options.knownBlobs ?? new Map();
    this.bytesPerSecond = options.assumedBytesPerSecond ?? 20 * 1024 * 1024;
    this.fresh = options.freshInvocation ?? true;
  }

  /** The source's digest of a tag, or a TAG_NOT_FOUND error. */
  public async sourceDigest(repository: string, tag: string): Promise<string> {
    const head = await this.retry(`HEAD ${repository}:${tag}`, 'source', () => this.source.headManifest(repository, tag));
    if (!head) {
      throw new CopyError(`${repository}:${tag} does not exist upstream (the tag or the repository is gone)`, FailureReason.TAG_NOT_FOUND, false);
    }
    return head.digest;
  }

  public async copy(request: CopyImageRequest): Promise<CopyResult> {
    const progress: CopyProgress = { blobsCopied: 0, blobsSkipped: 0, blobsMounted: 0, bytesCopied: 0 };
    const { sourceRepository: from, destinationRepository: to, tag } = request;
    const digest = await this.sourceDigest(from, tag);
    const current = await this.retry(`HEAD ${to}:${tag}`, 'destination', () => this.destination.headManifest(to, tag));
    if (current?.digest === digest) {
      return { outcome: 'UNCHANGED', digest, mediaType: current.mediaType, manifests: 0, ...progress };
    }
    // read by digest: the tag may move while we copy, the digest cannot
    const top = await this.readManifest(from, digest);
    let manifests = 0;
    if (INDEX_TYPES.includes(top.mediaType)) {
      const index = parseManifest(top, `${from}@${digest}`);
      const children: Descriptor[] = (index.manifests ?? []).map((d: any) => checkDescriptor(d, `${from}@${digest}`));
      for (const child of children) {
        if (await this.retry(`HEAD ${to}@${child.digest}`, 'destination', () => this.destination.headManifest(to, child.digest))) {
          continue; // a platform image copied before (by an earlier run, or another tag)
        }
        const manifest = await this.readManifest(from, child.digest);
        if (INDEX_TYPES.includes(manifest.mediaType)) {
          throw new CopyError(`${from}@${child.digest}: an index inside an index is not copied`, FailureReason.UNSUPPORTED_MANIFEST, false);
        }
        await this.copyBlobsOf(manifest, from, to, progress);
        await this.retry(`PUT ${to}@${child.digest}`, 'destination', () => this.destination.putManifest(to, child.digest, manifest));
        manifests++;
      }
    } else if (top.mediaType === MediaType.OCI_MANIFEST || top.mediaType === MediaType.DOCKER_MANIFEST) {
      await this.copyBlobsOf(top, from, to, progress);
    } else {
      throw new CopyError(`${from}:${tag} has the media type '${top.mediaType}', which the copy does not handle`, FailureReason.UNSUPPORTED_MANIFEST, false);
    }
    // the tag last: it points at a complete image or at its previous one, never at a partial one
    await this.retry(`PUT ${to}:${tag}`, 'destination', () => this.destination.putManifest(to, tag, top));
    return { outcome: 'COPIED', digest, mediaType: top.mediaType, manifests: manifests + 1, ...progress };
  }

  private async readManifest(repository: string, digest: string): Promise<Manifest> {
    const manifest = await this.retry(`GET ${repository}@${digest}`, 'source', () => this.source.getManifest(repository, digest));
    if (!manifest) {
      throw new CopyError(`${repository}@${digest} vanished upstream during the copy`, FailureReason.TAG_NOT_FOUND, true);
    }
    return manifest;
  }

  /** The config and layers of an image manifest, a few at a time, the largest first. */
  private async copyBlobsOf(manifest: Manifest, from: string, to: string, progress: CopyProgress): Promise<void> {
    const json = parseManifest(manifest, `${from}@${manifest.digest}`);
    const blobs = [json.config, ...(json.layers ?? [])].map(d => checkDescriptor(d, `${from}@${manifest.digest}`))
      .filter(d => !isForeign(d));
    const unique = [...new Map(blobs.map(b => [b.digest, b])).values()].sort((a, b) => b.size - a.size);
    let next = 0;
    let failure: unknown;
    const worker = async () => {
      while (failure === undefined && next < unique.length) {
        const blob = unique[next++];
        try {
          await this.copyBlob(blob, from, to, progress);
        } catch (error) {
          failure ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, unique.length) }, worker));
    if (failure !== undefined) {
      throw failure;
    }
  }

  private async copyBlob(blob: Descriptor, from: string, to: string, progress: CopyProgress): Promise<void> {
    if (await this.retry(`HEAD blob ${to}@${blob.digest}`, 'destination', () => this.destination.hasBlob(to, blob.digest))) {
      progress.blobsSkipped++;
      this.knownBlobs.set(blob.digest, to);
      return;
    }
    const elsewhere = this.knownBlobs.get(blob.digest);
    if (elsewhere && elsewhere !== to
      && await this.retry(`mount ${blob.digest}`, 'destination', () => this.destination.mountBlob(to, blob.digest, elsewhere))) {
      progress.blobsMounted++;
      this.knownBlobs.set(blob.digest, to);
      return;
    }
    this.checkTime(blob, progress);
    const started = Date.now();
    const bytes = await this.retry(`copy blob ${blob.digest}`, 'source', async () => {
      const body = await this.source.getBlob(from, blob.digest);
      const watch = this.watchDeadline(body);
      try {
        return await this.destination.uploadBlob(to, blob.digest, blob.size, body);
      } catch (error) {
        if (watch.stopped) {
          throw new OutOfTime(`stopped during blob ${blob.digest} (${blob.size} bytes) after ${Math.round((Date.now() - started) / 1000)} s: `
            + 'it streamed slower than measured and would not finish before the deadline; the upload was cancelled', progress);
        }
        throw error;
      } finally {
        watch.clear();
      }
    });
    const seconds = (Date.now() - started) / 1000;
    if (bytes > 8 * 1024 * 1024 && seconds > 0) {
      this.bytesPerSecond = bytes / seconds;
    }
    this.fresh = false;
    progress.blobsCopied++;
    progress.bytesCopied += bytes;
    this.knownBlobs.set(blob.digest, to);
  }

  /**
   * Watches the deadline while a blob streams: a blob that slows down after it started (a stalling upstream) is
   * stopped `DEADLINE_MARGIN_MS` before the deadline, its body destroyed, so the upload is cancelled and the copy
   * hands over with a reason (OutOfTime) instead of being killed by Lambda's timeout with none.
   */
  private watchDeadline(body: { destroy(error?: Error): void }): { readonly stopped: boolean; clear(): void } {
    const timeLeft = this.options.timeLeft;
    const watch = { stopped: false, clear: () => undefined as void };
    if (!timeLeft) {
      return watch;
    }
    const timer = setInterval(() => {
      if (timeLeft() <= DEADLINE_MARGIN_MS) {
        watch.stopped = true;
        clearInterval(timer);
        body.destroy(new Error('stopped before the deadline'));
      }
    }, 250);
    watch.clear = () => clearInterval(timer);
    return watch;
  }

  /** Starts a blob only when it can finish before the deadline, at the rate measured so far (twice the estimate, plus 10 s). */
  private checkTime(blob: Descriptor, progress: CopyProgress): void {
    const timeLeft = this.options.timeLeft?.();
    if (timeLeft === undefined) {
      return;
    }
    const needed = (blob.size / this.bytesPerSecond) * 2000 + DEADLINE_MARGIN_MS;
    if (needed <= timeLeft) {
      return;
    }
    if (this.fresh) {
      throw new CopyError(`blob ${blob.digest} (${blob.size} bytes) needs about ${Math.round(needed / 1000)} s at `
        + `${Math.round(this.bytesPerSecond / 1048576)} MB/s, more than one invocation has (${Math.round(timeLeft / 1000)} s)`, FailureReason.TOO_LARGE, false);
    }
    throw new OutOfTime(`stopped before blob ${blob.digest} (${blob.size} bytes): ${Math.round(timeLeft / 1000)} s left, about `
      + `${Math.round(needed / 1000)} s needed`, progress);
  }

  /** Runs `fn`, retrying transient failures with exponential backoff and full jitter. */
  private async retry<T>(what: string, side: 'source' | 'destination', fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (error instanceof OutOfTime || error instanceof CopyError) {
          throw error;
        }
        const retryable = error instanceof RegistryError && error.retryable;
        if (!retryable || attempt >= this.attempts) {
          // a streamed blob copy says which end failed: the source's bytes, or the registry receiving them
          throw classify(error, (error instanceof RegistryError && error.origin) || side);
        }
        // a 429 or 503 with Retry-After is waited out (capped): retrying sooner spends the attempts while it still refuses
        const wait = Math.max(Math.random() * this.retryDelayMs * 2 ** (attempt - 1), (error as RegistryError).retryAfterMs ?? 0);
        const timeLeft = this.options.timeLeft?.();
        if (timeLeft !== undefined && wait + DEADLINE_MARGIN_MS > timeLeft) {
          // waiting would run into the deadline: the image fails now with the registry's answer, retryable, not killed
          throw classify(error, (error as RegistryError).origin || side);
        }
        this.options.onRetry?.(what, attempt, error as Error, wait);
        await new Promise(r => setTimeout(r, wait));
      }
    }
  }
}
