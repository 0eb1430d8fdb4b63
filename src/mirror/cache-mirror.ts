import { Duration, Names, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { MAX_DELIVERIES, MirrorEnv, MirrorEvent, MirrorMetric, MirrorUpstreamConfig } from './contract';
import { MirrorFunction } from './mirror-function';
import { BundledHandler, REDRIVE_MAX_CONCURRENCY, cacheMetric } from '../private/bundled-handler';
import { IPullThroughCacheRules } from '../rules/i-pull-through-cache-rules';
import { DEFAULT_METRIC_NAMESPACE } from '../scanning/contract';
import { UpstreamRegistry, UpstreamRegistryType } from '../upstream-registry';

/** What the copy function does in the cache's repositories: ECR's registry API, push and pull, and create on push. */
const COPY_ACTIONS = [
  'ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer',
  'ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage',
  // the first push to a repository creates it, from the prefix's CREATE_ON_PUSH repository creation template
  'ecr:CreateRepository',
];

/** Lambda's limit, and the copy function's timeout: a copy that needs longer is handed to a new invocation. */
const COPY_TIMEOUT = Duration.minutes(15);

/** How the mirror's copy function runs. */
export interface CacheCopierOptions {
  /**
   * How long the copy function's logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Copies that run at once (each copies one image): the work queue's event source mapping invokes the copy
   * function at most this many times at once (its `MaximumConcurrency`, 2 to 1000).
   * @default 2
   */
  readonly maxConcurrentCopies?: number;

  /**
   * Reserve Lambda concurrency for the copy function (`reservedConcurrentExecutions`): `maxConcurrentCopies`
   * plus three, two for the dead-letter queue's redrive pollers and one for the scheduled runs that list the tags.
   * Then a copy is never throttled: a throttled SQS invocation would use up a delivery of the image and leave it
   * invisible for 90 minutes. Set `false` where the account cannot spare them (Lambda keeps 100 executions
   * unreserved, or the whole quota when it is lower, so a new account whose quota is 10 can reserve none:
   * https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html): the function then shares the
   * account's unreserved pool.
   * @default true
   */
  readonly reserveConcurrency?: boolean;

  /**
   * Memory of the copy function, in MB. Lambda gives network and CPU in proportion to it; the copy streams, so
   * memory use stays flat whatever the image size (docs/BENCHMARKS.md).
   * @default 1024
   */
  readonly memorySize?: number;

  /**
   * The CloudWatch namespace of the mirror's metrics.
   * @default 'EcrPullThroughCache'
   */
  readonly metricNamespace?: string;
}

/**
 * What `PullThroughCacheRules` gives its copier: the copied upstreams and the wiring they share with the cache
 * (not public: a copier works only beside the cache's CREATE_ON_PUSH repository creation templates).
 */
interface CacheCopierProps extends CacheCopierOptions {
  /** The cache that copies: its metrics' `Cache` dimension, and what its monitoring finds the copier by. */
  readonly cache: IPullThroughCacheRules;

  /** The upstreams to copy, each made by `UpstreamRegistry.copied`. */
  readonly upstreams: UpstreamRegistry[];

  /**
   * Whether the repository creation templates of the mirror prefixes add tags, so the copy function also needs
   * `ecr:TagResource` when its first push creates a repository.
   * @default false
   */
  readonly tagsRepositories?: boolean;
}

/**
 * Copies named images from registries ECR cannot pull through into the cache, on a schedule.
 *
 * ```text
 *  schedule (per upstream) --> copy function: list tags, queue one message per image --> work queue
 *  work queue --> copy function: upstream --(OCI API, streamed)--> ECR registry endpoint (token of GetAuthorizationToken)
 *                   out of time: the rest of the image --> work queue (a new invocation resumes it)
 *                   failed image: metric ImageCopyFailures{Reason} + dead-letter queue (with the reason) --(redrive)--+
 * ```
 *
 * `PullThroughCacheRules` creates one for its `UpstreamRegistry.copied` upstreams (its `copier` member), and only
 * it can: a copier pushes into repositories that ECR creates on the first push from the cache's CREATE_ON_PUSH
 * repository creation templates, without which every first push would fail.
 * Repositories are created by the first push, from the prefix's repository creation template
 * (`AppliedFor: CREATE_ON_PUSH`), so they get the cache's lifecycle and encryption.
 *
 * Experimental: the copier has never pushed to a live ECR registry (tested against a CNCF Distribution registry on loopback).
 *
 * @experimental
 */
export class CacheCopier extends Construct {
  /**
   * The copier of a cache's copied upstreams. Called by `PullThroughCacheRules` only.
   * @internal
   */
  public static _create(scope: Construct, id: string, props: CacheCopierProps): CacheCopier {
    return new CacheCopier(scope, id, props);
  }

  /** The cache this copies into. */
  public readonly cache: IPullThroughCacheRules;
  /** The copy function. Invoke it with `{"detail-type":"Scheduled Event","source":"aws.events","detail":{"prefix":"<prefix>"}}` to copy now. */
  public readonly copyFunction: lambda.IFunction;
  /** One message per image to copy; consumed by the copy function one at a time. */
  public readonly workQueue: sqs.IQueue;
  /** Images that could not be copied, each with its reason (and failed scheduled runs), kept 14 days. */
  public readonly deadLetterQueue: sqs.IQueue;
  /** The disabled mapping that redrives `deadLetterQueue` into the copy function when enabled. */
  public readonly redriveMapping: lambda.IEventSourceMapping;
  /** One schedule per upstream, in the order of `upstreams`. */
  public readonly schedules: events.IRule[];
  /** The copy function (for alarms on errors and throttles). */
  public readonly functions: lambda.IFunction[];
  /** The dead-letter queue (for alarms on its depth). */
  public readonly deadLetterQueues: sqs.IQueue[];
  /** The `Cache` dimension value of the mirror's metrics. */
  public readonly cacheName: string;
  /** The namespace of the mirror's metrics. */
  public readonly metricNamespace: string;

  private constructor(scope: Construct, id: string, props: CacheCopierProps) {
    super(scope, id);
    const upstreams = props?.upstreams;
    if (!Array.isArray(upstreams) || upstreams.length === 0) {
      throw new Error(`${this.node.path}: upstreams is empty. Give the upstreams to copy, made by UpstreamRegistry.copied().`);
    }
    for (const upstream of upstreams) {
      if (!(upstream instanceof UpstreamRegistry) || upstream.registryType !== UpstreamRegistryType.COPIED || !upstream._mirror) {
        throw new Error(`${this.node.path}: ${String(upstream?.registryUrl)} is not a copied upstream; make copied upstreams with UpstreamRegistry.copied().`);
      }
    }
    this.cache = props.cache;
    this.cacheName = Names.uniqueId(props.cache);
    this.metricNamespace = props.metricNamespace ?? DEFAULT_METRIC_NAMESPACE;
    const stack = Stack.of(this);
    const prefixes = upstreams.map(u => u.ecrRepositoryPrefix);
    const repositoryArns = prefixes.map(p => stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: `${p}/*` }));

    const upstreamScopes = upstreams.map(u => new Construct(this, u.ecrRepositoryPrefix.replace(/\//g, '+')));
    const secrets = upstreams.map((u, i) => u.credentials?.bind(upstreamScopes[i], u.ecrRepositoryPrefix).secret);
    const config: MirrorUpstreamConfig[] = upstreams.map((u, i) => ({
      prefix: u.ecrRepositoryPrefix,
      registry: u.registryUrl,
      images: u._mirror!.images,
      maxTagsPerPattern: u._mirror!.maxTagsPerPattern,
      secretArn: secrets[i]?.secretArn,
    }));

    const copies = props.maxConcurrentCopies ?? 2;
    if (!Number.isInteger(copies) || copies < 2 || copies > 1000) {
      throw new Error(`${this.node.path}: maxConcurrentCopies is ${copies}; give the copies that run at once as a whole number from 2 `
        + 'to 1000 (the range of an SQS event source mapping\'s MaximumConcurrency). To share the account\'s unreserved '
        + 'concurrency instead of reserving some, set reserveConcurrency: false.');
    }
    const reserve = props.reserveConcurrency ?? true;

    const copier = new BundledHandler(this, 'Copier', {
      code: MirrorFunction,
      description: 'Copies images from registries ECR cannot pull through into the pull through cache',
      timeout: COPY_TIMEOUT,
      memorySize: props.memorySize ?? 1024,
      environment: {
        [MirrorEnv.UPSTREAMS]: stack.toJsonString(config),
        [MirrorEnv.CACHE_NAME]: this.cacheName,
        [MirrorEnv.METRIC_NAMESPACE]: this.metricNamespace,
      },
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      // the copies, the dead-letter queue's redrive pollers and one for the scheduled runs, so no poller meets a throttle
      reservedConcurrency: reserve ? copies + REDRIVE_MAX_CONCURRENCY + 1 : undefined,
      statements: [
        new iam.PolicyStatement({ actions: [...COPY_ACTIONS, ...(props.tagsRepositories ? ['ecr:TagResource'] : [])], resources: repositoryArns }),
        // GetAuthorizationToken has no resource type: AWS requires "*"
        new iam.PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }),
      ],
    });
    copier.acknowledgeWildcards(repositoryArns, 'The mirror pushes into repositories it creates on demand under each mirror prefix, '
      + 'so the copy function covers <prefix>/* of each mirror prefix only');
    copier.acknowledgeWildcards(['*'], 'ecr:GetAuthorizationToken has no resource type; AWS requires "*" for it, and it is the only action granted on "*"');
    secrets.forEach(secret => secret?.grantRead(copier.role));

    const workQueue = new sqs.Queue(this, 'WorkQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(4),
      // a message is invisible for six function timeouts while an invocation works on it (AWS's advice for event source mappings)
      visibilityTimeout: Duration.seconds(COPY_TIMEOUT.toSeconds() * 6),
      // a backstop for invocations that die (a timeout): the handler itself sends failures with their reason sooner
      deadLetterQueue: { queue: copier.deadLetterQueue, maxReceiveCount: MAX_DELIVERIES + 2 },
    });
    workQueue.grantSendMessages(copier.role);
    copier.deadLetterQueue.grantSendMessages(copier.role);
    new lambda.EventSourceMapping(this, 'WorkQueueMapping', {
      target: copier.function,
      eventSourceArn: workQueue.queueArn,
      batchSize: 1, // one image per invocation: each gets the whole 15 minutes
      reportBatchItemFailures: true,
      // pollers start at five batches at once: without a cap at the reserved copies, the surplus is throttled, and a
      // throttled receive counts as a delivery and hides the image for a visibility timeout
      maxConcurrency: copies,
    });
    workQueue.grantConsumeMessages(copier.role);
    copier.function.addEnvironment(MirrorEnv.WORK_QUEUE_URL, workQueue.queueUrl);
    copier.function.addEnvironment(MirrorEnv.DEAD_LETTER_QUEUE_URL, copier.deadLetterQueue.queueUrl);
    copier.function.addEnvironment(MirrorEnv.DEAD_LETTER_QUEUE_ARN, copier.deadLetterQueue.queueArn);

    this.schedules = upstreams.map((u, i) => new events.Rule(upstreamScopes[i], 'Schedule', {
      description: `Copies the mirrored images of ${u.registryUrl} into the cache prefix '${u.ecrRepositoryPrefix}'`,
      schedule: u._mirror!.schedule ?? events.Schedule.rate(Duration.hours(6)),
      targets: [copier.target(events.RuleTargetInput.fromObject({
        'id': events.EventField.eventId,
        'detail-type': MirrorEvent.SCHEDULED,
        'source': 'aws.events',
        'time': events.EventField.time,
        'detail': { prefix: u.ecrRepositoryPrefix },
      }))],
    }));

    this.copyFunction = copier.function;
    this.workQueue = workQueue;
    this.deadLetterQueue = copier.deadLetterQueue;
    this.redriveMapping = copier.redriveMapping;
    this.functions = [copier.function];
    this.deadLetterQueues = [copier.deadLetterQueue];
  }

  /** Images copied (their tag moved upstream, or was new). @default - sum over 5 minutes */
  public metricImagesCopied(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(MirrorMetric.COPIED, props);
  }

  /** Images checked and found unchanged upstream. @default - sum over 5 minutes */
  public metricImagesUnchanged(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(MirrorMetric.UNCHANGED, props);
  }

  /** Images that could not be copied (each is in the dead-letter queue with its reason). @default - sum over 5 minutes */
  public metricCopyFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(MirrorMetric.FAILED, props);
  }

  /** Bytes streamed into the cache. @default - sum over 5 minutes */
  public metricBytesCopied(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(MirrorMetric.BYTES, props);
  }

  /** A metric of the mirror's namespace for the whole cache (dimension `Cache`). @default - sum over 5 minutes */
  public metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return cacheMetric(this.metricNamespace, this.cacheName, metricName, props);
  }
}
