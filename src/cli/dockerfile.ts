/**
 * Finding and rewriting the base images of Dockerfiles, byte for byte: only the image of a `FROM` line, or the
 * default of the `ARG` a `FROM` takes whole, changes. Pure functions of the file text, like rewrite.ts (which
 * judges each reference).
 *
 * The file is read as BuildKit reads it: instructions (with their `\` continuations, or the escape character of a
 * `# escape=` directive), comments, and the bodies of heredocs (`RUN <<EOF ... EOF`), so a `from x import y` inside
 * a heredoc or a continued `RUN` is not taken for a `FROM`.
 */
import { ImageReference } from '../image-reference';
import { FileResult, Finding, Judge, Outcome, judge } from './judge';

/** `FROM [--flag=value ...] image [AS name]`, case-insensitive, any spacing. */
const FROM_LINE = /^(\s*FROM\s+)((?:--\S+\s+)*)(\S+)(.*)$/i;
const STAGE_NAME = /^\s+AS\s+(\S+)/i;
/** `ARG` and what follows it. */
const ARG_LINE = /^(\s*ARG\s+)(.*)$/i;
/** One `name[=value]` of an `ARG`, the value bare or quoted. */
const ARG_ITEM = /([A-Za-z_][A-Za-z0-9_]*)(?:=("(?:[^"\\]|\\.)*"|'[^']*'|\S*))?/g;
/** A build argument taken whole: `$NAME` or `${NAME}`. */
const WHOLE_ARG = /^\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})$/;
/** Every build argument named in a value (`$A`, `${A}`, `${A:-x}`). */
const ANY_ARG = /\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\})/g;
/** A reference whose name is literal and whose tag or digest is not: `golang:${GO_VERSION}-alpine`. */
const LITERAL_NAME = /^([^:@$]+(?::\d+)?(?:\/[^:@$]+)*)([:@][^/]*\$[^/]*)$/;
/** A heredoc marker in RUN, COPY or ADD: `<<EOF`, `<<-EOF`, `<<"EOF"`, `5<<EOF` (not the here-string `<<<`). */
const HEREDOC = /(?:^|\s)\d*<<(?!<)(-?)(["']?)([A-Za-z_][A-Za-z0-9_.-]*)\2/g;

/** One line of the file: its text without the line ending, and the ending. */
interface Line { readonly body: string; readonly ending: string }

/** One instruction: its keyword, its first line (0-based) and whether it goes on over more lines. */
interface Instruction { readonly keyword: string; readonly index: number; readonly continued: boolean }

/** The instructions of a Dockerfile; lines of comments, continuations and heredoc bodies are not instructions. */
function instructionsOf(lines: readonly Line[]): Instruction[] {
  // a parser directive `# escape=`` ` at the top changes the continuation character
  let escape = '\\';
  for (const { body } of lines) {
    const directive = /^\s*#\s*([a-z]+)\s*=\s*(\S+)\s*$/i.exec(body);
    if (!directive) {
      break;
    }
    if (directive[1].toLowerCase() === 'escape' && (directive[2] === '`' || directive[2] === '\\')) {
      escape = directive[2];
    }
  }
  const continues = (body: string) => body.replace(/[ \t]+$/, '').endsWith(escape);
  const found: Instruction[] = [];
  let i = 0;
  while (i < lines.length) {
    const body = lines[i].body;
    if (/^\s*(#|$)/.test(body)) {
      i++;
      continue;
    }
    const keyword = /^\s*(\S+)/.exec(body)![1].toUpperCase();
    const start = i;
    let text = body;
    // the continuation lines; comment and empty lines inside an instruction are dropped, as BuildKit does
    while (continues(lines[i].body)) {
      let next = i + 1;
      while (next < lines.length && /^\s*(#|$)/.test(lines[next].body)) {
        next++;
      }
      if (next >= lines.length) {
        i = next - 1;
        break;
      }
      text += `\n${lines[next].body}`;
      i = next;
    }
    found.push({ keyword, index: start, continued: i > start });
    i++;
    if (keyword === 'RUN' || keyword === 'COPY' || keyword === 'ADD') {
      // each heredoc's body runs to a line that is its name alone (`<<-`: after leading tabs)
      for (const marker of text.matchAll(HEREDOC)) {
        const [, dash, , name] = marker;
        while (i < lines.length && (dash ? lines[i].body.replace(/^\t+/, '') : lines[i].body) !== name) {
          i++;
        }
        i++;
      }
    }
  }
  return found;
}

/** A global `ARG` (before the first `FROM`, so usable in `FROM`) with its default, and where that default is. */
interface GlobalArg {
  readonly name: string;
  readonly index: number;
  /** The default as written, quotes removed; undefined without one. */
  readonly value?: string;
  /** Offsets of the default inside the line, quotes excluded. */
  readonly start: number;
  readonly end: number;
  /** Declared with a default more than once before the first FROM, or over several lines: not rewritten. */
  readonly problem?: string;
}

function globalArgs(lines: readonly Line[], instructions: readonly Instruction[]): Map<string, GlobalArg> {
  const args = new Map<string, GlobalArg>();
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      break;
    }
    if (instruction.keyword !== 'ARG') {
      continue;
    }
    const body = lines[instruction.index].body;
    const match = ARG_LINE.exec(body)!;
    const offset = match[1].length;
    for (const item of match[2].matchAll(ARG_ITEM)) {
      const [whole, name, raw] = item;
      const quoted = raw !== undefined && /^["']/.test(raw);
      const value = raw === undefined ? undefined : quoted ? raw.slice(1, -1) : raw;
      const start = offset + item.index! + whole.length - (raw?.length ?? 0) + (quoted ? 1 : 0);
      const earlier = args.get(name);
      if (earlier?.value !== undefined && value === undefined) {
        continue; // `ARG NAME` again, without a default, keeps the default it has
      }
      const twice = earlier?.value !== undefined
        ? `declared with a default twice (lines ${earlier.index + 1} and ${instruction.index + 1})` : undefined;
      const problem = instruction.continued ? 'the ARG is written over several lines' : twice;
      args.set(name, { name, index: instruction.index, value, start, end: start + (value?.length ?? 0), problem });
    }
  }
  return args;
}

/** Whether a value built from build arguments (`bin-${TARGETOS}`) can only be the name of an earlier stage. */
function namesStage(image: string, stages: ReadonlySet<string>): boolean {
  if (!image.includes('$') || image.includes('/') || image.includes(':') || image.replace(ANY_ARG, '') === '') {
    return false;
  }
  const pattern = new RegExp(`^${image.toLowerCase().split(ANY_ARG).filter((_, i) => i % 3 === 0)
    .map(part => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[a-z0-9_.-]*')}$`);
  return [...stages].some(stage => pattern.test(stage));
}

/**
 * Rewrites the images of `FROM` lines, keeping `--platform` and `AS`, and leaving alone `scratch` and earlier
 * stages used as a base. A build argument's default (`ARG BASE=ubuntu:24.04`) is rewritten when every `FROM`
 * that uses it takes it whole (`FROM $BASE`, `FROM ${BASE} AS x`); one used inside a longer reference
 * (`FROM ${BASE}:${TAG}`) is left alone and reported on that `FROM`. A reference whose tag alone comes from
 * build arguments (`FROM golang:${GO_VERSION}-alpine`) has its name moved and its tag kept.
 */
export function rewriteDockerfile(text: string, j: Judge): FileResult {
  const lines: Line[] = text.split(/(?<=\n)/).map(raw => {
    const ending = /\r?\n$/.exec(raw)?.[0] ?? '';
    return { body: raw.slice(0, raw.length - ending.length), ending };
  });
  const instructions = instructionsOf(lines);
  const args = globalArgs(lines, instructions);
  const froms = instructions.filter(i => i.keyword === 'FROM');
  const stageNames = new Set(froms.map(f => STAGE_NAME.exec(FROM_LINE.exec(lines[f.index].body)?.[4] ?? '')?.[1]?.toLowerCase())
    .filter((s): s is string => s !== undefined));

  // which build arguments each FROM uses, whole or inside a longer value
  const wholeUses = new Map<string, number[]>();
  const partialUses = new Map<string, number[]>();
  for (const from of froms) {
    const image = FROM_LINE.exec(lines[from.index].body)?.[3] ?? '';
    const whole = WHOLE_ARG.exec(image);
    const name = whole?.[1] ?? whole?.[2];
    if (name !== undefined) {
      wholeUses.set(name, [...wholeUses.get(name) ?? [], from.index]);
      continue;
    }
    for (const use of image.matchAll(ANY_ARG)) {
      const used = use[1] ?? use[2];
      partialUses.set(used, [...partialUses.get(used) ?? [], from.index]);
    }
  }

  // several per line (`ARG A=x B=y`): applied right to left, so each keeps its offsets
  const edits = new Map<number, Array<{ start: number; end: number; text: string }>>();
  const addEdit = (index: number, edit: { start: number; end: number; text: string }) => edits.set(index, [...(edits.get(index) ?? []), edit]);
  const findings: Finding[] = [];
  /** Build arguments whose default was judged: the FROM lines that take them whole need no finding of their own. */
  const judgedArgs = new Set<string>();
  for (const [name, uses] of wholeUses) {
    const arg = args.get(name);
    if (!arg || arg.value === undefined || arg.value === '' || partialUses.has(name)) {
      continue;
    }
    const line = arg.index + 1;
    if (arg.value.toLowerCase() === 'scratch' || stageNames.has(arg.value.toLowerCase())) {
      judgedArgs.add(name);
      continue;
    }
    if (arg.problem) {
      findings.push({ line, image: arg.value, outcome: Outcome.LEFT_ALONE, note: `default of ARG ${name}, used by FROM on line ${uses.map(u => u + 1).join(', ')}: ${arg.problem}` });
      judgedArgs.add(name);
      continue;
    }
    const { finding, uri } = judge(arg.value, line, j);
    findings.push(finding);
    judgedArgs.add(name);
    if (uri !== undefined) {
      addEdit(arg.index, { start: arg.start, end: arg.end, text: uri });
    }
  }

  const earlierStages = new Set<string>();
  for (const from of froms) {
    const line = from.index + 1;
    const match = FROM_LINE.exec(lines[from.index].body);
    if (!match || from.continued) {
      findings.push({ line, image: lines[from.index].body.trim(), outcome: Outcome.LEFT_ALONE, note: 'FROM written over several lines' });
      continue;
    }
    const [, lead, flags, image, rest] = match;
    const whole = WHOLE_ARG.exec(image);
    const wholeName = whole?.[1] ?? whole?.[2];
    const stage = STAGE_NAME.exec(rest)?.[1];
    if (image.toLowerCase() === 'scratch' || earlierStages.has(image.toLowerCase()) || namesStage(image, earlierStages)) {
      // not an image: the empty base, or an earlier stage (`FROM bin-${TARGETOS}` picks one of them)
    } else if (wholeName !== undefined && judgedArgs.has(wholeName)) {
      // judged (and rewritten) where its default is, on the ARG line
    } else if (LITERAL_NAME.test(image)) {
      // only the tag comes from build arguments: the name is moved, the tag kept as written
      const [, name, suffix] = LITERAL_NAME.exec(image)!;
      const { finding, uri } = judge(`${name}:0`, line, j);
      const moved = uri?.slice(0, -':0'.length);
      findings.push({ ...finding, image, uri: moved === undefined ? undefined : `${moved}${suffix}` });
      if (moved !== undefined) {
        addEdit(from.index, { start: lead.length + flags.length, end: lead.length + flags.length + name.length, text: moved });
      }
    } else if (movedHost(image, j) !== undefined) {
      // the registry host is literal and the rest comes from build arguments: the host moves, the rest is kept
      const moved = movedHost(image, j)!;
      findings.push({ ...moved.finding, line });
      if (moved.text !== undefined) {
        addEdit(from.index, { start: lead.length + flags.length, end: lead.length + flags.length + image.length, text: moved.text });
      }
    } else if (image.includes('$')) {
      const names = [...image.matchAll(ANY_ARG)].map(u => u[1] ?? u[2]);
      const why = wholeName !== undefined
        ? (args.get(wholeName)?.value ? `its default is also used inside a longer reference by FROM on line ${partialUses.get(wholeName)!.map(u => u + 1).join(', ')}`
          : `ARG ${wholeName} has no default before the first FROM`)
        : `the reference is built from ${names.map(n => `ARG ${n}`).join(' and ')}, so it is whole only at build time`;
      findings.push({ line, image, outcome: Outcome.LEFT_ALONE, note: `image from a build argument: ${why}` });
    } else {
      const { finding, uri } = judge(image, line, j);
      findings.push(finding);
      if (uri !== undefined) {
        addEdit(from.index, { start: lead.length + flags.length, end: lead.length + flags.length + image.length, text: uri });
      }
    }
    if (stage) {
      earlierStages.add(stage.toLowerCase());
    }
  }

  findings.push(...otherImageUses(lines, instructions, froms, j));
  const syntax = syntaxDirective(lines);
  if (syntax !== undefined) {
    // BuildKit pulls the frontend named by `# syntax=` before it reads the rest: an image like any FROM's
    const { finding, uri } = judge(syntax.image, syntax.index + 1, j);
    findings.push(finding);
    if (uri !== undefined) {
      addEdit(syntax.index, { start: syntax.start, end: syntax.start + syntax.image.length, text: uri });
    }
  }

  const output = lines.map(({ body, ending }, index) => {
    const edited = [...(edits.get(index) ?? [])].sort((x, y) => y.start - x.start)
      .reduce((done, edit) => `${done.slice(0, edit.start)}${edit.text}${done.slice(edit.end)}`, body);
    return `${edited}${ending}`;
  }).join('');
  return { output, findings: findings.sort((a, b) => a.line - b.line) };
}

/**
 * The image of a `# syntax=` parser directive, with where it is: the BuildKit frontend that parses the file
 * (https://docs.docker.com/reference/dockerfile/#syntax). Parser directives are only read at the very top, before
 * any instruction, comment or blank line.
 */
function syntaxDirective(lines: readonly Line[]): { index: number; start: number; image: string } | undefined {
  for (let index = 0; index < lines.length; index++) {
    const directive = /^(\s*#\s*([a-z]+)\s*=\s*)(\S+)\s*$/i.exec(lines[index].body);
    if (!directive) {
      return undefined;
    }
    if (directive[2].toLowerCase() === 'syntax') {
      return { index, start: directive[1].length, image: directive[3] };
    }
  }
  return undefined;
}

/**
 * A `FROM` reference built from build arguments whose registry host is literal
 * (`quay.io/prometheus/busybox-${OS}-${ARCH}:latest`): the host is known, so it moves to its cache path and
 * everything after it is kept as written. Judged with each build argument read as `x`; undefined when the host is
 * not literal, or is Docker Hub's (whose cache path depends on the repository: `library/` for one component).
 */
function movedHost(image: string, j: Judge): { finding: Finding; text?: string } | undefined {
  const slash = image.indexOf('/');
  const host = image.slice(0, Math.max(slash, 0));
  if (slash <= 0 || host.includes('$') || !image.includes('$') || (!/[.:]/.test(host) && host !== 'localhost')) {
    return undefined;
  }
  const sample = image.replace(ANY_ARG, 'x');
  let registry: string;
  try {
    registry = ImageReference.parse(sample).registry;
  } catch {
    return undefined;
  }
  if (registry === 'docker.io') {
    return undefined;
  }
  const { finding, uri } = judge(sample, 0, j);
  const rest = sample.slice(slash + 1);
  if (uri === undefined || !uri.endsWith(`/${rest}`)) {
    return { finding: { ...finding, image, uri: undefined } };
  }
  const text = `${uri.slice(0, -rest.length)}${image.slice(slash + 1)}`;
  return { finding: { ...finding, image, uri: text, note: 'the registry host moved; the rest comes from build arguments' }, text };
}

/**
 * Images a build pulls outside `FROM`: `COPY --from=<image>` and `RUN --mount=...,from=<image>`. They are not
 * rewritten (a stage is the way: `FROM <image> AS name`); one not already on the cache is reported, so `check`
 * cannot pass a build that still pulls from an upstream. Stage names and stage numbers are not images.
 */
function otherImageUses(lines: readonly Line[], instructions: readonly Instruction[], froms: readonly Instruction[], j: Judge): Finding[] {
  const stages = froms.map(f => ({ index: f.index, name: STAGE_NAME.exec(FROM_LINE.exec(lines[f.index].body)?.[4] ?? '')?.[1]?.toLowerCase() }));
  const findings: Finding[] = [];
  for (const instruction of instructions) {
    const body = lines[instruction.index].body;
    const uses = instruction.keyword === 'COPY' ? [...body.matchAll(/--from=("?)([^\s"]+)\1/gi)].map(m => ({ image: m[2], how: 'COPY --from' }))
      : instruction.keyword === 'RUN' ? [...body.matchAll(/--mount=\S*?\bfrom=([^,\s]+)/gi)].map(m => ({ image: m[1], how: 'RUN --mount from=' }))
        : [];
    for (const { image, how } of uses) {
      const earlier = stages.filter(st => st.index < instruction.index);
      if (/^\d+$/.test(image) || earlier.some(st => st.name === image.toLowerCase())) {
        continue; // a stage
      }
      const line = instruction.index + 1;
      if (j.cacheStatus(image) === true) {
        findings.push({ line, image, outcome: Outcome.CACHED });
      } else {
        findings.push({ line, image, outcome: Outcome.LEFT_ALONE, note: `an image pulled by ${how}: not rewritten; make it a stage (FROM <image> AS name) or write the cache URI` });
      }
    }
  }
  return findings;
}
