/**
 * The rule handler as CloudFormation drives it: each request's response is PUT to a real HTTP server on loopback
 * (standing in for the pre-signed S3 URL), and ECR is aws-sdk-client-mock (moto 5.2.1 has no pull through cache API),
 * answering as the API reference shapes it (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_Operations.html).
 * Every request is also sent twice, as a retried invocation would, and the second must change nothing.
 */
import { createServer, IncomingHttpHeaders, Server } from 'http';
import { AddressInfo } from 'net';
import {
  CreatePullThroughCacheRuleCommand, DeletePullThroughCacheRuleCommand, DescribePullThroughCacheRulesCommand, ECRClient,
  PullThroughCacheRuleAlreadyExistsException, PullThroughCacheRuleNotFoundException, UnableToAccessSecretException,
  UpdatePullThroughCacheRuleCommand,
} from '@aws-sdk/client-ecr';
import { mockClient } from 'aws-sdk-client-mock';
import { CustomResourceEvent, customResourceHandler } from '../../src/private/handlers/custom-resource';
import { handler } from '../../src/rules/cache-rule.lambda';
import { captureLog } from '../support/moto';

const ecr = mockClient(ECRClient);
const SECRET_A = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:ecr-pullthroughcache/hub-a-AbCdEf';
const SECRET_B = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:ecr-pullthroughcache/hub-b-GhIjKl';
const HUB = { EcrRepositoryPrefix: 'docker-hub', UpstreamRegistry: 'docker-hub', UpstreamRegistryUrl: 'registry-1.docker.io', CredentialArn: SECRET_A };
/** HUB as DescribePullThroughCacheRules reports it. */
const LIVE_HUB = {
  ecrRepositoryPrefix: 'docker-hub',
  upstreamRegistry: 'docker-hub' as const,
  upstreamRegistryUrl: 'registry-1.docker.io',
  credentialArn: SECRET_A,
  upstreamRepositoryPrefix: 'ROOT',
  createdAt: new Date('2026-01-01T00:00:00Z'),
};
/** The calls that change a rule. */
const changesMade = () => ecr.calls().map(c => c.args[0].constructor.name).filter(n => !n.startsWith('Describe'));
const notFound = () => new PullThroughCacheRuleNotFoundException({ message: 'not found', $metadata: {} });

interface Received { readonly body: Record<string, any>; readonly headers: IncomingHttpHeaders }
let server: Server;
let url: string;
let received: Received[] = [];
/** How many of the next PUTs the server answers 500 (S3 having a bad moment). */
let failNext = 0;
/** How many of the next PUTs the server never answers (a connection that hangs). */
let hangNext = 0;

beforeAll(async () => {
  process.env.AWS_REGION = 'eu-west-1';
  server = createServer((req, res) => {
    let data = '';
    req.on('data', chunk => (data += chunk));
    req.on('end', () => {
      if (hangNext > 0) {
        hangNext--;
        return;
      }
      if (failNext > 0) {
        failNext--;
        res.writeHead(500).end('InternalError');
        return;
      }
      received.push({ body: JSON.parse(data), headers: req.headers });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/response?X-Amz-Signature=abc`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise(resolve => server.close(resolve));
});

beforeEach(() => {
  ecr.reset();
  received = [];
  failNext = 0;
  hangNext = 0;
});

function request(type: 'Create' | 'Update' | 'Delete', props: Record<string, unknown>, extra: Partial<CustomResourceEvent> = {}): CustomResourceEvent {
  return {
    RequestType: type,
    ResponseURL: url,
    StackId: 'arn:aws:cloudformation:eu-west-1:111122223333:stack/Platform/1',
    RequestId: `req-${type}`,
    LogicalResourceId: 'CacheUpdatableRuleDockerHub12345678',
    ResourceType: 'Custom::EcrPullThroughCacheRule',
    ResourceProperties: { ServiceToken: 'arn:aws:lambda:eu-west-1:111122223333:function:h', ...props },
    ...(type === 'Create' ? {} : { PhysicalResourceId: String(props.EcrRepositoryPrefix) }),
    ...extra,
  };
}

/** Runs the request twice (a retried invocation); returns both responses and the log lines. */
async function twice(event: CustomResourceEvent) {
  const { lines } = await captureLog(async () => {
    await handler(event);
    await handler(event);
  });
  expect(received).toHaveLength(2);
  return { first: received[0].body, second: received[1].body, lines };
}

describe('create', () => {
  test('creates the rule with every property and answers SUCCESS with the prefix as physical id; a retry takes its own rule', async () => {
    ecr.on(CreatePullThroughCacheRuleCommand).resolvesOnce({ ecrRepositoryPrefix: 'docker-hub' })
      .rejects(new PullThroughCacheRuleAlreadyExistsException({ message: 'exists', $metadata: {} }));
    ecr.on(DescribePullThroughCacheRulesCommand).resolves({
      pullThroughCacheRules: [{
        ecrRepositoryPrefix: 'docker-hub',
        upstreamRegistryUrl: 'registry-1.docker.io',
        credentialArn: SECRET_A,
        upstreamRepositoryPrefix: 'ROOT',
        createdAt: new Date(Date.now() - 60_000), // by the first invocation, a minute ago
      }],
    });
    const { first, second } = await twice(request('Create', HUB));
    expect(ecr.commandCalls(CreatePullThroughCacheRuleCommand)[0].args[0].input).toEqual({
      ecrRepositoryPrefix: 'docker-hub',
      upstreamRegistryUrl: 'registry-1.docker.io',
      upstreamRegistry: 'docker-hub',
      credentialArn: SECRET_A,
      upstreamRepositoryPrefix: undefined,
      customRoleArn: undefined,
    });
    for (const body of [first, second]) {
      expect(body).toEqual({
        Status: 'SUCCESS',
        PhysicalResourceId: 'docker-hub',
        StackId: expect.stringContaining(':stack/Platform/'),
        RequestId: 'req-Create',
        LogicalResourceId: 'CacheUpdatableRuleDockerHub12345678',
      });
    }
    expect(received[0].headers['content-type']).toBe(''); // the pre-signed URL is signed without one
  });

  test('a rule of another owner under the prefix fails the create with the steps; the rollback delete touches nothing', async () => {
    ecr.on(CreatePullThroughCacheRuleCommand).rejects(new PullThroughCacheRuleAlreadyExistsException({ message: 'exists', $metadata: {} }));
    ecr.on(DescribePullThroughCacheRulesCommand).resolves({
      pullThroughCacheRules: [{ ecrRepositoryPrefix: 'docker-hub', upstreamRegistryUrl: 'registry-1.docker.io', credentialArn: SECRET_B }],
    });
    const { first, second, lines } = await twice(request('Create', HUB));
    for (const body of [first, second]) {
      expect(body.Status).toBe('FAILED');
      expect(body.PhysicalResourceId).toBe('FAILED-CREATE:req-Create');
      expect(body.Reason).toMatch(/prefix 'docker-hub' already has a rule \(upstream registry-1\.docker\.io, credential .*hub-b.*\) that this resource did not create.*\(1\) remove the upstream.*\(2\) add/);
    }
    expect(lines.find(l => l.level === 'ERROR')?.reason).toBe(first.Reason);

    received = [];
    await twice(request('Delete', HUB, { PhysicalResourceId: first.PhysicalResourceId }));
    expect(received.map(r => r.body.Status)).toEqual(['SUCCESS', 'SUCCESS']);
    expect(ecr.commandCalls(DeletePullThroughCacheRuleCommand)).toHaveLength(0);
  });

  test('an identical rule created long before this request is not taken: deleting this resource would delete another owner\'s rule', async () => {
    // e.g. a rule made by hand or by another app, or the AWS::ECR::PullThroughCacheRule this resource replaces, whose
    // delete CloudFormation sends after this create succeeds: either way the prefix would end up with no rule
    ecr.on(CreatePullThroughCacheRuleCommand).rejects(new PullThroughCacheRuleAlreadyExistsException({ message: 'exists', $metadata: {} }));
    ecr.on(DescribePullThroughCacheRulesCommand).resolves({
      pullThroughCacheRules: [{
        ecrRepositoryPrefix: 'docker-hub',
        upstreamRegistryUrl: 'registry-1.docker.io',
        credentialArn: SECRET_A,
        upstreamRepositoryPrefix: 'ROOT',
        createdAt: new Date(Date.now() - 2 * 24 * 3600_000),
      }],
    });
    const { first, second } = await twice(request('Create', HUB));
    for (const body of [first, second]) {
      expect(body).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'FAILED-CREATE:req-Create' });
      expect(body.Reason).toMatch(/prefix 'docker-hub' already has a rule .* created at 20\d\d-.*that this resource did not create/);
    }
    received = [];
    await twice(request('Delete', HUB, { PhysicalResourceId: first.PhysicalResourceId }));
    expect(received.map(r => r.body.Status)).toEqual(['SUCCESS', 'SUCCESS']);
    expect(ecr.commandCalls(DeletePullThroughCacheRuleCommand)).toHaveLength(0);
  });

  test('an identical rule without a creation time is not taken either (fail closed)', async () => {
    ecr.on(CreatePullThroughCacheRuleCommand).rejects(new PullThroughCacheRuleAlreadyExistsException({ message: 'exists', $metadata: {} }));
    ecr.on(DescribePullThroughCacheRulesCommand).resolves({
      pullThroughCacheRules: [{ ecrRepositoryPrefix: 'docker-hub', upstreamRegistryUrl: 'registry-1.docker.io', credentialArn: SECRET_A }],
    });
    await handler(request('Create', HUB));
    expect(received[0].body).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'FAILED-CREATE:req-Create' });
  });

  test('any other create error fails with its code and message', async () => {
    ecr.on(CreatePullThroughCacheRuleCommand).rejects(new UnableToAccessSecretException({ message: 'cannot read the secret', $metadata: {} }));
    await handler(request('Create', HUB));
    expect(received[0].body).toMatchObject({ Status: 'FAILED', Reason: expect.stringMatching(/UnableToAccessSecretException: cannot read the secret/) });
  });
});

describe('update', () => {
  const toB = () => request('Update', { ...HUB, CredentialArn: SECRET_B }, { OldResourceProperties: { ServiceToken: 'x', ...HUB } });

  test('a credential swap is UpdatePullThroughCacheRule, in place: same physical id (no replacement), and a retry sets the same', async () => {
    ecr.on(UpdatePullThroughCacheRuleCommand).resolves({ ecrRepositoryPrefix: 'docker-hub', credentialArn: SECRET_B });
    const { first, second } = await twice(toB());
    expect(ecr.commandCalls(UpdatePullThroughCacheRuleCommand).map(c => c.args[0].input)).toEqual([
      { ecrRepositoryPrefix: 'docker-hub', credentialArn: SECRET_B, customRoleArn: undefined },
      { ecrRepositoryPrefix: 'docker-hub', credentialArn: SECRET_B, customRoleArn: undefined },
    ]);
    expect([first.Status, first.PhysicalResourceId, second.Status, second.PhysicalResourceId]).toEqual(['SUCCESS', 'docker-hub', 'SUCCESS', 'docker-hub']);
    expect(ecr.commandCalls(CreatePullThroughCacheRuleCommand)).toHaveLength(0);
    expect(ecr.commandCalls(DeletePullThroughCacheRuleCommand)).toHaveLength(0);
  });

  test('a rule deleted outside CloudFormation is created again with the new credential (else the update and its rollback both fail)', async () => {
    ecr.on(UpdatePullThroughCacheRuleCommand).rejects(notFound());
    ecr.on(CreatePullThroughCacheRuleCommand).resolves({});
    const { lines } = await captureLog(() => handler(toB()));
    expect(received[0].body).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'docker-hub' });
    expect(ecr.commandCalls(CreatePullThroughCacheRuleCommand)[0].args[0].input).toMatchObject({
      ecrRepositoryPrefix: 'docker-hub', upstreamRegistryUrl: 'registry-1.docker.io', upstreamRegistry: 'docker-hub', credentialArn: SECRET_B,
    });
    expect(lines).toContainEqual(expect.objectContaining({ level: 'WARN', message: expect.stringMatching(/deleted outside CloudFormation/), prefix: 'docker-hub' }));
  });

  test('a role change of an ECR upstream is in place too', async () => {
    const ecrRule = { EcrRepositoryPrefix: 'platform', UpstreamRegistry: 'ecr', UpstreamRegistryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com' };
    ecr.on(UpdatePullThroughCacheRuleCommand).resolves({});
    await handler(request('Update', { ...ecrRule, CustomRoleArn: 'arn:aws:iam::111122223333:role/b' },
      { OldResourceProperties: { ...ecrRule, CustomRoleArn: 'arn:aws:iam::111122223333:role/a' } }));
    expect(ecr.commandCalls(UpdatePullThroughCacheRuleCommand)[0].args[0].input)
      .toEqual({ ecrRepositoryPrefix: 'platform', credentialArn: undefined, customRoleArn: 'arn:aws:iam::111122223333:role/b' });
    expect(received[0].body.Status).toBe('SUCCESS');
  });

  test('a failed update answers FAILED with the reason; the rollback (old and new swapped) sets the old credential back', async () => {
    ecr.on(UpdatePullThroughCacheRuleCommand, { credentialArn: SECRET_B })
      .rejects(new UnableToAccessSecretException({ message: 'The secret cannot be read', $metadata: {} }));
    ecr.on(UpdatePullThroughCacheRuleCommand, { credentialArn: SECRET_A }).resolves({});
    const { first, second } = await twice(toB());
    for (const body of [first, second]) {
      expect(body).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'docker-hub' });
      expect(body.Reason).toMatch(/UpdatePullThroughCacheRule of the prefix 'docker-hub' \(CredentialArn\) failed, the rule keeps its previous settings: UnableToAccessSecretException/);
    }
    received = [];
    const rollback = request('Update', HUB, { OldResourceProperties: { ...HUB, CredentialArn: SECRET_B } });
    await twice(rollback);
    expect(received.map(r => r.body.Status)).toEqual(['SUCCESS', 'SUCCESS']);
    expect(ecr.commandCalls(UpdatePullThroughCacheRuleCommand).slice(-2).map(c => c.args[0].input.credentialArn)).toEqual([SECRET_A, SECRET_A]);
  });

  test.each([
    ['another upstream URL', { UpstreamRegistryUrl: 'ghcr.io' }, /UpstreamRegistryUrl 'registry-1\.docker\.io' -> 'ghcr\.io'/],
    ['another upstream type', { UpstreamRegistry: 'github-container-registry' }, /UpstreamRegistry 'docker-hub' -> 'github-container-registry'/],
    ['another upstream prefix', { UpstreamRepositoryPrefix: 'library' }, /UpstreamRepositoryPrefix 'ROOT' -> 'library'/],
    ['the credential dropped', { CredentialArn: undefined }, /would drop its CredentialArn, which UpdatePullThroughCacheRule cannot unset/],
  ])('%s is refused with the two-step procedure, the rule untouched; its rollback succeeds and changes nothing', async (_, change, reason) => {
    ecr.on(DescribePullThroughCacheRulesCommand).resolves({ pullThroughCacheRules: [LIVE_HUB] });
    await handler(request('Update', { ...HUB, ...change }, { OldResourceProperties: HUB }));
    expect(received[0].body).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'docker-hub' });
    expect(received[0].body.Reason).toMatch(reason);
    expect(received[0].body.Reason).toMatch(/deploy twice: \(1\) remove the upstream with the prefix 'docker-hub'/);
    expect(changesMade()).toEqual([]);

    // UPDATE_ROLLBACK sends the failed resource an Update back (old and new swapped): refusing that too would leave
    // the stack in UPDATE_ROLLBACK_FAILED, so the handler judges it by the live rule, which is still what is asked for
    received = [];
    ecr.on(UpdatePullThroughCacheRuleCommand).resolves({});
    await twice(request('Update', HUB, { OldResourceProperties: { ...HUB, ...change } }));
    expect(received.map(r => r.body.Status)).toEqual(['SUCCESS', 'SUCCESS']);
    expect(received[0].body.PhysicalResourceId).toBe('docker-hub');
    // at most the credential the rule already has is set again (the credential-dropped case reads as adding it back)
    expect(changesMade().filter(n => n !== 'UpdatePullThroughCacheRuleCommand')).toEqual([]);
    expect(ecr.commandCalls(UpdatePullThroughCacheRuleCommand).map(c => c.args[0].input.credentialArn)).not.toContain(undefined);
  });

  test('a refused change whose rollback finds the rule no longer as it was asks for the operator, with what it found', async () => {
    ecr.on(DescribePullThroughCacheRulesCommand).resolves({ pullThroughCacheRules: [{ ...LIVE_HUB, upstreamRegistryUrl: 'ghcr.io' }] });
    await handler(request('Update', HUB, { OldResourceProperties: { ...HUB, UpstreamRegistryUrl: 'ghcr.io' } }));
    expect(received[0].body).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'docker-hub' });
    expect(received[0].body.Reason).toMatch(/UpstreamRegistryUrl 'ghcr\.io' -> 'registry-1\.docker\.io'.*the rule under the prefix now has upstream ghcr\.io/);
    expect(changesMade()).toEqual([]);
  });

  test('the rollback of a refused change also sets back a credential the live rule no longer has', async () => {
    ecr.on(DescribePullThroughCacheRulesCommand).resolves({ pullThroughCacheRules: [{ ...LIVE_HUB, credentialArn: SECRET_B }] });
    ecr.on(UpdatePullThroughCacheRuleCommand).resolves({});
    await handler(request('Update', HUB, { OldResourceProperties: { ...HUB, CredentialArn: SECRET_B, UpstreamRegistryUrl: 'ghcr.io' } }));
    expect(received[0].body.Status).toBe('SUCCESS');
    expect(ecr.commandCalls(UpdatePullThroughCacheRuleCommand).map(c => c.args[0].input))
      .toEqual([{ ecrRepositoryPrefix: 'docker-hub', credentialArn: SECRET_A, customRoleArn: undefined }]);
  });

  test('nothing of the rule changed (a new handler version, say): no ECR call', async () => {
    await handler(request('Update', HUB, { OldResourceProperties: { ...HUB, ServiceToken: 'old' } }));
    expect(received[0].body.Status).toBe('SUCCESS');
    expect(ecr.calls()).toHaveLength(0);
  });
});

describe('delete', () => {
  test('deletes the rule; a retry finds it gone and succeeds', async () => {
    ecr.on(DescribePullThroughCacheRulesCommand)
      .resolvesOnce({ pullThroughCacheRules: [{ ecrRepositoryPrefix: 'docker-hub', upstreamRegistryUrl: 'registry-1.docker.io' }] })
      .rejects(notFound());
    ecr.on(DeletePullThroughCacheRuleCommand).resolves({});
    const { first, second } = await twice(request('Delete', HUB));
    expect(ecr.commandCalls(DeletePullThroughCacheRuleCommand).map(c => c.args[0].input)).toEqual([{ ecrRepositoryPrefix: 'docker-hub' }]);
    expect([first.Status, second.Status]).toEqual(['SUCCESS', 'SUCCESS']);
  });

  test('a rule deleted between the describe and the delete is success', async () => {
    ecr.on(DescribePullThroughCacheRulesCommand).resolves({ pullThroughCacheRules: [{ ecrRepositoryPrefix: 'docker-hub', upstreamRegistryUrl: 'registry-1.docker.io' }] });
    ecr.on(DeletePullThroughCacheRuleCommand).rejects(notFound());
    await handler(request('Delete', HUB));
    expect(received[0].body.Status).toBe('SUCCESS');
  });

  test('a rule under the prefix that now points at another upstream is not this resource\'s: left, and said so', async () => {
    ecr.on(DescribePullThroughCacheRulesCommand).resolves({ pullThroughCacheRules: [{ ecrRepositoryPrefix: 'docker-hub', upstreamRegistryUrl: 'ghcr.io' }] });
    const { lines } = await captureLog(() => handler(request('Delete', HUB)));
    expect(received[0].body.Status).toBe('SUCCESS');
    expect(ecr.commandCalls(DeletePullThroughCacheRuleCommand)).toHaveLength(0);
    expect(lines).toContainEqual(expect.objectContaining({ level: 'WARN', upstreamRegistryUrl: 'ghcr.io', expected: 'registry-1.docker.io' }));
  });

  test('a describe that ECR refuses fails with which call, which prefix and ECR\'s reason', async () => {
    ecr.on(DescribePullThroughCacheRulesCommand).rejects(Object.assign(new Error('User is not authorized'), { name: 'AccessDeniedException' }));
    await handler(request('Delete', HUB));
    expect(received[0].body).toMatchObject({
      Status: 'FAILED',
      Reason: "DescribePullThroughCacheRules of the prefix 'docker-hub' failed: AccessDeniedException: User is not authorized",
    });
    expect(ecr.commandCalls(DeletePullThroughCacheRuleCommand)).toHaveLength(0);
  });

  test('a delete that ECR refuses fails with the reason', async () => {
    ecr.on(DescribePullThroughCacheRulesCommand).resolves({ pullThroughCacheRules: [{ ecrRepositoryPrefix: 'docker-hub', upstreamRegistryUrl: 'registry-1.docker.io' }] });
    ecr.on(DeletePullThroughCacheRuleCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    await handler(request('Delete', HUB));
    expect(received[0].body).toMatchObject({ Status: 'FAILED', Reason: expect.stringMatching(/DeletePullThroughCacheRule of the prefix 'docker-hub' failed: ThrottlingException: Rate exceeded/) });
  });
});

describe('the custom resource protocol (src/private/handlers/custom-resource.ts)', () => {
  test('properties without a prefix or URL fail with what was received', async () => {
    await handler(request('Create', { UpstreamRegistry: 'quay' }));
    expect(received[0].body).toMatchObject({ Status: 'FAILED', Reason: expect.stringMatching(/must have EcrRepositoryPrefix, UpstreamRegistryUrl and UpstreamRegistry.*"UpstreamRegistry":"quay"/) });
  });

  test('an invocation that is not CloudFormation\'s fails at once, with nothing sent', async () => {
    const { error, lines } = await captureLog(() => handler({ nothing: true } as any));
    expect(String(error)).toMatch(/not a CloudFormation custom resource request/);
    expect(lines).toContainEqual(expect.objectContaining({ level: 'ERROR', keys: ['nothing'] }));
    expect(received).toEqual([]);
  });

  test('an unknown request type is FAILED, not ignored', async () => {
    await handler({ ...request('Create', HUB), RequestType: 'Import' as any });
    expect(received[0].body).toMatchObject({ Status: 'FAILED', Reason: "unknown RequestType 'Import'; expected Create, Update or Delete" });
  });

  test('a reason too long for CloudFormation\'s 4096 bytes is cut, the log keeps it whole', async () => {
    const long = customResourceHandler({
      create: async () => { throw new Error('x'.repeat(10_000)); }, update: async () => ({ physicalResourceId: 'p' }), delete: async () => {},
    });
    const { lines } = await captureLog(() => long(request('Create', HUB)));
    const raw = JSON.stringify(received[0].body);
    expect(Buffer.byteLength(raw)).toBeLessThanOrEqual(4096);
    expect(received[0].body.Reason).toMatch(/x+ \.\.\. \(cut; the log has it whole\)$/);
    expect(lines.find(l => l.level === 'ERROR')?.reason).toHaveLength(10_000);
  });

  test('a request that would outlive the function is answered FAILED before Lambda stops it (no hour-long wait)', async () => {
    const hung = customResourceHandler({
      create: () => new Promise(() => {}), update: async () => ({ physicalResourceId: 'p' }), delete: async () => {},
    });
    const started = Date.now();
    await hung(request('Create', HUB), { getRemainingTimeInMillis: () => 10_050 });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(received[0].body).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'FAILED-CREATE:req-Create' });
    expect(received[0].body.Reason).toMatch(/no answer within the function's timeout/);
  });

  test('a response S3 refuses is sent again', async () => {
    failNext = 2;
    const quick = customResourceHandler({
      create: async () => ({ physicalResourceId: 'p' }), update: async () => ({ physicalResourceId: 'p' }), delete: async () => {},
    }, { backoffMs: 5 });
    const { lines } = await captureLog(() => quick(request('Create', HUB)));
    expect(received.map(r => r.body.Status)).toEqual(['SUCCESS']);
    expect(lines.filter(l => l.message === 'custom resource response not accepted')).toHaveLength(2);
  });

  test('a response PUT that hangs is given up after its attempt timeout and sent again (a hung PUT would outlive the function)', async () => {
    hangNext = 1;
    const quick = customResourceHandler({
      create: async () => ({ physicalResourceId: 'p' }), update: async () => ({ physicalResourceId: 'p' }), delete: async () => {},
    }, { backoffMs: 5, attemptTimeoutMs: 300 });
    const started = Date.now();
    const { lines } = await captureLog(() => quick(request('Create', HUB)));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(received.map(r => r.body.Status)).toEqual(['SUCCESS']);
    expect(lines).toContainEqual(expect.objectContaining({ message: 'custom resource response not accepted', attempt: 1, problem: expect.stringMatching(/timeout|abort/i) }));
  });

  test('a response that is never accepted fails the invocation (so Lambda retries it), after every attempt', async () => {
    failNext = 3;
    const quick = customResourceHandler({
      create: async () => ({ physicalResourceId: 'p' }), update: async () => ({ physicalResourceId: 'p' }), delete: async () => {},
    }, { attempts: 3, backoffMs: 1 });
    const { error } = await captureLog(() => quick(request('Create', HUB)));
    expect(String(error)).toMatch(/not accepted after 3 attempts: HTTP 500 InternalError/);
  });
});
