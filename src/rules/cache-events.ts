import { Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import { Construct } from 'constructs';

/** The detail of a pattern that matches the cache's repositories, by the field that names them. */
function underPrefixes(field: string, prefixes: string[], match: (prefix: string) => unknown): Record<string, unknown> {
  return prefixes.includes('ROOT') ? {} : { [field]: prefixes.map(match) };
}

/**
 * A rule on the failed syncs of the cache with its upstreams: `ECR Pull Through Cache Action` events
 * (ECR-FACTS.md section 5) whose `sync-status` is not SUCCESS (the failure value is not documented), for its prefixes.
 */
export function onSyncFailedRule(scope: Construct, id: string, prefixes: string[], options: events.OnEventOptions): events.Rule {
  const rule = new events.Rule(scope, id, {
    description: options.description ?? 'Failed syncs of the pull through cache with its upstreams',
    ruleName: options.ruleName,
    crossStackScope: options.crossStackScope,
  });
  rule.addEventPattern({
    source: ['aws.ecr'],
    detailType: ['ECR Pull Through Cache Action'],
    account: [Stack.of(scope).account],
    detail: { 'sync-status': [{ 'anything-but': 'SUCCESS' }], ...underPrefixes('ecr-repository-prefix', prefixes, p => p) },
  });
  rule.addEventPattern(options.eventPattern);
  if (options.target) {
    rule.addTarget(options.target);
  }
  return rule;
}

/**
 * A rule on completed basic scans of cached images: `ECR Image Scan` events with `scan-status` COMPLETE for
 * repositories under the cache's prefixes, as `ecr.Repository.onImageScanCompleted` matches them for one repository.
 */
export function onScanCompletedRule(scope: Construct, id: string, prefixes: string[], options: events.OnEventOptions): events.Rule {
  const rule = new events.Rule(scope, id, {
    description: options.description ?? 'Completed scans of images in the pull through cache',
    ruleName: options.ruleName,
    crossStackScope: options.crossStackScope,
  });
  rule.addEventPattern({
    source: ['aws.ecr'],
    detailType: ['ECR Image Scan'],
    account: [Stack.of(scope).account],
    detail: { 'scan-status': ['COMPLETE'], ...underPrefixes('repository-name', prefixes, p => ({ prefix: `${p}/` })) },
  });
  rule.addEventPattern(options.eventPattern);
  if (options.target) {
    rule.addTarget(options.target);
  }
  return rule;
}
