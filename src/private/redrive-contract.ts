/**
 * What `BundledHandler` and the shared redrive code of the handlers (`handlers/redrive.ts`) agree on. Pure
 * constants: the construct and the bundled handlers both import this file.
 */

/** Environment variables the redrive code reads; `CACHE_NAME` and `METRIC_NAMESPACE` are set by every feature construct. */
export const REDRIVE_ENV = {
  /** The construct id of the handler (`ScanTrigger`, `FindingsReporter`, `Health`, `Copier`): the `Handler` dimension. */
  HANDLER_NAME: 'HANDLER_NAME',
  CACHE_NAME: 'CACHE_NAME',
  METRIC_NAMESPACE: 'METRIC_NAMESPACE',
  /** Seconds before the first retry of a failed redriven event (doubles per attempt). @default 60 */
  BASE_DELAY_SECONDS: 'REDRIVE_BASE_DELAY_SECONDS',
  /** Used when a handler has no `METRIC_NAMESPACE` (every construct of this library sets one). */
  DEFAULT_NAMESPACE: 'EcrPullThroughCache',
} as const;

export const REDRIVE_METRIC = {
  /** A redriven event failed `MAX_REDRIVES` real attempts and left its dead-letter queue; dimensions `Cache`, `Handler`. */
  GIVEN_UP: 'EventsGivenUp',
} as const;
