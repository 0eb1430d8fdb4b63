import { ImageReference } from './image-reference';
import { parseImageSpec, specsInclude } from './image-spec';
import { CacheRoute, canonicalEcrHost, claimingRoute, digestOnlyWarning, mapToCache, routeOfCachePath } from './private/cache-mapping';
import { CATALOGUE, ECR_REGISTRY_URL, entryForHost, hostKey, registryOf, unsupportedRegistryMessage } from './private/catalogue';

/** One row of the registry-to-prefix table: images of `registry` are served under `prefix`. */
export interface CachePrefix {
  /** The registry host as image references name it: `docker.io`, `quay.io`, `myregistry.azurecr.io`. */
  readonly registry: string;

  /** The cache prefix (the rule's `EcrRepositoryPrefix`); `ROOT` for none. */
  readonly ecrRepositoryPrefix: string;

  /**
   * For ECR upstreams: only repositories under this upstream prefix are served, and it is replaced by `ecrRepositoryPrefix`.
   * @default - the whole upstream registry
   */
  readonly upstreamRepositoryPrefix?: string;

  /**
   * For a copied upstream (`UpstreamRegistry.copied`): the only images the copier copies, as `repository:tag` or
   * `repository:<tag pattern>`. Any other image of the registry is not served (`MappingStatus.NOT_COPIED`).
   * @default - every image of the registry is served
   */
  readonly copiedImages?: string[];

  /**
   * For a copied upstream: how many of the tags matching each tag pattern of `copiedImages` the copier copies (the highest).
   * A tag that only a pattern names is then mapped with a warning: it is served only while it is among them.
   * @default - 5, the default of `UpstreamRegistry.copied`
   */
  readonly copiedTagsPerPattern?: number;
}

/** Properties of `ImageMapping`. */
export interface ImageMappingProps {
  /** The cache registry: `<account>.dkr.ecr.<region>.amazonaws.com`. */
  readonly registryUri: string;

  /**
   * The registry-to-prefix table.
   * @default - `ImageMapping.defaultPrefixes()`, the construct's default prefixes for the upstreams with a fixed host
   */
  readonly prefixes?: CachePrefix[];
}

/** What became of one image reference. */
export enum MappingStatus {
  /** The reference was mapped to the cache (`uri`). */
  REWRITTEN = 'REWRITTEN',
  /** The reference already points at the cache registry; `uri` is the input, unchanged. */
  ALREADY_CACHED = 'ALREADY_CACHED',
  /** ECR could pull through the registry, but the table has no prefix for it. */
  NO_RULE = 'NO_RULE',
  /** The registry is served by copies (`UpstreamRegistry.copied`), and the copier does not copy this image (see `CachePrefix.copiedImages`). */
  NOT_COPIED = 'NOT_COPIED',
  /** ECR cannot pull through the registry at all (for example `mcr.microsoft.com`). */
  UNSUPPORTED_REGISTRY = 'UNSUPPORTED_REGISTRY',
  /** The reference is not a valid image reference. */
  INVALID = 'INVALID',
}

/** The result of `ImageMapping.map`. */
export interface MappedImage {
  /** The reference as given. */
  readonly input: string;

  /** What happened. */
  readonly status: MappingStatus;

  /**
   * The cache URI (`REWRITTEN`), or the input (`ALREADY_CACHED`).
   * @default - none: the reference is not served by the cache
   */
  readonly uri?: string;

  /**
   * Why the reference is not served (every status but `REWRITTEN` and `ALREADY_CACHED`).
   * @default - none
   */
  readonly reason?: string;

  /**
   * The repository path inside the cache (`docker-hub/library/nginx`), without registry, tag or digest: of a
   * `REWRITTEN` reference, or of an `ALREADY_CACHED` one under a cache prefix.
   * @default - none: not served by the cache (or a repository of the registry's own)
   */
  readonly repository?: string;

  /**
   * A caution about a served reference: a digest-only reference cannot fill the cache on its first pull.
   * @default - none
   */
  readonly warning?: string;
}

/**
 * Maps image references to the cache, from an explicit registry and prefix table. Pure: no AWS calls, no CDK.
 *
 * One mapping decides everything: `PullThroughCacheRules.imageUri`, the `CachedImages` Aspect and the
 * `ecr-ptc` CLI all use it.
 *
 * @example
 * const mapping = new ImageMapping({ registryUri: '111122223333.dkr.ecr.eu-west-1.amazonaws.com' });
 * mapping.map('nginx:1.27').uri; // '111122223333.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/library/nginx:1.27'
 */
export class ImageMapping {
  /**
   * The default table: every upstream with a fixed host, under the construct's default prefix
   * (`docker.io` -> `docker-hub`, `quay.io` -> `quay`, ...). Azure and ECR upstreams have no fixed host.
   */
  public static defaultPrefixes(): CachePrefix[] {
    return CATALOGUE.filter(e => e.registryUrl !== undefined).map(e => ({
      registry: e.registry ?? e.registryUrl!,
      ecrRepositoryPrefix: e.defaultPrefix,
    }));
  }

  /** The cache registry. */
  public readonly registryUri: string;

  /** The registry-to-prefix table this mapping maps by (the defaults when none was given). */
  public readonly prefixes: CachePrefix[];

  private readonly routes: CacheRoute[];

  /** The images copied into each copied upstream's prefix. */
  private readonly copiedImages: Map<string, readonly string[]>;

  /** How many tags of each pattern are copied into each copied upstream's prefix. */
  private readonly tagsPerPattern: Map<string, number>;

  constructor(props: ImageMappingProps) {
    const given = props?.registryUri;
    if (typeof given !== 'string' || given.length === 0) {
      throw new Error('ImageMapping: registryUri is required, for example 111122223333.dkr.ecr.eu-west-1.amazonaws.com.');
    }
    // a host, as image references write it: a URL's scheme and trailing slash would make `https://...//repo` URIs
    const domain = given.trim().replace(/^https?:\/\//i, '').replace(/\/+$/, '');
    if (domain.length === 0 || /[\/\s]/.test(domain)) {
      throw new Error(`ImageMapping: registryUri '${given}' is not a registry host. Give the host alone, for example `
        + '111122223333.dkr.ecr.eu-west-1.amazonaws.com (no scheme, path or slash).');
    }
    this.registryUri = domain;
    this.prefixes = [...(props.prefixes ?? ImageMapping.defaultPrefixes())];
    this.routes = this.prefixes.map(p => ({
      registry: registryOf(p.registry),
      ecrRepositoryPrefix: p.ecrRepositoryPrefix.replace(/\/$/, ''),
      upstreamRepositoryPrefix: p.upstreamRepositoryPrefix,
    }));
    this.copiedImages = new Map((props.prefixes ?? []).filter(p => p.copiedImages !== undefined)
      .map(p => [p.ecrRepositoryPrefix.replace(/\/$/, ''), p.copiedImages!]));
    this.tagsPerPattern = new Map((props.prefixes ?? []).filter(p => p.copiedImages !== undefined)
      .map(p => [p.ecrRepositoryPrefix.replace(/\/$/, ''), p.copiedTagsPerPattern ?? 5]));
  }

  /**
   * Maps one reference. Never throws: an invalid or unserved reference comes back with its status and reason.
   *
   * @param image an image reference, for example `nginx:1.27`
   */
  public map(image: string): MappedImage {
    if (image.toLowerCase().startsWith(`${hostKey(this.registryUri)}/`)) {
      // the registry URI may be a token (an environment-agnostic cache): the path after it is literal
      return this.checkCached(image, image.slice(this.registryUri.length + 1));
    }
    let ref: ImageReference;
    try {
      ref = ImageReference.parse(image);
    } catch (e) {
      return { input: image, status: MappingStatus.INVALID, reason: (e as Error).message };
    }
    const host = canonicalEcrHost(ref.registry); // ECR's dual-stack and FIPS hosts are the same registry
    if (host === hostKey(canonicalEcrHost(this.registryUri))) {
      return this.checkCached(image, image.slice(image.indexOf('/') + 1));
    }
    if (host !== hostKey(ref.registry)) {
      ref = ImageReference.parse(`${host}/${image.slice(image.indexOf('/') + 1)}`);
    }
    const mapping = mapToCache(ref, this.routes);
    const claimedBy = mapping && claimingRoute(mapping, this.routes);
    if (claimedBy) {
      return {
        input: image,
        status: MappingStatus.NO_RULE,
        reason: `its cache path ${mapping.repository} lies under the prefix `
          + `'${claimedBy.ecrRepositoryPrefix}' of ${claimedBy.registry}, whose rule ECR would pull it through instead`,
      };
    }
    const copied = mapping && this.copiedImages.get(mapping.route.ecrRepositoryPrefix);
    if (mapping && copied && !specsInclude(copied, ref.repository, ref.tag)) {
      return {
        input: image,
        status: MappingStatus.NOT_COPIED,
        reason: `the copier copies only ${copied.join(', ')} into '${mapping.route.ecrRepositoryPrefix}', so nothing copies this image`
          + `${ref.tag === undefined ? ' (the copier copies tags: name one)' : ''}; add it to the copied upstream's images`,
      };
    }
    if (!mapping) {
      return entryForHost(ref.registry)
        ? { input: image, status: MappingStatus.NO_RULE, reason: `no cache prefix for ${ref.registry}${routeHint(ref)}${addUpstreamHint(ref.registry)}` }
        : { input: image, status: MappingStatus.UNSUPPORTED_REGISTRY, reason: unsupportedRegistryMessage(ref.registry) };
    }
    return {
      input: image,
      status: MappingStatus.REWRITTEN,
      uri: `${this.registryUri}/${mapping.repository}${mapping.suffix}`,
      repository: mapping.repository,
      warning: ref.tag === undefined && ref.digest !== undefined
        ? digestOnlyWarning(image)
        : copied && !specsInclude(copied.filter(spec => !parseImageSpec(spec).pattern), ref.repository, ref.tag)
          ? patternOnlyWarning(image, mapping.route.ecrRepositoryPrefix, copied, ref, this.tagsPerPattern.get(mapping.route.ecrRepositoryPrefix)!)
          : undefined,
    };
  }

  /**
   * A URI in the cache registry, checked like any image: its path must be one the cache serves, as the upstream
   * reference it stands for maps to (`<cache>/docker-hub/nginx` is not: ECR serves `docker-hub/library/nginx`), and
   * a copied upstream's must be an image the copier copies. A repository under no cache prefix is the registry's own.
   */
  private checkCached(image: string, rest: string): MappedImage {
    const cached: MappedImage = { input: image, status: MappingStatus.ALREADY_CACHED, uri: image };
    let inCache: ImageReference;
    try {
      inCache = ImageReference.parse(`cache.invalid/${rest}`);
    } catch (e) {
      return { input: image, status: MappingStatus.INVALID, reason: (e as Error).message };
    }
    const path = inCache.repository;
    const found = routeOfCachePath(path, this.routes);
    if (found === undefined) {
      return cached;
    }
    const suffix = inCache.toString().slice(inCache.name.length);
    const upstream = `${found.route.registry}/${found.upstreamPath}`;
    const forward = this.map(`${upstream}${suffix}`);
    if (forward.status === MappingStatus.REWRITTEN && forward.repository === path) {
      return { ...cached, repository: path, ...(forward.warning ? { warning: forward.warning } : {}) };
    }
    if (forward.status === MappingStatus.REWRITTEN) {
      return { input: image, status: MappingStatus.INVALID, reason: cachedPathProblem(path, upstream, forward, this.registryUri, suffix) };
    }
    return { ...forward, input: image };
  }
}

/**
 * The copier copies, of the tags matching a pattern, only the highest few; "highest" may be OS variants of one version
 * (`8.0.15-noble`, `8.0.15-jammy`...), so a tag that only a pattern names may never be copied.
 */
function patternOnlyWarning(image: string, prefix: string, copied: readonly string[], ref: ImageReference, perPattern: number): string {
  const patterns = copied.filter(spec => parseImageSpec(spec).pattern && specsInclude([spec], ref.repository, ref.tag));
  return `'${image}' matches the tag pattern ${patterns.join(', ')} copied into '${prefix}', of which the copier copies only the ${perPattern} `
    + 'highest tags (OS variants of one version count as tags): it is served only while it is among them. Name the tag '
    + `exactly in the copied upstream's images ('${ref.repository}:${ref.tag}') to be sure it is copied.`;
}

/** How the URI of an image in the cache should read, when `path` is not it. */
function cachedPathProblem(path: string, upstream: string, forward: MappedImage, domain: string, suffix: string): string {
  const libraryHint = forward.repository!.endsWith(`/library/${path.split('/').pop()}`) ? ' (Docker Hub official images keep library/: without it ECR answers 403)' : '';
  return `'${path}' is not where the cache serves ${upstream}: it is cached as ${forward.repository}${libraryHint}. `
    + `Write ${domain}/${forward.repository}${suffix}, or pass the upstream reference to imageUri.`;
}

/** The factory of each upstream type, for the advice to add one. */
const FACTORIES: Readonly<Record<string, string>> = {
  'ecr-public': 'ecrPublic()',
  'k8s': 'kubernetes()',
  'quay': 'quay()',
  'docker-hub': 'dockerHub({ credentials })',
  'github-container-registry': 'githubContainerRegistry({ credentials })',
  'gitlab-container-registry': 'gitlabContainerRegistry({ credentials })',
  'azure-container-registry': 'azureContainerRegistry({ registryUrl, credentials })',
  'chainguard': 'chainguard({ credentials })',
  'ecr': 'ecr({ registryUrl })',
};

/** `: add UpstreamRegistry.x(...) ...` for a host ECR pulls through, naming its upstream. */
function addUpstreamHint(host: string): string {
  const factory = FACTORIES[entryForHost(host)?.registryType ?? ''];
  return factory ? `: add UpstreamRegistry.${factory} to the cache's upstreams` : '';
}

function routeHint(ref: ImageReference): string {
  if (ECR_REGISTRY_URL.test(ref.registry)) {
    return ` (or no rule whose upstream repository prefix covers ${ref.repository})`;
  }
  return '';
}
