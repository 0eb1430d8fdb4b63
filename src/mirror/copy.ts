/**
 * Copies one tagged image from a source registry to a destination registry through the OCI distribution API,
 * keeping every digest: the same manifest bytes, the same blobs.
 *
 * - Re-copies nothing that is already there: when the destination's tag already has the source's digest the
 *   image is UNCHANGED after two HEAD requests; a blob the destination has is skipped, one that another
 *   repository of the destination has (copied earlier in the run) is mounted.
 * - Blobs are streamed from source to destination (never a whole layer in memory), 4 at a time, the largest first,
 *   from one pool across every platform of an index.
 * - A multi-architecture index is copied with every platform manifest it lists (a subset would change the
 *   index, and so its digest); platform manifests are stored by digest, and the tag is written last, so it
 *   never points at a partial image.
 * - Transient failures are retried with backoff (a 429 or 503 waits its `Retry-After`, capped).
 * - A blob from byte 0 goes as one streamed PATCH when the deadline leaves time for it four times over
 *   (blob-stream.ts), else in chunks (blob-upload.ts); a stream that slows down goes on in chunks. A blob whose
 *   upload stops part-way (a transient failure, or the deadline) resumes from what the destination acknowledged,
 *   the rest of the source blob asked for by `Range`: stored bytes are not fetched again. When the source ignores
 *   `Range` or the destination cannot resume the session, the blob starts again from byte 0 (said by `onNote`).
 * - Before each blob, the time left is checked: when it cannot finish in this invocation the copy stops with
 *   `OutOfTime` (what is stored stays stored); a blob too large for any single invocation fails with `TOO_LARGE`.
 *   While a blob streams the deadline is watched too: one that slows down is stopped between chunks, or before
 *   the deadline, with `OutOfTime`, which hands over its open upload session (`uploads`) to the next invocation.
 *
 * Pure Node.js: no AWS SDK, no aws-cdk-lib.
 */
import { streamBlob } from './blob-stream';
import { ChunkedUpload, DEFAULT_CHUNK_BYTES, RestartBlob, UploadPaused, UploadSession, isSessionOf, startUpload, uploadStatus } from './blob-upload';
import { CopyError, CopyProgress, FailureReason, OutOfTime } from './copy-outcome';
import { DEADLINE_MARGIN_MS, watchDeadline } from './deadline';
import { Descriptor, blobsOf, checkDescriptor, parseManifest } from './image-manifest';
import { INDEX_TYPES, Manifest, MediaType, RegistryClient, RegistryError } from './oci-client';

export type { UploadSession } from './blob-upload';
export { CopyError, FailureReason, OutOfTime } from './copy-outcome';
export type { CopyProgress } from './copy-outcome';

export { compareVersions, selectTags } from './tags';

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
  /** Blobs copied at once, across every platform of an index. @default 4 (crane's default: go-containerregistry `pkg/crane/options.go`) */
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
  /** Upload sessions a previous invocation handed over (`OutOfTime.uploads`): their blobs resume where they stopped. @default none */
  readonly uploads?: readonly UploadSession[];
  /** Bytes per uploaded chunk (ECR takes 5 MiB to 20 MiB). @default DEFAULT_CHUNK_BYTES */
  readonly chunkBytes?: number;
  /** Called when a blob cannot resume and starts again from byte 0, with the reason (for the log). */
  readonly onNote?: (message: string, details: Record<string, unknown>) => void;
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
  private readonly chunkBytes: number;
  private bytesPerSecond: number;
  private fresh: boolean;
  /** Open upload sessions by digest: handed over by the last invocation, or kept by a failed attempt for the next. */
  private readonly sessions: Map<string, UploadSession>;
  /** Sessions of blobs stopped by the deadline, for the next invocation. */
  private readonly handover: UploadSession[] = [];

  constructor(private readonly source: RegistryClient, private readonly destination: RegistryClient, private readonly options: CopyOptions = {}) {
    this.attempts = options.attempts ?? 4;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.concurrency = options.concurrency ?? 4;
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    this.knownBlobs = options.knownBlobs ?? new Map();
    this.bytesPerSecond = options.assumedBytesPerSecond ?? 20 * 1024 * 1024;
    this.fresh = options.freshInvocation ?? true;
    this.sessions = new Map((options.uploads ?? []).map(u => [u.digest, u]));
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
      const missing: Array<{ digest: string; manifest: Manifest }> = [];
      for (const child of children) {
        if (await this.retry(`HEAD ${to}@${child.digest}`, 'destination', () => this.destination.headManifest(to, child.digest))) {
          continue; // a platform image copied before (by an earlier run, or another tag)
        }
        const manifest = await this.readManifest(from, child.digest);
        if (INDEX_TYPES.includes(manifest.mediaType)) {
          throw new CopyError(`${from}@${child.digest}: an index inside an index is not copied`, FailureReason.UNSUPPORTED_MANIFEST, false);
        }
        missing.push({ digest: child.digest, manifest });
      }
      // the blobs of every platform in one pool: a platform with fewer or smaller layers leaves no worker idle
      await this.copyBlobs(missing.flatMap(m => blobsOf(m.manifest, from)), from, to, progress);
      for (const { digest: child, manifest } of missing) {
        await this.retry(`PUT ${to}@${child}`, 'destination', () => this.destination.putManifest(to, child, manifest));
        manifests++;
      }
    } else if (top.mediaType === MediaType.OCI_MANIFEST || top.mediaType === MediaType.DOCKER_MANIFEST) {
      await this.copyBlobs(blobsOf(top, from), from, to, progress);
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

  /** Blobs, each once, `concurrency` at a time, the largest first. */
  private async copyBlobs(blobs: Descriptor[], from: string, to: string, progress: CopyProgress): Promise<void> {
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
    if (failure instanceof OutOfTime) {
      // every worker has stopped: hand over the sessions of all the blobs the deadline interrupted
      throw new OutOfTime(failure.message, failure.progress, [...this.handover]);
    }
    if (failure !== undefined) {
      // the image failed for good: the sessions the deadline stopped meanwhile go to no one, so are cancelled; a
      // retryable failure leaves them open, for the redelivered message (its uploads may name them) to resume
      if (!(failure as { retryable?: boolean }).retryable) {
        await Promise.all(this.handover.splice(0).map(session => this.destination.cancelUpload(to, session.location)));
      }
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
    const handedOver = this.sessions.get(blob.digest);
    this.checkTime(blob, blob.size - (handedOver?.offset ?? 0), progress);
    const started = Date.now();
    const bytes = await this.retry(`copy blob ${blob.digest}`, 'source', () => this.transfer(blob, from, to, progress, started));
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
   * One attempt at a blob: resumes its open session when there is one (else opens one), streams the rest of the
   * source blob into it in chunks and commits. Returns the bytes streamed by this attempt.
   */
  private async transfer(blob: Descriptor, from: string, to: string, progress: CopyProgress, started: number): Promise<number> {
    const watch = watchDeadline(this.options.timeLeft);
    let upload: ChunkedUpload | undefined;
    let resumed: UploadSession | undefined;
    let body: { destroy(error?: Error): void } | undefined;
    try {
      let session = resumed = await this.resumable(blob, to);
      // under the deadline's signal from the first request on: a source that holds back its answer is stopped too
      const source = await this.source.getBlob(from, blob.digest, session?.offset ?? 0, watch.signal);
      body = source.body;
      watch.onStop(() => source.body.destroy(new Error('stopped before the deadline')));
      if (session && source.offset !== session.offset) {
        this.note(`the source ignored the range request (200, not 206): blob ${blob.digest} starts again from byte 0`, blob, session);
        await this.destination.cancelUpload(to, session.location);
        session = resumed = undefined;
      }
      const opened = session ? { session, chunkBytes: this.chunkBytes } : await startUpload(this.destination, to, blob.digest, this.chunkBytes);
      upload = new ChunkedUpload(this.destination, to, blob.size, opened.session);
      if (!session && blob.size > 0 /* an empty blob: write() commits it with no PATCH */ && this.fits(blob.size, undefined, 4)) {
        const keepStreaming = (left: number, rate: number | undefined) => this.fits(left, rate);
        await streamBlob(upload, source.body, { chunkBytes: opened.chunkBytes, signal: watch.signal, keepStreaming });
      }
      // the rest in chunks: all of it, or what a stream that slowed down left (nothing when it streamed whole)
      await upload.write(source.body, { chunkBytes: opened.chunkBytes, signal: watch.signal, beforeChunk: bytes => this.fits(bytes) });
      return upload.sent;
    } catch (error) {
      body?.destroy();
      // the session that holds bytes: this attempt's, or the resumed one when the attempt failed before it sent any
      const open = upload ? (upload.session.offset > 0 ? upload.session : undefined) : resumed;
      const spoilt = error instanceof RestartBlob;
      // stored in the session, kept for the next attempt or invocation (unless the session is spoilt)
      progress.bytesCopied += open && !spoilt ? upload?.sent ?? 0 : 0;
      if (error instanceof UploadPaused || watch.stopped) {
        const kept = spoilt ? undefined : open; // a spoilt session is cancelled even under the deadline's stop
        if (kept) {
          this.handover.push(kept);
        } else if (upload) {
          await this.destination.cancelUpload(to, upload.session.location);
        }
        throw new OutOfTime(`stopped during blob ${blob.digest} (${blob.size} bytes) after ${Math.round((Date.now() - started) / 1000)} s: `
          + `it streamed slower than measured and would not finish before the deadline; ${kept
            ? `its upload session, holding ${kept.offset} bytes, is handed over to the next invocation`
            : 'the upload was cancelled'}`, progress);
      }
      if (spoilt && upload) {
        // the session is spoilt: cancelled, and the retry (if attempts are left) starts a new one from byte 0
        this.note(`${error.message}: blob ${blob.digest} starts again from byte 0`, blob, upload.session);
        await this.destination.cancelUpload(to, upload.session.location);
      } else if (open && error instanceof RegistryError && error.retryable) {
        this.sessions.set(blob.digest, open); // the next attempt goes on from the last acknowledged chunk
      } else if (upload) {
        await this.destination.cancelUpload(to, upload.session.location);
      }
      throw error;
    } finally {
      watch.clear();
    }
  }

  /** The open session of a blob, where the destination says it stands; undefined (with a note) when it cannot be resumed. */
  private async resumable(blob: Descriptor, to: string): Promise<UploadSession | undefined> {
    const session = this.sessions.get(blob.digest);
    this.sessions.delete(blob.digest);
    if (!session) {
      return undefined;
    }
    if (!isSessionOf(this.destination, to, session.location)) {
      this.note(`the handed-over upload location is not one of the destination's sessions of ${to}: blob ${blob.digest} starts again from byte 0`,
        blob, session);
      return undefined;
    }
    const status = await uploadStatus(this.destination, to, session).catch(error => {
      if (error instanceof RegistryError && !error.retryable) {
        return `the registry refused the upload session's status (${error.message})`; // a refusal costs a restart, never the image
      }
      this.sessions.set(blob.digest, session); // a transient failure: the next attempt asks again
      throw error instanceof RegistryError
        ? new RegistryError(error.message, error.status, error.retryable, error.code, 'destination', error.retryAfterMs) : error;
    });
    if (typeof status === 'string') {
      this.note(`${status}: blob ${blob.digest} starts again from byte 0`, blob, session);
      return undefined;
    }
    return status;
  }

  private note(message: string, blob: Descriptor, session: UploadSession): void {
    this.options.onNote?.(message, { digest: blob.digest, size: blob.size, offset: session.offset });
  }

  /** Whether `bytes` more can be streamed before the deadline, at `factor` (2) times what the measured rate (or `rate`, if slower) gives. */
  private fits(bytes: number, rate?: number, factor = 2): boolean {
    const timeLeft = this.options.timeLeft?.();
    const bytesPerSecond = rate === undefined ? this.bytesPerSecond : Math.min(rate, this.bytesPerSecond);
    return timeLeft === undefined || bytes <= 0 || (bytes / bytesPerSecond) * 1000 * factor + DEADLINE_MARGIN_MS <= timeLeft;
  }

  /** Starts a blob only when it can finish before the deadline, at the rate measured so far (twice the estimate, plus 10 s). */
  private checkTime(blob: Descriptor, remaining: number, progress: CopyProgress): void {
    const timeLeft = this.options.timeLeft?.();
    if (timeLeft === undefined) {
      return;
    }
    const needed = (remaining / this.bytesPerSecond) * 2000 + DEADLINE_MARGIN_MS;
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
