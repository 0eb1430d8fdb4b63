/**
 * CloudWatch footprint of a cache: resources per number of upstreams (none per cached repository), and the
 * monthly CloudWatch cost they imply at list prices.
 *
 *   npx projen bench:monitoring
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';

/** us-east-1 list prices, USD, as read on 2026-11-28 (third-party copies of the AWS pricing pages, dated 2026). */
const PRICE = {
  alarmMetric: 0.10, // per metric in a standard-resolution alarm, per month
  dashboard: 3.00, // per dashboard per month (the first three of an account are free)
  customMetric: 0.30, // per metric per month, prorated by the hour (first 10,000 metrics)
  getMetricDataPer1000: 0.01, // per 1,000 metrics requested
};

function upstreams(n: number): UpstreamRegistry[] {
  const all = [
    UpstreamRegistry.ecrPublic(), UpstreamRegistry.kubernetes(), UpstreamRegistry.quay(),
    UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
    UpstreamRegistry.githubContainerRegistry({ credentials: UpstreamCredentials.createSecret() }),
    UpstreamRegistry.gitlabContainerRegistry({ credentials: UpstreamCredentials.createSecret() }),
    UpstreamRegistry.azureContainerRegistry({ registryUrl: 'contoso.azurecr.io', credentials: UpstreamCredentials.createSecret() }),
    UpstreamRegistry.chainguard({ credentials: UpstreamCredentials.createSecret() }),
    UpstreamRegistry.ecr({ registryUrl: '111122223333.dkr.ecr.us-east-1.amazonaws.com', ecrRepositoryPrefix: 'us-east-1' }),
  ];
  return [all[2], all[3], all[0], all[1], all[4], all[5], all[6], all[7], all[8]].slice(0, n);
}

const rows: string[] = [];
for (const n of [1, 3, 9]) {
  const stack = new Stack(new App(), `Bench${n}`, { env: { account: '111122223333', region: 'eu-west-1' } });
  const list = upstreams(n);
  new PullThroughCacheRules(stack, 'Cache', { upstreams: list });
  const t = Template.fromStack(stack).toJSON();
  const types = Object.values<any>(t.Resources).map(r => r.Type as string);
  const count = (type: string) => types.filter(x => x === type).length;
  const alarms = Object.values<any>(t.Resources).filter(r => r.Type === 'AWS::CloudWatch::Alarm');
  const alarmMetrics = alarms.reduce((sum, a) => sum + (a.Properties.Metrics ? a.Properties.Metrics.filter((m: any) => m.MetricStat).length : 1), 0);
  const credentialed = list.filter(u => u.credentials).length;
  // worst case: every custom metric series receives data every hour of the month
  const scanning = 4 * (1 + n) + 5 /* ScansSkipped by Reason */ + 6 * (1 + n) /* Findings by Severity */;
  const health = (1 + n) /* Pulls */ + (1 + n) + 3 /* SyncFailures, 3 failure codes */ + (credentialed ? 4 * (1 + credentialed) : 0);
  const customMetrics = scanning + health;
  const cost = alarmMetrics * PRICE.alarmMetric + PRICE.dashboard + customMetrics * PRICE.customMetric;
  rows.push(`| ${n} | ${types.length} | ${count('AWS::CloudWatch::Alarm')} (${alarmMetrics} alarm metrics) | ${count('AWS::CloudWatch::Dashboard')} | `
    + `${count('AWS::Events::Rule')} | ${count('AWS::Lambda::Function')} | ${count('AWS::Logs::LogGroup')} | ${customMetrics} | $${cost.toFixed(2)} |`);
}
console.log('| upstreams | resources in the stack | alarms | dashboards | event rules | functions | log groups | custom metric series (worst case) | CloudWatch per month |');
console.log('|---|---|---|---|---|---|---|---|---|');
console.log(rows.join('\n'));
console.log(`\nPull counter API cost, per cached repository: ${(30 * 24 * 4 * PRICE.getMetricDataPer1000 / 1000).toFixed(4)} USD a month `
  + '(GetMetricData every 15 minutes, one metric per repository).');
