import { JsonFile, awscdk, javascript } from 'projen';

/**
 * The AWS SDK clients the bundled Lambda handlers use. They are devDependencies: esbuild inlines them
 * into each handler's asset at build time, so users need neither esbuild nor Docker (see docs/BENCHMARKS.md
 * for why the SDK is bundled rather than taken from the Lambda runtime).
 */
const AWS_SDK_VERSION = '^3.1164.0'; // the lock file pins the exact versions that were tested

/**
 * esbuild settings of every bundled handler: the SDK inlined (`externals: []` replaces projen's default of
 * leaving `@aws-sdk/*` to the runtime), minified, no source map, and the packages' ES module builds
 * (`mainFields`), which esbuild can tree-shake: the ECR client's unused operations drop out (497 KB -> 325 KB).
 * projen passes these straight to its bundler, whose option type (`AddBundleOptions`) is wider than the
 * lambda option's (`BundlingOptions`), hence the variable.
 */
const HANDLER_BUNDLING: Omit<javascript.AddBundleOptions, 'target' | 'platform'> = {
  externals: [], minify: true, sourcemap: false, mainFields: ['module', 'main'],
};

/**
 * The oldest aws-cdk-lib we support, set by what the library itself calls:
 * - `Validations.ACKNOWLEDGED_RULES_METADATA_KEY` (src/private/acknowledge.ts), added by aws/aws-cdk#37668
 *   (the `Validations` class, April 2026); `ecr.IPullThroughCacheRuleRef`, `aws-eks-v2` and
 *   `Annotations.addWarningV2` are older. The exact first release with #37668 is not pinned down here, so the
 *   floor stays at the oldest release the whole suite runs on, 2.257.0, which also suits the tools:
 * - cdk-nag 3 (our AwsSolutions test) needs aws-cdk-lib >= 2.257.0;
 * - 2.257.0 writes cloud-assembly schema 53, the newest that integ-runner 2.197.x reads, so the
 *   integ snapshots are verified by the real integ-runner (2.260+ writes schema 54/55 and it refuses).
 * projen pins the dev copy to this floor, so every test runs against the oldest CDK a user may have.
 */
const CDK_FLOOR = '2.257.0';

/**
 * The Lambda runtime of every bundled handler, and so the Node.js their tests run on (task `test:handlers`): the
 * handler tests run on this major version, fetched as the npm package `node@<major>` (no other download), whatever
 * Node.js runs the rest of the build. Change the runtime here and the tests follow.
 */
const HANDLER_RUNTIME = awscdk.LambdaRuntime.NODEJS_22_X;
const HANDLER_NODE_MAJOR = /^nodejs(\d+)\.x$/.exec(HANDLER_RUNTIME.functionRuntime)![1];

/**
 * The Node.js versions users may run the library on: aws-cdk-lib's own `engines` (>= 20), each major synthesized in
 * CI (task `example:synth:all-nodes`).
 */
const USER_NODE_MAJORS = ['20', '22', '24'];

const project = new awscdk.AwsCdkConstructLibrary({
  name: 'cdk-ecr-pull-through-cache',
  description: 'Amazon ECR pull through cache as a CDK construct: rules, credentials, repository templates and least-privilege pull grants for EKS and ECS.',
  keywords: ['cdk', 'awscdk', 'aws-cdk', 'ecr', 'pull-through-cache', 'eks', 'ecs', 'container-registry', 'docker-hub'],
  author: 'cdk-ecr-pull-through-cache maintainers',
  authorAddress: 'maintainers@cdkecrptc.github.io',
  repositoryUrl: 'https://github.com/cdkecrptc/cdk-ecr-pull-through-cache.git',
  license: 'Apache-2.0',
  defaultReleaseBranch: 'main',
  projenrcTs: true,
  packageManager: javascript.NodePackageManager.NPM,
  cdkVersion: CDK_FLOOR,
  jsiiVersion: '~6.0.0',
  sampleCode: false,

  publishToPypi: {
    distName: 'cdk-ecr-pull-through-cache',
    module: 'cdk_ecr_pull_through_cache',
  },
  publishToMaven: {
    javaPackage: 'io.github.cdkecrptc',
    mavenGroupId: 'io.github.cdkecrptc',
    mavenArtifactId: 'cdk-ecr-pull-through-cache',
  },

  // integ tests are `test/integ.*.ts`, run by integ-runner (task `integ` below), not projen's own scheme.
  integrationTestAutoDiscover: false,

  // The ecr-ptc CLI's runtime dependencies. jsii libraries must bundle non-jsii dependencies; commander 14
  // is the newest line that supports Node.js 20.
  bundledDeps: ['yaml@^2.9.1', 'commander@^14.0.3'],
  bin: { 'ecr-ptc': 'lib/cli/main.js' },
  devDeps: [
    'fast-check@^4.11.0',
    '@aws-cdk/lambda-layer-kubectl-v35',
    'aws-cdk@^2.1148.0',
    'cdk-nag@^3.0.2',
    '@aws-cdk/integ-runner@2.197.10',
    '@aws-cdk/integ-tests-alpha@2.245.0-alpha.0',
    `@aws-sdk/client-cloudwatch@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-ecr@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-secrets-manager@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-sns@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-sqs@${AWS_SDK_VERSION}`, // the mirror's work and dead-letter queues; tests read what a handler published to SNS
    '@types/aws-lambda',
    'aws-sdk-client-mock@^4.1.0',
    // mutation testing of the handlers (tasks mutation:<handler>, stryker.config.mjs); never run in CI
    '@stryker-mutator/core@9.6.1',
    '@stryker-mutator/jest-runner@9.6.1',
  ],

  // Handlers under src/**/*.lambda.ts are bundled by esbuild into assets/<path>.lambda/index.js and shipped in
  // the npm package, the wheel and the jar. Node.js 22 on purpose: the newest runtime every commercial Region
  // has, and the one the bundle targets.
  lambdaOptions: {
    runtime: HANDLER_RUNTIME,
    bundlingOptions: HANDLER_BUNDLING,
  },

  jestOptions: {
    // CI must fail when a synthesized template changes; `npx projen test:update` updates snapshots on purpose.
    updateSnapshot: javascript.UpdateSnapshot.NEVER,
    // a run that finds no test is a failure, not a pass
    passWithNoTests: false,
    jestConfig: {
      testPathIgnorePatterns: ['/node_modules/', '\\.snapshot/', '/examples/cdk\\.out/'],
      // every run gets its own temp folder, removed afterwards; a test that leaves anything in it fails the run
      globalSetup: '<rootDir>/test/jest-global-setup.ts',
      globalTeardown: '<rootDir>/test/jest-global-teardown.ts',
    },
  },

  tsconfigDev: {
    include: ['../examples/**/*.ts', '../bench/**/*.ts'],
    compilerOptions: {},
  },
  eslintOptions: {
    dirs: ['src'],
    devdirs: ['test', 'examples', 'bench', 'projenrc', '.projenrc.ts'],
  },

  gitignore: [
    '.jsii.tabl.json',
    'cdk.out/',
    'cdk.out.organization/',
    'test/*.snapshot/asset.*',
    '.venv/',
    '__pycache__/',
  ],
});

// What users need: aws-cdk-lib's own `engines` (Node.js >= 20), each major from there on synthesized in CI. Not projen's
// `minNodeVersion`, which would also pin @types/node to that major.
project.package.addEngine('node', `>= ${USER_NODE_MAJORS[0]}.0.0`);

// examples/ and bench/ are type-checked (and linted) with the test settings; eslint's project service
// finds the nearest tsconfig.json, so each folder gets one.
for (const dir of ['examples', 'bench']) {
  new JsonFile(project, `${dir}/tsconfig.json`, {
    obj: { extends: '../test/tsconfig.json', include: ['**/*.ts', '../src/**/*.ts', '../test/**/*.ts'] },
  });
}

// The CLI reads the account's rules (`ecr-ptc --from-account`) with the ECR client: that one module is bundled on
// its own with the SDK inlined (assets/cli/account-rules/index.js, shipped in the package) and loaded only when
// the account is asked for. Node.js 20, the oldest the CLI supports.
project.bundler.addBundle('./src/cli/account-rules.ts', { ...HANDLER_BUNDLING, platform: 'node', target: 'node20' });
project.eslint?.allowDevDeps('src/cli/account-rules.ts'); // esbuild inlines the SDK, as in the handlers
project.eslint?.allowDevDeps('src/private/handlers/**'); // code the handlers share: bundled into each, never imported by a construct
// lib/cli/account-rules.js is what the bundle is made from: it requires the SDK, which the package does not have
project.addPackageIgnore('/lib/cli/account-rules.*');

// The CLI's golden files are byte-exact (one is CRLF on purpose): git must not normalise their line endings.
project.gitattributes.addAttributes('/test/cli/fixtures/**', '-text');

// The real-world fixtures are other projects' files: test/cli/real-world/SOURCES.json pins each one (repository,
// path, commit, licence, sha256) and scripts/real-world-fixtures brings them in; they are never committed here.
project.gitignore.exclude('/test/cli/real-world/*/');
// Their goldens (test/cli/real-world-golden/) are written on purpose, by a developer who then reviews them; a test
// run only compares. The test refuses to write in CI.
project.addTask('test:golden', {
  description: 'Rewrite the goldens of the CLI on the real-world fixtures (review them by hand before committing)',
  env: { ECR_PTC_WRITE_GOLDEN: '1' },
  exec: 'jest --ci test/cli/real-world.test.ts',
});

// README examples must compile: jsii-rosetta compiles every ```ts block against rosetta/default.ts-fixture.
const rosetta = project.addTask('rosetta:extract', {
  description: 'Compile every TypeScript example in README.md and API.md (fails on any error)',
  exec: 'jsii-rosetta extract --strict',
});
project.postCompileTask.spawn(rosetta);
// The manuals in docs/ are not part of the package, so rosetta:extract never sees them: this compiles their
// examples the same way (same fixture, --strict) through a stand-in assembly (see the script's header).
const rosettaDocs = project.addTask('rosetta:docs', {
  description: 'Compile every TypeScript example in docs/*.md the way rosetta:extract compiles the README (fails on any error)',
  exec: 'node scripts/rosetta-docs',
});
project.postCompileTask.spawn(rosettaDocs);

// jest compiles each test file on its own (isolatedModules) and never type-checks: the tests are type-checked here,
// so a test that drifts from the types it exercises fails the build instead of passing on a wrong shape.
const typecheckTests = project.addTask('typecheck:test', {
  description: 'Type-check the tests and the code they import (jest does not)',
  exec: 'tsc --noEmit -p test/tsconfig.json',
});

// The handler tests (scripts/handler-tests.js says which: those that import code only the bundled handlers load) run
// on the Lambda runtime's Node.js; the main jest run, on the toolchain's Node.js, leaves them out. The filter prints
// the Node.js version of the run and refuses a handler run on any other major. Coverage and the junit report of the
// handler run go beside the main run's, not over them.
const handlerTests = project.addTask('test:handlers', {
  description: `Run the handler tests on Node.js ${HANDLER_NODE_MAJOR}, the bundled Lambdas' runtime (npm package node@${HANDLER_NODE_MAJOR}, scripts/with-node)`,
  env: { HANDLER_TESTS: 'only', HANDLER_NODE_MAJOR, JEST_JUNIT_OUTPUT_NAME: 'junit-handlers.xml' },
  exec: `scripts/with-node ${HANDLER_NODE_MAJOR} node node_modules/jest/bin/jest.js --ci --filter=./scripts/handler-tests.js --coverageDirectory=coverage/handlers`,
  receiveArgs: true,
});
// projen's test task is [jest, eslint]; rebuilt so the main jest run leaves the handler tests out and they run next
const eslintTask = project.tasks.tryFind('eslint')!;
project.testTask.reset();
project.testTask.spawn(typecheckTests);
project.testTask.exec('jest --ci --filter=./scripts/handler-tests.js', { receiveArgs: true, env: { HANDLER_TESTS: 'exclude' } });
project.testTask.spawn(handlerTests);
project.testTask.spawn(eslintTask);

// Integ snapshots: verified (never deployed) on every test run; updated on purpose.
const integ = project.addTask('integ', {
  description: 'Verify the committed integ test snapshots against a fresh synth (no deploy, no AWS account)',
  exec: 'integ-runner --language typescript --directory test',
});
project.testTask.spawn(integ);
project.addTask('integ:update', {
  description: 'Re-synthesize the integ test snapshots after a deliberate change (no deploy)',
  exec: 'integ-runner --language typescript --directory test --update-on-failed --dry-run',
});

// The README's main command: synthesize the example app as a user would, then summarize it.
project.addTask('example:synth', {
  description: 'Synthesize the example EKS app under examples/ with the aws-cdk CLI and summarize what it produced',
  env: { AWS_EC2_METADATA_DISABLED: 'true', CDK_DISABLE_CLI_TELEMETRY: 'true' },
  steps: [
    // the bundled Lambda handlers (assets/) are built artefacts, not committed: a fresh clone builds them first
    { spawn: 'bundle' },
    { exec: 'npx cdk synth --quiet --no-notices --output cdk.out', cwd: 'examples' },
    { exec: 'ts-node --project examples/tsconfig.json examples/summarize.ts examples/cdk.out' },
  ],
});

// The library on every Node.js its users may have: the example app synthesized on each supported major, each
// fetched as the npm package node@<major> (scripts/with-node); `node --version` first, so the log shows which ran.
// Run by CI (.ci/run).
project.addTask('example:synth:all-nodes', {
  description: `Synthesize the example app on Node.js ${USER_NODE_MAJORS.join(', ')} (npm packages node@<major>)`,
  env: { AWS_EC2_METADATA_DISABLED: 'true', CDK_DISABLE_CLI_TELEMETRY: 'true' },
  steps: [
    { spawn: 'bundle' },
    ...USER_NODE_MAJORS.map((major) => ({
      name: `example on Node.js ${major}`,
      exec: `../scripts/with-node ${major} sh -c 'node --version && npx cdk synth --quiet --no-notices --output cdk.out.node${major}'`,
      cwd: 'examples',
    })),
  ],
});
project.gitignore.exclude('cdk.out.node*/');

project.addTask('bench:cli', {
  description: 'ecr-ptc rewrite throughput on 10,000 generated YAML documents vs a bare parse + serialize with the same YAML library',
  exec: 'ts-node --project bench/tsconfig.json bench/cli.bench.ts',
});

project.addTask('bench:handlers', {
  description: 'Bundled handlers: bundle size, cold load against an empty handler, and time per event against moto',
  exec: 'ts-node --project bench/tsconfig.json bench/handlers.bench.ts',
});

// Mutation testing of the handlers (StrykerJS with its jest runner), by hand, never in CI: a run takes minutes
// to tens of minutes. One task per handler: each mutates that handler (and the pure modules only it uses) and
// runs only its own tests against each mutant, one runner at a time (stryker.config.mjs). `mutation` runs all.
// Scores, and how to read the survivors: docs/BENCHMARKS.md.
const MUTATION_HANDLERS = ['scan-trigger', 'findings-report', 'cache-health', 'redrive'];
const mutation = project.addTask('mutation', {
  description: 'Mutation test of every bundled handler, one after another (StrykerJS); reports in reports/mutation/',
});
for (const handler of MUTATION_HANDLERS) {
  const task = project.addTask(`mutation:${handler}`, {
    description: `Mutation test of the ${handler} handler against its own tests (StrykerJS); report in reports/mutation/${handler}.html`,
    env: { STRYKER_HANDLER: handler },
    exec: 'stryker run stryker.config.mjs',
  });
  mutation.spawn(task);
}
project.gitignore.exclude('/.stryker-tmp/', '/reports/mutation/');
project.npmignore?.exclude('/stryker.config.mjs', '/.stryker-tmp/', '/reports/');

project.addTask('bench:monitoring', {
  description: 'CloudWatch resources per number of upstreams, and their monthly cost at list prices',
  exec: 'ts-node --project bench/tsconfig.json bench/monitoring.bench.ts',
});

project.addTask('bench:cli-scale', {
  description: 'ecr-ptc rewrite time and peak memory on one file of 1k/4k/16k images and trees of 1k/10k files (docs/BENCHMARKS.md)',
  exec: 'ts-node --project bench/tsconfig.json bench/cli-scale.bench.ts',
});

project.addTask('bench:organization', {
  description: 'Organization example: synth time, central and StackSet template sizes, resources per member account (docs/BENCHMARKS.md)',
  exec: 'ts-node --project bench/tsconfig.json bench/organization.bench.ts',
});

project.addTask('bench:mirror', {
  description: 'Mirror copy throughput vs crane and a plain streaming download between loopback registries, and peak memory (docs/BENCHMARKS.md)',
  // the copy runs on the handlers' Node.js, as in Lambda
  env: { HANDLER_NODE_MAJOR },
  exec: 'ts-node --project bench/tsconfig.json bench/mirror.bench.ts',
});

project.addTask('bench:agents', {
  description: 'Download CPU through the copy\'s agents (one reused read buffer per socket) vs Node\'s default agent, over HTTP and TLS (docs/BENCHMARKS.md)',
  env: { HANDLER_NODE_MAJOR },
  exec: 'ts-node --project bench/tsconfig.json bench/agents.bench.ts',
});

project.addTask('bench:prewarm', {
  description: 'The deploy-time warm-up handler on 50 images against a loopback registry, default concurrency vs one at a time (docs/BENCHMARKS.md)',
  exec: 'ts-node --project bench/tsconfig.json bench/prewarm.bench.ts',
});

project.addTask('example:organization', {
  description: 'Synthesize the organization example (central cache + member StackSet) under examples/ with the aws-cdk CLI',
  env: { AWS_EC2_METADATA_DISABLED: 'true', CDK_DISABLE_CLI_TELEMETRY: 'true' },
  steps: [
    // the central cache has the bundled handlers, which a fresh clone has not built yet
    { spawn: 'bundle' },
    {
      exec: 'npx cdk synth --quiet --no-notices --app "npx ts-node --project tsconfig.json organization-app.ts" --output cdk.out.organization',
      cwd: 'examples',
    },
  ],
});

project.addTask('bench', {
  description: 'Synth-time benchmark: PullThroughCacheRules vs hand-written L1 rules (writes docs/BENCHMARKS.md figures to stdout)',
  exec: 'ts-node --project bench/tsconfig.json bench/synth.bench.ts',
});

// The npm package is lib/, API.md and the README: none of the development folders.
for (const pattern of ['/examples/', '/bench/', '/rosetta/', '/docs/', '/.ci/', '/requirements-dev.txt', '/scripts/', 'cdk.out/', '*.snapshot/']) {
  project.addPackageIgnore(pattern);
}

// Build every package on every build, CI included: the Python wheel and the Java jar are part of what the
// tests prove (projen's default packages only JavaScript when CI is set, leaving the rest to release jobs).
project.packageTask.reset();
project.packageTask.spawn(project.tasks.tryFind('package-all')!);

// Python and Java users, proven on every build: once package-all has written the npm tarball, the wheel and the
// jar, synthesize examples/bindings/ from TypeScript, Python (fresh venv, the wheel, aws-cdk-lib pinned at the
// floor) and Java (Maven, the jar), fail on any template difference, and check each bundled Lambda asset is
// byte-identical in the three packages. Also: jsii warnings fail the compile (reserved-word stays silenced, as
// projen does, because its only hit is `map`, reserved in Go, which we do not target; test/bindings.py checks
// names against Python's and Java's keywords), and jsii-pacmak's Maven build reuses ~/.m2 instead of downloading
// aws-cdk-lib into a temporary repository on every build.
project.compileTask.reset('jsii --fail-on-warnings --silence-warnings=reserved-word');
project.tasks.tryFind('package:java')!.reset('jsii-pacmak -v --target java --maven-local-repository "$HOME/.m2/repository"');
const bindings = project.addTask('bindings:test', {
  description: 'Synthesize examples/bindings in TypeScript, Python and Java from the built packages; fail if the templates differ',
  exec: 'python3 test/bindings.py',
});
project.packageTask.spawn(bindings);
project.gitignore.exclude('/.bindings/', '/examples/bindings/java/target/', '/examples/application-team/java/target/');
project.addPackageIgnore('/.bindings/');

project.synth();
