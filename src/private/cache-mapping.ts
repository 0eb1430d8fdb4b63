import type { ImageReference } from '../image-reference';
import { hostKey } from './catalogue';

/**
 * How images of one upstream are found in the cache: the host they are referenced by, the cache prefix,
 * and (ECR to ECR only) the upstream repository prefix that the cache prefix stands for.
 */
export interface CacheRoute {
  /** The registry as `ImageReference.registry` reports it (`docker.io`, `quay.io`, ...). */
  readonly registry: string;
  /** The rule's `EcrRepositoryPrefix`, without a trailing `/`; `ROOT` for no prefix. */
  readonly ecrRepositoryPrefix: string;
  /** The rule's `UpstreamRepositoryPrefix`; undefined (or `ROOT`) when the whole upstream is mirrored. */
  readonly upstreamRepositoryPrefix?: string;
}

/** What a reference maps to in the cache. */
export interface CacheMapping {
  readonly route: CacheRoute;
  /** The repository path inside the cache registry: `docker-hub/library/nginx`. */
  readonly repository: string;
  /** `:tag`, `@digest`, both, or '' (the reference's own suffix, unchanged). */
  readonly suffix: string;
}

/**
 * The cache repository for `ref`, or undefined when no route serves it.
 *
 * Docker Hub official images keep their `library/` component (without it ECR answers 403); with an
 * upstream repository prefix, only references under that prefix are served, and it is replaced by the
 * cache prefix (`upstream-app/image1` -> `my-app/image1`).
 */
export function mapToCache(ref: ImageReference, routes: readonly CacheRoute[]): CacheMapping | undefined {
  const host = hostKey(ref.registry);
  for (const route of routes) {
    if (hostKey(route.registry) !== host) {
      continue;
    }
    let path = ref.repository;
    const upstreamPrefix = route.upstreamRepositoryPrefix;
    if (upstreamPrefix !== undefined && upstreamPrefix !== 'ROOT') {
      const stem = upstreamPrefix.replace(/\/$/, '');
      if (!path.startsWith(`${stem}/`)) {
        continue;
      }
      path = path.slice(stem.length + 1);
    }
    const repository = route.ecrRepositoryPrefix === 'ROOT' ? path : `${route.ecrRepositoryPrefix}/${path}`;
    // the reference's own `:tag@digest`, exactly as its canonical form writes it
    return { route, repository, suffix: ref.toString().slice(ref.name.length) };
  }
  return undefined;
}

/**
 * The route whose cache prefix claims `repository` although another route made it: with `quay` on `ROOT` and a
 * `k8s` rule, `quay.io/k8s/pause` would become `k8s/pause`, which ECR serves from registry.k8s.io; with the
 * prefixes `cache` and `cache/k8s`, `cache/k8s/x` belongs to the second. Undefined when no other route claims it.
 */
export function claimingRoute(mapping: CacheMapping, routes: readonly CacheRoute[]): CacheRoute | undefined {
  const own = mapping.route.ecrRepositoryPrefix;
  return routes.find(r => r.ecrRepositoryPrefix !== own && r.ecrRepositoryPrefix !== 'ROOT'
    && (own === 'ROOT' || r.ecrRepositoryPrefix.startsWith(`${own}/`))
    && mapping.repository.startsWith(`${r.ecrRepositoryPrefix}/`));
}

/**
 * ECR's other hosts for one registry: dual-stack `<account>.dkr-ecr.<region>.on.aws` and FIPS
 * `<account>.dkr.ecr-fips.<region>.amazonaws.com` serve the same repositories as `<account>.dkr.ecr.<region>.amazonaws.com`
 * (https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-requests.html).
 */
const ECR_OTHER_HOSTS = /^(\d{12})\.(?:dkr-ecr\.([a-z]{2}(?:-[a-z]+)+-\d+)\.on\.aws|dkr\.ecr-fips\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com)$/;

/** A registry host with ECR's dual-stack and FIPS hosts written as the IPv4 host of the same registry; others lower-cased. */
export function canonicalEcrHost(host: string): string {
  const h = hostKey(host);
  const other = ECR_OTHER_HOSTS.exec(h);
  return other ? `${other[1]}.dkr.ecr.${other[2] ?? other[3]}.amazonaws.com` : h;
}

/**
 * The route whose cache prefix `path` (a repository of the cache registry) lies under, and the upstream repository
 * it stands for; undefined for a repository under no prefix of the cache (one of the registry's own).
 */
export function routeOfCachePath(path: string, routes: readonly CacheRoute[]): { route: CacheRoute; upstreamPath: string } | undefined {
  const byLength = [...routes].sort((a, b) => prefixLength(b) - prefixLength(a));
  for (const route of byLength) {
    const prefix = route.ecrRepositoryPrefix;
    if (prefix !== 'ROOT' && !path.startsWith(`${prefix}/`)) {
      continue;
    }
    const rest = prefix === 'ROOT' ? path : path.slice(prefix.length + 1);
    const upstreamPrefix = route.upstreamRepositoryPrefix;
    const upstreamPath = upstreamPrefix !== undefined && upstreamPrefix !== 'ROOT' ? `${upstreamPrefix.replace(/\/$/, '')}/${rest}` : rest;
    return { route, upstreamPath };
  }
  return undefined;
}

function prefixLength(route: CacheRoute): number {
  return route.ecrRepositoryPrefix === 'ROOT' ? 0 : route.ecrRepositoryPrefix.length;
}

/**
 * Why a reference pinned by digest only (no tag) may not pull from the cache: ECR fills the cache on a pull by tag
 * only (aws/containers-roadmap#2837). The one text for `imageUri`, the Aspect and `ecr-ptc`.
 */
export function digestOnlyWarning(image: string): string {
  return `'${image}' is pinned by digest only: ECR fills the cache only on a pull by tag, so the first pull of an image `
    + 'that is not cached yet fails. Write it as name:tag@digest, or pull it by tag once.';
}

/** The acknowledgeable id of a mapping's warning: a digest-only pin, or a tag only a copied upstream's pattern names. */
export function mappingWarningId(warning: string): string {
  return `cdk-ecr-pull-through-cache:${warning.includes('pinned by digest only') ? 'firstPullByDigest' : 'copiedTagPattern'}`;
}
