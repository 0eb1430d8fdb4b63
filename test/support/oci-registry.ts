import { ChildProcess, execFileSync, spawn } from 'child_process';
import { createHash, createSign, randomBytes, randomUUID } from 'crypto';
import { readFileSync, writeFileSync } from 'fs';
import * as http from 'http';
import { join } from 'path';
import { Readable } from 'stream';
import { freePort, httpStatus } from './moto';
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
  /** The token server of a registry started with `tokenAuth`. */
  readonly tokenServer?: TokenServer;
  /** The request lines the registry has logged so far (`GET /v2/...`), in order. */
  requests(): string[];
  stop(): Promise<void>;
}

/** The token server in front of a `tokenAuth` registry: what it issued, and how long its tokens really live. */
export interface TokenServer {
  readonly realm: string;
  /** Tokens issued so far (one per challenge answered). */
  issued(): number;
  /** Change how long the next tokens really live (seconds), e.g. to let one expire in the middle of a copy. */
  setLifetime(seconds: number): void;
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

  /**
   * Require a bearer token (Distribution's `auth.token`): anonymous requests get a
   * `WWW-Authenticate: Bearer realm=...,service=...,scope=...` challenge, and a token server on loopback issues
   * RS256 JWTs signed with a key and a self-signed certificate made with `openssl` for the test.
   * @default false
   */
  readonly tokenAuth?: boolean;

  /** With `tokenAuth`: the token server asks for REGISTRY_USER / REGISTRY_PASSWORD (Basic). @default false (anonymous tokens) */
  readonly tokenCredentials?: boolean;

  /**
   * With `tokenAuth`: how long a token really lives, in seconds. Distribution accepts a token up to 60 s past
   * its `exp`, so the token's `exp` is set that much earlier: a lifetime of 2 means "refused after 2 s".
   * @default 300
   */
  readonly tokenLifetime?: number;

  /** With `tokenAuth`: the `expires_in` the token server announces (may differ from the real lifetime). @default 300 */
  readonly tokenExpiresIn?: number;

  /**
   * Accept manifests whose layers list `urls` (https only): Distribution refuses any layer URL unless
   * `validation.manifests.urls.allow` matches it.
   * @default false
   */
  readonly allowLayerUrls?: boolean;
}

/** Distribution's leeway on a token's `exp` and `nbf` (registry/auth/token/token.go). */
const TOKEN_LEEWAY_SECONDS = 60;

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** A token server on loopback, with its signing key and self-signed certificate made by openssl. */
async function startTokenServer(dir: string, options: StartRegistryOptions): Promise<TokenServer & { server: http.Server; certFile: string }> {
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '1', '-subj', '/CN=loopback-token-issuer'], { stdio: 'ignore' });
  const key = readFileSync(keyFile);
  const der = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(readFileSync(certFile, 'utf-8'))![1].replace(/\s+/g, '');
  let lifetime = options.tokenLifetime ?? 300;
  let issued = 0;
  const expected = `Basic ${Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64')}`;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (options.tokenCredentials && req.headers.authorization !== expected) {
      res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Basic realm="token"' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'credentials required' }] }));
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const access = url.searchParams.getAll('scope').map(scope => {
      const [type, name, actions] = scope.split(':');
      return { type, name, actions: actions.split(',') };
    });
    const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [der] }));
    const claims = base64url(JSON.stringify({
      iss: 'loopback-issuer',
      sub: options.tokenCredentials ? REGISTRY_USER : '',
      aud: url.searchParams.get('service'),
      exp: now + lifetime - TOKEN_LEEWAY_SECONDS,
      nbf: now - 1,
      iat: now - 1,
      jti: randomUUID(),
      access,
    }));
    const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(key).toString('base64url');
    issued++;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token: `${header}.${claims}.${signature}`, expires_in: options.tokenExpiresIn ?? 300, issued_at: new Date().toISOString() }));
  });
  const port = await freePort();
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve));
  return {
    server,
    certFile,
    realm: `http://127.0.0.1:${port}/token`,
    issued: () => issued,
    setLifetime: seconds => lifetime = seconds,
  };
}

export async function startRegistry(options: StartRegistryOptions = {}): Promise<OciRegistry> {
  const dir = testDir('oci-registry-');
  const port = await freePort();
  const tokens = options.tokenAuth ? await startTokenServer(dir, options) : undefined;
  const auth = options.basicAuth
    ? (writeFileSync(join(dir, 'htpasswd'), `${REGISTRY_USER}:${REGISTRY_PASSWORD_BCRYPT}\n`),
    `auth:\n  htpasswd:\n    realm: loopback\n    path: ${join(dir, 'htpasswd')}\n`)
    : tokens
      ? `auth: {token: {realm: ${JSON.stringify(tokens.realm)}, service: loopback-registry, issuer: loopback-issuer, rootcertbundle: ${JSON.stringify(tokens.certFile)}}}\n`
      : '';
  // JSON is YAML: no quoting surprises in paths
  const config = [
    'version: 0.1',
    'log: {level: info, formatter: text, accesslog: {disabled: false}}',
    `storage: {filesystem: {rootdirectory: ${JSON.stringify(join(dir, 'data'))}}, delete: {enabled: true}}`,
    `http: {addr: "127.0.0.1:${port}", secret: ${JSON.stringify(createHash('sha256').update(dir).digest('hex'))}}`,
    options.allowLayerUrls ? 'validation: {manifests: {urls: {allow: ["^https://"]}}}' : '',
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
  const stopRegistry = () => new Promise<void>(resolve => {
    if (child.exitCode !== null || child.signalCode !== null) {
      return resolve();
    }
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
  const stop = async () => {
    await stopRegistry();
    if (tokens) {
      tokens.server.closeAllConnections();
      await new Promise<void>(resolve => tokens.server.close(() => resolve()));
    }
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (spawnError || child.exitCode !== null) {
      throw new Error(`docker-registry did not start (${spawnError?.message ?? `exit ${child.exitCode}`}): ${log.slice(-10).join('\n')}\n`
        + 'Install it with: ./scripts/install-test-deps');
    }
    const code = await httpStatus(`${url}/v2/`);
    if (code === 200 || code === 401) {
      return {
        host: `127.0.0.1:${port}`,
        url,
        authorization: options.basicAuth ? `Basic ${Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64')}` : undefined,
        tokenServer: tokens && { realm: tokens.realm, issued: tokens.issued, setLifetime: tokens.setLifetime },
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

type Body = Buffer | (() => Readable);

function rawRequest(url: URL, method: string, headers: Record<string, string>, body?: Body):
Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method,
      headers: {
        ...headers,
        ...(Buffer.isBuffer(body) ? { 'Content-Length': String(body.length) } : body ? { 'Transfer-Encoding': 'chunked' } : {}),
      },
    }, res => {
      const chunks: Buffer[] = [];
      res.on('data', c => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (typeof body === 'function') {
      body().on('error', reject).pipe(req);
    } else {
      req.end(body);
    }
  });
}

/** Bearer tokens the test harness holds, per registry and repository (pull, push and delete). */
const harnessTokens = new Map<string, string>();

/** A request as the test harness makes it: with the registry's basic credentials, or a token asked for on a challenge. */
async function request(registry: OciRegistry, method: string, path: string, body?: Body, headers: Record<string, string> = {}):
Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const target = new URL(path, registry.url);
  const repository = /^\/v2\/(.+?)\/(?:blobs|manifests|tags)\//.exec(target.pathname)?.[1] ?? '';
  const key = `${registry.url} ${repository}`;
  const auth = () => registry.authorization ?? (harnessTokens.has(key) ? `Bearer ${harnessTokens.get(key)}` : undefined);
  if (typeof body === 'function') {
    // a streamed body is sent once: the POST that opened the upload already got the token for this repository
    return rawRequest(target, method, { ...headers, ...(auth() ? { Authorization: auth()! } : {}) }, body);
  }
  const first = await rawRequest(target, method, { ...headers, ...(auth() ? { Authorization: auth()! } : {}) }, body);
  if (first.status !== 401 || !registry.tokenServer) {
    return first;
  }
  const realm = new URL(registry.tokenServer.realm);
  realm.searchParams.set('service', 'loopback-registry');
  if (repository) {
    realm.searchParams.set('scope', `repository:${repository}:pull,push,delete`);
  }
  const tokenAnswer = await rawRequest(realm, 'GET', { Authorization: `Basic ${Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64')}` });
  harnessTokens.set(key, JSON.parse(String(tokenAnswer.body)).token);
  return rawRequest(target, method, { ...headers, Authorization: auth()! }, body);
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

/**
 * Uploads a blob of `size` random bytes, generated and hashed a megabyte at a time while they stream (never the
 * whole blob in memory): POST, one streamed PATCH, then PUT with the digest.
 */
export async function pushRandomBlob(registry: OciRegistry, repository: string, size: number): Promise<string> {
  const start = await request(registry, 'POST', `/v2/${repository}/blobs/uploads/`);
  if (start.status !== 202 || typeof start.headers.location !== 'string') {
    throw new Error(`blob upload to ${repository} not started: ${start.status} ${start.body}`);
  }
  const hash = createHash('sha256');
  let left = size;
  const source = () => new Readable({
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(left, 1024 * 1024));
      left -= chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  const location = new URL(start.headers.location, registry.url);
  const patch = await request(registry, 'PATCH', location.pathname + location.search, source, { 'Content-Type': 'application/octet-stream' });
  if (patch.status !== 202 || typeof patch.headers.location !== 'string') {
    throw new Error(`blob upload to ${repository} failed: ${patch.status} ${patch.body}`);
  }
  const digest = `sha256:${hash.digest('hex')}`;
  const commit = new URL(patch.headers.location, registry.url);
  commit.searchParams.set('digest', digest);
  const put = await request(registry, 'PUT', commit.pathname + commit.search, Buffer.alloc(0));
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
export async function pushImage(registry: OciRegistry, repository: string, tag: string, layers: Buffer[],
  platform: { os: string; architecture: string } = { os: 'linux', architecture: 'amd64' }): Promise<PushedImage> {
  const layerDigests: string[] = [];
  for (const layer of layers) {
    layerDigests.push(await pushBlob(registry, repository, layer));
  }
  return pushManifest(registry, repository, tag, layerDigests.map((digest, i) => ({ digest, size: layers[i].length })), platform);
}

/** Pushes the config and manifest of an image whose layers are already in the repository, under `reference` (a tag or its digest). */
export async function pushManifest(registry: OciRegistry, repository: string, reference: string | undefined,
  layers: ReadonlyArray<{ digest: string; size: number; urls?: string[] }>, platform: { os: string; architecture: string } = { os: 'linux', architecture: 'amd64' }): Promise<PushedImage> {
  const config = Buffer.from(JSON.stringify({
    architecture: platform.architecture,
    os: platform.os,
    rootfs: { type: 'layers', diff_ids: layers.map(l => l.digest) },
    config: {},
  }));
  const configDigest = await pushBlob(registry, repository, config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: layers.map(l => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size, ...(l.urls ? { urls: l.urls } : {}) })),
  }));
  const digest = digestOf(manifest);
  const put = await request(registry, 'PUT', `/v2/${repository}/manifests/${reference ?? digest}`, manifest,
    { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' });
  if (put.status !== 201) {
    throw new Error(`manifest ${repository}:${reference ?? digest} not stored: ${put.status} ${put.body}`);
  }
  return { digest, manifest, layers: layers.map(l => l.digest) };
}

export interface PushedIndex {
  readonly digest: string;
  readonly index: Buffer;
  /** The platform images, in the index's order. */
  readonly images: readonly PushedImage[];
}

/** Pushes a multi-architecture image: one image per platform (by digest), then an OCI index listing them, under `tag`. */
export async function pushIndex(registry: OciRegistry, repository: string, tag: string,
  platforms: ReadonlyArray<{ os: string; architecture: string; layers: Buffer[] }>): Promise<PushedIndex> {
  const images: PushedImage[] = [];
  for (const p of platforms) {
    const layers: Array<{ digest: string; size: number }> = [];
    for (const layer of p.layers) {
      layers.push({ digest: await pushBlob(registry, repository, layer), size: layer.length });
    }
    images.push(await pushManifest(registry, repository, undefined, layers, p));
  }
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: images.map((image, i) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: image.digest,
      size: image.manifest.length,
      platform: { os: platforms[i].os, architecture: platforms[i].architecture },
    })),
  }));
  const put = await request(registry, 'PUT', `/v2/${repository}/manifests/${tag}`, index, { 'Content-Type': 'application/vnd.oci.image.index.v1+json' });
  if (put.status !== 201) {
    throw new Error(`index ${repository}:${tag} not stored: ${put.status} ${put.body}`);
  }
  return { digest: digestOf(index), index, images };
}

/** Deletes a tag's manifest (the registry is started with deletes enabled): the tag vanishes upstream. */
export async function deleteManifest(registry: OciRegistry, repository: string, digest: string): Promise<void> {
  const res = await request(registry, 'DELETE', `/v2/${repository}/manifests/${digest}`);
  if (res.status !== 202) {
    throw new Error(`manifest ${repository}@${digest} not deleted: ${res.status} ${res.body}`);
  }
}

/** A manifest's bytes by tag or digest, as the registry stores them (undefined when it has none). */
export async function fetchManifest(registry: OciRegistry, repository: string, reference: string): Promise<Buffer | undefined> {
  const res = await request(registry, 'GET', `/v2/${repository}/manifests/${reference}`, undefined, {
    Accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
  });
  return res.status === 200 ? res.body : undefined;
}

/** A blob's digest as the registry serves it (hashing its bytes), or undefined when it has none. */
export async function fetchBlobDigest(registry: OciRegistry, repository: string, digest: string): Promise<string | undefined> {
  const res = await request(registry, 'GET', `/v2/${repository}/blobs/${digest}`);
  return res.status === 200 ? digestOf(res.body) : undefined;
}
