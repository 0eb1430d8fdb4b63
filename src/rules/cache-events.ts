import { Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import { Construct } from 'constructs';
import { repositoryNameFilter, syncEventPattern } from '../private/cache-event-patterns';

/**
 * A rule on the failed syncs of the cache with its upstreams: `ECR Pull Through Cache Action` events
 * (ECR-FACTS.md section 5) whose `sync-status` is not SUCCESS (the failure value is not documented), for its prefixes.
 */
export function onSyncFailedRule(scope: Construct, id: string, prefixes: string[], options: events.OnEventOptions): events.Rule {
  return eventRule(scope, id, 'Failed syncs of the pull through cache with its upstreams',
    syncEventPattern(Stack.of(scope).account, prefixes, [{ 'anything-but': 'SUCCESS' }]), options);
}

/**
 * A rule on completed basic scans of cached images: `ECR Image Scan` events with `scan-status` COMPLETE for
 * repositories under the cache's prefixes, as `ecr.Repository.onImageScanCompleted` matches them for one repository.
 */
export function onScanCompletedRule(scope: Construct, id: string, prefixes: string[], options: events.OnEventOptions): events.Rule {
  return eventRule(scope, id, 'Completed scans of images in the pull through cache', {
    source: ['aws.ecr'],
    detailType: ['ECR Image Scan'],
    account: [Stack.of(scope).account],
    detail: { 'scan-status': ['COMPLETE'], ...repositoryNameFilter(prefixes) },
  }, options);
}

/** An `onXxx` rule as `ecr.Repository`'s are made: the pattern, then the user's pattern and target on top. */
function eventRule(scope: Construct, id: string, description: string, pattern: events.EventPattern,
  options: events.OnEventOptions): events.Rule {
  const rule = new events.Rule(scope, id, {
    description: options.description ?? description,
    ruleName: options.ruleName,
    crossStackScope: options.crossStackScope,
  });
  rule.addEventPattern(pattern);
  rule.addEventPattern(options.eventPattern);
  if (options.target) {
    rule.addTarget(options.target);
  }
  return rule;
}
