/**
 * `onSyncFailed` and `onScanCompleted`: EventBridge rules on the cache's own events, like
 * `ecr.Repository.onImageScanCompleted`, on the made construct and on an import. Patterns follow the events
 * documented in ECR-FACTS.md section 5 (ECR User Guide, ecr-eventbridge.html).
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { PullThroughCacheRules, UpstreamRegistry } from '../src';
import { testApp } from './util';

const ENV = { account: '111122223333', region: 'eu-west-1' };

function cache(prefix?: string) {
  const stack = new Stack(testApp(), 'Events', { env: ENV });
  const made = new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [UpstreamRegistry.quay({ ecrRepositoryPrefix: prefix }), UpstreamRegistry.kubernetes()],
    enableScanning: false,
    enableMonitoring: false,
  });
  return { stack, made, queue: new sqs.Queue(stack, 'Inbox') };
}

function ruleOf(stack: Stack, id: string) {
  const rules = Template.fromStack(stack).findResources('AWS::Events::Rule');
  const [, rule] = Object.entries(rules).find(([logicalId]) => logicalId.startsWith(id))!;
  return stack.resolve((rule as any).Properties);
}

describe('event methods', () => {
  test('onSyncFailed matches failed syncs of the cache\'s prefixes only, and sends them to its target', () => {
    const { stack, made, queue } = cache();
    made.onSyncFailed('SyncFailed', { target: new targets.SqsQueue(queue) });
    const rule = ruleOf(stack, 'CacheSyncFailed');
    expect(rule.EventPattern).toEqual({
      'source': ['aws.ecr'],
      'detail-type': ['ECR Pull Through Cache Action'],
      'account': ['111122223333'],
      'detail': { 'sync-status': [{ 'anything-but': 'SUCCESS' }], 'ecr-repository-prefix': ['quay', 'k8s'] },
    });
    expect(rule.Targets).toEqual([expect.objectContaining({ Arn: { 'Fn::GetAtt': [expect.stringMatching(/^Inbox/), 'Arn'] } })]);
  });

  test('onScanCompleted matches completed basic scans under the prefixes; more pattern narrows it', () => {
    const { stack, made } = cache();
    made.onScanCompleted('Scanned', { eventPattern: { detail: { 'finding-severity-counts': { CRITICAL: [{ exists: true }] } } } });
    expect(ruleOf(stack, 'CacheScanned').EventPattern).toEqual({
      'source': ['aws.ecr'],
      'detail-type': ['ECR Image Scan'],
      'account': ['111122223333'],
      'detail': {
        'scan-status': ['COMPLETE'],
        'repository-name': [{ prefix: 'quay/' }, { prefix: 'k8s/' }],
        'finding-severity-counts': { CRITICAL: [{ exists: true }] },
      },
    });
  });

  test('a ROOT prefix caches the whole registry: the rule is not narrowed by prefix', () => {
    const stack = new Stack(testApp(), 'Root', { env: ENV });
    const made = new PullThroughCacheRules(stack, 'Cache', { upstreams: [UpstreamRegistry.quay({ ecrRepositoryPrefix: 'ROOT' })], enableScanning: false, enableMonitoring: false });
    made.onSyncFailed('SyncFailed');
    expect(ruleOf(stack, 'CacheSyncFailed').EventPattern.detail).toEqual({ 'sync-status': [{ 'anything-but': 'SUCCESS' }] });
  });

  test('an imported cache defines the same rules in its Region, and refuses another Region, where they would never fire', () => {
    const { stack: platform, made } = cache();
    made.onSyncFailed('SyncFailed');
    const team = new Stack(testApp(), 'Team', { env: ENV });
    const imported = PullThroughCacheRules.fromPullThroughCacheRulesAttributes(team, 'Cache', {
      prefixes: [{ registry: 'quay.io', ecrRepositoryPrefix: 'quay' }, { registry: 'registry.k8s.io', ecrRepositoryPrefix: 'k8s' }],
    });
    const rule: events.Rule = imported.onSyncFailed('SyncFailed');
    expect(rule.node.path).toBe('Team/Cache/SyncFailed');
    expect(ruleOf(team, 'CacheSyncFailed').EventPattern).toEqual(ruleOf(platform, 'CacheSyncFailed').EventPattern);

    const elsewhere = PullThroughCacheRules.fromPullThroughCacheRulesAttributes(team, 'Virginia', {
      prefixes: [{ registry: 'quay.io', ecrRepositoryPrefix: 'quay' }], region: 'us-east-1',
    });
    expect(() => elsewhere.onScanCompleted('Scanned')).toThrow(/the cache is in us-east-1, and ECR sends its events to EventBridge there only, so a rule in this stack \(eu-west-1\) would never fire/);
  });
});
