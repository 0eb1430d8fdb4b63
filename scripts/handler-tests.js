// Which jest test files are handler tests: the ones that run code only the bundled Lambda handlers load, so they
// run on the handlers' Node.js major version (task `test:handlers`) and the main jest run leaves them out.
//
// The rule, not a list, so a handler added later is picked up without touching this file:
//   handler-only code = the modules reachable from any src/**/*.lambda.ts
//                       minus the modules reachable from the package's `main` and `bin` (the constructs, run by
//                       `cdk synth`, and the ecr-ptc CLI, both on the user's Node.js);
//   a handler test    = a test file whose own imports (followed through test helpers) reach handler-only code.
// Imports are read as text (`from '...'`, `require('...')`, `import('...')`, relative specifiers only): enough for
// this code base, whose modules all import by relative path.
//
// Used as jest's `--filter` module (https://jestjs.io/docs/cli#--filterfile); HANDLER_TESTS selects the side:
//   HANDLER_TESTS=only   the handler tests;   HANDLER_TESTS=exclude   every other test.
// With HANDLER_TESTS=only it prints the run's `node --version`, and with HANDLER_NODE_MAJOR set it refuses to run on
// another major (task `test:handlers` sets both, from the handlers' runtime in .projenrc.ts).
// `node scripts/handler-tests.js` prints both lists.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const src = path.join(root, 'src');
const IMPORT = /(?:\bfrom\s+|\brequire\(\s*|\bimport\(\s*)'(\.{1,2}\/[^']+)'/g;

/** The TypeScript file a relative specifier names, or undefined (a JSON file, an asset). */
function resolve(from, specifier) {
  const base = path.resolve(path.dirname(from), specifier);
  return [`${base}.ts`, path.join(base, 'index.ts'), base].find((file) => file.endsWith('.ts') && fs.existsSync(file));
}

/** Every file reachable from `entries` by relative imports, `entries` included. */
function closure(entries, cache = new Map()) {
  const seen = new Set();
  const stack = [...entries];
  while (stack.length > 0) {
    const file = stack.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    if (!cache.has(file)) {
      const text = fs.readFileSync(file, 'utf8');
      cache.set(file, [...text.matchAll(IMPORT)].map((m) => resolve(file, m[1])).filter(Boolean));
    }
    stack.push(...cache.get(file));
  }
  return seen;
}

function lambdaEntries(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return lambdaEntries(full);
    return entry.name.endsWith('.lambda.ts') ? [full] : [];
  });
}

/** The source files of the package's `main` and `bin` entries (lib/x.js is compiled from src/x.ts). */
function packageEntries() {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  return [manifest.main, ...Object.values(manifest.bin ?? {})]
    .map((file) => path.join(root, file.replace(/^(\.\/)?lib\//, 'src/').replace(/\.js$/, '.ts')));
}

/** The modules only the bundled handlers load (see the rule above). */
function handlerOnlyModules() {
  const cache = new Map();
  const library = closure(packageEntries(), cache);
  return new Set([...closure(lambdaEntries(src), cache)].filter((file) => !library.has(file)));
}

/** Splits jest's test paths into handler tests and the rest. */
function split(testPaths) {
  const handlerOnly = handlerOnlyModules();
  const cache = new Map();
  const handler = [];
  const other = [];
  for (const test of testPaths) {
    const reached = closure([test], cache);
    reached.delete(test);
    ([...reached].some((file) => handlerOnly.has(file)) ? handler : other).push(test);
  }
  return { handler, other };
}

/** jest's filter: https://jestjs.io/docs/cli#--filterfile */
module.exports = async function filter(testPaths) {
  const side = process.env.HANDLER_TESTS;
  if (side !== 'only' && side !== 'exclude') {
    throw new Error(`scripts/handler-tests.js: HANDLER_TESTS is ${JSON.stringify(side)}; set it to "only" (the handler tests) or "exclude" (every other test)`);
  }
  if (side === 'only') {
    // the run's own Node.js, printed so the log shows it, and refused if it is not the handlers' runtime
    const major = process.versions.node.split('.')[0];
    const wanted = process.env.HANDLER_NODE_MAJOR;
    console.error(`handler tests: node --version ${process.version}${wanted ? ` (the Lambda runtime: nodejs${wanted}.x)` : ''}`);
    if (wanted !== undefined && major !== wanted) {
      throw new Error(`scripts/handler-tests.js: the handler tests must run on Node.js ${wanted} (HANDLER_NODE_MAJOR), the bundled Lambdas' runtime, not ${process.version}: run them with \`npx projen test:handlers\``);
    }
  }
  const { handler, other } = split(testPaths);
  return { filtered: side === 'only' ? handler : other };
};
module.exports.split = split;
module.exports.handlerOnlyModules = handlerOnlyModules;

if (require.main === module) {
  const { execFileSync } = require('node:child_process');
  const tests = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'test/**/*.test.ts', 'test/*.test.ts'], { cwd: root, encoding: 'utf8' })
    .split('\n').filter(Boolean).map((file) => path.join(root, file));
  const { handler, other } = split([...new Set(tests)]);
  const show = (files) => files.map((file) => `  ${path.relative(root, file)}`).sort().join('\n');
  console.log(`handler tests (Node.js of the Lambda runtime):\n${show(handler)}\n\nother tests:\n${show(other)}`);
}
