/**
 * The cache with no optional property set, as a new user's first deploy makes it: nothing in it can fail on a new
 * account (no reserved Lambda concurrency: Lambda keeps 10 unreserved, a new account's whole quota), and every
 * alarm or report that would reach nobody is said at synth, naming the property to set.
 */
import { Stack, Stage } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';
import { testApp } from './util';

function defaults(configure?: (stack: Stack) => Partial<ConstructorParameters<typeof PullThroughCacheRules>[2]>) {
  const stack = new Stack(testApp(), 'Defaults');
  const cache = new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [UpstreamRegistry.ecrPublic(), UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() })],
    ...configure?.(stack),
  });
  return { stack, cache };
}

const warningsOf = (stack: Stack) => Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('unheardTopic'))
  .map(w => `${w.id} ${w.entry.data}`);

describe('a default deploy', () => {
  test('reserves no Lambda concurrency anywhere, so it deploys on an account whose concurrency quota is 10', () => {
    const { stack } = defaults();
    const functions = Template.fromStack(stack).findResources('AWS::Lambda::Function');
    expect(Object.keys(functions).length).toBeGreaterThanOrEqual(3); // scanning, reporting and health handlers are there
    for (const [id, fn] of Object.entries(functions)) {
      expect([id, (fn as any).Properties.ReservedConcurrentExecutions]).toEqual([id, undefined]);
    }
  });

  test('alarms and findings reports with nowhere to go are warned of at synth, naming the property to set', () => {
    const { stack } = defaults();
    const warnings = warningsOf(stack);
    expect(warnings).toEqual(expect.arrayContaining([
      expect.stringMatching(/^\/Defaults\/Cache\/Monitoring\/AlarmTopic The cache's alarms go to the SNS topic Defaults\/Cache\/Monitoring\/AlarmTopic, which has no subscription in this app, so nobody hears them\. Set monitoring\.alarmActions \(or monitoring\.alarmTopic\)/),
      expect.stringMatching(/^\/Defaults\/Cache\/Scanning\/FindingsTopic Reports of vulnerability findings in cached images go to .* Set scanning\.findingsTopic/),
    ]));
    expect(warnings).toHaveLength(2);
  });

  test('a subscription added after the cache, anywhere in the app, silences the warning', () => {
    const { stack, cache } = defaults();
    cache.monitoring!.alarmTopic!.addSubscription(new subscriptions.EmailSubscription('oncall@example.com'));
    cache.scanning!.findingsTopic.addSubscription(new subscriptions.EmailSubscription('security@example.com'));
    expect(warningsOf(stack)).toEqual([]);
  });

  test('alarm actions of your own replace the topic: every alarm notifies them, and no topic is created', () => {
    const { stack, cache } = defaults(s => ({
      monitoring: { alarmActions: [new actions.SnsAction(new sns.Topic(s, 'Pager'))] },
      scanning: { findingsTopic: new sns.Topic(s, 'Security') },
    }));
    expect(cache.monitoring!.alarmTopic).toBeUndefined();
    const template = Template.fromStack(stack);
    expect(Object.keys(template.findResources('AWS::SNS::Topic')).sort()).toEqual([expect.stringMatching(/^Pager/), expect.stringMatching(/^Security/)]);
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as any[];
    expect(alarms.length).toBe(cache.monitoring!.alarms.length);
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: expect.stringMatching(/^Pager/) }]);
      expect(alarm.Properties.OKActions).toEqual([{ Ref: expect.stringMatching(/^Pager/) }]);
    }
    expect(warningsOf(stack)).toEqual([]); // the user's own topics are theirs to subscribe
  });

  test('empty alarm actions are warned of; a topic and actions together are refused', () => {
    const { stack } = defaults(() => ({ monitoring: { alarmActions: [] } }));
    expect(warningsOf(stack)).toEqual(expect.arrayContaining([expect.stringMatching(/monitoring\.alarmActions is empty, so the cache's alarms notify nobody/)]));
    expect(() => defaults(s => ({
      monitoring: { alarmTopic: new sns.Topic(s, 'A'), alarmActions: [new actions.SnsAction(new sns.Topic(s, 'B'))] },
    }))).toThrow(/alarmTopic and alarmActions are both set\. Use alarmActions alone, with new SnsAction\(topic\) among them/);
  });

  test('alarms are addressable by name', () => {
    const { cache } = defaults();
    const m = cache.monitoring!;
    expect(m.syncFailuresAlarm.node.id).toBe('SyncFailures');
    expect(m.criticalFindingsAlarm!.node.id).toBe('CriticalFindings');
    expect(m.handlerErrorsAlarm.node.id).toBe('HandlerErrors');
    expect(m.deadLettersAlarm.node.id).toBe('DeadLetters');
    expect(m.eventsGivenUpAlarm.node.id).toBe('EventsGivenUp');
    expect(m.credentialCheckAlarm!.node.id).toBe('CredentialCheck');
    expect(m.alarms).toEqual([
      m.syncFailuresAlarm, m.criticalFindingsAlarm, m.handlerErrorsAlarm, m.deadLettersAlarm, m.eventsGivenUpAlarm, m.credentialCheckAlarm,
    ]);
    const { cache: unscanned } = defaults(() => ({ enableScanning: false, upstreams: [UpstreamRegistry.quay()] }));
    expect(unscanned.monitoring!.criticalFindingsAlarm).toBeUndefined();
    expect(unscanned.monitoring!.credentialCheckAlarm).toBeUndefined();
  });

  test('in a Stage: warned of in the Stage\'s own assembly, once however often it is synthesized; a subscription made by another stack counts', () => {
    const inStage = (subscribe: boolean) => {
      const stage = new Stage(testApp(), 'Prod');
      const stack = new Stack(stage, 'Cache');
      const cache = new PullThroughCacheRules(stack, 'Cache', { upstreams: [UpstreamRegistry.quay()], enableScanning: false });
      if (subscribe) {
        const pager = new Stack(stage, 'Pager');
        cache.monitoring!.alarmTopic!.addSubscription(new subscriptions.SqsSubscription(new sqs.Queue(pager, 'Inbox')));
      }
      return () => stage.synth({ force: true }).getStackArtifact(stack.artifactId).messages
        .map(m => String(m.entry.data)).filter(m => /nobody hears them/.test(m));
    };
    const unheard = inStage(false);
    unheard();
    expect(unheard()).toEqual([expect.stringMatching(/^The cache's alarms go to the SNS topic Prod\/Cache\/Cache\/Monitoring\/AlarmTopic/)]);
    expect(inStage(true)()).toEqual([]);
  });
});
