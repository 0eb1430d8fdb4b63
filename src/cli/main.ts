#!/usr/bin/env node
/**
 * ecr-ptc: move Kubernetes manifests, Helm values, Dockerfiles and compose files onto the ECR pull through cache.
 *
 *   ecr-ptc rewrite <files or folders...> --registry <account>.dkr.ecr.<region>.amazonaws.com [--prefix host=prefix ...] [--dry-run] [--follow-symlinks] [--json]
 *   ecr-ptc check   <files or folders...> [--registry <account>.dkr.ecr.<region>.amazonaws.com] [--prefix host=prefix ...] [--allow-skipped] [--follow-symlinks] [--json]
 */
import { realpathSync } from 'fs';
import { dirname } from 'path';
import { Command, CommanderError, Option } from 'commander';
import { CachePrefix, ImageMapping } from '../image-mapping';
import { FileKind, FoundFile, Locks, ReadFile, decodeText, findFiles, readRegularFile, reasonOf, removeLeftover, replaceFile, syncFolders } from './files';
import { FileResult, Finding, Judge, Outcome, rewriteDockerfile, rewriteYaml } from './rewrite';
import { ImageReference } from '../image-reference';
import { ECR_REGISTRY_URL, prefixProblem, referenceHostOf } from '../private/catalogue';

/** Where the CLI writes; a test passes its own. */
export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Whether progress may be drawn (stderr is a terminal). */
  readonly interactive: boolean;
}

/** Exit codes. */
export const EXIT_OK = 0;
/** Some reference is not served from the cache, or some file could not be processed. */
export const EXIT_FINDINGS = 1;
/** The command line was wrong. */
export const EXIT_USAGE = 2;
/** A bug in ecr-ptc (reported in one line, without a stack trace). */
export const EXIT_INTERNAL = 3;

interface FileReport {
  readonly path: string;
  readonly findings: Finding[];
  readonly changed: boolean;
  readonly error?: { readonly line: number; readonly reason: string; readonly template: boolean };
}

/** Runs the CLI with the given arguments (without `node` and the script); returns the exit code. */
export function run(args: string[], io: Io): number {
  let exitCode = EXIT_OK;
  const program = new Command('ecr-ptc')
    .description('Move container image references onto an Amazon ECR pull through cache.')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();

  program.command('rewrite')
    .description('rewrite image references in Kubernetes YAML, Helm values, compose files and Dockerfiles to the cache')
    .argument('<paths...>', 'files or folders (folders are searched for *.yaml, *.yml, Dockerfile*, *.Dockerfile)')
    .requiredOption('--registry <domain>', 'the cache registry, <account>.dkr.ecr.<region>.amazonaws.com')
    .addOption(new Option('--prefix <host=prefix...>', 'cache prefix of an upstream host, overriding the defaults (repeatable)').default([]))
    .option('--dry-run', 'report what would change, write nothing', false)
    .option('--follow-symlinks', 'follow symbolic links inside folders (links named on the command line are always followed)', false)
    .option('--json', 'print a JSON report instead of text', false)
    .action((paths: string[], options: { registry: string; prefix: string[]; dryRun: boolean; json: boolean; followSymlinks: boolean }) => {
      const table = prefixTable(options.prefix);
      const mapping = new ImageMapping({ registryDomain: checkRegistry(options.registry), prefixes: table });
      const judge = { mapping, cacheStatus: cacheStatusOf(mapping.registryDomain, table) };
      exitCode = processPaths(paths, judge, { write: !options.dryRun, json: options.json, followSymlinks: options.followSymlinks }, io);
    });

  program.command('check')
    .description('list every image reference that does not point at the cache; exit 0 only when every image of every file was checked and is cached')
    .argument('<paths...>', 'files or folders')
    .option('--registry <domain>', 'the cache registry (default: any private ECR registry counts as the cache)')
    .addOption(new Option('--prefix <host=prefix...>', 'cache prefix of an upstream host, besides the defaults (repeatable); '
      + 'a cached reference must be under a known prefix').default([]))
    .option('--follow-symlinks', 'follow symbolic links inside folders', false)
    .option('--allow-skipped', 'exit 0 even when folders, links, Helm templates or templated values were skipped (they are still listed)', false)
    .option('--json', 'print a JSON report instead of text', false)
    .action((paths: string[], options: { registry?: string; prefix: string[]; json: boolean; followSymlinks: boolean; allowSkipped: boolean }) => {
      const registry = options.registry === undefined ? undefined : checkRegistry(options.registry);
      const judge = { cacheStatus: cacheStatusOf(registry, prefixTable(options.prefix)) };
      exitCode = processPaths(paths, judge,
        { write: false, json: options.json, followSymlinks: options.followSymlinks, failOnSkipped: !options.allowSkipped }, io);
    });

  try {
    program.parse(args, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (e instanceof UsageError) {
      io.err(`ecr-ptc: ${escapeText(e.message)}\n`);
      return EXIT_USAGE;
    }
    // a bug: say so in one line, never with a stack trace
    io.err(`ecr-ptc: internal error: ${escapeText(e instanceof Error ? e.message : String(e))}\n`);
    return EXIT_INTERNAL;
  }
  return exitCode;
}

class UsageError extends Error {}

function checkRegistry(registry: string): string {
  const domain = registry.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (!ECR_REGISTRY_URL.test(domain)) {
    throw new UsageError(`--registry '${registry}' is not a private ECR registry: use <12-digit account>.dkr.ecr.<region>.amazonaws.com`);
  }
  return domain;
}

/** The default prefixes, with `host=prefix` overrides and additions. */
function prefixTable(overrides: string[]): CachePrefix[] {
  const table = ImageMapping.defaultPrefixes();
  for (const override of overrides) {
    const match = /^([^=\s]+)=([^=\s]+)$/.exec(override);
    if (!match) {
      throw new UsageError(`--prefix '${override}' must be host=prefix, for example --prefix myregistry.azurecr.io=azure`);
    }
    const [, host, prefix] = match;
    const problem = prefixProblem(prefix);
    if (problem) {
      throw new UsageError(`--prefix '${override}': prefix '${prefix}' is invalid: ${problem}`);
    }
    const normalised = referenceHostOf(host);
    const index = table.findIndex(p => p.registry === normalised);
    const entry = { registry: normalised, prefix };
    if (index >= 0) {
      table[index] = entry;
    } else {
      table.push(entry);
    }
  }
  return table;
}

/**
 * Whether a reference points at the cache: a valid reference, on the cache registry (or, without one, on any
 * private ECR registry), under one of the known cache prefixes. Anything else on the cache registry is not
 * cached, with the reason.
 */
function cacheStatusOf(registry: string | undefined, table: CachePrefix[]): (image: string) => true | false | string {
  const prefixes = [...new Set(table.map(p => p.prefix.replace(/\/$/, '')))];
  const root = prefixes.includes('ROOT');
  return (image: string) => {
    if (!image.includes('.dkr.ecr.')) {
      return false; // the cheap test first: no private ECR registry in it
    }
    let ref: ImageReference;
    try {
      ref = ImageReference.parse(image);
    } catch (e) {
      const onCache = registry !== undefined ? image.startsWith(`${registry}/`) : ECR_REGISTRY_URL.test(image.split('/')[0]);
      return onCache ? `points at the cache registry, but is not a valid reference: ${(e as Error).message.replace(/^Invalid image reference '.*?': /, '')}` : false;
    }
    if (registry !== undefined ? ref.registry !== registry : !ECR_REGISTRY_URL.test(ref.registry)) {
      return false;
    }
    if (root || prefixes.some(p => ref.repository.startsWith(`${p}/`))) {
      return true;
    }
    return `points at the cache registry, but '${ref.repository}' is under no known cache prefix (${prefixes.join(', ')}); `
      + 'pass --prefix host=prefix for a prefix of your own';
  };
}

function processFile(text: string, kind: FileKind, judge: Judge): FileResult {
  return kind === FileKind.DOCKERFILE ? rewriteDockerfile(text, judge) : rewriteYaml(text, judge);
}

interface RunOptions {
  readonly write: boolean;
  readonly json: boolean;
  readonly followSymlinks: boolean;
  /** check: anything skipped or left alone fails the run. */
  readonly failOnSkipped?: boolean;
}

interface LeftoverReport { readonly path: string; readonly removed: boolean; readonly reason?: string }

function processPaths(paths: string[], judge: Judge, options: RunOptions, io: Io): number {
  const { write, json } = options;
  const walk = findFiles(paths, { followSymlinks: options.followSymlinks });
  const files = walk.files;
  const reports: FileReport[] = [];
  const errors: string[] = [];
  const leftovers: LeftoverReport[] = [];
  const locks = new Locks();
  const folders = new Set<string>();
  try {
    if (write) {
      const dirs = [...files.filter(f => f.kind).map(f => dirname(f.named ? realPathOr(f.path) : f.path)), ...walk.leftovers.map(p => dirname(p))];
      const conflict = locks.acquire(dirs);
      if (conflict) {
        errors.push(conflict);
      }
    }
    for (const path of walk.leftovers) {
      if (!write || errors.length > 0) {
        leftovers.push({ path, removed: false, reason: 'temporary file of an interrupted ecr-ptc run; the next rewrite removes it' });
        continue;
      }
      try {
        removeLeftover(path);
        leftovers.push({ path, removed: true, reason: 'temporary file of an interrupted ecr-ptc run: removed' });
      } catch (e) {
        leftovers.push({ path, removed: false, reason: `temporary file of an interrupted ecr-ptc run, not removed: ${reasonOf(e)}` });
      }
    }
    const showProgress = io.interactive && !json && files.length > 200;
    files.forEach((file, index) => {
      if (showProgress && index % 100 === 0) {
        io.err(`\rscanning ${index}/${files.length} files`);
      }
      reports.push(processOne(file, judge, !write ? 'dry-run' : errors.length === 0 ? 'write' : 'blocked', folders));
    });
    if (showProgress) {
      io.err(`\rscanned ${files.length}/${files.length} files\n`);
    }
    syncFolders(folders);
  } finally {
    locks.release();
  }
  const summary = summarize(reports, files.filter(f => f.kind).length, walk.skipped.length, leftovers.length);
  const incomplete = summary.skipped + summary.templateFiles + summary.leftAlone > 0;
  const failed = summary.unserved > 0 || summary.failedFiles > 0 || errors.length > 0 || (options.failOnSkipped === true && incomplete);
  if (json) {
    io.out(`${JSON.stringify({
      dryRun: judge.mapping ? !write : undefined,
      complete: judge.mapping ? undefined : !incomplete,
      summary,
      errors,
      files: reports,
      skipped: walk.skipped,
      leftovers,
      staleLocksRemoved: locks.staleRemoved,
    }, null, 2)}\n`);
  } else {
    printText(reports, summary, judge.mapping !== undefined, write, io);
    for (const s of walk.skipped) {
      io.err(`${escapeText(s.path)}: skipped: ${escapeText(s.reason)}\n`);
    }
    for (const l of leftovers) {
      io.err(`${escapeText(l.path)}: ${escapeText(l.reason ?? '')}\n`);
    }
    for (const lock of locks.staleRemoved) {
      io.err(`${escapeText(lock)}: removed the lock of an ecr-ptc run that no longer runs\n`);
    }
    for (const error of errors) {
      io.err(`ecr-ptc: ${escapeText(error)}\n`);
    }
    if (options.failOnSkipped && incomplete) {
      io.err(`ecr-ptc: check is incomplete: ${summary.skipped} paths skipped, ${summary.templateFiles} Helm template files and `
        + `${summary.leftAlone} values left alone were not checked; pass --allow-skipped to accept that\n`);
    }
  }
  return failed ? EXIT_FINDINGS : EXIT_OK;
}

function realPathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** Reads, judges and (when writing) replaces one file; every problem becomes the file's error, never an exception. */
function processOne(file: FoundFile, judge: Judge, mode: 'write' | 'dry-run' | 'blocked', folders: Set<string>): FileReport {
  const refused = (reason: string): FileReport => ({ path: file.path, findings: [], changed: false, error: { line: 0, reason, template: false } });
  if (!file.kind) {
    return refused(file.problem!);
  }
  let read: ReadFile;
  let text: string;
  try {
    read = readRegularFile(file);
    text = decodeText(read.bytes);
  } catch (e) {
    return refused(reasonOf(e));
  }
  let result: FileResult;
  try {
    result = processFile(text, file.kind, judge);
  } catch (e) {
    return refused(`internal error: ${reasonOf(e)}`);
  }
  const changed = !result.error && result.output !== text && mode !== 'blocked';
  if (changed && mode === 'write') {
    try {
      replaceFile(read, Buffer.from(result.output, 'utf-8'));
      folders.add(dirname(read.realPath));
    } catch (e) {
      return { path: file.path, findings: result.findings, changed: false, error: { line: 0, reason: `not rewritten: ${reasonOf(e)}`, template: false } };
    }
  }
  return { path: file.path, findings: result.findings, changed, error: result.error };
}

interface Summary {
  readonly filesScanned: number;
  readonly filesChanged: number;
  readonly rewritten: number;
  readonly cached: number;
  readonly unserved: number;
  readonly leftAlone: number;
  readonly failedFiles: number;
  readonly templateFiles: number;
  /** Folders and symbolic links passed over while walking. */
  readonly skipped: number;
  /** Temporary files of interrupted runs found. */
  readonly leftovers: number;
}

function summarize(reports: FileReport[], filesScanned: number, skipped: number, leftovers: number): Summary {
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

function printText(reports: FileReport[], s: Summary, rewriting: boolean, write: boolean, io: Io): void {
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
      }
    }
  }
  const verb = rewriting ? (write ? 'rewritten' : 'to rewrite (dry run)') : undefined;
  io.out([
    `${s.filesScanned} files scanned`,
    ...(verb ? [`${s.rewritten} references ${verb} in ${s.filesChanged} files`] : []),
    `${s.cached} already cached`,
    `${s.unserved} not served from the cache`,
    `${s.leftAlone} left alone (templated, build arguments)`,
    ...(s.templateFiles ? [`${s.templateFiles} Helm template files left alone`] : []),
    ...(s.failedFiles ? [`${s.failedFiles} files refused (see above)`] : []),
    ...(s.skipped ? [`${s.skipped} folders and links skipped (see above)`] : []),
  ].join(', ') + '\n');
}

if (require.main === module) {
  // `ecr-ptc check . | head`: a closed pipe ends the output quietly, without a stack trace
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') {
        process.exit(process.exitCode ?? EXIT_OK);
      }
      throw e;
    });
  }
  process.exitCode = run(process.argv.slice(2), {
    out: text => process.stdout.write(text),
    err: text => process.stderr.write(text),
    interactive: Boolean(process.stderr.isTTY),
  });
}
