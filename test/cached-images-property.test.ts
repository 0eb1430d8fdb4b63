/**
 * Properties of the CachedImages Aspect over generated apps (ECS task definitions, L2 and L1, with several
 * containers, environment variables, secrets and registry credentials; EKS manifests; Helm values), with or without
 * another Aspect that adds a container and a variable before or after it:
 * - `reportOnly: true` leaves every synthesized template byte for byte as the app without the Aspect;
 * - rewriting never removes, adds or reorders a container, an environment variable or any key other than the image
 *   fields (an image, a Helm map's registry/repository/tag/digest, `global.imageRegistry`, and the registry
 *   credentials of a moved ECS image), and every other value stays as it was.
 */
import { App, Aspects, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as fc from 'fast-check';
import { CachedImages, PullThroughCacheRules, UnservedImageLevel, UpstreamCredentials, UpstreamRegistry } from '../src';
import { cfnLint } from './support/cfn-lint';
import { ENV, REGISTRY, eksV2Cluster } from './support/environments';
import { AddsSidecar } from './support/other-aspects';
import { testApp } from './util';

const IMAGES = [
  'nginx:1.27', 'bitnami/redis:7.4', 'quay.io/org/app:1', 'Quay.io/org/app:2', 'quay.io:443/org/app:3',
  'nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', // digest only
  'mcr.microsoft.com/dotnet/aspnet:8.0', 'ghcr.io/org/app:1', 'registry.k8s.io/pause:3.10', // not served
  `${REGISTRY}/quay/org/app:1`, // already cached
];
const image = fc.constantFrom(...IMAGES);
const name = fc.stringMatching(/^[a-z][a-z0-9]{0,7}$/);
const envName = fc.stringMatching(/^[A-Z][A-Z0-9_]{0,7}$/);
const value = fc.oneof(fc.string({ maxLength: 12 }), fc.constant('nginx:1.27'));

const container = fc.record({
  image: fc.oneof({ weight: 5, arbitrary: image }, { weight: 1, arbitrary: fc.constant('ECR') }),
  environment: fc.uniqueArray(fc.tuple(envName, value), { selector: ([k]) => k, maxLength: 4 }),
  secrets: fc.uniqueArray(envName, { maxLength: 2 }),
  credentials: fc.boolean(),
});
const task = fc.record({
  kind: fc.constantFrom('FARGATE', 'EC2', 'L1'),
  containers: fc.uniqueArray(fc.tuple(name, container), { selector: ([n]) => n, minLength: 1, maxLength: 4 }),
});
const podSpec = fc.uniqueArray(fc.tuple(name, image), { selector: ([n]) => n, minLength: 1, maxLength: 3 })
  .map(cs => ({ containers: cs.map(([n, i]) => ({ name: n, image: i, ports: [{ containerPort: 8080 }] })) }));
const manifest = fc.oneof(
  podSpec.map(spec => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', labels: { b: '2', a: '1' } }, spec })),
  podSpec.map(spec => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { replicas: 2, template: { spec } } })),
  fc.dictionary(envName, fc.string({ maxLength: 8 }), { maxKeys: 4 }).map(data => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data })),
);
const helmImage = fc.record({
  registry: fc.option(fc.constantFrom('docker.io', 'quay.io', 'mcr.microsoft.com'), { nil: undefined }),
  repository: fc.constantFrom('bitnami/redis', 'org/app', 'dotnet/aspnet'),
  tag: fc.constantFrom('1', '7.4.1'),
  pullPolicy: fc.constant('IfNotPresent'),
}, { requiredKeys: ['repository', 'tag', 'pullPolicy'] });
const values = fc.record({
  replicaCount: fc.nat(5),
  image: fc.oneof(helmImage, image),
  sidecar: fc.record({ image, resources: fc.record({ limits: fc.record({ cpu: fc.constant('100m') }) }) }),
  extra: fc.dictionary(name, fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.boolean()), { maxKeys: 3 }),
}, { requiredKeys: ['replicaCount'] });
const appSpec = fc.record({
  tasks: fc.array(task, { maxLength: 3 }),
  manifests: fc.array(fc.array(manifest, { minLength: 1, maxLength: 3 }), { maxLength: 2 }),
  charts: fc.array(values, { maxLength: 2 }),
  otherAspect: fc.constantFrom('none', 'before', 'after'),
});
type AppSpec = typeof appSpec extends fc.Arbitrary<infer T> ? T : never;

/** Builds the app of a spec; the same spec always builds the same app. */
function build(spec: AppSpec, mode: 'none' | 'report' | 'rewrite'): Record<string, object> {
  const app: App = testApp();
  const stack = new Stack(app, 'Apps', { env: ENV });
  const cache = new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }), UpstreamRegistry.quay()],
    enableMonitoring: false,
    enableScanning: false,
  });
  const secret = new secretsmanager.Secret(stack, 'Secret');
  const repository = new ecr.Repository(stack, 'Repo');
  spec.tasks.forEach((t, i) => {
    if (t.kind === 'L1') {
      const role = new iam.Role(stack, `Exec${i}`, { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
      new ecs.CfnTaskDefinition(stack, `L1Task${i}`, {
        executionRoleArn: role.roleArn,
        memory: '512',
        containerDefinitions: t.containers.map(([n, c]) => ({
          name: n,
          image: c.image === 'ECR' ? repository.repositoryUriForTag('v1') : c.image,
          memory: 64,
          environment: c.environment.map(([k, v]) => ({ name: k, value: v })),
          secrets: c.secrets.map(k => ({ name: k, valueFrom: secret.secretArn })),
          repositoryCredentials: c.credentials ? { credentialsParameter: secret.secretArn } : undefined,
        })),
      });
      return;
    }
    const definition = t.kind === 'FARGATE' ? new ecs.FargateTaskDefinition(stack, `Task${i}`) : new ecs.Ec2TaskDefinition(stack, `Task${i}`);
    for (const [n, c] of t.containers) {
      definition.addContainer(n, {
        image: c.image === 'ECR' ? ecs.ContainerImage.fromEcrRepository(repository, 'v1')
          : ecs.ContainerImage.fromRegistry(c.image, c.credentials ? { credentials: secret } : undefined),
        memoryLimitMiB: 64,
        environment: Object.fromEntries(c.environment),
        secrets: Object.fromEntries(c.secrets.map(k => [k, ecs.Secret.fromSecretsManager(secret)])),
      });
    }
  });
  if (spec.manifests.length > 0 || spec.charts.length > 0) {
    const cluster = eksV2Cluster(stack);
    spec.manifests.forEach((docs, i) => cluster.addManifest(`Manifest${i}`, ...docs));
    spec.charts.forEach((v, i) => cluster.addHelmChart(`Chart${i}`, { chart: `chart${i}`, repository: 'https://charts.example.com', values: v }));
  }
  if (spec.otherAspect === 'before') {
    Aspects.of(app).add(new AddsSidecar());
  }
  if (mode !== 'none') {
    Aspects.of(app).add(new CachedImages({ cache, reportOnly: mode === 'report', unservedImages: UnservedImageLevel.WARNING }));
  }
  if (spec.otherAspect === 'after') {
    Aspects.of(app).add(new AddsSidecar());
  }
  const assembly = app.synth();
  return Object.fromEntries(assembly.stacks.map(s => [s.stackName, s.template]));
}

/** Keys whose values are image fields: they may change, and (only they) may appear or go. */
const IMAGE_FIELDS = new Set(['Image', 'RepositoryCredentials', 'image', 'registry', 'repository', 'tag', 'digest', 'imageRegistry']);

/** Where `after` differs from `before` other than in image fields; [] when nothing else changed. */
function differences(before: unknown, after: unknown, path: string): string[] {
  if (typeof before === 'string' && typeof after === 'string' && /\.(Manifest|Values)$/.test(path) && before.startsWith('[') === after.startsWith('[')) {
    return differences(JSON.parse(before), path.endsWith('.Values') ? withoutCompanions(JSON.parse(after)) : JSON.parse(after), `${path}(json)`);
  }
  if (Array.isArray(before) || Array.isArray(after)) {
    if (!Array.isArray(before) || !Array.isArray(after) || before.length !== after.length) {
      return [`${path}: ${JSON.stringify(before)} became ${JSON.stringify(after)}`];
    }
    return before.flatMap((b, i) => differences(b, after[i], `${path}[${i}]`));
  }
  if (typeof before === 'object' && before !== null && typeof after === 'object' && after !== null) {
    const b = before as Record<string, unknown>;
    const a = after as Record<string, unknown>;
    const keys = (o: object) => Object.keys(o).filter(k => !IMAGE_FIELDS.has(k));
    if (JSON.stringify(keys(b)) !== JSON.stringify(keys(a))) {
      return [`${path}: keys ${JSON.stringify(Object.keys(b))} became ${JSON.stringify(Object.keys(a))}`];
    }
    return Object.keys(b).flatMap(k => IMAGE_FIELDS.has(k) && (typeof b[k] !== 'object' || typeof a[k] !== 'object' || a[k] === null)
      ? [] : differences(b[k], a[k], `${path}.${k}`));
  }
  return before === after ? [] : [`${path}: ${JSON.stringify(before)} became ${JSON.stringify(after)}`];
}

/** Helm values without the companion value the Aspect adds for Bitnami images (helm-companions.ts): the one other allowed change. */
function withoutCompanions(chartValues: any): any {
  if (chartValues?.global?.security?.allowInsecureImages === true) {
    delete chartValues.global.security.allowInsecureImages;
    if (Object.keys(chartValues.global.security).length === 0) {
      delete chartValues.global.security;
    }
    if (Object.keys(chartValues.global).length === 0) {
      delete chartValues.global;
    }
  }
  return chartValues;
}

/** The rewritten app differs from the original only by pull grants: the execution roles and their policies. */
function withoutPullGrants(templates: Record<string, object>): Record<string, object> {
  return JSON.parse(JSON.stringify(templates, (key, v) => {
    if (v && typeof v === 'object' && !Array.isArray(v) && v.Resources) {
      return {
        ...v,
        Resources: Object.fromEntries(Object.entries(v.Resources as Record<string, any>)
          .filter(([id, r]) => !(/ExecutionRole/.test(id) && ['AWS::IAM::Role', 'AWS::IAM::Policy'].includes(r.Type))
            // a grant to a role of the app's own (an L1 task definition's execution role) is a policy of that role
            && !(r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.PolicyDocument).includes('ecr:BatchImportUpstreamImage')))),
      };
    }
    return key === 'ExecutionRoleArn' ? undefined : v;
  }));
}

const RUNS = 20;

/** The rewritten templates of every run, linted at the end (a report's are the original app's, byte for byte). */
const linted: Record<string, object> = {};
afterAll(() => expect(cfnLint(linted)).toBe(''));

test('reportOnly: true leaves every synthesized template byte for byte as it was', () => {
  fc.assert(fc.property(appSpec, spec => {
    expect(JSON.stringify(build(spec, 'report'))).toBe(JSON.stringify(build(spec, 'none')));
  }), { numRuns: RUNS });
});

test('rewriting changes image fields only: no container, variable or other key is removed, added or reordered', () => {
  let moved = 0;
  fc.assert(fc.property(appSpec, spec => {
    const before = withoutPullGrants(build(spec, 'none'));
    const rewritten = build(spec, 'rewrite');
    linted[`run${Object.keys(linted).length}`] = rewritten.Apps;
    const after = withoutPullGrants(rewritten);
    expect(differences(before, after, '')).toEqual([]);
    moved += JSON.stringify(after).split(`${REGISTRY}/docker-hub/`).length - JSON.stringify(before).split(`${REGISTRY}/docker-hub/`).length;
  }), { numRuns: RUNS });
  expect(moved).toBeGreaterThan(RUNS); // the apps did have images to move
});

test('the comparison catches what it must: a lost variable, a reordered key, a changed value', () => {
  const template = { Resources: { T: { Properties: { ContainerDefinitions: [{ Image: 'a', Environment: [{ Name: 'A', Value: '1' }] }], Manifest: '[{"kind":"Pod","b":1,"a":2}]' } } } };
  const changed = (edit: (t: any) => void) => {
    const copy = JSON.parse(JSON.stringify(template));
    edit(copy.Resources.T.Properties);
    return differences(template, copy, '');
  };
  expect(changed(p => { p.ContainerDefinitions[0].Image = 'b'; delete p.ContainerDefinitions[0].RepositoryCredentials; })).toEqual([]);
  expect(changed(p => { p.ContainerDefinitions[0].Environment = []; })).toHaveLength(1);
  expect(changed(p => { p.Manifest = '[{"kind":"Pod","a":2,"b":1}]'; })).toHaveLength(1);
  expect(changed(p => { p.Manifest = '[{"kind":"Pod","b":1,"a":3}]'; })).toHaveLength(1);
  expect(changed(p => { p.ContainerDefinitions.push({ Image: 'c' }); })).toHaveLength(1);
});
