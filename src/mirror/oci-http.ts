/**
 * The HTTP side of the OCI distribution client (https://github.com/opencontainers/distribution-spec): requests,
 * authentication, redirects and errors. `RegistryClient` (oci-client.ts) builds the registry operations on it,
 * blob-upload.ts the chunked blob uploads.
 *
 * - Authentication follows the registry's challenge: `WWW-Authenticate: Basic` gets the credentials;
 *   `WWW-Authenticate: Bearer realm=...,service=...,scope=...` gets a token from the realm (anonymously, or with
 *   the credentials), cached per repository for its `expires_in`. A token that stops working early (revoked,
 *   expired mid-copy) is dropped and fetched again on the next 401.
 * - A fixed `Authorization` header (ECR's token from `GetAuthorizationToken`) is sent as it is.
 * - Transient failures (connection resets, 5xx, 429, a body cut short) are `RegistryError`s with
 *   `retryable: true`; the copy retries them. Everything else says what the registry answered.
 *
 * Pure Node.js: no AWS SDK, no aws-cdk-lib.
 */
import { createHash } from 'crypto';
import * as http from 'http';
import * as https from 'https';
import { httpAgent, httpsAgent } from './agents';
import { retryAfterMs as parseRetryAfter } from './retry-after';

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

interface Token {
  readonly value: string;
  readonly expiresAt: number;
}

export interface Challenge {
  readonly scheme: string;
  readonly params: Record<string, string>;
}

/** Keep-alive, each socket reading into one reused buffer (agents.ts). */
const agents = {
  'http:': httpAgent({ keepAlive: true, maxSockets: 16 }),
  'https:': httpsAgent({ keepAlive: true, maxSockets: 16 }),
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
export function networkError(error: unknown, what: string): RegistryError {
  if (error instanceof RegistryError) {
    return error;
  }
  const e = error as NodeJS.ErrnoException;
  const retryable = e?.code === undefined || RETRYABLE_NETWORK.has(e.code) || /socket hang up|aborted|premature/i.test(String(e?.message));
  return new RegistryError(`${what}: ${e?.code ?? ''} ${e?.message ?? String(error)}`.trim(), undefined, retryable);
}

export async function readLimited(res: http.IncomingMessage, limit: number, what: string): Promise<Buffer> {
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
export async function responseError(res: http.IncomingMessage, what: string): Promise<RegistryError> {
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

export interface SendOptions {
  readonly repository?: string;
  readonly push?: boolean;
  readonly headers?: Record<string, string>;
  /** The body, whole or in pieces (a blob chunk as the source's reads left it: sent without copying them together). */
  readonly body?: Buffer | readonly Buffer[];
  /** Follow redirects (blob downloads are often redirected to a CDN). */
  readonly followRedirects?: boolean;
  /** Aborts the request (the copy's deadline). */
  readonly signal?: AbortSignal;
}

/** Headers that may follow a redirect to another host: what to fetch, never who asks. */
const PORTABLE_HEADERS = ['range', 'accept'];

/** The request side of a registry client: every request authenticated by the registry's challenge. */
export class RegistryTransport {
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

  private request(target: URL, method: string, headers: Record<string, string>, signal?: AbortSignal): http.ClientRequest {
    const transport = target.protocol === 'https:' ? https : http;
    const req = transport.request(target, { method, headers, signal, agent: agents[target.protocol as 'http:' | 'https:'] });
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
   * One request with a body held in memory (or none), authenticated by challenge: a 401 is answered once with
   * the credentials or a fresh token, then the request is sent again. For the operations built on this client.
   */
  public async send(method: string, pathOrUrl: string, options: SendOptions): Promise<http.IncomingMessage> {
    const target = new URL(pathOrUrl, this.url);
    if (target.origin !== new URL(this.url).origin) {
      // an upload session's Location (or a moved one) elsewhere: the registry's token or credentials would go with it
      throw new RegistryError(`${method} ${target.host}${target.pathname}: the registry at ${this.url} named a location on another host `
        + `(${target.origin}); its credentials are never sent there`, undefined, false);
    }
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

  /**
   * One request whose body the caller streams (a blob's bytes piped into one PATCH, chunked transfer encoding): the
   * request to write to and end, and its answer. Authenticated with what this client holds already (the upload
   * session's POST just before it answered any challenge); a body streamed once cannot be sent again, so a 401 here
   * is an error (retryable: the next attempt opens its session, and authenticates, first).
   */
  public openStream(method: string, pathOrUrl: string, options: Omit<SendOptions, 'body' | 'followRedirects'>):
  { request: http.ClientRequest; response: Promise<http.IncomingMessage> } {
    const target = new URL(pathOrUrl, this.url);
    if (target.origin !== new URL(this.url).origin) {
      throw new RegistryError(`${method} ${target.host}${target.pathname}: the registry at ${this.url} named a location on another host `
        + `(${target.origin}); its credentials are never sent there`, undefined, false);
    }
    const headers: Record<string, string> = { ...options.headers, 'Transfer-Encoding': 'chunked' };
    const authorization = this.authHeader(options.repository);
    if (authorization) {
      headers.Authorization = authorization;
    }
    this.requestCount++;
    const request = this.request(target, method, headers, options.signal);
    const response = new Promise<http.IncomingMessage>((resolve, reject) => {
      request.once('response', resolve);
      request.once('error', e => reject(networkError(e, `${method} ${target.host}${target.pathname}`)));
    }).then(async res => {
      if (res.statusCode === 401) {
        const error = await responseError(res, `${method} ${target.pathname}: the registry asked for credentials in the middle of a streamed body`);
        throw new RegistryError(error.message, 401, true, error.code, undefined, error.retryAfterMs);
      }
      if (isRetryableStatus(res.statusCode ?? 0)) {
        throw await responseError(res, `${method} ${target.host}${target.pathname}`);
      }
      return res;
    });
    response.catch(() => undefined); // the caller awaits it; a failure before it does is not unhandled
    return { request, response };
  }

  private async once(method: string, target: URL, options: SendOptions, authorization: string | undefined, redirects = 0):
  Promise<http.IncomingMessage> {
    const headers: Record<string, string> = { ...options.headers };
    if (authorization) {
      headers.Authorization = authorization;
    }
    const body = options.body;
    const pieces = body === undefined || Array.isArray(body) ? body as readonly Buffer[] | undefined : [body as Buffer];
    if (pieces) {
      headers['Content-Length'] = String(pieces.reduce((n, piece) => n + piece.length, 0));
    }
    this.requestCount++;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = this.request(target, method, headers, options.signal);
      req.once('response', resolve);
      req.once('error', e => reject(networkError(e, `${method} ${target.host}${target.pathname}`)));
      if (pieces) {
        req.cork(); // the pieces leave in one writev, not a write each
        for (const piece of pieces) {
          req.write(piece);
        }
      }
      req.end();
    });
    const status = res.statusCode ?? 0;
    if (options.followRedirects && [301, 302, 303, 307, 308].includes(status) && typeof res.headers.location === 'string') {
      res.resume();
      if (redirects >= 5) {
        throw new RegistryError(`${method} ${target.pathname}: more than 5 redirects`, status, false);
      }
      const next = new URL(res.headers.location, target);
      // credentials stay with the registry: a CDN or storage host gets a presigned URL, not our token; the origin
      // (not only the host) must match, so an https registry's token never goes to its own host over http
      const sameOrigin = keepsCredentials(target, next);
      const portable = Object.fromEntries(Object.entries(options.headers ?? {})
        .filter(([name]) => PORTABLE_HEADERS.includes(name.toLowerCase())));
      const forwarded = sameOrigin ? options.headers : portable;
      const redirected = await this.once(method, next, { ...options, headers: forwarded }, sameOrigin ? authorization : undefined, redirects + 1);
      if (!sameOrigin && redirected.statusCode === 401) {
        // answering its challenge would send the registry's credentials to a token realm that host names
        redirected.resume();
        throw new RegistryError(`${method} ${next.host}${next.pathname} (redirected from ${target.host}): the host asked for credentials (401), `
          + 'which are never sent to a host other than the registry', 401, false);
      }
      return redirected;
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
    const realm = tokenRealm(challenge, this.url, this.credentials !== undefined);
    if (scope) {
      realm.searchParams.set('scope', scope);
    }
    const headers: Record<string, string> = {};
    if (this.credentials) {
      headers.Authorization = basicHeader(this.credentials);
    }
    const res = await this.once('GET', realm, { headers, signal: options.signal }, undefined); // the caller's deadline bounds the token too
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
/** Whether a redirect from `from` to `to` may carry the registry's credentials: only to the same origin (scheme, host and port). */
export function keepsCredentials(from: URL, to: URL): boolean {
  return from.origin === to.origin;
}

/**
 * The token realm of a Bearer challenge, with its service. The realm may be another host (Docker Hub's is
 * auth.docker.io), but the registry's credentials go there only over https when the registry itself is https:
 * a realm that would take them in clear (http), or by another scheme, is refused with the reason.
 */
export function tokenRealm(challenge: Challenge, registryUrl: string, withCredentials: boolean): URL {
  let realm: URL;
  try {
    realm = new URL(challenge.params.realm);
  } catch {
    throw new RegistryError(`${registryUrl} names the token realm '${challenge.params.realm}', which is not a URL`, 401, false, 'UNAUTHORIZED');
  }
  const registry = new URL(registryUrl);
  if (!['https:', 'http:'].includes(realm.protocol) || (withCredentials && registry.protocol === 'https:' && realm.protocol !== 'https:')) {
    throw new RegistryError(`${registryUrl} names the token realm '${challenge.params.realm}': the registry's credentials are only `
      + `sent to an ${registry.protocol === 'https:' ? 'https' : 'http or https'} realm`, 401, false, 'UNAUTHORIZED');
  }
  if (challenge.params.service) {
    realm.searchParams.set('service', challenge.params.service);
  }
  return realm;
}

function basicHeader(credentials: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}
