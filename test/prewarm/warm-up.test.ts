/**
 * The warm-up in templates: one resource per stack with workloads, the workloads depend on it, pinned URIs flow into
 * ECS task definitions (L2 and L1) and EKS manifests through its attributes, its function's IAM is scoped to the cache
 * prefixes; cfn-lint and cdk-nag accept what it adds.
 */
import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { Aspects, CfnParameter, Duration, Size, Stack, Stage } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CachedImages, FindingSeverity, PullThroughCacheRules, UnscannableImages, UpstreamRegistry, WarmUpOptions } from '../../src';
import { WARM_UP_REFRESH_CONTEXT } from '../../src/prewarm/cache-warm-up';
import { lintedTemplates } from '../support/cfn-lint';
import { testApp } from '../util';

const WARM_UP = 'Custom::EcrPullThroughCacheWarmUp';
const lint = lintedTemplates();

function setup(warmUp: WarmUpOptions, refresh: string | null = '2026-12-02T00:00:00Z', agnostic = false) {
  const app = testApp({ context: { [WARM_UP_REFRESH_CONTEXT]: refresh ?? undefined } });
  // (an EKS VPC in a stack of a concrete environment names its zones, which cfn-lint warns of: W3010)
  const stack = new Stack(app, 'Apps', agnostic ? {} : { env: { account: '111122223333', region: 'eu-west-1' } });
  const cache = new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [UpstreamRegistry.quay(), UpstreamRegistry.kubernetes(), UpstreamRegistry.ecrPublic()],
    enableMonitoring: false,
  });
  Aspects.of(app).add(new CachedImages({ cache, warmUp }));
  return { app, stack, cache };
}

function fargate(stack: Stack, id: string, images: string[], cpu?: ecs.CpuArchitecture) {
  const runtimePlatform = cpu && { cpuArchitecture: cpu, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX };
  const task = new ecs.FargateTaskDefinition(stack, id, { runtimePlatform });
  images.forEach((image, i) => task.addContainer(`C${i}`, { image: ecs.ContainerImage.fromRegistry(image), memoryLimitMiB: 512 }));
  return task;
}

const logicalId = (stack: Stack, construct: { node: { defaultChild?: unknown } } | unknown) =>
  stack.getLogicalId(((construct as any).node.defaultChild ?? construct) as any);

describe('ECS', () => {
  test('images moved and written for the cache are warmed by one resource the task definitions depend on, with their platforms', () => {
    const { stack, cache } = setup({});
    const arm = fargate(stack, 'Arm', ['quay.io/prometheus/prometheus:v3.5.0', cache.imageUri('public.ecr.aws/nginx/nginx:1.27')], ecs.CpuArchitecture.ARM64);
    const plain = fargate(stack, 'Plain', ['quay.io/prometheus/prometheus:v3.5.0', 'registry.k8s.io/pause']);
    const template = lint(stack, 'ecs');
    template.resourceCountIs(WARM_UP, 1);
    template.hasResourceProperties(WARM_UP, {
      Images: [
        { Repository: 'quay/prometheus/prometheus', Tag: 'v3.5.0', Platforms: 'linux/amd64,linux/arm64' },
        { Repository: 'ecr-public/nginx/nginx', Tag: '1.27', Platforms: 'linux/arm64' },
        { Repository: 'k8s/pause', Tag: 'latest', Platforms: 'linux/amd64' },
      ],
      RetryBudgetSeconds: '120',
      Concurrency: '8',
      Refresh: '2026-12-02T00:00:00Z',
    });
    const warmUpId = Object.keys(template.findResources(WARM_UP))[0];
    // after the cache's rules and templates (a pull before its rule exists fails; a repository created before its template misses it)
    const after: string[] = template.toJSON().Resources[warmUpId].DependsOn;
    for (const type of ['AWS::ECR::PullThroughCacheRule', 'AWS::ECR::RepositoryCreationTemplate']) {
      const ids = Object.keys(template.findResources(type));
      expect(ids).toHaveLength(3);
      ids.forEach(id => expect(after).toContain(id));
    }
    for (const task of [arm, plain]) {
      expect(template.toJSON().Resources[logicalId(stack, task)].DependsOn).toContain(warmUpId);
    }
    // without pin, the workload keeps its tag
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: Match.arrayWith([Match.objectLike({ Image: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/quay/prometheus/prometheus:v3.5.0' })]),
    });
    expect(Annotations.fromStack(stack).findInfo('/Apps/Plain', Match.stringLikeRegexp('linux/amd64 is warmed'))).toHaveLength(1);
    expect(template.findOutputs('*', { Value: { 'Fn::GetAtt': Match.anyValue() } })).toEqual({});
  });

  test('with pin, the task definition pulls the digest the warm-up resolved, and the digests are outputs', () => {
    const { stack } = setup({ pin: true, platforms: ['linux/arm64'] });
    fargate(stack, 'Task', ['quay.io/prometheus/prometheus:v3.5.0', 'registry.k8s.io/pause:3.10']);
    const template = lint(stack, 'ecs-pinned');
    const warmUpId = Object.keys(template.findResources(WARM_UP))[0];
    template.hasResourceProperties(WARM_UP, { Images: [Match.objectLike({ Platforms: 'linux/arm64' }), Match.objectLike({ Platforms: 'linux/arm64' })] });
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({ Image: { 'Fn::Join': ['', ['111122223333.dkr.ecr.eu-west-1.amazonaws.com/quay/prometheus/prometheus@', { 'Fn::GetAtt': [warmUpId, 'Digest0'] }]] } }),
        Match.objectLike({ Image: { 'Fn::Join': ['', ['111122223333.dkr.ecr.eu-west-1.amazonaws.com/k8s/pause@', { 'Fn::GetAtt': [warmUpId, 'Digest1'] }]] } }),
      ],
    });
    // the pinned image (a token) is not mistaken for an image known only at deploy time on a later visit
    expect(Annotations.fromStack(stack).findWarning('/Apps/Task*', Match.anyValue())).toEqual([]);
    const outputs = Object.values(template.findOutputs('*'));
    expect(outputs.map(o => o.Value)).toEqual([{ 'Fn::GetAtt': [warmUpId, 'Digest0'] }, { 'Fn::GetAtt': [warmUpId, 'Digest1'] }]);
    expect(outputs[0].Description).toContain('quay/prometheus/prometheus:v3.5.0');
  });

  test('an L1 task definition is pinned by its property override, and waits for the warm-up', () => {
    const { stack } = setup({ pin: true });
    const role = new iam.Role(stack, 'Exec', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    const task = new ecs.CfnTaskDefinition(stack, 'L1', {
      executionRoleArn: role.roleArn,
      containerDefinitions: [{ name: 'app', image: 'quay.io/org/app:v2' }],
    });
    const template = lint(stack, 'ecs-l1');
    const warmUpId = Object.keys(template.findResources(WARM_UP))[0];
    expect(template.toJSON().Resources[stack.getLogicalId(task)].DependsOn).toContain(warmUpId);
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [Match.objectLike({ Image: { 'Fn::Join': ['', ['111122223333.dkr.ecr.eu-west-1.amazonaws.com/quay/org/app@', { 'Fn::GetAtt': [warmUpId, 'Digest0'] }]] } })],
    });
  });

  test('a tag known only at deploy time is warmed as the parameter says', () => {
    const { stack } = setup({ pin: true });
    const tag = new CfnParameter(stack, 'Tag', { default: 'v1' });
    fargate(stack, 'Task', [`quay.io/org/app:${tag.valueAsString}`]);
    const template = lint(stack, 'ecs-token-tag');
    template.hasResourceProperties(WARM_UP, { Images: [{ Repository: 'quay/org/app', Tag: { Ref: 'Tag' }, Platforms: 'linux/amd64' }] });
  });

  test('an AWS Batch job definition is pinned and waits for the warm-up', () => {
    const { stack } = setup({ pin: true });
    const job = new batch.EcsJobDefinition(stack, 'Job', {
      container: new batch.EcsFargateContainerDefinition(stack, 'Container', {
        image: ecs.ContainerImage.fromRegistry('quay.io/org/batch:v3'),
        cpu: 1,
        memory: Size.gibibytes(2),
        fargateCpuArchitecture: ecs.CpuArchitecture.ARM64,
      }),
    });
    const template = lint(stack, 'batch');
    const warmUpId = Object.keys(template.findResources(WARM_UP))[0];
    expect(template.toJSON().Resources[logicalId(stack, job)].DependsOn).toContain(warmUpId);
    template.hasResourceProperties(WARM_UP, { Images: [{ Repository: 'quay/org/batch', Tag: 'v3', Platforms: 'linux/arm64' }] });
    template.hasResourceProperties('AWS::Batch::JobDefinition', {
      ContainerProperties: Match.objectLike({
        Image: { 'Fn::Join': ['', ['111122223333.dkr.ecr.eu-west-1.amazonaws.com/quay/org/batch@', { 'Fn::GetAtt': [warmUpId, 'Digest0'] }]] },
      }),
    });
  });

  test('an image pinned by digest already is not warmed, and says why', () => {
    const { stack } = setup({ pin: true });
    fargate(stack, 'Task', [`quay.io/org/app@sha256:${'a'.repeat(64)}`]);
    const template = Template.fromStack(stack);
    template.resourceCountIs(WARM_UP, 0);
    expect(Annotations.fromStack(stack).findInfo('*', Match.stringLikeRegexp('names a digest, so it is not warmed'))).toHaveLength(1);
  });

  test('a stack without cached images gets no warm-up', () => {
    const { stack } = setup({ pin: true });
    Template.fromStack(stack).resourceCountIs(WARM_UP, 0);
  });

  test('more images than one resource can answer are spread over several, each image pinned from its own', () => {
    const { stack } = setup({ pin: true });
    fargate(stack, 'Many', Array.from({ length: 31 }, (_, i) => `quay.io/org/app${i}:v1`));
    const template = lint(stack, 'ecs-many');
    const ids = Object.keys(template.findResources(WARM_UP));
    expect(ids).toHaveLength(2);
    expect(Object.values(template.findResources(WARM_UP)).map((r: any) => r.Properties.Images.length)).toEqual([30, 1]);
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: Match.arrayWith([Match.objectLike({ Image: { 'Fn::Join': ['', [Match.stringLikeRegexp('/quay/org/app30@$'), { 'Fn::GetAtt': [ids[1], 'Digest0'] }]] } })]),
    });
  });

  test('each synthesis refreshes the resource, so a deploy re-resolves the tags', () => {
    const { stack } = setup({}, null);
    fargate(stack, 'Task', ['quay.io/org/app:v1']);
    const refresh = Object.values(Template.fromStack(stack).findResources(WARM_UP))[0].Properties.Refresh;
    expect(Date.parse(refresh)).toBeGreaterThan(Date.now() - 60_000);
  });
});

describe('where the workloads are', () => {
  test('a workload in another stack than the cache gets its own stack\'s warm-up, granted on the cache prefixes', () => {
    const { app, stack } = setup({ pin: true });
    const other = new Stack(app, 'Other', { env: { account: '111122223333', region: 'eu-west-1' } });
    const task = fargate(other, 'Task', ['quay.io/org/app:v1']);
    const template = lint(other, 'other-stack');
    const warmUpId = Object.keys(template.findResources(WARM_UP))[0];
    expect(template.toJSON().Resources[logicalId(other, task)].DependsOn).toContain(warmUpId);
    Template.fromStack(stack).resourceCountIs(WARM_UP, 0);
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).toContain(':ecr:eu-west-1:111122223333:repository/quay/*');
    // the cache's stack (its rules) is deployed first
    expect(other.dependencies.map(s => s.stackName)).toContain(stack.stackName);
  });

  test('each image names its registry, which the handler checks against its own (a stack without environment is known at deploy)', () => {
    const { app, cache } = setup({ pin: true });
    const anywhere = new Stack(app, 'Anywhere');
    const task = new ecs.FargateTaskDefinition(anywhere, 'Task');
    task.addContainer('C', { image: ecs.ContainerImage.fromRegistry(cache.imageUri('quay.io/org/app:v1')), memoryLimitMiB: 512 });
    Template.fromStack(anywhere).hasResourceProperties(WARM_UP, {
      Images: [{ Registry: '111122223333.dkr.ecr.eu-west-1.amazonaws.com', Repository: 'quay/org/app', Tag: 'v1', Platforms: 'linux/amd64' }],
    });
  });

  test('a workload in another Region than its cache (ECR pulls across Regions) is refused at synth, naming both and the way out', () => {
    // the function's token is for its own Region's registry: it would warm (and pin) another registry than the workload pulls
    const { app, cache } = setup({ pin: true });
    const west = new Stack(app, 'West', { env: { account: '111122223333', region: 'us-west-2' } });
    const task = new ecs.FargateTaskDefinition(west, 'Task');
    task.addContainer('C', { image: ecs.ContainerImage.fromRegistry(cache.imageUri('quay.io/org/app:v1')), memoryLimitMiB: 512 });
    expect(() => app.synth()).toThrow('West: the warm-up cannot warm 111122223333.dkr.ecr.eu-west-1.amazonaws.com/quay/org/app:v1 '
      + 'from us-west-2 (its function pulls from its own Region\'s registry). Add CachedImages with warmUp to the stacks in eu-west-1 only '
      + '(Aspects.of(stack)), and without it here.');
  });

  test('a stack inside a Stage is warmed like any other', () => {
    const { app, cache } = setup({ pin: true });
    const stage = new Stage(app, 'Prod', { env: { account: '111122223333', region: 'eu-west-1' } });
    const staged = new Stack(stage, 'Apps');
    Aspects.of(stage).add(new CachedImages({ cache, warmUp: { pin: true } }));
    fargate(staged, 'Task', ['quay.io/org/app:v1']);
    app.synth();
    const template = lint(staged, 'staged');
    template.resourceCountIs(WARM_UP, 1);
    template.hasResourceProperties(WARM_UP, { Images: [Match.objectLike({ Repository: 'quay/org/app' })] });
  });
});

describe('EKS', () => {
  test('a manifest\'s images are warmed for its node groups\' platform and pinned in the manifest', () => {
    const { stack } = setup({ pin: true }, undefined, true);
    const cluster = new eks.Cluster(stack, 'Cluster', {
      version: eks.KubernetesVersion.V1_33,
      defaultCapacity: 0,
      defaultCapacityType: eks.DefaultCapacityType.NODEGROUP,
      kubectlProviderOptions: { kubectlLayer: new KubectlV35Layer(stack, 'Kubectl') },
    });
    cluster.addNodegroupCapacity('Arm', { amiType: eks.NodegroupAmiType.AL2023_ARM_64_STANDARD });
    const manifest = cluster.addManifest('App', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'app' },
      spec: { template: { spec: { containers: [{ name: 'app', image: 'quay.io/org/app:v1' }] } } },
    });
    const template = lint(stack, 'eks');
    const warmUpId = Object.keys(template.findResources(WARM_UP))[0];
    template.hasResourceProperties(WARM_UP, { Images: [{ Repository: 'quay/org/app', Tag: 'v1', Platforms: 'linux/arm64' }] });
    const resource = template.toJSON().Resources[stack.getLogicalId(manifest.node.defaultChild as any)];
    expect(resource.DependsOn).toContain(warmUpId);
    const rendered = JSON.stringify(resource.Properties.Manifest);
    expect(rendered).toContain('/quay/org/app@');
    expect(rendered).toContain(JSON.stringify({ 'Fn::GetAtt': [warmUpId, 'Digest0'] }));
    expect(rendered).not.toContain('app:v1');
  });
});

describe('permissions', () => {
  test('the function pulls from the cache prefixes only, reads scans only with a gate, and GetAuthorizationToken is the only "*"', () => {
    const { stack } = setup({ gate: {} });
    fargate(stack, 'Task', ['quay.io/org/app:v1']);
    const template = lint(stack, 'iam');
    const policies = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith('EcrPullThroughCacheWarmUpServiceRole'));
    expect(policies).toHaveLength(1);
    const statements: any[] = (policies[0][1] as any).Properties.PolicyDocument.Statement;
    const resourcesOf = (action: string) => statements.filter(s => [s.Action].flat().includes(action)).flatMap(s => [s.Resource].flat());
    const prefixes = ['quay', 'k8s', 'ecr-public'].map(p => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:eu-west-1:111122223333:repository/${p}/*`]] }));
    for (const action of ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchImportUpstreamImage', 'ecr:CreateRepository', 'ecr:DescribeImageScanFindings']) {
      expect(resourcesOf(action)).toEqual(prefixes);
    }
    expect(resourcesOf('ecr:GetAuthorizationToken')).toEqual(['*']);
    expect(statements.filter(s => [s.Resource].flat().includes('*')).flatMap(s => [s.Action].flat())).toEqual(['ecr:GetAuthorizationToken']);
    template.hasResourceProperties(WARM_UP, { Gate: { Severity: 'CRITICAL', Unscannable: 'FAIL', TimeoutSeconds: '300' } });
  });

  test('without a gate, no scan is read', () => {
    const { stack } = setup({});
    fargate(stack, 'Task', ['quay.io/org/app:v1']);
    const policies = Object.entries(Template.fromStack(stack).findResources('AWS::IAM::Policy')).filter(([id]) => id.startsWith('EcrPullThroughCacheWarmUp'));
    expect(policies).toHaveLength(1);
    expect(JSON.stringify(policies)).not.toContain('DescribeImageScanFindings');
  });

  test('cdk-nag finds nothing in the warm-up it did not acknowledge, with a reason', () => {
    const { stack } = setup({ pin: true, gate: { severity: FindingSeverity.HIGH } });
    fargate(stack, 'Task', ['quay.io/org/app:v1']);
    Template.fromStack(stack);
    const report = new AwsSolutionsChecks(stack.node.root).validateScope(stack);
    const found = report.violations.flatMap(v => v.violatingResources.map(r => `${v.ruleName} at ${r.constructPath}`))
      .filter(v => v.includes('EcrPullThroughCacheWarmUp'));
    expect(found).toEqual([]);
  });
});

describe('the gate\'s options reach the handler', () => {
  test('allowImages are mapped to the cache repositories, tag kept when given', () => {
    const { stack } = setup({
      gate: { severity: FindingSeverity.HIGH, allowCves: ['CVE-2026-1234'], allowImages: ['quay.io/org/app', 'registry.k8s.io/pause:3.10'], unscannable: UnscannableImages.ALLOW, timeout: Duration.minutes(3) },
    });
    fargate(stack, 'Task', ['quay.io/org/app:v1']);
    Template.fromStack(stack).hasResourceProperties(WARM_UP, {
      Gate: { Severity: 'HIGH', AllowCves: ['CVE-2026-1234'], AllowImages: ['quay/org/app', 'k8s/pause:3.10'], Unscannable: 'ALLOW', TimeoutSeconds: '180' },
    });
  });

  test('an allowed image written with a digest is refused, not turned into a tag that allows nothing', () => {
    // the gate matches repository or repository:tag; 'quay.io/org/app@sha256:...' became the tag 'quay/org/app:<hex>'
    const digest = `sha256:${'a'.repeat(64)}`;
    const { stack } = setup({ gate: { allowImages: [`quay.io/org/app@${digest}`] } });
    fargate(stack, 'Task', ['quay.io/org/app:v1']);
    expect(() => Template.fromStack(stack)).toThrow(`warmUp.gate.allowImages has 'quay.io/org/app@${digest}', which names a digest; `
      + 'the gate allows a repository (quay.io/org/app) or a tag (quay.io/org/app:1.27)');
  });

  test('an allowed image the cache does not serve is refused, naming it', () => {
    const { stack } = setup({ gate: { allowImages: ['ghcr.io/org/tool'] } });
    fargate(stack, 'Task', ['quay.io/org/app:v1']);
    expect(() => Template.fromStack(stack)).toThrow(/warmUp\.gate\.allowImages has 'ghcr\.io\/org\/tool', which the cache Apps\/Cache does not serve/);
  });
});

describe('validation', () => {
  const cache = () => setup({}).cache;
  test.each([
    [{ platforms: ['amd64'] }, /warmUp\.platforms has "amd64"; write each platform as os\/architecture\[\/variant\]/],
    [{ platforms: [] }, /warmUp\.platforms is empty/],
    [{ concurrency: 0 }, /warmUp\.concurrency is 0; use a whole number from 1 to 32/],
    [{ retryBudget: Duration.minutes(6) }, /warmUp\.retryBudget is 6 minutes; use 1 second to 5 minutes/],
    [{ gate: { timeout: Duration.minutes(11) } }, /warmUp\.gate\.timeout is 11 minutes; use 1 second to 10 minutes/],
    [{ retryBudget: Duration.minutes(5), gate: { timeout: Duration.minutes(10) } }, /add up to more than 13 minutes/],
    [{ gate: { allowCves: ['CVE 1'] } }, /warmUp\.gate\.allowCves has "CVE 1"/],
    [{ gate: { unscannable: 'MAYBE' as UnscannableImages } }, /warmUp\.gate\.unscannable is "MAYBE"; use UnscannableImages\.FAIL or UnscannableImages\.ALLOW/],
  ])('%j is refused', (warmUp, message) => {
    expect(() => new CachedImages({ cache: cache(), warmUp: warmUp as WarmUpOptions })).toThrow(message);
  });

  test('warmUp with reportOnly is refused', () => {
    expect(() => new CachedImages({ cache: cache(), reportOnly: true, warmUp: {} })).toThrow(/warmUp and reportOnly are both set/);
  });

  test('two Aspects warming workloads of one stack with other options are refused', () => {
    const app = testApp();
    const stack = new Stack(app, 'Apps', { env: { account: '111122223333', region: 'eu-west-1' } });
    const rules = new PullThroughCacheRules(stack, 'Cache', { upstreams: [UpstreamRegistry.quay()], enableMonitoring: false, enableScanning: false });
    Aspects.of(fargate(stack, 'A', ['quay.io/org/a:v1'])).add(new CachedImages({ cache: rules, warmUp: {} }));
    Aspects.of(fargate(stack, 'B', ['quay.io/org/b:v1'])).add(new CachedImages({ cache: rules, warmUp: { pin: true } }));
    expect(() => Template.fromStack(stack)).toThrow(/Apps: two CachedImages Aspects with warmUp options .* a stack has one warm-up/);
  });
});
