/**
 * A cache's life, change by change, as a platform team makes it between two deploys: each change is synthesized
 * before and after, and the update judged as CloudFormation applies it (test/support/cfn-update.ts: create-only
 * properties from cfn-lint's schemas, create before delete, unique prefixes and names). Each change deploys in one
 * step, or is refused at synth with the steps that do.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { PullThroughCacheRules, PullThroughCacheRulesProps, RegistryScanning, SharedCache, UpstreamCredentials, UpstreamRegistry } from '../../src';
import { RULE_RESOURCE_TYPE } from '../../src/rules/contract';
import { StackTemplate, UpdateJudgement, judgeAppUpdate, judgeUpdate } from '../support/cfn-update';
import { testApp } from '../util';

const ENV = { account: '111122223333', region: 'eu-west-1' };
const SECRET_A = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:ecr-pullthroughcache/hub-a-AbCdEf';
const SECRET_B = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:ecr-pullthroughcache/hub-b-GhIjKl';
const UPSTREAM_ECR = '444455556666.dkr.ecr.eu-west-1.amazonaws.com';

/** How the app declares its cache: where the construct sits, and its props made in the stack. */
interface Variant {
  readonly id?: string;
  /** Put the cache under a construct of this id (a refactoring of the app). */
  readonly parent?: string;
  readonly props: (stack: Stack) => PullThroughCacheRulesProps;
}

function synth(variant: Variant): StackTemplate {
  const stack = new Stack(testApp(), 'Platform', { env: ENV });
  const scope = variant.parent ? new Construct(stack, variant.parent) : stack;
  new PullThroughCacheRules(scope, variant.id ?? 'Cache', variant.props(stack));
  return Template.fromStack(stack).toJSON() as StackTemplate;
}

function imported(stack: Stack, arn: string): UpstreamCredentials {
  return UpstreamCredentials.fromSecret(secretsmanager.Secret.fromSecretCompleteArn(stack, `Hub${arn.slice(-6)}`, arn));
}

function role(stack: Stack, name: string): iam.IRole {
  return (stack.node.tryFindChild(`Role${name}`) as iam.IRole | undefined)
    ?? iam.Role.fromRoleArn(stack, `Role${name}`, `arn:aws:iam::111122223333:role/${name}`);
}

/** The baseline: three anonymous upstreams, Docker Hub with a created secret, and an ECR upstream with a role. */
function base(stack: Stack, overrides: Partial<PullThroughCacheRulesProps> = {},
  hub: UpstreamCredentials = UpstreamCredentials.createSecret(), ecrRole = 'ptc-a'): PullThroughCacheRulesProps {
  return {
    upstreams: [
      UpstreamRegistry.ecrPublic(), UpstreamRegistry.kubernetes(), UpstreamRegistry.quay(),
      UpstreamRegistry.dockerHub({ credentials: hub }),
      UpstreamRegistry.ecr({ registryUrl: UPSTREAM_ECR, role: role(stack, ecrRole), ecrRepositoryPrefix: 'platform' }),
    ],
    ...overrides,
  };
}

function judge(before: Variant, after: Variant): UpdateJudgement & { before: StackTemplate; after: StackTemplate } {
  const b = synth(before);
  const a = synth(after);
  return { ...judgeUpdate(b, a), before: b, after: a };
}

/** Logical ids of the resources that hold a registry-unique name (rules, templates, secrets). */
function namedIds(t: StackTemplate): string[] {
  const types = new Set(['AWS::ECR::PullThroughCacheRule', RULE_RESOURCE_TYPE, 'AWS::ECR::RepositoryCreationTemplate', 'AWS::SecretsManager::Secret']);
  return Object.entries(t.Resources ?? {}).filter(([, r]) => types.has(r.Type)).map(([id]) => id).sort();
}

const BASE: Variant = { props: s => base(s) };

describe('changes that deploy in one step', () => {
  test('created secret -> imported secret: the rule is updated in place, the created secret deleted after', () => {
    const j = judge(BASE, { props: s => base(s, {}, imported(s, SECRET_A)) });
    expect(j.problems).toEqual([]);
    const rule = Object.entries(j.after.Resources!).find(([, r]) => r.Type === RULE_RESOURCE_TYPE && r.Properties?.EcrRepositoryPrefix === 'docker-hub')!;
    expect(j.updated).toContain(rule[0]);
    expect(rule[1].Properties?.CredentialArn).toBe(SECRET_A);
    expect(j.deleted.map(id => j.before.Resources![id].Type)).toContain('AWS::SecretsManager::Secret');
    expect(j.replaced).toEqual([]);
  });

  test('imported secret swapped for another: the rule is updated in place', () => {
    const j = judge({ props: s => base(s, {}, imported(s, SECRET_A)) }, { props: s => base(s, {}, imported(s, SECRET_B)) });
    expect(j.problems).toEqual([]);
    // the rule, the rule handler's grant on the secret, and the health check's list of credentialed prefixes
    expect(j.updated.map(id => j.after.Resources![id].Type).sort()).toEqual(['AWS::IAM::Policy', 'AWS::Lambda::Function', RULE_RESOURCE_TYPE]);
    expect(j.created).toEqual([]);
    expect(j.replaced).toEqual([]);
  });

  test('ECR upstream role changed: the rule is updated in place', () => {
    const j = judge(BASE, { props: s => base(s, {}, UpstreamCredentials.createSecret(), 'ptc-b') });
    expect(j.problems).toEqual([]);
    const updatedRules = j.updated.filter(id => j.after.Resources![id].Type === RULE_RESOURCE_TYPE);
    expect(updatedRules.map(id => j.after.Resources![id].Properties?.EcrRepositoryPrefix)).toEqual(['platform']);
    expect(j.replaced).toEqual([]);
  });

  test.each([
    ['renamed', { id: 'ContainerCache', props: (s: Stack) => base(s) }],
    ['moved under another construct', { parent: 'Platform', props: (s: Stack) => base(s) }],
    ['renamed and moved', { id: 'Mirror', parent: 'Registries', props: (s: Stack) => base(s) }],
  ] as Array<[string, Variant]>)('construct %s: rules, templates and secrets keep their logical ids', (_, after) => {
    const j = judge(BASE, after);
    expect(j.problems).toEqual([]);
    expect(namedIds(j.after)).toEqual(namedIds(j.before));
    expect(namedIds(j.before)).toHaveLength(5 + 5 + 1); // 5 rules, 5 templates, 1 created secret
    const touched = [...j.created, ...j.deleted, ...j.replaced];
    expect(touched.filter(id => namedIds(j.before).includes(id) || namedIds(j.after).includes(id))).toEqual([]);
  });

  test('construct renamed with registry scanning on: the registry\'s one scanning configuration keeps its logical id', () => {
    const scanned = (id: string): Variant => ({ id, props: s => base(s, { scanning: { registryScanning: RegistryScanning.BASIC_SCAN_ON_PUSH } }) });
    const j = judge(scanned('Cache'), scanned('Mirror'));
    expect(j.problems).toEqual([]);
    const ids = (t: StackTemplate) => Object.entries(t.Resources!).filter(([, r]) => r.Type === 'AWS::ECR::RegistryScanningConfiguration').map(([id]) => id);
    expect(ids(j.after)).toEqual(ids(j.before));
    expect(ids(j.after)).toHaveLength(1);
  });

  test('shared cache renamed: the registry\'s one registry policy keeps its logical id', () => {
    const central = (id: string) => {
      const stack = new Stack(testApp(), 'Central', { env: ENV });
      const cache = new PullThroughCacheRules(stack, 'Cache', { upstreams: [UpstreamRegistry.quay()], enableScanning: false, enableMonitoring: false });
      new SharedCache(stack, id, { cache, organizationId: 'o-a1b2c3d4e5' });
      return Template.fromStack(stack).toJSON() as StackTemplate;
    };
    const j = judgeUpdate(central('Shared'), central('Organization'));
    expect(j.problems).toEqual([]);
    expect(j.created).toEqual([]);
  });

  test('lifecycle settings changed: the templates are updated in place, nothing replaced', () => {
    const j = judge(BASE, { props: s => base(s, { repositoryOptions: { untaggedImageExpiration: Duration.days(3), maxImageCount: 20 } }) });
    expect(j.problems).toEqual([]);
    expect(j.updated.filter(id => j.after.Resources![id].Type === 'AWS::ECR::RepositoryCreationTemplate')).toHaveLength(5);
    expect(j.replaced).toEqual([]);
  });

  test.each([
    ['scanning off', { enableScanning: false }],
    ['monitoring off', { enableMonitoring: false }],
    ['both off', { enableScanning: false, enableMonitoring: false }],
    ['templates off', { createRepositoryTemplates: false }],
  ] as Array<[string, Partial<PullThroughCacheRulesProps>]>)('feature toggled (%s) and back: both deploys go through', (_, toggle) => {
    const off: Variant = { props: s => base(s, toggle) };
    const there = judge(BASE, off);
    expect(there.problems).toEqual([]);
    const back = judge(off, BASE);
    expect(back.problems).toEqual([]);
  });

  test('upstream added, then removed', () => {
    const ghcr = (s: Stack) => UpstreamRegistry.githubContainerRegistry({ credentials: imported(s, SECRET_B) });
    const more: Variant = { props: s => ({ upstreams: [...base(s).upstreams, ghcr(s)] }) };
    const added = judge(BASE, more);
    expect(added.problems).toEqual([]);
    expect(added.created.map(id => added.after.Resources![id].Type)).toEqual(expect.arrayContaining([RULE_RESOURCE_TYPE, 'AWS::ECR::RepositoryCreationTemplate']));
    const removed = judge(more, BASE);
    expect(removed.problems).toEqual([]);
    expect(removed.deleted.map(id => removed.before.Resources![id].Type)).toEqual(expect.arrayContaining([RULE_RESOURCE_TYPE, 'AWS::ECR::RepositoryCreationTemplate']));
  });

  test('an upstream moved to another cache of the same stack in one change: its rule and template keep their ids; both at once is refused saying so', () => {
    const twoCaches = (quayIn: 'Public' | 'Private', both = false) => {
      const stack = new Stack(testApp(), 'Platform', { env: ENV });
      const options = { enableScanning: false, enableMonitoring: false };
      new PullThroughCacheRules(stack, 'Public', { ...options, upstreams: [UpstreamRegistry.ecrPublic(), ...(quayIn === 'Public' || both ? [UpstreamRegistry.quay()] : [])] });
      new PullThroughCacheRules(stack, 'Private', { ...options, upstreams: [UpstreamRegistry.kubernetes(), ...(quayIn === 'Private' || both ? [UpstreamRegistry.quay()] : [])] });
      return Template.fromStack(stack).toJSON() as StackTemplate;
    };
    const before = twoCaches('Public');
    const after = twoCaches('Private');
    const j = judgeUpdate(before, after);
    expect(j.problems).toEqual([]);
    const quay = (t: StackTemplate) => Object.entries(t.Resources!)
      .filter(([, r]) => [r.Properties?.EcrRepositoryPrefix, r.Properties?.Prefix].includes('quay')).map(([id]) => id).sort();
    expect(quay(before)).toHaveLength(2); // the rule and its template
    expect(quay(after)).toEqual(quay(before));
    expect([...j.created, ...j.deleted, ...j.replaced].filter(id => quay(before).includes(id))).toEqual([]);
    // with the upstream in both caches, the error must not send the user through two deploys (a gap with no rule)
    expect(() => twoCaches('Public', true)).toThrow(/Remove it from Platform\/Public and add it to Platform\/Private in the same deploy/);
  });

  test('an upstream moved to another prefix: a new rule, then the old one deleted (no name held twice)', () => {
    const moved: Variant = { props: s => ({ upstreams: base(s).upstreams.map(u => (u.ecrRepositoryPrefix === 'quay' ? UpstreamRegistry.quay({ ecrRepositoryPrefix: 'quay-io' }) : u)) }) };
    const j = judge(BASE, moved);
    expect(j.problems).toEqual([]);
  });
});

describe('changes that cannot deploy in one step are caught', () => {
  test('an ECR upstream URL changed under the same prefix: the rule handler refuses it (two-step procedure)', () => {
    const j = judge(BASE, {
      props: s => ({
        upstreams: base(s).upstreams.map(u => (u.ecrRepositoryPrefix === 'platform'
          ? UpstreamRegistry.ecr({ registryUrl: '777788889999.dkr.ecr.eu-west-1.amazonaws.com', role: role(s, 'ptc-a'), ecrRepositoryPrefix: 'platform' }) : u)),
      }),
    });
    expect(j.deploys).toBe(false);
    expect(j.problems).toEqual([expect.stringMatching(/refuses to change UpstreamRegistryUrl in place/)]);
  });

  test('a prefix given to another upstream: both rules would hold it at once', () => {
    const j = judge(BASE, {
      props: () => ({ upstreams: [UpstreamRegistry.ecrPublic({ ecrRepositoryPrefix: 'quay' }), UpstreamRegistry.kubernetes()] }),
    });
    expect(j.deploys).toBe(false);
    expect(j.problems.join('\n')).toMatch(/EcrRepositoryPrefix="quay" would be held twice/);
  });

  test('the same prefix with another upstream in another stack of the app: refused at synth, with the steps', () => {
    const app = testApp();
    const a = new Stack(app, 'A', { env: ENV });
    const b = new Stack(app, 'B', { env: ENV });
    new PullThroughCacheRules(a, 'Cache', { upstreams: [UpstreamRegistry.quay()] });
    new PullThroughCacheRules(b, 'Cache', { upstreams: [UpstreamRegistry.ecrPublic({ ecrRepositoryPrefix: 'quay' })] });
    expect(() => app.synth()).toThrow(/prefix 'quay'.*ECR holds one rule per prefix.*\(1\) remove the upstream with the prefix 'quay'.*\(2\) add the new upstream/s);
  });

  test('the same upstream and prefix in two stacks at once (a move done in one go): refused at synth, saying which deploys first', () => {
    const app = testApp();
    new PullThroughCacheRules(new Stack(app, 'Old', { env: ENV }), 'Cache', { upstreams: [UpstreamRegistry.quay()] });
    new PullThroughCacheRules(new Stack(app, 'New', { env: ENV }), 'Cache', { upstreams: [UpstreamRegistry.quay()] });
    expect(() => app.synth()).toThrow(/To move the rule to another stack: remove it from Old\/Cache and deploy that stack first.*then add it to New\/Cache.*cdk refactor/s);
  });

  test('a cache moved to another stack: deploys when the old stack goes first, collides when the new one does', () => {
    const stacks = (where: 'A' | 'B') => {
      const app = testApp();
      const made = ['A', 'B'].map(name => new Stack(app, name, { env: ENV }));
      for (const stack of made.filter(s => s.stackName === where)) {
        new PullThroughCacheRules(stack, 'Cache', { upstreams: [UpstreamRegistry.quay()], enableScanning: false, enableMonitoring: false });
      }
      return Object.fromEntries(made.map(s => [s.stackName, Template.fromStack(s).toJSON() as StackTemplate]));
    };
    expect(judgeAppUpdate(stacks('A'), stacks('B'), ['A', 'B']).problems).toEqual([]);
    const wrongOrder = judgeAppUpdate(stacks('A'), stacks('B'), ['B', 'A']);
    expect(wrongOrder.deploys).toBe(false);
    expect(wrongOrder.problems.join('\n')).toMatch(/EcrRepositoryPrefix="quay" would be held twice.*another stack/);
  });
});

describe('the judge itself', () => {
  const rule = (credentialArn: string) => ({
    Type: 'AWS::ECR::PullThroughCacheRule',
    Properties: { EcrRepositoryPrefix: 'docker-hub', UpstreamRegistryUrl: 'registry-1.docker.io', UpstreamRegistry: 'docker-hub', CredentialArn: credentialArn },
  });

  test('CloudFormation\'s rule type with a swapped secret is replaced, and the replacement collides with the original', () => {
    const j = judgeUpdate({ Resources: { Rule: rule(SECRET_A) } }, { Resources: { Rule: rule(SECRET_B) } });
    expect(j.replaced).toEqual(['Rule']);
    expect(j.problems).toEqual([expect.stringMatching(/EcrRepositoryPrefix="docker-hub" would be held twice.*Rule \(old copy\) and Rule \(replacement\)/)]);
  });

  test('a rule under a new logical id (a path-derived id after a rename) collides with its old self', () => {
    const j = judgeUpdate({ Resources: { CacheDockerhubRuleA1B2: rule(SECRET_A) } }, { Resources: { MirrorDockerhubRuleC3D4: rule(SECRET_A) } });
    expect(j.deploys).toBe(false);
  });

  test('a create-only value taken by Ref from a replaced resource replaces its user too', () => {
    const secret = (name: string) => ({ Type: 'AWS::SecretsManager::Secret', Properties: { Name: name } });
    const j = judgeUpdate(
      { Resources: { S: secret('ecr-pullthroughcache/a'), Rule: rule({ Ref: 'S' } as any) } },
      { Resources: { S: secret('ecr-pullthroughcache/b'), Rule: rule({ Ref: 'S' } as any) } });
    expect(j.replaced.sort()).toEqual(['Rule', 'S']);
    expect(j.deploys).toBe(false);
  });

  test('a per-registry setting under a new logical id: the old copy\'s delete would remove it', () => {
    const scanning = { Type: 'AWS::ECR::RegistryScanningConfiguration', Properties: { ScanType: 'BASIC', Rules: [] } };
    const j = judgeUpdate({ Resources: { A: scanning } }, { Resources: { B: scanning } });
    expect(j.problems).toEqual([expect.stringMatching(/RegistryScanningConfiguration \(one per registry.*A \(deleted at cleanup\) and B \(new\)/)]);
  });

  test('a type change under one logical id fails', () => {
    const j = judgeUpdate({ Resources: { Rule: rule(SECRET_A) } },
      { Resources: { Rule: { Type: RULE_RESOURCE_TYPE, Properties: { ...rule(SECRET_A).Properties, ServiceToken: 'x' } } } });
    expect(j.problems.join('\n')).toMatch(/type changes from AWS::ECR::PullThroughCacheRule to Custom::EcrPullThroughCacheRule/);
  });

  const custom = (credentialArn: string, serviceToken = 'arn:aws:lambda:eu-west-1:111122223333:function:h') =>
    ({ Type: RULE_RESOURCE_TYPE, Properties: { ...rule(credentialArn).Properties, ServiceToken: serviceToken } });

  test('the custom rule with a swapped secret is updated in place; with another ServiceToken it fails, as CloudFormation refuses that', () => {
    expect(judgeUpdate({ Resources: { Rule: custom(SECRET_A) } }, { Resources: { Rule: custom(SECRET_B) } }))
      .toMatchObject({ deploys: true, updated: ['Rule'], replaced: [] });
    const moved = judgeUpdate({ Resources: { Rule: custom(SECRET_A) } }, { Resources: { Rule: custom(SECRET_A, 'arn:aws:lambda:eu-west-1:111122223333:function:other') } });
    expect(moved.problems).toEqual([expect.stringMatching(/Rule: a custom resource's ServiceToken cannot change/)]);
  });

  test('CloudFormation\'s rule replaced by the custom rule under another logical id collides: the handler never takes over an existing rule', () => {
    const j = judgeUpdate({ Resources: { CfnRule: rule(SECRET_A) } }, { Resources: { CustomRule: custom(SECRET_A) } });
    expect(j.problems).toEqual([expect.stringMatching(/EcrRepositoryPrefix="docker-hub" would be held twice.*CfnRule \(deleted at cleanup\) and CustomRule \(new\)/)]);
  });

  test('an in-place property change of a template is an update', () => {
    const template = (policy: string) => ({ Type: 'AWS::ECR::RepositoryCreationTemplate', Properties: { Prefix: 'quay', AppliedFor: ['PULL_THROUGH_CACHE'], LifecyclePolicy: policy } });
    const j = judgeUpdate({ Resources: { T: template('a') } }, { Resources: { T: template('b') } });
    expect(j).toMatchObject({ deploys: true, updated: ['T'], replaced: [] });
  });
});
