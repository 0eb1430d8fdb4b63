import { ImageReference } from '../src';

/*
 * The test vectors of github.com/distribution/reference (normalize_test.go and reference_test.go), ported to
 * ImageReference.parse, which follows ParseNormalizedNamed. Where a vector was written for the un-normalised
 * Parse, the expectation below is what ParseNormalizedNamed makes of the same input (implicit docker.io and
 * library/; the 255-character limit counted on the normalised name).
 */

const F64 = 'f'.repeat(64);
const F128 = 'f'.repeat(128);

function canonical(input: string): string {
  return ImageReference.parse(input).toString();
}

describe('normalize_test.go TestValidateReferenceName', () => {
  test.each([
    'docker/docker', 'library/debian', 'debian', 'docker.io/docker/docker', 'docker.io/library/debian', 'docker.io/debian',
    'index.docker.io/docker/docker', 'index.docker.io/library/debian', 'index.docker.io/debian', '127.0.0.1:5000/docker/docker',
    '127.0.0.1:5000/library/debian', '127.0.0.1:5000/debian', '192.168.0.1', '192.168.0.1:80', '192.168.0.1:8/debian',
    '192.168.0.2:25000/debian', 'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev', '[fc00::1]:5000/docker',
    '[fc00::1]:5000/docker/docker', '[fc00:1:2:3:4:5:6:7]:5000/library/debian',
    'docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', 'Docker/docker', 'DOCKER/docker',
  ])('valid: %s', input => {
    expect(() => ImageReference.parse(input)).not.toThrow();
  });

  test.each([
    'https://github.com/docker/docker', 'docker/Docker', '-docker', '-docker/docker', '-docker.io/docker/docker', 'docker///docker',
    'docker.io/docker/Docker', 'docker.io/docker///docker', '[fc00::1]', '[fc00::1]:5000', 'fc00::1:5000/debian',
    '[fe80::1%eth0]:5000/debian', '[2001:db8:3:4::192.0.2.33]:5000/debian', '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
  ])('invalid: %s', input => {
    expect(() => ImageReference.parse(input)).toThrow(/^Invalid image reference/);
  });
});

describe('normalize_test.go TestValidateRemoteName', () => {
  test.each(['docker/docker', 'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev', 'docker-rules/docker',
    'docker---rules/docker', 'doc/docker', 'd/docker', 'jess/t', 'dock__er/docker'])('valid: %s', input => {
    expect(() => ImageReference.parse(input)).not.toThrow();
  });

  test.each(['docker/Docker', 'docker///docker', '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', '-docker/docker',
    'docker-/docker', '-docker-/docker', '____/____', '_docker/_docker', 'dock..er/docker', 'dock_.er/docker', 'dock-.er/docker', 'docker/',
    `${'this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_'.repeat(4)}this/docker`])('invalid: %s', input => {
    expect(() => ImageReference.parse(input)).toThrow(/^Invalid image reference/);
  });
});

describe('normalize_test.go TestParseRepositoryInfo: familiar, full and ambiguous names agree', () => {
  test.each([
    // [names that must all parse the same, full name, domain, remote name]
    [['fooo/bar', 'docker.io/fooo/bar', 'index.docker.io/fooo/bar'], 'docker.io/fooo/bar', 'docker.io', 'fooo/bar'],
    [['ubuntu', 'docker.io/library/ubuntu', 'library/ubuntu'], 'docker.io/library/ubuntu', 'docker.io', 'library/ubuntu'],
    [['nonlibrary/ubuntu', 'docker.io/nonlibrary/ubuntu'], 'docker.io/nonlibrary/ubuntu', 'docker.io', 'nonlibrary/ubuntu'],
    [['other/library', 'docker.io/other/library'], 'docker.io/other/library', 'docker.io', 'other/library'],
    [['127.0.0.1:8000/private/moonbase'], '127.0.0.1:8000/private/moonbase', '127.0.0.1:8000', 'private/moonbase'],
    [['127.0.0.1:8000/privatebase'], '127.0.0.1:8000/privatebase', '127.0.0.1:8000', 'privatebase'],
    [['example.com/private/moonbase'], 'example.com/private/moonbase', 'example.com', 'private/moonbase'],
    [['example.com/privatebase'], 'example.com/privatebase', 'example.com', 'privatebase'],
    [['example.com:8000/private/moonbase'], 'example.com:8000/private/moonbase', 'example.com:8000', 'private/moonbase'],
    [['example.com:8000/privatebasee'], 'example.com:8000/privatebasee', 'example.com:8000', 'privatebasee'],
    [['ubuntu-12.04-base', 'docker.io/library/ubuntu-12.04-base', 'index.docker.io/library/ubuntu-12.04-base'],
      'docker.io/library/ubuntu-12.04-base', 'docker.io', 'library/ubuntu-12.04-base'],
    [['foo', 'docker.io/library/foo', 'docker.io/foo'], 'docker.io/library/foo', 'docker.io', 'library/foo'],
    [['library/foo/bar', 'docker.io/library/foo/bar'], 'docker.io/library/foo/bar', 'docker.io', 'library/foo/bar'],
    [['store/foo/bar', 'docker.io/store/foo/bar'], 'docker.io/store/foo/bar', 'docker.io', 'store/foo/bar'],
    [['Foo/bar'], 'Foo/bar', 'Foo', 'bar'],
    [['FOO/bar'], 'FOO/bar', 'FOO', 'bar'],
  ] as Array<[string[], string, string, string]>)('%j', (names, full, domain, remote) => {
    for (const name of names) {
      const ref = ImageReference.parse(name);
      expect([ref.toString(), ref.registry, ref.repository]).toEqual([full, domain, remote]);
    }
  });
});

describe('normalize_test.go TestNormalizedSplitHostname, TestParseReferenceWithTagAndDigest, TestParseAnyReference', () => {
  test.each([
    ['test.com/foo', 'test.com', 'foo'], ['test_com/foo', 'docker.io', 'test_com/foo'], ['docker/migrator', 'docker.io', 'docker/migrator'],
    ['test.com:8080/foo', 'test.com:8080', 'foo'], ['test-com:8080/foo', 'test-com:8080', 'foo'], ['foo', 'docker.io', 'library/foo'],
    ['xn--n3h.com/foo', 'xn--n3h.com', 'foo'], ['xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo'], ['docker.io/foo', 'docker.io', 'library/foo'],
    ['docker.io/library/foo', 'docker.io', 'library/foo'], ['docker.io/library/foo/bar', 'docker.io', 'library/foo/bar'],
  ])('%s -> %s + %s', (input, domain, path) => {
    const ref = ImageReference.parse(input);
    expect([ref.registry, ref.repository]).toEqual([domain, path]);
  });

  test('tag and digest are both kept', () => {
    const short = 'busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa';
    const ref = ImageReference.parse(short);
    expect(ref.toString()).toBe(`docker.io/library/${short}`);
    expect([ref.tag, ref.digest]).toEqual(['latest', 'sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa']);
  });

  const D = 'sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c';
  test.each([
    ['redis', 'docker.io/library/redis'], ['redis:latest', 'docker.io/library/redis:latest'],
    ['docker.io/library/redis:latest', 'docker.io/library/redis:latest'], [`redis@${D}`, `docker.io/library/redis@${D}`],
    [`docker.io/library/redis@${D}`, `docker.io/library/redis@${D}`], ['dmcgowan/myapp', 'docker.io/dmcgowan/myapp'],
    ['dmcgowan/myapp:latest', 'docker.io/dmcgowan/myapp:latest'], ['docker.io/mcgowan/myapp:latest', 'docker.io/mcgowan/myapp:latest'],
    [`dmcgowan/myapp@${D}`, `docker.io/dmcgowan/myapp@${D}`], [`docker.io/dmcgowan/myapp@${D}`, `docker.io/dmcgowan/myapp@${D}`],
    ['dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9', 'docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9'],
    ['dbcc1', 'docker.io/library/dbcc1'],
  ])('%s is %s', (input, full) => {
    expect(canonical(input)).toBe(full);
  });
});

describe('reference_test.go TestReferenceParse, under normalisation', () => {
  test.each([
    ['test_com', 'docker.io', 'library/test_com', undefined, undefined],
    ['test.com:tag', 'docker.io', 'library/test.com', 'tag', undefined],
    ['test.com:5000', 'docker.io', 'library/test.com', '5000', undefined],
    ['test.com/repo:tag', 'test.com', 'repo', 'tag', undefined],
    ['test:5000/repo', 'test:5000', 'repo', undefined, undefined],
    ['test:5000/repo:tag', 'test:5000', 'repo', 'tag', undefined],
    [`test:5000/repo@sha256:${F64}`, 'test:5000', 'repo', undefined, `sha256:${F64}`],
    [`test:5000/repo:tag@sha256:${F64}`, 'test:5000', 'repo', 'tag', `sha256:${F64}`],
    ['lowercase:Uppercase', 'docker.io', 'library/lowercase', 'Uppercase', undefined],
    ['sub-dom1.foo.com/bar/baz/quux', 'sub-dom1.foo.com', 'bar/baz/quux', undefined, undefined],
    // v0.6.0: the 255-character limit is on the path only, so docker.io/ in front does not push it over
    [`${'a/'.repeat(127)}a:tag-puts-this-over-max`, 'docker.io', `${'a/'.repeat(127)}a`, 'tag-puts-this-over-max', undefined],
    ['sub-dom1.foo.com/bar/baz/quux:some-long-tag', 'sub-dom1.foo.com', 'bar/baz/quux', 'some-long-tag', undefined],
    ['b.gcr.io/test.example.com/my-app:test.example.com', 'b.gcr.io', 'test.example.com/my-app', 'test.example.com', undefined],
    ['xn--n3h.com/myimage:xn--n3h.com', 'xn--n3h.com', 'myimage', 'xn--n3h.com', undefined],
    [`xn--7o8h.com/myimage:xn--7o8h.com@sha512:${F128}`, 'xn--7o8h.com', 'myimage', 'xn--7o8h.com', `sha512:${F128}`],
    ['foo_bar.com:8080', 'docker.io', 'library/foo_bar.com', '8080', undefined],
    ['foo/foo_bar.com:8080', 'docker.io', 'foo/foo_bar.com', '8080', undefined],
    ['192.168.1.1', 'docker.io', 'library/192.168.1.1', undefined, undefined],
    ['192.168.1.1:tag', 'docker.io', 'library/192.168.1.1', 'tag', undefined],
    ['192.168.1.1:5000', 'docker.io', 'library/192.168.1.1', '5000', undefined],
    ['192.168.1.1/repo', '192.168.1.1', 'repo', undefined, undefined],
    ['192.168.1.1:5000/repo', '192.168.1.1:5000', 'repo', undefined, undefined],
    ['192.168.1.1:5000/repo:5050', '192.168.1.1:5000', 'repo', '5050', undefined],
    ['[2001:db8::1]/repo', '[2001:db8::1]', 'repo', undefined, undefined],
    ['[2001:db8:1:2:3:4:5:6]/repo:tag', '[2001:db8:1:2:3:4:5:6]', 'repo', 'tag', undefined],
    ['[2001:db8::1]:5000/repo', '[2001:db8::1]:5000', 'repo', undefined, undefined],
    ['[2001:db8::1]:5000/repo:tag', '[2001:db8::1]:5000', 'repo', 'tag', undefined],
    [`[2001:db8::1]:5000/repo@sha256:${F64}`, '[2001:db8::1]:5000', 'repo', undefined, `sha256:${F64}`],
    [`[2001:db8::1]:5000/repo:tag@sha256:${F64}`, '[2001:db8::1]:5000', 'repo', 'tag', `sha256:${F64}`],
    ['[2001:db8::]:5000/repo', '[2001:db8::]:5000', 'repo', undefined, undefined],
    ['[::1]:5000/repo', '[::1]:5000', 'repo', undefined, undefined],
  ])('%s', (input, registry, repository, tag, digest) => {
    const ref = ImageReference.parse(input);
    expect([ref.registry, ref.repository, ref.tag, ref.digest]).toEqual([registry, repository, tag, digest]);
  });

  test.each([
    ['', /it is empty/],
    [':justtag', /does not follow the reference grammar/],
    [`@sha256:${F64}`, /does not follow the reference grammar/],
    [`repo@sha256:${'f'.repeat(34)}`, /a sha256 digest is 64 lowercase hexadecimal characters/],
    [`validname@invaliddigest:${F64}`, /unsupported digest algorithm 'invaliddigest'/],
    ['Uppercase:tag', /must be lowercase/],
    ['test:5000/Uppercase/lowercase:tag', /must be lowercase/],
    [`${'a/'.repeat(128)}a:tag`, /the limit is 255/],
    ['aa/asdf$$^/aa', /does not follow the reference grammar/],
    ['[2001:db8::1]', /an IPv6 registry host must be followed by a repository path/],
    ['[2001:db8::1]:5000', /an IPv6 registry host must be followed by a repository path/],
    ['[2001:db8::1]:tag', /an IPv6 registry host must be followed by a repository path/],
    ['[fe80::1%eth0]:5000/repo', /does not follow/],
    ['[fe80::1%@invalidzone]:5000/repo', /does not follow|is not a digest/],
  ])('invalid: %s', (input, reason) => {
    expect(() => ImageReference.parse(input)).toThrow(reason);
  });
});
