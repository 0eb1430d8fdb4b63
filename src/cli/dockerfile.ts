/**
 * Finding and rewriting the base images of Dockerfiles, byte for byte: only the image of a `FROM` line changes.
 * Pure functions of the file text, like rewrite.ts (which judges each reference).
 */
import { FileResult, Finding, Judge, Outcome, judge } from './rewrite';

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
