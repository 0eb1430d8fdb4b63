/**
 * The generated hosts.toml, read by a real containerd: `ctr image pull docker.io/library/busybox:1.36` goes to a
 * local Distribution registry standing in for the ECR cache (basic auth, the image under `docker-hub/library/`),
 * and, with fallback on, to a second one standing in for Docker Hub. The only change to the generated files is
 * the one a test needs: the cache and upstream URLs point at loopback, over http.
 *
 * Needs root and the Debian package containerd (./scripts/install-test-deps). Where the machine cannot run it,
 * the test says why and is skipped, except in CI (CI set), where that is a failure.
 */
import { execFileSync } from 'child_process';
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Stack } from 'aws-cdk-lib';
import { PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';
import { Containerd, startContainerd, whyNoContainerd } from './support/containerd';
import { freePort } from './support/moto';
import { OciRegistry, REGISTRY_PASSWORD, REGISTRY_USER, pushImage, startRegistry } from './support/oci-registry';
import { testApp, testDir } from './util';

const CACHE_DOMAIN = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';

/** The hosts.toml files the construct generates, written under a hosts dir with the cache (and upstream) on loopback. */
function writeHostsDir(options: { fallbackToUpstream: boolean; cache: Pick<OciRegistry, 'url'>; dockerHub?: OciRegistry }): string {
  const stack = new Stack(testApp(), 'Nodes', { env: { account: '111122223333', region: 'eu-west-1' } });
  const cache = new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }), UpstreamRegistry.quay()],
    enableScanning: false,
    enableMonitoring: false,
  });
  const dir = testDir('hosts-');
  for (const mirror of cache.nodeMirrors({ fallbackToUpstream: options.fallbackToUpstream }).mirrors) {
    expect(mirror.hostsToml).toContain(`https://${CACHE_DOMAIN}/v2/`);
    let content = mirror.hostsToml.split(`https://${CACHE_DOMAIN}`).join(options.cache.url);
    if (options.dockerHub) {
      content = content.split('https://registry-1.docker.io').join(options.dockerHub.url);
    }
    mkdirSync(join(dir, mirror.registry));
    writeFileSync(join(dir, mirror.registry, 'hosts.toml'), content);
  }
  return dir;
}

/** A one-file layer, uncompressed (containerd detects that), so its digest is its diff id and it unpacks. */
function layer(text: string): Buffer {
  const dir = testDir('layer-');
  writeFileSync(join(dir, 'hello.txt'), text);
  return execFileSync('tar', ['-cf', '-', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', dir, 'hello.txt']);
}

function pull(containerd: Containerd, hostsDir: string, image: string): string {
  return containerd.ctr(['image', 'pull', '--hosts-dir', hostsDir, '--user', `${REGISTRY_USER}:${REGISTRY_PASSWORD}`,
    '--platform', 'linux/amd64', '--snapshotter', 'native', image]);
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
    let cachedDigest: string;
    let upstreamDigest: string;

    beforeAll(async () => {
      [containerd, cache, dockerHub] = await Promise.all([startContainerd(), startRegistry({ basicAuth: true }), startRegistry()]);
      cachedDigest = (await pushImage(cache, 'docker-hub/library/busybox', '1.36', [layer('from the cache')])).digest;
      await pushImage(cache, 'quay/prometheus/prometheus', 'v3.5.0', [layer('prometheus from the cache')]);
      upstreamDigest = (await pushImage(dockerHub, 'library/busybox', '1.36', [layer('from docker hub')])).digest;
    }, 60_000);

    afterAll(async () => {
      await Promise.all([containerd?.stop(), cache?.stop(), dockerHub?.stop()]);
    });

    afterEach(() => {
      const images = containerd.ctr(['image', 'ls', '-q']).split('\n').filter(Boolean);
      if (images.length > 0) {
        containerd.ctr(['image', 'rm', '--sync', ...images]); // and its content, so the next pull fetches again
      }
    });

    test('docker.io and quay.io images come from the cache prefixes, with the credentials, and from nowhere else', async () => {
      const hosts = writeHostsDir({ fallbackToUpstream: false, cache });
      const [before, upstreamBefore] = [cache.requests().length, dockerHub.requests().length];

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
      expect(await requestsSince(dockerHub, upstreamBefore)).toEqual([]);
    }, 60_000);

    test('without fallback, a cache that refuses the credentials fails the pull, and the upstream is never asked', async () => {
      const hosts = writeHostsDir({ fallbackToUpstream: false, cache, dockerHub });
      const [before, upstreamBefore] = [cache.requests().length, dockerHub.requests().length];
      expect(() => containerd.ctr(['image', 'pull', '--hosts-dir', hosts, '--user', `${REGISTRY_USER}:wrong`,
        '--platform', 'linux/amd64', '--snapshotter', 'native', 'docker.io/library/busybox:1.36'])).toThrow(/401 Unauthorized|unauthorized/i);
      expect(await requestsSince(cache, before)).toContain('HEAD /v2/docker-hub/library/busybox/manifests/1.36');
      expect(await requestsSince(dockerHub, upstreamBefore)).toEqual([]);
      expect(containerd.ctr(['image', 'ls', '-q'])).toBe('');
    }, 60_000);

    test('an unreachable cache fails the pull without fallback, and sends it to the upstream with fallback', async () => {
      const unreachable = { url: `http://127.0.0.1:${await freePort()}` }; // nothing listens there
      const upstreamBefore = dockerHub.requests().length;
      expect(() => pull(containerd, writeHostsDir({ fallbackToUpstream: false, cache: unreachable, dockerHub }), 'docker.io/library/busybox:1.36'))
        .toThrow(/connection refused/);
      expect(await requestsSince(dockerHub, upstreamBefore)).toEqual([]);

      pull(containerd, writeHostsDir({ fallbackToUpstream: true, cache: unreachable, dockerHub }), 'docker.io/library/busybox:1.36');
      expect(await requestsSince(dockerHub, upstreamBefore)).toContain('HEAD /v2/library/busybox/manifests/1.36');
      expect(containerd.ctr(['image', 'ls'])).toContain(upstreamDigest);
    }, 60_000);

    test('with fallback, a cache that refuses the credentials sends the pull to the upstream registry', async () => {
      const hosts = writeHostsDir({ fallbackToUpstream: true, cache, dockerHub });
      const [before, upstreamBefore] = [cache.requests().length, dockerHub.requests().length];

      containerd.ctr(['image', 'pull', '--hosts-dir', hosts, '--user', `${REGISTRY_USER}:wrong`,
        '--platform', 'linux/amd64', '--snapshotter', 'native', 'docker.io/library/busybox:1.36']);

      expect(await requestsSince(cache, before)).toContain('HEAD /v2/docker-hub/library/busybox/manifests/1.36'); // tried first
      expect(await requestsSince(dockerHub, upstreamBefore)).toContain('HEAD /v2/library/busybox/manifests/1.36');
      expect(containerd.ctr(['image', 'ls'])).toContain(upstreamDigest);
    }, 60_000);
  });
}
