/**
 * The bundled rule handler (assets/rules/cache-rule.lambda/index.js, what a deploy uploads), run as Lambda would run
 * it: a separate Node.js process, the AWS SDK inlined, the ECR endpoint from `AWS_ENDPOINT_URL`. ECR is a small
 * in-memory server on loopback that speaks the ECR wire protocol (JSON 1.1, `X-Amz-Target`, errors as `__type`,
 * https://docs.aws.amazon.com/AmazonECR/latest/APIReference/CommonErrors.html), because moto 5.2.1 has no pull through
 * cache API; CloudFormation's response URL is another loopback server. A rule's whole life goes through it.
 */
import { execFile } from 'child_process';
import { existsSync } from 'fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'http';
import { AddressInfo } from 'net';
import { join } from 'path';
import { promisify } from 'util';

const BUNDLE = join(__dirname, '../../assets/rules/cache-rule.lambda/index.js');
const SECRET_A = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:ecr-pullthroughcache/hub-a-AbCdEf';
const SECRET_B = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:ecr-pullthroughcache/hub-b-GhIjKl';

interface Rule { ecrRepositoryPrefix: string; upstreamRegistryUrl: string; upstreamRegistry?: string; credentialArn?: string; customRoleArn?: string }
const rules = new Map<string, Rule>();
const calls: string[] = [];
const responses: Array<Record<string, any>> = [];
let ecrServer: Server;
let cfnServer: Server;
let ecrUrl: string;
let responseUrl: string;

function body(req: IncomingMessage): Promise<string> {
  return new Promise(resolve => {
    let data = '';
    req.on('data', c => (data += c));
    req.on('end', () => resolve(data));
  });
}

/** The four operations the handler uses, answering as the API reference documents them. */
async function ecr(req: IncomingMessage, res: ServerResponse) {
  const operation = String(req.headers['x-amz-target']).split('.')[1];
  const input = JSON.parse(await body(req));
  calls.push(operation);
  const fail = (type: string, message: string) => res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' })
    .end(JSON.stringify({ __type: type, message }));
  const ok = (output: object) => res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(output));
  const existing = rules.get(input.ecrRepositoryPrefix) ?? rules.get(input.ecrRepositoryPrefixes?.[0]);
  switch (operation) {
    case 'CreatePullThroughCacheRule':
      if (existing) {
        return fail('PullThroughCacheRuleAlreadyExistsException', `A pull through cache rule with prefix '${input.ecrRepositoryPrefix}' already exists`);
      }
      rules.set(input.ecrRepositoryPrefix, { ...input, createdAt: Date.now() / 1000 });
      return ok({ ...input, registryId: '111122223333', createdAt: Date.now() / 1000 });
    case 'DescribePullThroughCacheRules':
      if (!existing) {
        return fail('PullThroughCacheRuleNotFoundException', 'The pull through cache rule was not found');
      }
      return ok({ pullThroughCacheRules: [{ ...existing, registryId: '111122223333' }] });
    case 'UpdatePullThroughCacheRule':
      if (!existing) {
        return fail('PullThroughCacheRuleNotFoundException', 'The pull through cache rule was not found');
      }
      rules.set(existing.ecrRepositoryPrefix, {
        ...existing, credentialArn: input.credentialArn ?? existing.credentialArn, customRoleArn: input.customRoleArn ?? existing.customRoleArn,
      });
      return ok({ ecrRepositoryPrefix: existing.ecrRepositoryPrefix, credentialArn: input.credentialArn, updatedAt: Date.now() / 1000 });
    case 'DeletePullThroughCacheRule':
      if (!existing) {
        return fail('PullThroughCacheRuleNotFoundException', 'The pull through cache rule was not found');
      }
      rules.delete(existing.ecrRepositoryPrefix);
      return ok({ ...existing });
    default:
      return fail('InvalidParameterException', `unexpected operation ${operation}`);
  }
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  if (!existsSync(BUNDLE)) {
    throw new Error(`${BUNDLE} is missing: run \`npx projen bundle\` (the build does it before the tests)`);
  }
  ecrServer = createServer((req, res) => void ecr(req, res));
  cfnServer = createServer(async (req, res) => {
    responses.push(JSON.parse(await body(req)));
    res.writeHead(200).end();
  });
  ecrUrl = await listen(ecrServer);
  responseUrl = `${await listen(cfnServer)}/cfn-response`;
});

afterAll(async () => {
  await Promise.all([ecrServer, cfnServer].map(s => new Promise(resolve => s?.close(resolve))));
});

/** Runs one request through the bundle in its own Node.js process; returns CloudFormation's response and the log. */
async function run(type: string, props: object, extra: object = {}) {
  const event = {
    RequestType: type,
    ResponseURL: responseUrl,
    StackId: 'arn:aws:cloudformation:eu-west-1:111122223333:stack/Platform/1',
    RequestId: `r-${responses.length}`,
    LogicalResourceId: 'Rule',
    ResourceType: 'Custom::EcrPullThroughCacheRule',
    ResourceProperties: { ServiceToken: 'arn:aws:lambda:eu-west-1:111122223333:function:h', ...props },
    ...extra,
  };
  const script = `require(${JSON.stringify(BUNDLE)}).handler(JSON.parse(process.argv[1])).catch(e => { console.error(e); process.exit(1); })`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script, JSON.stringify(event)], {
    env: {
      PATH: process.env.PATH,
      AWS_ENDPOINT_URL: ecrUrl,
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_SDK_MAX_ATTEMPTS: '1',
    },
  });
  return { response: responses[responses.length - 1], log: stdout.trim().split('\n').map(l => JSON.parse(l)) };
}

test('a rule\'s life through the bundled handler: create, credential swap in place, refused URL change, delete', async () => {
  const hub = { EcrRepositoryPrefix: 'docker-hub', UpstreamRegistry: 'docker-hub', UpstreamRegistryUrl: 'registry-1.docker.io', CredentialArn: SECRET_A };

  const created = await run('Create', hub);
  expect(created.response).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'docker-hub' });
  expect(rules.get('docker-hub')).toEqual({
    ecrRepositoryPrefix: 'docker-hub',
    upstreamRegistryUrl: 'registry-1.docker.io',
    upstreamRegistry: 'docker-hub',
    credentialArn: SECRET_A,
    createdAt: expect.any(Number),
  });

  const retried = await run('Create', hub); // a retried invocation finds its own rule
  expect(retried.response).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'docker-hub' });

  const swapped = await run('Update', { ...hub, CredentialArn: SECRET_B }, { PhysicalResourceId: 'docker-hub', OldResourceProperties: hub });
  expect(swapped.response).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'docker-hub' });
  expect(rules.get('docker-hub')?.credentialArn).toBe(SECRET_B);

  calls.length = 0;
  const moved = await run('Update', { ...hub, CredentialArn: SECRET_B, UpstreamRegistryUrl: 'ghcr.io' },
    { PhysicalResourceId: 'docker-hub', OldResourceProperties: { ...hub, CredentialArn: SECRET_B } });
  expect(moved.response.Status).toBe('FAILED');
  expect(moved.response.Reason).toMatch(/deploy twice/);
  expect(calls).toEqual(['DescribePullThroughCacheRules']);
  expect(moved.log).toContainEqual(expect.objectContaining({ level: 'ERROR', message: 'custom resource failed', reason: moved.response.Reason }));

  // UPDATE_ROLLBACK sends the refused change back (old and new swapped): it finds the rule as it asks and succeeds
  calls.length = 0;
  const rolledBack = await run('Update', { ...hub, CredentialArn: SECRET_B },
    { PhysicalResourceId: 'docker-hub', OldResourceProperties: { ...hub, CredentialArn: SECRET_B, UpstreamRegistryUrl: 'ghcr.io' } });
  expect(rolledBack.response).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'docker-hub' });
  expect(calls).toEqual(['DescribePullThroughCacheRules']);
  expect(rules.get('docker-hub')).toMatchObject({ upstreamRegistryUrl: 'registry-1.docker.io', credentialArn: SECRET_B });

  const deleted = await run('Delete', { ...hub, CredentialArn: SECRET_B }, { PhysicalResourceId: 'docker-hub' });
  expect(deleted.response).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'docker-hub' });
  expect(rules.has('docker-hub')).toBe(false);
  const again = await run('Delete', { ...hub, CredentialArn: SECRET_B }, { PhysicalResourceId: 'docker-hub' });
  expect(again.response.Status).toBe('SUCCESS');
}, 60_000);

test('a foreign rule under the prefix: the create fails with ECR\'s word for it, and the rollback delete leaves it', async () => {
  rules.set('quay', { ecrRepositoryPrefix: 'quay', upstreamRegistryUrl: 'quay.io', upstreamRegistry: 'quay' });
  const props = { EcrRepositoryPrefix: 'quay', UpstreamRegistry: 'ecr', UpstreamRegistryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com' };
  const failed = await run('Create', props);
  expect(failed.response).toMatchObject({ Status: 'FAILED', PhysicalResourceId: expect.stringMatching(/^FAILED-CREATE:/) });
  expect(failed.response.Reason).toMatch(/prefix 'quay' already has a rule \(upstream quay\.io\)/);
  const rollback = await run('Delete', props, { PhysicalResourceId: failed.response.PhysicalResourceId });
  expect(rollback.response.Status).toBe('SUCCESS');
  expect(rules.get('quay')?.upstreamRegistryUrl).toBe('quay.io');
}, 60_000);
