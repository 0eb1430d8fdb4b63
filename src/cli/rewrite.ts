/**
 * Finding and rewriting image references in files, byte for byte: every byte that is not an image value is
 * kept as it was (comments, key order, quoting, blank lines, document separators, CRLF). Pure functions of the
 * file text; reading and writing files is in files.ts.
 */
import { Document, LineCounter, Pair, Scalar, YAMLMap, isAlias, isMap, isScalar, isSeq, parseAllDocuments } from 'yaml';
import { ImageMapping, MappingStatus } from '../image-mapping';
import { ImageReference } from '../image-reference';
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
  /** Whether a reference already points at the cache. */
  isCached(image: string): boolean;
}

interface Edit { readonly start: number; readonly end: number; readonly text: string }

/** Applies non-overlapping edits, each at most once per range, from the end so offsets stay valid. */
function applyEdits(text: string, edits: Edit[]): string {
  const unique = new Map<number, Edit>();
  for (const edit of edits) {
    unique.set(edit.start, edit);
  }
  let out = text;
  for (const edit of [...unique.values()].sort((a, b) => b.start - a.start)) {
    out = out.slice(0, edit.start) + edit.text + out.slice(edit.end);
  }
  return out;
}

/** Judges one reference: the finding, and the new value when it is to be rewritten. */
function judge(image: string, line: number, j: Judge): { finding: Finding; uri?: string; repository?: string } {
  if (/\{\{|\$\{|^\$/.test(image)) {
    return { finding: { line, image, outcome: Outcome.LEFT_ALONE, note: 'templated value (Helm {{ }} or a variable)' } };
  }
  if (j.isCached(image)) {
    return { finding: { line, image, outcome: Outcome.CACHED } };
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
      return { finding: { line, image, outcome: Outcome.CACHED } };
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
  const helmMaps: Array<{ map: YAMLMap; line: number }> = [];
  const visit = (node: unknown): void => {
    if (isMap(node)) {
      for (const pair of node.items as Pair[]) {
        const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
        if (key !== undefined && IMAGE_KEY.test(key)) {
          const value = isAlias(pair.value) ? pair.value.resolve(doc) : pair.value;
          if (isMap(value)) {
            if (value.has('repository')) {
              helmMaps.push({ map: value, line: lineOf((pair.key as Scalar).range![0]) });
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

/** Helm image maps, with `global.imageRegistry` (see helm-images.ts for the conventions). */
function collectHelmMaps(
  doc: Document.Parsed, text: string, j: Judge, maps: Array<{ map: YAMLMap; line: number }>, edits: Edit[], findings: Finding[],
): void {
  if (maps.length === 0) {
    return;
  }
  const globalNode = stringScalar(doc, doc.getIn(['global', 'imageRegistry'], true));
  const globalRegistry = globalNode && globalNode.value !== '' ? globalNode.value : undefined;
  /** A field's text as written (so `tag: 1.10` stays `1.10`), or undefined when absent or empty. */
  const written = (node: Scalar | undefined) => node && node.value !== null && String(node.value) !== '' ? scalarText(text, node) : undefined;

  const judged = maps.map(({ map, line }) => {
    const field = (name: string) => stringScalar(doc, map.get(name, true));
    const registryNode = field('registry');
    const repositoryNode = field('repository');
    const repository = written(repositoryNode) ?? '';
    const image = helmImageReference(
      { registry: written(registryNode), repository, tag: written(field('tag')), digest: written(field('digest')) }, globalRegistry);
    const verdict = repository === ''
      ? { finding: { line, image, outcome: Outcome.LEFT_ALONE, note: 'empty repository' } }
      : judge(image, line, j);
    const ownRegistry = written(registryNode) !== undefined;
    return { finding: verdict.finding, cachePath: verdict.repository, ownRegistry, registryNode, repositoryNode };
  });

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
    findings.push(x.finding);
    if (x.cachePath === undefined || !x.repositoryNode || domain === undefined) {
      continue;
    }
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
  if (text !== undefined) {
    edits.push({ start: node.range![0], end: node.range![1], text });
  }
}

// ---------------------------------------------------------------- Dockerfiles

/** `FROM [--flag=value ...] image [AS name]`, case-insensitive, any spacing. */
const FROM_LINE = /^(\s*FROM\s+)((?:--\S+\s+)*)(\S+)(.*)$/i;
const STAGE_NAME = /^\s+AS\s+(\S+)/i;

/**
 * Rewrites the images of `FROM` lines, keeping `--platform` and `AS`, and leaving alone `scratch`, earlier
 * stages used as a base, and images from build arguments (`$VAR`).
 */
export function rewriteDockerfile(text: string, j: Judge): FileResult {
  const lines = text.split(/(?<=\n)/);
  const stages = new Set<string>();
  const findings: Finding[] = [];
  let output = '';
  lines.forEach((raw, index) => {
    const ending = /\r?\n$/.exec(raw)?.[0] ?? '';
    const body = raw.slice(0, raw.length - ending.length);
    const match = FROM_LINE.exec(body);
    if (!match) {
      output += raw;
      return;
    }
    const [, lead, flags, image, rest] = match;
    const line = index + 1;
    const stage = STAGE_NAME.exec(rest)?.[1];
    let newImage = image;
    if (image.toLowerCase() === 'scratch' || stages.has(image.toLowerCase())) {
      // not an image: the empty base, or an earlier stage
    } else if (image.includes('$')) {
      findings.push({ line, image, outcome: Outcome.LEFT_ALONE, note: 'image from a build argument' });
    } else {
      const { finding, uri } = judge(image, line, j);
      findings.push(finding);
      newImage = uri ?? image;
    }
    if (stage) {
      stages.add(stage.toLowerCase());
    }
    output += `${lead}${flags}${newImage}${rest}${ending}`;
  });
  return { output, findings };
}

/** A reference's registry, or undefined when it does not parse. */
export function registryOf(image: string): string | undefined {
  try {
    return ImageReference.parse(image).registry;
  } catch {
    return undefined;
  }
}
