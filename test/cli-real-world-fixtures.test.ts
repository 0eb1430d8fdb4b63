/**
 * scripts/real-world-fixtures on a project laid out as CI lays it out: the project, and beside it
 * shared/real-world-fixtures. Run as a program (it is one), offline, on a manifest of three made-up files.
 */
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import { dirname, join } from 'path';
import { testDir } from './util';

const SCRIPT = join(__dirname, '..', 'scripts', 'real-world-fixtures');
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const FILES: Record<string, string> = {
  'chart-a/values.yaml': 'image:\n  repository: quay.io/a/b\n  tag: v1\n',
  'app-b/Dockerfile': 'FROM alpine:3.20\n',
  'kept-away/deploy.yaml': 'kind: Pod\n',
};

/** A project (with the script and a manifest of FILES) and the shared folder beside it, holding `shared`. */
function layout(shared: Record<string, string> | undefined): { project: string; fixtures: string; folder: string } {
  const base = testDir('fixtures-script-');
  const project = join(base, 'project');
  const fixtures = join(project, 'test', 'cli', 'real-world');
  fs.mkdirSync(join(project, 'scripts'), { recursive: true });
  fs.copyFileSync(SCRIPT, join(project, 'scripts', 'real-world-fixtures'));
  fs.mkdirSync(fixtures, { recursive: true });
  fs.writeFileSync(join(fixtures, 'SOURCES.json'), JSON.stringify(Object.entries(FILES).map(([file, text]) => ({
    file, repository: 'example/repo', path: file, commit: '0'.repeat(40), licence: 'MIT', bytes: text.length, sha256: sha256(text), covers: 'test',
  }))));
  const folder = join(base, 'shared', 'real-world-fixtures');
  for (const [file, text] of Object.entries(shared ?? {})) {
    fs.mkdirSync(dirname(join(folder, file)), { recursive: true });
    fs.writeFileSync(join(folder, file), text);
  }
  return { project, fixtures, folder };
}

function runScript(project: string, ...args: string[]) {
  const env = { ...process.env };
  delete env.ECR_PTC_REAL_WORLD_FIXTURES;
  const result = spawnSync(process.execPath, [join(project, 'scripts', 'real-world-fixtures'), '--offline', ...args], { encoding: 'utf-8', env });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

describe('scripts/real-world-fixtures', () => {
  test('takes the files from ../shared/real-world-fixtures beside the project, checks each, and names the missing', () => {
    const { project, fixtures } = layout({ 'chart-a/values.yaml': FILES['chart-a/values.yaml'], 'app-b/Dockerfile': FILES['app-b/Dockerfile'] });

    const first = runScript(project);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/2 of 3 files verified .*2 from .*shared[/\\]real-world-fixtures/);
    expect(first.out).toMatch(/1 missing.*\n {2}kept-away\/deploy\.yaml \(not in .*; not fetched \(--offline\)\)/);
    expect(fs.readFileSync(join(fixtures, 'app-b', 'Dockerfile'), 'utf-8')).toBe(FILES['app-b/Dockerfile']);
    expect(fs.existsSync(join(fixtures, 'kept-away', 'deploy.yaml'))).toBe(false);

    // a second run finds them in place
    expect(runScript(project).out).toMatch(/2 of 3 files verified .*\(2 already there, 0 from/);
  });

  test('a file in the shared folder whose bytes differ is refused, named with both hashes, and never copied', () => {
    const { project, fixtures, folder } = layout({ 'chart-a/values.yaml': FILES['chart-a/values.yaml'], 'app-b/Dockerfile': 'FROM alpine:latest\n' });

    const result = runScript(project);
    expect(result.code).toBe(1);
    expect(result.err).toContain(`${join(folder, 'app-b', 'Dockerfile')}: sha256 ${sha256('FROM alpine:latest\n')}, SOURCES.json pins ${sha256(FILES['app-b/Dockerfile'])}`);
    expect(fs.existsSync(join(fixtures, 'app-b', 'Dockerfile'))).toBe(false);
    expect(fs.readFileSync(join(fixtures, 'chart-a', 'values.yaml'), 'utf-8')).toBe(FILES['chart-a/values.yaml']);
  });

  test('a file already in test/cli/real-world that was changed is an error, and is left as it is', () => {
    const { project, fixtures } = layout({ 'chart-a/values.yaml': FILES['chart-a/values.yaml'] });
    expect(runScript(project).code).toBe(0);
    fs.appendFileSync(join(fixtures, 'chart-a', 'values.yaml'), '# edited\n');

    const result = runScript(project);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/chart-a[/\\]values\.yaml: sha256 [0-9a-f]{64}, SOURCES\.json pins .*delete it and run again/);
    expect(fs.readFileSync(join(fixtures, 'chart-a', 'values.yaml'), 'utf-8')).toContain('# edited');
  });

  test('with no file anywhere it fails and says where the files are looked for', () => {
    const { project } = layout(undefined);
    const result = runScript(project);
    expect(result.code).toBe(1);
    expect(result.out).toMatch(/0 of 3 files verified .*\(absent\)/);
    expect(result.err).toMatch(/no fixture file is here; lay them out in .*shared[/\\]real-world-fixtures/);
  });

  test('--from-folder names another folder, and a named folder that does not exist is a usage error', () => {
    const { project, fixtures } = layout(undefined);
    const elsewhere = testDir('fixtures-elsewhere-');
    fs.mkdirSync(join(elsewhere, 'app-b'));
    fs.writeFileSync(join(elsewhere, 'app-b', 'Dockerfile'), FILES['app-b/Dockerfile']);

    const result = runScript(project, '--from-folder', elsewhere);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/1 of 3 files verified/);
    expect(fs.readFileSync(join(fixtures, 'app-b', 'Dockerfile'), 'utf-8')).toBe(FILES['app-b/Dockerfile']);

    const absent = runScript(project, '--from-folder', join(elsewhere, 'nope'));
    expect(absent.code).toBe(2);
    expect(absent.err).toMatch(/the fixtures folder .*nope does not exist \(from --from-folder\)/);
  });
});
