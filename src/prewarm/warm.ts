/**
 * Warming one image through the pull through cache, as a pulling client would: the manifest by tag, the manifests of
 * the chosen platforms of a multi-platform image, then every blob (config and layers) of each.
 *
 * - By tag: a first pull by digest of an image the cache does not hold yet is not filled
 *   (https://github.com/aws/containers-roadmap/issues/2837); a pull by tag is.
 * - Each blob is asked for with GET and the answer's body is not read: on ECR's registry endpoint that GET is
 *   `GetDownloadUrlForLayer`, which a pull "calls once per image layer that is not already cached"
 *   (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetDownloadUrlForLayer.html), and is answered
 *   with a redirect to the layer's storage, not followed here (the layer need not travel through the function). The
 *   user guide does not say whether the manifest pull alone caches the layers, so every blob is asked for.
 * - Throttling (429, 503, TooManyRequests) and failures worth retrying (5xx, resets, silence) are retried with
 *   backoff, honouring `Retry-After`, until the image's retry budget is spent; anything else fails at once with the
 *   registry's own answer (`MANIFEST_UNKNOWN: ...` for an image the upstream does not have).
 *
 * Pure Node.js: no AWS SDK, no aws-cdk-lib.
 */
import { INDEX_TYPES, MANIFEST_ACCEPT, RegistryClient, RegistryError } from '../mirror/oci-client';
import { readLimited, responseError, sha256Digest } from '../mirror/oci-http';

/** One image to warm. */
export interface WarmTarget {
  /** The registry's host the workload pulls from, when the template says: it must be the one warmed. */
  readonly registry?: string;
  /** The repository in the cache registry: `docker-hub/library/nginx`. */
  readonly repository: string;
  readonly tag: string;
  /** `os/architecture[/variant]` of each platform to warm of a multi-platform image. */
  readonly platforms: readonly string[];
}

/** What warming an image found. */
export interface WarmedImage {
  readonly target: WarmTarget;
  /** The digest the tag resolved to (of the index, for a multi-platform image): what a pinned workload pulls. */
  readonly digest: string;
  /** The digest of each platform's image manifest warmed (the manifest itself for a single-platform image): what is scanned. */
  readonly imageDigests: readonly string[];
  readonly blobs: number;
  /** Attempts retried after a throttle or a transient failure. */
  readonly retries: number;
}

export interface WarmOptions {
  /**
   * Milliseconds one image may spend retrying, counted from its first failure (waits and the slow or failing attempts
   * themselves), before it fails.
   */
  readonly retryBudgetMs: number;
  /** First backoff, doubled for each next retry (capped at 20 s). @default 500 */
  readonly backoffMs?: number;
  /** Waits (tests replace it). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** The clock (tests replace it). @default Date.now */
  readonly now?: () => number;
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_BACKOFF_MS = 20_000;

interface Descriptor {
  readonly digest: string;
  readonly mediaType?: string;
  readonly platform?: { readonly os?: string; readonly architecture?: string; readonly variant?: string };
}

/** Warms one image; throws an `Error` naming the image and the registry's answer when it cannot. */
export async function warmImage(client: RegistryClient, target: WarmTarget, options: WarmOptions): Promise<WarmedImage> {
  const retry = new RetryBudget(options);
  const name = `${target.repository}:${target.tag}`;
  const here = new URL(client.url).host;
  if (target.registry !== undefined && target.registry.toLowerCase() !== here.toLowerCase()) {
    throw new WarmError(`${name}: its registry ${target.registry} is not ${here}, the registry of this function's account and region; `
      + 'warm it from a stack in the cache\'s account and region');
  }
  try {
    const top = await retry.run(() => getManifest(client, target.repository, target.tag));
    const manifests = INDEX_TYPES.includes(top.mediaType)
      ? await Promise.all(choosePlatforms(top.json.manifests ?? [], target.platforms)
        .map(d => retry.run(() => getManifest(client, target.repository, d.digest))))
      : [top];
    let blobs = 0;
    for (const manifest of manifests) {
      const descriptors: Descriptor[] = [...(manifest.json.config ? [manifest.json.config] : []), ...(manifest.json.layers ?? [])];
      for (const blob of descriptors) {
        await retry.run(() => touchBlob(client, target.repository, blob.digest));
        blobs++;
      }
    }
    return { target, digest: top.digest, imageDigests: manifests.map(m => m.digest), blobs, retries: retry.retries };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new WarmError(`${name}: ${message}`, error instanceof RegistryError ? error.status : undefined);
  }
}

/** Why an image could not be warmed: its name and the registry's answer. */
export class WarmError extends Error {
  constructor(message: string, public readonly status?: number) {
    super(message);
    this.name = 'WarmError';
  }
}

/**
 * The manifests of an index for the platforms asked for. A platform the index does not have fails: the workload
 * that runs there would fail to pull it, so the deploy fails now, naming what the image offers.
 */
export function choosePlatforms(manifests: readonly Descriptor[], platforms: readonly string[]): Descriptor[] {
  const offered = manifests.filter(m => m.platform?.os && m.platform.architecture && m.platform.os !== 'unknown');
  return platforms.map(wanted => {
    const [os, architecture, variant] = wanted.split('/');
    const found = offered.find(m => m.platform!.os === os && m.platform!.architecture === architecture
      && (variant === undefined || m.platform!.variant === variant));
    if (!found) {
      throw new RegistryError(`the image has no ${wanted} manifest; it offers ${offered.map(platformOf).join(', ') || 'no platform'}`,
        undefined, false);
    }
    return found;
  });
}

function platformOf(d: Descriptor): string {
  return [d.platform?.os, d.platform?.architecture, d.platform?.variant].filter(Boolean).join('/');
}

interface ReadManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly json: { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
}

/** A manifest, or the registry's answer as the error (a 404 says MANIFEST_UNKNOWN or NAME_UNKNOWN, and the upstream's words). */
async function getManifest(client: RegistryClient, repository: string, reference: string): Promise<ReadManifest> {
  const what = `GET manifest ${repository}:${reference}`;
  const res = await client.send('GET', `/v2/${repository}/manifests/${reference}`, { repository, headers: { Accept: MANIFEST_ACCEPT } });
  if (res.statusCode !== 200) {
    throw await responseError(res, what);
  }
  const body = await readLimited(res, MAX_MANIFEST_BYTES, what);
  const digest = String(res.headers['docker-content-digest'] ?? '') || sha256Digest(body);
  let json: ReadManifest['json'] & { mediaType?: string };
  try {
    json = JSON.parse(body.toString('utf-8'));
  } catch {
    throw new RegistryError(`${what}: the manifest is not JSON`, 200, false);
  }
  const mediaType = json.mediaType ?? String(res.headers['content-type'] ?? '').split(';')[0].trim();
  return { digest, mediaType, json };
}

/** Asks for a blob as a pull does, without reading it: a redirect (ECR) or the start of the body (a registry serving it) is enough. */
async function touchBlob(client: RegistryClient, repository: string, digest: string): Promise<void> {
  const res = await client.send('GET', `/v2/${repository}/blobs/${digest}`, { repository });
  const status = res.statusCode ?? 0;
  if (status === 200 || (status >= 300 && status < 400)) {
    res.destroy();
    return;
  }
  throw await responseError(res, `GET blob ${repository}@${digest}`);
}

/** Retries what is worth retrying while an image's budget lasts; says how much was spent when it gives up. */
class RetryBudget {
  public retries = 0;
  private firstFailureAt?: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: WarmOptions) {
    this.sleep = options.sleep ?? (ms => new Promise(resolve => setTimeout(resolve, ms)));
  }

  public async run<T>(operation: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await operation();
      } catch (error) {
        if (!(error instanceof RegistryError) || !error.retryable) {
          throw error;
        }
        const now = this.options.now ?? Date.now;
        this.firstFailureAt ??= now();
        const spent = now() - this.firstFailureAt;
        const wait = error.retryAfterMs ?? Math.min(MAX_BACKOFF_MS, (this.options.backoffMs ?? 500) * 2 ** attempt);
        if (spent + wait > this.options.retryBudgetMs) {
          throw new RegistryError(`${error.message}; gave up after ${this.retries} retries in ${(spent / 1000).toFixed(1)} s of the `
            + `${Math.round(this.options.retryBudgetMs / 1000)} s retry budget (WarmUpOptions.retryBudget)`, error.status, false, error.code);
        }
        this.retries++;
        await this.sleep(wait);
      }
    }
  }
}
