#!/usr/bin/env node
/**
 * ecr-ptc: move Kubernetes manifests, Helm values, Dockerfiles and compose files onto the ECR pull through cache.
 *
 *   ecr-ptc rewrite <files or folders...> --registry <account>.dkr.ecr.<region>.amazonaws.com [--prefix host=prefix ...] [--dry-run] [--json]
 *   ecr-ptc check   <files or folders...> [--registry <account>.dkr.ecr.<region>.amazonaws.com] [--json]
 */
import { readFileSync } from 'fs';
import { Command, CommanderError, Option } from 'commander';
import { CachePrefix, ImageMapping } from '../image-mapping';
import { FileKind, findFiles, writeAtomically } from './files';
import { FileResult, Finding, Judge, Outcome, registryOf, rewriteDockerfile, rewriteYaml } from './rewrite';
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
    .option('--json', 'print a JSON report instead of text', false)
    .action((paths: string[], options: { registry: string; prefix: string[]; dryRun: boolean; json: boolean }) => {
      const mapping = new ImageMapping({ registryDomain: checkRegistry(options.registry), prefixes: prefixTable(options.prefix) });
      // the cheap prefix test only: mapping.map parses the reference and recognises the cache registry itself
      const isCached = (image: string) => image.startsWith(`${mapping.registryDomain}/`);
      exitCode = processPaths(paths, { mapping, isCached }, !options.dryRun, options.json, io);
    });

  program.command('check')
    .description('list every image reference that does not point at the cache; exit 1 if there is any')
    .argument('<paths...>', 'files or folders')
    .option('--registry <domain>', 'the cache registry (default: any private ECR registry counts as the cache)')
    .option('--json', 'print a JSON report instead of text', false)
    .action((paths: string[], options: { registry?: string; json: boolean }) => {
      const registry = options.registry === undefined ? undefined : checkRegistry(options.registry);
      const isCached = (image: string) => registry !== undefined ? cachedIn(image, registry) : ECR_REGISTRY_URL.test(registryOf(image) ?? '');
      exitCode = processPaths(paths, { isCached }, false, options.json, io);
    });

  try {
    program.parse(args, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (e instanceof UsageError) {
      io.err(`ecr-ptc: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
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

function cachedIn(image: string, domain: string): boolean {
  return image.startsWith(`${domain}/`) || registryOf(image) === domain;
}

function processFile(text: string, kind: FileKind, judge: Judge): FileResult {
  return kind === FileKind.DOCKERFILE ? rewriteDockerfile(text, judge) : rewriteYaml(text, judge);
}

function processPaths(paths: string[], judge: Judge, write: boolean, json: boolean, io: Io): number {
  const files = findFiles(paths);
  const reports: FileReport[] = [];
  const showProgress = io.interactive && !json && files.length > 200;
  files.forEach((file, index) => {
    if (showProgress && index % 100 === 0) {
      io.err(`\rscanning ${index}/${files.length} files`);
    }
    if (!file.kind) {
      reports.push({ path: file.path, findings: [], changed: false, error: { line: 0, reason: file.problem!, template: false } });
      return;
    }
    let text: string;
    try {
      text = readFileSync(file.path, 'utf-8');
    } catch (e) {
      reports.push({ path: file.path, findings: [], changed: false, error: { line: 0, reason: (e as Error).message, template: false } });
      return;
    }
    const result = processFile(text, file.kind, judge);
    const changed = !result.error && result.output !== text;
    if (changed && write) {
      writeAtomically(file.path, result.output);
    }
    reports.push({ path: file.path, findings: result.findings, changed, error: result.error });
  });
  if (showProgress) {
    io.err(`\rscanned ${files.length}/${files.length} files\n`);
  }
  const summary = summarize(reports, files.filter(f => f.kind).length);
  if (json) {
    io.out(`${JSON.stringify({ dryRun: judge.mapping ? !write : undefined, summary, files: reports }, null, 2)}\n`);
  } else {
    printText(reports, summary, judge.mapping !== undefined, write, io);
  }
  return summary.unserved > 0 || summary.failedFiles > 0 ? EXIT_FINDINGS : EXIT_OK;
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
}

function summarize(reports: FileReport[], filesScanned: number): Summary {
  const all = reports.flatMap(r => r.findings);
  const count = (outcome: Outcome) => all.filter(f => f.outcome === outcome).length;
  return {
    filesScanned,
    filesChanged: reports.filter(r => r.changed).length,
    rewritten: count(Outcome.REWRITTEN),
    cached: count(Outcome.CACHED),
    unserved: count(Outcome.UNSERVED),
    leftAlone: count(Outcome.LEFT_ALONE),
    failedFiles: reports.filter(r => r.error && !r.error.template).length,
    templateFiles: reports.filter(r => r.error?.template).length,
  };
}

function printText(reports: FileReport[], s: Summary, rewriting: boolean, write: boolean, io: Io): void {
  for (const report of reports) {
    if (report.error) {
      io.err(`${report.path}${report.error.line > 0 ? `:${report.error.line}` : ''}: ${report.error.reason}\n`);
    }
    for (const f of report.findings) {
      const where = `${report.path}:${f.line}`;
      if (f.outcome === Outcome.REWRITTEN) {
        io.out(`${where}: ${f.image} -> ${f.uri}${f.note ? ` (warning: ${f.note})` : ''}\n`);
      } else if (f.outcome === Outcome.UNSERVED) {
        io.out(`${where}: ${f.image}: ${f.note?.split('. Supported upstreams')[0]}\n`);
      } else if (f.outcome === Outcome.LEFT_ALONE) {
        io.out(`${where}: ${f.image}: left alone: ${f.note}\n`);
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
  ].join(', ') + '\n');
}

if (require.main === module) {
  process.exitCode = run(process.argv.slice(2), {
    out: text => process.stdout.write(text),
    err: text => process.stderr.write(text),
    interactive: Boolean(process.stderr.isTTY),
  });
}
