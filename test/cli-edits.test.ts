/**
 * ecr-ptc edits correctly (Helm maps whole or not at all, never growing) and `check` fails closed. That edits
 * take one linear pass is measured in bench/cli-scale.bench.ts (docs/BENCHMARKS.md), not timed here.
 */
import * as fs from 'fs';
import { join } from 'path';
import { ImageMapping } from '../src';
import { testDir } from './util';
import { Outcome } from '../src/cli/judge';
import { run, EXIT_FINDINGS, EXIT_OK } from '../src/cli/main';
import { rewriteYaml } from '../src/cli/rewrite';

const DEFAULTS_NOTICE = /^ecr-ptc: no --from-account or --from-cdk-out: assuming the default cache prefixes .*\n/;

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const mapping = new ImageMapping({ registryUri: REGISTRY });
const judge = { mapping, cacheStatus: (image: string) => image.startsWith(`${REGISTRY}/`) };
/** What rewrite adds beside moved Bitnami images (src/cli/companions.ts): the one addition a values file may get. */
const COMPANION = 'global:\n  security:\n    allowInsecureImages: true\n';

function cli(args: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = run(args, { out: t => { out += t; }, err: t => { err += t; }, interactive: false });
  // the notice of the assumed default prefixes (test/cli-prefixes.test.ts checks it) is not what these tests are about
  return { code, out, err: err.replace(DEFAULTS_NOTICE, '') };
}

describe('Helm image maps are rewritten whole or left whole, and never grow on a second run', () => {
  test.each([
    ['registry is a block scalar', 'image:\n  registry: >-\n    docker.io\n  repository: bitnami/redis\n  tag: 7.4\n', /registry is a block scalar/],
    ['repository is a literal block', 'image:\n  registry: docker.io\n  repository: |\n    bitnami/redis\n  tag: 7.4\n', /repository is a block scalar/],
    ['repository is an alias', 'defaults:\n  repo: &repo bitnami/redis\nimage:\n  registry: docker.io\n  repository: *repo\n  tag: 7.4\n', /repository is anchored \(&repo\)/],
    ['registry is anchored', 'image:\n  registry: &r docker.io\n  repository: bitnami/redis\n  tag: 7.4\nother: *r\n', /registry is anchored \(&r\)/],
    ['the map is an alias', 'base: &base\n  registry: docker.io\n  repository: bitnami/redis\nimage: *base\n', /the map is anchored \(&base\)/],
    ['the map is anchored', 'image: &base\n  registry: docker.io\n  repository: bitnami/redis\nother: *base\n', /the map is anchored/],
    ['registry over two lines', 'image:\n  registry: "docker\n    .io"\n  repository: bitnami/redis\n', /registry is written over several lines/],
    ['global.imageRegistry is a block scalar', 'global:\n  imageRegistry: >-\n    docker.io\nimage:\n  repository: bitnami/redis\n  tag: "7.4"\n',
      /global\.imageRegistry is a block scalar/],
    ['another map under global.imageRegistry has an alias', 'global:\n  imageRegistry: docker.io\nr: &r bitnami/redis\n'
      + 'image:\n  repository: *r\n  tag: "7"\nmetrics:\n  image:\n    repository: bitnami/redis-exporter\n    tag: "1"\n',
    /repository is anchored \(&r\).*another image under global\.imageRegistry cannot be rewritten/],
  ])('%s: left whole and reported', (_, input, note) => {
    const result = rewriteYaml(input, judge);
    expect(result.output).toBe(input);
    expect(result.findings.length).toBeGreaterThan(0);
    for (const finding of result.findings) {
      expect(finding.outcome).toBe(Outcome.LEFT_ALONE);
      expect(finding.note).toMatch(/^Helm image map left whole: /);
    }
    expect(result.findings.map(f => f.note).join(' ')).toMatch(note);
  });

  test('a map that merges fields with << is left whole and reported (so check cannot pass over it)', () => {
    const input = 'base: &base\n  registry: docker.io\n  repository: bitnami/redis\nimage:\n  <<: *base\n  tag: "7"\n';
    const result = rewriteYaml(input, judge);
    expect(result.output).toBe(input);
    expect(result.findings).toEqual([expect.objectContaining({ line: 2, image: 'docker.io/bitnami/redis', outcome: Outcome.LEFT_ALONE }), {
      line: 5,
      image: 'docker.io/bitnami/redis:7',
      outcome: Outcome.LEFT_ALONE,
      note: 'Helm image map left whole: registry is under the anchor &base, so shared with its aliases; repository is under the anchor &base, so shared with its aliases',
    }]);
    const dir = testDir();
    fs.writeFileSync(join(dir, 'values.yaml'), input);
    expect(cli(['check', dir]).code).toBe(EXIT_FINDINGS);
  });

  test('a tag that is shared or templated does not hold the map: it is never edited', () => {
    const input = 'v: &v "7"\nimage:\n  registry: docker.io\n  repository: bitnami/redis\n  tag: *v\nother:\n  image:\n    registry: quay.io\n'
      + '    repository: org/app\n    tag: "{{ .Chart.AppVersion }}"\n';
    const result = rewriteYaml(input, judge);
    expect(result.output).toBe(input
      .replace('registry: docker.io\n  repository: bitnami/redis', `registry: ${REGISTRY}\n  repository: docker-hub/bitnami/redis`)
      .replace('registry: quay.io\n    repository: org/app', `registry: ${REGISTRY}\n    repository: quay/org/app`)
      + COMPANION);
    expect(result.findings.map(f => f.outcome)).toEqual([Outcome.REWRITTEN, Outcome.REWRITTEN, Outcome.COMPANION_SET]);
  });

  test('a plain map next to a refused one is still rewritten, whole', () => {
    const input = 'a:\n  image:\n    registry: >-\n      docker.io\n    repository: bitnami/redis\nb:\n  image:\n    registry: docker.io\n    repository: bitnami/nginx\n    tag: "1"\n';
    const once = rewriteYaml(input, judge).output;
    expect(once).toBe(input.replace('registry: docker.io\n    repository: bitnami/nginx', `registry: ${REGISTRY}\n    repository: docker-hub/bitnami/nginx`)
      + COMPANION);
    expect(rewriteYaml(once, judge).output).toBe(once);
  });

  test('a second and third run change nothing (the registry block scalar no longer makes repository grow)', () => {
    const dir = testDir();
    const file = join(dir, 'values.yaml');
    fs.writeFileSync(file, 'image:\n  registry: >-\n    docker.io\n  repository: bitnami/redis\n  tag: 7.4\n');
    const first = fs.readFileSync(file, 'utf-8');
    for (let i = 0; i < 3; i++) {
      cli(['rewrite', file, '--registry', REGISTRY]);
      expect(fs.readFileSync(file, 'utf-8')).toBe(first);
    }
  });
});

describe('check fails closed', () => {
  function tree(files: Record<string, string>): string {
    const dir = testDir();
    for (const [name, content] of Object.entries(files)) {
      fs.mkdirSync(join(dir, name, '..'), { recursive: true });
      fs.writeFileSync(join(dir, name), content);
    }
    return dir;
  }
  const cached = `image: ${REGISTRY}/docker-hub/library/nginx:1\n`;

  test('everything checked and cached: exit 0, complete', () => {
    const dir = tree({ 'a.yaml': cached });
    const result = cli(['check', dir, '--json']);
    expect(result.code).toBe(EXIT_OK);
    expect(JSON.parse(result.out).complete).toBe(true);
  });

  test.each([
    ['a Helm template file', { 'templates/deploy.yaml': 'image: {{ .Values.image }}\n' }, /1 value left alone/],
    ['a skipped folder', { 'node_modules/x/a.yaml': 'image: nginx:1\n' }, /1 path skipped/],
    ['a templated value', { 'b.yaml': 'image: ${IMAGE}\n' }, /1 value left alone/],
  ])('%s: exit 1 and listed, unless --allow-skipped', (_, files, message) => {
    const dir = tree({ 'a.yaml': cached, ...files });
    const result = cli(['check', dir]);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.err).toMatch(message);
    expect(result.err).toMatch(/check is incomplete: .* pass --allow-skipped to accept that/);
    expect(JSON.parse(cli(['check', dir, '--json']).out).complete).toBe(false);
    expect(cli(['check', dir, '--allow-skipped']).code).toBe(EXIT_OK);
  });

  test('a Helm map that is not plain and not cached is not cached, even with --allow-skipped', () => {
    const dir = tree({ 'a.yaml': cached, 'b.yaml': 'image:\n  registry: >-\n    docker.io\n  repository: bitnami/redis\n' });
    const result = cli(['check', dir, '--allow-skipped']);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.out).toMatch(/docker\.io\/bitnami\/redis: not served from the cache \(and the Helm image map is not plain: registry is a block scalar/);
  });

  test('a file that cannot be read fails check even with --allow-skipped', () => {
    const dir = tree({ 'a.yaml': cached });
    fs.writeFileSync(join(dir, 'latin1.yaml'), Buffer.from([0x23, 0xe9, 0x0a]));
    const result = cli(['check', dir, '--allow-skipped']);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.err).toContain(`${join(dir, 'latin1.yaml')}: not valid UTF-8, refused`);
  });

  test.each([
    ['an unknown prefix', `${REGISTRY}/nope/nginx:1`, /under no known cache prefix/],
    ['an invalid reference', `${REGISTRY}/docker-hub/Library/nginx:1`, /not a valid reference/],
    ['an invalid tag', `${REGISTRY}/docker-hub/library/nginx:-1`, /not a valid reference/],
    ['another private registry, without --registry and prefix', '444455556666.dkr.ecr.us-east-1.amazonaws.com/team/app:1', /under no known cache prefix/],
  ])('under the cache domain but not cached: %s', (_, image, reason) => {
    const dir = tree({ 'a.yaml': `image: ${image}\n` });
    const result = cli(['check', dir]);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.out).toMatch(reason);
  });

  test('--prefix makes a prefix of one\'s own known', () => {
    const dir = tree({ 'a.yaml': 'image: 444455556666.dkr.ecr.us-east-1.amazonaws.com/team/app:1\n' });
    expect(cli(['check', dir, '--prefix', 'myregistry.azurecr.io=team']).code).toBe(EXIT_OK);
    expect(cli(['check', dir, '--registry', REGISTRY]).code).toBe(EXIT_FINDINGS);
  });

  test('rewrite leaves a reference on the cache registry under an unknown prefix alone, and says so', () => {
    const dir = tree({ 'a.yaml': `image: ${REGISTRY}/nope/nginx:1\n` });
    const result = cli(['rewrite', dir, '--registry', REGISTRY]);
    expect(result.code).toBe(EXIT_FINDINGS);
    expect(result.out).toContain(`${REGISTRY}/nope/nginx:1: points at the cache registry, but 'nope/nginx' is under no known cache prefix`);
    expect(fs.readFileSync(join(dir, 'a.yaml'), 'utf-8')).toBe(`image: ${REGISTRY}/nope/nginx:1\n`);
  });
});
