/**
 * cfn-lint (the CloudFormation spec's own linter) over synthesized templates, as CI runs it. W3005 (a redundant
 * DependsOn) is emitted by CDK itself for EKS and IAM ordering; nothing else is ignored.
 */
import { execFileSync } from 'child_process';
import { writeFileSync } from 'fs';
import { join } from 'path';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { testDir } from '../util';

/** Lints template files; returns cfn-lint's output ('' when clean), and throws when cfn-lint is missing. */
function cfnLintFiles(files: readonly string[]): string {
  if (files.length === 0) {
    return ''; // cfn-lint would read a template from stdin
  }
  // through python3, not the `cfn-lint` script: after a fresh pip install the script may not be on PATH yet
  const runner = 'import sys; from cfnlint.runner import main; sys.argv[0] = "cfn-lint"; sys.exit(main())';
  try {
    return execFileSync('python3', ['-c', runner, '--ignore-checks', 'W3005', '--', ...files], { encoding: 'utf-8' });
  } catch (e: any) {
    if (/No module named '?cfnlint/.test(String(e.stderr))) {
      throw new Error('cfn-lint is not installed: run `./scripts/install-test-deps` (the README test command does).');
    }
    return `cfn-lint exited ${e.status}:\n${e.stdout}${e.stderr}`;
  }
}

/** Lints templates given as objects (written to a test folder first), and template files beside them. */
export function cfnLint(templates: Readonly<Record<string, object>>, files: readonly string[] = []): string {
  const dir = testDir('cfn-lint-');
  return cfnLintFiles([...Object.entries(templates).map(([name, template]) => {
    const file = join(dir, `${name.replace(/[^A-Za-z0-9-]/g, '_')}.template.json`);
    writeFileSync(file, JSON.stringify(template, null, 1));
    return file;
  }), ...files]);
}

/**
 * `Template.fromStack` for a test file that lints what it synthesizes: each template is kept under its name, and
 * after the file's tests cfn-lint must accept every one of them.
 */
export function lintedTemplates(): (stack: Stack, name: string) => Template {
  const linted: Record<string, object> = {};
  afterAll(() => expect(cfnLint(linted)).toBe(''));
  return (stack, name) => {
    const template = Template.fromStack(stack);
    linted[name] = template.toJSON();
    return template;
  };
}
