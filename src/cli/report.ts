/**
 * What a run prints: one line per finding (paths and images escaped: a file name or value cannot inject terminal
 * control characters), then the summary.
 */
import { Finding, Outcome } from './judge';
import { ImageReference } from '../image-reference';
import { digestOnlyWarning } from '../private/cache-mapping';

/** Where the CLI writes; a test passes its own. */
export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Whether progress may be drawn (stderr is a terminal). */
  readonly interactive: boolean;
}

/** What happened to one file. */
export interface FileReport {
  readonly path: string;
  readonly findings: Finding[];
  readonly changed: boolean;
  readonly error?: { readonly line: number; readonly reason: string; readonly template: boolean };
}

export interface Summary {
  readonly filesScanned: number;
  readonly filesChanged: number;
  readonly rewritten: number;
  readonly cached: number;
  readonly unserved: number;
  readonly leftAlone: number;
  /** Whole references in settings of no known convention: reported, not rewritten. */
  readonly settings: number;
  /** Values charts need beside their moved images (Bitnami's global.security.allowInsecureImages), added by rewrite. */
  readonly companionsSet: number;
  /** Such values missing or written otherwise, and left so: they fail the run. */
  readonly companionsMissing: number;
  readonly failedFiles: number;
  readonly templateFiles: number;
  /** Folders and symbolic links passed over while walking. */
  readonly skipped: number;
  /** Temporary files of interrupted runs found. */
  readonly leftovers: number;
}

export function summarize(reports: FileReport[], filesScanned: number, skipped: number, leftovers: number): Summary {
  const all = reports.flatMap(r => r.findings);
  const count = (outcome: Outcome) => all.filter(f => f.outcome === outcome).length;
  return {
    filesScanned,
    filesChanged: reports.filter(r => r.changed).length,
    // a file whose write failed rewrote nothing
    rewritten: reports.filter(r => r.changed).flatMap(r => r.findings).filter(f => f.outcome === Outcome.REWRITTEN).length,
    cached: count(Outcome.CACHED),
    unserved: count(Outcome.UNSERVED),
    leftAlone: count(Outcome.LEFT_ALONE),
    settings: count(Outcome.SETTING),
    companionsSet: reports.filter(r => r.changed).flatMap(r => r.findings).filter(f => f.outcome === Outcome.COMPANION_SET).length,
    companionsMissing: count(Outcome.COMPANION_MISSING),
    failedFiles: reports.filter(r => r.error && !r.error.template).length,
    templateFiles: reports.filter(r => r.error?.template).length,
    skipped,
    leftovers,
  };
}

/**
 * Text for a terminal: control characters (C0, DEL, C1) and the Unicode line and bidirectional controls taken
 * from file names and contents are escaped, so a file cannot move the cursor, hide a line or fake a report.
 */
export function escapeText(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, c => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** `1 file`, `2 files`, `0 files`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** A reference with a digest and no tag (`repo@sha256:...`): ECR cannot fill the cache from it. */
function isDigestOnly(image: string): boolean {
  try {
    const ref = ImageReference.parse(image);
    return ref.tag === undefined && ref.digest !== undefined;
  } catch {
    return false;
  }
}

export function printFindings(reports: FileReport[], io: Io): void {
  const e = escapeText;
  for (const report of reports) {
    if (report.error) {
      io.err(`${e(report.path)}${report.error.line > 0 ? `:${report.error.line}` : ''}: ${e(report.error.reason)}\n`);
    }
    for (const f of report.findings) {
      const where = `${e(report.path)}:${f.line}`;
      if (f.outcome === Outcome.REWRITTEN) {
        io.out(`${where}: ${e(f.image)} -> ${e(f.uri!)}${f.note ? ` (warning: ${e(f.note)})` : ''}\n`);
      } else if (f.outcome === Outcome.UNSERVED) {
        io.out(`${where}: ${e(f.image)}: ${e(f.note?.split('. Supported upstreams')[0] ?? '')}\n`);
      } else if (f.outcome === Outcome.LEFT_ALONE) {
        io.out(`${where}: ${e(f.image)}: left alone: ${e(f.note ?? '')}\n`);
      } else if (f.outcome === Outcome.SETTING) {
        io.out(`${where}: ${e(f.image)}: ${e(f.note ?? 'an image in a setting')}\n`);
      } else if (f.outcome === Outcome.COMPANION_SET) {
        io.out(`${where}: ${e(f.image)}: ${e(f.uri!)} added (note: ${e(f.note ?? '')})\n`);
      } else if (f.outcome === Outcome.COMPANION_MISSING) {
        io.out(`${where}: ${e(f.image)}: ${e(f.note ?? '')}\n`);
      } else if (f.outcome === Outcome.CACHED && isDigestOnly(f.image)) {
        // on the cache, but its first pull fails while the cache does not hold it: said, not failed (it pulls from nowhere else)
        io.out(`${where}: ${e(f.image)}: cached, with a caution: ${e(digestOnlyWarning(f.image))}\n`);
      }
    }
  }
}

export function printSummary(s: Summary, rewriting: boolean, write: boolean, io: Io): void {
  const verb = rewriting ? (write ? 'rewritten' : 'to rewrite (dry run)') : undefined;
  io.out([
    `${plural(s.filesScanned, 'file')} scanned`,
    ...(verb ? [`${plural(s.rewritten, 'reference')} ${verb} in ${plural(s.filesChanged, 'file')}`] : []),
    `${s.cached} already cached`,
    `${s.unserved} not served from the cache`,
    `${s.leftAlone} left alone (templated, build arguments)`,
    ...(s.settings ? [`${plural(s.settings, 'image')} in settings`] : []),
    ...(s.companionsSet ? [`${plural(s.companionsSet, 'chart value')} ${rewriting && !write ? 'to add' : 'added'} beside moved images`] : []),
    ...(s.companionsMissing ? [`${plural(s.companionsMissing, 'chart value')} missing beside moved images (see above)`] : []),
    ...(s.templateFiles ? [`${plural(s.templateFiles, 'Helm template file')} left alone`] : []),
    ...(s.failedFiles ? [`${plural(s.failedFiles, 'file')} refused (see above)`] : []),
    ...(s.skipped ? [`${s.skipped} ${s.skipped === 1 ? 'folder or link' : 'folders and links'} skipped (see above)`] : []),
  ].join(', ') + '\n');
}
