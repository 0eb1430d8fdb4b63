/**
 * Blob uploads in chunks, so that an upload stopped before a deadline is finished by the next invocation from
 * where it stopped instead of from byte 0.
 *
 * The protocol (OCI distribution spec v1.1, spec.md, "Pushing a blob in chunks" and "Pushing Blobs"):
 * - `POST /v2/<name>/blobs/uploads/` opens a session: `202` with its `Location` (and, optionally,
 *   `OCI-Chunk-Min-Length`, the smallest chunk the registry takes);
 * - each `PATCH <location>` carries the next chunk with `Content-Range: <first>-<last>` (inclusive) and
 *   `Content-Length`; the registry answers `202` with the session's new `Location` and `Range: 0-<last>`, and a
 *   chunk out of order with `416`;
 * - `GET <location>` asks a session's status: `204` with `Location` and `Range: 0-<last>`, or `404` when it is
 *   gone (expired, cancelled);
 * - `PUT <location>?digest=<digest>` commits it: the registry checks the digest of everything it received.
 *
 * ECR's registry endpoint maps these to its layer-part API: every part but the last must be at least 5 MiB
 * (`LayerPartTooSmallException`, https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CompleteLayerUpload.html)
 * and at most 20971520 bytes (`UploadLayerPart`, https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_UploadLayerPart.html);
 * `DEFAULT_CHUNK_BYTES` sits between the two. ECR also refuses a part whose first byte does not follow the last one
 * it holds (`InvalidLayerPartException`, same page), as the spec's `416` does. ECR does not document the status
 * `GET` of its registry endpoint: any answer but `204` is taken as "cannot resume" (`uploadStatus`).
 *
 * Memory stays flat: at most two chunks per blob being uploaded, one filling from the source stream while the other
 * is sent whole (one PATCH in flight at a time, as the protocol requires), so a chunk either reaches the registry or
 * is not counted, and the source and the destination stream at the same time. A chunk is the source's reads as they
 * came, never copied into a buffer of its own; they leave in one `writev`.
 *
 * Who checks a blob's digest: the registry that receives it, at the commit, over every byte of the session (resumed
 * or not), and the copy computes none of its own (it cost about a sixth of the copy's CPU, to repeat a check that is
 * made anyway). A commit the registry refuses with 400 means the bytes were not the blob's: `RestartBlob`.
 * - CNCF Distribution (the test and bench registry): the commit (`PUT`) hashes what the session holds and answers
 *   `400 DIGEST_INVALID` when it is not the digest asked for (distribution/distribution@v2.8.2
 *   registry/storage/blobwriter.go `validateBlob` -> `ErrBlobInvalidDigest`, registry/handlers/blobupload.go
 *   `PutBlobUploadComplete`); test/mirror/blob-resume.test.ts proves it against the real registry, fresh and resumed.
 * - Amazon ECR: `CompleteLayerUpload` fails with `InvalidLayerException`, "The layer digest calculation performed by
 *   Amazon ECR upon receipt of the image layer does not match the digest specified"
 *   (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CompleteLayerUpload.html, Errors).
 * - The OCI distribution spec: the `PUT` that closes an upload carries the digest, and a registry answers a digest
 *   that does not match the content with `DIGEST_INVALID` (spec.md, "Pushing Blobs", error codes).
 * Manifests are small and checked by the copy itself as it reads them (oci-client.ts `getManifest`).
 *
 * Pure Node.js: no AWS SDK, no aws-cdk-lib.
 */
import { RegistryClient, RegistryError } from './oci-client';
import { networkError, responseError } from './oci-http';

/** ECR's smallest layer part (all but the last). */
export const MIN_CHUNK_BYTES = 5 * 1024 * 1024;
/** ECR's largest layer part. */
export const MAX_CHUNK_BYTES = 20 * 1024 * 1024;
/** The chunk the copy sends: ECR's minimum with room to spare, and 8 MiB of memory per blob in flight. */
export const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * The answers to a PATCH that took its bytes: `202` (the spec), `204`, and ECR's `201` (ECR answers a PATCH with
 * 201 Created: https://github.com/openai/tart/issues/273, https://github.com/jdx/mise/pull/11376,
 * https://github.com/aws/containers-roadmap/issues/2831).
 */
export const PATCH_ACCEPTED: readonly number[] = [201, 202, 204];

/** An open upload session of a blob: where it is, and how many of its first bytes the registry holds. */
export interface UploadSession {
  readonly digest: string;
  readonly location: string;
  readonly offset: number;
}

/** The upload stopped between two chunks because the next one would not finish in time; its session stays open. */
export class UploadPaused extends Error {
  constructor(public readonly session: UploadSession) {
    super(`paused after ${session.offset} bytes`);
    this.name = 'UploadPaused';
  }
}

/**
 * The blob's upload session cannot be finished and must start again from byte 0 (cancelled, never resumed
 * again): the registry refused the digest of a resumed upload (the bytes it held before were not this blob's),
 * the bytes streamed from byte 0 have another digest, or the registry refused a chunk as out of order (416).
 * Retryable: the next attempt opens a new session, so a bad session costs one attempt, never a loop.
 */
export class RestartBlob extends RegistryError {
  constructor(message: string, status: number | undefined, origin: 'source' | 'destination', code?: string) {
    super(message, status, true, code, origin);
    this.name = 'RestartBlob';
  }
}

/** An error of one side of the copy, as a `RegistryError` that says which side failed and during what. */
function fromSide(error: unknown, origin: 'source' | 'destination', what: string): RegistryError {
  const e = networkError(error, what);
  const message = e.message.startsWith(what) ? e.message : `${what}: ${e.message}`;
  if (e instanceof RestartBlob) {
    return new RestartBlob(e.message, e.status, e.origin ?? origin, e.code); // said already; still spoils the session
  }
  return new RegistryError(message, e.status, e.retryable, e.code, e.origin ?? origin, e.retryAfterMs);
}

/** `Range: 0-<last>` as the number of bytes it says the registry holds, or undefined when absent or malformed. */
export function rangeEnd(header: string | string[] | undefined): number | undefined {
  const match = /^(?:bytes=)?0-(\d+)$/.exec(String(header ?? '').trim());
  return match ? Number(match[1]) + 1 : undefined;
}

/**
 * Whether a location handed over in a message belongs to this registry's upload sessions of `repository`: the
 * registry's token is sent with every request to it, so a location elsewhere is never followed.
 */
export function isSessionOf(client: RegistryClient, repository: string, location: string): boolean {
  try {
    const target = new URL(location, client.url);
    return target.origin === new URL(client.url).origin && target.pathname.startsWith(`/v2/${repository}/blobs/uploads/`);
  } catch {
    return false;
  }
}

/** Opens an upload session; the chunk size is raised to the registry's minimum when it states one. */
export async function startUpload(client: RegistryClient, repository: string, digest: string, chunkBytes: number):
Promise<{ session: UploadSession; chunkBytes: number }> {
  // the copy's blob attempts are retried on the source's side: an error here says it is the destination's
  const what = `upload ${digest} to ${repository}: start`;
  const res = await client.send('POST', `/v2/${repository}/blobs/uploads/`, { repository, push: true, headers: { 'Content-Length': '0' } })
    .catch(error => {
      throw fromSide(error, 'destination', what);
    });
  if (res.statusCode !== 202 || typeof res.headers.location !== 'string') {
    throw fromSide(await responseError(res, what), 'destination', what);
  }
  res.resume();
  const minimum = Number(res.headers['oci-chunk-min-length']);
  const session = { digest, location: res.headers.location, offset: 0 };
  return { session, chunkBytes: Number.isSafeInteger(minimum) ? Math.max(chunkBytes, minimum) : chunkBytes };
}

/**
 * Where a handed-over session stands (`GET <location>`), or the reason it cannot be resumed: gone (404, or the
 * 400/416 a registry answers for a session whose state no longer matches), holding nothing, or any other answer
 * (a registry that does not report upload status): the blob then starts again from byte 0, never fails for it.
 */
export async function uploadStatus(client: RegistryClient, repository: string, session: UploadSession, signal?: AbortSignal):
Promise<UploadSession | string> {
  const res = await client.send('GET', session.location, { repository, push: true, signal });
  if (res.statusCode !== 204 && res.statusCode !== 202) {
    const error = await responseError(res, 'status');
    return res.statusCode === 404 || res.statusCode === 400 || res.statusCode === 416
      ? `the registry no longer has the upload session (${error.message})`
      : `the registry does not report the upload session's status (${error.message})`;
  }
  res.resume();
  const offset = rangeEnd(res.headers.range);
  // "0-0" is ambiguous (nothing, or one byte): a session is only handed over after a whole chunk, so it means nothing
  if (offset === undefined || offset <= 1) {
    return `the upload session holds no bytes (Range '${res.headers.range ?? ''}')`;
  }
  const location = typeof res.headers.location === 'string' ? res.headers.location : session.location;
  return { digest: session.digest, location, offset };
}

export interface ChunkedUploadOptions {
  /** Bytes per PATCH (all but the last). */
  readonly chunkBytes: number;
  /** Asked before each chunk after the first of this call: false stops the upload between chunks (`UploadPaused`). */
  readonly beforeChunk?: (bytes: number) => boolean;
  /** Aborts the PATCH in flight (the deadline). */
  readonly signal?: AbortSignal;
}

/**
 * Sends one blob's bytes from `session.offset` on, in chunks, then commits it. `session` always says what the
 * registry has acknowledged, so a caller that stops it (or sees it fail) can hand it over.
 */
export class ChunkedUpload {
  public session: UploadSession;
  /** Bytes sent by this object (not those the session held before). */
  public sent = 0;
  /** Whether the session held bytes of an earlier invocation when this upload took it over. */
  private readonly resumed: boolean;
  /** Whether the registry answered a chunk with a Range that had not moved (ECR), so the session's offset is ours, not its. */
  private staleRange = false;

  constructor(public readonly client: RegistryClient, public readonly repository: string, public readonly size: number, session: UploadSession) {
    this.session = session;
    this.resumed = session.offset > 0;
  }

  /**
   * Streams `source` (the blob from `session.offset` on) into the session in chunks, and commits. The next chunk
   * fills while the last one is sent; a chunk is sent only once the one before it is acknowledged.
   */
  public async write(source: AsyncIterable<Buffer>, options: ChunkedUploadOptions): Promise<void> {
    if (this.session.offset === this.size && this.size > 0) {
      return this.commit(); // streamed whole already (blob-stream.ts): nothing left to read
    }
    const what = `upload ${this.session.digest} to ${this.repository}`;
    const chunkBytes = options.chunkBytes;
    // the source's reads as they came (no copy into a chunk buffer): the chunk being filled
    let pieces: Buffer[] = [];
    let filled = 0;
    let chunks = 0;
    /** The chunk being sent; it rejects with the destination's error, which the next flush (or the end) raises. */
    let sending: Promise<void> | undefined;
    const flush = async () => {
      await sending; // the session stands after the last chunk: this one starts there
      if (chunks > 0 && options.beforeChunk && !options.beforeChunk(filled)) {
        throw new UploadPaused(this.session);
      }
      const first = this.session.offset;
      const last = first + filled - 1;
      sending = this.patch(pieces, filled, options.signal).catch(error => {
        throw fromSide(error, 'destination', `${what}: PATCH ${first}-${last}`);
      });
      sending.catch(() => undefined); // raised by the next await of it, not as an unhandled rejection
      chunks++;
      pieces = [];
      filled = 0;
    };
    /** Where the source's bytes stand in the blob (the chunk in flight and the one filling included). */
    let received = this.session.offset;
    try {
      for await (const piece of source) {
        received += piece.length;
        if (received > this.size) {
          throw new RegistryError(`${what}: the source sent more than the ${this.size} bytes the manifest lists`, undefined, true, undefined, 'source');
        }
        let rest: Buffer = piece;
        while (rest.length > 0) {
          const take = Math.min(rest.length, chunkBytes - filled);
          pieces.push(take === rest.length ? rest : rest.subarray(0, take));
          filled += take;
          rest = rest.subarray(take);
          if (filled === chunkBytes) {
            await flush();
          }
        }
      }
      if (filled > 0) {
        await flush();
      }
      await sending;
    } catch (error) {
      // the chunk in flight settles first, so `session` says what the registry holds when the caller hands it over
      await sending?.catch(() => undefined);
      // a chunk the destination refused says so already; anything else failed while the source's bytes came in
      throw error instanceof UploadPaused || (error instanceof RegistryError && error.origin) ? error : fromSide(error, 'source', `${what}: reading the source`);
    }
    if (this.session.offset !== this.size) {
      throw new RegistryError(`${what}: the source sent ${this.session.offset} of ${this.size} bytes`, undefined, true, undefined, 'source');
    }
    await this.commit();
  }

  /** Closes the session with the blob's digest (`PUT ?digest=`): the registry checks every byte it holds against it. */
  public async commit(): Promise<void> {
    const what = `upload ${this.session.digest} to ${this.repository}`;
    const commit = new URL(this.session.location, this.client.url);
    commit.searchParams.set('digest', this.session.digest);
    const put = await this.client.send('PUT', commit.toString(), { repository: this.repository, push: true, headers: { 'Content-Length': '0' } })
      .catch(error => {
        throw fromSide(error, 'destination', `${what}: commit`);
      });
    if (put.statusCode !== 201) {
      const refused = fromSide(await responseError(put, `${what}: commit`), 'destination', `${what}: commit`);
      // the registry hashed every byte of the session and refused the digest (see the top of this file)
      if (put.statusCode === 400) {
        throw this.staleRange
          ? new RestartBlob(`the registry refused the digest of an upload whose Range did not advance (${refused.message})`, 400, 'destination', refused.code)
          : this.resumed
          // the first bytes came from another invocation: they were not this blob's
            ? new RestartBlob(`the registry refused the digest of the resumed upload (${refused.message})`, 400, 'destination', refused.code)
            : new RestartBlob(`${what}: the source sent ${this.size} bytes with another digest: the registry refused it at the commit (${refused.message})`,
              400, 'source', refused.code);
      }
      throw refused;
    }
    put.resume();
  }

  /** One chunk; the session moves on only when the registry acknowledges exactly these bytes. */
  private async patch(chunk: readonly Buffer[], length: number, signal: AbortSignal | undefined): Promise<void> {
    const first = this.session.offset;
    const last = first + length - 1;
    const res = await this.client.send('PATCH', this.session.location, {
      repository: this.repository,
      push: true,
      body: chunk,
      signal,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${first}-${last}` },
    });
    if (!PATCH_ACCEPTED.includes(res.statusCode ?? 0)) {
      const error = await responseError(res, `upload ${this.session.digest} to ${this.repository}: PATCH ${first}-${last}`);
      // 416: the session does not stand where this upload thinks (spec.md "Pushing a blob in chunks"); it is not resumed
      throw res.statusCode === 416
        ? new RestartBlob(`the registry refused the chunk ${first}-${last} as out of order (${error.message})`, 416, 'destination', error.code)
        : error;
    }
    res.resume();
    const held = rangeEnd(res.headers.range);
    const location = typeof res.headers.location === 'string' ? res.headers.location : this.session.location;
    if (held !== undefined && held <= first) {
      // A Range that has not moved past what was acknowledged before this chunk: ECR answers the second and later
      // PATCHes of a session with the first one's Range, while it stores every chunk (aws/containers-roadmap#2831;
      // crashappsec/chalk#682 counts the bytes sent the same way). The chunk was accepted (2xx), so the session moves
      // on by its bytes; were any really lost, the commit's digest check refuses the blob and it starts again.
      this.staleRange = true;
    } else if (held !== undefined && held !== last + 1) {
      // ahead of the bytes sent, or inside this chunk: the session does not stand where its bytes say, never trusted again
      this.session = { ...this.session, location }; // cancelled where the registry has it now (Distribution's moves on)
      throw new RestartBlob(`the registry answered the chunk ${first}-${last} with Range '${res.headers.range}', which does not end at byte ${last}`,
        res.statusCode, 'destination');
    }
    this.sent += length;
    this.session = { digest: this.session.digest, location, offset: last + 1 };
  }
}
