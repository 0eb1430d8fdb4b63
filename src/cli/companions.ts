/**
 * The values a chart needs beside its moved images (helm-companions.ts, the one list the CachedImages Aspect uses
 * too), set in a Helm values file by `ecr-ptc rewrite` and required by `ecr-ptc check`. Bitnami charts refuse
 * images other than their own unless `global.security.allowInsecureImages` is true (bitnami/charts#30850,
 * https://github.com/bitnami/charts/issues/30850): without it `helm install` fails on the very file rewrite wrote.
 *
 * A value the file does not have is added, its maps created where missing, byte for byte (rewrite.ts's `addKeys`).
 * A value the file states otherwise (`allowInsecureImages: false`), or a map that cannot take a key (a flow map,
 * an alias), is left as written: it is the file owner's decision, so it is reported with the line to change, and
 * check fails on it (fail closed: the chart would refuse the cached images).
 */
import { Pair, Scalar, YAMLMap, isMap, isScalar } from 'yaml';
import { CachePrefix } from '../image-mapping';
import { ImageReference } from '../image-reference';
import { routeOfCachePath } from '../private/cache-mapping';
import { registryOf } from '../private/catalogue';
import { companionValuesFor } from '../private/helm-companions';

/** One companion value of a values file: set by rewrite, or missing. */
export interface CompanionFinding {
  /** The line it was added on, or the line to change. */
  readonly line: number;
  /** Its path: `global.security.allowInsecureImages`. */
  readonly name: string;
  /** The value written, when rewrite set it; undefined when it is missing. */
  readonly set?: string;
  /** Why the chart needs it; for a missing one, first what the file says and which line to change. */
  readonly note: string;
}

/** How the values file is read and edited: rewrite.ts's byte edits. */
export interface CompanionEdits {
  /** The file's text. */
  readonly text: string;
  /**
   * Adds `keys` (each a map of the next, the last set to `value`) after `map`'s last entry; the offset the new
   * lines go in at, or why they cannot be added. Undefined in check, which edits nothing.
   */
  readonly add?: (map: YAMLMap, keys: readonly string[], value: string) => number | string;
  /** The line of an offset of the file, from 1. */
  lineOf(offset: number): number;
}

/**
 * The companion values of one Helm values document (its root node), given the upstream references of the images
 * that move out of it (rewritten now, or already on the cache): each set, or missing with the line to change.
 */
export function companionFindings(root: unknown, moved: readonly string[], edits: CompanionEdits): CompanionFinding[] {
  const findings: CompanionFinding[] = [];
  for (const companion of companionValuesFor(moved)) {
    const name = companion.path.join('.');
    const value = JSON.stringify(companion.value);
    const missing = (offset: number | undefined, problem: string): CompanionFinding =>
      ({ line: offset === undefined ? 1 : edits.lineOf(offset), name, note: `${problem}. ${companion.why}` });
    const found = walk(root, companion.path);
    if ('problem' in found) {
      findings.push(missing(found.offset, found.problem));
    } else if ('scalar' in found) {
      if (found.scalar.value !== companion.value) {
        const range = found.scalar.range!;
        findings.push(missing(range[0], `${edits.text.slice(range[0], range[1]) || 'empty'} in the file, left as written: `
          + `change line ${edits.lineOf(range[0])} to ${found.key}: ${value}`));
      }
    } else {
      const rest = companion.path.slice(found.depth);
      const added = edits.add?.(found.map, rest, value);
      if (typeof added === 'number') {
        findings.push({ line: edits.lineOf(added) + 1, name, set: value, note: companion.why });
      } else {
        // check (which writes nothing), or a map that cannot take a key
        const fix = `add ${rest.join(': ')}: ${value} ${found.depth === 0 ? 'at the top of the values' : `under ${where(companion.path, found.depth)}`}`;
        findings.push(missing(found.map.range?.[0], added === undefined ? `not set: ${fix}, or run ecr-ptc rewrite`
          : `not set, and cannot be added to ${where(companion.path, found.depth)} (${added}): ${fix}`));
      }
    }
  }
  return findings;
}

/** Where a path's walk stopped: the value written, the map to add the rest to, or why neither. */
type Walked =
  | { readonly scalar: Scalar; readonly key: string }
  | { readonly map: YAMLMap; readonly depth: number }
  | { readonly problem: string; readonly offset?: number };

/** Follows `path` down block and flow maps; aliases and merge keys are not followed (editing them edits their anchor): reported. */
function walk(root: unknown, path: readonly string[]): Walked {
  let node = root;
  for (let depth = 0; depth < path.length; depth++) {
    if (!isMap(node)) {
      const at = (node as { range?: number[] } | null)?.range?.[0];
      const what = node === null || (isScalar(node) && node.value === null) ? 'empty' : isScalar(node) ? 'a single value' : 'not a map of its own (an alias or a list)';
      return { problem: `${where(path, depth)} is ${what}, so ${path.join('.')} is not set: write ${where(path, depth)} as a map holding ${path.slice(depth).join(': ')}: true`, offset: at };
    }
    const pair = (node.items as Pair[]).find(p => isScalar(p.key) && String(p.key.value) === path[depth]);
    if (pair === undefined) {
      const merge = (node.items as Pair[]).find(p => isScalar(p.key) && p.key.value === '<<');
      // a key added beside `<<` would hide the merged map's own, with every other key under it
      return merge === undefined ? { map: node, depth } : {
        problem: `${where(path, depth)} merges other maps in with <<, which may hold ${path[depth]}: set ${path.join('.')}: true where it is written`,
        offset: (merge.key as Scalar).range?.[0],
      };
    }
    if (depth === path.length - 1) {
      return isScalar(pair.value) ? { scalar: pair.value, key: path[depth] }
        : { problem: `${path.join('.')} is not a single value`, offset: (pair.key as Scalar).range?.[0] };
    }
    node = pair.value;
  }
  throw new Error('internal error: an empty companion value path');
}

/** `global.security`, or "the values" for the top. */
function where(path: readonly string[], depth: number): string {
  return depth === 0 ? 'the values' : path.slice(0, depth).join('.');
}

/**
 * The upstream reference of a cache URI, by the prefix table (`docker-hub/bitnami/git:2` -> `docker.io/bitnami/git:2`),
 * for `Judge.upstreamOf`; undefined when the URI does not parse or is under no prefix.
 */
export function upstreamOfCache(prefixes: readonly CachePrefix[]): (image: string) => string | undefined {
  const routes = prefixes.map(p => ({
    registry: registryOf(p.registry),
    ecrRepositoryPrefix: p.ecrRepositoryPrefix.replace(/\/$/, ''),
    upstreamRepositoryPrefix: p.upstreamRepositoryPrefix,
  }));
  return image => {
    try {
      const ref = ImageReference.parse(image);
      const found = routeOfCachePath(ref.repository, routes);
      return found && `${found.route.registry}/${found.upstreamPath}${ref.toString().slice(ref.name.length)}`;
    } catch {
      return undefined;
    }
  };
}
