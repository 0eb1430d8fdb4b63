import { randomBytes } from 'crypto';
import * as http from 'http';
import { AddressInfo } from 'net';
import { CopyError, FailureReason, ImageCopier, OutOfTime } from '../../src/mirror/copy';
import { RegistryClient } from '../../src/mirror/oci-client';
import { OciRegistry, digestOf, fetchBlobDigest, fetchManifest, pushImage, startRegistry } from '../support/oci-registry';

/**
 * A blob from byte 0 goes as ONE streamed PATCH (src/mirror/blob-stream.ts), between two CNCF Distribution registries
 * on loopback, and what the chunks were for still holds: a stream cut by the source or by the destination, the
 * deadline during a stream, and a registry that refuses the digest. In front of either registry, a tap proxy records
 * every request (method, path, Content-Range, Transfer-Encoding, body bytes) and can cut a request's body, cut a
 * response's body, or flip a byte of it.
 */
let source: OciRegistry;
let destination: OciRegistry;

beforeAll(async () => {
  [source, destination] = await Promise.all([startRegistry(), startRegistry({ basicAuth: true })]);
});
afterAll(async () => {
  await Promise.all([source?.stop(), destination?.stop()]);
});

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly contentRange?: string;
  readonly transferEncoding?: string;
  readonly status?: number;
  bytes: number;
  /** Response body bytes (blob GETs). */
  served: number;
}

interface TapOptions {
  /** Cut the client's connection after this many bytes of the request's body. */
  readonly cutRequest?: (method: string, path: string) => number | undefined;
  /** Cut the client's connection 200 ms after this many bytes of the response's body (the bytes before it flow on meanwhile). */
  readonly cutResponse?: (method: string, path: string) => number | undefined;
  /** Flip one byte of the response's body at this offset. */
  readonly flipResponse?: (method: string, path: string) => number | undefined;
  /** After this many bytes of the response's body, stop sending it (the connection stays open). */
  readonly stallResponse?: (method: string, path: string) => number | undefined;
  /** End the response's body cleanly after this many bytes (a chunked answer's early last chunk). */
  readonly endResponse?: (method: string, path: string) => number | undefined;
  /** Changes the answer's headers. */
  readonly answerHeaders?: (method: string, path: string, headers: http.IncomingHttpHeaders) => http.IncomingHttpHeaders;
  /** Answer at once with this status and registry error code (its body 50 ms after its head), not forwarded, the request's body drained meanwhile. */
  readonly refuse?: (method: string, path: string) => { status: number; code: string } | undefined;
  /** Never forward nor answer (a registry that stopped answering; the connection stays open). */
  readonly ignore?: (method: string, path: string) => boolean;
}

interface Tap {
  readonly endpoint: string;
  readonly seen: Seen[];
  stop(): Promise<void>;
}

async function startTap(target: string, options: TapOptions = {}): Promise<Tap> {
  const upstream = new URL(target);
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const record: Seen = {
      method,
      path,
      bytes: 0,
      served: 0,
      contentRange: req.headers['content-range'] as string | undefined,
      transferEncoding: req.headers['transfer-encoding'] as string | undefined,
    };
    seen.push(record);
    const cutRequest = options.cutRequest?.(method, path);
    const cutResponse = options.cutResponse?.(method, path);
    const flip = options.flipResponse?.(method, path);
    const stall = options.stallResponse?.(method, path);
    const endAt = options.endResponse?.(method, path);
    const refusal = options.refuse?.(method, path);
    if (refusal) {
      // the head first, the body 50 ms later, as two packets: a client that drops the connection on the head loses it
      res.writeHead(refusal.status, { 'content-type': 'application/json' }).flushHeaders();
      setTimeout(() => res.end(JSON.stringify({ errors: [{ code: refusal.code, message: 'refused by the tap' }] })), 50);
      req.on('data', (chunk: Buffer) => record.bytes += chunk.length);
      return;
    }
    if (options.ignore?.(method, path)) {
      req.resume();
      return;
    }
    const proxied = http.request({ host: upstream.hostname, port: upstream.port, method, path, headers: req.headers }, upstreamRes => {
      (record as { status?: number }).status = upstreamRes.statusCode;
      res.writeHead(upstreamRes.statusCode ?? 502, options.answerHeaders?.(method, path, upstreamRes.headers) ?? upstreamRes.headers);
      upstreamRes.on('data', (chunk: Buffer) => {
        let piece = chunk;
        if (flip !== undefined && flip >= record.served && flip < record.served + piece.length) {
          piece = Buffer.from(piece);
          piece[flip - record.served] = 255 - piece[flip - record.served]; // another byte, whatever it was
        }
        if (endAt !== undefined && record.served + piece.length >= endAt) {
          res.end(piece.subarray(0, Math.max(0, endAt - record.served)));
          record.served = endAt;
          upstreamRes.destroy();
          return;
        }
        if (stall !== undefined && record.served + piece.length > stall) {
          res.write(piece.subarray(0, Math.max(0, stall - record.served)));
          record.served = stall;
          upstreamRes.pause(); // never resumed: the source stalls, the connection stays open
          return;
        }
        if (cutResponse !== undefined && record.served + piece.length >= cutResponse) {
          res.write(piece.subarray(0, Math.max(0, cutResponse - record.served)), () => setTimeout(() => res.socket?.destroy(), 200));
          record.served = cutResponse;
          upstreamRes.destroy();
          return;
        }
        record.served += piece.length;
        res.write(piece);
      });
      upstreamRes.on('end', () => res.end());
    });
    proxied.on('error', () => res.socket?.destroy());
    req.on('data', (chunk: Buffer) => {
      if (cutRequest !== undefined && record.bytes + chunk.length >= cutRequest) {
        proxied.write(chunk.subarray(0, Math.max(0, cutRequest - record.bytes)));
        record.bytes = cutRequest;
        req.socket.destroy(); // the connection drops in the middle of the upload
        proxied.destroy();
        return;
      }
      record.bytes += chunk.length;
      proxied.write(chunk);
    });
    req.on('end', () => proxied.end());
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    stop: () => new Promise<void>(resolve => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const CHUNK = 256 * 1024;
let taps: Tap[] = [];
afterEach(async () => {
  await Promise.all(taps.map(t => t.stop()));
  taps = [];
});
async function tap(target: string, options?: TapOptions): Promise<Tap> {
  const started = await startTap(target, options);
  taps.push(started);
  return started;
}

function copier(sourceUrl: string, destinationUrl: string, options: ConstructorParameters<typeof ImageCopier>[2] = {}): ImageCopier {
  const to = new RegistryClient({ url: destinationUrl, authorization: destination.authorization });
  return new ImageCopier(new RegistryClient({ url: sourceUrl }), to,
    { retryDelayMs: 10, chunkBytes: CHUNK, concurrency: 1, ...options }); // one blob at a time: each one's requests in order
}

const uploadsOf = (t: Tap, repository: string) => t.seen.filter(s => s.path.startsWith(`/v2/${repository}/blobs/uploads/`));

test('a blob from byte 0 goes as one streamed PATCH (chunked, no Content-Range) between the POST and the commit', async () => {
  const big = randomBytes(3 * CHUNK + 12_345);
  const pushed = await pushImage(source, 'stream/app', 'v1', [big]);
  const to = await tap(destination.url);
  const result = await copier(source.url, to.endpoint).copy({ sourceRepository: 'stream/app', destinationRepository: 'm/stream/app', tag: 'v1' });
  expect(result).toMatchObject({ outcome: 'COPIED', blobsCopied: 2 });
  const config = JSON.parse(String(pushed.manifest)).config;
  // the largest blob first: for each blob, POST, one PATCH with every byte streamed, then PUT ?digest=
  expect(uploadsOf(to, 'm/stream/app').map(s => [s.method, s.contentRange, s.transferEncoding, s.bytes, s.status])).toEqual([
    ['POST', undefined, undefined, 0, 202],
    ['PATCH', undefined, 'chunked', big.length, 202],
    ['PUT', undefined, undefined, 0, 201],
    ['POST', undefined, undefined, 0, 202],
    ['PATCH', undefined, 'chunked', config.size, 202],
    ['PUT', undefined, undefined, 0, 201],
  ]);
  expect(uploadsOf(to, 'm/stream/app').filter(s => s.method === 'PUT').map(s => new URL(s.path, to.endpoint).searchParams.get('digest')))
    .toEqual([digestOf(big), config.digest]);
  expect(digestOf((await fetchManifest(destination, 'm/stream/app', 'v1'))!)).toBe(pushed.digest);
  expect(await fetchBlobDigest(destination, 'm/stream/app', digestOf(big))).toBe(digestOf(big));
});

test('the source cuts the stream before one chunk went: the PATCH is aborted (never ended as if whole), and the retry starts again from byte 0', async () => {
  const big = randomBytes(900_000);
  const pushed = await pushImage(source, 'srccut/app', 'v1', [big]);
  let cut = false;
  const from = await tap(source.url, {
    cutResponse: (method, path) => (method === 'GET' && path.endsWith(digestOf(big)) && !cut ? (cut = true, 100_000) : undefined),
  });
  const to = await tap(destination.url);
  const result = await copier(from.endpoint, to.endpoint).copy({ sourceRepository: 'srccut/app', destinationRepository: 'm/srccut/app', tag: 'v1' });
  expect(result.outcome).toBe('COPIED');
  // fewer bytes than a chunk (ECR's part minimum): nothing kept, the blob is asked for again whole, and streamed again
  expect(from.seen.filter(s => s.method === 'GET' && s.path.endsWith(digestOf(big))).map(s => s.served)).toEqual([100_000, big.length]);
  const patches = uploadsOf(to, 'm/srccut/app').filter(s => s.method === 'PATCH');
  expect(patches[0].bytes).toBeLessThanOrEqual(100_000);
  expect(patches[0].status).toBeUndefined(); // aborted: the registry never saw its end, so never answered it
  expect(patches.slice(1).map(s => [s.contentRange, s.bytes])).toEqual([[undefined, big.length], [undefined, expect.any(Number)]]);
  // the broken session was asked about, then cancelled
  expect(uploadsOf(to, 'm/srccut/app').map(s => s.method).slice(0, 4)).toEqual(['POST', 'PATCH', 'GET', 'DELETE']);
  expect(digestOf((await fetchManifest(destination, 'm/srccut/app', 'v1'))!)).toBe(pushed.digest);
  expect(await fetchBlobDigest(destination, 'm/srccut/app', digestOf(big))).toBe(digestOf(big));
});

test('the destination cuts the stream: the registry is asked what it holds; Distribution cannot resume it, and the blob starts again from byte 0', async () => {
  const big = randomBytes(1_000_000);
  const pushed = await pushImage(source, 'dstcut/app', 'v1', [big]);
  let cut = false;
  const to = await tap(destination.url, {
    cutRequest: (method, path) => (method === 'PATCH' && path.startsWith('/v2/m/dstcut/app/') && !cut ? (cut = true, 400_000) : undefined),
  });
  const from = await tap(source.url);
  const result = await copier(from.endpoint, to.endpoint).copy({ sourceRepository: 'dstcut/app', destinationRepository: 'm/dstcut/app', tag: 'v1' });
  expect(result.outcome).toBe('COPIED');
  const upload = uploadsOf(to, 'm/dstcut/app');
  // POST, the cut PATCH, the status request (Distribution no longer has the session: 404), the DELETE, then a new
  // session streamed whole
  expect(upload.slice(0, 3).map(s => [s.method, s.bytes, s.status])).toEqual([['POST', 0, 202], ['PATCH', 400_000, undefined], ['GET', 0, 404]]);
  expect(upload.slice(3).map(s => s.method)).toEqual(['DELETE', 'POST', 'PATCH', 'PUT', 'POST', 'PATCH', 'PUT']);
  expect(upload[5]).toMatchObject({ bytes: big.length, contentRange: undefined });
  expect(from.seen.filter(s => s.method === 'GET' && s.path.endsWith(digestOf(big))).map(s => s.served)).toEqual([expect.any(Number), big.length]);
  expect(digestOf((await fetchManifest(destination, 'm/dstcut/app', 'v1'))!)).toBe(pushed.digest);
  expect(await fetchBlobDigest(destination, 'm/dstcut/app', digestOf(big))).toBe(digestOf(big));
});

test('the deadline\'s hard stop during a stream shorter than a chunk: the PATCH is aborted, the registry asked, the session cancelled, OutOfTime before the deadline', async () => {
  const big = randomBytes(1_500_000);
  await pushImage(source, 'hardstop/app', 'v1', [big]);
  // 300 kB, then the source stalls with the connection open; a chunk here is 1 MiB, so the stream cannot end early
  const from = await tap(source.url, { stallResponse: (method, path) => (method === 'GET' && path.endsWith(digestOf(big)) ? 300_000 : undefined) });
  const to = await tap(destination.url);
  const deadline = Date.now() + 13_000;
  const stopped = await copier(from.endpoint, to.endpoint, { timeLeft: () => deadline - Date.now(), freshInvocation: false, chunkBytes: 1024 * 1024 })
    .copy({ sourceRepository: 'hardstop/app', destinationRepository: 'm/hardstop/app', tag: 'v1' }).catch(e => e);
  expect(stopped).toBeInstanceOf(OutOfTime);
  expect(Date.now()).toBeLessThan(deadline - 5_000); // stopped at the watch's 10 s margin, with time to spare
  expect(stopped.uploads).toEqual([]);
  expect(stopped.message).toMatch(/the upload was cancelled/);
  const upload = uploadsOf(to, 'm/hardstop/app');
  expect(upload.map(s => s.method)).toEqual(['POST', 'PATCH', 'GET', 'DELETE']);
  expect(upload[1].bytes).toBeLessThanOrEqual(300_000);
  expect(await fetchBlobDigest(destination, 'm/hardstop/app', digestOf(big))).toBeUndefined();
}, 30_000);

test('a registry that stops answering after the deadline\'s hard stop: the cancel of the session is given up, and OutOfTime still comes before the deadline', async () => {
  const big = randomBytes(1_500_000);
  await pushImage(source, 'deaf/app', 'v1', [big]);
  const from = await tap(source.url, { stallResponse: (method, path) => (method === 'GET' && path.endsWith(digestOf(big)) ? 300_000 : undefined) });
  const to = await tap(destination.url, { ignore: method => method === 'DELETE' });
  const deadline = Date.now() + 13_000;
  const stopped = await copier(from.endpoint, to.endpoint, { timeLeft: () => deadline - Date.now(), freshInvocation: false, chunkBytes: 1024 * 1024 })
    .copy({ sourceRepository: 'deaf/app', destinationRepository: 'm/deaf/app', tag: 'v1' }).catch(e => e);
  expect(stopped).toBeInstanceOf(OutOfTime);
  // stopped at the watch's 10 s margin; the status and the unanswered cancel took at most 4 s + 3 s of it
  expect(Date.now()).toBeLessThan(deadline);
  // the aborted PATCH dropped the session at Distribution (GET: 404); the DELETE was sent and never answered
  expect(uploadsOf(to, 'm/deaf/app').map(s => [s.method, s.status])).toEqual([['POST', 202], ['PATCH', undefined], ['GET', 404], ['DELETE', undefined]]);
}, 30_000);

test('a registry that refuses the streamed PATCH before taking its body: its error code is kept (read before the PATCH is dropped)', async () => {
  const big = randomBytes(3_000_000);
  await pushImage(source, 'refused/app', 'v1', [big]);
  const to = await tap(destination.url, { refuse: (method, path) => (method === 'PATCH' && path.startsWith('/v2/m/refused/app/') ? { status: 404, code: 'BLOB_UPLOAD_UNKNOWN' } : undefined) });
  const error = await copier(source.url, to.endpoint).copy({ sourceRepository: 'refused/app', destinationRepository: 'm/refused/app', tag: 'v1' }).catch(e => e);
  expect(error).toBeInstanceOf(CopyError);
  expect(error.reason).toBe(FailureReason.DESTINATION_REJECTED);
  expect(error.message).toMatch(/PATCH 0-2999999 \(streamed\): HTTP 404 \(BLOB_UPLOAD_UNKNOWN: refused by the tap\)/);
});

test('bytes changed in transit: the registry refuses the streamed blob\'s digest at the commit (DIGEST_INVALID), every attempt, and the image is not copied', async () => {
  const big = randomBytes(600_000);
  await pushImage(source, 'tampered/app', 'v1', [big]);
  const from = await tap(source.url, { flipResponse: (method, path) => (method === 'GET' && path.endsWith(digestOf(big)) ? 123_456 : undefined) });
  const to = await tap(destination.url);
  const error = await copier(from.endpoint, to.endpoint, { attempts: 2 })
    .copy({ sourceRepository: 'tampered/app', destinationRepository: 'm/tampered/app', tag: 'v1' }).catch(e => e);
  expect(error).toBeInstanceOf(CopyError);
  expect(error).toMatchObject({ reason: FailureReason.UPSTREAM_UNAVAILABLE, retryable: true });
  expect(error.message).toMatch(new RegExp(`^source: upload ${digestOf(big)} to m/tampered/app: the source sent ${big.length} bytes with another digest: `
    + 'the registry refused it at the commit \\(.*HTTP 400 \\(DIGEST_INVALID'));
  // each attempt streamed the whole blob, was refused at the commit, and its session cancelled
  expect(uploadsOf(to, 'm/tampered/app').map(s => [s.method, s.status])).toEqual([
    ['POST', 202], ['PATCH', 202], ['PUT', 400], ['DELETE', 204], ['POST', 202], ['PATCH', 202], ['PUT', 400], ['DELETE', 204],
  ]);
  expect(await fetchBlobDigest(destination, 'm/tampered/app', digestOf(big))).toBeUndefined();
  expect(await fetchManifest(destination, 'm/tampered/app', 'v1')).toBeUndefined();
});

test('a chunk answered with a Range that has not advanced (ECR\'s later PATCHes, aws/containers-roadmap#2831): the session moves on by the bytes sent, and the commit checks them', async () => {
  const big = randomBytes(700_000);
  const pushed = await pushImage(source, 'stale/app', 'v1', [big]);
  // every PATCH of a session after its first is answered with the first one's Range, as ECR does
  const firstRange = new Map<string, string>();
  const to = await tap(destination.url, {
    answerHeaders: (method, path, headers) => {
      if (method !== 'PATCH' || !path.startsWith('/v2/m/stale/app/blobs/uploads/')) {
        return headers;
      }
      const id = path.split('?')[0].split('/').pop()!;
      const first = firstRange.get(id);
      if (first === undefined) {
        firstRange.set(id, String(headers.range));
        return headers;
      }
      return { ...headers, range: first };
    },
  });
  // 500 kB/s assumed, 14.5 s left: the blob fits twice over plus the 10 s margin (12.8 s) but not four times (15.6 s),
  // so it goes in chunks
  const deadline = Date.now() + 14_500;
  const notes: string[] = [];
  const result = await copier(source.url, to.endpoint, {
    onNote: m => notes.push(m), timeLeft: () => deadline - Date.now(), freshInvocation: false, assumedBytesPerSecond: 500_000,
  }).copy({ sourceRepository: 'stale/app', destinationRepository: 'm/stale/app', tag: 'v1' });
  expect(result.outcome).toBe('COPIED');
  expect(notes).toEqual([]);
  const blobUploads = uploadsOf(to, 'm/stale/app');
  expect(blobUploads.slice(0, 5).map(s => [s.method, s.contentRange, s.bytes, s.status])).toEqual([
    ['POST', undefined, 0, 202],
    ['PATCH', `0-${CHUNK - 1}`, CHUNK, 202],
    ['PATCH', `${CHUNK}-${2 * CHUNK - 1}`, CHUNK, 202],
    ['PATCH', `${2 * CHUNK}-${big.length - 1}`, big.length - 2 * CHUNK, 202],
    ['PUT', undefined, 0, 201],
  ]);
  expect(digestOf((await fetchManifest(destination, 'm/stale/app', 'v1'))!)).toBe(pushed.digest);
  expect(await fetchBlobDigest(destination, 'm/stale/app', digestOf(big))).toBe(digestOf(big));
});

test('a chunk answered with a Range ahead of the bytes sent: the session is never trusted again; the blob starts from byte 0', async () => {
  const big = randomBytes(700_000);
  const pushed = await pushImage(source, 'ahead/app', 'v1', [big]);
  let lied = false;
  const to = await tap(destination.url, {
    answerHeaders: (method, path, headers) => (method === 'PATCH' && path.startsWith('/v2/m/ahead/app/') && headers.range === `0-${2 * CHUNK - 1}` && !lied
      ? (lied = true, { ...headers, range: `0-${3 * CHUNK - 1}` }) : headers),
  });
  const deadline = Date.now() + 14_500; // in chunks, as above
  const notes: string[] = [];
  const result = await copier(source.url, to.endpoint, {
    onNote: m => notes.push(m), timeLeft: () => deadline - Date.now(), freshInvocation: false, assumedBytesPerSecond: 500_000,
  }).copy({ sourceRepository: 'ahead/app', destinationRepository: 'm/ahead/app', tag: 'v1' });
  expect(notes).toEqual([`the registry answered the chunk ${CHUNK}-${2 * CHUNK - 1} with Range '0-${3 * CHUNK - 1}', which does not end at byte ${2 * CHUNK - 1}: `
    + `blob ${digestOf(big)} starts again from byte 0`]);
  expect(result.outcome).toBe('COPIED');
  // the spoilt session is cancelled where the registry has it now (Distribution's location moves on with each PATCH:
  // at the one before the last PATCH, the registry would refuse the DELETE and keep the session)
  expect(uploadsOf(to, 'm/ahead/app').slice(0, 4).map(s => [s.method, s.contentRange, s.status])).toEqual([
    ['POST', undefined, 202], ['PATCH', `0-${CHUNK - 1}`, 202], ['PATCH', `${CHUNK}-${2 * CHUNK - 1}`, 202], ['DELETE', undefined, 204],
  ]);
  expect(digestOf((await fetchManifest(destination, 'm/ahead/app', 'v1'))!)).toBe(pushed.digest);
});

test('a streamed PATCH answered with a Range other than the bytes sent: the session is cancelled where the registry has it now, and the blob starts from byte 0', async () => {
  const big = randomBytes(700_000);
  const pushed = await pushImage(source, 'streamahead/app', 'v1', [big]);
  let lied = false;
  const to = await tap(destination.url, {
    answerHeaders: (method, path, headers) => (method === 'PATCH' && path.startsWith('/v2/m/streamahead/app/') && headers.range === `0-${big.length - 1}` && !lied
      ? (lied = true, { ...headers, range: '0-99' }) : headers),
  });
  const notes: string[] = [];
  const result = await copier(source.url, to.endpoint, { onNote: m => notes.push(m) })
    .copy({ sourceRepository: 'streamahead/app', destinationRepository: 'm/streamahead/app', tag: 'v1' });
  expect(result.outcome).toBe('COPIED');
  expect(notes).toEqual([expect.stringMatching(new RegExp(`sent ${big.length} bytes, the registry answered Range '0-99': blob ${digestOf(big)} starts again from byte 0$`))]);
  // at the POST's location the DELETE would be refused (Distribution's location moves on with the PATCH), the session kept
  expect(uploadsOf(to, 'm/streamahead/app').slice(0, 3).map(s => [s.method, s.contentRange, s.status])).toEqual([
    ['POST', undefined, 202], ['PATCH', undefined, 202], ['DELETE', undefined, 204],
  ]);
  expect(digestOf((await fetchManifest(destination, 'm/streamahead/app', 'v1'))!)).toBe(pushed.digest);
});

test('an empty blob is committed with no PATCH at all (an empty streamed PATCH would be answered Range 0-0)', async () => {
  const empty = Buffer.alloc(0);
  const small = randomBytes(1000);
  const pushed = await pushImage(source, 'empty/app', 'v1', [empty, small]);
  const to = await tap(destination.url);
  const result = await copier(source.url, to.endpoint).copy({ sourceRepository: 'empty/app', destinationRepository: 'm/empty/app', tag: 'v1' });
  expect(result.outcome).toBe('COPIED');
  // three blobs (the empty layer, the other layer, the config), three sessions and commits, a PATCH only for the two with bytes
  const uploads = uploadsOf(to, 'm/empty/app');
  expect(uploads.filter(s => s.method === 'POST').length).toBe(3);
  expect(uploads.filter(s => s.method === 'PUT').map(s => s.status)).toEqual([201, 201, 201]);
  expect(uploads.filter(s => s.method === 'PATCH').map(s => s.bytes).sort((a, b) => a - b)).toEqual([expect.any(Number), small.length]);
  expect(uploads.filter(s => s.method === 'PATCH').every(s => s.bytes > 0 && s.status === 202)).toBe(true);
  expect(uploads.filter(s => s.method === 'DELETE')).toEqual([]);
  expect(digestOf((await fetchManifest(destination, 'm/empty/app', 'v1'))!)).toBe(pushed.digest);
  expect(await fetchBlobDigest(destination, 'm/empty/app', digestOf(empty))).toBe(digestOf(empty));
});

test('a source that ends its body cleanly but short of one chunk: the PATCH is aborted, never kept as a first part below a chunk, and the retry starts from byte 0', async () => {
  const big = randomBytes(900_000);
  const pushed = await pushImage(source, 'short/app', 'v1', [big]);
  let done = false;
  const from = await tap(source.url, {
    answerHeaders: (method, path, headers) => {
      if (method === 'GET' && path.endsWith(digestOf(big))) {
        const chunked = { ...headers };
        delete chunked['content-length'];
        return chunked;
      }
      return headers;
    },
    endResponse: (method, path) => (method === 'GET' && path.endsWith(digestOf(big)) && !done ? (done = true, 100_000) : undefined),
  });
  const to = await tap(destination.url);
  const result = await copier(from.endpoint, to.endpoint).copy({ sourceRepository: 'short/app', destinationRepository: 'm/short/app', tag: 'v1' });
  expect(result.outcome).toBe('COPIED');
  // no PATCH of 100 000 bytes acknowledged: every acknowledged PATCH holds the whole blob (the retry's stream)
  const patches = uploadsOf(to, 'm/short/app').filter(s => s.method === 'PATCH' && s.status !== undefined);
  expect(patches.filter(s => s.bytes !== 163 /* the config */).map(s => [s.contentRange, s.bytes, s.status])).toEqual([[undefined, big.length, 202]]);
  expect(from.seen.filter(s => s.method === 'GET' && s.path.endsWith(digestOf(big))).map(s => s.served)).toEqual([100_000, big.length]);
  expect(digestOf((await fetchManifest(destination, 'm/short/app', 'v1'))!)).toBe(pushed.digest);
});
