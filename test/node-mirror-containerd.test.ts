/**
 * The generated hosts.toml, read by a real containerd: `ctr image pull docker.io/library/busybox:1.36` goes to a
 * local Distribution registry standing in for the ECR cache (basic auth, the image under `docker-hub/library/`),
 * and never to a fake Docker Hub (a Distribution registry behind a bearer token service that records every
 * credential offered to it). The only change to the generated files is the one a test needs: the cache URL
 * points at loopback, over http.
 *
 * Credentials: `ctr image pull --user` offers the user and password to every host it tries, which is what
 * containerd's CRI does with the credentials kubelet gets from ecr-credential-provider: kubelet sends them
 * with no server address (kubernetes/kubernetes@4f3d0e3b pkg/credentialprovider/keyring.go), and `ParseAuth`
 * scopes them to a host only when one is set (containerd/containerd@28e7ad24
 * internal/cri/server/images/image_pull.go). So what the token service sees here is what a node would send.
 *
 * Needs root and the Debian package containerd (./scripts/install-test-deps). Where the machine cannot run it,
 * the test says why and is skipped, except in CI (CI set), where that is a failure.
 */
import { execFile, execFileSync } from 'child_process';
import { mkdirSync, writeFileSync } from 'fs';
import * as http from 'http';
import { join } from 'path';
import { promisify } from 'util';
import { Stack } from 'aws-cdk-lib';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import { PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';
import { Containerd, startContainerd, whyNoContainerd } from './support/containerd';
import { freePort } from './support/moto';
import { OciRegistry, REGISTRY_PASSWORD, REGISTRY_USER, pushImage, startRegistry } from './support/oci-registry';
import { testApp, testDir } from './util';

const CACHE_DOMAIN = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';

function cacheOf() {
  const stack = new Stack(testApp(), 'Nodes', { env: { account: '111122223333', region: 'eu-west-1' } });
  return new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }), UpstreamRegistry.quay()],
    enableScanning: false,
    enableMonitoring: false,
  });
}

/** The hosts.toml files the construct generates, written under a hosts dir with the cache on loopback. */
function writeHostsDir(cache: Pick<OciRegistry, 'url'>): string {
  const dir = testDir('hosts-');
  for (const mirror of cacheOf().nodeMirrors().mirrors) {
    expect(mirror.hostsToml).toContain(`https://${CACHE_DOMAIN}/v2/`);
    mkdirSync(join(dir, mirror.registry));
    writeFileSync(join(dir, mirror.registry, 'hosts.toml'), mirror.hostsToml.split(`https://${CACHE_DOMAIN}`).join(cache.url));
  }
  return dir;
}

/**
 * A fake upstream registry with its own token service, as Docker Hub, Quay and GHCR have: every request without
 * the anonymous bearer token gets a `WWW-Authenticate: Bearer realm=<token service>` challenge; the token service
 * records what it was offered (the `Authorization` header and the body of an OAuth POST) and issues that token
 * to anyone; with it, requests are passed to a Distribution registry.
 */
interface FakeUpstream {
  readonly url: string;
  /** Everything offered to the token service so far: `<method> <Authorization header> <body>`. */
  offered(): string[];
  /** The registry requests so far (`HEAD /v2/...`), challenged or not. */
  requests(): string[];
  stop(): Promise<void>;
}

async function startFakeUpstream(registry: OciRegistry): Promise<FakeUpstream> {
  const offered: string[] = [];
  const requests: string[] = [];
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => {
      if (req.url!.startsWith('/token')) {
        offered.push(`${req.method} ${req.headers.authorization ?? '-'} ${Buffer.concat(chunks).toString() || '-'}`);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'anonymous', access_token: 'anonymous' }));
        return;
      }
      requests.push(`${req.method} ${req.url!.replace(/\?.*$/, '')}`);
      if (req.headers.authorization !== 'Bearer anonymous') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${url}/token",service="fake-upstream",scope="repository:library/busybox:pull"` }).end();
        return;
      }
      const { authorization: _, host: __, ...headers } = req.headers;
      const upstream = http.request(`${registry.url}${req.url}`, { method: req.method, headers }, answer => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', e => res.writeHead(502).end(String(e)));
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve));
  return {
    url,
    offered: () => [...offered],
    requests: () => [...requests],
    stop: () => new Promise<void>(resolve => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/**
 * The fallback hosts.toml this library generated before fallback was refused (the cache first, the upstream as
 * the server): kept to prove the refusal's reason on a real containerd.
 */
function writeFallbackHostsDir(cache: Pick<OciRegistry, 'url'>, upstream: FakeUpstream): string {
  const dir = testDir('hosts-fallback-');
  mkdirSync(join(dir, 'docker.io'));
  writeFileSync(join(dir, 'docker.io', 'hosts.toml'), [
    `server = "${upstream.url}"`,
    '',
    `[host."${cache.url}/v2/docker-hub"]`,
    '  capabilities = ["pull", "resolve"]',
    '  override_path = true',
    '',
  ].join('\n'));
  return dir;
}

/** A one-file layer, uncompressed (containerd detects that), so its digest is its diff id and it unpacks. */
function layer(text: string): Buffer {
  const dir = testDir('layer-');
  writeFileSync(join(dir, 'hello.txt'), text);
  return execFileSync('tar', ['-cf', '-', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', dir, 'hello.txt']);
}

function pullArgs(hostsDir: string, image: string, password: string): string[] {
  return ['image', 'pull', '--hosts-dir', hostsDir, '--user', `${REGISTRY_USER}:${password}`, '--platform', 'linux/amd64', '--snapshotter', 'native', image];
}

/** Pulls as a node does: with the ECR credentials (here the cache's test account, or a wrong password) offered to every host. */
function pull(containerd: Containerd, hostsDir: string, image: string, password = REGISTRY_PASSWORD): string {
  return containerd.ctr(pullArgs(hostsDir, image, password));
}

/**
 * The same pull, without blocking the event loop: needed when a server of this process (the fake upstream)
 * must answer during the pull. A pull that did not leak also answers from this process's server, so the
 * assertions on the fake upstream stay true either way.
 */
async function pullAsync(containerd: Containerd, hostsDir: string, image: string, password = REGISTRY_PASSWORD): Promise<void> {
  await promisify(execFile)('ctr', ['--address', containerd.address, ...pullArgs(hostsDir, image, password)], { timeout: 60_000 });
}

/** Whether anything offered to a token service carries the password (plain, form-encoded or in a Basic header). */
function carries(offered: string[], password: string): boolean {
  const basic = Buffer.from(`${REGISTRY_USER}:${password}`).toString('base64');
  return offered.some(o => o.includes(password) || o.includes(encodeURIComponent(password)) || o.includes(basic));
}

/**
 * The requests a registry logged since `before` (its log length then). `ctr` runs synchronously, so the log
 * lines wait in the pipe until the event loop runs: wait until no new line arrives for 300 ms.
 */
async function requestsSince(registry: OciRegistry, before: number): Promise<string[]> {
  let seen = -1;
  while (registry.requests().length !== seen) {
    seen = registry.requests().length;
    await new Promise(r => setTimeout(r, 300));
  }
  // containerd names the registry the image is from in a query parameter of mirror requests (`?ns=docker.io`)
  return registry.requests().slice(before).map(r => r.replace(/\?ns=[^&]*$/, ''));
}

const why = whyNoContainerd();
if (why && process.env.CI) {
  test('containerd is available in CI', () => {
    throw new Error(`the node mirror tests cannot run: ${why}`);
  });
} else if (why) {
  // eslint-disable-next-line no-console
  console.warn(`node-mirror-containerd.test.ts skipped: ${why}`);
  test.skip(`containerd pulls through the generated hosts.toml (skipped: ${why})`, () => undefined);
} else {
  describe('a real containerd pulls through the generated hosts.toml', () => {
    let containerd: Containerd;
    let cache: OciRegistry;
    let dockerHub: OciRegistry;
    let upstream: FakeUpstream;
    let cachedDigest: string;
    let upstreamDigest: string;

    beforeAll(async () => {
      [containerd, cache, dockerHub] = await Promise.all([startContainerd(), startRegistry({ basicAuth: true }), startRegistry()]);
      upstream = await startFakeUpstream(dockerHub);
      cachedDigest = (await pushImage(cache, 'docker-hub/library/busybox', '1.36', [layer('from the cache')])).digest;
      await pushImage(cache, 'quay/prometheus/prometheus', 'v3.5.0', [layer('prometheus from the cache')]);
      upstreamDigest = (await pushImage(dockerHub, 'library/busybox', '1.36', [layer('from docker hub')])).digest;
    }, 60_000);

    afterAll(async () => {
      await Promise.all([containerd?.stop(), cache?.stop(), dockerHub?.stop(), upstream?.stop()]);
    });

    afterEach(() => {
      const images = containerd.ctr(['image', 'ls', '-q']).split('\n').filter(Boolean);
      if (images.length > 0) {
        containerd.ctr(['image', 'rm', '--sync', ...images]); // and its content, so the next pull fetches again
      }
    });

    test('docker.io and quay.io images come from the cache prefixes, with the credentials, and from nowhere else', async () => {
      const hosts = writeHostsDir(cache);
      const before = cache.requests().length;

      pull(containerd, hosts, 'docker.io/library/busybox:1.36');
      pull(containerd, hosts, 'quay.io/prometheus/prometheus:v3.5.0');

      expect(containerd.ctr(['image', 'ls', '-q']).split('\n').filter(Boolean).sort())
        .toEqual(['docker.io/library/busybox:1.36', 'quay.io/prometheus/prometheus:v3.5.0']);
      expect(containerd.ctr(['image', 'ls'])).toContain(cachedDigest);
      const requests = await requestsSince(cache, before);
      expect(requests).toEqual(expect.arrayContaining([
        'HEAD /v2/docker-hub/library/busybox/manifests/1.36',
        'HEAD /v2/quay/prometheus/prometheus/manifests/v3.5.0',
      ]));
      // every request asked for the image under its cache prefix (Docker Hub's library/ added by containerd)
      expect(requests.filter(r => !/^[A-Z]+ \/v2\/(docker-hub\/library\/busybox|quay\/prometheus\/prometheus)\//.test(r))).toEqual([]);
    }, 60_000);

    test('a cache that refuses the credentials fails the pull; the upstream and its token service are never asked', async () => {
      const hosts = writeHostsDir(cache);
      const before = cache.requests().length;
      await expect(pullAsync(containerd, hosts, 'docker.io/library/busybox:1.36', 'expired-ecr-token')).rejects.toThrow(/401 Unauthorized|unauthorized/i);
      expect(await requestsSince(cache, before)).toContain('HEAD /v2/docker-hub/library/busybox/manifests/1.36');
      expect(upstream.requests()).toEqual([]);
      expect(upstream.offered()).toEqual([]);
      expect(containerd.ctr(['image', 'ls', '-q'])).toBe('');
    }, 60_000);

    test('an unreachable cache fails the pull; the upstream and its token service are never asked', async () => {
      const unreachable = { url: `http://127.0.0.1:${await freePort()}` }; // nothing listens there
      await expect(pullAsync(containerd, writeHostsDir(unreachable), 'docker.io/library/busybox:1.36')).rejects.toThrow(/connection refused/);
      expect(upstream.requests()).toEqual([]);
      expect(upstream.offered()).toEqual([]);
    }, 60_000);

    test('with fallback and on Bottlerocket, the library refuses to generate the node files', () => {
      const rules = cacheOf();
      expect(() => rules.nodeMirrors({ fallbackToUpstream: true })).toThrow(/fallbackToUpstream: true \}\) is refused: it would send the node's ECR credentials/);
      expect(() => rules.nodeMirrors().userData(eks.NodegroupAmiType.BOTTLEROCKET_X86_64)).toThrow(/Bottlerocket nodes .* cannot mirror the cache safely/);
    });

    // Why: the hosts.toml fallback generated before hands the ECR password to the upstream's token service, and
    // the pull still works only because this fake token service, unlike Docker Hub's, accepts any credentials.
    test('the reason for the refusal: a fallback hosts.toml offers the node\'s ECR password to the upstream\'s token service', async () => {
      const unreachable = { url: `http://127.0.0.1:${await freePort()}` };
      expect(upstream.offered()).toEqual([]);
      await pullAsync(containerd, writeFallbackHostsDir(unreachable, upstream), 'docker.io/library/busybox:1.36');
      expect(containerd.ctr(['image', 'ls'])).toContain(upstreamDigest);
      expect(upstream.offered().length).toBeGreaterThan(0);
      expect(carries(upstream.offered(), REGISTRY_PASSWORD)).toBe(true);
    }, 60_000);
  });
}
