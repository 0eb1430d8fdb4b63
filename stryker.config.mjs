// Mutation test of one bundled handler at a time (StrykerJS, jest runner): `npx projen mutation:<handler>`.
// Not in CI: each run takes minutes to tens of minutes. Scores and how to read them: docs/BENCHMARKS.md.
//
// The handler comes from STRYKER_HANDLER (set by each projen task). Only that handler's files are mutated and
// only its own test files run against each mutant (`perTest` coverage picks, per mutant, the tests that reach
// it), one test runner at a time: the development machines are small and shared.

/** Per handler: the source files mutated (the handler and the pure modules only it uses) and its test files. */
const HANDLERS = {
  'scan-trigger': {
    mutate: ['src/scanning/scan-trigger.lambda.ts', 'src/scanning/event-image.ts'],
    tests: ['test/scanning/scan-trigger.test.ts'],
  },
  'findings-report': {
    mutate: ['src/scanning/findings-report.lambda.ts', 'src/scanning/report-text.ts', 'src/scanning/scan-outcomes.ts'],
    tests: ['test/scanning/report-text.test.ts', 'test/scanning/findings-report.test.ts'],
  },
  'cache-health': {
    mutate: ['src/monitoring/cache-health.lambda.ts'],
    tests: ['test/monitoring/cache-health.test.ts'],
  },
  'redrive': {
    mutate: ['src/private/handlers/redrive.ts'],
    tests: ['test/handlers/redrive-decisions.test.ts', 'test/handlers/redrive.test.ts'],
  },
};

const name = process.env.STRYKER_HANDLER ?? '';
const target = HANDLERS[name];
if (!target) {
  throw new Error(`STRYKER_HANDLER is '${name}'; expected one of ${Object.keys(HANDLERS).join(', ')} (run 'npx projen mutation:<handler>')`);
}

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'jest',
  coverageAnalysis: 'perTest',
  mutate: target.mutate,
  jest: {
    projectType: 'custom', // package.json's jest section (ts-jest, global setup), with the overrides below
    enableFindRelatedTests: false,
    config: {
      collectCoverage: false,
      reporters: ['default'],
      testMatch: target.tests.map(file => `<rootDir>/${file}`),
    },
  },
  concurrency: 1,
  timeoutMS: 30000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['coverage', 'test-reports', 'reports', 'lib', 'dist', 'assets', 'examples/cdk.out', 'cdk.out'],
};
