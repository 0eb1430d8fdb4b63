import { execFileSync } from 'child_process';
import { existsSync, mkdirSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join, sep } from 'path';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { removeRunDir } from './jest-global-teardown';
import { ORIGINAL_TMPDIR_VARIABLE, RUN_DIR_VARIABLE, runDir, testApp, testDir } from './util';

describe('the test suite cleans up after itself', () => {
  test('each run has its own folder, and the workers\' temp folder is inside it', () => {
    const run = runDir()!;
    expect(run).toMatch(/cdk-ecr-ptc-jest-\d+-/);
    expect(tmpdir()).toBe(join(run, 'tmp'));
  });

  test('a test App writes its cloud assembly under the run folder, not into the temp folder', () => {
    const app = testApp();
    new Stack(app, 'S');
    Template.fromStack(app.node.findChild('S') as Stack);
    expect(app.outdir.startsWith(join(runDir()!, 'apps') + sep)).toBe(true);
    expect(existsSync(join(app.outdir, 'S.template.json'))).toBe(true);
  });

  test('the teardown removes the run folder, and fails the run when something was left in its temp folder', () => {
    const fake = testDir('fake-run-');
    mkdirSync(join(fake, 'tmp', 'cdk.outAbCdEf'), { recursive: true });
    writeFileSync(join(fake, 'tmp', 'leftover.txt'), 'x');
    mkdirSync(join(fake, 'tmp', 'node-compile-cache-evil'), { recursive: true }); // only the exact cache name is Node's
    expect(() => removeRunDir(fake)).toThrow(/left 3 entries in its temp folder \(cdk\.outAbCdEf, leftover\.txt, node-compile-cache-evil\)/);
    expect(existsSync(fake)).toBe(false);

    const clean = testDir('clean-run-');
    mkdirSync(join(clean, 'tmp', 'v8-compile-cache-0'), { recursive: true }); // ts-node's cache in spawned CLIs: not a leftover
    mkdirSync(join(clean, 'tmp', 'node-compile-cache'), { recursive: true }); // npm's and npx's on Node 22: not a leftover either
    mkdirSync(join(clean, 'apps', 'cdk.out-1'), { recursive: true });
    expect(() => removeRunDir(clean)).not.toThrow();
    expect(existsSync(clean)).toBe(false);
  });

  test('setup and teardown run twice in one process (watch mode, mutation runners), each from the TMPDIR found before', () => {
    // in a process of its own: jest's sandbox gives a test a copy of process.env, which os.tmpdir() does not read
    const base = testDir('outer-tmp-');
    const script = `
      const setup = require('./test/jest-global-setup.ts').default;
      const teardown = require('./test/jest-global-teardown.ts').default;
      const seen = [];
      for (let i = 0; i < 2; i++) {
        setup();
        const run = process.env.${RUN_DIR_VARIABLE};
        const during = require('os').tmpdir();
        teardown();
        seen.push({ run, during, removed: !require('fs').existsSync(run), after: process.env.TMPDIR, runAfter: process.env.${RUN_DIR_VARIABLE} ?? null });
      }
      process.stdout.write(JSON.stringify(seen));`;
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: base, TS_NODE_TRANSPILE_ONLY: 'true' };
    delete env[RUN_DIR_VARIABLE];
    delete env[ORIGINAL_TMPDIR_VARIABLE];
    const out = execFileSync(process.execPath, ['-r', 'ts-node/register', '-e', script], { cwd: join(__dirname, '..'), env, encoding: 'utf-8' });
    const seen = JSON.parse(out) as Array<{ run: string; during: string; removed: boolean; after: string; runAfter: string | null }>;
    expect(seen).toHaveLength(2);
    for (const run of seen) {
      expect(run.run.startsWith(join(base, 'cdk-ecr-ptc-jest-'))).toBe(true);
      expect(run.during).toBe(join(run.run, 'tmp'));
      expect(run).toMatchObject({ removed: true, after: base, runAfter: null });
    }
    expect(seen[0].run).not.toBe(seen[1].run);
  }, 60_000);
});
