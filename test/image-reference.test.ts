import { ImageReference } from '../src';

// Vectors follow github.com/distribution/reference (normalize_test.go, reference_test.go): the same
// inputs are valid or invalid here as for ParseNormalizedNamed, with the same normalised result.
describe('ImageReference.parse: normalisation (ParseNormalizedNamed)', () => {
  test.each([
    ['nginx', 'docker.io', 'library/nginx', undefined, undefined, 'docker.io/library/nginx'],
    ['nginx:1.25', 'docker.io', 'library/nginx', '1.25', undefined, 'docker.io/library/nginx:1.25'],
    ['docker.io/nginx', 'docker.io', 'library/nginx', undefined, undefined, 'docker.io/library/nginx'],
    ['index.docker.io/nginx', 'docker.io', 'library/nginx', undefined, undefined, 'docker.io/library/nginx'],
    ['registry-1.docker.io/library/nginx:latest', 'docker.io', 'library/nginx', 'latest', undefined, 'docker.io/library/nginx:latest'],
    ['bitnami/redis', 'docker.io', 'bitnami/redis', undefined, undefined, 'docker.io/bitnami/redis'],
    ['docker.io/bitnami/redis:7', 'docker.io', 'bitnami/redis', '7', undefined, 'docker.io/bitnami/redis:7'],
    ['library/ubuntu', 'docker.io', 'library/ubuntu', undefined, undefined, 'docker.io/library/ubuntu'],
    ['quay.io/prometheus/prometheus:v2.53.0', 'quay.io', 'prometheus/prometheus', 'v2.53.0', undefined, 'quay.io/prometheus/prometheus:v2.53.0'],
    ['localhost/foo', 'localhost', 'foo', undefined, undefined, 'localhost/foo'],
    ['localhost:5000/foo/bar:tag', 'localhost:5000', 'foo/bar', 'tag', undefined, 'localhost:5000/foo/bar:tag'],
    ['[::1]:5000/foo', '[::1]:5000', 'foo', undefined, undefined, '[::1]:5000/foo'],
    ['[2001:db8::1]/foo', '[2001:db8::1]', 'foo', undefined, undefined, '[2001:db8::1]/foo'],
    ['Docker.io/foo', 'Docker.io', 'foo', undefined, undefined, 'Docker.io/foo'],
    ['EXAMPLE/foo', 'EXAMPLE', 'foo', undefined, undefined, 'EXAMPLE/foo'],
    ['example.com:8080/a/b/c', 'example.com:8080', 'a/b/c', undefined, undefined, 'example.com:8080/a/b/c'],
    ['foo_bar.com:8080', 'docker.io', 'library/foo_bar.com', '8080', undefined, 'docker.io/library/foo_bar.com:8080'],
    ['a__b---c/d', 'docker.io', 'a__b---c/d', undefined, undefined, 'docker.io/a__b---c/d'],
    ['xn--n3h.com/myimage', 'xn--n3h.com', 'myimage', undefined, undefined, 'xn--n3h.com/myimage'],
    [`nginx@sha256:${'a'.repeat(64)}`, 'docker.io', 'library/nginx', undefined, `sha256:${'a'.repeat(64)}`, `docker.io/library/nginx@sha256:${'a'.repeat(64)}`],
    [`nginx:1.25@sha256:${'a'.repeat(64)}`, 'docker.io', 'library/nginx', '1.25', `sha256:${'a'.repeat(64)}`, `docker.io/library/nginx:1.25@sha256:${'a'.repeat(64)}`],
    [`foo/bar@sha512:${'f'.repeat(128)}`, 'docker.io', 'foo/bar', undefined, `sha512:${'f'.repeat(128)}`, `docker.io/foo/bar@sha512:${'f'.repeat(128)}`],
    ['registry.k8s.io/pause:3.9', 'registry.k8s.io', 'pause', '3.9', undefined, 'registry.k8s.io/pause:3.9'],
    ['foo:A_b-c.9', 'docker.io', 'library/foo', 'A_b-c.9', undefined, 'docker.io/library/foo:A_b-c.9'],
  ])('%s', (input, registry, repository, tag, digest, canonical) => {
    const ref = ImageReference.parse(input);
    expect([ref.registry, ref.repository, ref.tag, ref.digest, ref.toString()]).toEqual([registry, repository, tag, digest, canonical]);
    expect(ref.name).toBe(`${registry}/${repository}`);
    // the canonical form parses to itself
    expect(ImageReference.parse(canonical).toString()).toBe(canonical);
  });
});

describe('ImageReference.parse: invalid input is refused with the input and the reason', () => {
  test.each([
    ['', /it is empty/],
    [':justtag', /does not follow the reference grammar/],
    [`@sha256:${'f'.repeat(64)}`, /does not follow the reference grammar/],
    ['a'.repeat(64).replace(/a/g, 'f'), /64-character hexadecimal string is an image ID/],
    ['Uppercase:tag', /the repository name 'library\/Uppercase' must be lowercase/],
    ['docker.io/UPPER/repo', /must be lowercase/],
    ['example.com/Foo', /must be lowercase/],
    ['validname:-invalidtag', /'-invalidtag' is not a valid tag/],
    [`validname:${'a'.repeat(129)}`, /is not a valid tag/],
    ['validname@invaliddigest:ecmxvcmqvfmsavkqerz', /is not a digest/],
    [`validname@sha256:${'f'.repeat(63)}`, /a sha256 digest is 64 lowercase hexadecimal characters/],
    [`validname@sha256:${'F'.repeat(64)}`, /a sha256 digest is 64 lowercase hexadecimal characters/],
    [`validname@md5:${'f'.repeat(32)}`, /unsupported digest algorithm 'md5'/],
    ['aa/asdf$$^/aa', /does not follow the reference grammar/],
    ['-foo/bar', /does not follow the reference grammar/],
    ['foo/-bar', /does not follow/],
    ['foo//bar', /does not follow/],
    ['foo/bar/', /does not follow/],
    ['foo..bar/x', /does not follow/],
    ['a__b.c/d', /'a__b\.c' stands where the registry goes .* but is not a valid host name/], // deliberate: Go returns an empty domain
    ['[fe80::1%eth0]:5000/foo', /does not follow/],
    ['http://example.com/foo', /does not follow/],
    [`${'a'.repeat(128)}/${'b'.repeat(127)}`, /is 256 characters long; the limit is 255/],
    ['x'.repeat(2000), /no valid reference is longer than 1024/],
  ])('%s', (input, reason) => {
    expect(() => ImageReference.parse(input)).toThrow(new RegExp(`Invalid image reference '${escape(input.slice(0, 40))}.*': .*${reason.source}`));
  });

  test('a path of exactly 255 characters is accepted, the registry not counted (distribution/reference v0.6.0)', () => {
    const path = `a/${'b'.repeat(253)}`;
    expect(ImageReference.parse(path).repository).toHaveLength(255);
    expect(ImageReference.parse(`registry.example.com/${path}`).repository).toHaveLength(255);
    expect(() => ImageReference.parse(`${path}b`)).toThrow(/the limit is 255/);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
