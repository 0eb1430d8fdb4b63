import { writeLine } from './log';

/**
 * CloudWatch Embedded Metric Format: one log line that CloudWatch turns into metrics, with no API call,
 * no SDK and no extra permission. https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
export interface MetricEntry {
  /** Metric name to value (a count). */
  readonly values: Record<string, number>;
  /** Dimension name to value; every key of each dimension set must be here. */
  readonly dimensions: Record<string, string>;
  /** The dimension sets to publish the values under, for example [['Cache'], ['Cache', 'Prefix']]. */
  readonly dimensionSets: string[][];
  /** Extra fields kept in the log line (not metrics): searchable with Logs Insights. */
  readonly properties?: Record<string, unknown>;
  /** When the values were observed (milliseconds since the epoch; CloudWatch accepts up to two weeks back). @default now */
  readonly timestamp?: number;
}

/** Write one EMF block to the handler's log. */
export function putMetrics(namespace: string, entry: MetricEntry): void {
  const names = Object.keys(entry.values);
  if (names.length === 0) {
    return;
  }
  for (const set of entry.dimensionSets) {
    for (const key of set) {
      if (!(key in entry.dimensions)) {
        throw new Error(`EMF dimension set names '${key}', which has no value`);
      }
    }
  }
  writeLine(JSON.stringify({
    _aws: {
      Timestamp: entry.timestamp ?? Date.now(),
      CloudWatchMetrics: [{
        Namespace: namespace,
        Dimensions: entry.dimensionSets,
        Metrics: names.map(Name => ({ Name, Unit: 'Count' })),
      }],
    },
    ...entry.properties,
    ...entry.dimensions,
    ...entry.values,
  }));
}
