// Over 400 lines: the catalogue of upstreams, one documented factory each, read as one table (the table itself is private/catalogue.ts).
import { Token } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import { parseImageSpec } from './image-spec';
import {
  AZURE_REGISTRY_URL, CatalogueEntry, ECR_REGISTRY_URL, UpstreamAuth,
  catalogueEntry, copiedDefaultsText, copiedRegistryEntry, entryForHost, prefixProblem, suggestedPrefix, unsupportedRegistryMessage,
} from './private/catalogue';
import { UpstreamCredentials } from './upstream-credentials';

/** The upstream registry types of the ECR API (`UpstreamRegistry`). */
export enum UpstreamRegistryType {
  /** Amazon ECR Public, `public.ecr.aws`. */
  ECR_PUBLIC = 'ecr-public',
  /** The Kubernetes project registry, `registry.k8s.io`. */
  KUBERNETES = 'k8s',
  /** Quay, `quay.io`. */
  QUAY = 'quay',
  /** Docker Hub, `registry-1.docker.io`. */
  DOCKER_HUB = 'docker-hub',
  /** GitHub Container Registry, `ghcr.io`. */
  GITHUB_CONTAINER_REGISTRY = 'github-container-registry',
  /** GitLab Container Registry (GitLab.com only), `registry.gitlab.com`. */
  GITLAB_CONTAINER_REGISTRY = 'gitlab-container-registry',
  /** Microsoft Azure Container Registry, `<name>.azurecr.io`. */
  AZURE_CONTAINER_REGISTRY = 'azure-container-registry',
  /** Chainguard, `cgr.dev`. */
  CHAINGUARD = 'chainguard',
  /** Another private Amazon ECR registry, `<account>.dkr.ecr.<region>.amazonaws.com`. */
  ECR = 'ecr',
  /**
   * Not an ECR upstream type: a registry ECR cannot pull through, whose named images the cache's copier
   * copies into the cache (`UpstreamRegistry.copied`). No pull through cache rule is created for it.
   */
  COPIED = 'copied',
}

/** Options common to every upstream. */
export interface UpstreamOptions {
  /**
   * The repository prefix of the cache in your registry: images of this upstream are pulled as
   * `<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/<upstream repository>`.
   *
   * 2 to 30 characters, lowercase path components (`docker-hub`, `team/quay`), or `ROOT`.
   * Changing it replaces the rule (every rule property is create-only).
   *
   * @default - the upstream's default: `ecr-public`, `k8s`, `quay`, `docker-hub`, `ghcr`, `gitlab`,
   * `azure`, `chainguard` or `ecr`; for `UpstreamRegistry.copied`, `mcr` (mcr.microsoft.com), `gcr` (gcr.io),
   * `nvcr` (nvcr.io), `redhat` (registry.redhat.io) or `redhat-access` (registry.access.redhat.com), and
   * required for any other host
   */
  readonly ecrRepositoryPrefix?: string;
}

/** Options for an upstream that needs credentials. */
export interface AuthenticatedUpstreamOptions extends UpstreamOptions {
  /**
   * The credentials ECR pulls from the upstream with. For Docker Hub use a paid or organization access
   * token: cache refreshes count against this account's pull limits.
   */
  readonly credentials: UpstreamCredentials;
}

/** Options for an Azure Container Registry upstream. */
export interface AzureContainerRegistryOptions extends AuthenticatedUpstreamOptions {
  /** The registry's login server, `<name>.azurecr.io`. */
  readonly registryUrl: string;
}

/** Options for an Amazon ECR (private registry) upstream. */
export interface EcrUpstreamOptions extends UpstreamOptions {
  /** The upstream registry, `<account>.dkr.ecr.<region>.amazonaws.com`. */
  readonly registryUrl: string;

  /**
   * The role ECR assumes to pull from the upstream registry. It must trust
   * `pullthroughcache.ecr.amazonaws.com`, and the upstream registry must allow this account to pull.
   *
   * @default - none: ECR uses its service-linked role, which only works when the upstream registry is in
   * this account (a cross-Region cache)
   */
  readonly role?: iam.IRole;

  /**
   * Mirror only the upstream repositories under this prefix; the cache prefix stands for it
   * (`<cache prefix>/image` pulls `<upstream prefix>/image`). Needs a cache prefix other than `ROOT`.
   *
   * @default - the whole upstream registry (`ROOT`)
   */
  readonly upstreamRepositoryPrefix?: string;
}

/** Options for `UpstreamRegistry.copied`: a registry ECR cannot pull through, served by copying named images. */
export interface CopiedUpstreamOptions extends UpstreamOptions {
  /**
   * The registry host the copier pulls from, as image references name it: `mcr.microsoft.com`,
   * `registry.access.redhat.com`, `gcr.io`, `registry.example.com:5000`.
   */
  readonly registryUrl: string;

  /**
   * The images to copy, as `repository:tag` without the host (`dotnet/runtime:8.0`), or `repository:pattern`
   * where `*` matches any characters (`dotnet/runtime:8.0.*`): the highest `maxTagsPerPattern` matching tags,
   * ordered as versions (`8.0.10` after `8.0.9`).
   */
  readonly images: string[];

  /**
   * At most this many tags are copied for each pattern in `images`.
   * @default 5
   */
  readonly maxTagsPerPattern?: number;

  /**
   * When the images are copied again. A tag is copied only when upstream moved it (two HEAD requests otherwise).
   * @default - every 6 hours
   */
  readonly schedule?: events.Schedule;

  /**
   * Credentials for the upstream, read by the copy function from Secrets Manager.
   * @default - anonymous pulls
   */
  readonly credentials?: UpstreamCredentials;
}

/** Options for `UpstreamRegistry.fromUrl`. */
export interface UpstreamFromUrlOptions extends UpstreamOptions {
  /**
   * Credentials, for the upstreams that need them.
   * @default - none; required for Docker Hub, GHCR, GitLab, Azure and Chainguard
   */
  readonly credentials?: UpstreamCredentials;

  /**
   * For an ECR upstream in another account: the role ECR assumes.
   * @default - none
   */
  readonly role?: iam.IRole;

  /**
   * For an ECR upstream: mirror only the repositories under this prefix.
   * @default - the whole upstream registry
   */
  readonly upstreamRepositoryPrefix?: string;
}

/** Where a shared cache's downstream rule really pulls from: the central cache's upstream (a row of its mapping). */
interface SharedOrigin {
  /** The registry host as image references name it (`docker.io`). */
  readonly registry: string;
  /** For an ECR upstream: the part of it the central rule serves. */
  readonly upstreamRepositoryPrefix?: string;
}

/**
 * A registry ECR can pull through, with the cache prefix it is served under.
 *
 * One factory per upstream type ECR supports. Registries ECR cannot pull through (`mcr.microsoft.com`,
 * `registry.access.redhat.com`, `gcr.io`, ...) are served by copying named images: `UpstreamRegistry.copied`;
 * `fromUrl` refuses them and says so.
 */
export class UpstreamRegistry {
  /** Amazon ECR Public (`public.ecr.aws`), default prefix `ecr-public`. */
  public static ecrPublic(options: UpstreamOptions = {}): UpstreamRegistry {
    return UpstreamRegistry.fromCatalogue('ecr-public', options);
  }

  /** The Kubernetes registry (`registry.k8s.io`), default prefix `k8s`. */
  public static kubernetes(options: UpstreamOptions = {}): UpstreamRegistry {
    return UpstreamRegistry.fromCatalogue('k8s', options);
  }

  /** Quay (`quay.io`), default prefix `quay`. */
  public static quay(options: UpstreamOptions = {}): UpstreamRegistry {
    return UpstreamRegistry.fromCatalogue('quay', options);
  }

  /**
   * Docker Hub (`registry-1.docker.io`), default prefix `docker-hub`. ECR requires credentials.
   * Official images keep `library/` in the cache: `docker-hub/library/nginx`.
   */
  public static dockerHub(options: AuthenticatedUpstreamOptions): UpstreamRegistry {
    return UpstreamRegistry.fromCatalogue('docker-hub', options);
  }

  /** GitHub Container Registry (`ghcr.io`), default prefix `ghcr`. ECR requires credentials. */
  public static githubContainerRegistry(options: AuthenticatedUpstreamOptions): UpstreamRegistry {
    return UpstreamRegistry.fromCatalogue('github-container-registry', options);
  }

  /** GitLab Container Registry on GitLab.com (`registry.gitlab.com`), default prefix `gitlab`. ECR requires credentials. */
  public static gitlabContainerRegistry(options: AuthenticatedUpstreamOptions): UpstreamRegistry {
    return UpstreamRegistry.fromCatalogue('gitlab-container-registry', options);
  }

  /** An Azure Container Registry (`<name>.azurecr.io`), default prefix `azure`. ECR requires credentials. */
  public static azureContainerRegistry(options: AzureContainerRegistryOptions): UpstreamRegistry {
    const url = checkRegistryUrl(options?.registryUrl, AZURE_REGISTRY_URL, 'azureContainerRegistry', 'an Azure Container Registry login server',
      '<name>.azurecr.io\' (5 to 50 lowercase letters and digits, no scheme or path), for example \'myregistry.azurecr.io');
    return UpstreamRegistry.fromCatalogue('azure-container-registry', options, url);
  }

  /** Chainguard (`cgr.dev`), default prefix `chainguard`. ECR requires credentials (username and pull token). */
  public static chainguard(options: AuthenticatedUpstreamOptions): UpstreamRegistry {
    return UpstreamRegistry.fromCatalogue('chainguard', options);
  }

  /** Another private Amazon ECR registry (ECR to ECR, across Regions or accounts), default prefix `ecr`. */
  public static ecr(options: EcrUpstreamOptions): UpstreamRegistry {
    const url = checkRegistryUrl(options?.registryUrl, ECR_REGISTRY_URL, 'ecr', 'a private ECR registry',
      '<12-digit account>.dkr.ecr.<region>.amazonaws.com\', with no scheme or path, for example \'111122223333.dkr.ecr.eu-west-1.amazonaws.com');
    return UpstreamRegistry.fromCatalogue('ecr', options, url);
  }

  /**
   * A registry ECR cannot pull through (`mcr.microsoft.com`, `registry.access.redhat.com`, `registry.redhat.io`,
   * `gcr.io`, `*.pkg.dev`, `nvcr.io`, a self-managed GitLab, any OCI registry): the listed images are copied
   * into the cache on a schedule by the cache's copier (`PullThroughCacheRules.copier`), and pulled from ECR
   * like cached images.
   *
   * Well-known registries have a short default prefix, like the pull through upstreams: `mcr` (mcr.microsoft.com),
   * `gcr` (gcr.io), `nvcr` (nvcr.io), `redhat` (registry.redhat.io) and `redhat-access` (registry.access.redhat.com);
   * `mcr.microsoft.com/dotnet/runtime:8.0` is cached as `<registry>/mcr/dotnet/runtime:8.0`. Any other host needs
   * `ecrRepositoryPrefix`.
   *
   * Experimental: the copier has never pushed to a live ECR registry.
   *
   * @experimental
   */
  public static copied(options: CopiedUpstreamOptions): UpstreamRegistry {
    const where = 'UpstreamRegistry.copied';
    if (typeof options?.registryUrl !== 'string') {
      throw new Error(`${where}: registryUrl is required, for example 'mcr.microsoft.com'.`);
    }
    const host = options.registryUrl.replace(/^https?:\/\//, '').replace(/\/+$/, '').toLowerCase();
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/.test(host)) {
      throw new Error(`${where}: registryUrl '${options.registryUrl}' is not a registry host. Use the host as image references write it, `
        + 'for example \'mcr.microsoft.com\' or \'registry.example.com:5000\' (no path).');
    }
    const native = entryForHost(host);
    if (native) {
      throw new Error(`${where}: ECR pulls through ${host} (${native.displayName}) itself, with no copy: use UpstreamRegistry.fromUrl('${host}') `
        + 'or its own factory instead.');
    }
    const known = copiedRegistryEntry(host);
    if (options.ecrRepositoryPrefix === undefined && !known) {
      throw new Error(`${where}: ${host} has no default cache prefix, and the prefix is in every image URI your teams write: `
        + `set ecrRepositoryPrefix, for example ecrRepositoryPrefix: '${suggestedPrefix(host)}' (its images are then cached as `
        + `<registry>/${suggestedPrefix(host)}/<repository>). Defaults exist only for ${copiedDefaultsText()}.`);
    }
    const prefix = options.ecrRepositoryPrefix ?? known!.defaultPrefix;
    if (prefix === 'ROOT') {
      throw new Error(`${where} (${host}): ecrRepositoryPrefix is 'ROOT', which would give the copier the whole registry: a `
        + 'registry-wide CREATE_ON_PUSH repository creation template (any push to a missing repository would create it with '
        + 'the cache\'s settings) and push rights on repository/*. Give the copied upstream a prefix of its own, for example '
        + `'${known?.defaultPrefix ?? suggestedPrefix(host)}'${known ? ', or leave ecrRepositoryPrefix out to use that default' : ''}.`);
    }
    const images = options.images;
    if (!Array.isArray(images) || images.length === 0) {
      throw new Error(`${where} (${host}): images is empty. Name the images to copy, for example images: ['dotnet/runtime:8.0'].`);
    }
    for (const image of images) {
      if (typeof image === 'string' && image.toLowerCase().startsWith(`${host}/`)) {
        throw new Error(`${where} (${host}): images has '${image}', which starts with the registry host: write '${image.slice(host.length + 1)}'.`);
      }
      try {
        parseImageSpec(image);
      } catch (e) {
        throw new Error(`${where} (${host}): images has ${(e as Error).message}.`);
      }
    }
    const duplicate = images.find((image, i) => images.indexOf(image) !== i);
    if (duplicate) {
      throw new Error(`${where} (${host}): images lists '${duplicate}' twice.`);
    }
    const maxTags = options.maxTagsPerPattern ?? 5;
    if (!Number.isInteger(maxTags) || maxTags < 1 || maxTags > 100) {
      throw new Error(`${where} (${host}): maxTagsPerPattern is ${maxTags}; use a whole number from 1 to 100.`);
    }
    const entry: CatalogueEntry = {
      registryType: UpstreamRegistryType.COPIED,
      displayName: `${known?.displayName ?? host} (${host}, copied)`,
      registryUrl: host,
      defaultPrefix: prefix,
      auth: options.credentials ? UpstreamAuth.SECRET : UpstreamAuth.NONE,
    };
    const upstream = new UpstreamRegistry(entry, host, options);
    (upstream as { _mirror?: unknown })._mirror = { images: [...images], maxTagsPerPattern: maxTags, schedule: options.schedule };
    return upstream;
  }

  /**
   * The upstream for a registry host, as written in image references (`docker.io`, `quay.io`,
   * `myregistry.azurecr.io`, ...).
   *
   * @throws if ECR cannot pull through the host (for example `mcr.microsoft.com`), or if the upstream
   * needs credentials and none are given
   */
  public static fromUrl(registryUrl: string, options: UpstreamFromUrlOptions = {}): UpstreamRegistry {
    const host = String(registryUrl).replace(/^https?:\/\//, '').replace(/\/+$/, '');
    const entry = entryForHost(host);
    if (!entry) {
      throw new Error(unsupportedRegistryMessage(host));
    }
    if (entry.registryType === 'azure-container-registry') {
      return UpstreamRegistry.azureContainerRegistry({ ...options, registryUrl: host, credentials: options.credentials! });
    }
    if (entry.registryType === 'ecr') {
      return UpstreamRegistry.ecr({ ...options, registryUrl: host });
    }
    return UpstreamRegistry.fromCatalogue(entry.registryType, options);
  }

  /**
   * The downstream of `origin` in a member account: an ECR upstream on the shared central registry whose
   * cache prefix and upstream prefix are both `origin`'s prefix, so image URIs map the same way in both
   * accounts. Used by `SharedCacheMember`.
   * @internal
   */
  public static _throughSharedCache(origin: SharedOrigin, ecrRepositoryPrefix: string, registryUrl: string, role: iam.IRole): UpstreamRegistry {
    const downstream = UpstreamRegistry.ecr({ registryUrl, role, ecrRepositoryPrefix, upstreamRepositoryPrefix: ecrRepositoryPrefix });
    (downstream as { _origin?: SharedOrigin })._origin = origin;
    return downstream;
  }

  private static fromCatalogue(registryType: string, options: UpstreamFromUrlOptions, registryUrl?: string): UpstreamRegistry {
    const entry = catalogueEntry(registryType);
    return new UpstreamRegistry(entry, registryUrl ?? entry.registryUrl!, options ?? {});
  }

  /** The upstream's type, the rule's `UpstreamRegistry` value. */
  public readonly registryType: UpstreamRegistryType;

  /**
   * Where ECR (or the copier) pulls from: the rule's `UpstreamRegistryUrl`, `registry-1.docker.io` for Docker Hub.
   * Not what image references write: that is `registry`.
   */
  public readonly registryUrl: string;

  /**
   * The registry host image references name for this upstream, as `ImageReference.registry` and `CachePrefix.registry`
   * do: `docker.io` for Docker Hub, else `registryUrl`.
   */
  public readonly registry: string;

  /** The cache prefix, without a trailing `/`. */
  public readonly ecrRepositoryPrefix: string;

  /**
   * The credentials ECR pulls with.
   * @default - none (an anonymous or IAM-role upstream)
   */
  public readonly credentials?: UpstreamCredentials;

  /**
   * The role ECR assumes for an ECR upstream.
   * @default - none
   */
  public readonly role?: iam.IRole;

  /**
   * The upstream repository prefix the cache prefix stands for (ECR upstreams only).
   * @default - the whole upstream registry
   */
  public readonly upstreamRepositoryPrefix?: string;

  /** Human-readable name, for messages. */
  public readonly displayName: string;

  /**
   * For the downstream of a shared cache: the central upstream this rule reaches through it (its images are
   * referenced by the central upstream's host, `docker.io` for Docker Hub).
   * @internal
   */
  public readonly _origin?: SharedOrigin;

  /**
   * For a copied upstream (`registryType` COPIED): what the copier copies, and when.
   * @internal
   */
  public readonly _mirror?: { readonly images: string[]; readonly maxTagsPerPattern: number; readonly schedule?: events.Schedule };

  private constructor(entry: CatalogueEntry, registryUrl: string, options: UpstreamFromUrlOptions) {
    const factory = `UpstreamRegistry (${entry.displayName})`;
    this.registryType = entry.registryType as UpstreamRegistryType;
    this.displayName = entry.displayName;
    this.registryUrl = registryUrl;
    this.registry = entry.registry ?? registryUrl;
    this.ecrRepositoryPrefix = checkPrefix(options.ecrRepositoryPrefix ?? entry.defaultPrefix, 'ecrRepositoryPrefix', factory);

    if (entry.auth === UpstreamAuth.SECRET && !options.credentials) {
      throw new Error(`${factory}: ECR needs credentials to pull from ${registryUrl}. Pass credentials: `
        + 'UpstreamCredentials.fromSecret(secret) for an existing ecr-pullthroughcache/... secret, or '
        + 'UpstreamCredentials.createSecret() to create one and fill it after deploy.');
    }
    if (entry.auth !== UpstreamAuth.SECRET && options.credentials) {
      throw new Error(`${factory}: ${registryUrl} takes no credentials; remove them.`);
    }
    this.credentials = options.credentials;

    if (entry.auth !== UpstreamAuth.ROLE && (options.role || options.upstreamRepositoryPrefix !== undefined)) {
      throw new Error(`${factory}: role and upstreamRepositoryPrefix apply only to ECR upstreams (UpstreamRegistry.ecr).`);
    }
    this.role = options.role;
    if (options.upstreamRepositoryPrefix !== undefined) {
      const upstreamPrefix = checkPrefix(options.upstreamRepositoryPrefix, 'upstreamRepositoryPrefix', factory);
      if (upstreamPrefix !== 'ROOT' && this.ecrRepositoryPrefix === 'ROOT') {
        throw new Error(`${factory}: upstreamRepositoryPrefix '${upstreamPrefix}' needs an ecrRepositoryPrefix other than ROOT; `
          + 'ECR maps <ecrRepositoryPrefix>/<image> to <upstreamRepositoryPrefix>/<image>. Set ecrRepositoryPrefix.');
      }
      this.upstreamRepositoryPrefix = upstreamPrefix;
    }
  }
}

/** A user-named upstream URL (Azure, ECR): required, and of the one form ECR accepts unless it is a token. */
function checkRegistryUrl(url: string | undefined, pattern: RegExp, factory: string, what: string, form: string): string {
  if (typeof url !== 'string') {
    throw new Error(`UpstreamRegistry.${factory}: registryUrl is required: use '${form}'.`);
  }
  if (!Token.isUnresolved(url) && !pattern.test(url)) {
    throw new Error(`UpstreamRegistry.${factory}: registryUrl '${url}' is not ${what}. Use '${form}'.`);
  }
  return url;
}

/** Validates a prefix and returns it without a trailing `/` (ECR always assumes one). */
function checkPrefix(prefix: string, what: string, factory: string): string {
  if (typeof prefix !== 'string') {
    throw new Error(`${factory}: ${what} must be a string.`);
  }
  if (Token.isUnresolved(prefix)) {
    throw new Error(`${factory}: ${what} must be a literal string, not a token: it names the cache path, the construct id and `
      + 'the image URIs computed at synth time.');
  }
  const problem = prefixProblem(prefix);
  if (problem) {
    throw new Error(`${factory}: ${what} '${prefix}' is invalid: ${problem}.`);
  }
  return prefix === 'ROOT' ? prefix : prefix.replace(/\/$/, '');
}
