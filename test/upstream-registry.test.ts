import { Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry, UpstreamRegistryType } from '../src';
import { testApp } from './util';
import { CATALOGUE, COPIED_CATALOGUE, ecrRegistryRegion, entryForHost, suggestedPrefix, unsupportedRegistryMessage } from '../src/private/catalogue';

const stack = new Stack(testApp(), 'S');
const credentials = UpstreamCredentials.fromSecret(
  secretsmanager.Secret.fromSecretCompleteArn(stack, 'Secret', 'arn:aws:secretsmanager:us-east-1:111122223333:secret:ecr-pullthroughcache/hub-AbCdEf'));

describe('the catalogue of upstreams (ECR-FACTS.md section 1)', () => {
  test.each([
    ['ecrPublic', UpstreamRegistry.ecrPublic(), 'public.ecr.aws', UpstreamRegistryType.ECR_PUBLIC, 'ecr-public', 'public.ecr.aws'],
    ['kubernetes', UpstreamRegistry.kubernetes(), 'registry.k8s.io', UpstreamRegistryType.KUBERNETES, 'k8s', 'registry.k8s.io'],
    ['quay', UpstreamRegistry.quay(), 'quay.io', UpstreamRegistryType.QUAY, 'quay', 'quay.io'],
    ['dockerHub', UpstreamRegistry.dockerHub({ credentials }), 'registry-1.docker.io', UpstreamRegistryType.DOCKER_HUB, 'docker-hub', 'docker.io'],
    ['githubContainerRegistry', UpstreamRegistry.githubContainerRegistry({ credentials }), 'ghcr.io', UpstreamRegistryType.GITHUB_CONTAINER_REGISTRY, 'ghcr', 'ghcr.io'],
    ['gitlabContainerRegistry', UpstreamRegistry.gitlabContainerRegistry({ credentials }), 'registry.gitlab.com', UpstreamRegistryType.GITLAB_CONTAINER_REGISTRY, 'gitlab', 'registry.gitlab.com'],
    ['azureContainerRegistry', UpstreamRegistry.azureContainerRegistry({ credentials, registryUrl: 'myregistry.azurecr.io' }), 'myregistry.azurecr.io', UpstreamRegistryType.AZURE_CONTAINER_REGISTRY, 'azure', 'myregistry.azurecr.io'],
    ['chainguard', UpstreamRegistry.chainguard({ credentials }), 'cgr.dev', UpstreamRegistryType.CHAINGUARD, 'chainguard', 'cgr.dev'],
    ['ecr', UpstreamRegistry.ecr({ registryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com' }), '444455556666.dkr.ecr.eu-west-1.amazonaws.com', UpstreamRegistryType.ECR, 'ecr', '444455556666.dkr.ecr.eu-west-1.amazonaws.com'],
  ])('%s: URL, API value, default prefix and reference host', (_name, upstream, url, type, prefix, host) => {
    expect(upstream.registryUrl).toBe(url);
    expect(upstream.registryType).toBe(type);
    expect(upstream.ecrRepositoryPrefix).toBe(prefix);
    expect(upstream.registry).toBe(host);
  });

  test('the API enum values are exactly the nine ECR knows, and the mirror (which makes no rule)', () => {
    expect(Object.values(UpstreamRegistryType).filter(t => t !== UpstreamRegistryType.COPIED).sort()).toEqual([
      'azure-container-registry', 'chainguard', 'docker-hub', 'ecr', 'ecr-public',
      'github-container-registry', 'gitlab-container-registry', 'k8s', 'quay',
    ]);
  });

  test('a prefix can be overridden, nested, or ROOT; a trailing slash is refused, never silently dropped', () => {
    expect(UpstreamRegistry.quay({ ecrRepositoryPrefix: 'mirrors/quay' }).ecrRepositoryPrefix).toBe('mirrors/quay');
    expect(() => UpstreamRegistry.quay({ ecrRepositoryPrefix: 'quay-io/' })).toThrow(/'quay-io\/' is invalid: it ends with '\/', which ECR always assumes; write 'quay-io'/);
    expect(UpstreamRegistry.ecr({ registryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com', ecrRepositoryPrefix: 'ROOT' }).ecrRepositoryPrefix).toBe('ROOT');
  });

  test('ECR upstreams carry their role and upstream repository prefix', () => {
    const role = iam.Role.fromRoleArn(stack, 'PtcRole', 'arn:aws:iam::111122223333:role/ptc');
    const upstream = UpstreamRegistry.ecr({
      registryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com', role, ecrRepositoryPrefix: 'my-app', upstreamRepositoryPrefix: 'upstream-app',
    });
    expect(upstream.role).toBe(role);
    expect(upstream.upstreamRepositoryPrefix).toBe('upstream-app');
  });
});

describe('default prefixes: one convention, a short name of the registry, for pulled-through and copied upstreams alike', () => {
  test.each(COPIED_CATALOGUE.map(e => [e.host, e.defaultPrefix]))('UpstreamRegistry.copied(%s) is cached under %s', (host, prefix) => {
    const upstream = UpstreamRegistry.copied({ registryUrl: host, images: ['a/b:1'] });
    expect(upstream).toMatchObject({ registryUrl: host, registry: host, ecrRepositoryPrefix: prefix, registryType: UpstreamRegistryType.COPIED });
    // a copied registry is one ECR really cannot pull through, and its message names the copy with the default prefix
    expect(entryForHost(host)).toBeUndefined();
    expect(() => UpstreamRegistry.fromUrl(host)).toThrow(`UpstreamRegistry.copied({ registryUrl: '${host}', images: ['<repository>:<tag>'] })`);
  });

  test('no two default prefixes are equal, and none lies under another (a cache holding all of them is valid)', () => {
    const prefixes = [...CATALOGUE.map(e => e.defaultPrefix), ...COPIED_CATALOGUE.map(e => e.defaultPrefix)];
    expect(new Set(prefixes).size).toBe(prefixes.length);
    expect(prefixes.filter(p => prefixes.some(q => p.startsWith(`${q}/`)))).toEqual([]);
    expect(prefixes.filter(p => p.includes('.'))).toEqual([]); // short names, never a host
    const role = iam.Role.fromRoleArn(stack, 'Role', 'arn:aws:iam::111122223333:role/ptc');
    const all = [
      UpstreamRegistry.ecrPublic(), UpstreamRegistry.kubernetes(), UpstreamRegistry.quay(), UpstreamRegistry.dockerHub({ credentials }),
      UpstreamRegistry.githubContainerRegistry({ credentials }), UpstreamRegistry.gitlabContainerRegistry({ credentials }),
      UpstreamRegistry.azureContainerRegistry({ credentials, registryUrl: 'myregistry.azurecr.io' }), UpstreamRegistry.chainguard({ credentials }),
      UpstreamRegistry.ecr({ registryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com', role }),
      ...COPIED_CATALOGUE.map(e => UpstreamRegistry.copied({ registryUrl: e.host, images: ['a/b:1'] })),
    ];
    expect(all.map(u => u.ecrRepositoryPrefix)).toEqual(prefixes);
    expect(() => new PullThroughCacheRules(new Stack(testApp(), 'All', { env: { account: '111122223333', region: 'us-east-1' } }), 'Cache',
      { upstreams: all, enableScanning: false, enableMonitoring: false })).not.toThrow();
  });

  test('a copied default prefix another upstream of the cache already uses is refused, naming both', () => {
    expect(() => new PullThroughCacheRules(new Stack(testApp(), 'Clash'), 'Cache', {
      upstreams: [UpstreamRegistry.quay({ ecrRepositoryPrefix: 'mcr' }), UpstreamRegistry.copied({ registryUrl: 'mcr.microsoft.com', images: ['a/b:1'] })],
    })).toThrow(/the cache prefix 'mcr' is used by both quay\.io and mcr\.microsoft\.com/);
  });

  test.each([
    ['registry.example.com:5000', 'example'],
    ['us.gcr.io', 'us-gcr'],
    ['docker.elastic.co', 'elastic'],
    ['harbor.corp.example.com', 'harbor-corp-example'],
    ['localhost:5000', 'localhost'],
    ['quay.internal', 'quay-copied'],
    ['gitlab.example.com', 'gitlab-example'],
  ])('any other host needs a prefix; %s is suggested %s, in the copier error and in fromUrl\'s', (host, suggestion) => {
    expect(suggestedPrefix(host)).toBe(suggestion);
    expect(() => UpstreamRegistry.copied({ registryUrl: host, images: ['a/b:1'] })).toThrow(`for example ecrRepositoryPrefix: '${suggestion}'`);
    expect(unsupportedRegistryMessage(host)).toContain(`UpstreamRegistry.copied({ registryUrl: '${host}', ecrRepositoryPrefix: '${suggestion}', images:`);
    expect(UpstreamRegistry.copied({ registryUrl: host, ecrRepositoryPrefix: suggestion, images: ['a/b:1'] }).ecrRepositoryPrefix).toBe(suggestion);
  });
});

describe('fromUrl', () => {
  test.each([
    ['docker.io', UpstreamRegistryType.DOCKER_HUB],
    ['index.docker.io', UpstreamRegistryType.DOCKER_HUB],
    ['registry-1.docker.io', UpstreamRegistryType.DOCKER_HUB],
    ['https://ghcr.io/', UpstreamRegistryType.GITHUB_CONTAINER_REGISTRY],
    ['myregistry.azurecr.io', UpstreamRegistryType.AZURE_CONTAINER_REGISTRY],
    ['cgr.dev', UpstreamRegistryType.CHAINGUARD],
  ])('%s needs credentials and resolves to %s', (url, type) => {
    expect(UpstreamRegistry.fromUrl(url, { credentials }).registryType).toBe(type);
    expect(() => UpstreamRegistry.fromUrl(url)).toThrow(/needs credentials.*UpstreamCredentials\.fromSecret/);
  });

  test.each([
    ['public.ecr.aws', UpstreamRegistryType.ECR_PUBLIC],
    ['registry.k8s.io', UpstreamRegistryType.KUBERNETES],
    ['quay.io', UpstreamRegistryType.QUAY],
    ['111122223333.dkr.ecr.us-west-2.amazonaws.com', UpstreamRegistryType.ECR],
  ])('%s resolves to %s', (url, type) => {
    expect(UpstreamRegistry.fromUrl(url).registryType).toBe(type);
  });

  test.each([
    ['mcr.microsoft.com', /ECR cannot pull through 'mcr\.microsoft\.com': Microsoft Container Registry .* is not an Azure Container Registry/],
    ['registry.access.redhat.com', /ECR cannot pull through 'registry\.access\.redhat\.com': Red Hat registries are not ECR upstreams/],
    ['registry.redhat.io', /Red Hat/],
    ['gcr.io', /ECR cannot pull through 'gcr\.io': Google/],
    ['europe-docker.pkg.dev', /Google/],
    ['gitlab.example.com', /only GitLab\.com/],
    ['harbor.example.com', /ECR cannot pull through 'harbor\.example\.com'\. Supported upstreams: .*Docker Hub \(registry-1\.docker\.io\)/],
  ])('%s is refused with the reason and the way out', (url, message) => {
    expect(() => UpstreamRegistry.fromUrl(url)).toThrow(message);
    expect(() => UpstreamRegistry.fromUrl(url)).toThrow(new RegExp(`copying the images you need into the cache: UpstreamRegistry\\.copied\\(\\{ registryUrl: '${url.replace(/\./g, '\\.')}'`));
  });
});

describe('validation', () => {
  test.each([
    ['a', /'a' is invalid: it is 1 characters long; ECR allows 2 to 30/],
    ['x'.repeat(31), /it is 31 characters long/],
    ['Docker-Hub', /it has uppercase letters/],
    ['docker hub', /lowercase path components/],
    ['-hub', /lowercase path components/],
    ['hub//x', /lowercase path components/],
  ])('prefix %s is refused', (prefix, message) => {
    expect(() => UpstreamRegistry.quay({ ecrRepositoryPrefix: prefix })).toThrow(message);
  });

  test('a token prefix is refused with the reason, not a crash', () => {
    const token = new iam.Role(stack, 'R', { assumedBy: new iam.AccountRootPrincipal() }).roleName;
    expect(() => UpstreamRegistry.quay({ ecrRepositoryPrefix: token })).toThrow(/must be a literal string, not a token/);
  });

  test('credentials-required upstreams refuse a missing credential (as from Python or Java with None/null)', () => {
    expect(() => UpstreamRegistry.dockerHub({} as any)).toThrow(/Docker Hub.*ECR needs credentials to pull from registry-1\.docker\.io/);
    expect(() => UpstreamRegistry.githubContainerRegistry(undefined as any)).toThrow(/needs credentials/);
  });

  test('anonymous upstreams refuse credentials', () => {
    expect(() => UpstreamRegistry.fromUrl('quay.io', { credentials })).toThrow(/quay\.io takes no credentials/);
  });

  test.each([
    'myregistry.azurecr.io/path', 'https://myregistry.azurecr.io', 'MyRegistry.azurecr.io', 'abc.azurecr.io', 'myregistry.azurecr.cn',
  ])('malformed Azure URL %s is refused', url => {
    expect(() => UpstreamRegistry.azureContainerRegistry({ credentials, registryUrl: url }))
      .toThrow(/is not an Azure Container Registry login server\. Use '<name>\.azurecr\.io'/);
  });

  test.each([
    '111122223333.dkr.ecr.us-west-2.amazonaws.com/repo', '11112222333.dkr.ecr.us-west-2.amazonaws.com',
    'public.ecr.aws', '111122223333.dkr.ecr.amazonaws.com', 'https://111122223333.dkr.ecr.us-west-2.amazonaws.com',
  ])('malformed ECR URL %s is refused', url => {
    expect(() => UpstreamRegistry.ecr({ registryUrl: url })).toThrow(/is not a private ECR registry\. Use '<12-digit account>\.dkr\.ecr\.<region>\.amazonaws\.com'/);
  });

  test('a missing URL (as from Python or Java with None/null) says which form to use', () => {
    expect(() => UpstreamRegistry.azureContainerRegistry({ credentials } as any)).toThrow(/azureContainerRegistry: registryUrl is required: use '<name>\.azurecr\.io'/);
    expect(() => UpstreamRegistry.ecr({} as any)).toThrow(/ecr: registryUrl is required: use '<12-digit account>\.dkr\.ecr\.<region>\.amazonaws\.com'/);
  });

  test('a token URL is accepted (checked by ECR at deploy time)', () => {
    expect(Token.isUnresolved(UpstreamRegistry.ecr({ registryUrl: `${stack.account}.dkr.ecr.eu-west-1.amazonaws.com` }).registryUrl)).toBe(true);
  });

  test('role and upstreamRepositoryPrefix only for ECR upstreams', () => {
    expect(() => UpstreamRegistry.fromUrl('quay.io', { upstreamRepositoryPrefix: 'team' })).toThrow(/apply only to ECR upstreams/);
  });

  test('upstreamRepositoryPrefix needs a non-ROOT cache prefix', () => {
    expect(() => UpstreamRegistry.ecr({ registryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com', ecrRepositoryPrefix: 'ROOT', upstreamRepositoryPrefix: 'team' }))
      .toThrow(/upstreamRepositoryPrefix 'team' needs an ecrRepositoryPrefix other than ROOT/);
  });
});

test('ecrRegistryRegion reads the Region of an ECR registry host in any partition, the account written or a token', () => {
  expect(ecrRegistryRegion('111122223333.dkr.ecr.eu-west-1.amazonaws.com')).toBe('eu-west-1');
  expect(ecrRegistryRegion('111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn')).toBe('cn-north-1');
  expect(ecrRegistryRegion('${Token[AWS.AccountId.6]}.dkr.ecr.us-gov-west-1.amazonaws.com')).toBe('us-gov-west-1');
  expect(ecrRegistryRegion('111122223333.dkr.ecr.${Token[AWS.Region.9]}.amazonaws.com')).toBeUndefined();
  expect(ecrRegistryRegion('public.ecr.aws')).toBeUndefined();
  expect(ecrRegistryRegion('registry.example.com')).toBeUndefined();
});
