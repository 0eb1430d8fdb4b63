import { ChildProcess, spawn } from 'child_process';
import { createHash } from 'crypto';
import { writeFileSync } from 'fs';
import * as http from 'http';
import { join } from 'path';
import { freePort } from './moto';
import { testDir } from '../util';

/**
 * A real OCI registry on loopback: the CNCF Distribution registry (Debian package `docker-registry`, installed
 * by ./scripts/install-test-deps), on a free port, storing in a test folder, never on another interface.
 * A test that needs it fails, loudly, when it is missing.
 */
export interface OciRegistry {
  /** `127.0.0.1:<port>`, as an image reference or a hosts.toml names it. */
  readonly host: string;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The `Authorization` header value a client sends, when the registry requires basic auth. */
  readonly authorization?: string;
  /** The request lines the registry has logged so far (`GET /v2/...`), in order. */
  requests(): string[];
  stop(): Promise<void>;
}

/** Credentials of a registry started with `basicAuth: true`: a loopback-only test account. */
export const REGISTRY_USER = 'ptc-test';
export const REGISTRY_PASSWORD = 'loopback-only-password';
/** bcrypt (cost 4) of REGISTRY_PASSWORD, as Distribution's htpasswd file wants it (it accepts bcrypt only). */
const REGISTRY_PASSWORD_BCRYPT = '$2b$04$.8yHJ7NEJOGq.penS/VchuN7gQEp9c7SCxB3Awi15sJruPVr2KIuO';

export interface StartRegistryOptions {
  /**
   * Require HTTP basic auth (REGISTRY_USER / REGISTRY_PASSWORD): the registry answers 401 with a
   * `WWW-Authenticate: Basic` challenge to anonymous requests.
   * @default false
   */
  readonly basicAuth?: boolean;
}

function status(url: string): Promise<number> {
  return new Promise(resolve => {
    const req = http.get(url, res => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.setTimeout(1000, () => req.destroy());
  });
}

export async function startRegistry(options: StartRegistryOptions = {}): Promise<OciRegistry> {
  const dir = testDir('oci-registry-');
  const port = await freePort();
  const auth = options.basicAuth
    ? (writeFileSync(join(dir, 'htpasswd'), `${REGISTRY_USER}:${REGISTRY_PASSWORD_BCRYPT}\n`),
    `auth:\n  htpasswd:\n    realm: loopback\n    path: ${join(dir, 'htpasswd')}\n`)
    : '';
  // JSON is YAML: no quoting surprises in paths
  const config = [
    'version: 0.1',
    'log: {level: info, formatter: text, accesslog: {disabled: false}}',
    `storage: {filesystem: {rootdirectory: ${JSON.stringify(join(dir, 'data'))}}, delete: {enabled: true}}`,
    `http: {addr: "127.0.0.1:${port}", secret: ${JSON.stringify(createHash('sha256').update(dir).digest('hex'))}}`,
    auth,
  ].join('\n');
  writeFileSync(join(dir, 'config.yml'), config);

  const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  let spawnError: Error | undefined;
  child.on('error', e => spawnError = e);
  const collect = (chunk: Buffer) => log.push(...String(chunk).split('\n').filter(l => l !== ''));
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  const url = `http://127.0.0.1:${port}`;
  const stop = () => new Promise<void>(resolve => {
    if (child.exitCode !== null || child.signalCode !== null) {
      return resolve();
    }
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (spawnError || child.exitCode !== null) {
      throw new Error(`docker-registry did not start (${spawnError?.message ?? `exit ${child.exitCode}`}): ${log.slice(-10).join('\n')}\n`
        + 'Install it with: ./scripts/install-test-deps');
    }
    const code = await status(`${url}/v2/`);
    if (code === 200 || code === 401) {
      return {
        host: `127.0.0.1:${port}`,
        url,
        authorization: options.basicAuth ? `Basic ${Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64')}` : undefined,
        // access log lines: `127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 200 ...`
        requests: () => log.map(l => /"([A-Z]+ \/v2\/\S*) HTTP/.exec(l)?.[1]).filter((r): r is string => r !== undefined),
        stop,
      };
    }
    await new Promise(r => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`docker-registry did not answer on ${url} within 30 s: ${log.slice(-10).join('\n')}`);
}

/** A blob's digest, `sha256:<hex>`. */
export function digestOf(content: Buffer): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

function request(registry: OciRegistry, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}):
Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const target = new URL(path, registry.url);
  return new Promise((resolve, reject) => {
    const req = http.request(target, {
      method,
      headers: {
        ...headers,
        ...(registry.authorization ? { Authorization: registry.authorization } : {}),
        ...(body ? { 'Content-Length': String(body.length) } : {}),
      },
    }, res => {
      const chunks: Buffer[] = [];
      res.on('data', c => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Uploads one blob (monolithic: POST then PUT with the digest). */
export async function pushBlob(registry: OciRegistry, repository: string, content: Buffer): Promise<string> {
  const digest = digestOf(content);
  const start = await request(registry, 'POST', `/v2/${repository}/blobs/uploads/`);
  if (start.status !== 202 || typeof start.headers.location !== 'string') {
    throw new Error(`blob upload to ${repository} not started: ${start.status} ${start.body}`);
  }
  const location = new URL(start.headers.location, registry.url);
  location.searchParams.set('digest', digest);
  const put = await request(registry, 'PUT', location.pathname + location.search, content, { 'Content-Type': 'application/octet-stream' });
  if (put.status !== 201) {
    throw new Error(`blob ${digest} not stored in ${repository}: ${put.status} ${put.body}`);
  }
  return digest;
}

export interface PushedImage {
  /** The manifest's digest. */
  readonly digest: string;
  readonly manifest: Buffer;
  readonly layers: readonly string[];
}

/**
 * Pushes a single-platform OCI image (a config and the given layers, stored as opaque gzip layers) and tags it.
 * The content is arbitrary: registries and containerd's pull do not unpack it.
 */
export async function pushImage(registry: OciRegistry, repository: string, tag: string, layers: Buffer[]): Promise<PushedImage> {
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: layers.map(digestOf) },
    config: {},
  }));
  const configDigest = await pushBlob(registry, repository, config);
  const layerDigests: string[] = [];
  for (const layer of layers) {
    layerDigests.push(await pushBlob(registry, repository, layer));
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: layers.map((l, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigests[i], size: l.length })),
  }));
  const put = await request(registry, 'PUT', `/v2/${repository}/manifests/${tag}`, manifest,
    { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' });
  if (put.status !== 201) {
    throw new Error(`manifest ${repository}:${tag} not stored: ${put.status} ${put.body}`);
  }
  return { digest: digestOf(manifest), manifest, layers: layerDigests };
}
