import { join } from 'path';
import { Template } from 'aws-cdk-lib/assertions';
import { SCENARIOS } from './scenarios';
import { cfnLint } from './support/cfn-lint';

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
  // and the committed integ snapshot a user would deploy (its DeployAssert stack has no Resources: left out)
  const integ = join(__dirname, 'integ.pull-through-cache.ts.snapshot', 'PullThroughCacheIntegStack.template.json');
  expect(cfnLint(templates, [integ])).toBe('');
});
