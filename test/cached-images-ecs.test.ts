import { App, Aspects, CfnParameter, Fn, Lazy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CachedImages, PullThroughCacheRules, UnservedImageLevel, UpstreamCredentials, UpstreamRegistry } from '../src';
import { lintedTemplates } from './support/cfn-lint';
import { ACCOUNT, ENV, REGISTRY } from './support/environments';
import { AddsSidecar, SIDECAR } from './support/other-aspects';
import { testApp } from './util';


/** Every template these tests synthesize successfully, linted at the end. */
const template = lintedTemplates();

function cacheIn(stack: Stack): PullThroughCacheRules {
  return new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }), UpstreamRegistry.quay()],
    enableMonitoring: false,
    enableScanning: false,
  });
}

function setup(app: App = testApp()) {
  const stack = new Stack(app, 'Apps', { env: ENV });
  return { app, stack, cache: cacheIn(stack) };
}

const containersOf = (t: Template, id?: string): any[] => {
  const defs = t.findResources('AWS::ECS::TaskDefinition');
  return (id ? defs[id] : Object.values(defs)[0]).Properties.ContainerDefinitions;
};
const errors = (stack: Stack) => Annotations.fromStack(stack).findError('*', Match.anyValue()).map(m => String(m.entry.data));
const warnings = (stack: Stack) => Annotations.fromStack(stack).findWarning('*', Match.anyValue()).map(m => String(m.entry.data));

describe('containers and variables added later are kept', () => {
  test.each([
    ['after ours, by a later Aspect', (app: App, ours: CachedImages) => {
      Aspects.of(app).add(ours);
      Aspects.of(app).add(new AddsSidecar());
    }],
    ['before ours, by an earlier Aspect', (app: App, ours: CachedImages) => {
      Aspects.of(app).add(new AddsSidecar());
      Aspects.of(app).add(ours);
    }],
    ['by an Aspect of higher priority', (app: App, ours: CachedImages) => {
      Aspects.of(app).add(ours, { priority: 500 });
      Aspects.of(app).add(new AddsSidecar(), { priority: 100 });
    }],
  ])('%s', (_name, apply) => {
    const { app, stack, cache } = setup();
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    task.addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 512, environment: { A: '1' } });
    apply(app, new CachedImages({ cache }));
    const containers = containersOf(template(stack, `later-${_name}`));
    expect(containers.map(c => c.Name)).toEqual(['web', SIDECAR]);
    expect(containers[0].Environment).toEqual([{ Name: 'A', Value: '1' }, { Name: 'ADDED_LATER', Value: 'yes' }]);
    expect(containers[0].Image).toBe(`${REGISTRY}/docker-hub/library/nginx:1.27`);
    // the sidecar is moved too when our Aspect still visits it, and is otherwise left as written: never lost
    expect([`${REGISTRY}/quay/org/sidecar:1`, 'quay.io/org/sidecar:1']).toContain(containers[1].Image);
  });

  test('code that adds to a container after the Aspect ran (in the same synth) is kept too', () => {
    const { app, stack, cache } = setup();
    const task = new ecs.Ec2TaskDefinition(stack, 'Task');
    const web = task.addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 512 });
    const ours = new CachedImages({ cache });
    Aspects.of(app).add({ visit: node => { ours.visit(node); if (node === web) { web.addEnvironment('B', '2'); } } });
    const containers = containersOf(template(stack, 'later-code'));
    expect(containers).toEqual([expect.objectContaining({ Name: 'web', Image: `${REGISTRY}/docker-hub/library/nginx:1.27`, Environment: [{ Name: 'B', Value: '2' }] })]);
  });
});

describe('reportOnly', () => {
  function app(withAspect: boolean): { stack: Stack; json: string } {
    const { app: a, stack, cache } = setup();
    const secret = new secretsmanager.Secret(stack, 'Secret');
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    task.addContainer('web', {
      image: ecs.ContainerImage.fromRegistry('nginx:1.27', { credentials: secret }),
      memoryLimitMiB: 512,
      environment: { B: '2', A: '1' },
      secrets: { S: ecs.Secret.fromSecretsManager(secret) },
    });
    task.addContainer('unserved', { image: ecs.ContainerImage.fromRegistry('mcr.microsoft.com/dotnet/aspnet:8.0'), memoryLimitMiB: 128 });
    if (withAspect) {
      Aspects.of(a).add(new CachedImages({ cache, reportOnly: true }));
    }
    Aspects.of(a).add(new AddsSidecar());
    return { stack, json: JSON.stringify(template(stack, `report-${withAspect}`).toJSON()) };
  }

  test('leaves the template byte for byte as it was, and reports (warnings, not errors, by default)', () => {
    const before = app(false);
    const after = app(true);
    expect(after.json).toBe(before.json);
    expect(errors(after.stack)).toEqual([]);
    expect(warnings(after.stack)).toEqual(expect.arrayContaining([
      expect.stringContaining(`container web: 'nginx:1.27' would be pulled through the cache as ${REGISTRY}/docker-hub/library/nginx:1.27`),
      expect.stringMatching(/container unserved: 'mcr\.microsoft\.com\/dotnet\/aspnet:8\.0' is not served by the pull through cache/),
    ]));
  });

  test('an explicit ERROR level still fails the report', () => {
    const { app: a, stack, cache } = setup();
    new ecs.FargateTaskDefinition(stack, 'Task').addContainer('x', { image: ecs.ContainerImage.fromRegistry('mcr.microsoft.com/x:1'), memoryLimitMiB: 128 });
    Aspects.of(a).add(new CachedImages({ cache, reportOnly: true, unservedImages: UnservedImageLevel.ERROR }));
    a.synth();
    expect(errors(stack)).toEqual([expect.stringContaining("container x: 'mcr.microsoft.com/x:1' is not served")]);
  });
});

describe('images built from tokens', () => {
  test.each([false, true])('are annotated (reportOnly: %s); ECR repository and asset images are not', reportOnly => {
    const { app, stack, cache } = setup();
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    const tag = new CfnParameter(stack, 'Tag');
    task.addContainer('param', { image: ecs.ContainerImage.fromRegistry(tag.valueAsString), memoryLimitMiB: 128 });
    task.addContainer('join', { image: ecs.ContainerImage.fromRegistry(Fn.join(':', ['nginx', tag.valueAsString])), memoryLimitMiB: 128 });
    task.addContainer('ssm', { image: ecs.ContainerImage.fromRegistry(ssm.StringParameter.valueForStringParameter(stack, '/app/image')), memoryLimitMiB: 128 });
    task.addContainer('ecr', { image: ecs.ContainerImage.fromEcrRepository(new ecr.Repository(stack, 'Repo'), 'v1'), memoryLimitMiB: 128 });
    Aspects.of(app).add(new CachedImages({ cache, reportOnly }));
    const containers = containersOf(template(stack, `tokens-${reportOnly}`));
    expect(containers.map(c => typeof c.Image)).toEqual(['object', 'object', 'object', 'object']); // nothing rewritten
    const tokenWarnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('known only at deploy time')).map(m => String(m.entry.data));
    expect(tokenWarnings.map(w => w.split(':')[0])).toEqual(['container param', 'container join', 'container ssm']);
    expect(tokenWarnings[0]).toMatch(/"Ref":"Tag"/);
  });

  test('an L1 task definition whose container list or image is a token is annotated', () => {
    const { app, stack, cache } = setup();
    const tag = new CfnParameter(stack, 'Tag');
    // a token in the repository (one in the tag alone moves: cached-images-apps.test.ts)
    new ecs.CfnTaskDefinition(stack, 'L1', { containerDefinitions: [{ name: 'x', image: `quay.io/org/${tag.valueAsString}:1` }] });
    new ecs.CfnTaskDefinition(stack, 'L1List', { containerDefinitions: Lazy.any({ produce: () => [{ name: 'y', image: 'nginx:1.27' }] }) });
    Aspects.of(app).add(new CachedImages({ cache }));
    app.synth();
    expect(warnings(stack)).toEqual([
      expect.stringMatching(/^container x: the image is known only at deploy time \(\{"Fn::Join":\["",\["quay\.io\/org\/",\{"Ref":"Tag"\},":1"\]\]\}\)/),
      expect.stringMatching(/^containerDefinitions is known only at deploy time \(a token\), so it was not checked/),
    ]);
  });
});

describe('credentials of the registry an image leaves', () => {
  test('repositoryCredentials are dropped from a moved L2 container, kept on one that stays', () => {
    const { app, stack, cache } = setup();
    const secret = new secretsmanager.Secret(stack, 'HubLogin');
    const task = new ecs.FargateTaskDefinition(stack, 'Task');
    task.addContainer('hub', { image: ecs.ContainerImage.fromRegistry('nginx:1.27', { credentials: secret }), memoryLimitMiB: 128 });
    task.addContainer('own', { image: ecs.ContainerImage.fromRegistry('registry.example.com/app:1', { credentials: secret }), memoryLimitMiB: 128 });
    Aspects.of(app).add(new CachedImages({ cache, unservedImages: UnservedImageLevel.WARNING }));
    const [hub, own] = containersOf(template(stack, 'credentials-l2'));
    expect(hub).not.toHaveProperty('RepositoryCredentials');
    expect(hub.Image).toBe(`${REGISTRY}/docker-hub/library/nginx:1.27`);
    expect(own.RepositoryCredentials).toEqual({ CredentialsParameter: { Ref: expect.stringMatching(/^HubLogin/) } });
  });

  test('and from a moved L1 container', () => {
    const { app, stack, cache } = setup();
    const role = new iam.Role(stack, 'Exec', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    new ecs.CfnTaskDefinition(stack, 'L1', {
      executionRoleArn: role.roleArn,
      containerDefinitions: [{ name: 'hub', image: 'nginx:1.27', repositoryCredentials: { credentialsParameter: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:hub' } }],
    });
    Aspects.of(app).add(new CachedImages({ cache }));
    expect(containersOf(template(stack, 'credentials-l1'))).toEqual([{ Name: 'hub', Image: `${REGISTRY}/docker-hub/library/nginx:1.27` }]);
  });
});

describe('pull rights follow the images, or synth says why not', () => {
  test('an L1 task definition gets its execution role granted', () => {
    const { app, stack, cache } = setup();
    const role = new iam.Role(stack, 'Exec', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    new ecs.CfnTaskDefinition(stack, 'L1', { executionRoleArn: role.roleArn, containerDefinitions: [{ name: 'web', image: 'nginx:1.27', memory: 128 }] });
    Aspects.of(app).add(new CachedImages({ cache }));
    const t = template(stack, 'l1-grant');
    const policies = Object.values(t.findResources('AWS::IAM::Policy')).filter((p: any) =>
      JSON.stringify(p.Properties.PolicyDocument).includes('ecr:BatchImportUpstreamImage'));
    expect(policies).toHaveLength(1);
    expect(JSON.stringify((policies[0] as any).Properties.Roles)).toContain('Exec');
    expect(errors(stack)).toEqual([]);
  });

  test('an L1 task definition with no execution role is refused', () => {
    const { app, stack, cache } = setup();
    new ecs.CfnTaskDefinition(stack, 'L1', { containerDefinitions: [{ name: 'web', image: 'nginx:1.27', memory: 128 }] });
    Aspects.of(app).add(new CachedImages({ cache }));
    app.synth();
    expect(errors(stack)).toEqual([expect.stringMatching(/Apps\/L1 has images in the pull through cache, but no executionRoleArn: .*cache\.grantPull\(role\)/)]);
  });

  test.each([
    ['imported with mutable: false', (s: Stack) => iam.Role.fromRoleArn(s, 'Imported', `arn:aws:iam::${ACCOUNT}:role/exec`, { mutable: false }), /immutable/],
    ['withoutPolicyUpdates()', (s: Stack) => new iam.Role(s, 'Own', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') }).withoutPolicyUpdates(), /immutable/],
    ['of another account', (s: Stack) => iam.Role.fromRoleArn(s, 'Other', 'arn:aws:iam::999999999999:role/exec'), /account 999999999999, but .* is in account 111122223333/],
  ])('an execution role %s is refused', (_name, role, reason) => {
    const { app, stack, cache } = setup();
    const task = new ecs.FargateTaskDefinition(stack, 'Task', { executionRole: role(stack) });
    task.addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 128 });
    Aspects.of(app).add(new CachedImages({ cache }));
    app.synth();
    expect(errors(stack)).toEqual([expect.stringMatching(new RegExp(`Apps/Task/web: its images were moved to the pull through cache, but the execution role cannot pull them: .*${reason.source}`))]);
  });

  test('a task definition in another account than the cache is refused', () => {
    const app = testApp();
    const { cache } = setup(app);
    const other = new Stack(app, 'Other', { env: { account: '999999999999', region: 'eu-west-1' } });
    new ecs.FargateTaskDefinition(other, 'Task').addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 128 });
    Aspects.of(app).add(new CachedImages({ cache }));
    app.synth({ validateOnSynthesis: false });
    expect(errors(other)).toEqual([expect.stringMatching(/Other\/Task\/web in the stack Other \(account 999999999999, Region eu-west-1\) is in account 999999999999, but Apps\/Cache is in account 111122223333\. .*SharedCache/)]);
  });

  test('another Region of the same account pulls across Regions, as ECR allows', () => {
    const app = testApp();
    const { cache } = setup(app);
    const other = new Stack(app, 'Virginia', { env: { account: ACCOUNT, region: 'us-east-1' } });
    new ecs.FargateTaskDefinition(other, 'Task').addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 128 });
    Aspects.of(app).add(new CachedImages({ cache }));
    expect(containersOf(template(other, 'cross-region'))[0].Image).toBe(`${REGISTRY}/docker-hub/library/nginx:1.27`);
    expect(errors(other)).toEqual([]);
  });

  describe('grantPull', () => {
    test.each([
      ['an AccountPrincipal', () => new iam.AccountPrincipal(ACCOUNT), /has no IAM policy of its own/],
      ['an ArnPrincipal', () => new iam.ArnPrincipal(`arn:aws:iam::${ACCOUNT}:role/exec`), /has no IAM policy of its own/],
      ['an immutable role', (s: Stack) => iam.Role.fromRoleArn(s, 'Imported', `arn:aws:iam::${ACCOUNT}:role/nodes`, { mutable: false }), /immutable/],
      ['a role of another account', (s: Stack) => iam.Role.fromRoleArn(s, 'Other', 'arn:aws:iam::999999999999:role/nodes'), /account 999999999999/],
      ['an AccountPrincipal of another account', () => new iam.AccountPrincipal('999999999999'), /account 999999999999/],
    ])('refuses %s instead of returning a grant that grants nothing', (_name, grantee, reason) => {
      const { stack, cache } = setup();
      expect(() => cache.grantPull(grantee(stack))).toThrow(reason);
    });

    test('still grants roles, imported mutable roles and users of the app', () => {
      const { stack, cache } = setup();
      const grants = [
        new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') }),
        iam.Role.fromRoleArn(stack, 'Imported', `arn:aws:iam::${ACCOUNT}:role/nodes`),
        new iam.User(stack, 'User'),
      ].map(g => cache.grantPull(g));
      expect(grants.every(g => g.success)).toBe(true);
      // (the stack's rule handler, for the Docker Hub rule's credentials, has its own: test/rules/)
      expect(Object.keys(template(stack, 'grants').findResources('AWS::IAM::Policy')).filter(id => !id.startsWith('EcrPullThroughCacheRuleHandler')).sort()).toEqual([
        expect.stringMatching(/^ImportedPolicy/), expect.stringMatching(/^RoleDefaultPolicy/), expect.stringMatching(/^UserDefaultPolicy/),
      ]);
    });
  });

  test('nodeRoles of another account are refused, instead of a policy on a same-named role of this one', () => {
    const app = testApp();
    const other = new Stack(app, 'Other', { env: { account: '999999999999', region: 'eu-west-1' } });
    const named = new iam.Role(other, 'Nodes', { roleName: 'nodes', assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    for (const [i, role] of [named, iam.Role.fromRoleArn(other, 'Imported', 'arn:aws:iam::999999999999:role/nodes')].entries()) {
      const stack = new Stack(app, `Cache${i}`, { env: ENV });
      expect(() => new PullThroughCacheRules(stack, 'Cache', { upstreams: [UpstreamRegistry.quay()], nodeRoles: [role] }))
        .toThrow(/Cache\d\/Cache nodeRoles: .*account 999999999999, but Cache\d\/Cache is in account 111122223333/);
    }
  });
});

describe('a cache in an environment-agnostic stack, used from a concrete environment', () => {
  function agnostic() {
    const app = testApp();
    const home = new Stack(app, 'Home');
    const cache = cacheIn(home);
    const consumer = new Stack(app, 'Consumer', { env: ENV });
    return { app, home, cache, consumer };
  }

  test('imageUri is refused at synth', () => {
    const { app, cache, consumer } = agnostic();
    new ecs.FargateTaskDefinition(consumer, 'Task').addContainer('web', { image: ecs.ContainerImage.fromRegistry(cache.imageUri('nginx:1.27')), memoryLimitMiB: 128 });
    expect(() => app.synth()).toThrow(/Home\/Cache is in the environment-agnostic stack Home, .* Give Home a concrete env/);
  });

  test('the Aspect refuses, for ECS and EKS manifests alike', () => {
    const { app, cache, consumer } = agnostic();
    new ecs.FargateTaskDefinition(consumer, 'Task').addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 128 });
    Aspects.of(app).add(new CachedImages({ cache }));
    app.synth({ validateOnSynthesis: false });
    expect(errors(consumer)).toEqual([expect.stringMatching(/^CachedImages: Home\/Cache is in the environment-agnostic stack Home/)]);
    expect(containersOf(Template.fromStack(consumer))[0].Image).toBe('nginx:1.27');
  });

  test('grantPull is refused', () => {
    const { cache, consumer } = agnostic();
    expect(() => cache.grantPull(new iam.Role(consumer, 'R', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') })))
      .toThrow(/grantPull\(Consumer\/R\): Home\/Cache is in the environment-agnostic stack Home/);
  });

  test('grantPull to an iam.Policy is refused too (its principal is no construct: the policy\'s own stack is checked)', () => {
    const { cache, consumer } = agnostic();
    expect(() => cache.grantPull(new iam.Policy(consumer, 'P')))
      .toThrow(/grantPull\(Consumer\/P\): Home\/Cache is in the environment-agnostic stack Home/);
  });

  test('the cache\'s own stack, and other environment-agnostic stacks, still use it', () => {
    const { app, home, cache } = agnostic();
    const sibling = new Stack(app, 'Sibling');
    for (const s of [home, sibling]) {
      new ecs.FargateTaskDefinition(s, 'Task').addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 128 });
    }
    Aspects.of(app).add(new CachedImages({ cache }));
    for (const s of [home, sibling]) {
      const image = containersOf(template(s, `agnostic-${s.stackName}`))[0].Image;
      expect(JSON.stringify(image)).toMatch(/AWS::AccountId.*\.dkr\.ecr\..*AWS::Region.*docker-hub\/library\/nginx:1\.27/);
      expect(errors(s)).toEqual([]);
    }
  });
});

test('an EC2 task definition (bridge network, port mappings) is moved like a Fargate one', () => {
  const { app, stack, cache } = setup();
  const task = new ecs.Ec2TaskDefinition(stack, 'Task', { networkMode: ecs.NetworkMode.BRIDGE });
  task.addContainer('web', { image: ecs.ContainerImage.fromRegistry('quay.io/org/web:2'), memoryLimitMiB: 256, portMappings: [{ containerPort: 80 }] });
  Aspects.of(app).add(new CachedImages({ cache }));
  const t = template(stack, 'ec2');
  expect(containersOf(t)[0]).toMatchObject({ Image: `${REGISTRY}/quay/org/web:2`, PortMappings: [{ ContainerPort: 80 }] });
  t.hasResourceProperties('AWS::ECS::TaskDefinition', { ExecutionRoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^TaskExecutionRole'), 'Arn'] } });
});

test('cdk-nag reports on the execution role the Aspect grants exactly what the README says: the two wildcards, for the user', () => {
  const { app, stack, cache } = setup();
  const task = new ecs.FargateTaskDefinition(stack, 'Task');
  task.addContainer('web', { image: ecs.ContainerImage.fromRegistry('nginx:1.27'), memoryLimitMiB: 128 });
  Aspects.of(app).add(new CachedImages({ cache }));
  app.synth();
  const report = new AwsSolutionsChecks(app).validateScope(stack);
  const findings = report.violations.flatMap(v => v.violatingResources.map(r => `${v.ruleName} at ${r.constructPath}`));
  const arn = (prefix: string) => `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:eu-west-1:${ACCOUNT}:repository/${prefix}/*]`;
  expect(findings.filter(f => f.includes('ExecutionRole')).sort()).toEqual(
    [arn('docker-hub'), arn('quay'), 'AwsSolutions-IAM5[Resource::*]'].map(id => `${id} at Apps/Task/ExecutionRole/DefaultPolicy/Resource`).sort());
});
