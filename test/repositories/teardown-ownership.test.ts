/**
 * Teardown deletes only what THIS cache created: a hostile set of neighbours on a real ECR API (moto on loopback,
 * behind `ecr-front.ts`). Repositories under the prefixes carrying another cache's (or another stack's, or an older
 * release's) created-by value, siblings whose names start like a prefix, a nested prefix of another cache, and a prefix
 * with a slash.
 */
import { CreateRepositoryCommand, DescribeRepositoriesCommand, ECRClient } from '@aws-sdk/client-ecr';
import { EcrFront, startEcrFront } from './ecr-front';
import { transientRetry } from '../../src/private/handlers/bounded';
import { CustomResourceEvent } from '../../src/private/handlers/custom-resource';
import { CREATED_BY_TAG } from '../../src/repositories/contract';
import { ruleCheck, handler as teardownHandler } from '../../src/repositories/teardown.lambda';
import { captureLog, emfValues, MotoServer, startMoto, useEndpoint } from '../support/moto';

jest.setTimeout(180_000);

/** This cache: the stack's id (its UUID) and the construct's address, as `cachedRepositoryOwner` renders them. */
const THIS_CACHE = '0a1b2c3d-0000-4000-8000-000000000001/c8a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4';
/** The same prefix used by a stack of the same name deployed earlier and deleted (another UUID). */
const EARLIER_STACK = '0a1b2c3d-0000-4000-8000-000000000002/c8a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4';
/** Another cache of the registry, whose prefix `hub/internal` nests under this cache's `hub`. */
const OTHER_CACHE = '0a1b2c3d-0000-4000-8000-000000000003/c8ffffffffffffffffffffffffffffffffffffffff';
/** The value every cache wrote before the value named its cache. */
const LEGACY = 'repository-creation-template';

const REPOSITORIES: Array<[name: string, createdBy: string | undefined, deleted: boolean]> = [
  ['hub/library/nginx', THIS_CACHE, true],
  ['team/hub/app', THIS_CACHE, true], // prefix with a slash
  ['hub/library/redis', undefined, false], // made by hand under the prefix
  ['hub/library/old', LEGACY, false],
  ['hub/library/earlier', EARLIER_STACK, false],
  ['hub/internal/tool', OTHER_CACHE, false], // another cache's nested prefix
  ['hub-old/library/nginx', THIS_CACHE, false], // siblings: never under `hub/`
  ['hubx/alpine', THIS_CACHE, false],
  ['team/hubx/app', THIS_CACHE, false],
  ['team/app', THIS_CACHE, false],
];

let moto: MotoServer;
let front: EcrFront;
let ecr: ECRClient;

beforeAll(async () => {
  moto = await startMoto();
  front = await startEcrFront(moto.endpoint);
  useEndpoint(front.endpoint);
  process.env.AWS_SDK_MAX_ATTEMPTS = '1';
  transientRetry.baseMs = 5;
  transientRetry.capMs = 50;
  ruleCheck.waitMs = 10;
  ecr = new ECRClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  for (const [name, createdBy] of REPOSITORIES) {
    await ecr.send(new CreateRepositoryCommand({
      repositoryName: name,
      tags: createdBy ? [{ Key: CREATED_BY_TAG.key, Value: createdBy }] : [],
    }));
  }
});

afterAll(async () => {
  await front?.stop();
  await moto?.stop();
});

function deleteRequest(properties: Record<string, unknown>): CustomResourceEvent {
  return {
    RequestType: 'Delete',
    ResponseURL: front.responseUrl,
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/Platform/0a1b2c3d-0000-4000-8000-000000000001',
    RequestId: `req-${front.responses.length}`,
    LogicalResourceId: 'CacheRepositoryTeardown',
    PhysicalResourceId: 'teardown:CacheRepositoryTeardown',
    ResourceType: 'Custom::EcrCacheRepositoryTeardown',
    ResourceProperties: { ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:h', ...properties },
  };
}

test('deletes only the repositories under its prefixes that carry THIS cache\'s created-by value', async () => {
  const { lines } = await captureLog(() => teardownHandler(deleteRequest({
    Prefixes: ['hub', 'team/hub'], Mode: 'DESTROY_WITH_IMAGES', CacheName: 'PlatformCache', CreatedBy: THIS_CACHE,
  })));
  expect(front.responses.at(-1)).toMatchObject({ Status: 'SUCCESS' });
  const left = new Set(((await ecr.send(new DescribeRepositoriesCommand({}))).repositories ?? []).map(r => r.repositoryName));
  expect(REPOSITORIES.filter(([name]) => !left.has(name)).map(([name]) => name))
    .toEqual(REPOSITORIES.filter(([, , deleted]) => deleted).map(([name]) => name));
  const report = lines.find(l => l.message === 'teardown report')!;
  expect(report).toMatchObject({ TeardownDeleted: 2, TeardownKept: 4 });
  expect(report.kept).toContain(`hub/library/old (not created by this cache: its ${CREATED_BY_TAG.key} tag is '${LEGACY}')`);
  expect(report.kept).toContain('hub/library/redis (not created by this cache: no ' + `${CREATED_BY_TAG.key} tag)`);
});

test('a request without the cache\'s created-by value is refused, and deletes nothing', async () => {
  const before = (await ecr.send(new DescribeRepositoriesCommand({}))).repositories?.length;
  await captureLog(() => teardownHandler(deleteRequest({ Prefixes: ['hub'], Mode: 'DESTROY_WITH_IMAGES', CacheName: 'PlatformCache' })));
  expect(front.responses.at(-1)).toMatchObject({ Status: 'FAILED', Reason: expect.stringMatching(/CreatedBy/) });
  expect((await ecr.send(new DescribeRepositoriesCommand({}))).repositories?.length).toBe(before);
});

describe('requests that must delete nothing, though the cache\'s own repository is there', () => {
  const OWN = 'hub/library/own';
  const names = async () => new Set(((await ecr.send(new DescribeRepositoriesCommand({}))).repositories ?? []).map(r => r.repositoryName));
  const properties = { Prefixes: ['hub'], Mode: 'DESTROY_WITH_IMAGES', CacheName: 'PlatformCache', CreatedBy: THIS_CACHE };
  beforeAll(async () => {
    await ecr.send(new CreateRepositoryCommand({ repositoryName: OWN, tags: [{ Key: CREATED_BY_TAG.key, Value: THIS_CACHE }] }));
  });
  afterEach(async () => {
    expect((await names()).has(OWN)).toBe(true);
  });

  test('the delete of a rollback after the teardown\'s own create failed', async () => {
    await captureLog(() => teardownHandler({ ...deleteRequest(properties), PhysicalResourceId: 'FAILED-CREATE:req-0' }));
    expect(front.responses.at(-1)).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'FAILED-CREATE:req-0' });
  });

  test.each(['Create', 'Update'] as const)('%s (a mode switched, a prefix added): answered with the same physical id, so '
    + 'CloudFormation never deletes a replaced one', async type => {
    const event: CustomResourceEvent = {
      ...deleteRequest(properties),
      RequestType: type,
      ...(type === 'Create' ? { PhysicalResourceId: undefined } : { OldResourceProperties: { ...properties, Mode: 'LIST_ONLY' } }),
    };
    await captureLog(() => teardownHandler(event));
    expect(front.responses.at(-1)).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'teardown:CacheRepositoryTeardown' });
  });

  test('when whether a rule remains cannot be read (throttled past every retry): FAILED, with why', async () => {
    front.throttle = operation => operation === 'DescribePullThroughCacheRules';
    try {
      await captureLog(() => teardownHandler(deleteRequest(properties)));
    } finally {
      front.throttle = () => false;
    }
    expect(front.responses.at(-1)).toMatchObject({
      Status: 'FAILED',
      Reason: expect.stringMatching(/^could not tell whether the prefix 'hub' still has a pull through cache rule, so nothing was deleted: ThrottlingException/),
    });
  });

  test('LIST_ONLY: lists it in the report and the TeardownWouldDelete metric', async () => {
    const { lines } = await captureLog(() => teardownHandler(deleteRequest({ ...properties, Mode: 'LIST_ONLY' })));
    expect(front.responses.at(-1)).toMatchObject({ Status: 'SUCCESS' });
    expect(lines.find(l => l.message === 'teardown report')).toMatchObject({ wouldDelete: [OWN], TeardownWouldDelete: 1, TeardownDeleted: 0 });
    expect(emfValues(lines)['TeardownWouldDelete{Cache=PlatformCache}']).toBe(1);
  });
});
