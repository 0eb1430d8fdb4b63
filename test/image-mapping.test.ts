import * as fc from 'fast-check';
import { ImageMapping, ImageReference, MappingStatus, UpstreamCredentials, UpstreamRegistry } from '../src';

const REGISTRY = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';
const DIGEST = `sha256:${'c'.repeat(64)}`;

/** Valid references, built from the grammar's own pieces. */
const alnum = fc.stringMatching(/^[a-z0-9]{1,6}$/);
const separator = fc.constantFrom('.', '_', '__', '-', '--');
const pathComponent = fc.tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 2 }))
  .map(([head, rest]) => head + rest.map(([s, a]) => s + a).join(''));
const domain = fc.oneof(
  fc.constantFrom('docker.io', 'index.docker.io', 'registry-1.docker.io', 'quay.io', 'ghcr.io', 'registry.k8s.io', 'public.ecr.aws',
    'localhost', 'localhost:5000', '[::1]:5000', 'Example.COM', REGISTRY),
  fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,5}[a-z0-9]$/), fc.constantFrom('.com', '.io', '.dev'), fc.option(fc.integer({ min: 1, max: 65535 })))
    .map(([name, tld, port]) => `${name}${tld}${port === null ? '' : `:${port}`}`),
);
const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/);
const digest = fc.stringMatching(/^[a-f0-9]{64}$/).map(hex => `sha256:${hex}`);
/** A first component with '.' or ':' is a domain, so without a domain the first one has neither. */
const firstComponent = fc.tuple(alnum, fc.array(fc.tuple(fc.constantFrom('_', '__', '-'), alnum), { maxLength: 2 }))
  .map(([head, rest]) => head + rest.map(([s, a]) => s + a).join(''));
const reference = fc.record({
  domain: fc.option(domain),
  first: firstComponent,
  path: fc.array(pathComponent, { maxLength: 2 }),
  tag: fc.option(tag),
  digest: fc.option(digest),
}).map(r => `${r.domain === null ? '' : `${r.domain}/`}${[r.first, ...r.path].join('/')}${r.tag === null ? '' : `:${r.tag}`}${r.digest === null ? '' : `@${r.digest}`}`);

describe('ImageReference properties', () => {
  test('parse(x.toString()) round-trips, and toString is a fixed point', () => {
    fc.assert(fc.property(reference, input => {
      const ref = ImageReference.parse(input);
      const again = ImageReference.parse(ref.toString());
      expect([again.registry, again.repository, again.tag, again.digest]).toEqual([ref.registry, ref.repository, ref.tag, ref.digest]);
      expect(again.toString()).toBe(ref.toString());
    }), { numRuns: 500 });
  });

  test('any string either parses into a round-tripping reference or is refused with a reason', () => {
    fc.assert(fc.property(fc.string({ maxLength: 80 }), input => {
      let ref: ImageReference;
      try {
        ref = ImageReference.parse(input);
      } catch (e) {
        expect((e as Error).message).toMatch(/^Invalid image reference '.*': \S/s);
        return;
      }
      expect(ImageReference.parse(ref.toString()).toString()).toBe(ref.toString());
    }), { numRuns: 2000 });
  });
});

describe('ImageMapping', () => {
  const mapping = new ImageMapping({ registryUri: REGISTRY });

  test('the default table is the construct\'s default prefixes for every upstream with a fixed host', () => {
    expect(ImageMapping.defaultPrefixes()).toEqual([
      { registry: 'public.ecr.aws', ecrRepositoryPrefix: 'ecr-public' },
      { registry: 'registry.k8s.io', ecrRepositoryPrefix: 'k8s' },
      { registry: 'quay.io', ecrRepositoryPrefix: 'quay' },
      { registry: 'docker.io', ecrRepositoryPrefix: 'docker-hub' },
      { registry: 'ghcr.io', ecrRepositoryPrefix: 'ghcr' },
      { registry: 'registry.gitlab.com', ecrRepositoryPrefix: 'gitlab' },
      { registry: 'cgr.dev', ecrRepositoryPrefix: 'chainguard' },
    ]);
  });

  test('the CLI\'s default table agrees with the construct: each factory\'s default prefix for its host', () => {
    const credentials = UpstreamCredentials.fromSecret({} as any);
    const factories = [UpstreamRegistry.ecrPublic(), UpstreamRegistry.kubernetes(), UpstreamRegistry.quay(),
      UpstreamRegistry.dockerHub({ credentials }), UpstreamRegistry.githubContainerRegistry({ credentials }),
      UpstreamRegistry.gitlabContainerRegistry({ credentials }), UpstreamRegistry.chainguard({ credentials })];
    expect(ImageMapping.defaultPrefixes()).toEqual(factories.map(u => ({ registry: u.registry, ecrRepositoryPrefix: u.ecrRepositoryPrefix })));
  });

  test.each([
    ['nginx', `${REGISTRY}/docker-hub/library/nginx`],
    ['nginx:1.27', `${REGISTRY}/docker-hub/library/nginx:1.27`],
    ['registry-1.docker.io/bitnami/redis:7', `${REGISTRY}/docker-hub/bitnami/redis:7`],
    [`quay.io/prometheus/prometheus:v3@${DIGEST}`, `${REGISTRY}/quay/prometheus/prometheus:v3@${DIGEST}`],
    ['ghcr.io/fluxcd/flux-cli:v2.4.0', `${REGISTRY}/ghcr/fluxcd/flux-cli:v2.4.0`],
    ['registry.gitlab.com/group/project/image:1', `${REGISTRY}/gitlab/group/project/image:1`],
    ['cgr.dev/chainguard/static', `${REGISTRY}/chainguard/chainguard/static`],
  ])('%s -> %s', (input, uri) => {
    expect(mapping.map(input)).toEqual({ input, status: MappingStatus.REWRITTEN, uri, repository: uri.slice(REGISTRY.length + 1).replace(/[:@].*$/, ''), warning: undefined });
  });

  test('already cached references come back unchanged, with their cache path when under a prefix', () => {
    const served = `${REGISTRY}/docker-hub/library/nginx:1.27`;
    expect(mapping.map(served)).toEqual({ input: served, status: MappingStatus.ALREADY_CACHED, uri: served, repository: 'docker-hub/library/nginx' });
    const own = `${REGISTRY}/my-own-repo`; // a repository of the registry's own, under no cache prefix
    expect(mapping.map(own)).toEqual({ input: own, status: MappingStatus.ALREADY_CACHED, uri: own });
  });

  test('a cache URI is checked like any image: a path the cache does not serve is refused, saying the right one', () => {
    const wrong = `${REGISTRY}/docker-hub/nginx:1.27`; // ECR answers 403 without library/
    expect(mapping.map(wrong)).toEqual({
      input: wrong,
      status: MappingStatus.INVALID,
      reason: '\'docker-hub/nginx\' is not where the cache serves docker.io/nginx: it is cached as docker-hub/library/nginx (Docker Hub official '
        + `images keep library/: without it ECR answers 403). Write ${REGISTRY}/docker-hub/library/nginx:1.27, or pass the upstream reference to imageUri.`,
    });
  });

  test('ECR\'s dual-stack and FIPS hosts of the cache registry are the cache, checked the same way', () => {
    for (const host of ['111122223333.dkr-ecr.eu-west-1.on.aws', '111122223333.dkr.ecr-fips.eu-west-1.amazonaws.com']) {
      expect(mapping.map(`${host}/quay/org/app:1`)).toMatchObject({ status: MappingStatus.ALREADY_CACHED, uri: `${host}/quay/org/app:1`, repository: 'quay/org/app' });
      expect(mapping.map(`${host}/docker-hub/nginx:1`)).toMatchObject({ status: MappingStatus.INVALID });
    }
    // another account's registry through those hosts is another private ECR registry, not an unsupported one
    expect(mapping.map('444455556666.dkr-ecr.eu-west-1.on.aws/app:1')).toMatchObject({ status: MappingStatus.NO_RULE });
  });

  test('unserved and invalid references are reported, never rewritten', () => {
    expect(mapping.map('myregistry.azurecr.io/app:1')).toEqual({
      input: 'myregistry.azurecr.io/app:1',
      status: MappingStatus.NO_RULE,
      reason: 'no cache prefix for myregistry.azurecr.io: '
        + 'add UpstreamRegistry.azureContainerRegistry({ registryUrl, credentials }) to the cache\'s upstreams',
    });
    expect(mapping.map('mcr.microsoft.com/dotnet/runtime:8.0')).toEqual({
      input: 'mcr.microsoft.com/dotnet/runtime:8.0', status: MappingStatus.UNSUPPORTED_REGISTRY, reason: expect.stringMatching(/ECR cannot pull through 'mcr\.microsoft\.com'/),
    });
    expect(mapping.map('Nginx:1')).toEqual({ input: 'Nginx:1', status: MappingStatus.INVALID, reason: expect.stringMatching(/must be lowercase/) });
  });

  test('a digest-only reference is rewritten with a warning', () => {
    expect(mapping.map(`nginx@${DIGEST}`)).toMatchObject({ status: MappingStatus.REWRITTEN, warning: expect.stringMatching(/pinned by digest only/) });
  });

  test('an explicit table: overrides, Docker Hub aliases, ROOT, and ECR upstream prefixes', () => {
    const custom = new ImageMapping({
      registryUri: REGISTRY,
      prefixes: [
        { registry: 'registry-1.docker.io', ecrRepositoryPrefix: 'hub/' },
        { registry: 'myregistry.azurecr.io', ecrRepositoryPrefix: 'azure' },
        { registry: '444455556666.dkr.ecr.us-east-1.amazonaws.com', ecrRepositoryPrefix: 'golden', upstreamRepositoryPrefix: 'images' },
        { registry: '777788889999.dkr.ecr.us-east-1.amazonaws.com', ecrRepositoryPrefix: 'ROOT' },
      ],
    });
    expect(custom.map('nginx').uri).toBe(`${REGISTRY}/hub/library/nginx`);
    expect(custom.map('myregistry.azurecr.io/app:1').uri).toBe(`${REGISTRY}/azure/app:1`);
    expect(custom.map('444455556666.dkr.ecr.us-east-1.amazonaws.com/images/base:1').uri).toBe(`${REGISTRY}/golden/base:1`);
    expect(custom.map('444455556666.dkr.ecr.us-east-1.amazonaws.com/other/base:1')).toMatchObject({ status: MappingStatus.NO_RULE });
    expect(custom.map('777788889999.dkr.ecr.us-east-1.amazonaws.com/team/app:2').uri).toBe(`${REGISTRY}/team/app:2`);
    expect(custom.map('quay.io/org/x')).toMatchObject({ status: MappingStatus.NO_RULE });
    expect(custom.map('nginx:1').repository).toBe('hub/library/nginx');
    expect(custom.map('quay.io/org/x').repository).toBeUndefined();
  });

  test('mapping is idempotent: a mapped URI maps to itself', () => {
    fc.assert(fc.property(reference, input => {
      const once = mapping.map(input);
      if (once.uri !== undefined) {
        expect(mapping.map(once.uri)).toMatchObject({ status: MappingStatus.ALREADY_CACHED, uri: once.uri });
      }
    }), { numRuns: 500 });
  });

  test('registryUri is required', () => {
    expect(() => new ImageMapping({} as any)).toThrow(/registryUri is required/);
  });
});
