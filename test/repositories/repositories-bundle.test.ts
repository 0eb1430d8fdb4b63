/**
 * The bundled handlers (assets/repositories/*.lambda/index.js, what a deploy uploads), each run as Lambda runs it: a
 * separate Node.js process with the AWS SDK inlined and the endpoint from `AWS_ENDPOINT_URL`, against moto behind
 * `ecr-front.ts`. A small cache's whole life: adopted at deploy, torn down at stack delete.
 */
import { execFile } from 'child_process';
import { existsSync } from 'fs';
import { join } from 'path';
import { promisify } from 'util';
import { CreateRepositoryCommand, DescribeRepositoriesCommand, ECRClient, GetLifecyclePolicyCommand, PutLifecyclePolicyCommand } from '@aws-sdk/client-ecr';
import { EcrFront, startEcrFront } from './ecr-front';
import { CREATED_BY_TAG } from '../../src/repositories/contract';

/** The created-by value of the cache (its stack's UUID, its address). */
const CREATED_BY = 'd3b07384-0000-4000-8000-000000000001/c8d3b07384d113edec49eaa6238ad5ff00c86d5a1b';
import { MotoServer, startMoto } from '../support/moto';

const bundle = (name: string) => join(__dirname, `../../assets/repositories/${name}.lambda/index.js`);
const POLICY = '{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":9},"action":{"type":"expire"}}]}';
const USER = POLICY.replace('9', '3');

let moto: MotoServer;
let front: EcrFront;
let ecr: ECRClient;

beforeAll(async () => {
  for (const name of ['backfill', 'teardown']) {
    if (!existsSync(bundle(name))) {
      throw new Error(`${bundle(name)} is missing: run \`npx projen bundle\` (the build does it before the tests)`);
    }
  }
  moto = await startMoto();
  front = await startEcrFront(moto.endpoint);
  ecr = new ECRClient({ endpoint: moto.endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  const marker = [{ Key: CREATED_BY_TAG.key, Value: CREATED_BY }];
  for (const [name, tags] of [['quay/a/one', marker], ['quay/a/two', marker], ['quay/mine', []], ['quay-old/a', marker]] as const) {
    await ecr.send(new CreateRepositoryCommand({ repositoryName: name, tags: [...tags] }));
  }
  await ecr.send(new PutLifecyclePolicyCommand({ repositoryName: 'quay/mine', lifecyclePolicyText: USER }));
}, 60_000);

afterAll(async () => {
  await front?.stop();
  await moto?.stop();
});

/** One request through a bundle in its own process; returns CloudFormation's response and the log lines. */
async function invoke(name: string, type: string, props: object) {
  const event = {
    RequestType: type,
    ResponseURL: front.responseUrl,
    StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/P/1',
    RequestId: `r-${front.responses.length}`,
    LogicalResourceId: 'R',
    ResourceType: 'Custom::X',
    ResourceProperties: { ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:h', ...props },
    ...(type === 'Create' ? {} : { PhysicalResourceId: `${name}:R` }),
  };
  const script = `require(${JSON.stringify(bundle(name))}).handler(JSON.parse(process.argv[1])).catch(e => { console.error(e); process.exit(1); })`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script, JSON.stringify(event)], {
    env: { PATH: process.env.PATH, AWS_ENDPOINT_URL: front.endpoint, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' },
  });
  return { response: front.responses[front.responses.length - 1], lines: stdout.trim().split('\n').map(l => JSON.parse(l)) };
}

test('backfill at deploy, teardown at stack delete, as the bundles run in Lambda', async () => {
  const backfill = await invoke('backfill', 'Create', { Prefixes: ['quay'], LifecyclePolicy: POLICY, CacheName: 'C' });
  expect(backfill.response).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'backfill:R', Data: { BackfillChanged: '2', BackfillSkipped: '1' } });
  expect(backfill.lines.find(l => l.message === 'backfill report')).toMatchObject({ repositories: 3, BackfillChanged: 2, BackfillSkipped: 1 });
  expect((await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: 'quay/a/one' }))).lifecyclePolicyText).toBe(POLICY);
  expect((await ecr.send(new GetLifecyclePolicyCommand({ repositoryName: 'quay/mine' }))).lifecyclePolicyText).toBe(USER);

  const teardown = await invoke('teardown', 'Delete', { Prefixes: ['quay'], Mode: 'DESTROY_WITH_IMAGES', CacheName: 'C', CreatedBy: CREATED_BY });
  expect(teardown.response).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'teardown:R' });
  expect(teardown.lines.find(l => l.message === 'teardown report')).toMatchObject({ TeardownDeleted: 2, TeardownKept: 1 });
  const left = (await ecr.send(new DescribeRepositoriesCommand({}))).repositories!.map(r => r.repositoryName).sort();
  expect(left).toEqual(['quay-old/a', 'quay/mine']);
}, 120_000);
