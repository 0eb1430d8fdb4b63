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
import { captureLog, MotoServer, startMoto, useEndpoint } from '../support/moto';

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
