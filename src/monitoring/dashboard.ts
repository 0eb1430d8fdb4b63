import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { IConstruct } from 'constructs';
import { HealthMetric } from './contract';
import { CacheCopier } from '../mirror/cache-mirror';
import { MirrorMetric } from '../mirror/contract';
import { CacheScanning, FindingSeverity } from '../scanning/cache-scanning';
import { ScanMetric } from '../scanning/contract';

/** What the dashboard shows besides the monitoring construct's own metrics and alarms. */
export interface DashboardProps {
  readonly dashboardName?: string;
  readonly scanning?: CacheScanning;
  readonly mirror?: CacheCopier;
  readonly prefixes: string[];
  readonly validatedPrefixes: string[];
  readonly credentialPeriod: Duration;
}

/**
 * What the dashboard reads of the cache's monitoring: its names, alarms and metrics. `CacheMonitoring` gives it; the
 * dashboard names only what it draws, so the two files do not import each other.
 */
export interface MonitoringMetrics extends IConstruct {
  readonly cacheName: string;
  readonly metricNamespace: string;
  readonly alarms: cloudwatch.IAlarm[];
  metricPrefixPulls(prefix: string, props?: cloudwatch.MetricOptions): cloudwatch.IMetric;
  metricSyncFailures(props?: cloudwatch.MetricOptions): cloudwatch.IMetric;
  metricCredentialCheckFailures(props?: cloudwatch.MetricOptions): cloudwatch.IMetric;
  metricCredentialsNotFilledIn(props?: cloudwatch.MetricOptions): cloudwatch.IMetric;
  metricHandlerErrors(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric;
  metricHandlerThrottles(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric;
  metricEventsGivenUp(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric;
  metricDeadLetterMessages(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric;
  metricDeadLetterAge(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric;
}

/** The dashboard of a cache: alarms, pulls, sync failures, scans, findings, mirror, handlers, queues, canary. */
export function createDashboard(monitoring: MonitoringMetrics, props: DashboardProps): cloudwatch.Dashboard {
  const { dashboardName, scanning, mirror, prefixes, validatedPrefixes, credentialPeriod } = props;
  const dashboard = new cloudwatch.Dashboard(monitoring, 'Dashboard', { dashboardName, defaultInterval: Duration.days(1) });
  const search = (metricName: string, dimension: string, statistic: string, period: Duration,
    namespace = monitoring.metricNamespace, cache = monitoring.cacheName) => new cloudwatch.MathExpression({
    expression: `SEARCH('{${namespace},Cache,${dimension}} MetricName="${metricName}" Cache="${cache}"', '${statistic}', ${period.toSeconds()})`,
    label: '',
    period,
  });
  dashboard.addWidgets(
    new cloudwatch.TextWidget({
      markdown: `# ECR pull through cache \`${monitoring.cacheName}\`\nPrefixes: ${prefixes.map(p => `\`${p}\``).join(', ')}. Runbook: the project README, section Monitoring.`,
      width: 24,
      height: 2,
    }),
  );
  dashboard.addWidgets(
    new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: monitoring.alarms, width: 24, height: 3 }),
  );
  dashboard.addWidgets(
    new cloudwatch.GraphWidget({
      title: 'Pulls per upstream prefix',
      left: prefixes.map(p => monitoring.metricPrefixPulls(p, { label: p })),
      stacked: true,
      width: 12,
    }),
    new cloudwatch.GraphWidget({
      title: 'Sync failures, by failure code',
      left: [monitoring.metricSyncFailures({ label: 'failed syncs (EventBridge)' })],
      right: [search(HealthMetric.SYNC_FAILURES, 'FailureCode', 'Sum', Duration.minutes(5))],
      width: 12,
    }),
  );
  if (scanning) {
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Scans',
        left: [
          scanning.metricScansStarted({ label: 'started' }),
          scanning.metricScansSkipped({ label: 'skipped' }),
          scanning.metricScanFailures({ label: 'failed for good' }),
          scanning.metricScansReported({ label: 'reported' }),
          scanning.metricImagesNotScanned({ label: 'not scannable' }),
          scanning.metricReportsNotPublished({ label: 'reports not published' }),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Findings by severity',
        left: Object.values(FindingSeverity).map(s => scanning.metricFindings(s as FindingSeverity, { label: s })),
        stacked: true,
        width: 12,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Images not scanned, by prefix and reason (UnsupportedImageError: FROM scratch, distroless)',
        left: [new cloudwatch.MathExpression({
          expression: `SEARCH('{${scanning.metricNamespace},Cache,Prefix,Reason} MetricName="${ScanMetric.NOT_SCANNED}" Cache="${scanning.cacheName}"', 'Sum', 3600)`,
          label: '',
          period: Duration.hours(1),
        })],
        width: 24,
      }),
    );
  }
  if (mirror) {
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Mirror: images',
        left: [
          mirror.metricImagesCopied({ label: 'copied' }),
          mirror.metricImagesUnchanged({ label: 'unchanged' }),
          mirror.metricCopyFailures({ label: 'failed' }),
        ],
        right: [mirror.metricBytesCopied({ label: 'bytes copied' })],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Mirror: failed images, by reason',
        left: [search(MirrorMetric.FAILED, 'Reason', 'Sum', Duration.minutes(5), mirror.metricNamespace, mirror.cacheName)],
        width: 12,
      }),
    );
  }
  dashboard.addWidgets(
    new cloudwatch.GraphWidget({
      title: 'Handlers: errors and throttles',
      left: [monitoring.metricHandlerErrors({ label: 'errors' }), monitoring.metricHandlerThrottles({ label: 'throttles' })],
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: 'Dead-letter queues',
      left: [monitoring.metricDeadLetterMessages({ label: 'messages' }), monitoring.metricEventsGivenUp({ label: 'given up' })],
      right: [monitoring.metricDeadLetterAge({ label: 'oldest (s)' })],
      width: 8,
    }),
    new cloudwatch.GraphWidget({
      title: 'Credential canary',
      left: validatedPrefixes.length > 0
        ? [monitoring.metricCredentialCheckFailures({ label: 'rejected' }), monitoring.metricCredentialsNotFilledIn({ label: 'not filled in' })]
        : [],
      right: validatedPrefixes.length > 0 ? [search(HealthMetric.CREDENTIAL_FAILURES, 'Prefix', 'Maximum', credentialPeriod)] : [],
      width: 8,
    }),
  );
  return dashboard;
}
