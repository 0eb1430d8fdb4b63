/**
 * Properties of the CachedImages Aspect over generated apps of several stacks: workloads in a stack, in a nested
 * stack and in a Stage (with the Aspect added to the app and to the Stage, as the README says), ECS containers whose
 * variables and Kubernetes manifests whose env name a resource of another stack (or of the nested stack's parent):
 * - every served image moves, in every stack, nested stack and Stage;
 * - every moved task's execution role (the one its task definition names) is granted pulls from the cache;
 * - the values of other stacks stay references CloudFormation resolves (an import, a nested stack parameter), so
 *   cfn-lint accepts every template;
 * - `reportOnly: true` leaves every template, nested and in the Stage, byte for byte as the app without the Aspect.
 */
import { Aspects, NestedStack, Stack, Stage } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as fc from 'fast-check';
import { CachedImages, PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';
import { cfnLint } from './support/cfn-lint';
import { ENV, REGISTRY, eksV2Cluster } from './support/environments';
import { testApp } from './util';

const SERVED: Record<string, string> = {
  'nginx:1.27': `${REGISTRY}/docker-hub/library/nginx:1.27`,
  'quay.io/org/app:1': `${REGISTRY}/quay/org/app:1`,
  'bitnami/kubectl:1.31': `${REGISTRY}/docker-hub/bitnami/kubectl:1.31`,
};

const workload = fc.record({
  kind: fc.constantFrom('ecs', 'manifest'),
  where: fc.constantFrom('stack', 'nested', 'stage'),
  image: fc.constantFrom(...Object.keys(SERVED)),
  crossStack: fc.boolean(),
});
const appSpec = fc.array(workload, { minLength: 1, maxLength: 4 });
type AppSpec = typeof appSpec extends fc.Arbitrary<infer T> ? T : never;

/** Builds the app of a spec; returns every template (stacks, nested stacks, the Stage's stacks) by name. */
function build(spec: AppSpec, mode: 'none' | 'report' | 'rewrite'): Record<string, any> {
  const app = testApp();
  const shared = new Stack(app, 'Shared', { env: ENV });
  const cache = new PullThroughCacheRules(shared, 'Cache', {
    upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }), UpstreamRegistry.quay()],
    enableMonitoring: false,
    enableScanning: false,
  });
  const sharedQueue = new sqs.Queue(shared, 'Queue');
  const apps = new Stack(app, 'Apps', { env: ENV });
  const stacks: Stack[] = [shared, apps];
  let nested: NestedStack | undefined;
  let stage: { stage: Stage; service: Stack; queue: sqs.Queue } | undefined;
  const clusters = new Map<Stack, eks.Cluster>();
  const clusterOf = (stack: Stack) => clusters.get(stack) ?? clusters.set(stack, eksV2Cluster(stack)).get(stack)!;

  spec.forEach((w, i) => {
    let scope: Stack;
    let queue = sharedQueue; // another stack's resource (or, for the nested stack, one of its parent's)
    if (w.where === 'nested') {
      nested ??= new NestedStack(apps, 'Nested');
      scope = nested;
    } else if (w.where === 'stage') {
      if (stage === undefined) {
        const s = new Stage(app, 'Prod', { env: ENV });
        const stageShared = new Stack(s, 'StageShared'); // a Stage's stacks reference only stacks of the Stage
        stage = { stage: s, service: new Stack(s, 'Service'), queue: new sqs.Queue(stageShared, 'Queue') };
        stacks.push(stageShared, stage.service);
      }
      scope = stage.service;
      queue = stage.queue;
    } else {
      scope = apps;
    }
    const env = w.crossStack ? { QUEUE: queue.queueUrl } : { QUEUE: 'none' };
    if (w.kind === 'ecs') {
      new ecs.FargateTaskDefinition(scope, `Task${i}`).addContainer('c', { image: ecs.ContainerImage.fromRegistry(w.image), memoryLimitMiB: 512, environment: env });
      return;
    }
    // a manifest's cluster: in the Stage, one of its own; otherwise the app stack's (a nested stack's parent)
    const cluster = clusterOf(w.where === 'stage' ? stage!.service : apps);
    new eks.KubernetesManifest(scope, `Manifest${i}`, {
      cluster,
      manifest: [{
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `p${i}` },
        spec: { containers: [{ name: 'c', image: w.image, env: Object.entries(env).map(([name, value]) => ({ name, value })) }] },
      }],
    });
  });
  if (mode !== 'none') {
    const ours = () => new CachedImages({ cache, reportOnly: mode === 'report' });
    Aspects.of(app).add(ours());
    if (stage) {
      Aspects.of(stage.stage).add(ours()); // the app's Aspects do not reach a Stage (aws/aws-cdk#20468)
    }
  }
  app.synth();
  const templates: Record<string, any> = {};
  for (const stack of [...stacks, ...(nested ? [nested] : [])]) {
    templates[stack.node.path.replace(/\//g, '-')] = Template.fromStack(stack).toJSON();
  }
  return templates;
}

/** The role logical ids that a policy granting the first pull from the cache is attached to, per template. */
function grantedRoles(template: any): string[] {
  return Object.values<any>(template.Resources ?? {})
    .filter(r => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.PolicyDocument).includes('ecr:BatchImportUpstreamImage'))
    .flatMap(r => r.Properties.Roles.map((role: any) => role.Ref));
}

const RUNS = 12;
const linted: Record<string, object> = {};
afterAll(() => expect(cfnLint(linted)).toBe(''));

test('every served image moves, in stacks, nested stacks and Stages; execution roles are granted; other stacks\' values stay references', () => {
  fc.assert(fc.property(appSpec, spec => {
    const templates = build(spec, 'rewrite');
    const run = Object.keys(linted).length;
    for (const [name, template] of Object.entries(templates)) {
      if (template.Resources) {
        linted[`run${run}-${name}`] = template; // (a stack left empty, all its workloads elsewhere, has none)
      }
      const json = JSON.stringify(template);
      for (const image of Object.keys(SERVED)) {
        // the upstream reference is gone from images and manifests (as a value on its own)
        expect(json).not.toMatch(new RegExp(`"Image":"${image}"|\\\\"image\\\\":\\\\"${image}\\\\"`));
      }
      for (const task of Object.values<any>(template.Resources ?? {}).filter(r => r.Type === 'AWS::ECS::TaskDefinition')) {
        const image = task.Properties.ContainerDefinitions[0].Image;
        expect(Object.values(SERVED)).toContain(image);
        expect(grantedRoles(template)).toContain(task.Properties.ExecutionRoleArn['Fn::GetAtt'][0]);
      }
    }
    const all = JSON.stringify(templates);
    for (const w of spec) {
      expect(all).toContain(SERVED[w.image]);
    }
  }), { numRuns: RUNS });
});

test('reportOnly: true leaves every template, nested and in a Stage, byte for byte as it was', () => {
  fc.assert(fc.property(appSpec, spec => {
    expect(JSON.stringify(build(spec, 'report'))).toBe(JSON.stringify(build(spec, 'none')));
  }), { numRuns: RUNS });
});
