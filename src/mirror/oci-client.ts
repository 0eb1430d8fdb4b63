/**
 * A small client of the OCI distribution API (https://github.com/opencontainers/distribution-spec), for the
 * mirror's copy: manifests by tag or digest, tag lists, blobs streamed in and out, cross-repository mounts.
 *
 * - Authentication follows the registry's challenge: `WWW-Authenticate: Basic` gets the credentials;
 *   `WWW-Authenticate: Bearer realm=...,service=...,scope=...` gets a token from the realm (anonymously, or with
 *   the credentials), cached per repository for its `expires_in`. A token that stops working early (revoked,
 *   expired mid-copy) is dropped and fetched again on the next 401.
 * - A fixed `Authorization` header (ECR's token from `GetAuthorizationToken`) is sent as it is.
 * - Blob bodies are streams end to end: nothing holds a whole layer in memory.
 * - Transient failures (connection resets, 5xx, 429, a body cut short) are `RegistryError`s with
 *   `retryable: true`; the copy retries them. Everything else says what the registry answered.
 *
 * Pure Node.js: no AWS SDK, no aws-cdk-lib.
 */
import { createHash } from 'crypto';
import * as http from 'http';
import * as https from 'https';
import { Readable, Transform, TransformCallback } from 'stream';
import { pipeline } from 'stream/promises';
import { retryAfterMs as parseRetryAfter } from './retry-after';

/** Manifest media types the copy understands, in the order they are asked for. */
export const MediaType = {
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  DOCKER_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;
export const MANIFEST_ACCEPT = Object.values(MediaType).join(', ');
export const INDEX_TYPES: readonly string[] = [MediaType.OCI_INDEX, MediaType.DOCKER_LIST];

/** A manifest is small: anything larger than this is refused rather than read into memory. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Why a registry call failed. */
export class RegistryError extends Error {
  constructor(
    message: string,
    /** HTTP status, or undefined for a network error. */
    public readonly status: number | undefined,
    /** Worth trying again (network error, 5xx, 429, a body cut short). */
    public readonly retryable: boolean,
    /** The registry's error code (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, `DENIED`, ...), when it sent one. */
    public readonly code?: string,
    /** In a streamed copy: whether the bytes' source or the registry receiving them failed. */
    public readonly origin?: 'source' | 'destination',
    /** How long the registry asked to wait before trying again (`Retry-After` of a 429 or 503, capped). */
    public readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

export interface RegistryClientOptions {
  /** `https://mcr.microsoft.com` or `http://127.0.0.1:5000`. */
  readonly url: string;
  /** For a Basic challenge, or for the token realm of a Bearer challenge. @default anonymous */
  readonly credentials?: RegistryCredentials;
  /** A fixed `Authorization` header value, sent with every request (ECR: `Basic <token>`). */
  readonly authorization?: string;
  /** Milliseconds a request may stay silent before it fails (retryable). @default 60000 */
  readonly idleTimeoutMs?: number;
}

/** A manifest as read: its bytes, its media type and the digest of exactly those bytes. */
export interface Manifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Buffer;
}

interface Token {
  readonly value: string;
  readonly expiresAt: number;
}

interface Challenge {
  readonly scheme: string;
  readonly params: Record<string, string>;
}

const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 16 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 16 }),
};

export function sha256Digest(content: Buffer): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

/** `WWW-Authenticate: Bearer realm="...",service="...",scope="..."`, parsed. */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) {
    return undefined;
  }
  const match = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!match) {
    return undefined;
  }
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(match[2])) !== null) {
    params[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  }
  return { scheme: match[1].toLowerCase(), params };
}

function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

const RETRYABLE_NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

/** Turns a network error into a `RegistryError` (retryable unless it is clearly not). */
function networkError(error: unknown, what: string): RegistryError {
  if (error instanceof RegistryError) {
    return error;
  }
  const e = error as NodeJS.ErrnoException;
  const retryable = e?.code === undefined || RETRYABLE_NETWORK.has(e.code) || /socket hang up|aborted|premature/i.test(String(e?.message));
  return new RegistryError(`${what}: ${e?.code ?? ''} ${e?.message ?? String(error)}`.trim(), undefined, retryable);
}

async function readLimited(res: http.IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      res.destroy();
      throw new RegistryError(`${what}: more than ${limit} bytes`, res.statusCode, false);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The error a non-success response stands for, with the registry's own error code and message. */
async function responseError(res: http.IncomingMessage, what: string): Promise<RegistryError> {
  const status = res.statusCode ?? 0;
  let body = '';
  try {
    body = (await readLimited(res, 64 * 1024, what)).toString('utf-8');
  } catch {
    // the status says enough
  }
  let code: string | undefined;
  let detail = body.slice(0, 300);
  try {
    const first = JSON.parse(body)?.errors?.[0];
    if (first) {
      code = String(first.code);
      detail = `${first.code}: ${first.message ?? ''}`;
    }
  } catch {
    // not JSON
  }
  return new RegistryError(`${what}: HTTP ${status}${detail ? ` (${detail.trim()})` : ''}`, status, isRetryableStatus(status), code, undefined,
    parseRetryAfter(status, res.headers['retry-after']));
}

/** Counts and hashes what flows through it. */
class DigestTap extends Transform {
  public bytes = 0;
  private readonly hash = createHash('sha256');
  public _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    callback(null, chunk);
  }
  public digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

interface SendOptions {
  readonly repository?: string;
  readonly push?: boolean;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer;
  /** Follow redirects (blob downloads are often redirected to a CDN). */
  readonly followRedirects?: boolean;
}

export class RegistryClient {
  public readonly url: string;
  private readonly credentials?: RegistryCredentials;
  private readonly authorization?: string;
  private readonly idleTimeoutMs: number;
  private readonly tokens = new Map<string, Token>();
  private basic = false;
  /** Requests sent, for tests and logs. */
  public requestCount = 0;

  constructor(options: RegistryClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.credentials = options.credentials;
    this.authorization = options.authorization;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  }

  /** The manifest's digest and media type by tag or digest, or undefined when the registry has none. */
  public async headManifest(repository: string, reference: string): Promise<{ digest: string; mediaType: string } | undefined> {
    const res = await this.send('HEAD', `/v2/${repository}/manifests/${reference}`, { repository, headers: { Accept: MANIFEST_ACCEPT } });
    if (res.statusCode === 404) {
      res.resume();
      return undefined;
    }
    if (res.statusCode !== 200) {
      throw await responseError(res, `HEAD ${repository}:${reference}`);
    }
    res.resume();
    const digest = res.headers['docker-content-digest'];
    if (typeof digest !== 'string') {
      // some registries leave the digest out of HEAD answers: read the manifest itself
      const manifest = await this.getManifest(repository, reference);
      return manifest && { digest: manifest.digest, mediaType: manifest.mediaType };
    }
    return { digest, mediaType: String(res.headers['content-type'] ?? '').split(';')[0] };
  }

  /** A manifest by tag or digest (its exact bytes), or undefined when the registry has none. */
  public async getManifest(repository: string, reference: string): Promise<Manifest | undefined> {
    const what = `GET manifest ${repository}:${reference}`;
    const res = await this.send('GET', `/v2/${repository}/manifests/${reference}`, { repository, headers: { Accept: MANIFEST_ACCEPT } });
    if (res.statusCode === 404) {
      res.resume();
      return undefined;
    }
    if (res.statusCode !== 200) {
      throw await responseError(res, what);
    }
    const body = await readLimited(res, MAX_MANIFEST_BYTES, what).catch(e => {
      throw networkError(e, what);
    });
    const digest = sha256Digest(body);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new RegistryError(`${what}: the registry sent a manifest whose digest is ${digest}`, 200, true);
    }
    let mediaType = String(res.headers['content-type'] ?? '').split(';')[0].trim();
    try {
      mediaType = JSON.parse(body.toString('utf-8')).mediaType ?? mediaType;
    } catch {
      throw new RegistryError(`${what}: the manifest is not JSON`, 200, false);
    }
    return { digest, mediaType, body };
  }

  /** Stores a manifest under a tag or its digest. */
  public async putManifest(repository: string, reference: string, manifest: Manifest): Promise<void> {
    const res = await this.send('PUT', `/v2/${repository}/manifests/${reference}`, {
      repository, push: true, body: manifest.body, headers: { 'Content-Type': manifest.mediaType },
    });
    if (res.statusCode !== 201 && res.statusCode !== 200) {
      throw await responseError(res, `PUT manifest ${repository}:${reference}`);
    }
    res.resume();
    const stored = res.headers['docker-content-digest'];
    if (typeof stored === 'string' && stored !== manifest.digest) {
      throw new RegistryError(`PUT manifest ${repository}:${reference}: stored as ${stored}, not ${manifest.digest}`, res.statusCode, false);
    }
  }

  /** Every tag of a repository (following `Link` pages). */
  public async listTags(repository: string): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = `/v2/${repository}/tags/list?n=1000`;
    while (path) {
      const res = await this.send('GET', path, { repository });
      if (res.statusCode !== 200) {
        throw await responseError(res, `GET tags of ${repository}`);
      }
      const body = JSON.parse((await readLimited(res, 32 * 1024 * 1024, `GET tags of ${repository}`)).toString('utf-8'));
      tags.push(...((body.tags ?? []) as string[]));
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(res.headers.link ?? ''))?.[1];
      path = next ? new URL(next, this.url).pathname + new URL(next, this.url).search : undefined;
    }
    return tags;
  }

  /** Whether the repository has the blob. */
  public async hasBlob(repository: string, digest: string): Promise<boolean> {
    const res = await this.send('HEAD', `/v2/${repository}/blobs/${digest}`, { repository, followRedirects: true });
    if (res.statusCode === 200 || res.statusCode === 404) {
      res.resume();
      return res.statusCode === 200;
    }
    throw await responseError(res, `HEAD blob ${repository}@${digest}`);
  }

  /** A blob's bytes, as a stream (redirects followed; `Authorization` is never sent to another host). */
  public async getBlob(repository: string, digest: string): Promise<http.IncomingMessage> {
    const res = await this.send('GET', `/v2/${repository}/blobs/${digest}`, { repository, followRedirects: true });
    if (res.statusCode !== 200) {
      throw await responseError(res, `GET blob ${repository}@${digest}`);
    }
    return res;
  }

  /**
   * Tries to mount a blob from another repository of this registry. True when it is mounted; false when the
   * registry declined (the upload session it opened instead is cancelled).
   */
  public async mountBlob(repository: string, digest: string, from: string): Promise<boolean> {
    const query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    const res = await this.send('POST', `/v2/${repository}/blobs/uploads/${query}`, { repository, push: true, headers: { 'Content-Length': '0' } });
    if (res.statusCode === 201) {
      res.resume();
      return true;
    }
    if (res.statusCode === 202 && typeof res.headers.location === 'string') {
      res.resume();
      await this.cancelUpload(repository, res.headers.location);
      return false;
    }
    throw await responseError(res, `mount ${digest} into ${repository}`);
  }

  /**
   * Streams `source` into the repository as the blob `digest` of `size` bytes: one upload session, the bytes
   * in one streamed PATCH (hashed and counted on the way), then the PUT that commits it. A source that ends
   * early or hashes differently cancels the upload and fails (retryable): nothing partial is committed.
   */
  public async uploadBlob(repository: string, digest: string, size: number, source: Readable): Promise<number> {
    const what = `upload ${digest} to ${repository}`;
    const start = await this.send('POST', `/v2/${repository}/blobs/uploads/`, { repository, push: true, headers: { 'Content-Length': '0' } });
    if (start.statusCode !== 202 || typeof start.headers.location !== 'string') {
      source.destroy();
      throw await responseError(start, `${what}: start`);
    }
    start.resume();
    let location = start.headers.location;
    const tap = new DigestTap();
    let sourceFailed = false;
    source.once('error', () => sourceFailed = true);
    source.once('aborted', () => sourceFailed = true);
    try {
      const res = await this.stream('PATCH', location, repository, source, tap);
      if (res.statusCode !== 202 && res.statusCode !== 204) {
        throw await responseError(res, `${what}: PATCH`);
      }
      res.resume();
      location = typeof res.headers.location === 'string' ? res.headers.location : location;
      if (tap.bytes !== size || tap.digest() !== digest) {
        throw new RegistryError(`${what}: the source sent ${tap.bytes} of ${size} bytes${tap.bytes === size ? ', with another digest' : ''}`,
          undefined, true, undefined, 'source');
      }
      const commit = new URL(location, this.url);
      commit.searchParams.set('digest', digest);
      const put = await this.send('PUT', commit.toString(), { repository, push: true, headers: { 'Content-Length': '0' } });
      if (put.statusCode !== 201) {
        throw await responseError(put, `${what}: commit`);
      }
      put.resume();
      return tap.bytes;
    } catch (error) {
      source.destroy();
      await this.cancelUpload(repository, location).catch(() => undefined);
      const e = networkError(error, what);
      throw new RegistryError(e.message, e.status, e.retryable, e.code, e.origin ?? (sourceFailed ? 'source' : 'destination'), e.retryAfterMs);
    }
  }

  private async cancelUpload(repository: string, location: string): Promise<void> {
    const res = await this.send('DELETE', location, { repository, push: true });
    res.resume();
  }

  /** One streamed request body (`source` through `tap`), authenticated like any other request. */
  private async stream(method: string, location: string, repository: string, source: Readable, tap: DigestTap): Promise<http.IncomingMessage> {
    const target = new URL(location, this.url);
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' };
    const auth = this.authHeader(repository);
    if (auth) {
      headers.Authorization = auth;
    }
    this.requestCount++;
    const req = this.request(target, method, headers);
    const response = new Promise<http.IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    await Promise.all([pipeline(source, tap, req), response]);
    const res = await response;
    if (res.statusCode === 401) {
      // the token expired during the upload: forget it; the caller retries the blob
      this.tokens.delete(repository);
      res.resume();
      throw new RegistryError(`${method} ${target.pathname}: HTTP 401 (token expired during the upload)`, 401, true);
    }
    return res;
  }

  private request(target: URL, method: string, headers: Record<string, string>): http.ClientRequest {
    const transport = target.protocol === 'https:' ? https : http;
    const req = transport.request(target, { method, headers, agent: agents[target.protocol as 'http:' | 'https:'] });
    req.setTimeout(this.idleTimeoutMs, () => req.destroy(Object.assign(new Error(`no data for ${this.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
    return req;
  }

  private authHeader(repository: string | undefined): string | undefined {
    if (this.authorization) {
      return this.authorization;
    }
    const token = this.tokens.get(repository ?? '');
    if (token && token.expiresAt > Date.now()) {
      return `Bearer ${token.value}`;
    }
    if (this.basic && this.credentials) {
      return basicHeader(this.credentials);
    }
    return undefined;
  }

  /**
   * One request with a small body (or none), authenticated by challenge: a 401 is answered once with the
   * credentials or a fresh token, then the request is sent again.
   */
  private async send(method: string, pathOrUrl: string, options: SendOptions): Promise<http.IncomingMessage> {
    const target = new URL(pathOrUrl, this.url);
    for (let attempt = 0; ; attempt++) {
      const res = await this.once(method, target, options, this.authHeader(options.repository));
      if (res.statusCode !== 401 || attempt > 0 || this.authorization) {
        if (res.statusCode === 401) {
          throw await responseError(res, `${method} ${target.pathname}: the registry refused the ${this.authorization ? 'token' : 'credentials'}`);
        }
        return res;
      }
      res.resume();
      await this.answerChallenge(parseChallenge(res.headers['www-authenticate'] as string | undefined), options);
    }
  }

  private async once(method: string, target: URL, options: SendOptions, authorization: string | undefined, redirects = 0):
  Promise<http.IncomingMessage> {
    const headers: Record<string, string> = { ...options.headers };
    if (authorization) {
      headers.Authorization = authorization;
    }
    if (options.body) {
      headers['Content-Length'] = String(options.body.length);
    }
    this.requestCount++;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = this.request(target, method, headers);
      req.once('response', resolve);
      req.once('error', e => reject(networkError(e, `${method} ${target.host}${target.pathname}`)));
      req.end(options.body);
    });
    const status = res.statusCode ?? 0;
    if (options.followRedirects && [301, 302, 303, 307, 308].includes(status) && typeof res.headers.location === 'string') {
      res.resume();
      if (redirects >= 5) {
        throw new RegistryError(`${method} ${target.pathname}: more than 5 redirects`, status, false);
      }
      const next = new URL(res.headers.location, target);
      // credentials stay with the registry: a CDN or storage host gets a presigned URL, not our token
      const sameHost = next.host === target.host;
      return this.once(method, next, { ...options, headers: sameHost ? options.headers : {} }, sameHost ? authorization : undefined, redirects + 1);
    }
    if (isRetryableStatus(status)) {
      throw await responseError(res, `${method} ${target.host}${target.pathname}`);
    }
    return res;
  }

  private async answerChallenge(challenge: Challenge | undefined, options: SendOptions): Promise<void> {
    if (challenge?.scheme === 'basic') {
      if (!this.credentials) {
        throw new RegistryError(`${this.url} asks for a username and password, and none were given`, 401, false, 'UNAUTHORIZED');
      }
      this.basic = true;
      return;
    }
    if (challenge?.scheme !== 'bearer' || !challenge.params.realm) {
      throw new RegistryError(`${this.url} answered 401 without a Basic or Bearer challenge`, 401, false, 'UNAUTHORIZED');
    }
    const repository = options.repository ?? '';
    const scope = repository ? `repository:${repository}:${options.push ? 'pull,push' : 'pull'}` : challenge.params.scope;
    const realm = new URL(challenge.params.realm);
    if (challenge.params.service) {
      realm.searchParams.set('service', challenge.params.service);
    }
    if (scope) {
      realm.searchParams.set('scope', scope);
    }
    const headers: Record<string, string> = {};
    if (this.credentials) {
      headers.Authorization = basicHeader(this.credentials);
    }
    const res = await this.once('GET', realm, { headers }, undefined);
    if (res.statusCode !== 200) {
      const error = await responseError(res, `token from ${realm.host}${realm.pathname}`);
      throw new RegistryError(error.message, error.status, error.retryable, res.statusCode === 401 || res.statusCode === 403 ? 'UNAUTHORIZED' : error.code,
        undefined, error.retryAfterMs);
    }
    const body = JSON.parse((await readLimited(res, 1024 * 1024, 'token')).toString('utf-8'));
    const value = body.token ?? body.access_token;
    if (typeof value !== 'string' || value === '') {
      throw new RegistryError(`token from ${realm.host}: the answer holds no token`, 200, false);
    }
    // the spec's default lifetime is 60 s; refresh 10 s early (or halfway, for very short tokens)
    const seconds = Number(body.expires_in) > 0 ? Number(body.expires_in) : 60;
    const margin = Math.min(10, seconds / 2);
    this.tokens.set(repository, { value, expiresAt: Date.now() + (seconds - margin) * 1000 });
  }
}

function basicHeader(credentials: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}
