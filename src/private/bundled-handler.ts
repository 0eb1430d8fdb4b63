import { Duration, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledgeFinding, acknowledgeWildcardResources } from './acknowledge';
import { REDRIVE_ENV } from './redrive-contract';

/**
 * The `MaximumConcurrency` of every redrive mapping: the fewest concurrent invocations the SQS pollers may
 * make (2 is Lambda's minimum), so a redrive cannot take the account's unreserved concurrency.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html#events-sqs-max-concurrency
 */
export const REDRIVE_MAX_CONCURRENCY = 2;

/** How a projen-generated `XxxFunction` class is made: `new XxxFunction(scope, id, props)`. */
export type FunctionFactory = new (scope: Construct, id: string, props: lambda.FunctionOptions) => lambda.Function;

export interface BundledHandlerProps {
  /** The projen-generated function class of the handler. */
  readonly code: FunctionFactory;
  readonly description: string;
  readonly timeout: Duration;
  readonly environment: Record<string, string>;
  readonly logRetention: logs.RetentionDays;
  /**
   * Concurrent executions reserved for the function from the account's pool (Lambda's
   * `ReservedConcurrentExecutions`). Only where a handler must be capped: a new account (concurrency quota 10,
   * of which Lambda keeps 10 unreserved) cannot reserve any, so a default that reserves fails to deploy there.
   * @default - none reserved (undefined or 0): the function shares the account's unreserved pool
   */
  readonly reservedConcurrency?: number;
  /** Statements of the handler's own permissions. */
  readonly statements: iam.PolicyStatement[];
  /** Memory in MB (Lambda gives CPU and network in proportion). @default 256 */
  readonly memorySize?: number;
}

/**
 * One bundled handler with everything around it that a handler running unwatched in AWS needs, built
 * the same way for every handler of the library:
 * - its own role with exactly its statements, and log permissions on its own log group only (no managed
 *   policy);
 * - a log group with a retention;
 * - Node.js 22 on ARM64, a timeout, no reserved concurrency unless asked for (so it deploys in an account
 *   whose concurrency quota is 10);
 * - asynchronous invocations retried twice, then sent with the original event to the dead-letter queue
 *   (an encrypted SQS queue that keeps messages 14 days);
 * - a disabled event source mapping from that queue back to the function, its concurrency bounded by
 *   `MaximumConcurrency` (`REDRIVE_MAX_CONCURRENCY`): enabling it redrives the queue (the handlers unwrap
 *   dead-letter messages and send failed ones back with their real attempts, `handlers/redrive.ts`),
 *   disabling it stops.
 */
export class BundledHandler extends Construct {
  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly redriveMapping: lambda.EventSourceMapping;

  constructor(scope: Construct, id: string, props: BundledHandlerProps) {
    super(scope, id);
    const reserved = props.reservedConcurrency ?? 0;
    if (!Number.isInteger(reserved) || reserved < 0) {
      throw new Error(`${this.node.path}: reservedConcurrency is ${props.reservedConcurrency}; it must be a whole number, `
        + '0 to reserve none (the function then shares the account\'s unreserved pool, uncapped).');
    }
    this.logGroup = new logs.LogGroup(this, 'LogGroup', { retention: props.logRetention });
    this.role = new iam.Role(this, 'ServiceRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs ${props.description}`,
    });
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [this.logGroup.logGroupArn],
    }));
    for (const statement of props.statements) {
      this.role.addToPrincipalPolicy(statement);
    }

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // a redriven message is invisible for six function timeouts while the function works on it (AWS's advice)
      visibilityTimeout: Duration.seconds(props.timeout.toSeconds() * 6),
    });

    this.function = new props.code(this, 'Function', {
      description: props.description,
      role: this.role,
      logGroup: this.logGroup,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout,
      reservedConcurrentExecutions: reserved > 0 ? reserved : undefined,
      environment: { LOG_LEVEL: 'INFO', [REDRIVE_ENV.HANDLER_NAME]: id, ...props.environment },
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new destinations.SqsDestination(this.deadLetterQueue),
    });

    this.redriveMapping = new lambda.EventSourceMapping(this, 'Redrive', {
      target: this.function,
      eventSourceArn: this.deadLetterQueue.queueArn,
      enabled: false,
      batchSize: 10,
      reportBatchItemFailures: true,
      maxConcurrency: REDRIVE_MAX_CONCURRENCY,
    });
    this.deadLetterQueue.grantConsumeMessages(this.role);
    // a failed redriven event is sent back with its attempts counted (handlers/redrive.ts)
    this.deadLetterQueue.grantSendMessages(this.role);

    acknowledgeFinding(this.deadLetterQueue, 'AwsSolutions-SQS3',
      'This queue is itself the dead-letter queue of the handler (Lambda on-failure destination and EventBridge target DLQ)');
    acknowledgeFinding(this.function, 'AwsSolutions-L1',
      'Pinned to Node.js 22, the runtime the bundled handler is built and tested for; moving to a newer runtime is a deliberate release');
  }

  /** An EventBridge target for the handler: delivery retried for a day, then the event goes to the dead-letter queue. */
  public target(event?: events.RuleTargetInput): events.IRuleTarget {
    return new targets.LambdaFunction(this.function, {
      event,
      deadLetterQueue: this.deadLetterQueue,
      retryAttempts: 185,
      maxEventAge: Duration.hours(24),
    });
  }

  /** Acknowledge `AwsSolutions-IAM5` for wildcards of the handler's own statements, with the reason. */
  public acknowledgeWildcards(resources: readonly string[], reason: string): void {
    acknowledgeWildcardResources(this.role.node.findChild('DefaultPolicy'), resources, reason);
  }

}

/** A custom metric of a cache (dimension `Cache`, plus any in `props`), summed over 5 minutes unless `props` says otherwise. */
export function cacheMetric(namespace: string, cacheName: string, metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace,
    metricName,
    statistic: cloudwatch.Stats.SUM,
    period: Duration.minutes(5),
    ...props,
    dimensionsMap: { Cache: cacheName, ...props?.dimensionsMap },
  });
}

/** A reservation as `BundledHandler` takes it; 0 is refused, since Lambda's 0 means "never run". */
export function checkedReservation(scope: Construct, value: number | undefined): number | undefined {
  if (value !== undefined && !Token.isUnresolved(value) && (!Number.isInteger(value) || value < 1)) {
    throw new Error(`${scope.node.path}: reservedConcurrentExecutions is ${value}; reserve a whole number from 1, or leave it unset `
      + 'to reserve none (0 would stop the handlers from ever running, as in Lambda).');
  }
  return value;
}
