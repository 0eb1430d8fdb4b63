/**
 * The locator's vocabulary: the read-only view of a document (`Tree`) that both the ecr-ptc CLI (YAML syntax trees)
 * and the CachedImages Aspect (plain objects) give it, the kinds of image site it reports, and the small walks over a
 * tree that every part of the locator uses.
 */
import type { KustomizeImageSite } from './kustomize-images';

/** A read-only view of a parsed document: a YAML syntax tree or a plain object. */
export interface Tree<N> {
  /** The entries of a map, merge keys (`<<`) resolved with the map's own keys first; undefined when not a map. */
  entries(node: N): ReadonlyArray<readonly [string, N]> | undefined;
  /** The items of a sequence; undefined when not a sequence. */
  items(node: N): readonly N[] | undefined;
  /** A scalar's text as written (`1.10` stays `1.10`); undefined for null, maps and sequences. */
  text(node: N): string | undefined;
}

/** What kind of document a file or property holds. */
export enum DocumentFormat {
  /** A Kubernetes object (`apiVersion` and `kind`). */
  KUBERNETES = 'kubernetes',
  /** Helm chart values. */
  HELM_VALUES = 'helm-values',
  /** A compose file (`services`). */
  COMPOSE = 'compose',
  /**
   * A CI pipeline (GitHub Actions, GitLab CI): its images are pulled by the CI runners, which cannot pull from
   * a private cache without credentials of their own, so nothing in it is an image to move.
   */
  CI = 'ci',
}

/** Where an image site was found. */
export enum SiteKind {
  CONTAINER = 'container',
  CUSTOM_RESOURCE = 'custom resource field',
  HELM_STRING = 'Helm image value',
  HELM_HUB = 'Helm image hub',
  COMPOSE = 'compose service',
  /** A setting of a known convention that holds a whole image (setting-images.ts): an OLM `RELATED_IMAGE_*` variable. */
  SETTING = 'image setting',
}

/** An image written whole in one string value. */
export interface StringSite<N> {
  readonly kind: SiteKind;
  /** Where, for messages: `spec.template.spec.containers[0].image`. */
  readonly path: string;
  readonly node: N;
  readonly image: string;
}

/** The fields a Helm image map may have (helm-images.ts gives each convention's meaning). */
export const HELM_FIELDS = ['registry', 'repository', 'image', 'name', 'tag', 'version', 'digest', 'sha'] as const;
export type HelmField = typeof HELM_FIELDS[number];

/** A Helm image map: the map and its fields' nodes. */
export interface HelmMapSite<N> {
  readonly path: string;
  readonly node: N;
  readonly fields: Readonly<Partial<Record<HelmField, N>>>;
  /** Other keys of the map that name a registry (kyverno's `defaultRegistry`): a template may use one instead of `registry`. */
  readonly otherRegistries: ReadonlyArray<readonly [string, N]>;
  /** Other keys of the map that hold a repository path (gatekeeper's `crdRepository`): they move with `repository`. */
  readonly otherRepositories: ReadonlyArray<readonly [string, N]>;
}

/** Values outside an image map that decide its registry: shared by every map of the document. */
export const HELM_SHARED = {
  /** `global.imageRegistry` (Bitnami, prometheus-community, grafana): overrides every map's `registry`. */
  globalImageRegistry: ['global', 'imageRegistry'],
  /** `global.image.registry`: the same, in charts that group it under `global.image`. */
  globalImageMapRegistry: ['global', 'image', 'registry'],
  /** Top-level `imageRegistry` (cert-manager): the registry of maps that name only `name`. */
  imageRegistry: ['imageRegistry'],
  /** Top-level `imageNamespace` (cert-manager): the path between that registry and `name`. */
  imageNamespace: ['imageNamespace'],
  /** Top-level `defaultImageRegistry` (Strimzi): the registry of maps whose own `registry` is empty. */
  defaultImageRegistry: ['defaultImageRegistry'],
  /** Top-level `defaultImageRepository` (Strimzi): the path between that registry and `name`. */
  defaultImageRepository: ['defaultImageRepository'],
} as const;
export type HelmShared = keyof typeof HELM_SHARED;

/** A value the locator saw and deliberately leaves alone, with the reason. */
export interface SkippedSite<N = unknown> {
  readonly path: string;
  readonly node?: N;
  readonly image: string;
  readonly reason: string;
  /** Not an error: the value is not pulled as written (an image compose builds); reported for information. */
  readonly informational?: boolean;
  /** The value may not be an image at all (a field of a custom resource the locator does not know). */
  readonly uncertain?: boolean;
  /** A whole reference held in a setting of no known convention (setting-images.ts): "an image in a setting". */
  readonly setting?: boolean;
}

/**
 * Istio's `hub` (`global.hub` or a top-level `hub`): the registry and path in front of every image named by a
 * bare `image: <name>`. Rewritten to the cache path of that registry and path, the names unchanged.
 */
export interface HubSite<N> {
  readonly path: string;
  readonly node: N;
  readonly hub: string;
  /** The bare image names under it, in the document (the first one is used to map the hub). */
  readonly names: string[];
}

/** The image sites of one document. */
export interface DocumentSites<N> {
  readonly format: DocumentFormat;
  readonly strings: StringSite<N>[];
  readonly hubs: HubSite<N>[];
  /** The `images:` entries of a kustomization (kustomize-images.ts). */
  readonly kustomize: KustomizeImageSite<N>[];
  readonly helmMaps: HelmMapSite<N>[];
  readonly shared: Partial<Record<HelmShared, { readonly node: N; readonly path: string }>>;
  readonly skipped: SkippedSite<N>[];
}

// ---------------------------------------------------------------- walks over a Tree

export function get<N>(tree: Tree<N>, node: N | undefined, key: string): N | undefined {
  if (node === undefined) {
    return undefined;
  }
  for (const [k, v] of tree.entries(node) ?? []) {
    if (k === key) {
      return v;
    }
  }
  return undefined;
}

export function textOf<N>(tree: Tree<N>, node: N | undefined): string | undefined {
  return node === undefined ? undefined : tree.text(node);
}

export function itemsOf<N>(tree: Tree<N>, node: N | undefined): readonly N[] {
  return node === undefined ? [] : tree.items(node) ?? [];
}

/** Every node at a path of keys, where `[]` walks the items of a list; with the path written for messages. */
export function at<N>(tree: Tree<N>, node: N, path: readonly string[], where: string): Array<{ node: N; path: string }> {
  if (path.length === 0) {
    return [{ node, path: where }];
  }
  const [head, ...rest] = path;
  if (head === '[]') {
    return (tree.items(node) ?? []).flatMap((item, i) => at(tree, item, rest, `${where}[${i}]`));
  }
  const child = get(tree, node, head);
  return child === undefined ? [] : at(tree, child, rest, where ? `${where}.${head}` : head);
}
