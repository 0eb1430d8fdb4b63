/**
 * What the CLI says about each image value it meets (an `Outcome` with a note), how it decides (`judge`), and how
 * the rewriters apply their edits to a file's bytes (`applyEdits`). Shared by the YAML, Helm template and
 * Dockerfile rewriters.
 */
import { ImageMapping, MappingStatus } from '../image-mapping';

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

export interface Edit { readonly start: number; readonly end: number; readonly text: string }

/**
 * Applies non-overlapping edits in one pass (linear in the size of the text and the number of edits). An edit
 * reached twice (an anchored value used through aliases) is applied once.
 */
export function applyEdits(text: string, edits: Edit[]): string {
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
