/**
 * Image references inside plain objects: Kubernetes manifests and Helm values as a CDK app holds them.
 * The same conventions as the ecr-ptc CLI's YAML rewriting: `image` (and `<something>Image`) strings, Helm
 * image maps (`registry` + `repository` + `tag`/`digest`) and `global.imageRegistry`.
 */

const IMAGE_KEY = /^(image|[a-z][A-Za-z0-9]*Image)$/;

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
        const registry = globalRegistry || (typeof child.registry === 'string' && child.registry !== '' ? child.registry : undefined);
        const tag = child.tag !== undefined && child.tag !== null && String(child.tag) !== '' ? `:${String(child.tag)}` : '';
        const digest = typeof child.digest === 'string' && child.digest !== '' ? `@${child.digest}` : '';
        helmMaps.push({ map, path: childPath, image: `${registry ? `${registry}/` : ''}${child.repository}${tag}${digest}` });
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
  // With global.imageRegistry every image comes from it: rewrite all of them, or none.
  const allServed = decisions.every(m => m.decision.served);
  if (globalRegistry === undefined || allServed) {
    for (const { map, decision } of decisions) {
      if (decision.cachePath === undefined) {
        continue;
      }
      const ownRegistry = typeof map.registry === 'string' && map.registry !== '';
      map.repository = ownRegistry || globalRegistry !== undefined ? decision.cachePath : `${registryDomain}/${decision.cachePath}`;
      if (ownRegistry) {
        map.registry = registryDomain;
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

function stringAt(value: unknown, path: string[]): string | undefined {
  let node = value;
  for (const key of path) {
    node = isObject(node) ? node[key] : undefined;
  }
  return typeof node === 'string' && node !== '' ? node : undefined;
}
