/**
 * Image references inside plain objects: Kubernetes manifests and Helm values as a CDK app holds them.
 * The same conventions as the ecr-ptc CLI's YAML rewriting (helm-images.ts): `image` (and `<something>Image`)
 * strings, Helm image maps (`registry` + `repository` + `tag`/`digest`) and `global.imageRegistry`.
 */
import { IMAGE_KEY, helmImageReference, helmMapsMayMove, helmRewrite } from './helm-images';

/** Decides each reference: the new value, or undefined to keep it (reporting is the caller's). */
export type ImageDecider = (image: string) => { readonly uri?: string; readonly cachePath?: string; readonly served: boolean };

/** One reference found, with where it was. */
export interface ObjectFinding { readonly path: string; readonly image: string }

/**
 * Returns a rewritten deep copy of `value` and the references found. `decide` returns the cache URI and
 * repository path for served references.
 */
export function rewriteObjectImages(
  value: unknown, decide: ImageDecider, registryDomain: string,
): { value: unknown; found: ObjectFinding[]; unserved: ObjectFinding[] } {
  const found: ObjectFinding[] = [];
  const unserved: ObjectFinding[] = [];
  const globalRegistry = stringAt(value, ['global', 'imageRegistry']);
  const helmMaps: Array<{ map: Record<string, unknown>; path: string; image: string }> = [];

  const walk = (node: unknown, path: string): unknown => {
    if (Array.isArray(node)) {
      return node.map((item, i) => walk(item, `${path}[${i}]`));
    }
    if (!isObject(node)) {
      return node;
    }
    const copy: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(node)) {
      const childPath = path ? `${path}.${key}` : key;
      if (IMAGE_KEY.test(key) && typeof child === 'string' && child !== '') {
        found.push({ path: childPath, image: child });
        const decision = decide(child);
        if (!decision.served) {
          unserved.push({ path: childPath, image: child });
        }
        copy[key] = decision.uri ?? child;
      } else if (IMAGE_KEY.test(key) && isObject(child) && typeof child.repository === 'string' && child.repository !== '') {
        const map = { ...child };
        copy[key] = map;
        const fields = { registry: text(child.registry), repository: child.repository, tag: text(child.tag), digest: text(child.digest) };
        const image = helmImageReference(fields, globalRegistry);
        helmMaps.push({ map, path: childPath, image });
      } else {
        copy[key] = walk(child, childPath);
      }
    }
    return copy;
  };
  const result = walk(value, '');

  const decisions = helmMaps.map(m => ({ ...m, decision: decide(m.image) }));
  for (const m of decisions) {
    found.push({ path: m.path, image: m.image });
    if (!m.decision.served) {
      unserved.push({ path: m.path, image: m.image });
    }
  }
  if (helmMapsMayMove(globalRegistry, decisions.map(m => m.decision.served))) {
    for (const { map, decision } of decisions) {
      if (decision.cachePath === undefined) {
        continue;
      }
      const values = helmRewrite(decision.cachePath, text(map.registry) !== undefined, globalRegistry, registryDomain);
      map.repository = values.repository;
      if (values.registry !== undefined) {
        map.registry = values.registry;
      }
    }
    if (globalRegistry !== undefined && decisions.some(m => m.decision.cachePath !== undefined)) {
      ((result as Record<string, Record<string, unknown>>).global).imageRegistry = registryDomain;
    }
  }
  return { value: result, found, unserved };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A scalar field as text (a numeric tag too), or undefined when absent or empty. */
function text(value: unknown): string | undefined {
  return (typeof value === 'string' || typeof value === 'number') && String(value) !== '' ? String(value) : undefined;
}

function stringAt(value: unknown, path: string[]): string | undefined {
  let node = value;
  for (const key of path) {
    node = isObject(node) ? node[key] : undefined;
  }
  return typeof node === 'string' && node !== '' ? node : undefined;
}
