/**
 * A blob sent as ONE streamed PATCH: the source GET's body piped into the upload session's PATCH as it comes (chunked
 * transfer encoding, no `Content-Range`), with backpressure, then committed by `ChunkedUpload.commit` (`PUT ?digest=`).
 * This is how crane (go-containerregistry `pkg/v1/remote/write.go`: `streamBlob`, then `commitBlob`) and docker push
 * send a layer; the OCI distribution spec formalises only the monolithic and the chunked pushes, and the streamed
 * PATCH is the Docker registry API's "stream upload" that CNCF Distribution (registry/handlers/blobupload.go
 * `PatchBlobData`: a PATCH without `Content-Range` and `Content-Length` is appended as it streams) and ECR take.
 * ECR: docker push and podman stream each layer as one PATCH with chunked transfer encoding
 * (https://github.com/kitops-ml/kitops/issues/328), and that is the push ECR's registry endpoint serves; its 5 MiB part
 * minimum (`LayerPartTooSmallException`) is for parts other than the last, and one PATCH has only a last one (not
 * verified against a live ECR here). ECR mishandles the second and later PATCHes of one session (201 with a `Range`
 * that does not advance, while it stores the bytes: https://github.com/aws/containers-roadmap/issues/2831), which one
 * PATCH never meets; the chunks count the bytes sent instead (blob-upload.ts `patch`).
 *
 * What the chunks were for, kept:
 * - The deadline. The copy streams a blob only when the whole of it fits in the time left four times over at the
 *   rate measured (copy.ts); while it streams, `keepStreaming` is asked every `checkEveryMs` with the rate of the
 *   last seconds, and when the rest no longer fits, the PATCH is ended where it stands (at least `chunkBytes` into
 *   the blob: ECR's part minimum) and acknowledged, and the rest goes in chunks, which pause and hand over between
 *   chunks (blob-upload.ts). A stream cut by the deadline's hard stop (a source that stalls outright) asks the
 *   registry what it holds (`GET <location>`) and hands that over; a registry that cannot say has the blob start
 *   again from byte 0 (Distribution cancels a session whose stored size no longer matches its state).
 * - Retries mid-blob. A source cut mid-stream: the bytes received are all the blob's first bytes (the commit checks
 *   that), so the PATCH is ended cleanly there when it holds at least `chunkBytes` and the retry asks the source for
 *   the rest by `Range`; shorter, it is aborted and the retry starts from byte 0. A destination that fails mid-stream:
 *   the registry is asked what it holds, and the retry resumes from there or starts again from byte 0.
 * - Memory flat: the source is paused while the request's buffer is full (`write` returns false), as `pipe` does.
 * - Every digest checked: by the receiving registry at the commit, over every byte of the session (blob-upload.ts).
 *
 * Pure Node.js: no AWS SDK, no aws-cdk-lib.
 */
import * as http from 'http';
import { ChunkedUpload, PATCH_ACCEPTED, RestartBlob, rangeEnd, uploadStatus } from './blob-upload';
import { RegistryError, networkError, responseError } from './oci-http';

export interface StreamOptions {
  /** The fewest bytes a streamed PATCH may hold when it ends before the blob does (ECR's part minimum: 5 MiB). */
  readonly chunkBytes: number;
  /**
   * Asked while the blob streams, with the bytes left and the rate of the last seconds (undefined in the first
   * second): false ends the PATCH where it stands (after `chunkBytes` at least) and leaves the rest to the chunks.
   */
  readonly keepStreaming?: (bytesLeft: number, bytesPerSecond: number | undefined) => boolean;
  /** Aborts the PATCH (the deadline's hard stop). */
  readonly signal?: AbortSignal;
  /** How often `keepStreaming` is asked. @default 250 */
  readonly checkEveryMs?: number;
}

/** How the pump of the source into the PATCH stopped. */
type Stop = { kind: 'end' } | { kind: 'switch' } | { kind: 'source'; error: unknown } | { kind: 'destination'; error: unknown };

/** Milliseconds the registry gets to say what a broken session holds (deadline.ts: what follows the deadline's stop). */
const STATUS_TIMEOUT_MS = 4_000;

/**
 * Streams `source` (the blob from byte 0; `upload.session.offset` must be 0) into the session in one PATCH. Returns
 * when the PATCH is acknowledged: with every byte (then `upload.commit()`), or ended early for the deadline (then
 * `upload.write(source, ...)` sends the rest, from the same source stream, in chunks). `upload.session` says what
 * the registry holds whatever happens, so the caller can hand it over or resume it.
 */
export async function streamBlob(upload: ChunkedUpload, source: http.IncomingMessage, options: StreamOptions): Promise<void> {
  const { client, repository, size } = upload;
  const start = upload.session;
  if (start.offset !== 0) {
    throw new Error(`a streamed upload starts at byte 0, not ${start.offset}`);
  }
  const what = `upload ${start.digest} to ${repository}`;
  const patchWhat = `${what}: PATCH 0-${size - 1} (streamed)`;
  let streamed = 0;
  let request: http.ClientRequest;
  let response: Promise<http.IncomingMessage>;
  try {
    ({ request, response } = client.openStream('PATCH', start.location, {
      repository, push: true, signal: options.signal, headers: { 'Content-Type': 'application/octet-stream' },
    }));
  } catch (error) {
    throw destinationError(error, patchWhat);
  }
  request.flushHeaders(); // the registry hears of the PATCH now (and may refuse it) rather than with the first bytes
  let stop = await new Promise<Stop>(resolve => {
    let switching = false;
    let done = false;
    const window: Array<{ at: number; bytes: number }> = [{ at: Date.now(), bytes: 0 }];
    const timer = setInterval(() => {
      const now = Date.now();
      window.push({ at: now, bytes: streamed });
      while (window.length > 2 && now - window[1].at >= 2_000) {
        window.shift(); // the rate of the last two seconds or so: a stall shows at once, not diluted by a fast start
      }
      const seconds = (now - window[0].at) / 1000;
      const rate = seconds >= 1 ? (streamed - window[0].bytes) / seconds : undefined;
      if (!switching && options.keepStreaming && !options.keepStreaming(size - streamed, rate)) {
        switching = true;
        if (streamed >= options.chunkBytes) {
          finish({ kind: 'switch' });
        }
      }
    }, options.checkEveryMs ?? 250);
    const onData = (piece: Buffer) => {
      streamed += piece.length;
      if (streamed > size) {
        finish({ kind: 'source', error: new RegistryError(`${what}: the source sent more than the ${size} bytes the manifest lists`, undefined, true, undefined, 'source') });
        return;
      }
      if (!request.write(piece)) {
        source.pause(); // the registry takes the bytes slower than the source sends them: memory stays flat
      }
      if (switching && streamed >= options.chunkBytes && streamed < size) {
        finish({ kind: 'switch' });
      }
    };
    const onDrain = () => !done && source.resume();
    const onEnd = () => finish({ kind: 'end' });
    const onSourceError = (error: unknown) => finish({ kind: 'source', error });
    const onSourceClose = () => !source.complete && finish({ kind: 'source', error: new Error('the source closed the blob before its end') });
    function finish(how: Stop): void {
      if (done) {
        return;
      }
      done = true;
      clearInterval(timer);
      source.off('data', onData).off('end', onEnd).off('error', onSourceError).off('close', onSourceClose);
      request.off('drain', onDrain);
      source.pause(); // what it still holds is the rest of the blob, for the chunks (switch)
      resolve(how);
    }
    request.on('drain', onDrain);
    // the registry refused or broke before the body was sent (a 4xx, a reset): stop pumping into it
    response.then(res => !PATCH_ACCEPTED.includes(res.statusCode ?? 0) && finish({ kind: 'destination', error: undefined }),
      error => finish({ kind: 'destination', error }));
    source.on('data', onData).once('end', onEnd).once('error', onSourceError).once('close', onSourceClose);
    if (source.destroyed && !source.complete) {
      // cut while the session was being opened: its events are gone with it
      finish({ kind: 'source', error: source.errored ?? new Error('the source closed the blob before its end') });
      return;
    }
    source.resume();
  });

  if (stop.kind === 'end' && streamed < size) {
    // a body that ends cleanly but short (a chunked answer's early last chunk, a Content-Length below the manifest's
    // size) is a cut like any other: never ended as if whole, nor kept below one chunk (ECR's 5 MiB part minimum)
    stop = { kind: 'source', error: new Error(`the source ended the blob after ${streamed} of its ${size} bytes`) };
  }
  if (stop.kind === 'destination' || (stop.kind === 'source' && (streamed < options.chunkBytes || streamed >= size || options.signal?.aborted))) {
    // the PATCH cannot end cleanly: aborted, and the registry asked what it kept
    request.destroy();
    const error = stop.kind === 'source' ? sourceError(stop.error, what) : await patchError(response, stop.error, patchWhat);
    await settle(upload, options.chunkBytes);
    throw error;
  }
  // end of the blob, a switch to chunks, or a source cut after `chunkBytes`: the bytes sent are the blob's first ones
  request.end();
  let res: http.IncomingMessage;
  try {
    res = await response;
  } catch (error) {
    await settle(upload, options.chunkBytes);
    throw destinationError(error, patchWhat);
  }
  if (!PATCH_ACCEPTED.includes(res.statusCode ?? 0)) {
    const error = await patchError(response, undefined, patchWhat);
    await settle(upload, options.chunkBytes);
    throw error;
  }
  res.resume();
  const held = rangeEnd(res.headers.range);
  const location = typeof res.headers.location === 'string' ? res.headers.location : start.location;
  if (held !== undefined && held !== streamed) {
    upload.session = { ...start, location }; // cancelled where the registry has it now (Distribution's moves on)
    throw new RestartBlob(`${patchWhat}: sent ${streamed} bytes, the registry answered Range '${res.headers.range}'`, res.statusCode, 'destination');
  }
  upload.sent += streamed;
  upload.session = { digest: start.digest, location, offset: streamed };
  if (stop.kind === 'source') {
    throw sourceError(stop.error, what); // the retry asks the source for the rest, from `streamed` on
  }
}

/** The registry's refusal of the streamed PATCH (its status and error code), or the network error that broke it. */
async function patchError(response: Promise<http.IncomingMessage>, broken: unknown, what: string): Promise<RegistryError> {
  if (broken !== undefined) {
    return destinationError(broken, what);
  }
  const res = await response.catch(e => e);
  if (!(res instanceof http.IncomingMessage)) {
    return destinationError(res, what);
  }
  const error = await responseError(res, what);
  return error.status === 416
    ? new RestartBlob(`the registry refused the streamed upload as out of order (${error.message})`, 416, 'destination', error.code)
    : new RegistryError(error.message, error.status, error.retryable, error.code, 'destination', error.retryAfterMs);
}

function destinationError(error: unknown, what: string): RegistryError {
  const e = networkError(error, what);
  return new RegistryError(e.message.startsWith(what) ? e.message : `${what}: ${e.message}`, e.status, e.retryable, e.code, 'destination', e.retryAfterMs);
}

function sourceError(error: unknown, what: string): RegistryError {
  if (error instanceof RegistryError && error.origin) {
    return error;
  }
  const e = networkError(error, `${what}: reading the source`);
  return new RegistryError(e.message, e.status, e.retryable, e.code, 'source', e.retryAfterMs);
}

/**
 * After a broken stream: what the registry holds of the session (`GET <location>`), so it can be resumed or handed
 * over; when it cannot say (Distribution cancels such a session, ECR does not document the status request), the
 * session stays at 0 bytes and the blob starts again from byte 0.
 */
async function settle(upload: ChunkedUpload, chunkBytes: number): Promise<void> {
  // its own timeout: when the deadline stopped the stream, the deadline's signal has fired already
  const status = await uploadStatus(upload.client, upload.repository, upload.session, AbortSignal.timeout(STATUS_TIMEOUT_MS)).catch(() => undefined);
  // less than a chunk is not kept: a first part below ECR's 5 MiB minimum fails the commit once more parts follow
  if (status && typeof status !== 'string' && status.offset >= chunkBytes && status.offset < upload.size) {
    upload.session = status;
    upload.sent += status.offset; // stored by this attempt: counted, and not fetched again
  }
}
