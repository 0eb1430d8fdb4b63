/**
 * Backfill and teardown against a real ECR API: moto on loopback, behind `ecr-front.ts` (pages, pull through cache
 * rules, injected throttling, the CloudFormation response URL). 2,000 repositories under two cache prefixes, plus
 * repositories outside them whose names come close (`docker-hub-old/...`, `docker-hubx/...`, the bare name `quay`).
 * The handlers run as CloudFormation drives them: a request in, a response PUT to the response URL.
 */
import {
  CreateRepositoryCommand, DescribeRepositoriesCommand, ECRClient, GetLifecyclePolicyCommand, ListTagsForResourceCommand,
  PutLifecyclePolicyCommand, Tag,
} from '@aws-sdk/client-ecr';
import { EcrFront, startEcrFront } from './ecr-front';
import { transientRetry, mapBounded } from '../../src/private/handlers/bounded';
import { CustomResourceEvent } from '../../src/private/handlers/custom-resource';
import { handler as backfillHandler } from '../../src/repositories/backfill.lambda';
import { CREATED_BY_TAG } from '../../src/repositories/contract';
import { ruleCheck, handler as teardownHandler } from '../../src/repositories/teardown.lambda';
import { captureLog, emfValues, MotoServer, startMoto, useEndpoint } from '../support/moto';

jest.setTimeout(600_000);

const policy = (count: number) => JSON.stringify({
  rules: [{
    rulePriority: 1,
    description: 'Keep the newest images',
    selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: count },
    action: { type: 'expire' },
  }],
});
/** The template's policy before and after the update, and one a person wrote for a repository. */
const OLD = policy(100);
const NEW = policy(50);
const USER = policy(7);

const HUB = 1200;
const QUAY = 800;
/** The 2,000 repositories under the prefixes: index, name. */
const inside = [
  ...Array.from({ length: HUB }, (_, i) => ({ i, name: `docker-hub/library/image-${String(i).padStart(4, '0')}` })),
  ...Array.from({ length: QUAY }, (_, i) => ({ i, name: `quay/org/image-${String(i).padStart(3, '0')}` })),
];
/** Every other one was created by the cache's template (it carries the teardown tag). */
const createdByCache = (i: number) => i % 2 === 0;
/** Its own lifecycle policy, written by a person. */
const userPolicy = (i: number) => i % 100 === 1;
/** The old template's lifecycle policy (ECR gave it at creation). */
const oldPolicy = (i: number) => i % 100 === 2;
/** Encrypted with KMS, unlike the template (AES256). */
const kms = (i: number) => i % 500 === 3;
const outside = ['docker-hub-old/library/nginx', 'docker-hubx/alpine', 'quay', 'team/app', 'ecr-public/docker/library/busybox'];

let moto: MotoServer;
let front: EcrFront;
let ecr: ECRClient;
const figures: Record<string, number> = {};

async function allRepositories() {
  return (await ecr.send(new DescribeRepositoriesCommand({}))).repositories ?? [];
}
async function policyOf(name: string) {
  try {
    return (await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: name }))).lifecyclePolicyText;
  } catch {
    return undefined;
  }
}
async function tagsOf(arn: string) {
  const tags = (await ecr.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags ?? [];
  return Object.fromEntries(tags.map(t => [t.Key, t.Value]));
}
/** Lifecycle policy and tags of every repository, by name. */
async function state() {
  const repositories = await allRepositories();
  const entries = await mapBounded(repositories, 8, async r => [r.repositoryName!, {
    policy: await policyOf(r.repositoryName!), tags: await tagsOf(r.repositoryArn!),
  }] as const);
  return new Map(entries);
}

function request(type: 'Create' | 'Update' | 'Delete', resourceType: string, props: Record<string, unknown>,
  old?: Record<string, unknown>): CustomResourceEvent {
  return {
    RequestType: type,
    ResponseURL: front.responseUrl,
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/Platform/1',
    RequestId: `req-${front.responses.length}`,
    LogicalResourceId: 'CacheRepositoryBackfill',
    ResourceType: resourceType,
    ResourceProperties: { ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:h', ...props },
    ...(type === 'Create' ? {} : { PhysicalResourceId: 'backfill:CacheRepositoryBackfill' }),
    ...(old ? { OldResourceProperties: old } : {}),
  };
}

/** Runs one request; returns CloudFormation's response, the report line, the metrics, and the time it took. */
async function run(handler: (e: CustomResourceEvent) => Promise<void>, event: CustomResourceEvent, report: string) {
  front.calls.length = 0;
  const before = front.responses.length;
  const started = Date.now();
  const { lines, error } = await captureLog(() => handler(event));
  const seconds = (Date.now() - started) / 1000;
  expect(error).toBeUndefined();
  expect(front.responses).toHaveLength(before + 1);
  const reportLine = lines.find(l => l.message === report);
  return {
    response: front.responses[before],
    report: reportLine!,
    metrics: emfValues(lines),
    seconds,
    lines,
    writes: front.calls.filter(c => !/^(Describe|Get|List)/.test(c.operation)),
  };
}

const BACKFILL = 'Custom::EcrCacheRepositoryBackfill';
const TEARDOWN = 'Custom::EcrCacheRepositoryTeardown';
/** The created-by value of this cache (its stack's UUID, its address). */
const CREATED_BY = '0a1b2c3d-0000-4000-8000-000000000001/c8a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4';
const TAGS = [{ Key: 'team', Value: 'platform' }, { Key: 'cost-center', Value: '42' }];
const propsWith = (lifecyclePolicy: string, tags = TAGS, extra: object = {}) =>
  ({ Prefixes: ['docker-hub', 'quay'], LifecyclePolicy: lifecyclePolicy, ResourceTags: tags, CacheName: 'PlatformCache', ...extra });

beforeAll(async () => {
  moto = await startMoto();
  front = await startEcrFront(moto.endpoint);
  useEndpoint(front.endpoint);
  process.env.AWS_SDK_MAX_ATTEMPTS = '1'; // the handlers' own retries face every injected throttle
  transientRetry.baseMs = 5;
  transientRetry.capMs = 50;
  ruleCheck.waitMs = 10;
  ecr = new ECRClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  const started = Date.now();
  const marker: Tag = { Key: CREATED_BY_TAG.key, Value: CREATED_BY };
  await mapBounded([...inside, ...outside.map(name => ({ i: 0, name }))], 8, async ({ i, name }) => {
    await ecr.send(new CreateRepositoryCommand({
      repositoryName: name,
      tags: createdByCache(i) ? [marker] : [],
      ...(kms(i) ? { encryptionConfiguration: { encryptionType: 'KMS' } } : {}),
    }));
    const text = userPolicy(i) ? USER : oldPolicy(i) ? OLD : undefined;
    if (text) {
      await ecr.send(new PutLifecyclePolicyCommand({ repositoryName: name, lifecyclePolicyText: text }));
    }
  });
  figures.setupSeconds = (Date.now() - started) / 1000;
});

afterAll(async () => {
  await front?.stop();
  await moto?.stop();
  process.stdout.write(`repositories-moto figures (2,000 repositories under two prefixes): ${JSON.stringify(figures)}\n`);
});

describe('backfill', () => {
  test('create: the template\'s policy and tags on every repository under the prefixes, own policies kept, nothing outside '
    + 'touched; throttled pages and writes are retried', async () => {
    let pages = 0;
    let puts = 0;
    front.throttle = (operation, body) => (operation === 'DescribeRepositories' && !body.repositoryNames && pages++ % 2 === 0)
      || (operation === 'PutLifecyclePolicy' && puts++ % 25 === 0);
    let run1;
    try {
      run1 = await run(backfillHandler, request('Create', BACKFILL, propsWith(OLD)), 'backfill report');
    } finally {
      front.throttle = () => false;
    }
    const { response, report, metrics, seconds, lines } = run1;
    figures.backfillCreateSeconds = seconds;
    expect(response).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'backfill:CacheRepositoryBackfill' });
    // the 20 repositories with OLD already have this template's policy; the 20 with USER keep theirs
    expect(report).toMatchObject({
      level: 'INFO',
      repositories: 2000,
      BackfillChanged: 2000,
      BackfillSkipped: 20,
      BackfillFailed: 0,
      BackfillEncryptionDiffers: 5,
    });
    expect(report.skipped[0]).toMatch(/^docker-hub\/library\/image-0001 \(has a lifecycle policy this cache did not write/);
    expect(report.encryptionDiffers[0]).toMatch(/image-0003 \(encrypted with KMS, the template says AES256/);
    expect(metrics).toMatchObject({ 'BackfillChanged{Cache=PlatformCache}': 2000, 'BackfillSkipped{Cache=PlatformCache}': 20 });
    expect(response.Data).toMatchObject({ BackfillChanged: '2000', Repositories: '2000' });
    // every page (3 of 1,000) was throttled once, and every 25th PutLifecyclePolicy
    const retried = (what: string) => lines.filter(l => l.message === 'throttled or failed transiently: retrying' && l.what === what).length;
    expect(retried('DescribeRepositories')).toBe(3);
    expect(retried('PutLifecyclePolicy')).toBeGreaterThanOrEqual(1960 / 25);

    const after = await state();
    for (const { i, name } of inside) {
      const repo = after.get(name)!;
      expect(repo.policy).toBe(userPolicy(i) ? USER : OLD);
      expect(repo.tags).toMatchObject({ 'team': 'platform', 'cost-center': '42' });
    }
    for (const name of outside) {
      expect(after.get(name)).toEqual({ policy: undefined, tags: { [CREATED_BY_TAG.key]: CREATED_BY } });
    }
  });

  test('a retried invocation finds the work done and changes nothing', async () => {
    const { response, report, writes, seconds } = await run(backfillHandler, request('Create', BACKFILL, propsWith(OLD)), 'backfill report');
    figures.backfillNothingToDoSeconds = seconds;
    expect(response.Status).toBe('SUCCESS');
    expect(report).toMatchObject({ BackfillChanged: 0, BackfillCurrent: 2000, BackfillSkipped: 20 });
    expect(writes).toEqual([]);
  });

  test('an update re-applies (the previous template\'s policy replaced, a dropped tag removed, own policies kept); throttling that '
    + 'outlasts every retry fails it with the counts, and the next deploy finishes', async () => {
    const update = request('Update', BACKFILL, propsWith(NEW, [TAGS[0]]), propsWith(OLD));
    front.throttle = (operation, body) => operation === 'PutLifecyclePolicy' && body.repositoryName.startsWith('quay/');
    let first;
    try {
      first = await run(backfillHandler, update, 'backfill report');
    } finally {
      front.throttle = () => false;
    }
    figures.backfillUpdateSeconds = first.seconds;
    expect(first.response).toMatchObject({ Status: 'FAILED' });
    expect(first.response.Reason).toMatch(
      /^backfill could not change 792 of 2000 repositories under docker-hub, quay \(first: quay\/org\/image-000: ThrottlingException/);
    expect(first.report).toMatchObject({ level: 'ERROR', BackfillFailed: 792, BackfillChanged: 1208 });
    expect(first.report.changed[0]).toBe('docker-hub/library/image-0000 (lifecycle policy: previous template policy; tags removed: cost-center)');
    expect(first.metrics['BackfillFailed{Cache=PlatformCache}']).toBe(792);

    const second = await run(backfillHandler, update, 'backfill report');
    expect(second.response.Status).toBe('SUCCESS');
    expect(second.report).toMatchObject({ BackfillChanged: 792, BackfillSkipped: 20, BackfillFailed: 0 });
    const after = await state();
    for (const { i, name } of inside) {
      expect(after.get(name)!.policy).toBe(userPolicy(i) ? USER : NEW);
      expect(after.get(name)!.tags['cost-center']).toBeUndefined();
    }
  });

  test('replaceOtherLifecyclePolicies replaces the policies people wrote too', async () => {
    const { report } = await run(backfillHandler, request('Update', BACKFILL,
      propsWith(NEW, [TAGS[0]], { ReplaceOtherLifecyclePolicies: 'true' }), propsWith(NEW, [TAGS[0]])), 'backfill report');
    expect(report).toMatchObject({ BackfillChanged: 20, BackfillSkipped: 0 });
    expect(report.changed[0]).toBe('docker-hub/library/image-0001 (lifecycle policy: replaced its own policy)');
    const policies = await mapBounded(inside, 8, ({ name }) => policyOf(name));
    expect(policies.every(p => p === NEW)).toBe(true);
  });
});

describe('teardown', () => {
  const deleteRequest = (mode: string) => ({
    ...request('Delete', TEARDOWN, { Prefixes: ['docker-hub', 'quay'], Mode: mode, CacheName: 'PlatformCache', CreatedBy: CREATED_BY }),
    LogicalResourceId: 'CacheRepositoryTeardown',
    PhysicalResourceId: 'teardown:CacheRepositoryTeardown',
  });
  const names = async () => new Set((await allRepositories()).map(r => r.repositoryName!));

  test('while a rule still serves a prefix, nothing is deleted: it is not the cache being deleted', async () => {
    front.rules.add('quay');
    try {
      const { response, report, writes } = await run(teardownHandler, deleteRequest('DESTROY_WITH_IMAGES'), 'teardown report');
      expect(response.Status).toBe('SUCCESS');
      expect(report.reason).toMatch(/^the prefixes quay still have pull through cache rules/);
      // looked three times (a rule deleted a moment ago may still be listed), then kept everything
      expect(front.calls.filter(c => c.operation === 'DescribePullThroughCacheRules').map(c => c.body.ecrRepositoryPrefixes))
        .toEqual([['docker-hub'], ['quay'], ['quay'], ['quay']]);
      expect(writes).toEqual([]);
    } finally {
      front.rules.clear();
    }
    expect((await names()).size).toBe(2000 + outside.length);
  });

  test('LIST_ONLY lists what would go and deletes nothing', async () => {
    const { response, report, writes } = await run(teardownHandler, deleteRequest('LIST_ONLY'), 'teardown report');
    expect(response.Status).toBe('SUCCESS');
    expect(report).toMatchObject({ TeardownWouldDelete: 1000, TeardownKept: 1000, TeardownDeleted: 0 });
    expect(report.wouldDelete[0]).toBe('docker-hub/library/image-0000');
    expect(report.kept[0]).toMatch(/^docker-hub\/library\/image-0001 \(not created by this cache: no /);
    expect(writes).toEqual([]);
    expect((await names()).size).toBe(2000 + outside.length);
  });

  test('DESTROY_WITH_IMAGES: a partial run fails the delete, its retry finishes; only what the cache created under its prefixes goes', async () => {
    front.throttle = (operation, body) => operation === 'DeleteRepository' && /0$/.test(body.repositoryName);
    let first;
    try {
      first = await run(teardownHandler, deleteRequest('DESTROY_WITH_IMAGES'), 'teardown report');
    } finally {
      front.throttle = () => false;
    }
    expect(first.response.Status).toBe('FAILED');
    expect(first.response.Reason).toMatch(/^teardown could not delete 200 of 2000 repositories .* 800 were deleted\. Delete the stack again/);
    const second = await run(teardownHandler, deleteRequest('DESTROY_WITH_IMAGES'), 'teardown report');
    figures.teardownRetrySeconds = second.seconds;
    expect(second.response.Status).toBe('SUCCESS');
    expect(second.report).toMatchObject({ repositories: 1200, TeardownDeleted: 200, TeardownKept: 1000, TeardownFailed: 0 });
    expect(second.metrics['TeardownDeleted{Cache=PlatformCache}']).toBe(200);
    const left = await names();
    for (const { i, name } of inside) {
      expect(left.has(name)).toBe(!createdByCache(i));
    }
    for (const name of outside) {
      expect(left.has(name)).toBe(true); // outside the prefixes, even those carrying the tag
    }
    // a third delete (CloudFormation's retry after the response was lost) finds nothing to do
    const third = await run(teardownHandler, deleteRequest('DESTROY_WITH_IMAGES'), 'teardown report');
    expect(third.report).toMatchObject({ TeardownDeleted: 0, TeardownKept: 1000 });
  });
});
