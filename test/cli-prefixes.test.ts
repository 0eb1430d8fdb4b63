/**
 * ecr-ptc's prefix table: from the account (DescribePullThroughCacheRules), from a synthesized cloud assembly, or
 * the defaults (said on stderr); --prefix checked like the construct checks upstreams.
 *
 * moto 5.2.1 (requirements-dev.txt) has no pull through cache API (its ECRResponse has no *pull_through* action), so
 * the account is answered by aws-sdk-client-mock with responses shaped like the API reference's
 * (DescribePullThroughCacheRules: pullThroughCacheRules[] with createdAt, ecrRepositoryPrefix, registryId,
 * upstreamRegistry, upstreamRegistryUrl, ...; nextToken; errors InvalidParameterException, ServerException,
 * ValidationException), and the shipped bundle once by a loopback server speaking the same JSON protocol.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'http';
import { AddressInfo } from 'net';
import { join } from 'path';
import { DescribePullThroughCacheRulesCommand, ECRClient, ECRServiceException, PullThroughCacheRule, UpstreamRegistry as ApiUpstream } from '@aws-sdk/client-ecr';
import { Stack, Stage } from 'aws-cdk-lib';
import { mockClient } from 'aws-sdk-client-mock';
import { PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';
import { testApp, testDir } from './util';
import { accountRules } from '../src/cli/account-rules';
import { Deps, EXIT_OK, EXIT_USAGE, run, runAsync } from '../src/cli/main';

const ACCOUNT = '111122223333';
const REGISTRY = `${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com`;

interface Captured { code: number; out: string; err: string }

function io() {
  const captured = { out: '', err: '' };
  return { captured, io: { out: (t: string) => { captured.out += t; }, err: (t: string) => { captured.err += t; }, interactive: false } };
}

async function cliAsync(args: string[], deps: Deps = {}): Promise<Captured> {
  const { captured, io: sink } = io();
  const code = await runAsync(args, sink, deps);
  return { code, ...captured };
}

function cli(args: string[]): Captured {
  const { captured, io: sink } = io();
  const code = run(args, sink);
  return { code, ...captured };
}

/** A folder with one manifest naming an image of each of several registries. */
function manifestDir(): string {
  const dir = testDir('prefixes-');
  fs.writeFileSync(join(dir, 'pod.yaml'), [
    'apiVersion: v1', 'kind: Pod', 'metadata:', '  name: p', 'spec:', '  containers:',
    '    - name: a', '      image: nginx:1.27',
    '    - name: b', '      image: ghcr.io/org/app:1.0',
    '    - name: c', '      image: public.ecr.aws/karpenter/controller:1.0.0',
    '    - name: d', '      image: quay.io/jetstack/cert-manager-controller:v1.15.0',
    '',
  ].join('\n'));
  return dir;
}

/** A rule as the API reference shows one (epoch seconds for createdAt/updatedAt, as the JSON protocol sends them). */
function apiRule(prefix: string, upstream: ApiUpstream, url: string, extra: Partial<PullThroughCacheRule> = {}): PullThroughCacheRule {
  return {
    createdAt: new Date(1636152393 * 1000),
    ecrRepositoryPrefix: prefix,
    registryId: ACCOUNT,
    upstreamRegistry: upstream,
    upstreamRegistryUrl: url,
    updatedAt: new Date(1636152393 * 1000),
    ...extra,
  };
}

function serviceError(name: string, message: string, status: number): ECRServiceException {
  return new ECRServiceException({ name, message, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
}

describe('--from-account (aws-sdk-client-mock, API reference shapes)', () => {
  const ecr = mockClient(ECRClient);
  const deps: Deps = { accountRules: region => accountRules(region) };
  const env = { ...process.env };
  beforeEach(() => {
    ecr.reset();
    process.env.AWS_ACCESS_KEY_ID = 'AKIAEXAMPLE';
    process.env.AWS_SECRET_ACCESS_KEY = 'secret';
  });
  afterAll(() => {
    ecr.restore();
    process.env = env;
  });

  test('every page is read (nextToken), and only images with a rule are rewritten', async () => {
    ecr.on(DescribePullThroughCacheRulesCommand, { registryId: ACCOUNT, nextToken: undefined }).resolves({
      pullThroughCacheRules: [apiRule('ecr-public', 'ecr-public', 'public.ecr.aws')],
      nextToken: 'page-2',
    });
    ecr.on(DescribePullThroughCacheRulesCommand, { registryId: ACCOUNT, nextToken: 'page-2' }).resolves({
      pullThroughCacheRules: [apiRule('hub', 'docker-hub', 'registry-1.docker.io', {
        credentialArn: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:ecr-pullthroughcache/docker-hub-AbCdEf`,
      })],
    });
    const dir = manifestDir();
    const result = await cliAsync(['rewrite', dir, '--registry', REGISTRY, '--from-account'], deps);

    expect(ecr.commandCalls(DescribePullThroughCacheRulesCommand)).toHaveLength(2);
    expect(result.err).toContain(`2 pull through cache rules read from ${REGISTRY}: docker.io=hub, public.ecr.aws=ecr-public`);
    expect(result.err).not.toContain('assuming the default');
    const text = fs.readFileSync(join(dir, 'pod.yaml'), 'utf-8');
    expect(text).toContain(`image: ${REGISTRY}/hub/library/nginx:1.27`);
    expect(text).toContain(`image: ${REGISTRY}/ecr-public/karpenter/controller:1.0.0`);
    // no GHCR or Quay rule in the account: left as they were, and reported
    expect(text).toContain('image: ghcr.io/org/app:1.0');
    expect(text).toContain('image: quay.io/jetstack/cert-manager-controller:v1.15.0');
    expect(result.out).toMatch(/ghcr\.io\/org\/app:1\.0: no cache prefix for ghcr\.io/);
    expect(result.code).not.toBe(EXIT_OK);
  });

  test('without --registry, the Region comes from the AWS settings and the account from the rules', async () => {
    process.env.AWS_REGION = 'eu-central-1';
    try {
      ecr.on(DescribePullThroughCacheRulesCommand).resolves({
        pullThroughCacheRules: [apiRule('k8s', 'k8s', 'registry.k8s.io'), apiRule('team/hub', 'docker-hub', 'registry-1.docker.io')],
      });
      const dir = manifestDir();
      const result = await cliAsync(['rewrite', dir, '--from-account', '--dry-run'], deps);
      expect(ecr.commandCalls(DescribePullThroughCacheRulesCommand)[0].args[0].input.registryId).toBeUndefined();
      expect(result.out).toContain(`nginx:1.27 -> ${ACCOUNT}.dkr.ecr.eu-central-1.amazonaws.com/team/hub/library/nginx:1.27`);
    } finally {
      delete process.env.AWS_REGION;
    }
  });

  test('an ECR upstream with an upstream repository prefix maps only what it covers', async () => {
    ecr.on(DescribePullThroughCacheRulesCommand).resolves({
      pullThroughCacheRules: [apiRule('central', 'ecr', '444455556666.dkr.ecr.us-east-1.amazonaws.com', {
        upstreamRepositoryPrefix: 'shared', customRoleArn: `arn:aws:iam::${ACCOUNT}:role/ecr-upstream`,
      })],
    });
    const dir = testDir('prefixes-');
    fs.writeFileSync(join(dir, 'Dockerfile'), 'FROM 444455556666.dkr.ecr.us-east-1.amazonaws.com/shared/base:1\n'
      + 'FROM 444455556666.dkr.ecr.us-east-1.amazonaws.com/other/base:1\n');
    const result = await cliAsync(['rewrite', dir, '--registry', REGISTRY, '--from-account'], deps);
    expect(fs.readFileSync(join(dir, 'Dockerfile'), 'utf-8')).toBe(`FROM ${REGISTRY}/central/base:1\n`
      + 'FROM 444455556666.dkr.ecr.us-east-1.amazonaws.com/other/base:1\n');
    expect(result.out).toContain('or no rule whose upstream repository prefix covers other/base');
  });

  test.each([
    ['AccessDeniedException', 400, /not allowed to read the pull through cache rules in eu-west-1: the caller needs ecr:DescribePullThroughCacheRules \(AccessDeniedException: User: arn/],
    ['InvalidParameterException', 400, /ECR refused the request in eu-west-1: check the account of --registry \(InvalidParameterException: Invalid parameter/],
    ['ValidationException', 400, /ECR refused the request in eu-west-1/],
    ['ServerException', 500, /ECR is throttling or failing in eu-west-1 after the SDK's retries: try again later \(ServerException/],
    ['ThrottlingException', 400, /ECR is throttling or failing in eu-west-1/],
    ['UnrecognizedClientException', 400, /AWS rejected the credentials in eu-west-1: refresh them/],
    ['ExpiredTokenException', 400, /AWS rejected the credentials/],
  ])('%s: a clear message, exit 2, no file touched', async (name, status, message) => {
    ecr.on(DescribePullThroughCacheRulesCommand).rejects(serviceError(name, name === 'AccessDeniedException'
      ? `User: arn:aws:iam::${ACCOUNT}:user/dev is not authorized to perform: ecr:DescribePullThroughCacheRules`
      : name === 'InvalidParameterException' ? 'Invalid parameter at \'registryId\'' : 'failed', status));
    const dir = manifestDir();
    const before = fs.readFileSync(join(dir, 'pod.yaml'), 'utf-8');
    const result = await cliAsync(['rewrite', dir, '--registry', REGISTRY, '--from-account'], deps);
    expect(result.code).toBe(EXIT_USAGE);
    expect(result.err).toMatch(message);
    expect(result.err).toMatch(/^ecr-ptc: --from-account: /);
    expect(result.out).toBe('');
    expect(fs.readFileSync(join(dir, 'pod.yaml'), 'utf-8')).toBe(before);
  });

  test('an account without rules is refused: nothing would be served', async () => {
    ecr.on(DescribePullThroughCacheRulesCommand).resolves({ pullThroughCacheRules: [] });
    const result = await cliAsync(['check', manifestDir(), '--registry', REGISTRY, '--from-account'], deps);
    expect(result.code).toBe(EXIT_USAGE);
    expect(result.err).toContain(`account ${ACCOUNT} has no pull through cache rules in eu-west-1`);
  });

  test('no Region anywhere: says how to give one', async () => {
    const saved = { region: process.env.AWS_REGION, defaultRegion: process.env.AWS_DEFAULT_REGION, config: process.env.AWS_CONFIG_FILE };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    process.env.AWS_CONFIG_FILE = join(testDir('no-config-'), 'none');
    try {
      const result = await cliAsync(['rewrite', manifestDir(), '--from-account'], deps);
      expect(result.code).toBe(EXIT_USAGE);
      expect(result.err).toContain('no AWS Region: pass --registry <account>.dkr.ecr.<region>.amazonaws.com, or set AWS_REGION');
    } finally {
      process.env.AWS_CONFIG_FILE = saved.config;
      if (saved.config === undefined) delete process.env.AWS_CONFIG_FILE;
    }
  });

  test('the synchronous run() refuses --from-account instead of answering before AWS does', () => {
    const result = cli(['check', manifestDir(), '--registry', REGISTRY, '--from-account']);
    expect(result.code).toBe(EXIT_USAGE);
    expect(result.err).toContain('call runAsync()');
  });

  test('--from-account and --from-cdk-out together are refused', async () => {
    const result = await cliAsync(['check', manifestDir(), '--from-account', '--from-cdk-out', 'cdk.out'], deps);
    expect(result.code).toBe(EXIT_USAGE);
    expect(result.err).toContain('pass one of them');
  });
});

/**
 * The CLI as a user runs it, in its own Node.js process (the bundled SDK loads its credential providers with a dynamic
 * import, which jest's module sandbox cannot run): resolves with the exit code and output.
 */
function cliProcess(args: string[], env: NodeJS.ProcessEnv): Promise<Captured> {
  const root = join(__dirname, '..');
  return new Promise(resolve => {
    execFile(process.execPath, ['-r', 'ts-node/register', join(root, 'src', 'cli', 'main.ts'), ...args], {
      cwd: root, env: { ...env, TS_NODE_PROJECT: join(root, 'test', 'tsconfig.json'), TS_NODE_TRANSPILE_ONLY: 'true' },
    }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code) : 0, out: stdout, err: stderr });
    });
  });
}

describe('--from-account through the shipped bundle (assets/cli/account-rules), against a loopback ECR endpoint', () => {
  let server: Server;
  const requests: Array<{ target: string; body: Record<string, unknown> }> = [];
  const env = { ...process.env };
  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', chunk => { body += chunk; });
      req.on('end', () => {
        const parsed = JSON.parse(body || '{}') as Record<string, unknown>;
        requests.push({ target: String(req.headers['x-amz-target']), body: parsed });
        res.setHeader('content-type', 'application/x-amz-json-1.1');
        if (parsed.registryId === '999999999999') {
          res.statusCode = 400;
          res.end(JSON.stringify({ __type: 'AccessDeniedException', message: 'denied' }));
          return;
        }
        const page = parsed.nextToken === undefined
          ? { pullThroughCacheRules: [{ createdAt: 1636152393, ecrRepositoryPrefix: 'quay', registryId: ACCOUNT, upstreamRegistry: 'quay', upstreamRegistryUrl: 'quay.io' }], nextToken: 'n2' }
          : { pullThroughCacheRules: [{ createdAt: 1636152393, ecrRepositoryPrefix: 'ghcr', registryId: ACCOUNT, upstreamRegistry: 'github-container-registry', upstreamRegistryUrl: 'ghcr.io' }] };
        res.end(JSON.stringify(page));
      });
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise(resolve => server.close(resolve));
  });
  const childEnv = (): NodeJS.ProcessEnv => ({
    ...env,
    AWS_ENDPOINT_URL_ECR: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret',
    AWS_MAX_ATTEMPTS: '1',
  });

  test('the bundle exists, pages through the rules, and the CLI maps by them', async () => {
    expect(fs.existsSync(join(__dirname, '..', 'assets', 'cli', 'account-rules', 'index.js'))).toBe(true);
    const dir = manifestDir();
    const result = await cliProcess(['rewrite', dir, '--registry', REGISTRY, '--from-account', '--dry-run'], childEnv());
    expect(requests.map(r => r.target)).toEqual([
      'AmazonEC2ContainerRegistry_V20150921.DescribePullThroughCacheRules',
      'AmazonEC2ContainerRegistry_V20150921.DescribePullThroughCacheRules',
    ]);
    expect(requests[0].body).toEqual({ registryId: ACCOUNT });
    expect(requests[1].body).toEqual({ registryId: ACCOUNT, nextToken: 'n2' });
    expect(result.out).toContain(`ghcr.io/org/app:1.0 -> ${REGISTRY}/ghcr/org/app:1.0`);
    expect(result.out).toContain(`quay.io/jetstack/cert-manager-controller:v1.15.0 -> ${REGISTRY}/quay/jetstack/cert-manager-controller:v1.15.0`);
    expect(result.out).toMatch(/nginx:1\.27: no cache prefix for docker\.io/);
    // the SDK's notice about its future Node.js support is not for ecr-ptc users, who get the SDK ecr-ptc ships
    expect(result.err).not.toContain('NodeVersionSupportWarning');
  }, 60_000); // a Node.js process compiling the CLI with ts-node

  test('an error code from the endpoint becomes the message', async () => {
    const result = await cliProcess(['check', manifestDir(), '--registry', '999999999999.dkr.ecr.eu-west-1.amazonaws.com', '--from-account'], childEnv());
    expect(result.code).toBe(EXIT_USAGE);
    expect(result.err).toContain('not allowed to read the pull through cache rules in eu-west-1');
  }, 60_000);
});

describe('--from-cdk-out: a cloud assembly synthesized here from a real PullThroughCacheRules', () => {
  function synthesize(env?: { account: string; region: string }): string {
    const app = testApp();
    const stack = new Stack(app, 'Cache', { env });
    new PullThroughCacheRules(stack, 'Rules', {
      upstreams: [
        UpstreamRegistry.ecrPublic(),
        UpstreamRegistry.quay({ ecrRepositoryPrefix: 'mirror/quay' }),
        UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
      ],
    });
    return app.synth().directory;
  }

  test('the rules of the assembly, and the registry of its stack', () => {
    const out = synthesize({ account: ACCOUNT, region: 'eu-west-1' });
    const dir = manifestDir();
    const result = cli(['rewrite', dir, '--from-cdk-out', out]);
    expect(result.err).toContain(`3 pull through cache rules read from ${out} (Cache): docker.io=docker-hub, public.ecr.aws=ecr-public, quay.io=mirror/quay`);
    const text = fs.readFileSync(join(dir, 'pod.yaml'), 'utf-8');
    expect(text).toContain(`image: ${REGISTRY}/docker-hub/library/nginx:1.27`);
    expect(text).toContain(`image: ${REGISTRY}/mirror/quay/jetstack/cert-manager-controller:v1.15.0`);
    expect(text).toContain('image: ghcr.io/org/app:1.0');

    // and check agrees: the rewritten tree is cached, except the GHCR image that has no rule
    const checked = cli(['check', dir, '--from-cdk-out', out]);
    expect(checked.out).toMatch(/ghcr\.io\/org\/app:1\.0: not served from the cache/);
    expect(checked.out).toMatch(/3 already cached, 1 not served/);
  });

  test('an environment-agnostic stack needs --registry, and --registry of another account is refused', () => {
    const agnostic = synthesize();
    expect(cli(['rewrite', manifestDir(), '--from-cdk-out', agnostic]).err)
      .toContain('the cloud assembly has pull through cache rules in any account/any Region; pass --registry');
    expect(cli(['rewrite', manifestDir(), '--from-cdk-out', agnostic, '--registry', REGISTRY, '--dry-run']).out)
      .toContain(`nginx:1.27 -> ${REGISTRY}/docker-hub/library/nginx:1.27`);

    const placed = synthesize({ account: ACCOUNT, region: 'eu-west-1' });
    const other = cli(['rewrite', manifestDir(), '--from-cdk-out', placed, '--registry', '444455556666.dkr.ecr.eu-west-1.amazonaws.com']);
    expect(other.code).toBe(EXIT_USAGE);
    expect(other.err).toContain(`no stack of ${placed} deploys pull through cache rules to 444455556666.dkr.ecr.eu-west-1.amazonaws.com; its rules are in ${ACCOUNT}/eu-west-1`);
  });

  test('a cache inside a Stage (a nested cloud assembly) is found', () => {
    const app = testApp();
    const stage = new Stage(app, 'Prod', { env: { account: ACCOUNT, region: 'eu-west-1' } });
    new PullThroughCacheRules(new Stack(stage, 'Cache'), 'Rules', { upstreams: [UpstreamRegistry.kubernetes()] });
    const out = app.synth().directory;
    const result = cli(['rewrite', manifestDir(), '--from-cdk-out', out, '--dry-run']);
    expect(result.err).toContain('1 pull through cache rule read from');
    expect(result.err).toContain('(ProdCache');
    expect(result.out).toMatch(/nginx:1\.27: no cache prefix for docker\.io/);
  });

  test('a folder that is not a cloud assembly, or one without rules', () => {
    const empty = testDir('not-cdk-out-');
    expect(cli(['check', manifestDir(), '--from-cdk-out', empty]).err).toContain('is not a cloud assembly (no manifest.json)');
    const app = testApp();
    new Stack(app, 'Empty');
    const out = app.synth().directory;
    expect(cli(['check', manifestDir(), '--from-cdk-out', out]).err).toContain('no AWS::ECR::PullThroughCacheRule in the cloud assembly');
  });
});

describe('the default table and --prefix', () => {
  test('without a rules source, stderr says which defaults were assumed, before the findings', () => {
    const result = cli(['rewrite', manifestDir(), '--registry', REGISTRY, '--dry-run']);
    expect(result.err).toMatch(/^ecr-ptc: no --from-account or --from-cdk-out: assuming the default cache prefixes public\.ecr\.aws=ecr-public, registry\.k8s\.io=k8s, quay\.io=quay, docker\.io=docker-hub, ghcr\.io=ghcr, registry\.gitlab\.com=gitlab, cgr\.dev=chainguard\./);
  });

  test.each([
    ['mcr.microsoft.com=mcr', /ECR cannot pull through 'mcr\.microsoft\.com': Microsoft Container Registry/],
    ['registry.access.redhat.com=redhat', /Red Hat registries are not ECR upstreams/],
    ['gcr.io=gcr', /Google Container Registry and Artifact Registry are not ECR upstreams/],
    ['europe-docker.pkg.dev=gar', /Google Container Registry and Artifact Registry/],
    ['gitlab.example.com=gitlab2', /only GitLab\.com \(registry\.gitlab\.com\) is supported/],
    ['ghcr.io=quay', /the prefix 'quay' already serves quay\.io, and ECR has one rule per prefix, so it cannot serve ghcr\.io too\. Pick another prefix, or move quay\.io with --prefix quay\.io=<prefix>/],
    ['ghcr.io=Bad', /prefix 'Bad' is invalid: it has uppercase letters/],
    ['ghcr.io', /must be host=prefix/],
  ])('--prefix %s is refused with the reason', (override, message) => {
    const result = cli(['rewrite', manifestDir(), '--registry', REGISTRY, '--prefix', override]);
    expect(result.code).toBe(EXIT_USAGE);
    expect(result.err).toMatch(message);
  });

  test('--prefix moves an upstream, and two overrides may swap prefixes', () => {
    const moved = cli(['rewrite', manifestDir(), '--registry', REGISTRY, '--dry-run', '--prefix', 'docker.io=hub', '--prefix', 'myregistry.azurecr.io=azure']);
    expect(moved.out).toContain(`nginx:1.27 -> ${REGISTRY}/hub/library/nginx:1.27`);
    const swapped = cli(['rewrite', manifestDir(), '--registry', REGISTRY, '--dry-run', '--prefix', 'ghcr.io=quay', '--prefix', 'quay.io=ghcr']);
    expect(swapped.code).not.toBe(EXIT_USAGE);
    expect(swapped.out).toContain(`ghcr.io/org/app:1.0 -> ${REGISTRY}/quay/org/app:1.0`);
  });

  test('--version prints the package version', () => {
    const result = cli(['--version']);
    expect(result.code).toBe(EXIT_OK);
    expect(result.out.trim()).toBe(JSON.parse(fs.readFileSync(join(__dirname, '..', 'package.json'), 'utf-8')).version);
  });

  test('rewrite without any registry says how to give one', () => {
    const result = cli(['rewrite', manifestDir()]);
    expect(result.code).toBe(EXIT_USAGE);
    expect(result.err).toContain('rewrite needs the cache registry: pass --registry');
  });
});

describe('--from-cdk-out reads the mirrors of the app too (they have no pull through cache rule)', () => {
  test('a mirrored image the mirror copies is rewritten; another image of that registry is not served', () => {
    const app = testApp();
    new PullThroughCacheRules(new Stack(app, 'Mirrored', { env: { account: '111122223333', region: 'eu-west-1' } }), 'Cache', {
      upstreams: [UpstreamRegistry.copied({ registryUrl: 'mcr.microsoft.com', images: ['dotnet/runtime:8.0', 'dotnet/aspnet:8.0.*'] })],
    });
    const cdkOut = app.synth().directory;
    const dir = testDir();
    const file = join(dir, 'pod.yaml');
    fs.writeFileSync(file, 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: a\n      image: mcr.microsoft.com/dotnet/aspnet:8.0.11\n'
      + '    - name: b\n      image: mcr.microsoft.com/dotnet/sdk:8.0\n');
    const result = cli(['rewrite', file, '--from-cdk-out', cdkOut, '--json']);
    const findings = JSON.parse(result.out).files[0].findings;
    expect(findings.map((f: { outcome: string }) => f.outcome)).toEqual(['rewritten', 'unserved']);
    expect(findings[1].note).toMatch(/the copier copies only dotnet\/runtime:8\.0, dotnet\/aspnet:8\.0\.\* into 'mcr'/);
    expect(fs.readFileSync(file, 'utf-8')).toContain('image: 111122223333.dkr.ecr.eu-west-1.amazonaws.com/mcr/dotnet/aspnet:8.0.11');
  });

  test('--prefix for a registry ECR cannot pull through points to --from-cdk-out for copied upstreams', () => {
    const result = cli(['rewrite', testDir(), '--registry', '111122223333.dkr.ecr.eu-west-1.amazonaws.com', '--prefix', 'mcr.microsoft.com=mcr']);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/If your cache copies it \(UpstreamRegistry\.copied\), pass --from-cdk-out: the synthesized app names the images the copier copies/);
  });
});
