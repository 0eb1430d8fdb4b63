/**
 * Issue 27, reviewed as a platform team's app would use it: what the first change left. An image written as
 * `ecs.ContainerImage.fromEcrRepository` of the cache's own repository (its URI carries the `AWS::URLSuffix` token),
 * an execution role imported from a deploy-time ARN (aws/aws-cdk#26175), and Helm values whose `Fn::Join`s must
 * be what CDK itself renders for the same tokens. Every template is linted with cfn-lint at the end.
 */
import { Aspects, CfnParameter, Fn, Lazy, NestedStack, Size, Stack, Token } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as ecsPatterns from 'aws-cdk-lib/aws-ecs-patterns';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { CachedImages, PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';
import { lintedTemplates } from './support/cfn-lint';
import { ENV, REGISTRY, eksV2Cluster, existingVpc } from './support/environments';
import { testApp } from './util';

/** Every template these tests synthesize successfully, linted at the end. */
const template = lintedTemplates();

function cacheIn(stack: Stack): PullThroughCacheRules {
  return new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [
      UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }), UpstreamRegistry.quay(), UpstreamRegistry.ecrPublic(),
    ],
    enableMonitoring: false,
    enableScanning: false,
  });
}

/** The roles (as CloudFormation names them) that a policy granting the first pull from the cache is attached to. */
function rolesGrantedPull(t: Template): unknown[] {
  return Object.values(t.findResources('AWS::IAM::Policy'))
    .filter((p: any) => JSON.stringify(p.Properties.PolicyDocument).includes('ecr:BatchImportUpstreamImage'))
    .flatMap((p: any) => p.Properties.Roles);
}
const errors = (stack: Stack) => Annotations.fromStack(stack).findError('*', Match.anyValue()).map(m => String(m.entry.data));
const warningsOf = (stack: Stack, id: string) => Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp(`\\[ack: ${id}\\]`))
  .map(m => `${m.id}: ${m.entry.data}`);

describe('an image of the cache\'s own repository, by ecs.ContainerImage.fromEcrRepository', () => {
  test.each([
    ['an ECS container', (stack: Stack, image: ecs.ContainerImage) => {
      new ecs.FargateTaskDefinition(stack, 'Task').addContainer('web', { image, memoryLimitMiB: 512 });
    }],
    ['a Batch job', (stack: Stack, image: ecs.ContainerImage) => {
      new batch.EcsJobDefinition(stack, 'Job', { container: new batch.EcsFargateContainerDefinition(stack, 'Container', { image, cpu: 1, memory: Size.gibibytes(2) }) });
    }],
  ])('%s gets the first-pull grant (its URI holds AWS::URLSuffix, which the cache\'s domain names literally)', (name, use) => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    use(stack, ecs.ContainerImage.fromEcrRepository(ecr.Repository.fromRepositoryName(stack, 'Nginx', 'docker-hub/library/nginx'), '1.27'));
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(stack, `own-repository-${name}`);
    // CDK's own grant covers only that repository and cannot import it on a first pull; the Aspect's can
    expect(rolesGrantedPull(t)).toEqual([{ Ref: expect.stringMatching(/ExecutionRole/) }]);
    expect(JSON.stringify(t.toJSON())).toContain('"/docker-hub/library/nginx:1.27"'); // the image is left as written
    expect(errors(stack)).toEqual([]);
  });

  test('a path the cache does not serve (docker-hub/nginx, no library/) is refused like the literal URI', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    const image = ecs.ContainerImage.fromEcrRepository(ecr.Repository.fromRepositoryName(stack, 'Nginx', 'docker-hub/nginx'), '1.27');
    new ecs.FargateTaskDefinition(stack, 'Task').addContainer('web', { image, memoryLimitMiB: 512 });
    Aspects.of(app).add(new CachedImages({ cache }));
    app.synth();
    expect(errors(stack)).toEqual([expect.stringContaining('docker-hub/library/nginx')]);
  });

  test('an app repository outside the cache prefixes gets no cache grant and no word', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    const image = ecs.ContainerImage.fromEcrRepository(new ecr.Repository(stack, 'Api'), '1.0');
    new ecs.FargateTaskDefinition(stack, 'Task').addContainer('web', { image, memoryLimitMiB: 512 });
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(stack, 'app-repository');
    expect(rolesGrantedPull(t)).toEqual([]);
    expect(errors(stack)).toEqual([]);
  });
});

describe('an image of the cache\'s own repository in a manifest (repository.repositoryUriForTag)', () => {
  test('is checked as the cache\'s: served is quiet, a path the cache does not serve is refused, the app\'s own repository left alone', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    const cluster = eksV2Cluster(stack);
    const uri = (name: string) => ecr.Repository.fromRepositoryName(stack, name.replace(/\W/g, ''), name).repositoryUriForTag('1.27');
    const containers = [uri('docker-hub/library/nginx'), uri('docker-hub/nginx'), uri('platform/api'), 'quay.io/org/app:1']
      .map((image, i) => ({ name: `c${i}`, image }));
    cluster.addManifest('Pod', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers } });
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(stack, 'manifest-own-repositories');
    expect(warningsOf(stack, 'cdk-ecr-pull-through-cache:deployTimeImage')).toEqual([]);
    expect(errors(stack)).toEqual([expect.stringMatching(/Manifest Pod\/p spec\.containers\[1\]\.image: .*docker-hub\/nginx:1\.27.*docker-hub\/library\/nginx/)]);
    const manifest = JSON.stringify(Object.values(t.findResources('Custom::AWSCDK-EKS-KubernetesResource'))[0].Properties.Manifest);
    expect(manifest).toContain(`${REGISTRY}/quay/org/app:1`); // the others moved as ever
    expect(manifest.match(/\{"Ref":"AWS::URLSuffix"\}/g)).toHaveLength(3); // and the repositories' URIs are as written
  });
});

describe('an execution role imported from an ARN known only at deploy time', () => {
  test.each([
    ['an L2 task definition', (stack: Stack, arn: string) => {
      const task = new ecs.FargateTaskDefinition(stack, 'Task', { executionRole: iam.Role.fromRoleArn(stack, 'Exec', arn) });
      task.addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 512 });
    }],
    ['an L1 task definition', (stack: Stack, arn: string) => {
      new ecs.CfnTaskDefinition(stack, 'Task', { executionRoleArn: arn, containerDefinitions: [{ name: 'web', image: 'nginx:1.27', memory: 128 }] });
    }],
  ])('in %s is warned: CDK reads a path as the name (aws/aws-cdk#26175), and the grant would land on "service-role"', (name, use) => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    use(stack, new CfnParameter(stack, 'ExecutionRoleArn').valueAsString);
    Aspects.of(app).add(new CachedImages({ cache }));
    template(stack, `deploy-time-role-${name}`);
    expect(warningsOf(stack, 'cdk-ecr-pull-through-cache:executionRoleFromArn')).toEqual([expect.stringMatching(
      /execution role is imported from an ARN known only at deploy time.*role\/service-role\/name.*"service-role".*iam\.Role\.fromRoleName/)]);
  });

  test('no warning when the name is known: a literal ARN with a path, or a role imported by name', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    const roles = [
      iam.Role.fromRoleArn(stack, 'Literal', `arn:aws:iam::${ENV.account}:role/service-role/exec`),
      iam.Role.fromRoleName(stack, 'ByName', new CfnParameter(stack, 'RoleName').valueAsString),
    ];
    roles.forEach((executionRole, i) => new ecs.FargateTaskDefinition(stack, `Task${i}`, { executionRole })
      .addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 512 }));
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(stack, 'known-role-names');
    expect(warningsOf(stack, 'cdk-ecr-pull-through-cache:executionRoleFromArn')).toEqual([]);
    expect(rolesGrantedPull(t)).toEqual(['exec', { Ref: 'RoleName' }]);
  });
});

describe('Helm values written back are what CDK renders for the same tokens', () => {
  /** An add-ons chart in a nested stack, its values naming other stacks' attributes every way CDK can render them. */
  function addonsApp(withAspect: boolean, image: string) {
    const app = testApp();
    const clusterStack = new Stack(app, 'Cluster', { env: ENV });
    const cache = cacheIn(clusterStack);
    const cluster = eksV2Cluster(clusterStack);
    const shared = new sqs.Queue(new Stack(app, 'Shared', { env: ENV }), 'Events');
    const addons = new Stack(app, 'Addons', { env: ENV });
    const own = new sqs.Queue(addons, 'Own');
    const nested = new NestedStack(addons, 'Charts');
    new eks.HelmChart(nested, 'Chart', {
      cluster,
      chart: 'app',
      repository: 'oci://public.ecr.aws/example/app',
      version: '1.0.0',
      namespace: 'kube-system',
      values: {
        image: { repository: image, tag: '1.27' },
        imported: Fn.importValue('SharedVpcId'),
        joined: Fn.join('-', [shared.queueArn, 'x', cluster.clusterName]),
        adjacent: Fn.join('', [Fn.importValue('Prefix'), '/', own.queueName, shared.queueUrl]),
        ends: `${own.queueName}`,
        concat: `pre-${own.queueName}-${cluster.clusterArn}-post`,
        list: [own.queueUrl, shared.queueName, Fn.select(0, Fn.split(',', Fn.importValue('Subnets')))],
        number: Token.asNumber(Fn.importValue('Replicas')),
        sub: Fn.sub('${AWS::Region}-${X}', { X: shared.queueName }),
        lazy: Lazy.string({ produce: () => `lz-${cluster.clusterName}` }),
        base64: Fn.base64(`a-${own.queueUrl}`),
      },
    });
    if (withAspect) {
      Aspects.of(app).add(new CachedImages({ cache }));
    }
    return { app, stacks: [clusterStack, Stack.of(shared), addons, nested] };
  }

  test('every stack of the app is byte for byte the one with the cache URI written by hand (no "" parts in a Fn::Join)', () => {
    const moved = addonsApp(true, 'nginx');
    const byHand = addonsApp(false, `${REGISTRY}/docker-hub/library/nginx`);
    moved.stacks.forEach((stack, i) => {
      const t = template(stack, `helm-differential-${stack.stackName}`).toJSON();
      const written = JSON.stringify(t).replace(',\\"registry\\":\\"\\"', ''); // the empty registry the Aspect adds
      const hand = JSON.stringify(Template.fromStack(byHand.stacks[i]).toJSON());
      // asset hashes name the nested template, whose registry value differs: compare the rest
      const hashless = (s: string) => s.replace(/[0-9a-f]{64}/g, 'HASH');
      expect(hashless(written)).toBe(hashless(hand));
    });
  });
});

describe('reportOnly on a platform team\'s app changes nothing', () => {
  function platformApp(reportOnly?: boolean) {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    const tag = new CfnParameter(stack, 'Tag');
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    task.addContainer('tagged', { image: ecs.ContainerImage.fromRegistry(`nginx:${tag.valueAsString}`), memoryLimitMiB: 512 });
    task.addContainer('own', { image: ecs.ContainerImage.fromEcrRepository(ecr.Repository.fromRepositoryName(stack, 'Nginx', 'docker-hub/library/nginx'), '1.27'), memoryLimitMiB: 512 });
    const cluster = new ecs.Cluster(stack, 'Cluster', { vpc: existingVpc(stack) });
    new ecsPatterns.ApplicationLoadBalancedFargateService(stack, 'Web', {
      cluster, taskImageOptions: { image: ecs.ContainerImage.fromRegistry('quay.io/prometheus/prometheus:v2.53.0') },
    });
    new ecs.CfnTaskDefinition(stack, 'L1', {
      executionRoleArn: new CfnParameter(stack, 'ExecutionRoleArn').valueAsString,
      containerDefinitions: [{ name: 'x', image: 'nginx:1.27', memory: 128 }],
    });
    new batch.EcsJobDefinition(stack, 'Job', {
      container: new batch.EcsFargateContainerDefinition(stack, 'JobContainer', {
        image: ecs.ContainerImage.fromRegistry('nginx:1.27'),
        cpu: 1,
        memory: Size.gibibytes(2),
        secrets: { TOKEN: batch.Secret.fromSecretsManager(new secretsmanager.Secret(stack, 'Token')) },
      }),
    });
    if (reportOnly !== undefined) {
      Aspects.of(app).add(new CachedImages({ cache, reportOnly }));
    }
    return stack;
  }

  test('reportOnly is byte-identical; moving, every image moves and every role that pulls is granted', () => {
    expect(JSON.stringify(Template.fromStack(platformApp(true)).toJSON())).toBe(JSON.stringify(Template.fromStack(platformApp()).toJSON()));
    const stack = platformApp(false);
    const t = template(stack, 'platform-moved');
    const images = JSON.stringify([...Object.values(t.findResources('AWS::ECS::TaskDefinition')), ...Object.values(t.findResources('AWS::Batch::JobDefinition'))]);
    expect(images).not.toMatch(/"Image":"(nginx|quay\.io)/);
    expect(images).toContain(`${REGISTRY}/quay/prometheus/prometheus:v2.53.0`);
    expect(rolesGrantedPull(t)).toHaveLength(4); // the task's, the service's, the L1's (imported) and the job's execution roles
  });
});
