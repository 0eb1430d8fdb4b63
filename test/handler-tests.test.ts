/**
 * scripts/handler-tests.js decides which tests run on the Lambda runtime's Node.js (task `test:handlers`) and which
 * the main jest run keeps. A wrong split either runs handler code on the toolchain's Node.js only, or runs a test
 * twice or never: these tests pin the rule on the real source tree.
 */
import { readdirSync, readFileSync, writeFileSync } from 'fs';
import { join, relative } from 'path';
import { testDir } from './util';

// plain CommonJS (jest loads it with require, untransformed)
// eslint-disable-next-line @typescript-eslint/no-require-imports
const handlerTests: HandlerTestsModule = require('../scripts/handler-tests.js');

interface HandlerTestsModule {
  (testPaths: string[]): Promise<{ filtered: string[] }>;
  split(testPaths: string[]): { handler: string[]; other: string[] };
  handlerOnlyModules(): Set<string>;
}

const root = join(__dirname, '..');
const rel = (file: string) => relative(root, file);

function files(dir: string, suffix: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name.startsWith('.') ? [] : files(full, suffix);
    return entry.name.endsWith(suffix) ? [full] : [];
  });
}

const allTests = files(join(root, 'test'), '.test.ts');

test('every bundled handler is handler-only code, and nothing the constructs or the CLI load is', () => {
  const handlerOnly = [...handlerTests.handlerOnlyModules()].map(rel);
  const lambdas = files(join(root, 'src'), '.lambda.ts').map(rel);
  expect(lambdas.length).toBeGreaterThanOrEqual(5);
  expect(handlerOnly).toEqual(expect.arrayContaining(lambdas));
  expect(handlerOnly).toEqual(expect.arrayContaining(['src/mirror/copy.ts', 'src/private/handlers/log.ts']));
  // shared by a construct and its handler (the construct synthesizes what the handler reads): the construct's side
  expect(handlerOnly).not.toContain('src/mirror/contract.ts');
  // the projen-generated wrappers are construct code
  expect(handlerOnly.filter((file) => file.endsWith('-function.ts'))).toEqual([]);
});

test('a test that imports a handler, even through a helper, is a handler test; construct tests are not', () => {
  const { handler, other } = handlerTests.split(allTests);
  expect(new Set([...handler, ...other]).size).toBe(allTests.length); // each test on exactly one side
  expect(handler.filter((file) => other.includes(file))).toEqual([]);
  const direct = allTests.filter((file) => /from '[^']*\.lambda'/.test(readFileSync(file, 'utf8'))).map(rel);
  expect(direct.length).toBeGreaterThanOrEqual(5);
  expect(handler.map(rel)).toEqual(expect.arrayContaining([...direct, 'test/mirror/copy.test.ts', 'test/mirror/blob-resume.test.ts']));
  expect(other.map(rel)).toEqual(expect.arrayContaining(['test/mirror/cache-mirror.test.ts', 'test/nag.test.ts', 'test/cli.test.ts']));

  // a test added later, reaching handler code only through a helper of its own
  const dir = testDir('handler-split-');
  const helper = join(dir, 'helper.ts');
  const later = join(dir, 'later.test.ts');
  writeFileSync(helper, `export { ImageCopier } from '${relative(dir, join(root, 'src/mirror/copy'))}';\n`);
  writeFileSync(later, "import { ImageCopier } from './helper';\n");
  const construct = join(dir, 'construct.test.ts');
  writeFileSync(construct, `import { CacheMirror } from '${relative(dir, join(root, 'src'))}';\n`);
  const split = handlerTests.split([later, construct]);
  expect(split).toEqual({ handler: [later], other: [construct] });
});

test('as jest\'s filter: HANDLER_TESTS picks the side, refuses a handler run on another Node.js, and must be set', async () => {
  const saved = { side: process.env.HANDLER_TESTS, major: process.env.HANDLER_NODE_MAJOR };
  const error = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    const { handler, other } = handlerTests.split(allTests);
    process.env.HANDLER_TESTS = 'exclude';
    await expect(handlerTests(allTests)).resolves.toEqual({ filtered: other });
    process.env.HANDLER_TESTS = 'only';
    process.env.HANDLER_NODE_MAJOR = process.versions.node.split('.')[0];
    await expect(handlerTests(allTests)).resolves.toEqual({ filtered: handler });
    expect(error).toHaveBeenCalledWith(expect.stringContaining(`node --version ${process.version}`));
    process.env.HANDLER_NODE_MAJOR = '7';
    await expect(handlerTests(allTests)).rejects.toThrow(`must run on Node.js 7 (HANDLER_NODE_MAJOR), the bundled Lambdas' runtime, not ${process.version}`);
    delete process.env.HANDLER_TESTS;
    await expect(handlerTests(allTests)).rejects.toThrow('HANDLER_TESTS is undefined; set it to "only"');
  } finally {
    error.mockRestore();
    for (const [name, value] of [['HANDLER_TESTS', saved.side], ['HANDLER_NODE_MAJOR', saved.major]] as const) {
      if (value === undefined) delete process.env[name]; else process.env[name] = value;
    }
  }
});
