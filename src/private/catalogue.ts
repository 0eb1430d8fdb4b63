/**
 * The one table of ECR pull through cache upstreams (ECR-FACTS.md section 1).
 *
 * Everything that needs to know an upstream's URL, its `UpstreamRegistry` value, whether it needs
 * credentials, its default cache prefix or the host its images are referenced by reads it from here:
 * the `UpstreamRegistry` factories, the construct's validation, `imageUri` and (later) the CLI.
 * Pure data and pure functions: no CDK imports, so the CLI can load it without aws-cdk-lib.
 */

/** How ECR authenticates to the upstream. */
export enum UpstreamAuth {
  /** Anonymous pulls. */
  NONE = 'none',
  /** A Secrets Manager secret named `ecr-pullthroughcache/...` with `username` and `accessToken`. */
  SECRET = 'secret',
  /** An IAM role ECR assumes (ECR to ECR); needed only when the upstream is in another account. */
  ROLE = 'role',
}

/** One row of the catalogue. */
export interface CatalogueEntry {
  /** The `UpstreamRegistry` value of the ECR API (and CloudFormation). */
  readonly registryType: string;
  /** Human name, used in messages. */
  readonly displayName: string;
  /** The exact `UpstreamRegistryUrl`, or undefined where the user names it (Azure, ECR). */
  readonly registryUrl?: string;
  /** The cache prefix used when the user gives none. */
  readonly defaultPrefix: string;
  readonly auth: UpstreamAuth;
  /**
   * The host images of this upstream are written with, when it differs from `registryUrl`
   * (Docker Hub images say `docker.io`, the rule needs `registry-1.docker.io`).
   */
  readonly registry?: string;
}

export const DOCKER_HUB_HOST = 'docker.io';

export const CATALOGUE: readonly CatalogueEntry[] = [
  { registryType: 'ecr-public', displayName: 'Amazon ECR Public', registryUrl: 'public.ecr.aws', defaultPrefix: 'ecr-public', auth: UpstreamAuth.NONE },
  { registryType: 'k8s', displayName: 'Kubernetes registry', registryUrl: 'registry.k8s.io', defaultPrefix: 'k8s', auth: UpstreamAuth.NONE },
  { registryType: 'quay', displayName: 'Quay', registryUrl: 'quay.io', defaultPrefix: 'quay', auth: UpstreamAuth.NONE },
  { registryType: 'docker-hub', displayName: 'Docker Hub', registryUrl: 'registry-1.docker.io', defaultPrefix: 'docker-hub', auth: UpstreamAuth.SECRET, registry: DOCKER_HUB_HOST },
  { registryType: 'github-container-registry', displayName: 'GitHub Container Registry', registryUrl: 'ghcr.io', defaultPrefix: 'ghcr', auth: UpstreamAuth.SECRET },
  { registryType: 'gitlab-container-registry', displayName: 'GitLab Container Registry', registryUrl: 'registry.gitlab.com', defaultPrefix: 'gitlab', auth: UpstreamAuth.SECRET },
  { registryType: 'azure-container-registry', displayName: 'Azure Container Registry', defaultPrefix: 'azure', auth: UpstreamAuth.SECRET },
  { registryType: 'chainguard', displayName: 'Chainguard', registryUrl: 'cgr.dev', defaultPrefix: 'chainguard', auth: UpstreamAuth.SECRET },
  { registryType: 'ecr', displayName: 'Amazon ECR (private)', defaultPrefix: 'ecr', auth: UpstreamAuth.ROLE },
];

/**
 * Registries ECR cannot pull through that `UpstreamRegistry.copied` knows, each with a short default prefix in the
 * catalogue's convention (a short name of the registry, never its host): the prefix is written into every image URI a
 * team commits. Each differs from every rule prefix above and from each other, and none lies under another (a prefix
 * always ends in `/`, so `redhat` does not cover `redhat-access/...`): the catalogue test checks it. Any other host
 * has no default: `UpstreamRegistry.copied` asks for `ecrRepositoryPrefix` and suggests one (`suggestedPrefix`).
 */
export interface CopiedRegistryEntry {
  /** The registry host as image references write it. */
  readonly host: string;
  /** Human name, used in messages. */
  readonly displayName: string;
  /** The cache prefix used when the user gives none. */
  readonly defaultPrefix: string;
}

export const COPIED_CATALOGUE: readonly CopiedRegistryEntry[] = [
  { host: 'mcr.microsoft.com', displayName: 'Microsoft Container Registry', defaultPrefix: 'mcr' },
  { host: 'gcr.io', displayName: 'Google Container Registry', defaultPrefix: 'gcr' },
  { host: 'nvcr.io', displayName: 'NVIDIA NGC', defaultPrefix: 'nvcr' },
  { host: 'registry.redhat.io', displayName: 'Red Hat registry', defaultPrefix: 'redhat' },
  { host: 'registry.access.redhat.com', displayName: 'Red Hat registry (anonymous access)', defaultPrefix: 'redhat-access' },
];

/** The `COPIED_CATALOGUE` row of a registry host, or undefined. */
export function copiedRegistryEntry(host: string): CopiedRegistryEntry | undefined {
  const h = hostKey(host);
  return COPIED_CATALOGUE.find(e => e.host === h);
}

/** The copied registries with a default prefix, for messages: `mcr.microsoft.com (mcr), gcr.io (gcr), ...`. */
export function copiedDefaultsText(): string {
  return COPIED_CATALOGUE.map(e => `${e.host} (${e.defaultPrefix})`).join(', ');
}

/** Host labels that name no registry in particular, dropped from a suggested prefix (`registry.example.com` -> `example`). */
const GENERIC_LABELS = new Set(['registry', 'docker', 'cr', 'containers', 'images', 'www']);

/**
 * A cache prefix to suggest for a host with no default: its labels without the port, the top-level domain and generic
 * labels, joined by `-` (`registry.example.com:5000` -> `example`, `us.gcr.io` -> `us-gcr`), at most 30 characters.
 * Only a suggestion, in messages: the prefix is the user's to choose.
 */
export function suggestedPrefix(host: string): string {
  let labels = hostKey(host).replace(/:\d+$/, '').split('.').map(l => l.replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')).filter(l => l !== '');
  if (labels.length > 1) {
    labels = labels.slice(0, -1);
  }
  while (labels.length > 1 && GENERIC_LABELS.has(labels[0])) {
    labels = labels.slice(1);
  }
  const joined = labels.join('-').slice(0, 23).replace(/-+$/, '');
  if (prefixProblem(joined) !== undefined) {
    return 'copied';
  }
  // `quay.internal` would suggest `quay`, the prefix of the Quay rule: a suggestion never takes a default prefix
  const taken = [...CATALOGUE, ...COPIED_CATALOGUE].some(e => e.defaultPrefix === joined);
  return taken ? `${joined}-copied` : joined;
}

/** Looks up a catalogue row by its `UpstreamRegistry` value. */
export function catalogueEntry(registryType: string): CatalogueEntry {
  const entry = CATALOGUE.find(e => e.registryType === registryType);
  if (!entry) {
    throw new Error(`internal error: no catalogue entry for upstream registry type '${registryType}'`);
  }
  return entry;
}

/** `<name>.azurecr.io`: registry names are 5-50 alphanumerics; the login server is lowercase. */
export const AZURE_REGISTRY_URL = /^[a-z0-9]{5,50}\.azurecr\.io$/;

/** `<account>.dkr.ecr.<region>.amazonaws.com`, the only form ECR accepts for an ECR upstream. */
export const ECR_REGISTRY_URL = /^(\d{12})\.dkr\.ecr\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com$/;

/**
 * The Region an ECR registry host names (`<account>.dkr.ecr.<region>.<url suffix>`, any partition; the account may be
 * a token), or undefined when the host names none (a token Region, another registry).
 */
export function ecrRegistryRegion(host: string): string | undefined {
  return /\.dkr\.ecr\.([a-z]{2}(?:-[a-z]+)+-\d+)\./.exec(host)?.[1];
}

/** Docker Hub's other names, all normalised to `docker.io` by image-reference parsing. */
export const DOCKER_HUB_ALIASES: readonly string[] = [DOCKER_HUB_HOST, 'index.docker.io', 'registry-1.docker.io'];

/** Regions where pull through cache rules cannot be created (UG pull-through-cache.html). */
export const UNSUPPORTED_REGIONS: readonly string[] = ['cn-north-1', 'cn-northwest-1', 'us-gov-east-1', 'us-gov-west-1'];

/** Hosts users often expect to work, with the reason they do not. */
const KNOWN_UNSUPPORTED: ReadonlyArray<{ readonly test: RegExp; readonly why: string }> = [
  { test: /^mcr\.microsoft\.com$/, why: 'Microsoft Container Registry (mcr.microsoft.com) is not an Azure Container Registry (<name>.azurecr.io), and ECR has no upstream type for it' },
  { test: /^registry\.(access\.)?redhat\.(io|com)$/, why: 'Red Hat registries are not ECR upstreams (feature request aws/containers-roadmap#2491)' },
  { test: /(^|\.)gcr\.io$|(^|\.)pkg\.dev$/, why: 'Google Container Registry and Artifact Registry are not ECR upstreams' },
  { test: /^gitlab\./, why: 'only GitLab.com (registry.gitlab.com) is supported, not self-managed GitLab' },
];

/** The supported upstreams, for error messages. */
export function supportedUpstreamsText(): string {
  return CATALOGUE.map(e => `${e.displayName} (${e.registryUrl ?? (e.registryType === 'ecr' ? '<account>.dkr.ecr.<region>.amazonaws.com' : '<name>.azurecr.io')})`).join(', ');
}

/** The message for a registry host ECR cannot pull through. */
export function unsupportedRegistryMessage(host: string): string {
  if (hostKey(host) === 'k8s.gcr.io') {
    // frozen since 2023, its images served from registry.k8s.io (https://kubernetes.io/blog/2023/03/10/k8s-gcr-io-freeze-announcement/)
    return 'ECR cannot pull through \'k8s.gcr.io\', which is frozen: its images are on registry.k8s.io, which ECR pulls through '
      + '(UpstreamRegistry.kubernetes()). Write the image as registry.k8s.io/<the same path>.';
  }
  const known = KNOWN_UNSUPPORTED.find(k => k.test.test(host));
  // a copied upstream has a default prefix only for the registries of COPIED_CATALOGUE: for any other, name one
  const prefix = copiedRegistryEntry(host) ? '' : `, ecrRepositoryPrefix: '${suggestedPrefix(host)}'`;
  return `ECR cannot pull through '${host}'${known ? `: ${known.why}` : ''}. `
    + `Supported upstreams: ${supportedUpstreamsText()}. `
    + `Serve it by copying the images you need into the cache: UpstreamRegistry.copied({ registryUrl: '${host}'${prefix}, images: ['<repository>:<tag>'] }) `
    + '(see "Registries ECR cannot pull through" in the README).';
}

/**
 * The catalogue row for a registry host as users write it (`docker.io`, `quay.io`,
 * `myreg.azurecr.io`, `123456789012.dkr.ecr.eu-west-1.amazonaws.com`), or undefined.
 */
export function entryForHost(host: string): CatalogueEntry | undefined {
  const h = hostKey(host);
  if (DOCKER_HUB_ALIASES.includes(h)) {
    return catalogueEntry('docker-hub');
  }
  if (AZURE_REGISTRY_URL.test(h)) {
    return catalogueEntry('azure-container-registry');
  }
  if (ECR_REGISTRY_URL.test(h)) {
    return catalogueEntry('ecr');
  }
  return CATALOGUE.find(e => e.registryUrl === h);
}

/**
 * A registry host as compared: hosts are case-insensitive, and `:443` is the HTTPS port a registry is reached on
 * anyway (`Quay.io` and `quay.io:443` are `quay.io`).
 */
export function hostKey(host: string): string {
  return host.toLowerCase().replace(/:443$/, '');
}

/** A registry host as image references name it: no scheme or trailing slash, Docker Hub's names folded into `docker.io`. */
export function registryOf(host: string): string {
  const h = host.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  return DOCKER_HUB_ALIASES.includes(h.toLowerCase()) ? DOCKER_HUB_HOST : h;
}

/** Cache prefix rules shared by `EcrRepositoryPrefix` and `UpstreamRepositoryPrefix` (API pattern, 2-30). */
const PREFIX_PATTERN = /^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$/;

/** Why `prefix` is not a valid ECR repository prefix, or undefined when it is. */
export function prefixProblem(prefix: string): string | undefined {
  if (prefix.length < 2 || prefix.length > 30) {
    return `it is ${prefix.length} characters long; ECR allows 2 to 30`;
  }
  if (!PREFIX_PATTERN.test(prefix)) {
    if (prefix.toLowerCase() !== prefix && prefix !== 'ROOT') {
      return 'it has uppercase letters; use lowercase (the only uppercase value allowed is the literal ROOT)';
    }
    return 'it must be lowercase path components of letters and digits, separated by "/" and joined inside by ".", "_", "__" or "-" (for example "docker-hub" or "team/quay"), or the literal ROOT';
  }
  // ECR always assumes a trailing '/'. Dropping it silently would change the value (and turn 'a/' into an
  // invalid 'a'), so it is refused: the prefix is used exactly as written.
  if (prefix.endsWith('/')) {
    const bare = prefix.replace(/\/+$/, '');
    return `it ends with '/', which ECR always assumes; write '${bare}'${bare.length < 2 ? ` (and note that '${bare}' is ${bare.length} character long; ECR allows 2 to 30)` : ''}`;
  }
  return undefined;
}
