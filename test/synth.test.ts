import { execFileSync } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Template } from 'aws-cdk-lib/assertions';
import { SCENARIOS } from './scenarios';

const templates = Object.fromEntries(Object.entries(SCENARIOS).map(([name, make]) => [name, Template.fromStack(make()).toJSON()]));

/** Asset hashes change with every edit of a bundled handler; the snapshots pin the template, not the bundle bytes. */
function withoutAssetHashes(template: object): object {
  return JSON.parse(JSON.stringify(template).replace(/\b[0-9a-f]{64}\.zip\b/g, '<asset hash>.zip'));
}

describe('snapshots (CI never rewrites them: `npx projen test:update` after a deliberate change)', () => {
  test.each(Object.keys(SCENARIOS))('%s', name => {
    expect(withoutAssetHashes(templates[name])).toMatchSnapshot();
  });
});

test('cfn-lint finds no error or warning in any synthesized template', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfn-lint-'));
  try {
    const files = Object.entries(templates).map(([name, template]) => {
      const file = join(dir, `${name}.template.json`);
      writeFileSync(file, JSON.stringify(template, null, 1));
      return file;
    });
    // the committed integ snapshot a user would deploy (its DeployAssert stack has no Resources: left out)
    files.push(join(__dirname, 'integ.pull-through-cache.ts.snapshot', 'PullThroughCacheIntegStack.template.json'));
    let output = '';
    try {
      // W3005 (redundant DependsOn) is emitted by CDK itself for EKS and IAM ordering; nothing else is ignored.
      // through python3, not the `cfn-lint` script: after a fresh pip install the script may not be on PATH yet
      const cfnLint = 'import sys; from cfnlint.runner import main; sys.argv[0] = "cfn-lint"; sys.exit(main())';
      output = execFileSync('python3', ['-c', cfnLint, '--ignore-checks', 'W3005', '--', ...files], { encoding: 'utf-8' });
    } catch (e: any) {
      if (/No module named '?cfnlint/.test(String(e.stderr))) {
        throw new Error('cfn-lint is not installed: run `./scripts/install-test-deps` (the README test command does).');
      }
      output = `${e.stdout}${e.stderr}`;
      throw new Error(`cfn-lint exited ${e.status}:\n${output}`);
    }
    expect(output).toBe('');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
