/**
 * `CacheScanning` and `CacheMonitoring` made alone, from `{ cache }` only: from a cache of this app (where they must
 * give what `PullThroughCacheRules` gives when it makes them) and from one imported by its attributes (an application
 * team's). `CacheCopier` cannot be made alone at all. Every template is linted (cfn-lint) and checked with cdk-nag.
 */
import { existsSync, readFileSync } from 'fs';
import { join } from 'path';
import { App, Stack } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  CacheCopier, CacheMonitoring, CacheScanning, PullThroughCacheRules, PullThroughCacheRulesProps, UpstreamCredentials, UpstreamRegistry,
} from '../src';
import { lintedTemplates } from './support/cfn-lint';
import { testApp } from './util';

const ENV = { account: '111122223333', region: 'eu-west-1' };
const linted = lintedTemplates();

/** cdk-nag's findings in a stack, as "<rule> at <construct path>" (run on the scope, as in nag.test.ts). */
function nagFindings(stack: Stack): string[] {
  const report = new AwsSolutionsChecks(stack.node.root).validateScope(stack);
  return report.violations.flatMap(v => v.violatingResources.map(r => `${v.ruleName} at ${r.constructPath}`));
}

const UPSTREAMS = () => [
  UpstreamRegistry.ecrPublic(),
  UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
  UpstreamRegistry.copied({ registryUrl: 'mcr.microsoft.com', images: ['dotnet/runtime:8.0'] }),
];

function platformStack(props: Partial<PullThroughCacheRulesProps>): { stack: Stack; cache: PullThroughCacheRules } {
  const stack = new Stack(testApp(), 'Platform', { env: ENV });
  const cache = new PullThroughCacheRules(stack, 'Cache', { upstreams: UPSTREAMS(), ...props });
  return { stack, cache };
}

describe('made alone from a cache of this app', () => {
  test('scanning and monitoring given only { cache } are what the cache makes itself: the same template', () => {
    const builtIn = platformStack({});
    const alone = platformStack({ enableScanning: false, enableMonitoring: false });
    // in the cache's scope under the ids the cache uses, so the logical ids can be compared
    const scanning = new CacheScanning(alone.cache, 'Scanning', { cache: alone.cache });
    const monitoring = new CacheMonitoring(alone.cache, 'Monitoring', { cache: alone.cache });

    const expected = linted(builtIn.stack, 'built-in').toJSON();
    const actual = linted(alone.stack, 'alone').toJSON();
    expect(actual).toEqual(expected);
    // the monitoring found the scanning and the copier made for the cache, and the rule with credentials
    expect(monitoring.criticalFindingsAlarm).toBeDefined();
    expect(monitoring.credentialCheckAlarm).toBeDefined();
    expect(monitoring.functions).toEqual([...scanning.functions, alone.cache.copier!.copyFunction, monitoring.healthFunction]);
    expect(monitoring.cacheName).toBe(builtIn.cache.monitoring!.cacheName);
    expect(alone.cache.ruleCredentials.map(c => c.ecrRepositoryPrefix)).toEqual(['docker-hub']);
    expect(nagFindings(alone.stack)).toEqual([]);
  });

  test('anywhere in the app, in another stack of the same environment', () => {
    const { stack, cache } = platformStack({ enableScanning: false, enableMonitoring: false });
    const watch = new Stack(stack.node.root, 'Watch', { env: ENV });
    new CacheScanning(watch, 'Scanning', { cache });
    const monitoring = new CacheMonitoring(watch, 'Monitoring', { cache });
    expect(monitoring.criticalFindingsAlarm).toBeDefined();
    const template = linted(watch, 'other-stack');
    template.resourceCountIs('AWS::Lambda::Function', 3);
    expect(nagFindings(watch)).toEqual([]);
  });

  test('a scanning made after the monitoring would be left out of its alarms: refused at synth, naming both', () => {
    const { stack, cache } = platformStack({ enableScanning: false, enableMonitoring: false });
    new CacheMonitoring(stack, 'Monitoring', { cache });
    new CacheScanning(stack, 'Scanning', { cache });
    expect(() => (stack.node.root as App).synth()).toThrow(
      /Platform\/Scanning was made for the cache Platform\/Cache after its CacheMonitoring Platform\/Monitoring, so its handlers and metrics are not alarmed\. Make it before the monitoring/);
  });

  test('the message of a scanning made after the cache\'s own monitoring names the way out: both built-ins off, scanning first', () => {
    const { stack, cache } = platformStack({ enableScanning: false });
    new CacheScanning(stack, 'Scanning', { cache });
    expect(() => (stack.node.root as App).synth()).toThrow(
      /after its CacheMonitoring Platform\/Cache\/Monitoring.*when the monitoring is the cache's own \(made with the cache\), set enableMonitoring: false on the cache/);
  });

  test('a second scanning of the same cache is refused, with or without a monitoring (each would scan every image again)', () => {
    const { stack, cache } = platformStack({ enableMonitoring: false });
    expect(() => new CacheScanning(stack, 'MoreScanning', { cache })).toThrow(
      /MoreScanning: the cache Platform\/Cache has a CacheScanning already \(Platform\/Cache\/Scanning\), and a second would scan every image again\. Keep one; to make your own, set enableScanning: false on the cache\./);
    const bare = platformStack({ enableScanning: false, enableMonitoring: false });
    new CacheScanning(bare.stack, 'One', { cache: bare.cache });
    expect(() => new CacheScanning(bare.stack, 'Two', { cache: bare.cache })).toThrow(/has a CacheScanning already \(Platform\/One\)/);
  });

  test('a second monitoring of the same cache is refused (it would publish and alarm twice under the same Cache dimension)', () => {
    const { stack, cache } = platformStack({});
    expect(() => new CacheMonitoring(stack, 'M2', { cache })).toThrow(
      /M2: the cache Platform\/Cache has a CacheMonitoring already \(Platform\/Cache\/Monitoring\), and a second would publish and alarm on everything twice\. Keep one; to make your own, set enableMonitoring: false on the cache\./);
  });
});

describe('made alone from an imported cache (an application team\'s app)', () => {
  const PREFIXES = [
    { registry: 'docker.io', ecrRepositoryPrefix: 'docker-hub' },
    { registry: 'quay.io', ecrRepositoryPrefix: 'quay' },
  ];

  test('they scan and watch the imported prefixes, with no credential canary (the secrets are the platform team\'s)', () => {
    const stack = new Stack(testApp(), 'ApplicationTeam', { env: ENV });
    const cache = PullThroughCacheRules.fromPullThroughCacheRulesAttributes(stack, 'Cache', { prefixes: PREFIXES });
    const scanning = new CacheScanning(stack, 'Scanning', { cache });
    const monitoring = new CacheMonitoring(stack, 'Monitoring', { cache, alarmActions: [] });
    expect(scanning.cache).toBe(cache);
    expect(monitoring.credentialCheckAlarm).toBeUndefined();
    expect(monitoring.criticalFindingsAlarm).toBeDefined();

    const template = linted(stack, 'imported');
    const json = JSON.stringify(template.toJSON());
    // the rules match the imported prefixes, and the handlers read only their repositories
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { 'detail-type': ['ECR Pull Through Cache Action'], 'detail': { 'ecr-repository-prefix': ['docker-hub', 'quay'], 'sync-status': ['SUCCESS'] } },
    });
    expect(json).toContain(':ecr:eu-west-1:111122223333:repository/docker-hub/*');
    expect(json).toContain(':ecr:eu-west-1:111122223333:repository/quay/*');
    expect(json).not.toContain('ValidatePullThroughCacheRule');
    expect(Object.keys(template.findResources('AWS::Events::Rule')).filter(id => id.includes('CredentialCheck'))).toEqual([]);
    expect(nagFindings(stack)).toEqual([]);
  });

  test('an imported cache of another Region is refused, naming where to create them (ECR sends its events there only)', () => {
    const stack = new Stack(testApp(), 'ApplicationTeam', { env: ENV });
    const cache = PullThroughCacheRules.fromPullThroughCacheRulesAttributes(stack, 'Cache', { prefixes: PREFIXES, region: 'us-east-1' });
    expect(() => new CacheScanning(stack, 'Scanning', { cache })).toThrow(
      /ApplicationTeam\/Scanning \(CacheScanning of ApplicationTeam\/Cache\): the cache is in us-east-1, and ECR sends its events and metrics there only, so a CacheScanning in this stack \(eu-west-1\) would never see them\. Create it in a stack of us-east-1/);
    expect(() => new CacheMonitoring(stack, 'Monitoring', { cache })).toThrow(/CacheMonitoring in this stack \(eu-west-1\) would never see them/);
  });

  test('a cache of an environment-agnostic stack watched from a concrete environment is refused', () => {
    const app = testApp();
    const cache = new PullThroughCacheRules(new Stack(app, 'Agnostic'), 'Cache', {
      upstreams: [UpstreamRegistry.quay()], enableScanning: false, enableMonitoring: false,
    });
    expect(() => new CacheScanning(new Stack(app, 'Concrete', { env: ENV }), 'Scanning', { cache }))
      .toThrow(/Concrete\/Scanning \(CacheScanning of Agnostic\/Cache\): Agnostic\/Cache is in the environment-agnostic stack Agnostic/);
  });
});

describe('CacheCopier cannot be made alone', () => {
  test('the jsii assembly gives it no initializer, so no language can construct it (only PullThroughCacheRules does)', () => {
    const file = join(__dirname, '..', '.jsii');
    if (!existsSync(file)) {
      throw new Error(`${file} is missing: run npx projen compile first (the build does, before the tests).`);
    }
    const assembly = JSON.parse(readFileSync(file, 'utf8'));
    const type = (name: string) => Object.values<any>(assembly.types).find(t => t.fqn === `cdk-ecr-pull-through-cache.${name}`);
    expect(type('CacheCopier')).toBeDefined();
    expect(type('CacheCopier').initializer).toBeUndefined();
    // the other two are made from { cache }: their props type requires it
    for (const name of ['CacheScanning', 'CacheMonitoring']) {
      const props = type(name).initializer.parameters[2].type.fqn;
      expect(type(props.replace('cdk-ecr-pull-through-cache.', '')).properties.find((p: any) => p.name === 'cache')).toMatchObject({
        type: { fqn: 'cdk-ecr-pull-through-cache.IPullThroughCacheRules' },
      });
      expect(type(props.replace('cdk-ecr-pull-through-cache.', '')).properties.find((p: any) => p.name === 'cache').optional).toBeUndefined();
    }
    expect(CacheCopier).toBeDefined();
  });
});
