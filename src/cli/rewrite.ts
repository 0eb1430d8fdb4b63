/**
 * (Over 400 lines: the YAML view, the byte edits and the Helm template reader share one edit machinery.)
 *
 * Finding and rewriting image references in files, byte for byte: every byte that is not an image value is
 * kept as it was (comments, key order, quoting, blank lines, document separators, CRLF). Pure functions of the
 * file text; reading and writing files is in files.ts.
 */
import { Document, LineCounter, Pair, Scalar, YAMLMap, isAlias, isMap, isScalar, isSeq, parseAllDocuments, visit } from 'yaml';
import { companionFindings } from './companions';
import { ImageMapping, MappingStatus } from '../image-mapping';
import { rewriteDocument } from '../private/document-images';
import { LocateOptions, formatOf, locateImages } from '../private/image-locator';
import { DocumentFormat, Tree } from '../private/locator-tree';
import { SETTING_ADVICE } from '../private/setting-images';

/** The CLI looks for images in settings too: check must see every image a workload pulls. */
const LOCATE: LocateOptions = { settings: true };

/** What happened to one image value. */
export enum Outcome {
  /** Rewritten to the cache. */
  REWRITTEN = 'rewritten',
  /** Already served from the cache. */
  CACHED = 'cached',
  /** Not served from the cache: no rule for its registry, an unsupported registry, invalid, or (check) not cached. */
  UNSERVED = 'unserved',
  /** Left alone because it cannot be read as a reference here: a template, a build argument, a block scalar. */
  LEFT_ALONE = 'left-alone',
  /** Names an image that is not pulled as written: the image a compose service builds and tags. */
  NOT_PULLED = 'not-pulled',
  /**
   * A whole reference held in a setting of no known convention (an environment variable, a ConfigMap's data, a
   * param's default): "an image in a setting", not rewritten; check fails on it unless settings are allowed.
   */
  SETTING = 'setting',
  /**
   * A value a chart needs beside its moved images (companions.ts; Bitnami's `global.security.allowInsecureImages`),
   * added by rewrite: `image` is its path, `uri` the value written.
   */
  COMPANION_SET = 'companion-set',
  /** Such a value missing, or written otherwise, and left so: the note says which line to change. Fails check and rewrite. */
  COMPANION_MISSING = 'companion-missing',
}

/** One image value found in a file. */
export interface Finding {
  readonly line: number;
  /** The reference as the file has it (for Helm maps, the effective reference). */
  readonly image: string;
  readonly outcome: Outcome;
  /** The new value, when rewritten. */
  readonly uri?: string;
  /** Why it was skipped, or a caution about a rewritten one. */
  readonly note?: string;
}

/** The result of processing one file's text. */
export interface FileResult {
  /** The new text (identical to the input when nothing was rewritten or the file was refused). */
  readonly output: string;
  readonly findings: Finding[];
  /**
   * Set when the whole file was refused, with `line: reason`; nothing in it is rewritten. `template` is true
   * for Helm templates (`{{ }}`), which are left alone by design; otherwise the file is invalid.
   */
  readonly error?: { readonly line: number; readonly reason: string; readonly template: boolean };
}

/** How references are judged: rewritten to a mapping, or only checked against a cache registry. */
export interface Judge {
  /** Maps a reference (rewrite mode), or undefined in check mode. */
  readonly mapping?: ImageMapping;
  /**
   * Whether a reference points at the cache: `true` when it is a valid reference under a known cache prefix,
   * a reason when it points at the cache registry but is not that, `false` when it points elsewhere.
   */
  cacheStatus(image: string): true | false | string;
  /**
   * The upstream reference a cache URI stands for (`docker.io/bitnami/git:2` for `<cache>/docker-hub/bitnami/git:2`),
   * or undefined when it is under no prefix: what the companion values of a chart are judged on.
   */
  upstreamOf?(image: string): string | undefined;
}

interface Edit { readonly start: number; readonly end: number; readonly text: string }

/**
 * Applies non-overlapping edits in one pass (linear in the size of the text and the number of edits). An edit
 * reached twice (an anchored value used through aliases) is applied once.
 */
function applyEdits(text: string, edits: Edit[]): string {
  const unique = new Map<number, Edit>();
  for (const edit of edits) {
    unique.set(edit.start, edit);
  }
  const sorted = [...unique.values()].sort((a, b) => a.start - b.start);
  const parts: string[] = [];
  let at = 0;
  for (const edit of sorted) {
    if (edit.start < at) {
      throw new Error(`internal error: overlapping edits at offset ${edit.start}`);
    }
    parts.push(text.slice(at, edit.start), edit.text);
    at = edit.end;
  }
  parts.push(text.slice(at));
  return parts.join('');
}

/** Judges one reference: the finding, and the new value when it is to be rewritten. */
export function judge(image: string, line: number, j: Judge): { finding: Finding; uri?: string; repository?: string } {
  if (/\{\{|\$\{|^\$/.test(image)) {
    return { finding: { line, image, outcome: Outcome.LEFT_ALONE, note: 'templated value (Helm {{ }} or a variable)' } };
  }
  const cached = j.cacheStatus(image);
  if (cached === true) {
    return { finding: { line, image, outcome: Outcome.CACHED } };
  }
  if (typeof cached === 'string') {
    return { finding: { line, image, outcome: Outcome.UNSERVED, note: cached } };
  }
  if (!j.mapping) {
    return { finding: { line, image, outcome: Outcome.UNSERVED, note: 'not served from the cache' } };
  }
  const mapped = j.mapping.map(image);
  switch (mapped.status) {
    case MappingStatus.REWRITTEN:
      return {
        finding: { line, image, outcome: Outcome.REWRITTEN, uri: mapped.uri, note: mapped.warning },
        uri: mapped.uri,
        repository: mapped.repository,
      };
    case MappingStatus.ALREADY_CACHED:
      // cacheStatus said it is not a valid reference under a known prefix of the cache
      return { finding: { line, image, outcome: Outcome.UNSERVED, note: 'points at the cache registry, but not under a known cache prefix' } };
    default:
      return { finding: { line, image, outcome: Outcome.UNSERVED, note: mapped.reason } };
  }
}

// ---------------------------------------------------------------- YAML: Kubernetes, Helm values, compose

/**
 * Rewrites the images of a YAML file where images live (image-locator.ts): containers of known workload kinds,
 * known custom resource fields, Helm values (image strings and image maps of the known conventions, with their
 * shared registries) and compose services that do not build their image. A file that does not parse as YAML
 * but holds Helm templates (`{{ }}`) is read line by line: see `rewriteTemplateLines`.
 */
export function rewriteYaml(text: string, j: Judge): FileResult {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number) => lineCounter.linePos(offset).line;
  const docList = Array.isArray(docs) ? docs : [docs];
  for (const doc of docList) {
    const error = doc.errors[0];
    if (error || templateAsStructure(doc as Document.Parsed)) {
      if (/\{\{.*?\}\}/.test(text)) {
        return rewriteTemplateLines(text, j);
      }
      if (error) {
        return { output: text, findings: [], error: { line: lineOf(error.pos[0]), reason: error.message.split('\n')[0], template: false } };
      }
    }
  }

  const edits: Edit[] = [];
  const findings: Finding[] = [];
  for (const doc of docList) {
    try {
      collectYaml(doc as Document.Parsed, text, j, lineOf, edits, findings);
    } catch (e) {
      if (e instanceof AliasBomb) {
        return { output: text, findings: [], error: { line: lineOf(doc.range[0]), reason: e.message, template: false } };
      }
      throw e;
    }
  }
  // an anchored image used through aliases is one value: report it once
  const unique = [...new Map(findings.map(f => [`${f.line} ${f.image} ${f.outcome}`, f])).values()];
  return { output: applyEdits(text, edits), findings: unique.sort((a, b) => a.line - b.line) };
}

/** The replacement text for a scalar, in the same quoting style; undefined for block scalars. */
function quoted(node: Scalar, value: string): string | undefined {
  switch (node.type) {
    case Scalar.QUOTE_DOUBLE: return `"${value}"`;
    case Scalar.QUOTE_SINGLE: return `'${value}'`;
    case Scalar.PLAIN: return value;
    default: return undefined;
  }
}

/** A document whose aliases expand without end, or nearly. */
class AliasBomb extends Error {}

/** Maps and lists read in one document, aliases expanded: far above any real manifest or values file. */
const MAX_NODES = 200_000;

/**
 * A YAML syntax tree seen through the locator's `Tree`: aliases resolved, merge keys (`<<`) merged after a map's
 * own keys. Every node reached through an alias or under an anchor is remembered as shared: editing it would
 * change the other places that use it too.
 */
class YamlTree implements Tree<unknown> {
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
function notEditable(tree: YamlTree, source: string, node: unknown, onlyImages: Set<unknown>): string | undefined {
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
function sharedOnlyByImages(doc: Document.Parsed, text: string, used: ReadonlySet<unknown>): Set<unknown> {
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
function aliasTargets(doc: Document.Parsed): Set<unknown> {
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
function templateAsStructure(doc: Document.Parsed): boolean {
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

function collectYaml(doc: Document.Parsed, text: string, j: Judge, lineOf: (o: number) => number, edits: Edit[], findings: Finding[]): void {
  const used = aliasTargets(doc);
  const tree = new YamlTree(doc, text, used);
  const onlyImages = sharedOnlyByImages(doc, text, used);
  const lineOfNode = (node: unknown) => {
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    return range ? lineOf(range[0]) : 0;
  };
  const editor = {
    notEditable: (node: unknown) => notEditable(tree, text, node, onlyImages),
    set: (node: unknown, value: string) => {
      const replacement = quoted(node as Scalar, value);
      if (replacement === undefined) {
        throw new Error('internal error: an edit of a value that cannot be edited in place');
      }
      edits.push({ start: (node as Scalar).range![0], end: (node as Scalar).range![1], text: replacement });
    },
    addKey: (map: unknown, key: string, value: string) => {
      const added = addKeys(tree, text, onlyImages, map, [key], value, edits);
      return typeof added === 'string' ? added : undefined;
    },
  };
  const first = findings.length;
  const results = rewriteDocument(tree, doc.contents, (image: string) => {
    const verdict = judge(image, 0, j);
    return { ...verdict, cachePath: verdict.repository };
  }, editor, j.mapping?.registryDomain, undefined, LOCATE);
  for (const result of results) {
    const line = lineOfNode(result.node);
    if ('skipped' in result && result.setting) {
      // a setting already on the cache is cached; one on the cache registry but not under a prefix is not served
      const cached = j.cacheStatus(result.image);
      findings.push(cached === true ? { line, image: result.image, outcome: Outcome.CACHED }
        : typeof cached === 'string' ? { line, image: result.image, outcome: Outcome.UNSERVED, note: `${result.skipped}: ${cached}` }
          : { line, image: result.image, outcome: Outcome.SETTING, note: `${result.skipped}: ${SETTING_ADVICE}` });
      continue;
    }
    if ('skipped' in result) {
      findings.push({ line, image: result.image, outcome: result.informational ? Outcome.NOT_PULLED : Outcome.LEFT_ALONE, note: result.skipped });
      continue;
    }
    const finding = { ...result.verdict.finding, line };
    if (result.held === undefined || finding.outcome === Outcome.CACHED || finding.outcome === Outcome.LEFT_ALONE) {
      const caution = 'caution' in result ? result.caution : undefined;
      findings.push(caution === undefined ? finding : { ...finding, note: [finding.note, caution].filter(n => n).join('; ') });
    } else if (j.mapping) {
      findings.push({ line, image: result.image, outcome: Outcome.LEFT_ALONE, note: result.held });
    } else {
      // check: judged all the same, as it stands (its value may not even read as the chart would)
      findings.push({ ...finding, note: `${finding.note} (and ${result.held.replace(/^Helm image map left whole: /, 'the Helm image map is not plain: ')})` });
    }
  }
  if (formatOf(tree, doc.contents) === DocumentFormat.HELM_VALUES) {
    // the images that leave upstream with this file: rewritten now, or already on the cache
    const moved = findings.slice(first).flatMap(f => f.outcome === Outcome.REWRITTEN ? [f.image]
      : f.outcome === Outcome.CACHED ? [j.upstreamOf?.(f.image)].filter((u): u is string => u !== undefined) : []);
    const add = j.mapping && ((map: unknown, keys: readonly string[], value: string) =>
      addKeys(tree, text, onlyImages, map, keys, value, edits));
    for (const c of companionFindings(doc.contents, moved, { text, lineOf, add })) {
      findings.push(c.set !== undefined ? { line: c.line, image: c.name, outcome: Outcome.COMPANION_SET, uri: c.set, note: c.note }
        : { line: c.line, image: c.name, outcome: Outcome.COMPANION_MISSING, note: c.note });
    }
  }
}

/**
 * Adds `key: value` on a line of its own after a block map's last entry, at the column of its first key (in the
 * file's line ending); with more than one key, the maps on the way, one indentation step deeper each (the step the
 * map's own nested maps use, else two spaces): `security:` then `  allowInsecureImages: true`. Returns why it
 * cannot (a flow map, a shared map, a last value over several lines), or the offset it goes in at once queued. A
 * kustomize image entry's `newName` and a chart's companion value (companions.ts) are added this way.
 */
function addKeys(
  tree: YamlTree, text: string, onlyImages: Set<unknown>, map: unknown, keys: readonly string[], value: string, edits: Edit[],
): number | string {
  if (!isMap(map) || map.flow) {
    return 'a flow map ({ })';
  }
  const shared = notEditable(tree, text, map, onlyImages);
  if (shared !== undefined) {
    return shared;
  }
  const pairs = map.items as Pair[];
  const first = pairs[0]?.key as Scalar | undefined;
  const last = lastLine(pairs[pairs.length - 1]?.value);
  if (!isScalar(first) || !first.range || last === undefined || text.slice(last.range![0], last.range![1]).includes('\n')) {
    return 'its entries are not one plain value a line';
  }
  const columnOf = (offset: number) => offset - (text.lastIndexOf('\n', offset - 1) + 1);
  const column = columnOf(first.range[0]);
  const nested = pairs.map(p => p.value)
    .find((v): v is YAMLMap => isMap(v) && !v.flow && isScalar(v.items[0]?.key) && !!(v.items[0].key as Scalar).range);
  const step = nested ? columnOf((nested.items[0].key as Scalar).range![0]) - column : 2;
  const lineEnd = text.indexOf('\n', last.range![1]);
  const at = lineEnd < 0 ? text.length : text[lineEnd - 1] === '\r' ? lineEnd - 1 : lineEnd;
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const lines = keys.map((key, i) => `${eol}${' '.repeat(column + i * Math.max(step, 1))}${key}:${i === keys.length - 1 ? ` ${value}` : ''}`);
  edits.push({ start: at, end: at, text: lines.join('') });
  return at;
}

/** The scalar a block node's text ends with (a nested map's or list's last value), or undefined when it ends otherwise. */
function lastLine(node: unknown): Scalar | undefined {
  if ((isMap(node) || isSeq(node)) && !node.flow) {
    const items = node.items as unknown[];
    const item = items[items.length - 1];
    return item === undefined ? undefined : lastLine(isMap(node) ? (item as Pair).value : item);
  }
  return isScalar(node) && node.range && node.value !== null ? node : undefined;
}

/** `image: <value>` alone on a line (in a list item or not), with an optional trailing comment. */
const IMAGE_LINE = /^(\s*(?:-\s+)?image:[ \t]+)(?:"([^"\\{}$]*)"|'([^'{}$]*)'|([^\s'"#{}$][^\s#{}$]*))([ \t]*(?:#.*)?)$/;

/**
 * A Helm template (a file that is not YAML until rendered) read line by line. An `image:` line is rewritten only
 * when it is provably a container's image: its whole value a literal reference, no template on the line, and
 * the line an entry of a list item under `containers:`, `initContainers:` or `ephemeralContainers:` (by
 * indentation). An `image:` line inside a block scalar (`|`, `>`) is text; any other is reported.
 */
function rewriteTemplateLines(text: string, j: Judge): FileResult {
  const findings: Finding[] = [];
  const raws = text.split(/(?<=\n)/);
  const bodies = raws.map(raw => raw.replace(/\r?\n$/, ''));
  const output = raws.map((raw, index) => {
    const body = bodies[index];
    if (!/^\s*(-\s+)?image:/.test(body)) {
      return raw;
    }
    const line = index + 1;
    const where = containerOf(bodies, index);
    if (where === 'text') {
      return raw;
    }
    const match = body.includes('{{') ? undefined : IMAGE_LINE.exec(body);
    const value = body.trim().replace(/^(-\s+)?image:\s*/, '');
    if (!match || where === 'elsewhere') {
      const note = !match ? 'an image line of a Helm template whose value is not a literal reference'
        : 'an image line of a Helm template that is not a container of a pod spec';
      findings.push({ line, image: value, outcome: Outcome.LEFT_ALONE, note });
      return raw;
    }
    const [, lead, double, single, plain, rest] = match;
    const image = double ?? single ?? plain;
    const { finding, uri } = judge(image, line, j);
    findings.push(finding);
    if (uri === undefined) {
      return raw;
    }
    const ending = raw.slice(body.length);
    return `${lead}${double !== undefined ? `"${uri}"` : single !== undefined ? `'${uri}'` : uri}${rest}${ending}`;
  }).join('');
  return { output, findings };
}

/** Lines that say nothing about structure: blank, comments, and lines holding only template actions. */
function insignificant(body: string): boolean {
  const trimmed = body.trim();
  return trimmed === '' || trimmed.startsWith('#') || /^(\{\{.*?\}\}\s*)+$/.test(trimmed);
}

/**
 * Where an `image:` line of a template sits, by indentation: in a container list item, elsewhere, or inside a
 * block scalar (text).
 */
function containerOf(bodies: string[], index: number): 'container' | 'elsewhere' | 'text' {
  const indent = (body: string) => body.length - body.trimStart().length;
  const dashOf = (body: string) => /^(\s*)-\s+/.exec(body)?.[0].length;
  /** The nearest significant line above `from` that holds it: indented less, or a key at a list item's column. */
  const owner = (from: number): number | undefined => {
    const own = bodies[from];
    const isItem = dashOf(own) !== undefined;
    for (let i = from - 1; i >= 0; i--) {
      const body = bodies[i];
      if (!insignificant(body) && (indent(body) < indent(own) || (isItem && indent(body) === indent(own) && dashOf(body) === undefined))) {
        return i;
      }
    }
    return undefined;
  };
  const keyColumn = dashOf(bodies[index]) ?? indent(bodies[index]);
  // the list item the line belongs to: the line itself (`- image: x`), or the `- ` line above at its key column
  let item: number | undefined = dashOf(bodies[index]) !== undefined ? index : undefined;
  for (let i = index - 1; item === undefined && i >= 0; i--) {
    if (insignificant(bodies[i])) {
      continue;
    }
    if (dashOf(bodies[i]) === keyColumn) {
      item = i;
    } else if (indent(bodies[i]) < keyColumn) {
      break;
    }
  }
  // a block scalar among the lines that hold it makes the line text
  for (let at = owner(item ?? index); at !== undefined; at = owner(at)) {
    if (/:\s*[|>][-+0-9]*\s*(#.*)?$/.test(bodies[at])) {
      return 'text';
    }
  }
  if (item === undefined) {
    return 'elsewhere';
  }
  const list = owner(item);
  const key = list === undefined ? undefined : /^\s*(?:-\s+)?([A-Za-z]+):\s*(#.*)?$/.exec(bodies[list])?.[1];
  return key !== undefined && ['containers', 'initContainers', 'ephemeralContainers'].includes(key) ? 'container' : 'elsewhere';
}
