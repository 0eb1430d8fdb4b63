import { existsSync, mkdirSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join, sep } from 'path';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { removeRunDir } from './jest-global-teardown';
import { runDir, testApp, testDir } from './util';

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
    expect(() => removeRunDir(fake)).toThrow(/left 2 entries in its temp folder \(cdk\.outAbCdEf, leftover\.txt\)/);
    expect(existsSync(fake)).toBe(false);

    const clean = testDir('clean-run-');
    mkdirSync(join(clean, 'tmp', 'v8-compile-cache-0'), { recursive: true }); // ts-node's cache in spawned CLIs: not a leftover
    mkdirSync(join(clean, 'apps', 'cdk.out-1'), { recursive: true });
    expect(() => removeRunDir(clean)).not.toThrow();
    expect(existsSync(clean)).toBe(false);
  });
});
