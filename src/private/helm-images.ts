/**
 * The Helm image-map conventions, shared by the ecr-ptc CLI and the CachedImages Aspect: what reference a map
 * stands for, and which fields change, to what, when it moves to the cache. image-locator.ts finds the maps;
 * this file reads and plans; each caller applies the plan its own way (byte edits, or values of an object).
 * docs/HELM-CONVENTIONS.md surveys the charts behind each convention.
 */
import type { HelmField, HelmShared } from './locator-tree';

/** A Helm image map's fields as written; an empty string counts as absent. */
export type HelmMapValues = Readonly<Partial<Record<HelmField, string>>>;

/** The document's shared values (image-locator.ts `HELM_SHARED`); an empty string counts as absent. */
export type HelmSharedValues = Readonly<Partial<Record<HelmShared, string>>>;

/** How a map names its image. */
export enum HelmConvention {
  /** `registry` (or a global registry) + `repository` + `tag`/`digest`/`sha`: Bitnami, prometheus-community, grafana. */
  REPOSITORY = 'registry + repository',
  /** `registry` + `image` + `tag`/`digest`, where a non-empty `repository` replaces both: ingress-nginx. */
  REGISTRY_IMAGE = 'registry + image',
  /** `repository` (a registry and a path) + `image` + `version`/`tag`: NVIDIA gpu-operator. */
  REPOSITORY_IMAGE = 'repository + image',
  /** Top-level `imageRegistry` + `imageNamespace` + the map's `name`: cert-manager. */
  NAMESPACE_NAME = 'imageRegistry + imageNamespace + name',
  /** Top-level `defaultImageRegistry` + `defaultImageRepository` + the map's `name`, unless it has its own: Strimzi. */
  DEFAULT_REGISTRY_NAME = 'defaultImageRegistry + defaultImageRepository + name',
}

/** What a map stands for. */
export type HelmReading =
  | {
    readonly convention: HelmConvention;
    readonly reference: string;
    /** Where the registry host came from: the map's own `registry` field, a shared value, or nowhere (in the path). */
    readonly hostFrom?: 'registry' | HelmShared;
    /** A tag or digest written inside the repository (or image) value, kept on rewrite. */
    readonly inlineSuffix: string;
  }
  | {
    readonly problem: string;
    readonly reference?: string;
    /** The shared registry the map may take its registry from: it must not move without this map. */
    readonly uses?: HelmShared;
  }
  | { readonly empty: true };

const nonEmpty = (value: string | undefined) => value !== undefined && value !== '' ? value : undefined;

/** `sha: <hex>` (prometheus-community, grafana) and `digest` written with or without its algorithm. */
function digestOf(values: HelmMapValues): string | undefined {
  const digest = nonEmpty(values.digest) ?? nonEmpty(values.sha);
  return digest === undefined ? undefined : digest.includes(':') ? digest : `sha256:${digest}`;
}

/**
 * `:tag`, `@digest` or both, as the map's own fields add them. A tag or digest the chart fills in (`{{ }}`, a
 * variable, a deploy-time value) is left out: the cache path does not depend on it, and it is never edited.
 */
function suffixOf(values: HelmMapValues): string {
  const filled = (value: string | undefined) => value !== undefined && /\{\{|\$|@@ptc-/.test(value) ? undefined : value;
  const tag = filled(nonEmpty(values.tag) ?? nonEmpty(values.version));
  const digest = filled(digestOf(values));
  return `${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`;
}

/** A tag or digest written inside a repository value (`nginx:1.27`, `quay.io/a/b@sha256:...`). */
export function inlineSuffix(repository: string): string {
  const at = repository.indexOf('@');
  const lastSlash = repository.lastIndexOf('/', at >= 0 ? at : undefined);
  const colon = repository.indexOf(':', lastSlash + 1);
  const start = colon >= 0 && (at < 0 || colon < at) ? colon : at;
  return start >= 0 ? repository.slice(start) : '';
}

/** Whether the first path component is a registry host (`quay.io/...`, `localhost:5000/...`). */
export function namesARegistry(repository: string): boolean {
  const first = repository.split('/')[0];
  return repository.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
}

/** Reads a map: the reference it stands for, or why it cannot be read safely, or that it names no image. */
export function readHelmMap(values: HelmMapValues, present: ReadonlySet<HelmField>, shared: HelmSharedValues,
  otherRegistries: Readonly<Record<string, string>> = {}): HelmReading {
  const reading = otherRegistryProblem(values, otherRegistries) ?? readFields(values, present, shared);
  if ('problem' in reading && (nonEmpty(values.repository) !== undefined || nonEmpty(values.image) !== undefined)) {
    // a map left whole may still take its registry from a global one: that global stays too
    const uses: HelmShared | undefined = nonEmpty(shared.globalImageRegistry) ? 'globalImageRegistry'
      : nonEmpty(shared.globalImageMapRegistry) ? 'globalImageMapRegistry' : undefined;
    return uses === undefined ? reading : { ...reading, uses };
  }
  return reading;
}

/**
 * A map with another key naming a registry (image-locator.ts `otherRegistries`; kyverno's `defaultRegistry`) is
 * read only when its own `registry` names the same one: with `registry` empty the template may use the other (as
 * kyverno's does), so reading the repository as Docker Hub would move the image wrongly.
 */
function otherRegistryProblem(values: HelmMapValues, otherRegistries: Readonly<Record<string, string>>): HelmReading | undefined {
  const own = nonEmpty(values.registry);
  for (const [key, host] of Object.entries(otherRegistries)) {
    if (own === undefined) {
      return { problem: `its registry is empty and ${key} '${host}' beside it may be the one the chart uses (kyverno's template uses defaultRegistry then): set registry to the image's registry to have it moved, or point it at the cache by hand` };
    }
    if (own.toLowerCase() !== host.toLowerCase()) {
      return { problem: `its registry '${own}' differs from ${key} '${host}' beside it: which one the chart uses depends on its template; set both to the same registry to have it moved` };
    }
  }
  return undefined;
}

function readFields(values: HelmMapValues, present: ReadonlySet<HelmField>, shared: HelmSharedValues): HelmReading {
  const registry = nonEmpty(values.registry);
  const repository = nonEmpty(values.repository);
  const image = nonEmpty(values.image);
  const globalFrom: HelmShared | undefined = nonEmpty(shared.globalImageRegistry) ? 'globalImageRegistry'
    : nonEmpty(shared.globalImageMapRegistry) ? 'globalImageMapRegistry' : undefined;
  const globalRegistry = globalFrom && shared[globalFrom];
  const suffix = suffixOf(values);
  if (globalRegistry !== undefined && registry !== undefined && registry.toLowerCase() !== globalRegistry.toLowerCase()
    && (repository !== undefined || image !== undefined)) {
    // Bitnami's global wins over every map; tempo-distributed's does not apply to its enterprise images
    return { problem: `its registry '${registry}' differs from ${sharedPath(globalFrom!)} '${globalRegistry}': which one the chart uses depends on its template` };
  }

  const strimzi = readStrimziMap(values, shared, suffix);
  if (strimzi !== undefined) {
    return strimzi;
  }

  const withRepository = (convention: HelmConvention, path: string, host: string | undefined, hostFrom?: 'registry' | HelmShared): HelmReading => {
    const inline = inlineSuffix(path);
    if (inline !== '' && suffix !== '') {
      return { problem: `the repository '${path}' has a tag or digest and the map has its own (${suffix}): which one the chart uses depends on its template` };
    }
    if (host !== undefined && namesARegistry(path)) {
      return { problem: `the repository '${path}' names a registry and the registry is '${host}' too: which one the chart uses depends on its template` };
    }
    return { convention, reference: `${host !== undefined ? `${host}/` : ''}${path}${suffix}`, hostFrom, inlineSuffix: inline };
  };

  if (image !== undefined && present.has('registry')) {
    // ingress-nginx: `repository`, when set, is the whole image name and replaces registry + image
    if (repository !== undefined) {
      return withRepository(HelmConvention.REPOSITORY, repository, undefined);
    }
    const host = globalRegistry ?? registry;
    if (host === undefined) {
      return { problem: `'image: ${image}' has an empty registry: the chart's own default decides where it comes from` };
    }
    return withRepository(HelmConvention.REGISTRY_IMAGE, image, host, globalFrom ?? 'registry');
  }
  if (image !== undefined && repository !== undefined) {
    return withRepository(HelmConvention.REPOSITORY_IMAGE, `${repository}/${image}`, undefined);
  }
  if (image !== undefined && globalRegistry !== undefined) {
    // ingress-nginx with its per-image `registry` commented out: global.image.registry is the registry
    return withRepository(HelmConvention.REGISTRY_IMAGE, image, globalRegistry, globalFrom);
  }
  if (repository !== undefined) {
    return withRepository(HelmConvention.REPOSITORY, repository, globalRegistry ?? registry, globalFrom ?? (registry !== undefined ? 'registry' : undefined));
  }
  const name = nonEmpty(values.name);
  if (name !== undefined && (nonEmpty(shared.imageNamespace) !== undefined || nonEmpty(shared.imageRegistry) !== undefined)) {
    if (registry !== undefined) {
      return { problem: `'name: ${name}' with a registry of its own beside the top-level imageRegistry: left whole` };
    }
    const path = [nonEmpty(shared.imageRegistry), nonEmpty(shared.imageNamespace), name].filter(x => x !== undefined).join('/');
    return { convention: HelmConvention.NAMESPACE_NAME, reference: `${path}${suffix}`, inlineSuffix: '' };
  }
  if (image !== undefined) {
    return { problem: `'image: ${image}' without a registry or repository beside it: which registry the chart prepends is not known` };
  }
  if (name !== undefined) {
    return { problem: `'name: ${name}' without cert-manager's imageRegistry or imageNamespace: what the chart puts in front of it is not known` };
  }
  return { empty: true };
}

/**
 * Strimzi's chart: each image map has `registry`, `repository` and `name` (and `tag`, or a `tagPrefix` the
 * template completes with the Kafka version), and an empty `registry` or `repository` falls back to the top-level
 * `defaultImageRegistry` / `defaultImageRepository` (strimzi/strimzi-kafka-operator@8541da1e:
 * helm-charts/helm3/strimzi-kafka-operator/templates/_helpers.tpl, `strimzi.image`). A map that names both of its
 * own is read by the repository convention; one that sets only one of them is left whole. Undefined when the
 * document does not follow this convention.
 */
function readStrimziMap(values: HelmMapValues, shared: HelmSharedValues, suffix: string): HelmReading | undefined {
  const name = nonEmpty(values.name);
  const registry = nonEmpty(shared.defaultImageRegistry);
  const repository = nonEmpty(shared.defaultImageRepository);
  if (name === undefined || registry === undefined || repository === undefined || nonEmpty(values.image) !== undefined) {
    return undefined;
  }
  const ownRegistry = nonEmpty(values.registry) !== undefined;
  const ownRepository = nonEmpty(values.repository) !== undefined;
  if (ownRegistry || ownRepository) {
    // with one of its own, the map still takes the other default: that default must stay as it is
    const uses: HelmShared | undefined = ownRegistry && !ownRepository ? 'defaultImageRepository' : !ownRegistry ? 'defaultImageRegistry' : undefined;
    return { problem: `'name: ${name}' with a registry or repository of its own beside defaultImageRegistry and defaultImageRepository: left whole`, uses };
  }
  // a tag or digest the template completes (tagPrefix + the Kafka version) does not change the cache path
  return { convention: HelmConvention.DEFAULT_REGISTRY_NAME, reference: `${registry}/${repository}/${name}${suffix}`, inlineSuffix: '' };
}

/** One map to plan: its reading, and why it may not be edited (a caller's constraint, such as a YAML alias). */
export interface HelmPlanInput {
  readonly reading: HelmReading;
  readonly present: ReadonlySet<HelmField>;
  /** Whether the map has a non-empty `registry` of its own. */
  readonly ownRegistry: boolean;
  /** Why this map's fields cannot be edited, if they cannot. */
  readonly blocked?: string;
}

/** The decision about one reference, from the caller's mapping. */
export interface HelmDecision {
  /** The cache repository path, when the reference moves to the cache; undefined to keep it. */
  readonly cachePath?: string;
}

/** The plan for one map. */
export interface HelmMapPlan {
  /** The new values of its fields; empty when it does not change. */
  readonly set: Readonly<Partial<Record<HelmField, string>>>;
  /**
   * Fields to add as empty strings where the map lacks them, so a chart default cannot put a registry in
   * front of the new repository. Only callers that can add keys (the Aspect's values) apply it.
   */
  readonly addEmpty: readonly HelmField[];
  /** Why a map that would move stays: a shared value held, or the map not editable. */
  readonly held?: string;
}

/** The plan for a document: per map, and the new shared values. */
export interface HelmPlan {
  readonly maps: HelmMapPlan[];
  readonly shared: Readonly<Partial<Record<HelmShared, string>>>;
}

/**
 * Plans the edits of a document's maps. Maps that take their registry from a shared value move together, or
 * none of them does: the shared value changes only when every map using it moves (served, and editable).
 */
export function planHelmMaps(
  inputs: readonly HelmPlanInput[],
  decisions: readonly (HelmDecision | undefined)[],
  shared: HelmSharedValues,
  sharedBlocked: Readonly<Partial<Record<HelmShared, string>>>,
  registryUri: string,
): HelmPlan {
  const plans: Array<{ set: Partial<Record<HelmField, string>>; addEmpty: HelmField[]; held?: string; group?: HelmShared[] }> = [];
  const newShared: Partial<Record<HelmShared, string>> = {};
  const namespaces = new Set<string>();
  const defaultRepositories = new Set<string>();

  inputs.forEach((input, i) => {
    const decision = decisions[i];
    const reading = input.reading;
    if (!('convention' in reading)) {
      plans.push({ set: {}, addEmpty: [], group: 'uses' in reading && reading.uses ? [reading.uses] : undefined, held: 'problem' in reading ? reading.problem : undefined });
      return;
    }
    const group: HelmShared[] = reading.convention === HelmConvention.NAMESPACE_NAME
      ? (['imageRegistry', 'imageNamespace'] as HelmShared[]).filter(s => nonEmpty(shared[s]) !== undefined)
      : reading.convention === HelmConvention.DEFAULT_REGISTRY_NAME ? ['defaultImageRegistry', 'defaultImageRepository']
        : reading.hostFrom !== undefined && reading.hostFrom !== 'registry' ? [reading.hostFrom] : [];
    if (decision?.cachePath === undefined) {
      plans.push({ set: {}, addEmpty: [], group, held: input.blocked ?? (group.length > 0 ? 'kept' : undefined) });
      return;
    }
    const path = decision.cachePath;
    const set: Partial<Record<HelmField, string>> = {};
    const addEmpty: HelmField[] = [];
    let held = input.blocked;
    switch (reading.convention) {
      case HelmConvention.REPOSITORY:
        if (reading.hostFrom === 'registry') {
          set.registry = registryUri;
          set.repository = `${path}${reading.inlineSuffix}`;
        } else if (reading.hostFrom !== undefined) {
          newShared[reading.hostFrom] = registryUri;
          set.repository = `${path}${reading.inlineSuffix}`;
          if (input.ownRegistry) {
            set.registry = registryUri; // overridden by the shared value today, right if it is removed later
          }
        } else {
          set.repository = `${registryUri}/${path}${reading.inlineSuffix}`;
          if (!input.present.has('registry')) {
            addEmpty.push('registry');
          }
        }
        break;
      case HelmConvention.REGISTRY_IMAGE:
        if (reading.hostFrom === 'registry') {
          set.registry = registryUri;
        } else {
          newShared[reading.hostFrom!] = registryUri;
          if (input.ownRegistry) {
            set.registry = registryUri;
          }
        }
        set.image = `${path}${reading.inlineSuffix}`;
        break;
      case HelmConvention.REPOSITORY_IMAGE: {
        const image = reading.reference.replace(/[:@].*$/, '').split('/').pop()!;
        if (!path.endsWith(`/${image}`)) {
          held = held ?? `the cache path ${path} does not end with the image name ${image}`;
          break;
        }
        set.repository = `${registryUri}/${path.slice(0, -image.length - 1)}`;
        break;
      }
      case HelmConvention.NAMESPACE_NAME: {
        const name = reading.reference.replace(/[:@].*$/, '').split('/').pop()!;
        if (!path.endsWith(`/${name}`)) {
          held = held ?? `the cache path ${path} does not end with the name ${name}`;
          break;
        }
        if (nonEmpty(shared.imageRegistry) === undefined) {
          held = held ?? 'there is no imageRegistry to point at the cache (the chart defaults to Docker Hub)';
          break;
        }
        namespaces.add(path.slice(0, -name.length - 1));
        newShared.imageRegistry = registryUri;
        newShared.imageNamespace = path.slice(0, -name.length - 1);
        break;
      }
      case HelmConvention.DEFAULT_REGISTRY_NAME: {
        // Strimzi: the two defaults move, every name stays
        const name = reading.reference.replace(/[:@].*$/, '').split('/').pop()!;
        if (!path.endsWith(`/${name}`)) {
          held = held ?? `the cache path ${path} does not end with the name ${name}`;
          break;
        }
        defaultRepositories.add(path.slice(0, -name.length - 1));
        newShared.defaultImageRegistry = registryUri;
        newShared.defaultImageRepository = path.slice(0, -name.length - 1);
        break;
      }
    }
    plans.push(held !== undefined ? { set: {}, addEmpty: [], held, group } : { set, addEmpty, group });
  });

  // a shared value changes only when every map that uses it moves, and it can be edited
  const heldShared = new Map<HelmShared, string>();
  for (const s of Object.keys(newShared) as HelmShared[]) {
    const users = plans.filter(p => p.group?.includes(s));
    const why = sharedBlocked[s] !== undefined ? `${sharedPath(s)} is ${sharedBlocked[s]}`
      : users.some(p => p.held === 'kept') ? `${sharedPath(s)} also serves images that stay where they are`
        : users.some(p => p.held !== undefined) ? `another image under ${sharedPath(s)} cannot be rewritten`
          : s === 'imageNamespace' && namespaces.size > 1 ? `the images under ${sharedPath(s)} would need different namespaces (${[...namespaces].join(', ')})`
            : s === 'defaultImageRepository' && defaultRepositories.size > 1
              ? `the images under ${sharedPath(s)} would need different repositories (${[...defaultRepositories].join(', ')})`
              : undefined;
    if (why !== undefined) {
      heldShared.set(s, why);
    }
  }
  const maps = plans.map(p => {
    const blockedBy = p.group?.find(s => heldShared.has(s));
    if (blockedBy !== undefined && p.held === undefined) {
      return { set: {}, addEmpty: [], held: heldShared.get(blockedBy) };
    }
    return { set: p.set, addEmpty: p.addEmpty, held: p.held === 'kept' ? undefined : p.held };
  });
  for (const s of heldShared.keys()) {
    delete newShared[s];
  }
  // cert-manager's two shared values move together
  if ((newShared.imageRegistry === undefined) !== (newShared.imageNamespace === undefined) && nonEmpty(shared.imageNamespace) !== undefined) {
    delete newShared.imageRegistry;
    delete newShared.imageNamespace;
  }
  // so do Strimzi's; a map that moved with one of them alone is held
  if ((newShared.defaultImageRegistry === undefined) !== (newShared.defaultImageRepository === undefined)) {
    const held = `${sharedPath('defaultImageRegistry')} and ${sharedPath('defaultImageRepository')} move together, and one of them cannot`;
    delete newShared.defaultImageRegistry;
    delete newShared.defaultImageRepository;
    return { maps: maps.map((m, i) => plans[i].group?.includes('defaultImageRegistry') && m.held === undefined ? { set: {}, addEmpty: [], held } : m), shared: newShared };
  }
  return { maps, shared: newShared };
}

/** How a shared value is written, for messages. */
export function sharedPath(shared: HelmShared): string {
  return {
    globalImageRegistry: 'global.imageRegistry',
    globalImageMapRegistry: 'global.image.registry',
    imageRegistry: 'imageRegistry',
    imageNamespace: 'imageNamespace',
    defaultImageRegistry: 'defaultImageRegistry',
    defaultImageRepository: 'defaultImageRepository',
  }[shared];
}
