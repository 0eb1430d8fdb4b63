// The house's shape, checked: imports flow one way (pure logic <- constructs <- Aspect/CLI), there is no circle,
// handlers and the CLI never load aws-cdk-lib, and no file in src/ grows past 400 lines without saying why.
// The graph is read with the TypeScript compiler's own import scanner (ts.preProcessFile), so `import type`,
// `export ... from`, `require()` and `import()` all count.
import { existsSync, readFileSync, readdirSync } from 'fs';
import { dirname, join, relative, resolve } from 'path';
import * as ts from 'typescript';

const ROOT = resolve(__dirname, '..');
const SRC = join(ROOT, 'src');

/** Features: one folder per capability, composed from above. Nothing below them may import them. */
const FEATURE_FOLDERS = ['cli', 'mirror', 'monitoring', 'node-mirror', 'organization', 'prewarm', 'repositories', 'rules', 'scanning'];
/** The constructs and the Aspect that compose features: also above the pure layer. */
const COMPOSERS = ['pull-through-cache-rules.ts', 'cached-images.ts', 'index.ts'];
/** Packages that must never reach a Lambda handler or the CLI. */
const CDK_PACKAGES = ['aws-cdk-lib', 'constructs'];
/** Files allowed past the limit say why in their first lines, in a comment that begins like this. */
const LONG_FILE_REASON = /^\/\/ Over 400 lines: \S/m;
const MAX_LINES = 400;

interface Module {
  /** Path relative to src/, with forward slashes. */
  readonly path: string;
  /** Other src modules it imports (relative to src/). */
  readonly local: string[];
  /** Packages it imports (the first path segment, or two for a scoped package). */
  readonly packages: string[];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

function resolveLocal(from: string, specifier: string): string {
  const base = resolve(dirname(from), specifier);
  for (const candidate of [`${base}.ts`, join(base, 'index.ts'), base]) {
    if (existsSync(candidate) && candidate.endsWith('.ts')) return candidate;
  }
  // JSON and other non-TypeScript files (package.json) are data, not modules of the graph.
  return base;
}

function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function readGraph(): Map<string, Module> {
  const graph = new Map<string, Module>();
  for (const file of sourceFiles(SRC)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const local: string[] = [];
    const packages: string[] = [];
    for (const { fileName } of info.importedFiles) {
      if (fileName.startsWith('.')) {
        const target = resolveLocal(file, fileName);
        if (target.endsWith('.ts')) local.push(relative(SRC, target).split('\\').join('/'));
      } else {
        packages.push(packageOf(fileName));
      }
    }
    const path = relative(SRC, file).split('\\').join('/');
    graph.set(path, { path, local: [...new Set(local)], packages: [...new Set(packages)] });
  }
  return graph;
}

const graph = readGraph();

/** The shortest import chain from `start` to a module that imports `pkg`, for a message a person can act on. */
function chainTo(start: string, pkg: string): string[] | undefined {
  const previous = new Map<string, string | undefined>([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const current = queue.shift()!;
    const module = graph.get(current);
    if (!module) continue;
    if (module.packages.includes(pkg)) {
      const chain = [`${current} imports ${pkg}`];
      for (let at = previous.get(current); at !== undefined; at = previous.get(at)) chain.unshift(at);
      return chain;
    }
    for (const next of module.local) {
      if (!previous.has(next)) {
        previous.set(next, current);
        queue.push(next);
      }
    }
  }
  return undefined;
}

/** Strongly connected components with more than one module (or a module importing itself): Tarjan's algorithm. */
function circles(): string[][] {
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (node: string): void => {
    indexOf.set(node, index);
    low.set(node, index);
    index++;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node)?.local ?? []) {
      if (!graph.has(next)) continue;
      if (!indexOf.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, indexOf.get(next)!));
      }
    }
    if (low.get(node) === indexOf.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || graph.get(node)!.local.includes(node)) found.push(component.sort());
    }
  };
  for (const node of [...graph.keys()].sort()) if (!indexOf.has(node)) visit(node);
  return found;
}

const isFeature = (path: string) => FEATURE_FOLDERS.some((folder) => path.startsWith(`${folder}/`));
const isComposer = (path: string) => COMPOSERS.includes(path);
/** The layer below every feature: pure logic and the catalogue (src/private/, src/image-*.ts, src/upstream-*.ts). */
const isLowerLayer = (path: string) => path.startsWith('private/') || /^(image|upstream)-[^/]+\.ts$/.test(path);
const isHandler = (path: string) => path.endsWith('.lambda.ts');
const isHandlerCode = (path: string) => isHandler(path) || path.startsWith('private/handlers/');

describe('the import graph of src/', () => {
  test('is read: every feature folder and the pure layer are present, so the rules below are not vacuous', () => {
    const paths = [...graph.keys()];
    expect(paths.length).toBeGreaterThan(50);
    for (const folder of ['cli', 'mirror', 'monitoring', 'node-mirror', 'organization', 'rules', 'scanning']) {
      expect(paths.some((path) => path.startsWith(`${folder}/`))).toBe(true);
    }
    expect(paths.filter(isHandler).length).toBeGreaterThanOrEqual(4);
    // the scanner sees the import forms the rules depend on
    expect(graph.get('index.ts')!.local.length).toBeGreaterThan(5);
    expect(graph.get('pull-through-cache-rules.ts')!.packages).toContain('aws-cdk-lib');
  });

  test('has no circle', () => {
    expect(circles().map((component) => component.join(' <-> '))).toEqual([]);
  });

  test('pure logic and the catalogue never import a feature, a construct that composes them, or the Aspect', () => {
    const upward = [...graph.values()]
      .filter((module) => isLowerLayer(module.path))
      .flatMap((module) => module.local.filter((target) => isFeature(target) || isComposer(target))
        .map((target) => `${module.path} -> ${target}`));
    expect(upward).toEqual([]);
  });

  test('a feature never imports the construct that composes it (it takes an interface from the cache instead)', () => {
    const upward = [...graph.values()]
      .filter((module) => isFeature(module.path))
      .flatMap((module) => module.local.filter(isComposer).map((target) => `${module.path} -> ${target}`));
    expect(upward).toEqual([]);
  });

  test('constructs never import handler code: they reach a handler only through its bundled asset', () => {
    const wrong = [...graph.values()]
      .filter((module) => !isHandlerCode(module.path) && module.packages.includes('aws-cdk-lib'))
      .flatMap((module) => module.local.filter(isHandlerCode).map((target) => `${module.path} -> ${target}`));
    expect(wrong).toEqual([]);
  });

  test.each(CDK_PACKAGES)('no Lambda handler reaches %s, directly or through another module', (pkg) => {
    const reaching = [...graph.keys()].filter(isHandler).map((handler) => chainTo(handler, pkg)).filter(Boolean);
    expect(reaching).toEqual([]);
  });

  test.each(CDK_PACKAGES)('the ecr-ptc CLI never reaches %s, directly or through another module', (pkg) => {
    const entries = [...graph.keys()].filter((path) => path.startsWith('cli/'));
    expect(entries).toContain('cli/main.ts');
    const reaching = entries.map((entry) => chainTo(entry, pkg)).filter(Boolean);
    expect(reaching).toEqual([]);
  });
});

describe('the rules catch what they are for', () => {
  // Each rule is run on a small graph with the defect planted, so a rule that cannot fail is caught here.
  function withPlanted<T>(edits: Array<[string, Partial<Module>]>, check: () => T): T {
    const saved = new Map<string, Module | undefined>();
    for (const [path, change] of edits) {
      saved.set(path, graph.get(path));
      const before = graph.get(path) ?? { path, local: [], packages: [] };
      graph.set(path, { ...before, local: [...before.local, ...(change.local ?? [])], packages: [...before.packages, ...(change.packages ?? [])] });
    }
    try {
      return check();
    } finally {
      for (const [path, before] of saved) before ? graph.set(path, before) : graph.delete(path);
    }
  }

  test('a planted circle is found', () => {
    const found = withPlanted([['image-reference.ts', { local: ['image-mapping.ts'] }]], circles);
    expect(found.some((component) => component.includes('image-reference.ts') && component.includes('image-mapping.ts'))).toBe(true);
  });

  test('a handler that reaches aws-cdk-lib through a shared module is found, with the chain', () => {
    const handler = [...graph.keys()].find(isHandler)!;
    const chain = withPlanted([
      [handler, { local: ['private/handlers/planted.ts'] }],
      ['private/handlers/planted.ts', { packages: ['aws-cdk-lib'] }],
    ], () => chainTo(handler, 'aws-cdk-lib'));
    expect(chain).toEqual([handler, 'private/handlers/planted.ts imports aws-cdk-lib']);
  });
});

describe('the CLI bundle', () => {
  // `ecr-ptc --from-account` loads one esbuild bundle (assets/cli/account-rules/index.js, shipped in the package).
  const bundle = join(ROOT, 'assets', 'cli', 'account-rules', 'index.js');

  test('exists (npx projen bundle makes it) and carries no aws-cdk-lib or constructs code', () => {
    expect(existsSync(bundle)).toBe(true);
    const text = readFileSync(bundle, 'utf8');
    expect(text.length).toBeGreaterThan(10_000); // the inlined ECR client: an empty file would pass the checks below
    for (const pkg of CDK_PACKAGES) {
      expect(text).not.toMatch(new RegExp(`node_modules/${pkg}/|require\\(["']${pkg}["'\\/]`));
    }
  });
});

describe('files in src/', () => {
  test(`stay under ${MAX_LINES} lines, or say why in a comment at their top ("// Over 400 lines: ...")`, () => {
    const long = sourceFiles(SRC).flatMap((file) => {
      const text = readFileSync(file, 'utf8');
      const lines = text.split('\n').length;
      const head = text.split('\n').slice(0, 15).join('\n');
      return lines > MAX_LINES && !LONG_FILE_REASON.test(head) ? [`${relative(SRC, file)} (${lines} lines)`] : [];
    });
    expect(long).toEqual([]);
  });
});
