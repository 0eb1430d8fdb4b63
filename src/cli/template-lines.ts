/**
 * Helm templates that are not YAML until rendered, read line by line: an `image:` line is rewritten only when it is
 * provably a container's image; any other is reported.
 */
import { FileResult, Finding, Judge, Outcome, judge } from './judge';

/** `image: <value>` alone on a line (in a list item or not), with an optional trailing comment. */
const IMAGE_LINE = /^(\s*(?:-\s+)?image:[ \t]+)(?:"([^"\\{}$]*)"|'([^'{}$]*)'|([^\s'"#{}$][^\s#{}$]*))([ \t]*(?:#.*)?)$/;

/**
 * A Helm template (a file that is not YAML until rendered) read line by line. An `image:` line is rewritten only
 * when it is provably a container's image: its whole value a literal reference, no template on the line, and
 * the line an entry of a list item under `containers:`, `initContainers:` or `ephemeralContainers:` (by
 * indentation). An `image:` line inside a block scalar (`|`, `>`) is text; any other is reported.
 */
export function rewriteTemplateLines(text: string, j: Judge): FileResult {
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
