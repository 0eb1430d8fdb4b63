/**
 * A YAML file's syntax tree as the image locator sees it (`Tree`), and what makes a value unsafe to edit in place:
 * anchors and aliases (an edit would change every place that uses the value), alias bombs, Helm template syntax
 * parsed as structure. The rewriter (rewrite.ts) edits only what this says is safe.
 */
import { Document, Pair, Scalar, isAlias, isMap, isScalar, isSeq, visit } from 'yaml';
import { LocateOptions, formatOf, locateImages } from '../private/image-locator';
import { DocumentFormat, Tree } from '../private/locator-tree';

/** The CLI looks for images in settings too: check must see every image a workload pulls. */
export const LOCATE: LocateOptions = { settings: true };

/** A document whose aliases expand without end, or nearly. */
export class AliasBomb extends Error {}

/** Maps and lists read in one document, aliases expanded: far above any real manifest or values file. */
const MAX_NODES = 200_000;

/**
 * A YAML syntax tree seen through the locator's `Tree`: aliases resolved, merge keys (`<<`) merged after a map's
 * own keys. Every node reached through an alias or under an anchor is remembered as shared: editing it would
 * change the other places that use it too.
 */
export class YamlTree implements Tree<unknown> {
  /** Nodes reached through an alias or under an anchor, with how. */
  public readonly shared = new Map<unknown, string>();
  /** Maps and sequences still to be read before the document counts as an alias bomb (or a recursive alias). */
  private budget = MAX_NODES;

  /**
   * @param used the nodes that aliases point at (`aliasTargets`): an anchor nothing uses shares nothing
   */
  constructor(private readonly doc: Document.Parsed, private readonly source: string, public readonly used: ReadonlySet<unknown>) {}

  public entries(node: unknown): ReadonlyArray<readonly [string, unknown]> | undefined {
    const map = this.resolve(node);
    if (!isMap(map)) {
      return undefined;
    }
    this.spend();
    const own: Array<readonly [string, unknown]> = [];
    const merged: Array<readonly [string, unknown]> = [];
    for (const pair of map.items as Pair[]) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (key === '<<' && (isAlias(pair.value) || isSeq(pair.value))) {
        const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
        for (const source of sources) {
          this.shared.set(source, 'merged in with <<, so shared with its anchor');
          merged.push(...(this.entries(source) ?? []));
        }
      } else if (key !== undefined) {
        own.push([key, this.child(map, pair.value)]);
      }
    }
    const keys = new Set(own.map(([k]) => k));
    return [...own, ...merged.filter(([k]) => !keys.has(k) && (keys.add(k), true))];
  }

  public items(node: unknown): readonly unknown[] | undefined {
    const seq = this.resolve(node);
    if (!isSeq(seq)) {
      return undefined;
    }
    this.spend();
    return seq.items.map(item => this.child(seq, item));
  }

  private spend(): void {
    if (--this.budget < 0) {
      throw new AliasBomb(`aliases expand the document beyond ${MAX_NODES} maps and lists (a recursive or exponential alias): not processed`);
    }
  }

  public text(node: unknown): string | undefined {
    const scalar = this.resolve(node);
    if (!isScalar(scalar) || scalar.value === null || scalar.value === undefined || !scalar.range) {
      return undefined;
    }
    if (typeof scalar.value === 'string') {
      return scalar.value;
    }
    // a number or boolean as written: `tag: 1.10` is the tag 1.10, not 1.1
    return scalar.type === Scalar.PLAIN ? this.source.slice(scalar.range[0], scalar.range[1]).trim() : String(scalar.value);
  }

  /** A node's target, remembering that a target reached through an alias is shared. */
  private resolve(node: unknown): unknown {
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      this.shared.set(target, 'used through an alias (*name), so shared with its anchor');
      return target;
    }
    return node;
  }

  /** A child, marked shared when its parent is shared or anchored. */
  private child(parent: unknown, node: unknown): unknown {
    const target = this.resolve(node);
    const anchor = this.used.has(parent) ? (parent as { anchor?: string }).anchor : undefined;
    const how = this.shared.get(parent) ?? (anchor ? `under the anchor &${anchor}, so shared with its aliases` : undefined);
    if (how !== undefined && !this.shared.has(target)) {
      this.shared.set(target, how);
    }
    return target;
  }
}

/**
 * Why a value cannot be edited in place, or undefined when it can: only a plain or quoted scalar written on one
 * line, neither reached through an alias nor anchored (an anchored value is shared with its aliases), is edited.
 */
export function notEditable(tree: YamlTree, source: string, node: unknown, onlyImages: Set<unknown>): string | undefined {
  const anchor = tree.used.has(node) ? (node as { anchor?: string } | undefined)?.anchor : undefined;
  if (!onlyImages.has(node)) {
    if (anchor) {
      return `anchored (&${anchor}), so shared with its aliases`;
    }
    const shared = tree.shared.get(node);
    if (shared !== undefined) {
      return shared;
    }
  }
  if (isMap(node) || isSeq(node)) {
    return undefined;
  }
  if (!isScalar(node) || !node.range) {
    return 'not a single value';
  }
  if (node.type !== Scalar.PLAIN && node.type !== Scalar.QUOTE_DOUBLE && node.type !== Scalar.QUOTE_SINGLE) {
    return 'a block scalar (| or >)';
  }
  if (source.slice(node.range[0], node.range[1]).includes('\n')) {
    return 'written over several lines';
  }
  return undefined;
}

/**
 * Shared scalars (anchored, or under an anchored map) whose every use is a whole image value: `image: &pg
 * postgres:16` and `image: *pg` in another container, or a compose service `redis: &redis {image: ...}` used
 * again as `cache: *redis`. Rewriting such a scalar once rewrites every use, and nothing else. A scalar is in
 * the set when the locator finds it as an image as many times as the document, aliases expanded, reaches it.
 */
export function sharedOnlyByImages(doc: Document.Parsed, text: string, used: ReadonlySet<unknown>): Set<unknown> {
  if (used.size === 0) {
    return new Set(); // no alias: nothing is shared
  }
  const reached = new Map<unknown, number>();
  let budget = 100_000; // aliases can multiply a document: past this, nothing shared is editable
  const walk = (node: unknown, depth: number): void => {
    if (--budget < 0 || depth > 200) {
      return;
    }
    const target = isAlias(node) ? node.resolve(doc) : node;
    if (isMap(target)) {
      for (const pair of target.items as Pair[]) {
        walk(pair.value, depth + 1);
      }
    } else if (isSeq(target)) {
      target.items.forEach(item => walk(item, depth + 1));
    } else if (isScalar(target)) {
      reached.set(target, (reached.get(target) ?? 0) + 1);
    }
  };
  // compose `x-` extension fields are templates for services, never pulled themselves
  const compose = formatOf(new YamlTree(doc, text, used), doc.contents) === DocumentFormat.COMPOSE;
  if (compose && isMap(doc.contents)) {
    for (const pair of doc.contents.items as Pair[]) {
      if (!(isScalar(pair.key) && String(pair.key.value).startsWith('x-'))) {
        walk(pair.value, 1);
      }
    }
  } else {
    walk(doc.contents, 0);
  }
  if (budget < 0) {
    return new Set();
  }
  const sites = new Map<unknown, number>();
  const tree = new YamlTree(doc, text, used);
  for (const site of locateImages(tree, doc.contents, undefined, LOCATE).strings) {
    sites.set(site.node, (sites.get(site.node) ?? 0) + 1);
  }
  return new Set([...sites].filter(([node, count]) => reached.get(node) === count).map(([node]) => node));
}

/** The nodes aliases point at. A recursive alias (inside its own anchor) refuses the document. */
export function aliasTargets(doc: Document.Parsed): Set<unknown> {
  const targets = new Set<unknown>();
  visit(doc, {
    Alias: (_, alias, path) => {
      const target = alias.resolve(doc);
      if (path.includes(target as never)) {
        throw new AliasBomb(`the alias *${alias.source} is inside its own anchor (a recursive alias): not processed`);
      }
      targets.add(target);
    },
  });
  return targets;
}

/** Whether a document that parsed holds Helm template syntax as structure: `image: {{ .Values.image }}` parses as a map key. */
export function templateAsStructure(doc: Document.Parsed): boolean {
  let found = false;
  visit(doc, {
    Pair: (_, pair) => {
      if (pair.key !== null && !isScalar(pair.key) && !isAlias(pair.key)) {
        found = true;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}
