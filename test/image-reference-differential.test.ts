/**
 * ImageReference.parse against the reference implementation itself: `github.com/distribution/reference`
 * v0.6.0 (`ParseNormalizedNamed`), built from test/reference-go with the Go toolchain, answers the same
 * generated inputs. Needs `go` (and the Go module proxy the first time); without it the test is skipped and
 * the reason printed.
 *
 * Two deliberate deviations (image-reference.ts) are allowed for: `registry-1.docker.io` is folded into
 * `docker.io`, and a first component that looks like a host but is not one (Go: empty domain) is refused.
 */
import { execFileSync, spawnSync } from 'child_process';
import { join } from 'path';
import * as fc from 'fast-check';
import { ImageReference } from '../src';
import { testDir } from './util';

interface Answer { ok: boolean; domain?: string; path?: string; tag?: string; digest?: string; error?: string }

function goProblem(): string | undefined {
  try {
    execFileSync('go', ['version'], { stdio: 'pipe' });
    return undefined;
  } catch (e) {
    return `the Go toolchain is not installed (${(e as Error).message.split('\n')[0]})`;
  }
}

const problem = goProblem();
if (problem) {
  // eslint-disable-next-line no-console
  console.warn(`SKIPPED the differential test against distribution/reference: ${problem}`);
}
const withGo = problem ? test.skip : test;

function ours(input: string): Answer {
  try {
    const ref = ImageReference.parse(input);
    return { ok: true, domain: ref.registry, path: ref.repository, tag: ref.tag, digest: ref.digest };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

/** What parse must answer, given Go's answer: Go's, with the two documented deviations. */
function expected(input: string, go: Answer): Answer {
  if (!go.ok) {
    return { ok: false };
  }
  if (go.domain === undefined || go.domain === '') {
    return { ok: false }; // a first component that is not a valid host: refused
  }
  if (go.domain === 'registry-1.docker.io') {
    const path = go.path!.includes('/') ? go.path : `library/${go.path}`;
    return { ok: true, domain: 'docker.io', path, tag: go.tag, digest: go.digest };
  }
  void input;
  return { ok: true, domain: go.domain, path: go.path, tag: go.tag, digest: go.digest };
}

const lower = 'abcdefghijklmnopqrstuvwxyz0123456789';
const chars = (alphabet: string, min: number, max: number) =>
  fc.array(fc.constantFrom(...alphabet.split('')), { minLength: min, maxLength: max }).map(a => a.join(''));

/** Path components, mostly valid, sometimes with separators in odd places or uppercase. */
const component = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(chars(lower, 1, 8), fc.constantFrom('', '.', '_', '__', '-', '--', '___'), chars(lower, 0, 8)).map(([a, s, b]) => a + s + b) },
  { weight: 1, arbitrary: chars(`${lower}._-A`, 0, 10) },
);
const path = fc.oneof(
  { weight: 4, arbitrary: fc.array(component, { minLength: 1, maxLength: 4 }).map(c => c.join('/')) },
  // long paths around the 255-character limit, under long hosts
  { weight: 1, arbitrary: fc.array(chars(lower, 1, 60), { minLength: 3, maxLength: 9 }).map(c => c.join('/')) },
);
const host = fc.oneof(
  fc.constantFrom('docker.io', 'index.docker.io', 'registry-1.docker.io', 'localhost', 'localhost:5000', 'quay.io', 'example.com:443',
    '[::1]:5000', '[::1]', 'Foo.Bar', 'FOO', 'a-b.c', '-bad.com', 'bad-.com', '127.0.0.1', 'a__b.c', 'x:y', 'ghcr.io:', 'h.io:65536'),
  fc.array(chars(`${lower}-`, 1, 63), { minLength: 1, maxLength: 5 }).map(l => l.join('.')),
  // long registry hosts, such as ECR's, in front of long paths
  fc.constantFrom(`${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.dkr.ecr.eu-west-1.amazonaws.com`, '111122223333.dkr.ecr.eu-west-1.amazonaws.com'),
);
const tag = fc.oneof(chars(`${lower}ABC_.-`, 0, 12), chars('a1_', 126, 130));
const hex = (n: number) => chars('0123456789abcdef', n, n);
const digest = fc.tuple(
  fc.constantFrom('sha256', 'sha384', 'sha512', 'constructor', 'toString', 'hasOwnProperty', '__proto__', 'md5', 'SHA256', 'sha256+b64', 'sha256.x'),
  fc.oneof(hex(64), hex(96), hex(128), hex(32), hex(63), hex(64).map(h => h.toUpperCase())),
).map(([a, h]) => `${a}:${h}`);
const reference = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.tuple(fc.option(host), path, fc.option(tag), fc.option(digest))
      .map(([h, p, t, d]) => `${h !== null ? `${h}/` : ''}${p}${t !== null ? `:${t}` : ''}${d !== null ? `@${d}` : ''}`),
  },
  { weight: 1, arbitrary: chars('abAB09._-/:@[]', 0, 30) },
  { weight: 1, arbitrary: hex(64) },
);

describe('ImageReference.parse agrees with distribution/reference v0.6.0 on generated inputs', () => {
  withGo('20,000 generated references: same validity, same domain, path, tag and digest', () => {
    const dir = testDir('refparse-');
    const binary = join(dir, 'refparse');
    execFileSync('go', ['build', '-o', binary, '.'], { cwd: join(__dirname, 'reference-go'), stdio: 'pipe', timeout: 300_000 });

    const inputs = [...new Set(fc.sample(reference, { numRuns: 20_000, seed: 8 }).filter(s => s.length <= 1024))];
    const answers = spawnSync(binary, [], { input: inputs.map(s => JSON.stringify(s)).join('\n') + '\n', encoding: 'utf-8', maxBuffer: 256 * 1024 * 1024 });
    const lines = answers.stdout.trim().split('\n').map(l => JSON.parse(l) as Answer);
    expect(lines).toHaveLength(inputs.length);

    const disagreements: string[] = [];
    let valid = 0;
    inputs.forEach((input, i) => {
      const want = expected(input, lines[i]);
      const got = ours(input);
      valid += want.ok ? 1 : 0;
      const sameParts = want.domain === got.domain && want.path === got.path
        && (want.tag || undefined) === got.tag && (want.digest || undefined) === got.digest;
      const same = want.ok === got.ok && (!want.ok || sameParts);
      if (!same) {
        disagreements.push(`${JSON.stringify(input)}: go ${JSON.stringify(lines[i])}, ours ${JSON.stringify(got)}`);
      }
    });
    expect(disagreements.slice(0, 10)).toEqual([]);
    // the generator reaches both sides of the grammar, and the long-path cases
    expect(valid).toBeGreaterThan(inputs.length / 20);
    expect(inputs.length - valid).toBeGreaterThan(inputs.length / 5);
    expect(lines.some(answer => answer.ok && (answer.domain ?? '').length + (answer.path ?? '').length > 255)).toBe(true);
  }, 600_000);
});

describe('the two findings of the issue, without Go', () => {
  test('the 255-character limit is on the path only: a long ECR path under a long registry host is valid', () => {
    const registry = `${'a'.repeat(60)}.dkr.ecr.eu-west-1.amazonaws.com`;
    const repository = `docker-hub/${'x'.repeat(230)}`;
    expect(repository.length).toBeLessThanOrEqual(255);
    expect(ImageReference.parse(`${registry}/${repository}:1`).repository).toBe(repository);
    expect(() => ImageReference.parse(`${registry}/${repository}yyyyyyyyyyyyyyyyyyyyyyyyyy:1`)).toThrow(/the repository path '.*' is 267 characters long; the limit is 255 \(the registry host does not count\)/);
  });

  // (after a tag: without one, an uppercase letter before the first ':' is a repository name error, in Go too)
  test.each(['constructor', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'])('digest algorithm %s gets the normal message', algorithm => {
    const input = `nginx:1@${algorithm}:${'a'.repeat(64)}`;
    expect(() => ImageReference.parse(input)).toThrow(`Invalid image reference '${input}': unsupported digest algorithm '${algorithm}' (use sha256, sha384 or sha512)`);
  });
});
