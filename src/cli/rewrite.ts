/**
 * Finding and rewriting image references in files, byte for byte: every byte that is not an image value is
 * kept as it was (comments, key order, quoting, blank lines, document separators, CRLF). Pure functions of the
 * file text; reading and writing files is in files.ts. The YAML view is in yaml-tree.ts, the Helm template reader
 * in template-lines.ts, what each image is judged to be in judge.ts.
 */
import { Document, LineCounter, Pair, Scalar, YAMLMap, isMap, isScalar, isSeq, parseAllDocuments } from 'yaml';
import { companionFindings } from './companions';
import { Edit, FileResult, Finding, Judge, Outcome, applyEdits, judge } from './judge';
import { rewriteTemplateLines } from './template-lines';
import { AliasBomb, LOCATE, YamlTree, aliasTargets, notEditable, sharedOnlyByImages, templateAsStructure } from './yaml-tree';
import { rewriteDocument } from '../private/document-images';
import { formatOf } from '../private/image-locator';
import { DocumentFormat } from '../private/locator-tree';
import { SETTING_ADVICE } from '../private/setting-images';


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
  }, editor, j.mapping?.registryUri, undefined, LOCATE);
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
