/**
 * The CachedImages Aspect in the kind of app platform teams have (issue 27): CDK Pipelines Stages, a reader Aspect
 * like cdk-nag, an add-ons stack feeding a cluster stack, nested stacks, images already written for the cache, and
 * execution roles with a path. Every template these tests synthesize is linted with cfn-lint at the end.
 */
import { App, AspectPriority, Aspects, CfnParameter, IAspect, NestedStack, Size, Stack, Stage, StageProps } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as apprunner from 'aws-cdk-lib/aws-apprunner';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as pipelines from 'aws-cdk-lib/pipelines';
import { AwsSolutionsChecks } from 'cdk-nag';
import { Construct, IConstruct } from 'constructs';
import { CachedImages, PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';
import { lintedTemplates } from './support/cfn-lint';
import { ACCOUNT, ENV, REGISTRY, eksV2Cluster } from './support/environments';
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

const containersOf = (t: Template): any[] => Object.values(t.findResources('AWS::ECS::TaskDefinition'))[0].Properties.ContainerDefinitions;
const errors = (stack: Stack) => Annotations.fromStack(stack).findError('*', Match.anyValue()).map(m => String(m.entry.data));

/** The roles (as CloudFormation names them) that a policy granting the first pull from the cache is attached to. */
function rolesGrantedPull(t: Template): unknown[] {
  return Object.values(t.findResources('AWS::IAM::Policy'))
    .filter((p: any) => JSON.stringify(p.Properties.PolicyDocument).includes('ecr:BatchImportUpstreamImage'))
    .flatMap((p: any) => p.Properties.Roles);
}

/** The execution role of the (only) task definition, as the template names it. */
function executionRoleRef(t: Template): unknown {
  const arn = Object.values(t.findResources('AWS::ECS::TaskDefinition'))[0].Properties.ExecutionRoleArn;
  expect(arn).toEqual({ 'Fn::GetAtt': [expect.any(String), 'Arn'] });
  return { Ref: arn['Fn::GetAtt'][0] };
}

describe('1. Stages: reached, or synth fails saying how', () => {
  /** A CDK Pipelines application stage: a cache stack and a service stack. */
  class Workloads extends Stage {
    public readonly cache: PullThroughCacheRules;
    public readonly service: Stack;
    constructor(scope: Construct, id: string, props: StageProps & { image?: string }) {
      super(scope, id, props);
      this.cache = cacheIn(new Stack(this, 'Shared'));
      this.service = new Stack(this, 'Service');
      if (props.image) {
        new ecs.FargateTaskDefinition(this.service, 'Task').addContainer('web', { image: ecs.ContainerImage.fromRegistry(props.image), memoryLimitMiB: 512 });
      }
    }
  }

  function pipelineApp(image?: string) {
    const app = testApp();
    const pipelineStack = new Stack(app, 'Pipeline', { env: ENV });
    const pipeline = new pipelines.CodePipeline(pipelineStack, 'Pipeline', {
      synth: new pipelines.ShellStep('Synth', {
        input: pipelines.CodePipelineSource.connection('org/platform', 'main', {
          connectionArn: `arn:aws:codeconnections:eu-west-1:${ACCOUNT}:connection/0a1b2c3d-0000-4000-8000-0a1b2c3d4e5f`,
        }),
        commands: ['npm ci', 'npx cdk synth'],
      }),
    });
    const prod = new Workloads(app, 'Prod', { env: ENV, image });
    return { app, pipeline, prod };
  }

  test('the README\'s Aspects.of(app) fails synth, naming the Stage and the fix', () => {
    const { app, pipeline, prod } = pipelineApp('nginx:1.27');
    pipeline.addStage(prod);
    Aspects.of(app).add(new CachedImages({ cache: prod.cache }));
    expect(() => app.synth()).toThrow(new RegExp('CachedImages: the Aspects of the app do not reach the stacks of a Stage \\(aws/aws-cdk#20468\\), '
      + 'so the images of Prod \\(1 with images, such as Prod/Service/Task/web\\) would stay where they are, unchecked\\. '
      + 'Add CachedImages to each Stage, .*Aspects\\.of\\(stage\\)\\.add\\(new CachedImages\\(\\{ cache \\}\\)\\)'));
  });

  test('added to the Stage, it moves the images of its stacks and grants their execution role', () => {
    const { app, pipeline, prod } = pipelineApp('nginx:1.27');
    Aspects.of(prod).add(new CachedImages({ cache: prod.cache }));
    pipeline.addStage(prod);
    Aspects.of(app).add(new CachedImages({ cache: prod.cache })); // the app's own: now no error
    app.synth();
    const t = template(prod.service, 'stage-service');
    expect(containersOf(t)[0].Image).toBe(`${REGISTRY}/docker-hub/library/nginx:1.27`);
    expect(rolesGrantedPull(t)).toEqual([executionRoleRef(t)]);
    template(prod.node.findChild('Shared') as Stack, 'stage-shared');
    expect(errors(prod.service)).toEqual([]);
  });

  test('a Stage with no images, or one covered by a report-only Aspect, is no error', () => {
    const bare = pipelineApp();
    bare.pipeline.addStage(bare.prod);
    Aspects.of(bare.app).add(new CachedImages({ cache: bare.prod.cache }));
    expect(() => bare.app.synth()).not.toThrow();

    const reported = pipelineApp('nginx:1.27');
    Aspects.of(reported.prod.service).add(new CachedImages({ cache: reported.prod.cache, reportOnly: true }));
    Aspects.of(reported.app).add(new CachedImages({ cache: reported.prod.cache }));
    expect(() => reported.app.synth()).not.toThrow();
    expect(containersOf(Template.fromStack(reported.prod.service))[0].Image).toBe('nginx:1.27');
  });
});

describe('2. a reader Aspect that resolves task definitions first (cdk-nag\'s AwsSolutions-ECS2) freezes nothing', () => {
  /** Runs real cdk-nag on each ECS task definition it meets, as cdk-nag 2's Aspect did (ECS2 resolves the containers). */
  class NagReader implements IAspect {
    public readonly read: string[] = [];
    constructor(private readonly app: App) {}
    public visit(node: IConstruct): void {
      if (node instanceof ecs.CfnTaskDefinition) {
        new AwsSolutionsChecks(this.app).validateScope(node);
        this.read.push(node.node.path);
      }
    }
  }

  const orders: Array<[string, (app: App, ours: CachedImages, reader: NagReader) => void]> = [
    ['reader added first', (app, ours, reader) => { Aspects.of(app).add(reader); Aspects.of(app).add(ours); }],
    ['reader added last', (app, ours, reader) => { Aspects.of(app).add(ours); Aspects.of(app).add(reader); }],
    ['reader of higher priority', (app, ours, reader) => {
      Aspects.of(app).add(ours, { priority: AspectPriority.READONLY });
      Aspects.of(app).add(reader, { priority: AspectPriority.MUTATING });
    }],
    ['reader of lower priority', (app, ours, reader) => {
      Aspects.of(app).add(reader, { priority: AspectPriority.READONLY });
      Aspects.of(app).add(ours, { priority: AspectPriority.MUTATING });
    }],
    ['reader on the stack, ours on the app', (app, ours, reader) => {
      Aspects.of(app.node.findChild('Apps')).add(reader, { priority: 1 });
      Aspects.of(app).add(ours);
    }],
  ];

  test.each(orders)('%s', (name, apply) => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    task.addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 512 });
    task.addContainer('metrics', { image: ecs.ContainerImage.fromRegistry('quay.io/prometheus/nginx-exporter:1.3.0'), memoryLimitMiB: 128 });
    const reader = new NagReader(app);
    apply(app, new CachedImages({ cache }), reader);
    const t = template(stack, `reader-${name}`);
    expect(reader.read).toEqual(['Apps/Task/Resource']); // the reader really ran
    expect(containersOf(t).map(c => c.Image)).toEqual([
      `${REGISTRY}/docker-hub/library/nginx:1.27`, `${REGISTRY}/quay/prometheus/nginx-exporter:1.3.0`,
    ]);
    // the role that got the grant is the one the task definition names
    expect(rolesGrantedPull(t)).toEqual([executionRoleRef(t)]);
  });
});

describe('3. values of other stacks stay references CloudFormation can resolve', () => {
  test('Helm values of an add-ons stack naming the cluster of a cluster stack', () => {
    const app = testApp();
    const clusterStack = new Stack(app, 'Cluster', { env: ENV });
    const cache = cacheIn(clusterStack);
    const cluster = eksV2Cluster(clusterStack);
    const addons = new Stack(app, 'Addons', { env: ENV });
    const interruptions = new sqs.Queue(addons, 'Interruptions');
    new eks.HelmChart(addons, 'Karpenter', {
      cluster,
      chart: 'karpenter',
      repository: 'oci://public.ecr.aws/karpenter/karpenter',
      version: '1.6.0',
      namespace: 'kube-system',
      values: {
        settings: { clusterName: cluster.clusterName, interruptionQueue: interruptions.queueName },
        controller: { image: { repository: 'public.ecr.aws/karpenter/controller', tag: '1.6.0' } },
      },
    });
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(addons, 'cross-stack-addons');
    template(clusterStack, 'cross-stack-cluster');
    const values = Object.values(t.findResources('Custom::AWSCDK-EKS-HelmChart'))[0].Properties.Values;
    const text = JSON.stringify(values);
    expect(text).toContain(`\\"repository\\":\\"${REGISTRY}/ecr-public/karpenter/controller\\"`);
    expect(text).toMatch(/"Fn::ImportValue":"Cluster:ExportsOutputRefCluster/); // the cluster's name, imported
    expect(text).toMatch(/\{"Fn::GetAtt":\["Interruptions[0-9A-F]+","QueueName"\]\}/); // its own queue, as it was
  });

  test('a manifest in a nested stack naming a resource of its parent', () => {
    const app = testApp();
    const parent = new Stack(app, 'Parent', { env: ENV });
    const cache = cacheIn(parent);
    const cluster = eksV2Cluster(parent);
    const queue = new sqs.Queue(parent, 'Jobs');
    const nested = new NestedStack(parent, 'Workloads');
    new eks.KubernetesManifest(nested, 'Worker', {
      cluster,
      manifest: [{
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'worker' },
        spec: { template: { spec: { containers: [{ name: 'w', image: 'bitnami/kubectl:1.31', env: [{ name: 'QUEUE', value: queue.queueUrl }] }] } } },
      }],
    });
    Aspects.of(app).add(new CachedImages({ cache }));
    template(parent, 'nested-parent');
    const t = template(nested, 'nested-child');
    const manifest = JSON.stringify(Object.values(t.findResources('Custom::AWSCDK-EKS-KubernetesResource'))[0].Properties.Manifest);
    expect(manifest).toContain(`${REGISTRY}/docker-hub/bitnami/kubectl:1.31`);
    // the parent's queue comes in as a parameter of the nested stack
    expect(manifest).toMatch(/\{"Ref":"referencetoParentJobs[0-9A-F]+Ref"\}/);
  });
});

describe('4. grants land on the role that pulls', () => {
  test.each([
    ['imageUri (concrete environment)', (cache: PullThroughCacheRules) => cache.imageUri('nginx:1.27')],
    ['registryUri, as the token warning advises', (cache: PullThroughCacheRules) => `${cache.registryUri}/quay/org/app:1`],
  ])('a container written for the cache with %s gets an execution role with pull rights', (name, image) => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    new ecs.FargateTaskDefinition(stack, 'Task').addContainer('web', { image: ecs.ContainerImage.fromRegistry(image(cache)), memoryLimitMiB: 512 });
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(stack, `written-${name}`);
    expect(containersOf(t)[0].Image).toBe(image(cache));
    expect(rolesGrantedPull(t)).toEqual([executionRoleRef(t)]);
  });

  test('in an environment-agnostic app, a container written with imageUri (a token) is granted too', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps');
    const cache = cacheIn(stack);
    new ecs.FargateTaskDefinition(stack, 'Task').addContainer('web', { image: ecs.ContainerImage.fromRegistry(cache.imageUri('nginx:1.27')), memoryLimitMiB: 512 });
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(stack, 'written-agnostic');
    expect(rolesGrantedPull(t)).toEqual([executionRoleRef(t)]);
  });

  test.each([
    ['an L2 role with a path', (stack: Stack) => new iam.Role(stack, 'Exec', {
      path: '/service-role/', assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
    }).roleArn],
    ['an L1 role with a path', (stack: Stack) => new iam.CfnRole(stack, 'Exec', {
      path: '/service-role/',
      assumeRolePolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ecs-tasks.amazonaws.com' }, Action: 'sts:AssumeRole' }] },
    }).attrArn],
  ])('an L1 task definition whose execution role is %s: the grant goes to that role, not one named after its path', (name, role) => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    new ecs.CfnTaskDefinition(stack, 'L1', { executionRoleArn: role(stack), containerDefinitions: [{ name: 'web', image: 'nginx:1.27', memory: 128 }] });
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(stack, `path-${name}`);
    expect(rolesGrantedPull(t)).toEqual([{ Ref: expect.stringMatching(/^Exec/) }]);
    expect(containersOf(t)[0].Image).toBe(`${REGISTRY}/docker-hub/library/nginx:1.27`);
  });

  test('EKS: moved manifests warn that node groups need the cache\'s pull rights, until their roles are the cache\'s nodeRoles', () => {
    for (const given of [false, true]) {
      const app = testApp();
      const stack = new Stack(app, 'Apps', { env: ENV });
      const cluster = eksV2Cluster(stack);
      const nodes = cluster.addNodegroupCapacity('Nodes', { minSize: 1 });
      const cache = new PullThroughCacheRules(stack, 'Cache', {
        upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() })],
        nodeRoles: given ? [nodes.role] : undefined,
        enableMonitoring: false,
        enableScanning: false,
      });
      cluster.addManifest('Pod', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'nginx:1.27' }] } });
      Aspects.of(app).add(new CachedImages({ cache }));
      const t = template(stack, `node-roles-${given}`);
      const warned = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('was given no nodeRoles')).map(m => m.entry.data);
      if (given) {
        expect(warned).toEqual([]);
        expect(rolesGrantedPull(t)).toEqual([{ Ref: stack.getLogicalId(nodes.role.node.defaultChild as iam.CfnRole) }]);
      } else {
        expect(warned).toEqual([expect.stringContaining('the node groups Apps/Cluster/NodegroupNodes keep only what the cluster gave them '
          + '(AmazonEC2ContainerRegistryReadOnly has no ecr:BatchImportUpstreamImage or ecr:CreateRepository')]);
      }
    }
  });

  test('an L1 task definition with a literal cache URI still needs, and gets, its execution role granted', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    const role = new iam.Role(stack, 'Exec', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    new ecs.CfnTaskDefinition(stack, 'L1', { executionRoleArn: role.roleArn, containerDefinitions: [{ name: 'web', image: `${REGISTRY}/quay/org/app:1`, memory: 128 }] });
    new ecs.CfnTaskDefinition(stack, 'NoRole', { containerDefinitions: [{ name: 'web', image: `${REGISTRY}/quay/org/app:1`, memory: 128 }] });
    Aspects.of(app).add(new CachedImages({ cache }));
    app.synth();
    expect(rolesGrantedPull(Template.fromStack(stack))).toEqual([{ Ref: expect.stringMatching(/^Exec/) }]);
    expect(errors(stack)).toEqual([expect.stringMatching(/^Apps\/NoRole has images in the pull through cache, but no executionRoleArn/)]);
  });
});

describe('8. a tag known only at deploy time moves with the tag kept a token', () => {
  test('ECS L2 and L1 containers, manifest strings and imageUri', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    const tag = new CfnParameter(stack, 'Tag', { default: '1.27' });
    const role = new iam.Role(stack, 'Exec', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    task.addContainer('web', { image: ecs.ContainerImage.fromRegistry(`nginx:${tag.valueAsString}`), memoryLimitMiB: 512 });
    task.addContainer('written', { image: ecs.ContainerImage.fromRegistry(cache.imageUri(`quay.io/org/app:v${tag.valueAsString}-slim`)), memoryLimitMiB: 128 });
    new ecs.CfnTaskDefinition(stack, 'L1', { executionRoleArn: role.roleArn, containerDefinitions: [{ name: 'l1', image: `quay.io/org/app:${tag.valueAsString}`, memory: 128 }] });
    eksV2Cluster(stack).addManifest('Pod', {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: `bitnami/kubectl:${tag.valueAsString}` }] },
    });
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(stack, 'token-tags');
    const join = (...parts: unknown[]) => ({ 'Fn::Join': ['', parts] });
    const images = Object.values(t.findResources('AWS::ECS::TaskDefinition')).flatMap((r: any) => r.Properties.ContainerDefinitions.map((c: any) => c.Image));
    expect(images).toEqual([
      join(`${REGISTRY}/docker-hub/library/nginx:`, { Ref: 'Tag' }),
      join(`${REGISTRY}/quay/org/app:v`, { Ref: 'Tag' }, '-slim'),
      join(`${REGISTRY}/quay/org/app:`, { Ref: 'Tag' }),
    ]);
    const manifest = Object.values(t.findResources('Custom::AWSCDK-EKS-KubernetesResource'))[0].Properties.Manifest;
    expect(JSON.stringify(manifest)).toContain(`"image\\":\\"${REGISTRY}/docker-hub/bitnami/kubectl:",{"Ref":"Tag"}`);
    expect(rolesGrantedPull(t)).toEqual(expect.arrayContaining([{ Ref: expect.stringMatching(/^Exec/) }, executionRoleRef(t)]));
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('known only at deploy time'))).toEqual([]);
  });

  test('a token outside the tag is still reported, and imageUri still refuses what no rule serves', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    const name = new CfnParameter(stack, 'Name');
    new ecs.FargateTaskDefinition(stack, 'Task').addContainer('web', { image: ecs.ContainerImage.fromRegistry(`quay.io/${name.valueAsString}:1`), memoryLimitMiB: 512 });
    Aspects.of(app).add(new CachedImages({ cache }));
    app.synth();
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('^container web: the image is known only at deploy time'))).toHaveLength(1);
    expect(() => cache.imageUri(`ghcr.io/org/app:${name.valueAsString}`)).toThrow(/no pull through cache rule serves 'ghcr\.io\/org\/app:\$\{Token\[/);
  });
});

describe('7 and 10. cache URIs are checked like any image, on every host of the cache registry', () => {
  test('a wrong path or an uncopied mirror tag is refused by the Aspect and by imageUri; dual-stack and FIPS hosts are the cache', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [
        UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
        UpstreamRegistry.copied({ registryUrl: 'mcr.microsoft.com', ecrRepositoryPrefix: 'mcr', images: ['dotnet/aspnet:8.0'] }),
      ],
      enableMonitoring: false,
      enableScanning: false,
    });
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    const images = {
      noLibrary: `${REGISTRY}/docker-hub/nginx:1.27`,
      uncopied: `${REGISTRY}/mcr/dotnet/aspnet:9.0`,
      copied: `${REGISTRY}/mcr/dotnet/aspnet:8.0`,
      dualStack: `${ACCOUNT}.dkr-ecr.eu-west-1.on.aws/docker-hub/library/redis:7`,
      fips: `${ACCOUNT}.dkr.ecr-fips.eu-west-1.amazonaws.com/docker-hub/library/busybox:1.36`,
      otherAccount: '444455556666.dkr-ecr.eu-west-1.on.aws/shared/app:1',
    };
    for (const [name, image] of Object.entries(images)) {
      task.addContainer(name, { image: ecs.ContainerImage.fromRegistry(image), memoryLimitMiB: 128 });
    }
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(stack, 'cache-uris');
    expect(containersOf(t).map(c => c.Image)).toEqual(Object.values(images)); // nothing rewritten
    expect(errors(stack)).toEqual([
      `container noLibrary: '${images.noLibrary}' is not served by the pull through cache: 'docker-hub/nginx' is not where the cache serves `
        + 'docker.io/nginx: it is cached as docker-hub/library/nginx (Docker Hub official images keep library/: without it ECR answers 403). '
        + `Write ${REGISTRY}/docker-hub/library/nginx:1.27, or pass the upstream reference to imageUri.`,
      expect.stringMatching(new RegExp(`^container uncopied: '${images.uncopied}' is not served by the pull through cache: the copier copies only dotnet/aspnet:8.0 into 'mcr'`)),
    ]);
    expect(Annotations.fromStack(stack).findInfo('*', Match.stringLikeRegexp('another private ECR registry')).map(m => m.entry.data))
      .toEqual([expect.stringContaining(`container otherAccount: '${images.otherAccount}'`)]);
    expect(rolesGrantedPull(t)).toEqual([executionRoleRef(t)]); // the copied, dual-stack and FIPS images are pulled from the cache
    expect(() => cache.imageUri(images.noLibrary)).toThrow(/'docker-hub\/nginx' is not where the cache serves docker\.io\/nginx/);
    expect(() => cache.imageUri(images.uncopied)).toThrow(/the copier copies only dotnet\/aspnet:8\.0 into 'mcr'/);
    expect(cache.imageUri(images.dualStack)).toBe(images.dualStack);
  });
});

describe('11. every message says what to do', () => {
  test('unserved registries name the upstream to add, or advice that works', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    task.addContainer('gh', { image: ecs.ContainerImage.fromRegistry('ghcr.io/org/app:1'), memoryLimitMiB: 128 });
    task.addContainer('port', { image: ecs.ContainerImage.fromRegistry('registry.example.com:5000/team/app:1'), memoryLimitMiB: 128 });
    task.addContainer('frozen', { image: ecs.ContainerImage.fromRegistry('k8s.gcr.io/pause:3.9'), memoryLimitMiB: 128 });
    Aspects.of(app).add(new CachedImages({ cache }));
    template(stack, 'messages');
    const [gh, port, frozen] = errors(stack);
    expect(gh).toBe("container gh: 'ghcr.io/org/app:1' is not served by the pull through cache: no cache prefix for ghcr.io: "
      + "add UpstreamRegistry.githubContainerRegistry({ credentials }) to the cache's upstreams");
    expect(frozen).toBe("container frozen: 'k8s.gcr.io/pause:3.9' is not served by the pull through cache: ECR cannot pull through 'k8s.gcr.io', "
      + 'which is frozen: its images are on registry.k8s.io, which ECR pulls through (UpstreamRegistry.kubernetes()). '
      + 'Write the image as registry.k8s.io/<the same path>.');
    const advice = /UpstreamRegistry\.copied\(\{ registryUrl: 'registry\.example\.com:5000', ecrRepositoryPrefix: 'example', images/;
    expect(port).toMatch(advice);
    // the advice, followed, is accepted
    expect(() => UpstreamRegistry.copied({ registryUrl: 'registry.example.com:5000', ecrRepositoryPrefix: 'example', images: ['team/app:1'] })).not.toThrow();
  });

  test('AWS\'s own FireLens image is noted, not warned about', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    task.addFirelensLogRouter('router', {
      image: ecs.obtainDefaultFluentBitECRImage(task, undefined, '2.1.0'),
      firelensConfig: { type: ecs.FirelensLogRouterType.FLUENTBIT },
      memoryLimitMiB: 128,
    });
    task.addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 256 });
    Aspects.of(app).add(new CachedImages({ cache }));
    template(stack, 'firelens');
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('known only at deploy time'))).toEqual([]);
    expect(Annotations.fromStack(stack).findInfo('*', Match.stringLikeRegexp("^container router: the image is AWS's own FireLens image"))).toHaveLength(1);
  });

  test('a stack with no environment using a cache of a concrete one is warned, once', () => {
    const app = testApp();
    const cache = cacheIn(new Stack(app, 'Shared', { env: ENV }));
    const service = new Stack(app, 'Service');
    const task = new ecs.FargateTaskDefinition(service, 'Task');
    task.addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 256 });
    task.addContainer('cache', { image: ecs.ContainerImage.fromRegistry('redis:7'), memoryLimitMiB: 256 });
    Aspects.of(app).add(new CachedImages({ cache }));
    template(service, 'agnostic-service');
    expect(Annotations.fromStack(service).findWarning('*', Match.anyValue()).map(m => m.entry.data)).toEqual([
      expect.stringMatching(new RegExp(`^CachedImages: Service has no environment, but its images now name the registry of Shared/Cache \\(account ${ACCOUNT}, `
        + `Region eu-west-1\\): .* Give Service env: \\{ account: '${ACCOUNT}', region: 'eu-west-1' \\}`)),
    ]);
  });
});

describe('9. images of other services: Batch jobs move, the rest are reported', () => {
  test('a Batch EcsJobDefinition (Fargate and EC2) moves, its execution role granted; CodeBuild and App Runner images are reported', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    const fargate = new batch.EcsJobDefinition(stack, 'FargateJob', {
      container: new batch.EcsFargateContainerDefinition(stack, 'FargateContainer', {
        image: ecs.ContainerImage.fromRegistry('quay.io/org/etl:2'), cpu: 1, memory: Size.gibibytes(2),
      }),
    });
    const ec2 = new batch.EcsJobDefinition(stack, 'Ec2Job', {
      container: new batch.EcsEc2ContainerDefinition(stack, 'Ec2Container', {
        image: ecs.ContainerImage.fromRegistry('python:3.13'), cpu: 1, memory: Size.gibibytes(2),
      }),
    });
    new codebuild.Project(stack, 'Build', {
      buildSpec: codebuild.BuildSpec.fromObject({ version: '0.2', phases: { build: { commands: ['npm test'] } } }),
      environment: { buildImage: codebuild.LinuxBuildImage.fromDockerRegistry('node:22') },
    });
    new codebuild.Project(stack, 'Curated', {
      buildSpec: codebuild.BuildSpec.fromObject({ version: '0.2', phases: { build: { commands: ['npm test'] } } }),
      environment: { buildImage: codebuild.LinuxBuildImage.STANDARD_7_0 },
    });
    new apprunner.CfnService(stack, 'Web', {
      sourceConfiguration: {
        autoDeploymentsEnabled: false,
        imageRepository: { imageIdentifier: 'public.ecr.aws/aws-containers/hello-app-runner:latest', imageRepositoryType: 'ECR_PUBLIC' },
      },
    });
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(stack, 'other-services');
    const jobs = t.findResources('AWS::Batch::JobDefinition');
    const imageOf = (job: batch.EcsJobDefinition) =>
      jobs[stack.getLogicalId(job.node.defaultChild as batch.CfnJobDefinition)].Properties.ContainerProperties;
    expect(imageOf(fargate).Image).toBe(`${REGISTRY}/quay/org/etl:2`);
    expect(imageOf(ec2).Image).toBe(`${REGISTRY}/docker-hub/library/python:3.13`);
    // each job's container pulls with its own execution role, which is the one granted
    const roleOf = (job: batch.EcsJobDefinition) => ({ Ref: imageOf(job).ExecutionRoleArn['Fn::GetAtt'][0] });
    expect(rolesGrantedPull(t)).toEqual(expect.arrayContaining([roleOf(fargate), roleOf(ec2)]));
    expect(rolesGrantedPull(t)).toHaveLength(2);
    const notMoved = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('is left on its registry')).map(m => `${m.id} ${m.entry.data}`);
    expect(notMoved).toHaveLength(2); // not the curated CodeBuild image
    expect(notMoved).toEqual(expect.arrayContaining([
      expect.stringMatching(new RegExp('^/Apps/Build/Resource Environment\\.Image: \'node:22\' is left on its registry: CachedImages does not move the images of '
        + `AWS::CodeBuild::Project\\. Write it as cache\\.imageUri\\('node:22'\\) \\(${REGISTRY}/docker-hub/library/node:22\\) and grant the role`)),
      expect.stringMatching(new RegExp('^/Apps/Web SourceConfiguration\\.ImageRepository\\.ImageIdentifier: \'public\\.ecr\\.aws/aws-containers/hello-app-runner:latest\' '
        + `is left on its registry: .* \\(${REGISTRY}/ecr-public/aws-containers/hello-app-runner:latest\\)`)),
    ]));
  });

  test('in report-only mode a Batch job is reported, not moved', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    new batch.EcsJobDefinition(stack, 'Job', {
      container: new batch.EcsFargateContainerDefinition(stack, 'Container', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), cpu: 1, memory: Size.gibibytes(2) }),
    });
    Aspects.of(app).add(new CachedImages({ cache, reportOnly: true }));
    const t = template(stack, 'batch-report');
    expect(Object.values(t.findResources('AWS::Batch::JobDefinition'))[0].Properties.ContainerProperties.Image).toBe('nginx:1.27');
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp(`container: 'nginx:1.27' would be pulled through the cache as ${REGISTRY}/`))).toHaveLength(1);
  });
});

describe('6. a tag only a copied upstream\'s pattern names is served only while the copier copies it, and says so', () => {
  test('an exact tag moves quietly; a pattern-only tag moves with a copiedTagPattern warning naming the limit', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = new PullThroughCacheRules(stack, 'Cache', {
      upstreams: [UpstreamRegistry.copied({
        registryUrl: 'mcr.microsoft.com', ecrRepositoryPrefix: 'mcr', images: ['dotnet/aspnet:8.0.*', 'dotnet/aspnet:8.0.15'], maxTagsPerPattern: 3,
      })],
      enableMonitoring: false,
      enableScanning: false,
    });
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    task.addContainer('exact', { image: ecs.ContainerImage.fromRegistry('mcr.microsoft.com/dotnet/aspnet:8.0.15'), memoryLimitMiB: 128 });
    task.addContainer('variant', { image: ecs.ContainerImage.fromRegistry('mcr.microsoft.com/dotnet/aspnet:8.0.15-noble'), memoryLimitMiB: 128 });
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(stack, 'mirror-patterns');
    expect(containersOf(t).map(c => c.Image)).toEqual([`${REGISTRY}/mcr/dotnet/aspnet:8.0.15`, `${REGISTRY}/mcr/dotnet/aspnet:8.0.15-noble`]);
    const warned = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('copiedTagPattern')).map(m => m.entry.data);
    expect(warned).toEqual([expect.stringContaining("container variant: 'mcr.microsoft.com/dotnet/aspnet:8.0.15-noble' matches the tag "
      + "pattern dotnet/aspnet:8.0.* copied into 'mcr', of which the copier copies only the 3 highest tags (OS variants of one version count as tags): it is served only "
      + "while it is among them. Name the tag exactly in the copied upstream's images ('dotnet/aspnet:8.0.15-noble') to be sure it is copied.")]);
  });
});

describe('5. Bitnami charts get the companion value they need for relocated images', () => {
  test('global.security.allowInsecureImages is set, and said, only where a Bitnami image moved and it is not set yet', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: ENV });
    const cache = cacheIn(stack);
    const cluster = eksV2Cluster(stack);
    const bitnami = { chart: 'redis', repository: 'oci://registry-1.docker.io/bitnamicharts', version: '20.6.0' };
    cluster.addHelmChart('Redis', { ...bitnami, values: { image: { registry: 'docker.io', repository: 'bitnami/redis', tag: '7.4.1' } } });
    cluster.addHelmChart('Set', { ...bitnami, values: { global: { security: { allowInsecureImages: true } }, image: { repository: 'bitnami/redis', tag: '7.4.1' } } });
    cluster.addHelmChart('Other', { chart: 'app', repository: 'https://charts.example.com', values: { image: { repository: 'quay.io/org/app', tag: '1' } } });
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(stack, 'bitnami');
    const values = Object.fromEntries(Object.values(t.findResources('Custom::AWSCDK-EKS-HelmChart'))
      .map((r: any) => [r.Properties.Release ?? r.Properties.Chart, JSON.parse(r.Properties.Values)]));
    expect(Object.values(values).map((v: any) => v.global)).toEqual([
      { security: { allowInsecureImages: true } }, { security: { allowInsecureImages: true } }, undefined,
    ]);
    expect(JSON.stringify(values)).toContain('"repository":"docker-hub/bitnami/redis"');
    const notes = Annotations.fromStack(stack).findInfo('*', Match.stringLikeRegexp('allowInsecureImages: set to true')).map(m => m.id);
    expect(notes).toEqual(['/Apps/Cluster/chart-Redis/Resource/Default']);
  });
});
