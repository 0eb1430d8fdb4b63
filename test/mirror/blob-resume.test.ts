import { randomBytes } from 'crypto';
import * as http from 'http';
import { AddressInfo } from 'net';
import { ChunkedUpload, RestartBlob, UploadSession, rangeEnd, startUpload } from '../../src/mirror/blob-upload';
import { FailureReason, ImageCopier, OutOfTime } from '../../src/mirror/copy';
import { RegistryClient } from '../../src/mirror/oci-client';
import { FaultProxy, HttpFault, startHttpFaultProxy } from '../support/fault-proxy';
import { OciRegistry, digestOf, fetchBlobDigest, fetchManifest, pushImage, startRegistry } from '../support/oci-registry';

/**
 * A blob stopped part-way is finished from where the destination's upload session stands, between two CNCF
 * Distribution registries on loopback: the rest of the source blob is fetched with `Range`, and every byte the
 * destination already holds is fetched from the source once. In front of the source, a fault proxy slows the
 * blob down, and a counting proxy records what the source served to each request (and can drop `Range`, as a
 * registry that does not serve ranges would).
 */
let source: OciRegistry;
let destination: OciRegistry;

beforeAll(async () => {
  [source, destination] = await Promise.all([startRegistry(), startRegistry({ basicAuth: true })]);
});
afterAll(async () => {
  await Promise.all([source?.stop(), destination?.stop()]);
});

/** One blob GET as the source served it. */
interface Served {
  readonly digest: string;
  readonly range?: string;
  readonly status: number;
  bytes: number;
}

/** A proxy that forwards everything and counts the bytes each blob GET received; `ignoreRange` drops the `Range` header. */
async function startCounter(target: string, ignoreRange = false): Promise<{ endpoint: string; served: Served[]; stop(): Promise<void> }> {
  const upstream = new URL(target);
  const served: Served[] = [];
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers };
    if (ignoreRange) {
      delete headers.range;
    }
    const proxied = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, upstreamRes => {
      const digest = req.method === 'GET' ? /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '')?.[1] : undefined;
      const range = headers.range as string | undefined;
      const record: Served | undefined = digest ? { digest, range, status: upstreamRes.statusCode ?? 0, bytes: 0 } : undefined;
      if (record) {
        served.push(record);
      }
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
      upstreamRes.on('data', (chunk: Buffer) => {
        if (record) {
          record.bytes += chunk.length;
        }
        res.write(chunk);
      });
      upstreamRes.on('end', () => res.end());
      // a body cut upstream is cut here too
      upstreamRes.on('close', () => !upstreamRes.complete && res.socket?.destroy());
      res.on('close', () => upstreamRes.destroy());
    });
    proxied.on('error', () => res.socket?.destroy());
    req.pipe(proxied);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    served,
    stop: () => new Promise<void>(resolve => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const CHUNK = 256 * 1024;
const configSize = (manifest: Buffer): number => JSON.parse(String(manifest)).config.size;
const destinationClient = (url = destination.url) => new RegistryClient({ url, authorization: destination.authorization });

function copier(sourceUrl: string, options: ConstructorParameters<typeof ImageCopier>[2] = {}, destinationUrl?: string): ImageCopier {
  const settings = { retryDelayMs: 10, chunkBytes: CHUNK, ...options };
  return new ImageCopier(new RegistryClient({ url: sourceUrl }), destinationClient(destinationUrl), settings);
}

/** An upload session at the destination holding the first `bytes` of `content`, opened and filled with plain HTTP. */
async function openSession(repository: string, content: Buffer, bytes: number, url = destination.url): Promise<UploadSession> {
  const call = (method: string, path: string, body?: Buffer, headers: Record<string, string> = {}) => new Promise<http.IncomingMessage>((resolve,
    reject) => {
    const req = http.request(new URL(path, url), {
      method, headers: { 'Authorization': destination.authorization!, 'Content-Length': String(body?.length ?? 0), ...headers },
    }, res => resolve(res.resume()));
    req.on('error', reject);
    req.end(body);
  });
  const start = await call('POST', `/v2/${repository}/blobs/uploads/`);
  expect(start.statusCode).toBe(202);
  const patch = await call('PATCH', String(start.headers.location), content.subarray(0, bytes),
    { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${bytes - 1}` });
  expect(patch.statusCode).toBe(202);
  expect(rangeEnd(patch.headers.range)).toBe(bytes);
  return { digest: digestOf(content), location: String(patch.headers.location), offset: bytes };
}

test('Range headers of upload answers: 0-<last> is last + 1 bytes; anything else is not a range', () => {
  expect(rangeEnd('0-524287')).toBe(524288);
  expect(rangeEnd('bytes=0-99')).toBe(100);
  expect(rangeEnd(undefined)).toBeUndefined();
  expect(rangeEnd('5-10')).toBeUndefined();
  expect(rangeEnd('0-x')).toBeUndefined();
});

// the copy computes no digest of its own: the receiving registry's commit is the check (blob-upload.ts says who, where)
test('bytes from byte 0 whose digest is not the blob\'s are refused by the registry at the commit (DIGEST_INVALID): RestartBlob (retryable), never a session kept for a resume', async () => {
  const client = destinationClient();
  const expected = randomBytes(CHUNK + 1000);
  const { session, chunkBytes } = await startUpload(client, 'm/spoilt/app', digestOf(expected), CHUNK);
  const upload = new ChunkedUpload(client, 'm/spoilt/app', expected.length, session);
  async function* other(): AsyncIterable<Buffer> {
    yield randomBytes(expected.length);
  }
  const error = await upload.write(other(), { chunkBytes }).catch(e => e);
  expect(error).toBeInstanceOf(RestartBlob);
  expect(error).toMatchObject({ retryable: true, origin: 'source' });
  expect(error.message).toBe(`upload ${digestOf(expected)} to m/spoilt/app: the source sent ${expected.length} bytes with another digest: `
    + `the registry refused it at the commit (upload ${digestOf(expected)} to m/spoilt/app: commit: HTTP 400 (DIGEST_INVALID: provided digest did not match uploaded content))`);
  expect(error).toMatchObject({ status: 400, code: 'DIGEST_INVALID' });
  expect(await fetchBlobDigest(destination, 'm/spoilt/app', digestOf(expected))).toBeUndefined();
});

test('the next chunk fills while the last is sent, never more than one chunk ahead: source and destination stream together, memory stays flat', async () => {
  const client = destinationClient();
  const blob = randomBytes(4 * CHUNK + 1000);
  const { session, chunkBytes } = await startUpload(client, 'm/overlap/app', digestOf(blob), CHUNK);
  let pulled = 0;
  let maxAhead = 0; // bytes read from the source that the registry has not acknowledged
  const upload = new ChunkedUpload(client, 'm/overlap/app', blob.length, session);
  async function* reads(): AsyncIterable<Buffer> {
    for (let at = 0; at < blob.length; at += 16 * 1024) {
      const piece = blob.subarray(at, at + 16 * 1024);
      pulled += piece.length;
      maxAhead = Math.max(maxAhead, pulled - upload.session.offset);
      yield piece;
    }
  }
  const patches: Array<{ range: string; pulledAtStart: number; pulledAtEnd: number }> = [];
  const send = client.send.bind(client);
  client.send = async (method, url, options) => {
    if (method !== 'PATCH') return send(method, url, options);
    const patch = { range: options.headers!['Content-Range'], pulledAtStart: pulled, pulledAtEnd: 0 };
    await new Promise(r => setTimeout(r, 50)); // a registry slower than the source
    const res = await send(method, url, options);
    patch.pulledAtEnd = pulled;
    patches.push(patch);
    return res;
  };
  await upload.write(reads(), { chunkBytes });
  expect(await fetchBlobDigest(destination, 'm/overlap/app', digestOf(blob))).toBe(digestOf(blob));
  expect(patches.map(p => p.range)).toEqual([0, 1, 2, 3, 4].map(k => `${k * CHUNK}-${Math.min((k + 1) * CHUNK, blob.length) - 1}`));
  // while each of the first chunks was sent, the next one was read (the source did not wait for the registry) ...
  for (const [k, p] of patches.slice(0, 3).entries()) {
    expect(p.pulledAtStart).toBe((k + 1) * CHUNK);
    expect(p.pulledAtEnd).toBe((k + 2) * CHUNK);
  }
  // ... and no further: one chunk in flight, one filling
  expect(maxAhead).toBeLessThanOrEqual(2 * CHUNK);
  expect(upload.sent).toBe(blob.length);
});

describe('a blob stopped part-way resumes where the destination\'s upload session stands', () => {
  let proxy: FaultProxy | undefined;
  let counter: Awaited<ReturnType<typeof startCounter>> | undefined;
  afterEach(async () => {
    await Promise.all([proxy?.stop(), counter?.stop()]);
    proxy = counter = undefined;
  });

  test('a blob that slows down is handed over with its session, and the next invocation fetches only the rest (no byte twice)', async () => {
    const big = randomBytes(1_300_000);
    const pushed = await pushImage(source, 'resume/app', 'v1', [big]);
    // 600 kB at full speed, then 20 kB/s: the blob starts as one streamed PATCH; when the rest no longer fits before the
    // deadline at the rate of the last seconds, the PATCH ends where it stands (past one chunk) and the rest goes in
    // chunks, the first of which never fills before the deadline
    let stalling = true;
    proxy = await startHttpFaultProxy(source.url, (method, path): HttpFault => (stalling && method === 'GET' && path.endsWith(`/blobs/${digestOf(big)}`)
      ? { kind: 'slow', afterBytes: 600_000, bytesPerSecond: 20_000 } : { kind: 'pass' }));
    counter = await startCounter(proxy.endpoint);
    const deadline = Date.now() + 14_000;
    const stopped = await copier(counter.endpoint, { timeLeft: () => deadline - Date.now(), freshInvocation: false })
      .copy({ sourceRepository: 'resume/app', destinationRepository: 'm/resume/app', tag: 'v1' }).catch(e => e);
    expect(stopped).toBeInstanceOf(OutOfTime);
    const handedOver: UploadSession[] = stopped.uploads;
    expect(handedOver).toEqual([{ digest: digestOf(big), location: expect.stringContaining(`${destination.url}/v2/m/resume/app/blobs/uploads/`), offset: expect.any(Number) }]);
    const held = handedOver[0].offset;
    expect(stopped.message).toMatch(new RegExp(`its upload session, holding ${held} bytes, is handed over to the next invocation`));
    expect(held).toBeGreaterThanOrEqual(600_000); // every byte that came at full speed, in the streamed PATCH
    expect(held).toBeLessThan(600_000 + CHUNK); // the chunk after it never filled
    // the session stays open (not cancelled), and nothing is committed
    expect(destination.requests().filter(r => r.startsWith('DELETE /v2/m/resume/app/blobs/uploads/'))).toEqual([]);
    expect(await fetchBlobDigest(destination, 'm/resume/app', digestOf(big))).toBeUndefined();
    const ofBig = () => counter!.served.filter(s => s.digest === digestOf(big)).map(({ digest, ...rest }) => rest);
    const firstServed = ofBig();
    expect(firstServed).toEqual([{ range: undefined, status: 200, bytes: expect.any(Number) }]);
    expect(firstServed[0].bytes).toBeGreaterThanOrEqual(held);
    expect(firstServed[0].bytes).toBeLessThan(held + CHUNK); // the chunk after it was cut short: it never reached the destination

    // the next invocation: the source at full speed again (the config blob was copied by the first one)
    stalling = false;
    const notes: string[] = [];
    const result = await copier(counter.endpoint, { uploads: handedOver, onNote: m => notes.push(m) })
      .copy({ sourceRepository: 'resume/app', destinationRepository: 'm/resume/app', tag: 'v1' });
    expect(notes).toEqual([]);
    expect(result).toMatchObject({ outcome: 'COPIED', blobsCopied: 1, blobsSkipped: 1, bytesCopied: big.length - held });
    // the rest of the blob, asked for from the first byte the destination lacks: no byte it holds is served again
    expect(ofBig()).toEqual([{ range: undefined, status: 200, bytes: expect.any(Number) }, { range: `bytes=${held}-`, status: 206, bytes: big.length - held }]);
    expect(destination.requests()).toEqual(expect.arrayContaining([expect.stringMatching(/^GET \/v2\/m\/resume\/app\/blobs\/uploads\//)]));
    expect(digestOf((await fetchManifest(destination, 'm/resume/app', 'v1'))!)).toBe(pushed.digest);
    expect(await fetchBlobDigest(destination, 'm/resume/app', digestOf(big))).toBe(digestOf(big));
  }, 30_000);

  test('an image that fails for another reason while the deadline stops a blob: that blob\'s session is cancelled, not left open and handed to no one', async () => {
    const big = randomBytes(1_300_000);
    const small = randomBytes(50_000);
    await pushImage(source, 'orphan/app', 'v1', [big, small]);
    // the large blob stalls after 600 kB (its session then holds them); the small one is refused at once (403: Unauthorized, not retried)
    proxy = await startHttpFaultProxy(source.url, (method, path): HttpFault => {
      if (method === 'GET' && path.endsWith(`/blobs/${digestOf(big)}`)) {
        return { kind: 'slow', afterBytes: 600_000, bytesPerSecond: 20_000 };
      }
      return method === 'GET' && path.endsWith(`/blobs/${digestOf(small)}`) ? { kind: 'status', status: 403 } : { kind: 'pass' };
    });
    const deadline = Date.now() + 14_000;
    const error = await copier(proxy.endpoint, { timeLeft: () => deadline - Date.now(), freshInvocation: false })
      .copy({ sourceRepository: 'orphan/app', destinationRepository: 'm/orphan/app', tag: 'v1' }).catch(e => e);
    // the image's failure is the refusal: no invocation will resume the large blob's session
    expect(error).toMatchObject({ reason: FailureReason.UNAUTHORIZED, retryable: false });
    const deletes = destination.requests().filter(r => r.startsWith('DELETE /v2/m/orphan/app/blobs/uploads/'));
    expect(deletes).toHaveLength(1);
    expect(await fetchBlobDigest(destination, 'm/orphan/app', digestOf(big))).toBeUndefined();
  }, 30_000);

  test('the same with a retryable failure (503): the stopped blob\'s session stays open, for the redelivered message to resume', async () => {
    const big = randomBytes(1_300_000);
    const small = randomBytes(50_000);
    await pushImage(source, 'orphan/retry', 'v1', [big, small]);
    proxy = await startHttpFaultProxy(source.url, (method, path): HttpFault => {
      if (method === 'GET' && path.endsWith(`/blobs/${digestOf(big)}`)) {
        return { kind: 'slow', afterBytes: 600_000, bytesPerSecond: 20_000 };
      }
      return method === 'GET' && path.endsWith(`/blobs/${digestOf(small)}`) ? { kind: 'status', status: 503 } : { kind: 'pass' };
    });
    const deadline = Date.now() + 14_000;
    const error = await copier(proxy.endpoint, { timeLeft: () => deadline - Date.now(), freshInvocation: false, attempts: 1 })
      .copy({ sourceRepository: 'orphan/retry', destinationRepository: 'm/orphan/retry', tag: 'v1' }).catch(e => e);
    expect(error).toMatchObject({ reason: FailureReason.UPSTREAM_UNAVAILABLE, retryable: true });
    // the stalled blob's session held bytes when the deadline stopped it: not cancelled
    expect(destination.requests().filter(r => r.startsWith('DELETE /v2/m/orphan/retry/blobs/uploads/'))).toEqual([]);
  }, 30_000);

  test('the next chunk would not finish before the deadline: the upload pauses between chunks and hands over its session', async () => {
    const big = randomBytes(1_300_000);
    const pushed = await pushImage(source, 'pause/app', 'v1', [big]);
    // after the first chunk reached the destination, 12 s are left: at 100 kB/s the next 256 KiB chunk needs 2 x 2.6 s + 10 s
    const timeLeft = () => (destination.requests().some(r => r.startsWith('PATCH /v2/m/pause/app/blobs/uploads/')) ? 12_000 : 60_000);
    const started = Date.now();
    const stopped = await copier(source.url, { timeLeft, assumedBytesPerSecond: 100_000, concurrency: 1, freshInvocation: false })
      .copy({ sourceRepository: 'pause/app', destinationRepository: 'm/pause/app', tag: 'v1' }).catch(e => e);
    expect(Date.now() - started).toBeLessThan(3_000); // not at the deadline watch's 10 s margin: before the next chunk
    expect(stopped).toBeInstanceOf(OutOfTime);
    expect(stopped.uploads).toEqual([{ digest: digestOf(big), location: expect.any(String), offset: CHUNK }]);
    const resumed = await copier(source.url, { uploads: stopped.uploads }).copy({ sourceRepository: 'pause/app', destinationRepository: 'm/pause/app', tag: 'v1' });
    // the largest blob goes first: the config blob is copied by the second invocation
    expect(resumed).toMatchObject({ outcome: 'COPIED', bytesCopied: big.length - CHUNK + configSize(pushed.manifest) });
    expect(await fetchBlobDigest(destination, 'm/pause/app', digestOf(big))).toBe(digestOf(big));
  });

  test('a source that ignores Range (200, not 206): the blob starts again from byte 0, the stale session is cancelled, and the copy says so', async () => {
    const big = randomBytes(700_000);
    const pushed = await pushImage(source, 'norange/app', 'v1', [big]);
    const session = await openSession('m/norange/app', big, CHUNK);
    counter = await startCounter(source.url, true);
    const notes: string[] = [];
    const result = await copier(counter.endpoint, { uploads: [session], onNote: m => notes.push(m) })
      .copy({ sourceRepository: 'norange/app', destinationRepository: 'm/norange/app', tag: 'v1' });
    expect(notes).toEqual([`the source ignored the range request (200, not 206): blob ${digestOf(big)} starts again from byte 0`]);
    expect(result.outcome).toBe('COPIED');
    expect(counter.served.filter(s => s.digest === digestOf(big)))
      .toEqual([{ digest: digestOf(big), range: undefined, status: 200, bytes: big.length }]);
    expect(destination.requests()).toEqual(expect.arrayContaining([expect.stringMatching(/^DELETE \/v2\/m\/norange\/app\/blobs\/uploads\//)]));
    expect(digestOf((await fetchManifest(destination, 'm/norange/app', 'v1'))!)).toBe(pushed.digest);
    expect(await fetchBlobDigest(destination, 'm/norange/app', digestOf(big))).toBe(digestOf(big));
  });

  test('a session the destination no longer has (expired): the blob starts again from byte 0, and the copy says so', async () => {
    const big = randomBytes(700_000);
    const pushed = await pushImage(source, 'expired/app', 'v1', [big]);
    const session = await openSession('m/expired/app', big, CHUNK);
    // the destination forgets the session (an expired upload, as a registry purges them)
    await destinationClient().cancelUpload('m/expired/app', session.location);
    counter = await startCounter(source.url);
    const notes: string[] = [];
    const result = await copier(counter.endpoint, { uploads: [session], onNote: m => notes.push(m) })
      .copy({ sourceRepository: 'expired/app', destinationRepository: 'm/expired/app', tag: 'v1' });
    expect(notes).toEqual([expect.stringMatching(new RegExp(`^the registry no longer has the upload session \\(status: HTTP 404 .*BLOB_UPLOAD_UNKNOWN.*\\): blob ${digestOf(big)} starts again from byte 0$`))]);
    expect(result).toMatchObject({ outcome: 'COPIED', bytesCopied: big.length + configSize(pushed.manifest) });
    expect(counter.served.every(s => s.range === undefined)).toBe(true);
    expect(await fetchBlobDigest(destination, 'm/expired/app', digestOf(big))).toBe(digestOf(big));
  });

  test.each([
    [405, /^the registry does not report the upload session's status \(status: HTTP 405/],
    [401, /^the registry refused the upload session's status \(GET .*: HTTP 401/],
  ])('a destination that answers the status request with %d: the blob starts again from byte 0 instead of failing', async (status, note) => {
    const big = randomBytes(400_000);
    const repository = `nostatus${status}/app`;
    const pushed = await pushImage(source, repository, 'v1', [big]);
    proxy = await startHttpFaultProxy(destination.url, (method, path): HttpFault => (method === 'GET' && path.includes('/blobs/uploads/')
      ? { kind: 'status', status } : { kind: 'pass' }));
    const session = await openSession(`m/${repository}`, big, CHUNK, proxy.endpoint);
    const notes: string[] = [];
    const result = await copier(source.url, { uploads: [session], onNote: m => notes.push(m) }, proxy.endpoint)
      .copy({ sourceRepository: repository, destinationRepository: `m/${repository}`, tag: 'v1' });
    expect(notes).toEqual([expect.stringMatching(note)]);
    expect(notes[0]).toMatch(/: blob sha256:[a-f0-9]{64} starts again from byte 0$/);
    expect(result).toMatchObject({ outcome: 'COPIED', bytesCopied: big.length + configSize(pushed.manifest) });
    expect(await fetchBlobDigest(destination, `m/${repository}`, digestOf(big))).toBe(digestOf(big));
  });

  test('a handed-over location that is not one of the destination\'s sessions of the repository is never followed', async () => {
    const big = randomBytes(300_000);
    await pushImage(source, 'foreign/app', 'v1', [big]);
    let contacted = 0;
    const elsewhere = http.createServer((_req, res) => {
      contacted++;
      res.writeHead(204, { Range: '0-262143' }).end();
    });
    await new Promise<void>(resolve => elsewhere.listen(0, '127.0.0.1', resolve));
    try {
      const location = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/v2/m/foreign/app/blobs/uploads/x`;
      const notes: string[] = [];
      const result = await copier(source.url, { uploads: [{ digest: digestOf(big), location, offset: CHUNK }], onNote: m => notes.push(m) })
        .copy({ sourceRepository: 'foreign/app', destinationRepository: 'm/foreign/app', tag: 'v1' });
      expect(result.outcome).toBe('COPIED');
      expect(contacted).toBe(0); // the destination's token never went there
      expect(notes).toEqual([`the handed-over upload location is not one of the destination's sessions of m/foreign/app: blob ${digestOf(big)} starts again from byte 0`]);
    } finally {
      elsewhere.closeAllConnections();
      elsewhere.close();
    }
  });

  test('a resumed blob whose ranged GET fails (503) is retried from the same offset, not from byte 0', async () => {
    const big = randomBytes(700_000);
    const pushed = await pushImage(source, 'retryrange/app', 'v1', [big]);
    const session = await openSession('m/retryrange/app', big, CHUNK);
    let refused = false;
    proxy = await startHttpFaultProxy(source.url, (method, path): HttpFault => {
      if (method === 'GET' && path.endsWith(`/blobs/${digestOf(big)}`) && !refused) {
        refused = true;
        return { kind: 'status', status: 503 };
      }
      return { kind: 'pass' };
    });
    counter = await startCounter(proxy.endpoint);
    const notes: string[] = [];
    const result = await copier(counter.endpoint, { uploads: [session], onNote: m => notes.push(m) })
      .copy({ sourceRepository: 'retryrange/app', destinationRepository: 'm/retryrange/app', tag: 'v1' });
    expect(notes).toEqual([]);
    expect(counter.served.filter(s => s.digest === digestOf(big)).map(({ range, status }) => ({ range, status })))
      .toEqual([{ range: `bytes=${CHUNK}-`, status: 503 }, { range: `bytes=${CHUNK}-`, status: 206 }]);
    expect(result).toMatchObject({ outcome: 'COPIED', bytesCopied: big.length - CHUNK + configSize(pushed.manifest) });
    expect(await fetchBlobDigest(destination, 'm/retryrange/app', digestOf(big))).toBe(digestOf(big));
  });

  test('a resumed session holding other bytes: the registry refuses its digest, and the blob starts again from byte 0 once (no loop)', async () => {
    const big = randomBytes(700_000);
    const pushed = await pushImage(source, 'wrongbytes/app', 'v1', [big]);
    // the session holds a chunk of other bytes under this blob's digest (a corrupted or forged hand-over)
    const session = { ...await openSession('m/wrongbytes/app', randomBytes(CHUNK), CHUNK), digest: digestOf(big) };
    counter = await startCounter(source.url);
    const notes: string[] = [];
    const result = await copier(counter.endpoint, { uploads: [session], onNote: m => notes.push(m) })
      .copy({ sourceRepository: 'wrongbytes/app', destinationRepository: 'm/wrongbytes/app', tag: 'v1' });
    expect(notes).toEqual([expect.stringMatching(new RegExp(`^the registry refused the digest of the resumed upload \\(.*HTTP 400.*DIGEST_INVALID.*\\): blob ${digestOf(big)} starts again from byte 0$`))]);
    expect(counter.served.filter(s => s.digest === digestOf(big)).map(s => s.range)).toEqual([`bytes=${CHUNK}-`, undefined]);
    expect(result).toMatchObject({ outcome: 'COPIED' });
    expect(digestOf((await fetchManifest(destination, 'm/wrongbytes/app', 'v1'))!)).toBe(pushed.digest);
    expect(await fetchBlobDigest(destination, 'm/wrongbytes/app', digestOf(big))).toBe(digestOf(big));
  });

  test('a resumed session whose chunk the registry refuses as out of order (416): cancelled, and the blob starts again from byte 0', async () => {
    const big = randomBytes(700_000);
    const pushed = await pushImage(source, 'outoforder/app', 'v1', [big]);
    let resumed = ''; // the path of the handed-over session, without its query
    let refused = false;
    proxy = await startHttpFaultProxy(destination.url, (method, path): HttpFault => {
      if (resumed && method === 'PATCH' && path.split('?')[0] === resumed && !refused) {
        refused = true;
        return { kind: 'status', status: 416 };
      }
      return { kind: 'pass' };
    });
    const session = await openSession('m/outoforder/app', big, CHUNK, proxy.endpoint);
    resumed = new URL(session.location, proxy.endpoint).pathname; // the copy's first chunk into this session is refused
    const notes: string[] = [];
    const result = await copier(source.url, { uploads: [session], onNote: m => notes.push(m) }, proxy.endpoint)
      .copy({ sourceRepository: 'outoforder/app', destinationRepository: 'm/outoforder/app', tag: 'v1' });
    expect(notes).toEqual([expect.stringMatching(new RegExp(`^the registry refused the chunk ${CHUNK}-${2 * CHUNK - 1} as out of order \\(.*HTTP 416.*\\): blob ${digestOf(big)} starts again from byte 0$`))]);
    expect(result).toMatchObject({ outcome: 'COPIED', bytesCopied: big.length + configSize(pushed.manifest) });
    expect(digestOf((await fetchManifest(destination, 'm/outoforder/app', 'v1'))!)).toBe(pushed.digest);
  });

  test('a connection cut in the middle of a streamed blob: the PATCH ends with the bytes received, and the retry resumes from there', async () => {
    const big = randomBytes(1_000_000);
    const pushed = await pushImage(source, 'cut/app', 'v1', [big]);
    let cut = false;
    proxy = await startHttpFaultProxy(source.url, (method, path): HttpFault => {
      if (method === 'GET' && path.endsWith(`/blobs/${digestOf(big)}`) && !cut) {
        cut = true;
        return { kind: 'cut', afterBytes: 600_000 };
      }
      return { kind: 'pass' };
    });
    counter = await startCounter(proxy.endpoint);
    const result = await copier(counter.endpoint).copy({ sourceRepository: 'cut/app', destinationRepository: 'm/cut/app', tag: 'v1' });
    expect(result.outcome).toBe('COPIED');
    const gets = counter.served.filter(s => s.digest === digestOf(big));
    // the first GET was cut after 600 kB (more than a chunk): the streamed PATCH ended cleanly with every byte that
    // came, the registry acknowledged them, and the retry asks the source for the rest only
    expect(gets).toEqual([
      { digest: digestOf(big), range: undefined, status: 200, bytes: expect.any(Number) },
      { digest: digestOf(big), range: expect.stringMatching(/^bytes=\d+-$/), status: 206, bytes: expect.any(Number) },
    ]);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1].range!)![1]);
    expect(resumedAt).toBeGreaterThan(CHUNK);
    expect(resumedAt).toBeLessThanOrEqual(gets[0].bytes);
    expect(gets[0].bytes).toBeLessThanOrEqual(600_000);
    expect(gets[1].bytes).toBe(big.length - resumedAt);
    expect(digestOf((await fetchManifest(destination, 'm/cut/app', 'v1'))!)).toBe(pushed.digest);
    expect(await fetchBlobDigest(destination, 'm/cut/app', digestOf(big))).toBe(digestOf(big));
  });
});
