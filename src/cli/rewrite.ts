/**
 * Finding and rewriting image references in files, byte for byte: every byte that is not an image value is
 * kept as it was (comments, key order, quoting, blank lines, document separators, CRLF). Pure functions of the
 * file text; reading and writing files is in files.ts.
 */
import { Document, LineCounter, Pair, Scalar, YAMLMap, isAlias, isMap, isScalar, isSeq, parseAllDocuments } from 'yaml';
import { ImageMapping, MappingStatus } from '../image-mapping';
import { IMAGE_KEY, helmImageReference, helmMapsMayMove, helmRewrite } from '../private/helm-images';

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
 * Rewrites the image values of a YAML file: every `image:` (or `...Image:`) string, as in Kubernetes
 * containers, initContainers and ephemeralContainers of any workload, compose `services.*.image` and plain
 * Helm values; Helm image maps (`registry` + `repository` + `tag`/`digest`), with `global.imageRegistry`.
 */
export function rewriteYaml(text: string, j: Judge): FileResult {
  // A Helm template may still parse as YAML (`image: {{ .Values.image }}` is a flow map), so look first.
  const template = /\{\{.*?\}\}/.exec(text);
  if (template) {
    const line = text.slice(0, template.index).split('\n').length;
    return { output: text, findings: [], error: { line, reason: 'a Helm template ({{ }}): left alone', template: true } };
  }
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const lineOf = (offset: number) => lineCounter.linePos(offset).line;
  const docList = Array.isArray(docs) ? docs : [docs];
  for (const doc of docList) {
    const error = doc.errors[0];
    if (error) {
      return { output: text, findings: [], error: { line: lineOf(error.pos[0]), reason: error.message.split('\n')[0], template: false } };
    }
  }

  const edits: Edit[] = [];
  const findings: Finding[] = [];
  for (const doc of docList) {
    collectYaml(doc as Document.Parsed, text, j, lineOf, edits, findings);
  }
  // an anchored image used through aliases is one value: report it once
  const unique = [...new Map(findings.map(f => [`${f.line} ${f.image} ${f.outcome}`, f])).values()];
  return { output: applyEdits(text, edits), findings: unique.sort((a, b) => a.line - b.line) };
}

/** A string scalar (through an alias too), or undefined. */
function stringScalar(doc: Document.Parsed, node: unknown): Scalar<string> | undefined {
  const target = isAlias(node) ? node.resolve(doc) : node;
  return isScalar(target) && target.range ? (target as Scalar<string>) : undefined;
}

/** The source text of a scalar's value, as written (so `tag: 1.10` stays `1.10`). */
function scalarText(text: string, node: Scalar): string {
  if (node.type === Scalar.PLAIN) {
    return text.slice(node.range![0], node.range![1]).trim();
  }
  return String(node.value);
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
  const helmMaps: HelmMap[] = [];
  const visit = (node: unknown): void => {
    if (isMap(node)) {
      for (const pair of node.items as Pair[]) {
        const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
        if (key !== undefined && IMAGE_KEY.test(key)) {
          const value = isAlias(pair.value) ? pair.value.resolve(doc) : pair.value;
          if (isMap(value)) {
            if ((value.items as Pair[]).some(p => isScalar(p.key) && p.key.value === '<<')) {
              // fields merged in from elsewhere (`<<: *base`): which ones apply is not plain to see, so say so
              const line = lineOf((pair.key as Scalar).range![0]);
              findings.push({ line, image: `${key} (a map with a merge key)`, outcome: Outcome.LEFT_ALONE, note: 'Helm image map left whole: it merges fields with <<' });
              continue;
            }
            if (value.has('repository')) {
              helmMaps.push({ map: value, line: lineOf((pair.key as Scalar).range![0]), viaAlias: isAlias(pair.value) });
              continue;
            }
          } else {
            const scalar = stringScalar(doc, pair.value);
            if (scalar && typeof scalar.value === 'string' && scalar.value !== '') {
              imageScalar(scalar);
              continue;
            }
          }
        }
        visit(pair.value);
      }
    } else if (isSeq(node)) {
      node.items.forEach(visit);
    }
  };
  const imageScalar = (scalar: Scalar<string>): void => {
    const line = lineOf(scalar.range![0]);
    const { finding, uri } = judge(scalar.value, line, j);
    const replacement = uri === undefined ? undefined : quoted(scalar, uri);
    if (uri !== undefined && replacement === undefined) {
      findings.push({ line, image: scalar.value, outcome: Outcome.LEFT_ALONE, note: 'block scalar (| or >)' });
      return;
    }
    findings.push(finding);
    if (replacement !== undefined) {
      edits.push({ start: scalar.range![0], end: scalar.range![1], text: replacement });
    }
  };
  visit(doc.contents);
  collectHelmMaps(doc, text, j, helmMaps, edits, findings);
}

/** A Helm image map found under an image key. */
interface HelmMap { readonly map: YAMLMap; readonly line: number; readonly viaAlias: boolean }

const HELM_FIELDS = ['registry', 'repository', 'tag', 'digest'];

/**
 * Why a value cannot be edited in place, or undefined when it can: only a plain or quoted scalar written on one
 * line, neither an alias nor anchored (an anchored value is shared with its aliases), is rewritten.
 */
function notEditable(text: string, node: unknown): string | undefined {
  if (isAlias(node)) {
    return 'an alias (*name)';
  }
  if (!isScalar(node) || !node.range) {
    return 'not a single value';
  }
  if (node.anchor) {
    return 'anchored (&name), so shared with its aliases';
  }
  if (node.type !== Scalar.PLAIN && node.type !== Scalar.QUOTE_DOUBLE && node.type !== Scalar.QUOTE_SINGLE) {
    return 'a block scalar (| or >)';
  }
  if (text.slice(node.range[0], node.range[1]).includes('\n')) {
    return 'written over several lines';
  }
  return undefined;
}

/**
 * Helm image maps, with `global.imageRegistry` (see helm-images.ts for the conventions). A map is rewritten
 * whole or not at all: when any field (or `global.imageRegistry`) is not a plain one-line value, the map is left
 * whole and reported, so a second run never finds a half-rewritten map to rewrite again.
 */
function collectHelmMaps(doc: Document.Parsed, text: string, j: Judge, maps: HelmMap[], edits: Edit[], findings: Finding[]): void {
  if (maps.length === 0) {
    return;
  }
  const globalRaw = doc.getIn(['global', 'imageRegistry'], true);
  const globalNode = stringScalar(doc, globalRaw);
  const globalRegistry = globalNode && globalNode.value !== '' && globalNode.value !== null ? String(globalNode.value) : undefined;
  const globalProblem = globalRegistry === undefined ? undefined : notEditable(text, globalRaw);
  /** A field's text as written (so `tag: 1.10` stays `1.10`), or undefined when absent or empty. */
  const written = (node: Scalar | undefined) => node && node.value !== null && String(node.value) !== '' ? scalarText(text, node) : undefined;

  const leftAlone = (finding: Finding, why: string): Finding =>
    ({ line: finding.line, image: finding.image, outcome: Outcome.LEFT_ALONE, note: `Helm image map left whole: ${why}` });
  const judged = maps.map(({ map, line, viaAlias }) => {
    const field = (name: string) => stringScalar(doc, map.get(name, true));
    const registryNode = field('registry');
    const repositoryNode = field('repository');
    const repository = written(repositoryNode) ?? '';
    const image = helmImageReference(
      { registry: written(registryNode), repository, tag: written(field('tag')), digest: written(field('digest')) }, globalRegistry);
    const problems = HELM_FIELDS.filter(name => map.has(name))
      .map(name => ({ name, problem: notEditable(text, map.get(name, true)) }))
      .filter(p => p.problem !== undefined)
      .map(p => `${p.name} is ${p.problem}`);
    if (viaAlias || map.anchor) {
      problems.unshift(viaAlias ? 'the map is an alias (*name)' : 'the map is anchored (&name), so shared with its aliases');
    }
    const verdict = repository === ''
      ? { finding: { line, image, outcome: Outcome.LEFT_ALONE, note: 'empty repository' } as Finding, repository: undefined }
      : judge(image, line, j);
    const ownRegistry = written(registryNode) !== undefined;
    if (problems.length > 0 && verdict.finding.outcome !== Outcome.CACHED && verdict.finding.outcome !== Outcome.LEFT_ALONE) {
      // not plain: in rewrite mode left whole; in check mode not cached (its value may not even read right)
      const finding: Finding = j.mapping
        ? leftAlone(verdict.finding, problems.join('; '))
        : { ...verdict.finding, note: `${verdict.finding.note} (and the Helm image map is not plain: ${problems.join('; ')})` };
      return { finding, cachePath: undefined, ownRegistry, registryNode, repositoryNode, blocked: true };
    }
    return { finding: verdict.finding, cachePath: verdict.repository, ownRegistry, registryNode, repositoryNode, blocked: false };
  });

  const toRewrite = judged.filter(x => x.cachePath !== undefined);
  if (globalRegistry !== undefined && toRewrite.length > 0) {
    // every map takes its registry from global.imageRegistry: they move together, or none of them does
    const why = globalProblem !== undefined ? `global.imageRegistry is ${globalProblem}`
      : judged.some(x => x.blocked) ? 'another map under the same global.imageRegistry is left whole'
        : undefined;
    if (why !== undefined) {
      for (const x of judged) {
        findings.push(x.cachePath !== undefined ? leftAlone(x.finding, why) : x.finding);
      }
      return;
    }
  }
  const served = judged.map(x => x.finding.outcome === Outcome.REWRITTEN || x.finding.outcome === Outcome.CACHED);
  if (!helmMapsMayMove(globalRegistry, served)) {
    for (const x of judged) {
      findings.push(x.finding.outcome === Outcome.REWRITTEN
        ? { ...x.finding, outcome: Outcome.UNSERVED, uri: undefined, note: 'global.imageRegistry also serves images the cache cannot, so none of its images is rewritten' }
        : x.finding);
    }
    return;
  }

  const domain = j.mapping?.registryDomain;
  let anyRewritten = false;
  for (const x of judged) {
    if (x.cachePath === undefined || !x.repositoryNode || domain === undefined) {
      findings.push(x.finding);
      continue;
    }
    findings.push(x.finding);
    anyRewritten = true;
    const values = helmRewrite(x.cachePath, x.ownRegistry, globalRegistry, domain);
    pushScalarEdit(x.repositoryNode, values.repository, edits);
    if (values.registry !== undefined) {
      pushScalarEdit(x.registryNode!, values.registry, edits);
    }
  }
  if (anyRewritten && globalNode && globalRegistry !== undefined && domain !== undefined) {
    pushScalarEdit(globalNode, domain, edits);
  }
}

function pushScalarEdit(node: Scalar, value: string, edits: Edit[]): void {
  const text = quoted(node, value);
  if (text === undefined) {
    throw new Error('internal error: an edit of a value that cannot be edited in place');
  }
  edits.push({ start: node.range![0], end: node.range![1], text });
}
