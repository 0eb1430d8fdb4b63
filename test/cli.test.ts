import * as fs from 'fs';
import { join } from 'path';
import * as fc from 'fast-check';
import { ImageMapping } from '../src';
import { testDir } from './util';
import { run, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE } from '../src/cli/main';
import { rewriteYaml } from '../src/cli/rewrite';

const DEFAULTS_NOTICE = /^ecr-ptc: no --from-account or --from-cdk-out: assuming the default cache prefixes .*\n/;

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const FIXTURES = join(__dirname, 'cli', 'fixtures');

interface Captured { code: number; out: string; err: string }

function cli(args: string[], interactive = false): Captured {
  let out = '';
  let err = '';
  const code = run(args, { out: t => { out += t; }, err: t => { err += t; }, interactive });
  // the notice of the assumed default prefixes (test/cli-prefixes.test.ts checks it) is not what these tests are about
  return { code, out, err: err.replace(DEFAULTS_NOTICE, '') };
}

function tempDir(): string {
  return testDir('ecr-ptc-');
}

/** Copies every fixture input into a fresh folder under its real name (`compose.input.yaml` -> `compose.yaml`). */
function fixtureTree(): string {
  const dir = tempDir();
  for (const name of fs.readdirSync(FIXTURES).filter(n => n.includes('.input'))) {
    fs.copyFileSync(join(FIXTURES, name), join(dir, name.replace('.input', '')));
  }
  return dir;
}

const fixtureNames = fs.readdirSync(FIXTURES).filter(n => n.includes('.input')).map(n => n.replace('.input', ''));

describe('ecr-ptc rewrite: fixtures (the output differs from the input only in image values, and in the companion values of moved Bitnami images)', () => {
  test.each(fixtureNames)('%s', name => {
    const dir = fixtureTree();
    const file = join(dir, name);
    cli(['rewrite', file, '--registry', REGISTRY]);
    const expected = fs.readFileSync(join(FIXTURES, name.replace(/(\.yaml)?$/, m => `.expected${m}`)), 'utf-8');
    expect(fs.readFileSync(file, 'utf-8')).toBe(expected);

    // a second run changes nothing
    const before = fs.readFileSync(file, 'utf-8');
    const again = cli(['rewrite', file, '--registry', REGISTRY]);
    expect(fs.readFileSync(file, 'utf-8')).toBe(before);
    expect(again.out).toMatch(/ 0 references rewritten in 0 files/);
  });

  test('CRLF line endings survive', () => {
    const dir = fixtureTree();
    cli(['rewrite', dir, '--registry', REGISTRY]);
    const text = fs.readFileSync(join(dir, 'k8s-crlf.yaml'), 'utf-8');
    expect(text.split('\r\n')).toHaveLength(9);
    expect(text.replace(/\r\n/g, '')).not.toMatch(/\n/);
  });
});

describe('ecr-ptc rewrite: reporting', () => {
  test('a whole tree: every reference listed with its line, a summary, exit 1 because some cannot be served', () => {
    const dir = fixtureTree();
    const result = cli(['rewrite', dir, '--registry', REGISTRY]);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.out).toContain(`${join(dir, 'k8s-workloads.yaml')}:24: docker.io/nginx:1.27 -> ${REGISTRY}/docker-hub/library/nginx:1.27\n`);
    expect(result.out).toContain(`${join(dir, 'Dockerfile')}:10: gcr.io/distroless/static:nonroot: ECR cannot pull through 'gcr.io'`);
    // a service that builds its image names the tag compose gives it: not pulled, not listed
    expect(result.out).not.toContain(`${join(dir, 'compose.yaml')}:7:`);
    expect(result.out).toMatch(/pinned by digest only/);
    expect(result.err).toContain(`${join(dir, 'invalid.yaml')}:7: Sequence item without - indicator`);
    expect(result.out).toContain(`${join(dir, 'chart-template.yaml')}:8: "{{ .Values.image.repository }}:{{ .Values.image.tag }}": `
      + 'left alone: an image line of a Helm template whose value is not a literal reference');
    expect(result.out.trim().split('\n').pop()).toBe('9 files scanned, 26 references rewritten in 6 files, 1 already cached, '
      + '4 not served from the cache, 2 left alone (templated, build arguments), 2 chart values added beside moved images, 1 file refused (see above)');
  });

  test('an invalid YAML file is named with its line and not touched', () => {
    const dir = fixtureTree();
    const file = join(dir, 'invalid.yaml');
    const before = fs.readFileSync(file);
    const result = cli(['rewrite', file, '--registry', REGISTRY]);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.err).toBe(`${file}:7: Sequence item without - indicator\n`);
    expect(fs.readFileSync(file)).toEqual(before);
  });

  test('--dry-run writes nothing and says what it would do', () => {
    const dir = fixtureTree();
    const before = fs.readdirSync(dir).map(n => fs.readFileSync(join(dir, n), 'utf-8'));
    const result = cli(['rewrite', dir, '--registry', REGISTRY, '--dry-run']);
    expect(result.out).toMatch(/26 references to rewrite \(dry run\) in 6 files/);
    expect(fs.readdirSync(dir).map(n => fs.readFileSync(join(dir, n), 'utf-8'))).toEqual(before);
  });

  test('--json reports every file and finding for machines', () => {
    const dir = fixtureTree();
    const result = cli(['rewrite', join(dir, 'compose.yaml'), '--registry', REGISTRY, '--json']);
    const report = JSON.parse(result.out);
    expect(report.summary).toEqual({
      filesScanned: 1,
      filesChanged: 1,
      rewritten: 3,
      cached: 0,
      unserved: 0,
      leftAlone: 0,
      settings: 0,
      companionsSet: 0,
      companionsMissing: 0,
      failedFiles: 0,
      templateFiles: 0,
      skipped: 0,
      leftovers: 0,
    });
    expect(report.files[0].findings[0]).toEqual({ line: 3, image: 'nginx:1.27', outcome: 'rewritten', uri: `${REGISTRY}/docker-hub/library/nginx:1.27` });
    expect(report.files[0].findings[1]).toEqual({ line: 7, image: '${REGISTRY:-localhost:5000}/api:${TAG}', outcome: 'not-pulled', note: 'the service builds this image (build:)' });
    expect(result.code).toBe(EXIT_OK);
  });

  test('--prefix overrides a default and adds a registry', () => {
    const dir = tempDir();
    const file = join(dir, 'pod.yaml');
    fs.writeFileSync(file, 'containers:\n  - image: nginx:1\n  - image: contoso.azurecr.io/app:2\n');
    const result = cli(['rewrite', dir, '--registry', REGISTRY, '--prefix', 'registry-1.docker.io=hub', '--prefix', 'contoso.azurecr.io=azure']);
    expect(result.code).toBe(EXIT_OK);
    expect(fs.readFileSync(file, 'utf-8')).toBe(`containers:\n  - image: ${REGISTRY}/hub/library/nginx:1\n  - image: ${REGISTRY}/azure/app:2\n`);
  });

  test('a progress indicator on large trees, on a terminal only', () => {
    const dir = tempDir();
    for (let i = 0; i < 250; i++) {
      fs.writeFileSync(join(dir, `f${i}.yaml`), 'image: nginx:1\n');
    }
    expect(cli(['rewrite', dir, '--registry', REGISTRY, '--dry-run'], true).err).toMatch(/\rscanning 200\/250 files.*\rscanned 250\/250 files\n$/s);
    expect(cli(['rewrite', dir, '--registry', REGISTRY, '--dry-run'], false).err).toBe('');
  });
});

describe('ecr-ptc check', () => {
  test('lists every reference not in the cache and exits 1', () => {
    const dir = fixtureTree();
    const result = cli(['check', join(dir, 'compose.yaml'), join(dir, 'Dockerfile')]);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.out).toContain(`${join(dir, 'compose.yaml')}:3: nginx:1.27: not served from the cache\n`);
    expect(result.out).toContain(`${join(dir, 'Dockerfile')}:13: quay.io/org/tools:1: not served from the cache\n`);
    expect(fs.readFileSync(join(dir, 'compose.yaml'), 'utf-8')).toBe(fs.readFileSync(join(FIXTURES, 'compose.input.yaml'), 'utf-8'));
  });

  test('exits 0 once everything points at the cache', () => {
    const dir = tempDir();
    fs.copyFileSync(join(FIXTURES, 'k8s-crlf.expected.yaml'), join(dir, 'pod.yaml'));
    expect(cli(['check', dir]).code).toBe(EXIT_OK);
    expect(cli(['check', dir, '--registry', REGISTRY]).code).toBe(EXIT_OK);
    expect(cli(['check', dir, '--registry', '444455556666.dkr.ecr.eu-west-1.amazonaws.com']).code).toBe(EXIT_FINDINGS);
  });

  test('a cached reference pinned by digest only is listed with the caution (its first pull fails while ECR does not hold it)', () => {
    const dir = tempDir();
    const digest = `sha256:${'ab'.repeat(32)}`;
    fs.writeFileSync(join(dir, 'pod.yaml'), ['apiVersion: v1', 'kind: Pod', 'metadata: {name: p}', 'spec:', '  containers:',
      `  - {name: a, image: ${REGISTRY}/docker-hub/library/nginx@${digest}}`,
      `  - {name: b, image: ${REGISTRY}/docker-hub/library/nginx:1.27@${digest}}`, ''].join('\n'));
    const result = cli(['check', dir, '--registry', REGISTRY]);
    // it pulls from nowhere but the cache, so check still passes; the caution names the line and the fix
    expect(result.code).toBe(EXIT_OK);
    expect(result.out).toContain(`${join(dir, 'pod.yaml')}:6: ${REGISTRY}/docker-hub/library/nginx@${digest}: cached, with a caution: `);
    expect(result.out).toMatch(/pinned by digest only: ECR fills the cache only on a pull by tag.*Write it as name:tag@digest/);
    expect(result.out).not.toContain(':7:');
  });
});

describe('ecr-ptc: usage errors say what is wrong', () => {
  test.each([
    [['rewrite', '.'], /rewrite needs the cache registry: pass --registry/],
    [['rewrite', '.', '--registry', 'docker.io'], /--registry 'docker\.io' is not a private ECR registry/],
    [['rewrite', '.', '--registry', REGISTRY, '--prefix', 'quay.io'], /--prefix 'quay\.io' must be host=prefix/],
    [['rewrite', '.', '--registry', REGISTRY, '--prefix', 'quay.io=Q'], /prefix 'Q' is invalid: it is 1 characters long/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ])('%j', (args, message) => {
    const result = cli(args);
    expect(result.code).toBe(EXIT_USAGE);
    expect(result.err).toMatch(message);
  });

  test('a missing path or a file of unknown kind is reported, and fails the run', () => {
    const dir = tempDir();
    fs.writeFileSync(join(dir, 'notes.txt'), 'image: nginx\n');
    const result = cli(['rewrite', join(dir, 'nope'), join(dir, 'notes.txt'), '--registry', REGISTRY]);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.err).toContain(`${join(dir, 'nope')}: no such file or folder`);
    expect(result.err).toContain(`${join(dir, 'notes.txt')}: not a YAML file (.yaml, .yml) or a Dockerfile, left alone`);
    expect(fs.readFileSync(join(dir, 'notes.txt'), 'utf-8')).toBe('image: nginx\n');
  });
});

describe('writes are atomic', () => {
  test('the file keeps its permissions and no temporary file is left', () => {
    const dir = tempDir();
    const file = join(dir, 'pod.yaml');
    fs.writeFileSync(file, 'image: nginx:1\n');
    fs.chmodSync(file, 0o640);
    cli(['rewrite', dir, '--registry', REGISTRY]);
    expect((fs.statSync(file).mode % 0o1000).toString(8)).toBe('640');
    expect(fs.readdirSync(dir)).toEqual(['pod.yaml']);
  });

  test('a failure while replacing is reported against the file, which stays whole, and no temporary file is left', () => {
    const dir = tempDir();
    const file = join(dir, 'pod.yaml');
    fs.writeFileSync(file, 'image: nginx:1\n');
    // the CommonJS module object that files.ts calls through (the `import * as fs` namespace is frozen)
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeFs: typeof fs = require('fs');
    const rename = jest.spyOn(nodeFs, 'renameSync').mockImplementation(() => {
      throw Object.assign(new Error('EIO: simulated crash'), { code: 'EIO' });
    });
    let result: Captured;
    try {
      result = cli(['rewrite', dir, '--registry', REGISTRY]);
    } finally {
      rename.mockRestore();
    }
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.err).toBe(`${file}: not rewritten: input/output error (EIO)\n`);
    expect(fs.readFileSync(file, 'utf-8')).toBe('image: nginx:1\n');
    expect(fs.readdirSync(dir)).toEqual(['pod.yaml']);
  });
});

describe('property: rewriting never changes a non-image byte', () => {
  const mapping = new ImageMapping({ registryUri: REGISTRY });
  const judge = { mapping, cacheStatus: (image: string) => image.startsWith(`${REGISTRY}/`) };
  const image = fc.constantFrom('nginx', 'nginx:1.27', 'bitnami/redis:7', 'quay.io/org/app:v1', 'registry.k8s.io/pause:3.10',
    'mcr.microsoft.com/dotnet/runtime:8.0', `${REGISTRY}/docker-hub/library/redis:7`, 'ghcr.io/o/x@sha256:' + 'a'.repeat(64));
  const quote = fc.constantFrom('', '"', "'");
  const comment = fc.option(fc.stringMatching(/^ +# [ -~]{0,20}$/));
  const container = fc.record({ name: fc.stringMatching(/^[a-z]{1,8}$/), image, quote, comment, blank: fc.boolean() });

  test('the output equals the input with each image value replaced by its mapping, in the same quotes', () => {
    fc.assert(fc.property(fc.array(container, { minLength: 1, maxLength: 6 }), fc.boolean(), fc.boolean(), (containers, crlf, flow) => {
      const nl = crlf ? '\r\n' : '\n';
      const render = (pick: (img: string) => string) => {
        const items = containers.map(c => {
          const value = `${c.quote}${pick(c.image)}${c.quote}`;
          return flow
            ? `    - {name: ${c.name}, image: ${value}}${c.comment ?? ''}${nl}${c.blank ? nl : ''}`
            : `    - name: ${c.name}${nl}      image: ${value}${c.comment ?? ''}${nl}${c.blank ? nl : ''}`;
        });
        return `# header${nl}apiVersion: v1${nl}kind: Pod${nl}spec:${nl}  containers:${nl}${items.join('')}`;
      };
      const input = render(img => img);
      const expected = render(img => mapping.map(img).uri ?? img);
      expect(rewriteYaml(input, judge).output).toBe(expected);
    }), { numRuns: 300 });
  });
});
