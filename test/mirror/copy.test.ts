import { randomBytes } from 'crypto';
import * as http from 'http';
import { AddressInfo } from 'net';
import { parseImageSpec } from '../../src/image-spec';
import { CopyError, FailureReason, ImageCopier, OutOfTime, compareVersions, selectTags } from '../../src/mirror/copy';
import { RegistryClient, parseChallenge } from '../../src/mirror/oci-client';
import { keepsCredentials, tokenRealm } from '../../src/mirror/oci-http';
import { MAX_RETRY_AFTER_MS, retryAfterMs } from '../../src/mirror/retry-after';
import { FaultProxy, HttpFault, startHttpFaultProxy } from '../support/fault-proxy';
import {
  OciRegistry, REGISTRY_PASSWORD, REGISTRY_USER, deleteManifest, digestOf, fetchBlobDigest, fetchManifest, pushBlob, pushImage, pushIndex,
  pushManifest, startRegistry,
} from '../support/oci-registry';

/**
 * The copy against two real registries on loopback: the source asks for a bearer token (issued by a token
 * server that wants a username and password, as a private upstream does), the destination takes a fixed Basic
 * header, as ECR's registry endpoint takes the token of GetAuthorizationToken.
 */
let source: OciRegistry;
let destination: OciRegistry;

beforeAll(async () => {
  [source, destination] = await Promise.all([
    startRegistry({ tokenAuth: true, tokenCredentials: true, allowLayerUrls: true }), startRegistry({ basicAuth: true, allowLayerUrls: true }),
  ]);
});
afterAll(async () => {
  await Promise.all([source?.stop(), destination?.stop()]);
});

const credentials = { username: REGISTRY_USER, password: REGISTRY_PASSWORD };
function clients(sourceUrl = source.url) {
  return {
    from: new RegistryClient({ url: sourceUrl, credentials }),
    to: new RegistryClient({ url: destination.url, authorization: destination.authorization }),
  };
}
function copier(options: ConstructorParameters<typeof ImageCopier>[2] = {}, sourceUrl?: string): ImageCopier {
  const { from, to } = clients(sourceUrl);
  return new ImageCopier(from, to, { retryDelayMs: 10, ...options });
}
const layer = (size: number) => randomBytes(size);
/** GET /v2/<repo>/blobs/... requests the source served, counted from `since`. */
const blobGets = (registry: OciRegistry, since: number) => registry.requests().slice(since).filter(r => /^GET \/v2\/.+\/blobs\//.test(r));

/** Every blob and manifest of an image is at the destination with the source's digest, and the tag has the source's manifest bytes. */
async function expectSameImage(fromRepo: string, toRepo: string, tag: string): Promise<void> {
  const manifest = await fetchManifest(source, fromRepo, tag);
  const copied = await fetchManifest(destination, toRepo, tag);
  expect(copied).toBeDefined();
  expect(digestOf(copied!)).toBe(digestOf(manifest!));
  const json = JSON.parse(String(copied));
  const images = json.manifests ? await Promise.all(json.manifests.map(async (m: any) => {
    const child = await fetchManifest(destination, toRepo, m.digest);
    expect(digestOf(child!)).toBe(m.digest);
    return JSON.parse(String(child));
  })) : [json];
  for (const image of images) {
    for (const blob of [image.config, ...image.layers]) {
      expect(await fetchBlobDigest(destination, toRepo, blob.digest)).toBe(blob.digest);
    }
  }
}

describe('copy between two registries on loopback', () => {
  test('a single-platform image: every digest at the destination is the source\'s, and the tag is written last', async () => {
    const pushed = await pushImage(source, 'dotnet/runtime', '8.0', [layer(300_000), layer(70_000), layer(1_000)]);
    const result = await copier().copy({ sourceRepository: 'dotnet/runtime', destinationRepository: 'mcr/dotnet/runtime', tag: '8.0' });
    expect(result).toMatchObject({ outcome: 'COPIED', digest: pushed.digest, blobsCopied: 4, blobsSkipped: 0, manifests: 1 });
    expect(result.bytesCopied).toBeGreaterThan(371_000);
    await expectSameImage('dotnet/runtime', 'mcr/dotnet/runtime', '8.0');
    const pushes = destination.requests().filter(r => r.startsWith('PUT /v2/mcr/dotnet/runtime/'));
    expect(pushes[pushes.length - 1]).toBe('PUT /v2/mcr/dotnet/runtime/manifests/8.0');
  });

  test('a multi-architecture index: every platform manifest and blob, the index digest unchanged', async () => {
    const pushed = await pushIndex(source, 'ubi9/ubi-minimal', '9.4', [
      { os: 'linux', architecture: 'amd64', layers: [layer(200_000), layer(5_000)] },
      { os: 'linux', architecture: 'arm64', layers: [layer(190_000)] },
      { os: 'linux', architecture: 's390x', layers: [layer(180_000)] },
    ]);
    const result = await copier().copy({ sourceRepository: 'ubi9/ubi-minimal', destinationRepository: 'redhat/ubi9/ubi-minimal', tag: '9.4' });
    expect(result).toMatchObject({ outcome: 'COPIED', digest: pushed.digest, manifests: 4, mediaType: 'application/vnd.oci.image.index.v1+json' });
    expect(result.blobsCopied).toBe(4 + 3); // the layers and the three configs
    await expectSameImage('ubi9/ubi-minimal', 'redhat/ubi9/ubi-minimal', '9.4');
  });

  test('a layer the destination already has is not downloaded; one another repository has is mounted', async () => {
    const shared = layer(250_000);
    const own = layer(40_000);
    await pushImage(source, 'team/app', 'v1', [shared, own]);
    await pushBlob(destination, 'mirror/team/app', shared);
    const before = source.requests().length;
    const knownBlobs = new Map<string, string>();
    const first = await copier({ knownBlobs }).copy({ sourceRepository: 'team/app', destinationRepository: 'mirror/team/app', tag: 'v1' });
    expect(first).toMatchObject({ outcome: 'COPIED', blobsSkipped: 1, blobsCopied: 2 });
    expect(blobGets(source, before).some(r => r.endsWith(digestOf(shared)))).toBe(false);
    await expectSameImage('team/app', 'mirror/team/app', 'v1');

    // the same image under another name: every blob is mounted from the first repository, none downloaded
    await pushImage(source, 'team/app-copy', 'v1', [shared, own]);
    const again = source.requests().length;
    const second = await copier({ knownBlobs }).copy({ sourceRepository: 'team/app-copy', destinationRepository: 'mirror/team/app-copy', tag: 'v1' });
    expect(second).toMatchObject({ outcome: 'COPIED', blobsCopied: 0, blobsMounted: 3 }); // the config too: same layers, same platform
    expect(blobGets(source, again).filter(r => r.includes(digestOf(shared)))).toEqual([]);
    await expectSameImage('team/app-copy', 'mirror/team/app-copy', 'v1');
  });

  test('a distributable layer that also lists urls is copied like any layer (only the non-distributable media types are foreign)', async () => {
    const bytes = layer(40_000);
    const digest = await pushBlob(source, 'windows/app', bytes);
    // the same bytes also offered at a URL: a distributable layer all the same (OCI image-spec, descriptor.md `urls`)
    const pushed = await pushManifest(source, 'windows/app', '1.0', [{ digest, size: bytes.length, urls: ['https://cdn.example.com/layer'] }]);
    expect(JSON.parse(String(pushed.manifest)).layers[0].urls).toEqual(['https://cdn.example.com/layer']);
    const result = await copier().copy({ sourceRepository: 'windows/app', destinationRepository: 'mcr/windows/app', tag: '1.0' });
    expect(result).toMatchObject({ outcome: 'COPIED', digest: pushed.digest, blobsCopied: 2 });
    expect(await fetchBlobDigest(destination, 'mcr/windows/app', digest)).toBe(digest); // ECR would refuse the manifest without it
    await expectSameImage('windows/app', 'mcr/windows/app', '1.0');
  });

  test('a tag is copied again only when upstream moved it', async () => {
    await pushImage(source, 'tools/cli', 'stable', [layer(60_000)]);
    await copier().copy({ sourceRepository: 'tools/cli', destinationRepository: 'm/tools/cli', tag: 'stable' });

    const before = source.requests().length;
    const unchanged = await copier().copy({ sourceRepository: 'tools/cli', destinationRepository: 'm/tools/cli', tag: 'stable' });
    expect(unchanged).toMatchObject({ outcome: 'UNCHANGED', blobsCopied: 0, manifests: 0 });
    expect(source.requests().slice(before).filter(r => r.startsWith('GET'))).toEqual([]); // HEAD requests only

    const moved = await pushImage(source, 'tools/cli', 'stable', [layer(61_000)]);
    const recopied = await copier().copy({ sourceRepository: 'tools/cli', destinationRepository: 'm/tools/cli', tag: 'stable' });
    expect(recopied).toMatchObject({ outcome: 'COPIED', digest: moved.digest });
    expect(digestOf((await fetchManifest(destination, 'm/tools/cli', 'stable'))!)).toBe(moved.digest);
  });

  test('a tag that vanished upstream fails with TagNotFound, and the destination keeps its last copy', async () => {
    const pushed = await pushImage(source, 'tools/gone', '1.0', [layer(10_000)]);
    await copier().copy({ sourceRepository: 'tools/gone', destinationRepository: 'm/tools/gone', tag: '1.0' });
    await deleteManifest(source, 'tools/gone', pushed.digest);

    const error = await copier().copy({ sourceRepository: 'tools/gone', destinationRepository: 'm/tools/gone', tag: '1.0' }).catch(e => e);
    expect(error).toBeInstanceOf(CopyError);
    expect(error).toMatchObject({ reason: FailureReason.TAG_NOT_FOUND, retryable: false });
    expect(error.message).toMatch(/tools\/gone:1\.0 does not exist upstream/);
    expect(digestOf((await fetchManifest(destination, 'm/tools/gone', '1.0'))!)).toBe(pushed.digest);
  });

  describe('through a proxy that injects faults', () => {
    let proxy: FaultProxy | undefined;
    afterEach(async () => proxy?.stop());

    test('an upstream 5xx and a connection cut in the middle of a blob are retried; the digests still match', async () => {
      const big = layer(2_000_000);
      const small = layer(300_000);
      await pushImage(source, 'flaky/app', 'v1', [big, small]);
      const faults = new Map<string, HttpFault[]>([
        [digestOf(big), [{ kind: 'cut', afterBytes: 700_000 }, { kind: 'status', status: 502 }]],
        [digestOf(small), [{ kind: 'status', status: 503 }]],
      ]);
      proxy = await startHttpFaultProxy(source.url, (method, path) => {
        const digest = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path)?.[1];
        return (method === 'GET' && digest && faults.get(digest)?.shift()) || { kind: 'pass' };
      });
      const retries: string[] = [];
      const result = await copier({ onRetry: (what, _attempt, error) => retries.push(`${what}: ${error.message}`) }, proxy.endpoint)
        .copy({ sourceRepository: 'flaky/app', destinationRepository: 'm/flaky/app', tag: 'v1' });
      expect(result).toMatchObject({ outcome: 'COPIED', blobsCopied: 3 });
      expect(retries).toHaveLength(3);
      expect(retries.join('\n')).toMatch(/HTTP 50[23]/);
      expect(retries.join('\n')).toMatch(/700000 of 2000000 bytes|aborted|premature|ECONNRESET|socket hang up/i);
      await expectSameImage('flaky/app', 'm/flaky/app', 'v1');
    });

    test('an index\'s blobs go 4 at a time from one pool across its platforms, the largest first; its platform manifests after every blob', async () => {
      const amd64 = [layer(400_000), layer(100_000), layer(50_000)];
      const arm64 = [layer(390_000), layer(90_000), layer(40_000)];
      await pushIndex(source, 'pool/app', 'v1', [{ os: 'linux', architecture: 'amd64', layers: amd64 }, { os: 'linux', architecture: 'arm64', layers: arm64 }]);
      // blob GETs are held until 4 have come and 300 ms more have passed: a fifth in that time would be held too
      const held: string[] = [];
      let release!: () => void;
      const gate = new Promise<void>(resolve => release = resolve);
      const failsafe = setTimeout(release, 2_000); // a copier that opens fewer than 4 at once is released (and fails below)
      let heldAtRelease: string[] = [];
      void gate.then(() => heldAtRelease = [...held]);
      proxy = await startHttpFaultProxy(source.url, (method, path) => {
        const digest = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path)?.[1];
        if (method !== 'GET' || !digest) {
          return { kind: 'pass' };
        }
        held.push(digest);
        if (held.length === 4) {
          setTimeout(release, 300);
        }
        return { kind: 'hold', until: gate };
      });
      const before = destination.requests().length;
      const result = await copier({}, proxy.endpoint).copy({ sourceRepository: 'pool/app', destinationRepository: 'm/pool/app', tag: 'v1' });
      clearTimeout(failsafe);
      expect(result).toMatchObject({ outcome: 'COPIED', blobsCopied: 8, manifests: 3 });
      // the four largest blobs of the whole index, two from each platform, were in flight together, and no fifth
      expect(new Set(heldAtRelease)).toEqual(new Set([amd64[0], arm64[0], amd64[1], arm64[1]].map(digestOf)));
      expect(held).toHaveLength(8);
      const writes = destination.requests().slice(before).filter(r => r.startsWith('PUT /v2/m/pool/app/'));
      const lastBlob = writes.map(r => r.includes('/blobs/uploads/')).lastIndexOf(true);
      expect(writes.slice(lastBlob + 1)).toHaveLength(3); // both platform manifests, then the tag: after the last blob's commit
      expect(writes.slice(lastBlob + 1).every(r => r.includes('/manifests/'))).toBe(true);
      await expectSameImage('pool/app', 'm/pool/app', 'v1');
    });

    test('a declined mount whose courtesy cancel goes unanswered is given up after 3 s, and the blob is copied: the mount is not retried into a failure', async () => {
      const bytes = layer(30_000);
      await pushImage(source, 'mount/app', 'v1', [bytes]);
      // the copy believes another repository holds the layer, but it does not: Distribution declines the mount (202, a session)
      const knownBlobs = new Map([[digestOf(bytes), 'm/mount/nowhere']]);
      proxy = await startHttpFaultProxy(destination.url, method => (method === 'DELETE' ? { kind: 'delay', ms: 3_500 } : { kind: 'pass' }));
      const from = new RegistryClient({ url: source.url, credentials });
      const to = new RegistryClient({ url: proxy.endpoint, authorization: destination.authorization });
      const before = destination.requests().length;
      const result = await new ImageCopier(from, to, { retryDelayMs: 10, knownBlobs })
        .copy({ sourceRepository: 'mount/app', destinationRepository: 'm/mount/app', tag: 'v1' });
      expect(result).toMatchObject({ outcome: 'COPIED', blobsMounted: 0, blobsCopied: 2 });
      // one mount asked for, once
      expect(destination.requests().slice(before).filter(r => r.startsWith('POST') && r.includes('mount='))).toHaveLength(1);
      await expectSameImage('mount/app', 'm/mount/app', 'v1');
    }, 30_000);

    test('an upstream that keeps failing ends in UpstreamUnavailable (retryable), with no tag written', async () => {
      const pushed = await pushImage(source, 'flaky/down', 'v1', [layer(20_000)]);
      proxy = await startHttpFaultProxy(source.url, (method, path) => (method === 'GET' && /\/blobs\//.test(path) ? { kind: 'status', status: 500 } : { kind: 'pass' }));
      const error = await copier({ attempts: 3 }, proxy.endpoint).copy({ sourceRepository: 'flaky/down', destinationRepository: 'm/flaky/down', tag: 'v1' }).catch(e => e);
      expect(error).toMatchObject({ reason: FailureReason.UPSTREAM_UNAVAILABLE, retryable: true });
      expect(await fetchManifest(destination, 'm/flaky/down', 'v1')).toBeUndefined();
      expect(await fetchManifest(destination, 'm/flaky/down', pushed.digest)).toBeUndefined();
    });

    test('a destination that keeps failing uploads is DestinationRejected (retryable), not blamed on the upstream', async () => {
      await pushImage(source, 'flaky/dest', 'v1', [layer(30_000)]);
      proxy = await startHttpFaultProxy(destination.url, method => (method === 'PATCH' ? { kind: 'status', status: 503 } : { kind: 'pass' }));
      const from = new RegistryClient({ url: source.url, credentials });
      const to = new RegistryClient({ url: proxy.endpoint, authorization: destination.authorization });
      const error = await new ImageCopier(from, to, { retryDelayMs: 10, attempts: 2 })
        .copy({ sourceRepository: 'flaky/dest', destinationRepository: 'm/flaky/dest', tag: 'v1' }).catch(e => e);
      expect(error).toMatchObject({ reason: FailureReason.DESTINATION_REJECTED, retryable: true });
      // a blob went as one streamed PATCH of all its bytes (blob-stream.ts): the layer's or the config's, whichever failed first
      expect(error.message).toMatch(/^destination: upload sha256:[a-f0-9]{64} to m\/flaky\/dest: PATCH 0-(29999|162) \(streamed\): .*HTTP 503/);
    });

    test.each([
      [403, false], [503, true],
    ])('a destination that refuses to open an upload session (%d) is DestinationRejected, never blamed on the upstream', async (status, retryable) => {
      await pushImage(source, `nopush/app${status}`, 'v1', [layer(20_000)]);
      proxy = await startHttpFaultProxy(destination.url, (method, path) => (method === 'POST' && path.includes('/blobs/uploads/')
        ? { kind: 'status', status } : { kind: 'pass' }));
      const from = new RegistryClient({ url: source.url, credentials });
      const to = new RegistryClient({ url: proxy.endpoint, authorization: destination.authorization });
      const error = await new ImageCopier(from, to, { retryDelayMs: 10, attempts: 2 })
        .copy({ sourceRepository: `nopush/app${status}`, destinationRepository: `m/nopush/app${status}`, tag: 'v1' }).catch(e => e);
      expect(error).toMatchObject({ reason: FailureReason.DESTINATION_REJECTED, retryable });
      expect(error.message).toMatch(new RegExp(`^destination: upload sha256:[a-f0-9]{64} to m/nopush/app${status}: start: (POST \\S+: )?HTTP ${status}`));
    });

    test.each([429, 503])('an upstream %d with Retry-After is waited out before the next attempt, and the copy completes', async (status) => {
      const blob = layer(50_000);
      await pushImage(source, `throttled/app${status}`, 'v1', [blob]);
      const asked: number[] = [];
      let refused = false;
      proxy = await startHttpFaultProxy(source.url, (method, path) => {
        if (method === 'GET' && path.endsWith(`/blobs/${digestOf(blob)}`)) {
          asked.push(Date.now());
          if (!refused) {
            refused = true;
            return { kind: 'status', status, headers: { 'Retry-After': '2' } };
          }
        }
        return { kind: 'pass' };
      });
      const waits: number[] = [];
      const result = await copier({ onRetry: (_what, _attempt, _error, waitMs) => waits.push(waitMs) }, proxy.endpoint)
        .copy({ sourceRepository: `throttled/app${status}`, destinationRepository: `m/throttled/app${status}`, tag: 'v1' });
      expect(result.outcome).toBe('COPIED');
      expect(waits).toEqual([2000]); // retryDelayMs is 10 ms: without Retry-After the retry would come at once
      expect(asked).toHaveLength(2);
      expect(asked[1] - asked[0]).toBeGreaterThanOrEqual(1_950);
    }, 30_000);

    test('a Retry-After longer than the time left fails the image now, retryable, with the registry\'s answer', async () => {
      await pushImage(source, 'throttled/late', 'v1', [layer(20_000)]);
      proxy = await startHttpFaultProxy(source.url, (method, path) => (method === 'GET' && /\/blobs\//.test(path)
        ? { kind: 'status', status: 429, headers: { 'Retry-After': '30' } } : { kind: 'pass' }));
      const deadline = Date.now() + 25_000;
      const started = Date.now();
      const error = await copier({ timeLeft: () => deadline - Date.now(), assumedBytesPerSecond: 100 * 1024 * 1024 }, proxy.endpoint)
        .copy({ sourceRepository: 'throttled/late', destinationRepository: 'm/throttled/late', tag: 'v1' }).catch(e => e);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(error).toMatchObject({ reason: FailureReason.UPSTREAM_UNAVAILABLE, retryable: true });
      expect(error.message).toMatch(/HTTP 429/);
    });

    test('a blob that slows down in the middle of its stream is stopped before the deadline: a clean handover, the upload cancelled', async () => {
      const big = layer(2_000_000);
      await pushImage(source, 'stalling/app', 'v1', [big]);
      proxy = await startHttpFaultProxy(source.url, (method, path) => (method === 'GET' && path.endsWith(`/blobs/${digestOf(big)}`)
        ? { kind: 'slow', afterBytes: 400_000, bytesPerSecond: 50_000 } : { kind: 'pass' }));
      const before = destination.requests().length;
      // 14 s left: at the assumed 20 MB/s the blob fits with room to spare, so it starts; then the source stalls
      const deadline = Date.now() + 14_000;
      const started = Date.now();
      const error = await copier({ timeLeft: () => deadline - Date.now(), freshInvocation: false }, proxy.endpoint)
        .copy({ sourceRepository: 'stalling/app', destinationRepository: 'm/stalling/app', tag: 'v1' }).catch(e => e);
      const stoppedAfter = Date.now() - started;
      expect(error).toBeInstanceOf(OutOfTime);
      expect(error.message).toMatch(new RegExp(`stopped during blob ${digestOf(big)} \\(2000000 bytes\\) after \\d+ s: it streamed slower than measured`));
      // stopped 10 s before the deadline (checked every 250 ms), long before the stalled stream would have ended (~32 s)
      expect(stoppedAfter).toBeGreaterThanOrEqual(3_900);
      expect(stoppedAfter).toBeLessThan(6_000);
      const requests = destination.requests().slice(before);
      expect(requests).toEqual(expect.arrayContaining([expect.stringMatching(/^DELETE \/v2\/m\/stalling\/app\/blobs\/uploads\//)]));
      expect(await fetchBlobDigest(destination, 'm/stalling/app', digestOf(big))).toBeUndefined();
      expect(await fetchManifest(destination, 'm/stalling/app', 'v1')).toBeUndefined();
      // the next invocation, from a source that keeps its pace, finishes the image
      const resumed = await copier().copy({ sourceRepository: 'stalling/app', destinationRepository: 'm/stalling/app', tag: 'v1' });
      expect(resumed.outcome).toBe('COPIED');
      await expectSameImage('stalling/app', 'm/stalling/app', 'v1');
    }, 30_000);

    test('an index stopped by the deadline in one platform\'s layer: no platform manifest and no tag is written, and the next invocation finishes it', async () => {
      const stalled = layer(2_000_000);
      const pushed = await pushIndex(source, 'stalling/multi', 'v1', [
        { os: 'linux', architecture: 'amd64', layers: [stalled, layer(60_000)] }, { os: 'linux', architecture: 'arm64', layers: [layer(70_000)] },
      ]);
      proxy = await startHttpFaultProxy(source.url, (method, path) => (method === 'GET' && path.endsWith(`/blobs/${digestOf(stalled)}`)
        ? { kind: 'slow', afterBytes: 400_000, bytesPerSecond: 50_000 } : { kind: 'pass' }));
      const before = destination.requests().length;
      const deadline = Date.now() + 14_000;
      const error = await copier({ timeLeft: () => deadline - Date.now(), freshInvocation: false }, proxy.endpoint)
        .copy({ sourceRepository: 'stalling/multi', destinationRepository: 'm/stalling/multi', tag: 'v1' }).catch(e => e);
      expect(error).toBeInstanceOf(OutOfTime);
      // the other blobs of both platforms were stored meanwhile; no manifest was: the tag never points at part of an index
      expect(destination.requests().slice(before).filter(r => r.startsWith('PUT /v2/m/stalling/multi/manifests/'))).toEqual([]);
      for (const image of pushed.images) {
        expect(await fetchManifest(destination, 'm/stalling/multi', image.digest)).toBeUndefined();
      }
      expect(await fetchManifest(destination, 'm/stalling/multi', 'v1')).toBeUndefined();

      const again = destination.requests().length;
      const resumed = await copier().copy({ sourceRepository: 'stalling/multi', destinationRepository: 'm/stalling/multi', tag: 'v1' });
      // only the stalled layer is copied again; the 2 other layers and the 2 configs are found stored
      expect(resumed).toMatchObject({ outcome: 'COPIED', digest: pushed.digest, blobsCopied: 1, blobsSkipped: 4, manifests: 3 });
      expect(destination.requests().slice(again).filter(r => r.startsWith('PUT /v2/m/stalling/multi/manifests/'))).toHaveLength(3);
      await expectSameImage('stalling/multi', 'm/stalling/multi', 'v1');
    }, 30_000);

    test('a source that holds back its answer to the blob GET (no headers yet) is stopped before the deadline, not killed by it', async () => {
      const big = layer(300_000);
      await pushImage(source, 'silent/app', 'v1', [big]);
      proxy = await startHttpFaultProxy(source.url, (method, path) => (method === 'GET' && path.endsWith(`/blobs/${digestOf(big)}`)
        ? { kind: 'delay', ms: 20_000 } : { kind: 'pass' }));
      // 14 s left: the blob fits at the assumed rate, so it starts; the source then says nothing for 20 s (idle timeout 60 s)
      const deadline = Date.now() + 14_000;
      const started = Date.now();
      const error = await copier({ timeLeft: () => deadline - Date.now(), freshInvocation: false }, proxy.endpoint)
        .copy({ sourceRepository: 'silent/app', destinationRepository: 'm/silent/app', tag: 'v1' }).catch(e => e);
      const stoppedAfter = Date.now() - started;
      expect(error).toBeInstanceOf(OutOfTime);
      expect(error.message).toMatch(new RegExp(`stopped during blob ${digestOf(big)} \\(300000 bytes\\) after \\d+ s: `));
      expect(stoppedAfter).toBeGreaterThanOrEqual(3_900);
      expect(stoppedAfter).toBeLessThan(6_000); // 10 s before the deadline, not when the source finally answers (20 s)
    }, 30_000);

    test('a token that expires in the middle of a copy is fetched again, and the copy completes', async () => {
      await pushImage(source, 'slow/app', 'v1', [layer(100_000), layer(50_000)]);
      // tokens now really live 2 s, though the token server still announces 300 s: the client cannot see it coming
      source.tokenServer!.setLifetime(2);
      let delayed = false;
      proxy = await startHttpFaultProxy(source.url, (method, path) => {
        if (method === 'GET' && /\/blobs\//.test(path) && !delayed) {
          delayed = true;
          return { kind: 'delay', ms: 3_000 }; // the first blob request reaches the registry after the token expired
        }
        return { kind: 'pass' };
      });
      try {
        const issuedBefore = source.tokenServer!.issued();
        const result = await copier({ concurrency: 1 }, proxy.endpoint).copy({ sourceRepository: 'slow/app', destinationRepository: 'm/slow/app', tag: 'v1' });
        expect(result.outcome).toBe('COPIED');
        expect(source.tokenServer!.issued() - issuedBefore).toBeGreaterThanOrEqual(2); // the first token, and the one after the 401
        expect(source.requests()).toEqual(expect.arrayContaining([expect.stringMatching(/^GET \/v2\/slow\/app\/blobs\//)]));
        await expectSameImage('slow/app', 'm/slow/app', 'v1');
      } finally {
        source.tokenServer!.setLifetime(300);
      }
    }, 30_000);
  });

  test('a blob that cannot finish before the deadline stops the copy (OutOfTime) after what fits; the next run resumes', async () => {
    await pushImage(source, 'big/app', 'v1', [layer(3_000_000), layer(200_000)]);
    let left = 60_000;
    const first = copier({ timeLeft: () => left, assumedBytesPerSecond: 1_000_000, concurrency: 1, freshInvocation: false });
    // the big layer needs 2 x 3 s + 10 s: it does not fit in 15 s, so nothing starts
    left = 15_000;
    const stopped = await first.copy({ sourceRepository: 'big/app', destinationRepository: 'm/big/app', tag: 'v1' }).catch(e => e);
    expect(stopped).toBeInstanceOf(OutOfTime);
    expect(await fetchManifest(destination, 'm/big/app', 'v1')).toBeUndefined();

    const resumed = await copier({ timeLeft: () => 60_000, assumedBytesPerSecond: 1_000_000 }).copy({ sourceRepository: 'big/app', destinationRepository: 'm/big/app', tag: 'v1' });
    expect(resumed.outcome).toBe('COPIED');
    await expectSameImage('big/app', 'm/big/app', 'v1');
  });

  test('a blob too large for any single invocation fails with TooLarge instead of being cut short', async () => {
    await pushImage(source, 'huge/app', 'v1', [layer(1_000_000)]);
    const error = await copier({ timeLeft: () => 5_000, assumedBytesPerSecond: 100_000, concurrency: 1 })
      .copy({ sourceRepository: 'huge/app', destinationRepository: 'm/huge/app', tag: 'v1' }).catch(e => e);
    expect(error).toMatchObject({ reason: FailureReason.TOO_LARGE, retryable: false });
    expect(error.message).toMatch(/needs about 30 s .* more than one invocation has \(5 s\)/);
  });

  test('wrong upstream credentials are Unauthorized, not retried', async () => {
    await pushImage(source, 'private/app', 'v1', [layer(1_000)]);
    const from = new RegistryClient({ url: source.url, credentials: { username: REGISTRY_USER, password: 'wrong' } });
    const to = new RegistryClient({ url: destination.url, authorization: destination.authorization });
    const error = await new ImageCopier(from, to, { retryDelayMs: 10 }).copy({ sourceRepository: 'private/app', destinationRepository: 'm/private/app', tag: 'v1' }).catch(e => e);
    expect(error).toMatchObject({ reason: FailureReason.UNAUTHORIZED, retryable: false });
  });

  test('a destination that refuses the token fails with DestinationRejected at its first request, not retried', async () => {
    await pushImage(source, 'denied/app', 'v1', [layer(1_000)]);
    const from = new RegistryClient({ url: source.url, credentials });
    const to = new RegistryClient({ url: destination.url, authorization: `Basic ${Buffer.from('AWS:expired').toString('base64')}` });
    const error = await new ImageCopier(from, to, { retryDelayMs: 10 }).copy({ sourceRepository: 'denied/app', destinationRepository: 'm/denied/app', tag: 'v1' })
      .catch(e => e);
    expect(error).toMatchObject({ reason: FailureReason.DESTINATION_REJECTED, retryable: false });
    expect(error.message).toBe('destination: HEAD /v2/m/denied/app/manifests/v1: the registry refused the token: HTTP 401');
    expect(to.requestCount).toBe(1);
  });

  test('tags of a repository, with a pattern and a bound: the highest versions', async () => {
    for (const tag of ['8.0.9', '8.0.10', '8.0.2', '9.0.0', '8.0.10-alpine']) {
      await pushImage(source, 'dotnet/sdk', tag, [layer(100)]);
    }
    const tags = await new RegistryClient({ url: source.url, credentials }).listTags('dotnet/sdk');
    expect(selectTags(tags, '8.0.*', 2)).toEqual(['8.0.10', '8.0.9']);
    expect(selectTags(tags, '8.0.*', 4)).toEqual(['8.0.10', '8.0.9', '8.0.2', '8.0.10-alpine']);
    expect(selectTags(tags, '8.0.?', 2)).toEqual([]);
    expect(selectTags(tags, '8.0.*[0-9]', 5)).toEqual([]);
  });
});

test('a blob redirected to another host (a CDN) is fetched there without the registry\'s credentials; a range request keeps its Range', async () => {
  const seen: Array<string | undefined> = [];
  const ranges: Array<string | undefined> = [];
  const cdn = http.createServer((req, res) => {
    seen.push(req.headers.authorization);
    ranges.push(req.headers.range);
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    if (start > 0) {
      res.writeHead(206, { 'Content-Range': `bytes ${start}-10/11` });
    }
    res.end('layer bytes'.slice(start));
  });
  const registry = http.createServer((req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(307, { Location: `http://127.0.0.1:${(cdn.address() as AddressInfo).port}/signed/blob?sig=abc` });
    res.end();
  });
  await Promise.all([cdn, registry].map(server => new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))));
  try {
    const client = new RegistryClient({ url: `http://127.0.0.1:${(registry.address() as AddressInfo).port}`, authorization: 'Basic c2VjcmV0' });
    const { body } = await client.getBlob('team/app', digestOf(Buffer.from('layer bytes')));
    const chunks: Buffer[] = [];
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
    }
    expect(String(Buffer.concat(chunks))).toBe('layer bytes');
    expect(seen).toEqual(['Basic c2VjcmV0', undefined]);
    // the rest of the blob from byte 6: the CDN gets the Range, still no credentials
    const rest = await client.getBlob('team/app', digestOf(Buffer.from('layer bytes')), 6);
    expect(rest.offset).toBe(6);
    const restChunks: Buffer[] = [];
    for await (const chunk of rest.body) {
      restChunks.push(chunk as Buffer);
    }
    expect(String(Buffer.concat(restChunks))).toBe('bytes');
    expect(seen).toEqual(['Basic c2VjcmV0', undefined, 'Basic c2VjcmV0', undefined]);
    expect(ranges).toEqual([undefined, 'bytes=6-']);
  } finally {
    for (const server of [cdn, registry]) {
      server.closeAllConnections();
      server.close();
    }
  }
});

test('a token realm that never answers is given up when the request\'s signal aborts (the deadline reaches the token request too)', async () => {
  let tokenAsked = false;
  // the registry asks for a bearer token from a realm on the same server, and the realm holds back its answer
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/token')) {
      tokenAsked = true;
      return; // no answer
    }
    const realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
    res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${realm}",service="loopback"` });
    res.end();
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  try {
    const client = new RegistryClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, credentials });
    const started = Date.now();
    const error = await client.getBlob('team/app', digestOf(Buffer.from('x')), 0, AbortSignal.timeout(300)).catch(e => e);
    expect(tokenAsked).toBe(true);
    expect(error).toBeInstanceOf(Error);
    expect(String(error.message)).toMatch(/^GET 127\.0\.0\.1:\d+\/token: .*aborted/);
    expect(Date.now() - started).toBeLessThan(3_000); // not the 60 s idle timeout
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

describe('pure parts', () => {
  test('image specs: exact tags, patterns, and clear errors', () => {
    expect(parseImageSpec('dotnet/runtime:8.0')).toEqual({ repository: 'dotnet/runtime', tag: '8.0', pattern: false });
    expect(parseImageSpec('ubi9/ubi:9.*')).toEqual({ repository: 'ubi9/ubi', tag: '9.*', pattern: true });
    expect(() => parseImageSpec('dotnet/runtime')).toThrow(/has no tag: write repository:tag/);
    expect(() => parseImageSpec('mcr.microsoft.com:443/dotnet/runtime')).toThrow(/has no tag/);
    expect(() => parseImageSpec('Dotnet/runtime:8.0')).toThrow(/is not a repository path/);
    expect(() => parseImageSpec('dotnet/runtime@sha256:abc')).toThrow(/name a tag, not a digest/);
    expect(() => parseImageSpec('dotnet/runtime:8.0+x')).toThrow(/is not a tag/);
  });

  test('OS variants of one version never crowd out other versions (mcr.microsoft.com/dotnet/runtime tags)', () => {
    const tags = ['8.0.15', '8.0.15-noble', '8.0.15-jammy', '8.0.15-alpine3.21', '8.0.15-bookworm-slim', '8.0.14', '8.0.14-noble',
      '8.0.16-noble', '8.0.16-alpine3.21', '8.0.13', '8.0', '8.0-noble', 'latest'];
    expect(selectTags(tags, '8.0.*', 3)).toEqual(['8.0.16-noble', '8.0.15', '8.0.14']);
    // a version's own tags come after one tag of every version, and in order: plain first, then the variants, highest first
    expect(selectTags(tags, '8.0.*', 6)).toEqual(['8.0.16-noble', '8.0.15', '8.0.14', '8.0.13', '8.0.16-alpine3.21', '8.0.15-noble']);
    expect(selectTags(tags, '8.0.*-noble', 2)).toEqual(['8.0.16-noble', '8.0.15-noble']);
    expect(selectTags(tags, '8.0*', 2)).toEqual(['8.0.16-noble', '8.0.15']);
    expect(selectTags(tags, '*', 20)).toHaveLength(tags.length);
  });

  test('the highest N tags are versions: words (latest, stable) never take their places, and v1.2.3 is the version 1.2.3', () => {
    const tags = ['latest', 'stable', 'edge', '1.2.2', '1.2.3', '2.0.0', '1.2.3-rc1', 'v1.9.0'];
    expect(selectTags(tags, '*', 3)).toEqual(['2.0.0', 'v1.9.0', '1.2.3']);
    // a tag without a version is copied only after every versioned one
    expect(selectTags(tags, '*', 8)).toEqual(['2.0.0', 'v1.9.0', '1.2.3', '1.2.2', '1.2.3-rc1', 'stable', 'latest', 'edge']);
    expect(selectTags(['v1.2.3', '1.2.3', '1.2.4'], '*', 2)).toEqual(['1.2.4', '1.2.3']);
    expect(selectTags(['1.2.3-rc1', '1.2.3', '1.2.2'], '*', 2)).toEqual(['1.2.3', '1.2.2']);
    expect(selectTags(['20240101', '20231231', '20240102-slim'], '*', 2)).toEqual(['20240102-slim', '20240101']);
  });

  test('Retry-After: seconds or an HTTP date, for 429 and 503 only, capped at a minute', () => {
    const now = Date.parse('Wed, 02 Dec 2026 12:00:00 GMT');
    expect(retryAfterMs(429, '3', now)).toBe(3_000);
    expect(retryAfterMs(503, 'Wed, 02 Dec 2026 12:00:05 GMT', now)).toBe(5_000);
    expect(retryAfterMs(503, 'Wed, 02 Dec 2026 11:59:00 GMT', now)).toBe(0);
    expect(retryAfterMs(429, '3600', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(MAX_RETRY_AFTER_MS).toBe(60_000);
    expect(retryAfterMs(500, '3', now)).toBeUndefined();
    expect(retryAfterMs(429, undefined, now)).toBeUndefined();
    expect(retryAfterMs(429, 'soon', now)).toBeUndefined();
    expect(retryAfterMs(429, '-1', now)).toBeUndefined();
    expect(retryAfterMs(429, '0', now)).toBe(0); // at once: the copy's own backoff still spaces the attempts
    expect(retryAfterMs(429, ' 2 ', now)).toBe(2_000);
    expect(retryAfterMs(503, '99999999999999999999999', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(retryAfterMs(429, '1.5', now)).toBeUndefined();
    expect(retryAfterMs(429, ['3', '4'], now)).toBeUndefined();
  });

  test('versions compare by their numbers', () => {
    expect(['1.10', '1.9', '1.2.3', '1.2'].sort(compareVersions)).toEqual(['1.2', '1.2.3', '1.9', '1.10']);
  });

  test('credentials follow a redirect only to the same origin: never to another host, port, or to http from https', () => {
    const from = new URL('https://registry.example/v2/app/blobs/x');
    expect(keepsCredentials(from, new URL('https://registry.example/v2/app/blobs/y'))).toBe(true);
    expect(keepsCredentials(from, new URL('http://registry.example/v2/app/blobs/x'))).toBe(false);
    expect(keepsCredentials(from, new URL('https://registry.example:8443/v2/app/blobs/x'))).toBe(false);
    expect(keepsCredentials(from, new URL('https://cdn.example/blob'))).toBe(false);
  });

  test('a token realm takes the credentials of an https registry only over https; a realm that is no URL is refused', () => {
    const challenge = (realm: string) => parseChallenge(`Bearer realm="${realm}",service="registry.example"`)!;
    expect(tokenRealm(challenge('https://auth.example/token'), 'https://registry.example', true).toString())
      .toBe('https://auth.example/token?service=registry.example');
    expect(() => tokenRealm(challenge('http://auth.example/token'), 'https://registry.example', true))
      .toThrow('https://registry.example names the token realm \'http://auth.example/token\': the registry\'s credentials are only sent to an https realm');
    expect(tokenRealm(challenge('http://auth.example/token'), 'https://registry.example', false).protocol).toBe('http:'); // anonymous: nothing to leak
    expect(tokenRealm(challenge('http://127.0.0.1:5001/token'), 'http://127.0.0.1:5000', true).host).toBe('127.0.0.1:5001');
    expect(() => tokenRealm(challenge('file:///etc/passwd'), 'https://registry.example', false)).toThrow(/names the token realm 'file:\/\/\/etc\/passwd': the registry's credentials are only sent to an https realm/);
    expect(() => tokenRealm(challenge('not a url'), 'https://registry.example', true)).toThrow('names the token realm \'not a url\', which is not a URL');
  });

  test('challenges are parsed with their quoted parameters', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"')).toEqual({
      scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
    });
    expect(parseChallenge('Basic realm="x"')).toEqual({ scheme: 'basic', params: { realm: 'x' } });
  });
});
