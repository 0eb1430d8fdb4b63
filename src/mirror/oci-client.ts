/**
 * A small client of the OCI distribution API (https://github.com/opencontainers/distribution-spec), for the
 * mirror's copy: manifests by tag or digest, tag lists, blobs read as streams (from an offset, where the
 * registry serves ranges), cross-repository mounts. Requests and authentication are in oci-http.ts; blob
 * uploads, in chunks that a later invocation can resume, in blob-upload.ts.
 *
 * Pure Node.js: no AWS SDK, no aws-cdk-lib.
 */
import * as http from 'http';
import { RegistryError, RegistryTransport, networkError, readLimited, responseError, sha256Digest } from './oci-http';

export { RegistryError, parseChallenge, sha256Digest } from './oci-http';
export type { RegistryClientOptions, RegistryCredentials } from './oci-http';

/** Milliseconds a cancel (`DELETE` of an upload session) may take (deadline.ts: what follows the deadline's stop). */
export const CANCEL_TIMEOUT_MS = 3_000;

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

/** A manifest as read: its bytes, its media type and the digest of exactly those bytes. */
export interface Manifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Buffer;
}


/** A blob's bytes as a stream, from `offset` on. */
export interface BlobBody {
  readonly body: http.IncomingMessage;
  /** Where the body starts: the offset asked for (206 Partial Content), or 0 when the registry ignored the range (200). */
  readonly offset: number;
}

/** The registry operations the copy uses. */
export class RegistryClient extends RegistryTransport {
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

  /**
   * A blob's bytes as a stream (redirects followed; `Authorization` is never sent to another host). From
   * `offset` on, the blob is asked for with `Range: bytes=<offset>-` (RFC 9110 section 14.2; the distribution
   * spec lets a registry serve ranges of a blob, spec.md "Pulling blobs"): a `206` whose `Content-Range` starts
   * there is the rest of the blob; a `200` is the whole blob (the registry ignored the range), and says so with
   * `offset: 0`. `signal` aborts the request, the wait for its answer included (the copy's deadline).
   */
  public async getBlob(repository: string, digest: string, offset = 0, signal?: AbortSignal): Promise<BlobBody> {
    const what = `GET blob ${repository}@${digest}${offset > 0 ? ` from byte ${offset}` : ''}`;
    const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
    const res = await this.send('GET', `/v2/${repository}/blobs/${digest}`, { repository, followRedirects: true, headers, signal });
    if (res.statusCode === 200) {
      return { body: res, offset: 0 };
    }
    if (res.statusCode === 206 && offset > 0) {
      const start = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''))?.[1];
      if (start === undefined || Number(start) !== offset) {
        res.destroy();
        throw new RegistryError(`${what}: the registry answered 206 with Content-Range '${res.headers['content-range'] ?? ''}'`, 206, true);
      }
      return { body: res, offset };
    }
    throw await responseError(res, what);
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
   * Cancels an upload session (`DELETE` on its location): the registry drops what it received. A courtesy, so it
   * never throws: a registry that does not confirm within `CANCEL_TIMEOUT_MS` (or fails, or refuses) expires the
   * abandoned session itself. It often follows the deadline's stop, when a registry that stopped answering must not
   * hold the copy past its deadline, and a declined mount, which must not fail because of it.
   */
  public async cancelUpload(repository: string, location: string): Promise<void> {
    try {
      const res = await this.send('DELETE', location, { repository, push: true, signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS) });
      res.resume();
    } catch {
      // not confirmed: the registry expires the session
    }
  }
}
