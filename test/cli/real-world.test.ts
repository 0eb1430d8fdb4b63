/**
 * ecr-ptc on real files: every fixture of test/cli/real-world/SOURCES.json (Helm values and templates, rendered
 * manifests, compose files, Dockerfiles from public repositories, brought in by scripts/real-world-fixtures) is
 * rewritten with a fixed registry and the prefix table of a cloud assembly synthesized here, and compared with its
 * golden file in test/cli/real-world-golden/.
 *
 * The fixtures are other projects' files and are not committed, so a golden holds no copy of one: it names the
 * source, the sha256 of the input and of the rewritten output (so the comparison is byte for byte), every finding,
 * and every changed line before and after (the only bytes a rewrite may change). `npx projen test:golden` writes the
 * goldens (never in CI); review them by hand before committing.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import { dirname, join, relative } from 'path';
import { Stack } from 'aws-cdk-lib';
import { parse } from 'yaml';
import { PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../../src';
import { EXIT_FINDINGS, EXIT_OK, run } from '../../src/cli/main';
import { testApp, testDir } from '../util';

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const FIXTURES = join(__dirname, 'real-world');
const GOLDEN = join(__dirname, 'real-world-golden');
const WRITE = process.env.ECR_PTC_WRITE_GOLDEN === '1';

interface Source { file: string; repository: string; path: string; commit: string; licence: string; sha256: string; covers: string }
interface JsonFinding { line: number; image: string; outcome: string; uri?: string; note?: string }
interface JsonFile { path: string; findings: JsonFinding[]; changed: boolean; error?: { line: number; reason: string; template: boolean } }
/** The counts SUMMARY.txt shows. */
interface SummaryCounts {
  files: number;
  filesChanged: number;
  rewritten: number;
  unserved: number;
  leftAlone: number;
  settings: number;
  companionsSet: number;
  companionsMissing: number;
  templateFiles: number;
  failedFiles: number;
  cached: number;
}
interface JsonReport { summary: Omit<SummaryCounts, 'files'>; files: JsonFile[] }

const sources: Source[] = JSON.parse(fs.readFileSync(join(FIXTURES, 'SOURCES.json'), 'utf-8'));
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

function cli(args: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = run(args, { out: t => { out += t; }, err: t => { err += t; }, interactive: false });
  return { code, out, err };
}

/** The cache the goldens are written for: Docker Hub, Quay, registry.k8s.io, ECR Public and GHCR, no GitLab. */
function cloudAssembly(): string {
  const app = testApp();
  new PullThroughCacheRules(new Stack(app, 'Cache', { env: { account: '111122223333', region: 'eu-west-1' } }), 'Rules', {
    upstreams: [
      UpstreamRegistry.ecrPublic(),
      UpstreamRegistry.kubernetes(),
      UpstreamRegistry.quay(),
      UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
      UpstreamRegistry.githubContainerRegistry({ credentials: UpstreamCredentials.createSecret() }),
    ],
  });
  return app.synth().directory;
}

/** A line of a golden: control characters and non-ASCII escaped, so a golden is plain text whatever the file holds. */
function shown(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, c => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}

function findingText(f: JsonFinding): string {
  const where = `${f.line}: ${f.outcome} ${shown(f.image)}`;
  return f.uri ? `${where} -> ${shown(f.uri)}${f.note ? ` (${shown(f.note)})` : ''}` : `${where}${f.note ? `: ${shown(f.note.split('. Supported upstreams')[0])}` : ''}`;
}

/** The golden of one file: its source, both hashes, the findings, and each changed line before and after. */
function golden(source: Source, input: string, output: string, report: JsonFile | undefined): string {
  const before = input.split('\n');
  const after = output.split('\n');
  if (before.length !== after.length) {
    throw new Error(`${source.file}: the rewrite changed the number of lines (${before.length} -> ${after.length})`);
  }
  const changes = before.flatMap((line, i) => line === after[i] ? [] : [`${i + 1}- ${shown(line)}`, `${i + 1}+ ${shown(after[i])}`]);
  return [
    `source: ${source.repository} ${source.path} @ ${source.commit} (${source.licence})`,
    `input sha256: ${sha256(input)}`,
    `output sha256: ${sha256(output)}${output === input ? ' (unchanged)' : ''}`,
    ...(report?.error ? [`refused: ${report.error.line}: ${shown(report.error.reason)}`] : []),
    `findings: ${report?.findings.length ?? 0}`,
    ...(report?.findings ?? []).map(f => `  ${findingText(f)}`),
    `changed lines: ${changes.length / 2}`,
    ...changes.map(c => `  ${c}`),
    '',
  ].join('\n');
}

const missing = sources.filter(s => !fs.existsSync(join(FIXTURES, s.file)));
const present = sources.filter(s => !missing.includes(s));
const FETCH = 'Bring them in with scripts/real-world-fixtures (from ../shared/real-world-fixtures beside the project, '
  + '--from-folder DIR, GitHub, or --from-clones DIR).';
if (missing.length > 0) {
  // the fixtures are other projects' files, brought in by scripts/install-test-deps; which ones are missing is said
  // here, loudly, whether the test then runs on the others or (none present) shows as skipped
  // eslint-disable-next-line no-console
  console.warn(`${present.length === 0 ? 'SKIPPED' : 'INCOMPLETE'}: ecr-ptc on real files: ${missing.length} of ${sources.length} fixtures `
    + `are missing (${missing.map(s => s.file).join(', ')}). ${FETCH}`);
}

if (present.length === 0 && process.env.CI) {
  // CI lays the fixtures out beside the project: a CI run without any of them is a broken set-up, not a pass
  test('ecr-ptc on real files: CI has the fixtures', () => {
    throw new Error(`none of the ${sources.length} real-world fixtures is in test/cli/real-world and CI=true. ${FETCH}`);
  });
}
const withFixtures = present.length === 0 ? describe.skip : describe;

/** What a golden says of its file: whether the rewrite changed it, and its findings' outcomes. */
function goldenCounts(text: string): { changed: boolean; outcomes: string[] } {
  return {
    changed: !/^output sha256: .* \(unchanged\)$/m.test(text),
    outcomes: [...text.matchAll(/^ {2}\d+: ([a-z-]+) /gm)].map(m => m[1]),
  };
}

withFixtures(`ecr-ptc on real files (test/cli/real-world: ${present.length} of ${sources.length})`, () => {
  test('every fixture that is here is byte for byte as SOURCES.json pins it', () => {
    for (const source of present) {
      expect(`${source.file} ${sha256(fs.readFileSync(join(FIXTURES, source.file)))}`).toBe(`${source.file} ${source.sha256}`);
    }
    expect(sources.length).toBeGreaterThanOrEqual(35);
  });

  test('rewrite matches the goldens byte for byte, a second run is a no-op, and check passes only what was moved', () => {
    if (WRITE && process.env.CI) {
      throw new Error('ECR_PTC_WRITE_GOLDEN is for a developer reviewing goldens, never for CI');
    }
    const cdkOut = cloudAssembly();
    const tree = testDir('real-world-');
    for (const source of present) {
      fs.mkdirSync(join(tree, dirname(source.file)), { recursive: true });
      fs.copyFileSync(join(FIXTURES, source.file), join(tree, source.file));
    }
    const args = ['--registry', REGISTRY, '--from-cdk-out', cdkOut, '--json'];

    const original = cli(['check', tree, ...args]);
    expect(original.code).toBe(EXIT_FINDINGS);

    const first = cli(['rewrite', tree, ...args]);
    const report = JSON.parse(first.out) as JsonReport;
    const byFile = new Map(report.files.map(f => [relative(tree, f.path), f]));
    const goldens = new Map(present.map(source => [source.file, golden(source,
      fs.readFileSync(join(FIXTURES, source.file), 'utf-8'), fs.readFileSync(join(tree, source.file), 'utf-8'), byFile.get(source.file))]));
    const summary = report.summary;
    const summaryText = (s: SummaryCounts) => [
      `files: ${s.files} (${s.filesChanged} changed)`,
      `images moved: ${s.rewritten}`,
      `reported: ${s.unserved} not served, ${s.leftAlone} left alone, ${s.settings} in settings, ${s.templateFiles} template files, ${s.failedFiles} refused`,
      `already cached: ${s.cached}`,
      `chart values beside moved images (Bitnami's allowInsecureImages): ${s.companionsSet} added, ${s.companionsMissing} left as written and reported`,
      '',
    ].join('\n');
    const measured = summaryText({ files: present.length, ...summary });
    if (WRITE) {
      // the goldens of missing fixtures are kept: only a complete set rewrites SUMMARY.txt and drops stale goldens
      if (missing.length === 0) {
        fs.rmSync(GOLDEN, { recursive: true, force: true });
      }
      for (const [file, text] of goldens) {
        fs.mkdirSync(join(GOLDEN, dirname(file)), { recursive: true });
        fs.writeFileSync(join(GOLDEN, `${file}.golden`), text);
      }
      if (missing.length === 0) {
        fs.writeFileSync(join(GOLDEN, 'SUMMARY.txt'), measured);
      }
    }
    // what CI's log shows: how many files and images the test ran on
    const images = report.files.reduce((n, f) => n + f.findings.length, 0);
    // eslint-disable-next-line no-console
    console.log(`ecr-ptc on ${present.length} of ${sources.length} real files, ${images} images: ${measured.trim().split('\n').join('; ')}`
      + (missing.length > 0 ? ` (missing: ${missing.map(s => s.file).join(', ')})` : ''));
    for (const [file, text] of goldens) {
      expect(`${file}\n${text}`).toBe(`${file}\n${fs.readFileSync(join(GOLDEN, `${file}.golden`), 'utf-8')}`);
    }
    expect(fs.readdirSync(GOLDEN, { recursive: true }).filter(f => String(f).endsWith('.golden')).length).toBe(sources.length);
    // the summary of the files that are here is the sum of their goldens; SUMMARY.txt is that of the whole set
    const fromGoldens = [...goldens.values()].map(goldenCounts);
    const outcomes = fromGoldens.flatMap(g => g.outcomes);
    const count = (outcome: string) => outcomes.filter(o => o === outcome).length;
    expect(measured).toBe(summaryText({
      files: present.length,
      filesChanged: fromGoldens.filter(g => g.changed).length,
      rewritten: count('rewritten'),
      unserved: count('unserved'),
      leftAlone: count('left-alone'),
      settings: count('setting'),
      cached: count('cached'),
      companionsSet: count('companion-set'),
      companionsMissing: count('companion-missing'),
      templateFiles: summary.templateFiles,
      failedFiles: summary.failedFiles,
    }));
    expect(summary.templateFiles + summary.failedFiles).toBe([...goldens.values()].filter(g => /^refused: /m.test(g)).length);
    if (missing.length === 0) {
      expect(measured).toBe(fs.readFileSync(join(GOLDEN, 'SUMMARY.txt'), 'utf-8'));
    }

    // a second run changes nothing
    const snapshot = present.map(s => fs.readFileSync(join(tree, s.file), 'utf-8'));
    const second = JSON.parse(cli(['rewrite', tree, ...args]).out) as JsonReport;
    expect(second.summary.rewritten).toBe(0);
    expect(second.summary.filesChanged).toBe(0);
    expect(present.map(s => fs.readFileSync(join(tree, s.file), 'utf-8'))).toEqual(snapshot);

    // check on the rewritten tree: every moved image is cached, and what is still reported is exactly what rewrite
    // reported as not servable or left alone
    const checked = JSON.parse(cli(['check', tree, ...args]).out) as JsonReport;
    const key = (file: JsonFile, f: JsonFinding) => `${relative(tree, file.path)}:${f.line}: ${f.image}`;
    const rewritten = report.files.flatMap(file => file.findings.filter(f => f.outcome === 'rewritten').map(f => `${relative(tree, file.path)}:${f.line}`));
    const cachedAfter = new Set(checked.files.flatMap(file => file.findings.filter(f => f.outcome === 'cached').map(f => `${relative(tree, file.path)}:${f.line}`)));
    expect(rewritten.filter(r => !cachedAfter.has(r))).toEqual([]);
    // (a map held whole is "left alone" to rewrite and "not served" to check, which judges it as it stands; a chart
    // value rewrite added is there for check, which says nothing of it)
    const notMoved = (r: JsonReport) => r.files.flatMap(file => file.findings
      .filter(f => f.outcome !== 'rewritten' && f.outcome !== 'cached' && f.outcome !== 'companion-set')
      .map(f => key(file, f))).sort();
    expect(notMoved(checked)).toEqual(notMoved(report));

    // and per file: check exits 0 on a rewritten file that had nothing left to report, non-zero on its original
    const clean = report.files.filter(f => f.changed && !f.error && f.findings.every(x => x.outcome === 'rewritten' || x.outcome === 'cached'));
    expect(clean.length).toBeGreaterThan(0);
    for (const file of clean) {
      const name = relative(tree, file.path);
      expect(`${name} ${cli(['check', file.path, ...args]).code}`).toBe(`${name} ${EXIT_OK}`);
      expect(`${name} ${cli(['check', join(FIXTURES, name), ...args]).code}`).toBe(`${name} ${EXIT_FINDINGS}`);
    }
  }, 120_000);

  // Bitnami's own values.yaml says allowInsecureImages: false, so the goldens show it reported, not set: here the
  // two shapes a user's copy has instead, on the real files (their comments, nesting and length)
  const bitnami = present.filter(s => s.file.startsWith('bitnami-') && s.file.endsWith('values.yaml'));
  test.each(bitnami.map(s => s.file))('%s: set to true by its user, rewrite adds nothing and check has no chart value to ask for', file => {
    const path = join(testDir('bitnami-true-'), 'values.yaml');
    fs.writeFileSync(path, fs.readFileSync(join(FIXTURES, file), 'utf-8').replace(/allowInsecureImages: false$/m, 'allowInsecureImages: true'));
    const args = [path, '--registry', REGISTRY, '--json'];
    const rewritten = JSON.parse(cli(['rewrite', ...args]).out) as JsonReport;
    expect(rewritten.files[0].findings.filter(f => f.outcome.startsWith('companion-'))).toEqual([]);
    expect(rewritten.summary.rewritten).toBeGreaterThan(0);
    const checked = JSON.parse(cli(['check', ...args]).out) as JsonReport;
    expect(checked.files[0].findings.filter(f => f.outcome.startsWith('companion-'))).toEqual([]);
  });

  test.each(bitnami.map(s => s.file))('%s: without global.security, rewrite adds it inside global, every other line kept in order', file => {
    const original = fs.readFileSync(join(FIXTURES, file), 'utf-8').split('\n');
    // the security: line and the lines under it, as a user who removed the section has it
    const at = original.findIndex(l => /^ {2}security:$/.test(l));
    const end = original.findIndex((l, i) => i > at && !/^ {4}/.test(l));
    const input = [...original.slice(0, at), ...original.slice(end)];
    const path = join(testDir('bitnami-nosecurity-'), 'values.yaml');
    fs.writeFileSync(path, input.join('\n'));
    const report = JSON.parse(cli(['rewrite', path, '--registry', REGISTRY, '--json']).out) as JsonReport;
    const output = fs.readFileSync(path, 'utf-8').split('\n');
    const [set] = report.files[0].findings.filter(f => f.outcome === 'companion-set');
    expect(set).toEqual(expect.objectContaining({ image: 'global.security.allowInsecureImages', uri: 'true' }));
    // its line is the first line added
    expect(output.slice(set.line - 1, set.line + 1)).toEqual(['  security:', '    allowInsecureImages: true']);
    expect([...output.slice(0, set.line - 1), ...output.slice(set.line + 1)].map(l => l.replace(/(registry|repository): .*/, '$1')))
      .toEqual(input.map(l => l.replace(/(registry|repository): .*/, '$1')));
    expect(parse(output.join('\n')).global.security).toEqual({ allowInsecureImages: true });
    expect(cli(['check', path, '--registry', REGISTRY, '--json']).out).not.toMatch(/companion-missing/);
  });
});
