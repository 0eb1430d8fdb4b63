/**
 * Companion values in the CLI (src/cli/companions.ts, the list of src/private/helm-companions.ts): a Bitnami chart
 * refuses images other than its own unless `global.security.allowInsecureImages` is true (bitnami/charts#30850), so
 * `ecr-ptc rewrite` sets it when it moves a Bitnami image of a values file, and `check` fails a values file whose
 * Bitnami images are on the cache without it. The values files are hand-made in the shapes of bitnami/charts'
 * values.yaml (bitnami/charts@5165628ae06697f8f68a670bef7739d93c4b7f44:bitnami/nginx/values.yaml), so CI tests each
 * shape without the real-world fixtures.
 */
import * as fs from 'fs';
import { join } from 'path';
import { parse } from 'yaml';
import { runCli } from './support/cli';
import { testDir } from './util';
import { EXIT_FINDINGS, EXIT_OK } from '../src/cli/main';

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const CACHED_NGINX = `${REGISTRY}/docker-hub/bitnami/nginx`;

interface JsonFinding { line: number; image: string; outcome: string; uri?: string; note?: string }
interface JsonReport { summary: Record<string, number>; files: Array<{ findings: JsonFinding[]; changed: boolean }> }

const cli = runCli;

function write(text: string, name = 'values.yaml'): string {
  const path = join(testDir('companions-'), name);
  fs.writeFileSync(path, text);
  return path;
}

function json(command: 'rewrite' | 'check', path: string): { code: number; report: JsonReport } {
  const result = cli([command, path, '--registry', REGISTRY, '--json']);
  return { code: result.code, report: JSON.parse(result.out) as JsonReport };
}

const companions = (report: JsonReport) => report.files[0].findings.filter(f => f.outcome.startsWith('companion-'));

/** A Bitnami image map as the charts write it. */
const IMAGE = `image:
  registry: docker.io
  repository: bitnami/nginx
  tag: 1.29.1-debian-12-r0
`;

describe('rewrite sets global.security.allowInsecureImages beside moved Bitnami images', () => {
  test('no global: the three keys are added after the last entry, at the top', () => {
    const path = write(`# nginx values\n${IMAGE}replicaCount: 1 # one\n`);
    const { code, report } = json('rewrite', path);
    const text = fs.readFileSync(path, 'utf-8');
    expect(text).toBe(`# nginx values\nimage:\n  registry: ${REGISTRY}\n  repository: docker-hub/bitnami/nginx\n  tag: 1.29.1-debian-12-r0\n`
      + 'replicaCount: 1 # one\nglobal:\n  security:\n    allowInsecureImages: true\n');
    expect(companions(report)).toEqual([expect.objectContaining({ line: 7, image: 'global.security.allowInsecureImages', outcome: 'companion-set', uri: 'true' })]);
    expect(companions(report)[0].note).toMatch(/bitnami\/charts#30850/);
    expect(report.summary.companionsSet).toBe(1);
    expect(code).toBe(EXIT_OK);
    // the file now passes check, and a second rewrite changes nothing
    expect(json('check', path).code).toBe(EXIT_OK);
    expect(json('rewrite', path).report.summary.filesChanged).toBe(0);
    expect(fs.readFileSync(path, 'utf-8')).toBe(text);
  });

  test('global with a nested map last, its own 4-space indentation and CRLF: security is added inside it, comments kept', () => {
    const input = [
      'global:',
      '    imageRegistry: ""',
      '    ## Compatibility adaptations',
      '    compatibility:',
      '        openshift:',
      '            adaptSecurityContext: auto # auto',
      '    ## trailing comment of global',
      'image:',
      '    registry: docker.io',
      "    repository: 'bitnami/nginx'",
      '    tag: 1.29.1',
      '',
    ].join('\r\n');
    const path = write(input);
    const { code } = json('rewrite', path);
    const text = fs.readFileSync(path, 'utf-8');
    expect(code).toBe(EXIT_OK);
    expect(text.split('\r\n').slice(0, 10)).toEqual([
      'global:',
      '    imageRegistry: ""',
      '    ## Compatibility adaptations',
      '    compatibility:',
      '        openshift:',
      '            adaptSecurityContext: auto # auto',
      '    security:',
      '        allowInsecureImages: true',
      '    ## trailing comment of global',
      'image:',
    ]);
    expect(text.replace(/\r\n/g, '')).not.toMatch(/\n/); // every line break is still CRLF
    expect(parse(text).global.security.allowInsecureImages).toBe(true);
  });

  test('an existing security map takes the key; a flow-style image string is a Bitnami image too', () => {
    const path = write('global:\n  security:\n    someOther: x\nmetrics:\n  image: bitnami/nginx-exporter:1.4.2\n');
    expect(json('rewrite', path).code).toBe(EXIT_OK);
    expect(fs.readFileSync(path, 'utf-8')).toBe('global:\n  security:\n    someOther: x\n    allowInsecureImages: true\n'
      + `metrics:\n  image: ${REGISTRY}/docker-hub/bitnami/nginx-exporter:1.4.2\n`);
  });

  test('allowInsecureImages already true: nothing added', () => {
    const input = `global:\n  security:\n    allowInsecureImages: true\n${IMAGE}`;
    const path = write(input);
    const { report } = json('rewrite', path);
    expect(companions(report)).toEqual([]);
    expect(fs.readFileSync(path, 'utf-8')).toBe(input.replace('registry: docker.io', `registry: ${REGISTRY}`).replace('repository: bitnami/', 'repository: docker-hub/bitnami/'));
  });

  test('images of other organisations, and Bitnami images left upstream, need nothing', () => {
    const path = write('image:\n  registry: docker.io\n  repository: library/nginx\n  tag: "1.27"\nother:\n  image: registry.example.com/bitnami/nginx:1\n');
    const { report } = json('rewrite', path);
    expect(companions(report)).toEqual([]);
    expect(fs.readFileSync(path, 'utf-8')).not.toMatch(/allowInsecureImages/);
  });

  test('a Kubernetes manifest with a Bitnami container is no Helm values file: nothing added', () => {
    const path = write('apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: bitnami/kubectl:1.31\n', 'pod.yaml');
    const { report } = json('rewrite', path);
    expect(companions(report)).toEqual([]);
    expect(fs.readFileSync(path, 'utf-8')).toMatch(/image: 111122223333.*bitnami\/kubectl:1.31\n$/);
  });

  test('--dry-run proposes it and writes nothing', () => {
    const path = write(IMAGE);
    const result = cli(['rewrite', path, '--registry', REGISTRY, '--dry-run']);
    expect(result.out).toMatch(/values\.yaml:5: global\.security\.allowInsecureImages: true added \(note: Bitnami charts refuse/);
    expect(result.out).toMatch(/1 chart value to add beside moved images/);
    expect(fs.readFileSync(path, 'utf-8')).toBe(IMAGE);
  });
});

describe('left as written, reported with the line to change, and failing closed', () => {
  test.each([
    ['an explicit false (the Bitnami charts\' own default)', `global:\n  security:\n    allowInsecureImages: false\n${IMAGE}`, 3,
      /^false in the file, left as written: change line 3 to allowInsecureImages: true\. Bitnami/],
    ['a flow map', `global: {imageRegistry: ""}\n${IMAGE}`, 1,
      /^not set, and cannot be added to global \(a flow map \(\{ \}\)\): add security: allowInsecureImages: true under global/],
    ['an empty global', `global:\n${IMAGE}`, 1, /global is empty, so global\.security\.allowInsecureImages is not set: write global as a map/],
    ['a string "true"', `global:\n  security:\n    allowInsecureImages: "true"\n${IMAGE}`, 3, /^"true" in the file, left as written/],
    ['a global that is a single value', `global: none\n${IMAGE}`, 1,
      /^global is a single value, so global\.security\.allowInsecureImages is not set: write global as a map holding security: allowInsecureImages: true/],
    ['a map where the value goes', `global:\n  security:\n    allowInsecureImages:\n      enabled: true\n${IMAGE}`, 3,
      /^global\.security\.allowInsecureImages is not a single value\. Bitnami/],
    ['a last entry written over several lines', `global:\n  security:\n    note: |\n      kept\n${IMAGE}`, 3,
      /^not set, and cannot be added to global\.security \(its entries are not one plain value a line\): add allowInsecureImages: true under global\.security/],
  ])('%s', (_, input, line, note) => {
    const path = write(input);
    const { code, report } = json('rewrite', path);
    const [companion] = companions(report);
    expect(companion).toEqual(expect.objectContaining({ line, image: 'global.security.allowInsecureImages', outcome: 'companion-missing' }));
    expect(companion.note).toMatch(note);
    expect(code).toBe(EXIT_FINDINGS);
    // the images moved all the same, and nothing but them changed
    const text = fs.readFileSync(path, 'utf-8');
    expect(text).toBe(input.replace('registry: docker.io', `registry: ${REGISTRY}`).replace('repository: bitnami/', 'repository: docker-hub/bitnami/'));
    // check fails closed on the rewritten file, on the same line
    const checked = json('check', path);
    expect(checked.code).toBe(EXIT_FINDINGS);
    expect(companions(checked.report)).toEqual([expect.objectContaining({ line, outcome: 'companion-missing' })]);
    expect(checked.report.files[0].findings.filter(f => f.outcome === 'cached').map(f => f.image)).toEqual([`${CACHED_NGINX}:1.29.1-debian-12-r0`]);
  });

  test('a global that merges another map in with <<: not edited, since a key beside << would hide the merged one', () => {
    const input = `base: &base\n  security:\n    allowInsecureImages: false\nglobal:\n  <<: *base\n  imageRegistry: ""\n${IMAGE}`;
    const path = write(input);
    const { code, report } = json('rewrite', path);
    expect(companions(report)).toEqual([expect.objectContaining({ line: 5, outcome: 'companion-missing' })]);
    expect(companions(report)[0].note).toMatch(/^global merges other maps in with <<, which may hold security: set global\.security\.allowInsecureImages: true where it is written/);
    expect(code).toBe(EXIT_FINDINGS);
    expect(fs.readFileSync(path, 'utf-8')).not.toMatch(/allowInsecureImages: true/);
  });

  test('an anchored global used elsewhere is shared: not edited', () => {
    const input = `global: &g\n  imageRegistry: ""\nsub:\n  global: *g\n${IMAGE}`;
    const path = write(input);
    const { code, report } = json('rewrite', path);
    expect(companions(report)[0].note).toMatch(/cannot be added to global \(anchored \(&g\)/);
    expect(code).toBe(EXIT_FINDINGS);
  });
});

describe('check', () => {
  test('Bitnami images on the cache without the companion value: reported with what to add, exit non-zero', () => {
    const path = write(`global:\n  imageRegistry: ""\nimage:\n  registry: ${REGISTRY}\n  repository: docker-hub/bitnami/nginx\n  tag: "1.29"\n`);
    const result = cli(['check', path, '--registry', REGISTRY]);
    expect(result.out).toMatch(/values\.yaml:2: global\.security\.allowInsecureImages: not set: add security: allowInsecureImages: true under global, or run ecr-ptc rewrite/);
    expect(result.out).toMatch(/1 chart value missing beside moved images/);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(fs.readFileSync(path, 'utf-8')).not.toMatch(/allowInsecureImages/);
  });

  test('a non-Bitnami image on the cache, or Bitnami images still upstream, need no companion', () => {
    const cached = write(`image: ${REGISTRY}/docker-hub/library/nginx:1.27\n`);
    expect(cli(['check', cached, '--registry', REGISTRY]).code).toBe(EXIT_OK);
    const upstream = json('check', write(IMAGE));
    expect(companions(upstream.report)).toEqual([]);
  });
});
