/**
 * The warm-up handler as CloudFormation drives it: each request's response is PUT to an HTTP server on loopback
 * (standing in for the pre-signed S3 URL); a CNCF Distribution registry on loopback, with Basic auth, stands in for
 * the cache's registry endpoint (what the handler pulls through is the OCI distribution API either way); ECR's API
 * (GetAuthorizationToken, DescribeImageScanFindings) is aws-sdk-client-mock, shaped as the API reference
 * (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImageScanFindings.html).
 */
import { createServer, Server } from 'http';
import { AddressInfo } from 'net';
import { DescribeImageScanFindingsCommand, ECRClient, GetAuthorizationTokenCommand, ScanNotFoundException } from '@aws-sdk/client-ecr';
import { mockClient } from 'aws-sdk-client-mock';
import { RegistryClient } from '../../src/mirror/oci-client';
import { IMAGES_PER_RESOURCE, WarmUpImageProperties } from '../../src/prewarm/contract';
import { handler, useRegistry } from '../../src/prewarm/warm-up.lambda';
import { HttpFault, startHttpFaultProxy } from '../support/fault-proxy';
import { captureLog, emfValues } from '../support/moto';
import { OciRegistry, PushedImage, PushedIndex, pushImage, pushIndex, startRegistry } from '../support/oci-registry';

const ecr = mockClient(ECRClient);
let registry: OciRegistry;
let server: Server;
let url: string;
let received: Array<Record<string, any>> = [];
let nginx: PushedImage;
let multi: PushedIndex;

const NGINX = { Repository: 'docker-hub/library/nginx', Tag: '1.25', Platforms: 'linux/amd64' };
const MULTI = { Repository: 'quay/org/app', Tag: 'v1', Platforms: 'linux/amd64,linux/arm64' };

beforeAll(async () => {
  process.env.AWS_REGION = 'eu-west-1';
  registry = await startRegistry({ basicAuth: true });
  nginx = await pushImage(registry, NGINX.Repository, NGINX.Tag, [Buffer.from('layer one of nginx'), Buffer.from('layer two of nginx')]);
  multi = await pushIndex(registry, MULTI.Repository, MULTI.Tag, [
    { os: 'linux', architecture: 'amd64', layers: [Buffer.from('amd64 layer')] },
    { os: 'linux', architecture: 'arm64', layers: [Buffer.from('arm64 layer')] },
    { os: 'linux', architecture: 's390x', layers: [Buffer.from('s390x layer')] },
  ]);
  server = createServer((req, res) => {
    let data = '';
    req.on('data', chunk => (data += chunk));
    req.on('end', () => {
      received.push(JSON.parse(data));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/response?X-Amz-Signature=abc`;
}, 60_000);

afterAll(async () => {
  useRegistry(undefined);
  server.closeAllConnections();
  await new Promise(resolve => server.close(resolve));
  await registry?.stop();
});

beforeEach(() => {
  ecr.reset();
  received = [];
  // ECR's token is base64("AWS:<password>"), sent as Basic: the loopback registry's account stands in for it
  ecr.on(GetAuthorizationTokenCommand).resolves({
    authorizationData: [{ proxyEndpoint: registry.url, authorizationToken: registry.authorization!.replace(/^Basic /, '') }],
  });
  useRegistry(undefined, { backoffMs: 10, pollMs: 10 });
});

function event(images: WarmUpImageProperties[], extra: Record<string, unknown> = {}) {
  return {
    RequestType: 'Create' as const,
    ResponseURL: url,
    StackId: 'arn:aws:cloudformation:eu-west-1:111122223333:stack/App/0f1e2d3c',
    RequestId: `req-${Math.random()}`,
    LogicalResourceId: 'WarmUp',
    ResourceType: 'Custom::EcrPullThroughCacheWarmUp',
    ResourceProperties: { ServiceToken: 'arn', Images: images, RetryBudgetSeconds: '5', Concurrency: '4', ...extra },
  };
}

/** Runs one request; returns CloudFormation's answer and what the handler logged. */
async function run(images: WarmUpImageProperties[], extra: Record<string, unknown> = {}) {
  const { lines, error } = await captureLog(() => handler(event(images, extra)));
  expect(error).toBeUndefined();
  expect(received).toHaveLength(1);
  return { answer: received[0], lines, metrics: emfValues(lines) };
}

/** The registry's requests made while `fn` ran. */
async function requestsDuring(fn: () => Promise<unknown>): Promise<string[]> {
  const before = registry.requests().length;
  await fn();
  await new Promise(r => setTimeout(r, 200)); // the access log is written after the response
  return registry.requests().slice(before);
}

describe('warm by tag', () => {
  test('pulls the manifest by tag and asks for every blob, and answers the digest the tag resolved to', async () => {
    let answer: Record<string, any> = {};
    const requests = await requestsDuring(async () => ({ answer } = await run([NGINX])));
    expect(answer.Status).toBe('SUCCESS');
    expect(answer.Data).toEqual({ Digest0: nginx.digest });
    expect(requests).toContain(`GET /v2/${NGINX.Repository}/manifests/1.25`);
    const config = JSON.parse(nginx.manifest.toString()).config.digest;
    for (const blob of [config, ...nginx.layers]) {
      expect(requests).toContain(`GET /v2/${NGINX.Repository}/blobs/${blob}`);
    }
    // by tag, never by digest: a first pull by digest does not fill a pull through cache (aws/containers-roadmap#2837)
    expect(requests.filter(r => r.includes('/manifests/sha256:'))).toEqual([]);
    expect(ecr.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(1);
  });

  test('a multi-platform image warms the platforms asked for, and no other', async () => {
    let answer: Record<string, any> = {};
    const requests = await requestsDuring(async () => ({ answer } = await run([MULTI, NGINX])));
    expect(answer.Status).toBe('SUCCESS');
    expect(answer.Data).toEqual({ Digest0: multi.digest, Digest1: nginx.digest });
    const [amd64, arm64, s390x] = multi.images;
    expect(requests).toContain(`GET /v2/${MULTI.Repository}/manifests/${amd64.digest}`);
    expect(requests).toContain(`GET /v2/${MULTI.Repository}/manifests/${arm64.digest}`);
    expect(requests).toContain(`GET /v2/${MULTI.Repository}/blobs/${arm64.layers[0]}`);
    expect(requests.some(r => r.includes(s390x.digest) || r.includes(s390x.layers[0]))).toBe(false);
  });

  test('a platform the image does not have fails the deploy, naming what it offers', async () => {
    const { answer } = await run([{ ...MULTI, Platforms: 'linux/arm/v7' }]);
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('quay/org/app:v1: the image has no linux/arm/v7 manifest; it offers linux/amd64, linux/arm64, linux/s390x');
  });

  test('an image the upstream does not have fails the deploy with its name and the registry\'s answer; the others are still warmed', async () => {
    const { answer, metrics } = await run([NGINX, { ...NGINX, Tag: '0.0-missing' }, { ...NGINX, Repository: 'docker-hub/library/nope' }]);
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toMatch(/^2 of 3 images could not be pulled through the cache: /);
    expect(answer.Reason).toMatch(/docker-hub\/library\/nginx:0\.0-missing: GET manifest docker-hub\/library\/nginx:0\.0-missing: HTTP 404 \(MANIFEST_UNKNOWN: /);
    expect(answer.Reason).toMatch(/docker-hub\/library\/nope:1\.25: GET manifest .*HTTP 404 \(MANIFEST_UNKNOWN: /); // Distribution 2.8 answers an unknown repository so too
    expect(metrics['ImagesFailed{Stack=App}']).toBe(2);
    expect(metrics['ImagesWarmed{Stack=App}']).toBe(1);
  });

  test('an image of another registry (a cache of another region or account, written with its imageUri) fails, naming both; it is not warmed here', async () => {
    // the token of GetAuthorizationToken is for this function's own registry (its account and region): pulling the
    // repository there would warm (and pin) another registry's image than the workload pulls
    const here = new URL(registry.url).host;
    const requests = await requestsDuring(() => captureLog(() => handler(event([
      { ...NGINX, Registry: '111122223333.dkr.ecr.us-west-2.amazonaws.com' }, { ...MULTI, Registry: here },
    ]))));
    expect(received[0].Status).toBe('FAILED');
    expect(received[0].Reason).toContain('1 of 2 images could not be pulled through the cache: docker-hub/library/nginx:1.25: '
      + `its registry 111122223333.dkr.ecr.us-west-2.amazonaws.com is not ${here}, the registry of this function's account and region; `
      + 'warm it from a stack in the cache\'s account and region');
    expect(requests.some(r => r.includes('nginx'))).toBe(false);
    expect(requests.some(r => r.includes('quay/org/app'))).toBe(true);
  });

  test('refused credentials fail at once, not after the retry budget', async () => {
    ecr.on(GetAuthorizationTokenCommand).resolves({ authorizationData: [{ proxyEndpoint: registry.url, authorizationToken: 'bm9ib2R5Om5vdGhpbmc=' }] });
    const started = Date.now();
    const { answer } = await run([NGINX]);
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('docker-hub/library/nginx:1.25: ');
    expect(answer.Reason).toContain('refused the token');
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  test('no token from ECR fails the deploy, saying so', async () => {
    ecr.on(GetAuthorizationTokenCommand).resolves({ authorizationData: [] });
    const { answer } = await run([NGINX]);
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('GetAuthorizationToken returned no token or endpoint');
  });

  test('a throttled GetAuthorizationToken (after the SDK\'s own retries) fails the deploy with the error', async () => {
    ecr.on(GetAuthorizationTokenCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const { answer } = await run([NGINX]);
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('GetAuthorizationToken failed (ThrottlingException: Rate exceeded), so no image could be warmed');
  });

  test('an Update (each deploy) resolves the tag again and keeps the physical id', async () => {
    const repository = 'quay/org/moving';
    const first = await pushImage(registry, repository, 'stable', [Buffer.from('release 1')]);
    const { answer: created } = await run([{ Repository: repository, Tag: 'stable', Platforms: 'linux/amd64' }]);
    expect(created.Data).toEqual({ Digest0: first.digest });
    const second = await pushImage(registry, repository, 'stable', [Buffer.from('release 2')]);
    received = [];
    const update = { ...event([{ Repository: repository, Tag: 'stable', Platforms: 'linux/amd64' }]), RequestType: 'Update' as const, PhysicalResourceId: created.PhysicalResourceId };
    await captureLog(() => handler(update));
    expect(received[0]).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'warm-up:WarmUp', Data: { Digest0: second.digest } });
    expect(second.digest).not.toBe(first.digest);
  });

  test('a Delete (the stack\'s, or a rollback\'s) pulls nothing and succeeds', async () => {
    const requests = await requestsDuring(() => captureLog(() => handler({ ...event([NGINX]), RequestType: 'Delete', PhysicalResourceId: 'warm-up:WarmUp' })));
    expect(received[0]).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'warm-up:WarmUp' });
    expect(requests).toEqual([]);
    expect(ecr.calls()).toHaveLength(0);
  });

  test('the template\'s fault (no Images) is said with what was received', async () => {
    const { answer } = await captureLog(() => handler({ ...event([]), ResourceProperties: { RetryBudgetSeconds: '5', Concurrency: '1' } }))
      .then(() => ({ answer: received[0] }));
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('Images must be a list of { Repository, Tag, Platforms }; got undefined');
  });

  test('a Concurrency that is not a whole number of images is refused as such', async () => {
    await captureLog(() => handler(event([NGINX], { Concurrency: '0.5' })));
    expect(received[0].Status).toBe('FAILED');
    expect(received[0].Reason).toContain('Concurrency must be a whole number of images, at least 1; got "0.5"');
  });

  test('properties that would let the gate judge nothing are refused, not passed: an unknown severity, an image with no platform', async () => {
    ecr.on(DescribeImageScanFindingsCommand).resolves({ imageScanStatus: { status: 'COMPLETE' }, imageScanFindings: { findings: [{ name: 'CVE-2026-0001', severity: 'CRITICAL' }] } });
    const gate = { Gate: { Severity: 'SEVERE', Unscannable: 'FAIL', TimeoutSeconds: '2' } };
    await captureLog(() => handler(event([NGINX], gate)));
    await captureLog(() => handler(event([{ ...MULTI, Platforms: '' }], { Gate: { ...gate.Gate, Severity: 'CRITICAL' } })));
    expect(received.map(r => r.Status)).toEqual(['FAILED', 'FAILED']);
    expect(received[0].Reason).toContain('Gate.Severity must be one of INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL; got "SEVERE"');
    expect(received[1].Reason).toContain('Images[0] (quay/org/app:v1) names no platform to warm; got Platforms ""');
  });

  test('a resource holds few enough images that its digests fit the 4096-byte response', () => {
    const data = Object.fromEntries(Array.from({ length: IMAGES_PER_RESOURCE }, (_, i) => [`Digest${i}`, `sha256:${'f'.repeat(64)}`]));
    const body = {
      Status: 'SUCCESS',
      PhysicalResourceId: 'warm-up:WarmUpAbcdef12',
      StackId: `arn:aws:cloudformation:ap-southeast-2:111122223333:stack/${'s'.repeat(128)}/${'0'.repeat(36)}`,
      RequestId: '0'.repeat(36),
      LogicalResourceId: 'L'.repeat(255),
      Data: data,
    };
    expect(Buffer.byteLength(JSON.stringify(body))).toBeLessThanOrEqual(4096);
  });
});

describe('the ECR token stays with the registry', () => {
  // ECR answers a layer GET with a redirect to a presigned storage URL
  // (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetDownloadUrlForLayer.html); a hostile or
  // mistaken answer may also name another host as a token realm, or in a manifest's `urls`
  // (https://github.com/opencontainers/image-spec/blob/main/descriptor.md#properties)
  let elsewhere: Server;
  let elsewhereUrl: string;
  let cache: Server;
  let cacheUrl: string;
  const seenElsewhere: string[] = [];
  const seenByCache: Array<{ path: string; authorization?: string }> = [];
  const config = `sha256:${'c'.repeat(64)}`;
  const layer = `sha256:${'d'.repeat(64)}`;

  beforeAll(async () => {
    elsewhere = createServer((req, res) => {
      seenElsewhere.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      res.writeHead(200).end('{"token":"t"}');
    });
    await new Promise<void>(resolve => elsewhere.listen(0, '127.0.0.1', resolve));
    elsewhereUrl = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: 4, urls: [`${elsewhereUrl}/layer`] }],
    });
    cache = createServer((req, res) => {
      seenByCache.push({ path: req.url!, authorization: req.headers.authorization });
      if (req.url === '/v2/quay/org/realm/manifests/v1') {
        res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${elsewhereUrl}/token",service="x"` }).end();
      } else if (req.url!.includes('/manifests/')) {
        res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest);
      } else {
        res.writeHead(307, { Location: `${elsewhereUrl}/presigned${req.url}?X-Amz-Signature=s` }).end();
      }
    });
    await new Promise<void>(resolve => cache.listen(0, '127.0.0.1', resolve));
    cacheUrl = `http://127.0.0.1:${(cache.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const s of [elsewhere, cache]) {
      s.closeAllConnections();
      await new Promise(resolve => s.close(resolve));
    }
  });

  beforeEach(() => {
    useRegistry(async () => new RegistryClient({ url: cacheUrl, authorization: 'Basic ecr-token' }), { backoffMs: 10, pollMs: 10 });
  });

  test('blob redirects are not followed and a manifest\'s urls are not fetched: the token goes to the registry only', async () => {
    const { answer } = await run([{ Repository: 'quay/org/layers', Tag: 'v1', Platforms: 'linux/amd64' }]);
    expect(answer.Status).toBe('SUCCESS');
    expect(seenByCache.map(r => r.path)).toEqual([
      '/v2/quay/org/layers/manifests/v1', `/v2/quay/org/layers/blobs/${config}`, `/v2/quay/org/layers/blobs/${layer}`,
    ]);
    expect(seenByCache.every(r => r.authorization === 'Basic ecr-token')).toBe(true);
    expect(seenElsewhere).toEqual([]);
  });

  test('a token realm on another host is never asked: the refusal fails the image, naming it', async () => {
    const { answer } = await run([{ Repository: 'quay/org/realm', Tag: 'v1', Platforms: 'linux/amd64' }]);
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('quay/org/realm:v1: GET /v2/quay/org/realm/manifests/v1: the registry refused the token');
    expect(seenElsewhere).toEqual([]);
  });
});

describe('retries within the budget', () => {
  let proxyUrl: string;
  let stopProxy: () => Promise<void>;
  let decide: (method: string, path: string) => HttpFault;
  beforeAll(async () => {
    const proxy = await startHttpFaultProxy(registry.url, (method, path) => decide(method, path));
    proxyUrl = proxy.endpoint;
    stopProxy = () => proxy.stop();
  });
  afterAll(() => stopProxy());

  function through(idleTimeoutMs = 10_000) {
    useRegistry(async () => new RegistryClient({ url: proxyUrl, authorization: registry.authorization, idleTimeoutMs }), { backoffMs: 10 });
  }

  test('throttling (429 with Retry-After, then 503) is retried until the registry answers', async () => {
    let manifestCalls = 0;
    decide = (_, path) => path.includes('/manifests/1.25') && manifestCalls++ < 3
      ? { kind: 'status', status: manifestCalls === 1 ? 503 : 429, headers: { 'Retry-After': '0' } } : { kind: 'pass' };
    through();
    const { answer, lines, metrics } = await run([NGINX]);
    expect(answer.Status).toBe('SUCCESS');
    expect(answer.Data).toEqual({ Digest0: nginx.digest });
    expect(lines.find(l => l.message === 'image warmed')?.retries).toBe(3);
    expect(metrics['Retries{Stack=App}']).toBe(3);
  });

  test('a registry slower than the idle limit is retried, and succeeds when it answers in time', async () => {
    let slow = 2;
    decide = (_, path) => path.includes('/manifests/1.25') && slow-- > 0 ? { kind: 'delay', ms: 1_000 } : { kind: 'pass' };
    through(300);
    const { answer, lines } = await run([NGINX]);
    expect(answer.Status).toBe('SUCCESS');
    expect(lines.find(l => l.message === 'image warmed')?.retries).toBe(2);
  });

  test('a registry throttling for longer than the budget fails the deploy within the budget, saying so', async () => {
    decide = (_, path) => path.includes('/manifests/') ? { kind: 'status', status: 429 } : { kind: 'pass' };
    through();
    const started = Date.now();
    const { answer } = await run([NGINX], { RetryBudgetSeconds: '1' });
    const elapsed = Date.now() - started;
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toMatch(/docker-hub\/library\/nginx:1\.25: .*HTTP 429.*; gave up after \d+ retries in [\d.]+ s of the 1 s retry budget/);
    expect(elapsed).toBeGreaterThanOrEqual(500);
    expect(elapsed).toBeLessThan(2_500);
  });
});

describe('scan gate', () => {
  const gate = (extra: Record<string, unknown> = {}) => ({
    Gate: { Severity: 'CRITICAL', Unscannable: 'FAIL', TimeoutSeconds: '2', ...extra },
  });
  const complete = (findings: Array<{ name: string; severity: 'CRITICAL' | 'HIGH' | 'LOW' }>) => ({
    imageScanStatus: { status: 'COMPLETE' as const }, imageScanFindings: { findings },
  });

  test('a CRITICAL finding fails the deploy with the findings summary', async () => {
    ecr.on(DescribeImageScanFindingsCommand).resolves(complete([
      { name: 'CVE-2026-0001', severity: 'CRITICAL' }, { name: 'CVE-2026-0002', severity: 'HIGH' },
    ]));
    const { answer, metrics } = await run([NGINX], gate());
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('Scan gate: 1 of 1 images fail at CRITICAL or above.');
    expect(answer.Reason).toContain(`docker-hub/library/nginx:1.25 (${nginx.digest.slice(0, 19)}): 1 CRITICAL (CVE-2026-0001)`);
    expect(answer.Reason).not.toContain('CVE-2026-0002');
    expect(metrics['GateFailures{Stack=App}']).toBe(1);
    expect(ecr.commandCalls(DescribeImageScanFindingsCommand)[0].args[0].input)
      .toMatchObject({ repositoryName: NGINX.Repository, imageId: { imageDigest: nginx.digest } });
  });

  test('the gate reads every page of findings (enhanced findings too)', async () => {
    ecr.on(DescribeImageScanFindingsCommand)
      .resolvesOnce({ ...complete([{ name: 'CVE-2026-0001', severity: 'LOW' }]), nextToken: 'page-2' })
      .resolves({ imageScanStatus: { status: 'ACTIVE' }, imageScanFindings: { enhancedFindings: [{ severity: 'CRITICAL', packageVulnerabilityDetails: { vulnerabilityId: 'CVE-2026-0009', source: 'NVD' } }] } });
    const { answer } = await run([NGINX], gate());
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('1 CRITICAL (CVE-2026-0009)');
  });

  test('allowCves lets the deploy pass; allowImages too', async () => {
    ecr.on(DescribeImageScanFindingsCommand).resolves(complete([{ name: 'CVE-2026-0001', severity: 'CRITICAL' }]));
    expect((await run([NGINX], gate({ AllowCves: ['CVE-2026-0001'] }))).answer.Status).toBe('SUCCESS');
    received = [];
    expect((await run([NGINX], gate({ AllowImages: ['docker-hub/library/nginx:1.25'] }))).answer.Status).toBe('SUCCESS');
    received = [];
    expect((await run([NGINX], gate({ AllowImages: ['docker-hub/library/nginx:1.24'] }))).answer.Status).toBe('FAILED');
  });

  test('a multi-platform image is gated on each platform\'s scan', async () => {
    ecr.on(DescribeImageScanFindingsCommand).resolves(complete([]))
      .on(DescribeImageScanFindingsCommand, { imageId: { imageDigest: multi.images[1].digest } })
      .resolves(complete([{ name: 'CVE-2026-0007', severity: 'CRITICAL' }]));
    const { answer } = await run([MULTI], gate());
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain(`quay/org/app:v1 (${multi.images[1].digest.slice(0, 19)}): 1 CRITICAL (CVE-2026-0007)`);
    expect(ecr.commandCalls(DescribeImageScanFindingsCommand).map(c => c.args[0].input.imageId?.imageDigest).sort())
      .toEqual([multi.images[0].digest, multi.images[1].digest].sort());
  });

  test('a scan still running is waited for', async () => {
    ecr.on(DescribeImageScanFindingsCommand)
      .rejectsOnce(new ScanNotFoundException({ message: 'no scan', $metadata: {} }))
      .resolvesOnce({ imageScanStatus: { status: 'IN_PROGRESS' } })
      .resolves(complete([{ name: 'CVE-2026-0003', severity: 'HIGH' }]));
    const { answer } = await run([NGINX], gate());
    expect(answer.Status).toBe('SUCCESS');
    expect(ecr.commandCalls(DescribeImageScanFindingsCommand)).toHaveLength(3);
  });

  test('an unscannable image fails under the FAIL rule and passes, logged, under ALLOW', async () => {
    ecr.on(DescribeImageScanFindingsCommand).resolves({
      imageScanStatus: { status: 'UNSUPPORTED_IMAGE', description: 'UnsupportedImageError: The operating system and/or package manager are not supported.' },
    });
    const failed = await run([NGINX], gate());
    expect(failed.answer.Status).toBe('FAILED');
    expect(failed.answer.Reason).toContain('cannot be scanned (UNSUPPORTED_IMAGE: UnsupportedImageError');
    expect(failed.answer.Reason).toContain('unscannable rule to ALLOW');
    received = [];
    const allowed = await run([NGINX], gate({ Unscannable: 'ALLOW' }));
    expect(allowed.answer.Status).toBe('SUCCESS');
    expect(allowed.lines.find(l => l.message === 'scan gate')).toMatchObject({ level: 'WARN', outcome: 'UNSCANNABLE_ALLOWED' });
  });

  test('no scan within the timeout fails the deploy (never a silent pass), and the wait is bounded', async () => {
    ecr.on(DescribeImageScanFindingsCommand).rejects(new ScanNotFoundException({ message: 'no scan', $metadata: {} }));
    const started = Date.now();
    const { answer } = await run([NGINX], gate({ TimeoutSeconds: '0.5', Unscannable: 'ALLOW' }));
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('no finished scan within 0.5 s (last status: no scan yet); is scanning on for this prefix');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  test('a scan that ended without findings (LIMIT_EXCEEDED) fails the deploy at once with its status, under either unscannable rule', async () => {
    // LIMIT_EXCEEDED is final (ECR-FACTS: ScanStatus values): waiting for it to finish would spend the whole timeout, then blame scanning
    ecr.on(DescribeImageScanFindingsCommand).resolves({ imageScanStatus: { status: 'LIMIT_EXCEEDED', description: 'The scan limit was exceeded.' } });
    const started = Date.now();
    const { answer } = await run([NGINX], gate({ TimeoutSeconds: '30', Unscannable: 'ALLOW' }));
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('the scan ended with no findings to judge (LIMIT_EXCEEDED: The scan limit was exceeded.)');
    expect(answer.Reason).not.toContain('is scanning on');
    expect(ecr.commandCalls(DescribeImageScanFindingsCommand)).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  describe('in a rollback', () => {
    // a rollback sends an Update with the previous deploy's properties (its Refresh, the earlier synthesis) and the failed
    // deploy's as OldResourceProperties; a failed answer leaves the stack UPDATE_ROLLBACK_FAILED
    // (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-update.html)
    const update = (refresh: string, oldRefresh: string) => ({
      ...event([NGINX], { ...gate(), Refresh: refresh }),
      RequestType: 'Update' as const,
      PhysicalResourceId: 'warm-up:WarmUp',
      OldResourceProperties: { ServiceToken: 'arn', Images: [NGINX], RetryBudgetSeconds: '5', Concurrency: '4', ...gate(), Refresh: oldRefresh },
    });
    beforeEach(() => {
      // a vulnerability found since the image passed the gate (enhanced scanning rescans continuously)
      ecr.on(DescribeImageScanFindingsCommand).resolves(complete([{ name: 'CVE-2026-0042', severity: 'CRITICAL' }]));
    });

    test('the gate does not fail the return to the previous images: it says so in the log and the metric, and answers their digests', async () => {
      const { lines } = await captureLog(() => handler(update('2026-01-01T10:00:00.000Z', '2026-01-01T11:00:00.000Z')));
      expect(received[0]).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'warm-up:WarmUp', Data: { Digest0: nginx.digest } });
      expect(lines.find(l => l.message === 'scan gate not enforced: rollback')).toMatchObject({
        level: 'WARN', reason: expect.stringContaining('1 CRITICAL (CVE-2026-0042)'),
      });
      expect(emfValues(lines)['GateFailures{Stack=App}']).toBe(1);
    });

    test('a rollback does not wait for scans: each is read once, and the return goes on', async () => {
      ecr.reset();
      ecr.on(GetAuthorizationTokenCommand).resolves({
        authorizationData: [{ proxyEndpoint: registry.url, authorizationToken: registry.authorization!.replace(/^Basic /, '') }],
      });
      ecr.on(DescribeImageScanFindingsCommand).rejects(new ScanNotFoundException({ message: 'no scan', $metadata: {} }));
      const rollback = update('2026-01-01T10:00:00.000Z', '2026-01-01T11:00:00.000Z');
      const started = Date.now();
      await captureLog(() => handler({ ...rollback, ResourceProperties: { ...rollback.ResourceProperties, ...gate({ TimeoutSeconds: '30' }) } }));
      expect(received[0].Status).toBe('SUCCESS');
      expect(ecr.commandCalls(DescribeImageScanFindingsCommand)).toHaveLength(1);
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    test('a forward deploy (a later synthesis), or one whose Refresh is fixed, is gated as always', async () => {
      await captureLog(() => handler(update('2026-01-01T11:00:00.000Z', '2026-01-01T10:00:00.000Z')));
      await captureLog(() => handler(update('fixed', 'fixed')));
      expect(received.map(r => r.Status)).toEqual(['FAILED', 'FAILED']);
      expect(received[0].Reason).toContain('1 CRITICAL (CVE-2026-0042)');
    });
  });

  test('an ECR error while reading a scan fails the deploy with the error', async () => {
    ecr.on(DescribeImageScanFindingsCommand).rejects(Object.assign(new Error('User is not authorized'), { name: 'AccessDeniedException' }));
    const { answer } = await run([NGINX], gate());
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain(`DescribeImageScanFindings of docker-hub/library/nginx@${nginx.digest}: AccessDeniedException: User is not authorized`);
  });
});
