#!/usr/bin/env node
/**
 * (Over 400 lines: the command line, the run over files and the report are one program's surface.)
 *
 * ecr-ptc: move Kubernetes manifests, Helm values, Dockerfiles and compose files onto the ECR pull through cache.
 *
 *   ecr-ptc rewrite <files or folders...> [--registry <account>.dkr.ecr.<region>.amazonaws.com] [--from-account | --from-cdk-out <dir>] [--prefix host=prefix ...] [--dry-run] [--follow-symlinks] [--json]
 *   ecr-ptc check   <files or folders...> [--registry <account>.dkr.ecr.<region>.amazonaws.com] [--from-account | --from-cdk-out <dir>] [--prefix host=prefix ...] [--allow-skipped] [--allow-settings] [--follow-symlinks] [--json]
 */
import { readFileSync, realpathSync } from 'fs';
import { dirname, join } from 'path';
import { Command, CommanderError, Option } from 'commander';
import { CachePrefix, ImageMapping } from '../image-mapping';
import { upstreamOfCache } from './companions';
import { rewriteDockerfile } from './dockerfile';
import { FileKind, FoundFile, ReadFile, decodeText, readRegularFile, reasonOf, replaceFile, syncFolders } from './files';
import { FileResult, Judge } from './judge';
import { Locks } from './locks';
import { FileReport, Io, escapeText, plural, printFindings, printSummary, summarize } from './report';
import { rewriteYaml } from './rewrite';
import { ImageReference } from '../image-reference';
import { AccountRules, PrefixTable, PrefixTableError, applyOverrides, defaultTable, registryParts, tableFromAccount, tableFromCloudAssembly } from './prefixes';
import { findFiles, removeLeftover } from './walk';
import { ECR_REGISTRY_URL } from '../private/catalogue';


export type { Io } from './report';

/** Exit codes. */
export const EXIT_OK = 0;
/** Some reference is not served from the cache, or some file could not be processed. */
export const EXIT_FINDINGS = 1;
/** The command line was wrong. */
export const EXIT_USAGE = 2;
/** A bug in ecr-ptc (reported in one line, without a stack trace). */
export const EXIT_INTERNAL = 3;


/** What the CLI loads only when asked for; a test passes its own. */
export interface Deps {
  /**
   * Reads the account's rules (`--from-account`) in a Region (undefined: the usual AWS settings).
   * @default - the bundled AWS SDK module, assets/cli/account-rules, loaded on first use
   */
  readonly accountRules?: (region: string | undefined) => AccountRules;
}

/** The AWS SDK module, bundled on its own so that only `--from-account` loads it. */
function bundledAccountRules(region: string | undefined): AccountRules {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const bundle = require(join(__dirname, '..', '..', 'assets', 'cli', 'account-rules', 'index.js')) as typeof import('./account-rules');
  return bundle.accountRules(region);
}

/** The package's version, for `--version`. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf-8')) as { version: string }).version;
}

/** Where the prefix table comes from, as the command line says. */
interface SourceOptions {
  readonly registry?: string;
  readonly prefix: string[];
  readonly fromAccount: boolean;
  readonly fromCdkOut?: string;
}

interface RunState {
  exitCode: number;
  /** The work of a command that reads the account: run() refuses it, runAsync() waits for it. */
  pending?: Promise<void>;
}

function program(io: Io, deps: Deps, state: RunState): Command {
  const cli = new Command('ecr-ptc')
    .description('Move container image references onto an Amazon ECR pull through cache.')
    .version(packageVersion(), '-V, --version', 'print the version of ecr-ptc')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();
  const sourceOptions = (command: Command, prefixHelp: string) => command
    .option('--from-account', 'map by the rules of the account (DescribePullThroughCacheRules; Region from --registry or AWS_REGION/profile)', false)
    .option('--from-cdk-out <dir>', 'map by the AWS::ECR::PullThroughCacheRule resources of a synthesized cloud assembly (cdk.out)')
    .addOption(new Option('--prefix <host=prefix...>', prefixHelp).default([]));
  /** Runs `then` with the table, now or (reading the account) when it arrives. */
  const withTable = (options: SourceOptions, needsRegistry: boolean, then: (table: PrefixTable, registry: string | undefined) => void) => {
    const registry = options.registry === undefined ? undefined : checkRegistry(options.registry);
    if (needsRegistry && registry === undefined && !options.fromAccount && options.fromCdkOut === undefined) {
      throw new UsageError('rewrite needs the cache registry: pass --registry <account>.dkr.ecr.<region>.amazonaws.com '
        + '(or --from-account / --from-cdk-out <dir>, which name it)');
    }
    const go = (table: PrefixTable) => {
      const final = applyOverrides(table, options.prefix);
      for (const notice of final.notices) {
        io.err(`ecr-ptc: ${escapeText(notice)}\n`);
      }
      then(final, registry ?? final.registryUri);
    };
    if (options.fromAccount && options.fromCdkOut !== undefined) {
      throw new UsageError('--from-account and --from-cdk-out both name the rules: pass one of them');
    }
    if (options.fromAccount) {
      const region = registry === undefined ? undefined : registryParts(registry).region;
      state.pending = tableFromAccount((deps.accountRules ?? bundledAccountRules)(region), registry).then(go);
      return;
    }
    go(options.fromCdkOut !== undefined ? tableFromCloudAssembly(options.fromCdkOut, registry) : defaultTable());
  };

  sourceOptions(cli.command('rewrite')
    .description('rewrite image references in Kubernetes YAML, Helm values, compose files and Dockerfiles to the cache')
    .argument('<paths...>', 'files or folders (folders are searched for *.yaml, *.yml, Dockerfile*, *.Dockerfile)')
    .option('--registry <domain>', 'the cache registry, <account>.dkr.ecr.<region>.amazonaws.com (default: the one --from-account or --from-cdk-out names)'),
  'cache prefix of an upstream host, adding to or overriding the table (repeatable)')
    .option('--dry-run', 'report what would change, write nothing', false)
    .option('--follow-symlinks', 'follow symbolic links inside folders (links named on the command line are always followed)', false)
    .option('--json', 'print a JSON report instead of text', false)
    .action((paths: string[], options: SourceOptions & { dryRun: boolean; json: boolean; followSymlinks: boolean }) => {
      withTable(options, true, (table, registry) => {
        if (registry === undefined) {
          throw new UsageError('rewrite needs the cache registry: pass --registry <account>.dkr.ecr.<region>.amazonaws.com');
        }
        const mapping = new ImageMapping({ registryUri: registry, prefixes: table.prefixes });
        const judge = { mapping, cacheStatus: cacheStatusOf(mapping.registryUri, table.prefixes), upstreamOf: upstreamOfCache(table.prefixes) };
        state.exitCode = processPaths(paths, judge, { write: !options.dryRun, json: options.json, followSymlinks: options.followSymlinks }, io);
      });
    });

  sourceOptions(cli.command('check')
    .description('list every image reference that does not point at the cache; exit 0 only when every image of every file was checked and is cached')
    .argument('<paths...>', 'files or folders')
    .option('--registry <domain>', 'the cache registry (default: the one --from-account or --from-cdk-out names, else any private ECR registry)'),
  'cache prefix of an upstream host, adding to or overriding the table (repeatable); a cached reference must be under a known prefix')
    .option('--follow-symlinks', 'follow symbolic links inside folders', false)
    .option('--allow-skipped', 'exit 0 even when folders, links, Helm templates or templated values were skipped (they are still listed)', false)
    .option('--allow-settings', 'exit 0 even when images in settings (environment variables, ConfigMap data, params) point elsewhere (they are still listed)', false)
    .option('--json', 'print a JSON report instead of text', false)
    .action((paths: string[], options: SourceOptions & { json: boolean; followSymlinks: boolean; allowSkipped: boolean; allowSettings: boolean }) => {
      withTable(options, false, (table, registry) => {
        const judge = { cacheStatus: cacheStatusOf(registry, table.prefixes), upstreamOf: upstreamOfCache(table.prefixes) };
        state.exitCode = processPaths(paths, judge, {
          write: false,
          json: options.json,
          followSymlinks: options.followSymlinks,
          failOnSkipped: !options.allowSkipped,
          failOnSettings: !options.allowSettings,
        }, io);
      });
    });
  return cli;
}

/** The exit code of an error thrown while running, reported in one line. */
function exitCodeOf(e: unknown, io: Io): number {
  if (e instanceof CommanderError) {
    return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  if (e instanceof UsageError || e instanceof PrefixTableError) {
    io.err(`ecr-ptc: ${escapeText(e.message)}\n`);
    return EXIT_USAGE;
  }
  // a bug: say so in one line, never with a stack trace
  io.err(`ecr-ptc: internal error: ${escapeText(e instanceof Error ? e.message : String(e))}\n`);
  return EXIT_INTERNAL;
}

/**
 * Runs the CLI with the given arguments (without `node` and the script); returns the exit code. Synchronous, so
 * it refuses `--from-account`, which waits for AWS: use `runAsync` for that.
 */
export function run(args: string[], io: Io, deps: Deps = {}): number {
  const state: RunState = { exitCode: EXIT_OK };
  try {
    program(io, deps, state).parse(args, { from: 'user' });
    if (state.pending) {
      state.pending.catch(() => undefined);
      throw new UsageError('--from-account reads the account asynchronously: call runAsync()');
    }
  } catch (e) {
    return exitCodeOf(e, io);
  }
  return state.exitCode;
}

/** Runs the CLI, `--from-account` included; resolves to the exit code. */
export async function runAsync(args: string[], io: Io, deps: Deps = {}): Promise<number> {
  const state: RunState = { exitCode: EXIT_OK };
  try {
    program(io, deps, state).parse(args, { from: 'user' });
    await state.pending;
  } catch (e) {
    return exitCodeOf(e, io);
  }
  return state.exitCode;
}

class UsageError extends Error {}

function checkRegistry(registry: string): string {
  const domain = registry.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (!ECR_REGISTRY_URL.test(domain)) {
    throw new UsageError(`--registry '${registry}' is not a private ECR registry: use <12-digit account>.dkr.ecr.<region>.amazonaws.com`);
  }
  return domain;
}

/**
 * Whether a reference points at the cache: a valid reference, on the cache registry (or, without one, on any
 * private ECR registry), under one of the known cache prefixes. Anything else on the cache registry is not
 * cached, with the reason.
 */
function cacheStatusOf(registry: string | undefined, table: CachePrefix[]): (image: string) => true | false | string {
  const prefixes = [...new Set(table.map(p => p.ecrRepositoryPrefix.replace(/\/$/, '')))];
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
  /** check: an image in a setting (not rewritten, of no known convention) fails the run. */
  readonly failOnSettings?: boolean;
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
  const failed = summary.unserved > 0 || summary.companionsMissing > 0 || summary.failedFiles > 0 || errors.length > 0
    || (options.failOnSkipped === true && incomplete)
    || (options.failOnSettings === true && summary.settings > 0);
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
    // findings, then what was passed over, then the summary: the summary is the last line a user sees
    printFindings(reports, io);
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
      io.err(`ecr-ptc: check is incomplete: ${plural(summary.skipped, 'path')} skipped, ${plural(summary.templateFiles, 'Helm template file')} and `
        + `${plural(summary.leftAlone, 'value')} left alone were not checked; pass --allow-skipped to accept that\n`);
    }
    if (options.failOnSettings && summary.settings > 0) {
      io.err(`ecr-ptc: ${plural(summary.settings, 'image')} in settings (listed above) may be pulled from outside the cache; `
        + 'point them at the cache, or pass --allow-settings to accept them\n');
    }
    printSummary(summary, judge.mapping !== undefined, write, io);
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
  void runAsync(process.argv.slice(2), {
    out: text => process.stdout.write(text),
    err: text => process.stderr.write(text),
    interactive: Boolean(process.stderr.isTTY),
  }).then(code => {
    process.exitCode = code;
  });
}
