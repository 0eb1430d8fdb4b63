import { Duration, Names, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DEFAULT_METRIC_NAMESPACE, ScanEnv, ScanMetric } from './contract';
import { FindingsReportFunction } from './findings-report-function';
import { ScanTriggerFunction } from './scan-trigger-function';
import { BundledHandler, cacheMetric, checkedReservation } from '../private/bundled-handler';
import { repositoryNameFilter, syncEventPattern } from '../private/cache-event-patterns';
import { LogicalIdKind, followRegistry } from '../private/logical-ids';
import { featureCache } from '../rules/feature-cache';
import { IPullThroughCacheRules } from '../rules/i-pull-through-cache-rules';

/** Severity of a vulnerability finding, as ECR and Amazon Inspector rank them. */
export enum FindingSeverity {
  CRITICAL = 'CRITICAL',
  HIGH = 'HIGH',
  MEDIUM = 'MEDIUM',
  LOW = 'LOW',
  INFORMATIONAL = 'INFORMATIONAL',
}

/**
 * A registry scanning configuration for the cache's repositories (`AWS::ECR::RegistryScanningConfiguration`).
 *
 * A registry has exactly one scanning configuration: this one replaces whatever the registry had (the rules
 * for your other repositories included), and deleting it (removing the option, or the stack) can switch off
 * Amazon Inspector scanning of the registry.
 */
export enum RegistryScanning {
  /** Basic scanning on push for the cache prefixes. The scan trigger still scans what ECR does not. */
  BASIC_SCAN_ON_PUSH = 'BASIC_SCAN_ON_PUSH',
  /** Enhanced scanning (Amazon Inspector, billed per image) on push. Manual scans are not possible, so there is no scan trigger. */
  ENHANCED_SCAN_ON_PUSH = 'ENHANCED_SCAN_ON_PUSH',
  /** Enhanced scanning, continuously re-evaluated as new vulnerabilities are published. No scan trigger. */
  ENHANCED_CONTINUOUS_SCAN = 'ENHANCED_CONTINUOUS_SCAN',
}

/** How the images of the cache are scanned and their findings reported. */
export interface CacheScanningOptions {
  /**
   * Start a basic ECR scan of every image the cache imports or that is pushed under its prefixes.
   * Must be off when the registry uses enhanced scanning (ECR refuses manual scans there).
   * @default - true, unless `registryScanning` is enhanced
   */
  readonly scanOnCache?: boolean;

  /**
   * Also set the registry's scanning configuration for the cache's prefixes. A registry has only one: see
   * `RegistryScanning` before you set this.
   * @default - the registry's scanning configuration is left as it is
   */
  readonly registryScanning?: RegistryScanning;

  /**
   * Report scans with findings at or above this severity to the findings topic.
   * @default FindingSeverity.HIGH
   */
  readonly reportSeverity?: FindingSeverity;

  /**
   * The SNS topic findings reports are published to. Subscribe your team to it.
   * @default - a topic is created, encrypted with the AWS managed key for SNS
   */
  readonly findingsTopic?: sns.ITopic;

  /**
   * How long the handlers' logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Concurrent executions reserved for each handler (Lambda's `reservedConcurrentExecutions`, same meaning).
   * Nothing is reserved by default, so the cache deploys in a new account (concurrency quota 10, all of it
   * kept unreserved by Lambda). Reserve only to cap a handler in a busy account; throttled events wait in
   * Lambda's queue up to 6 hours, then in the dead-letter queue, and a throttled redrive costs a dead-letter
   * message none of its attempts.
   * @default - none reserved: the handlers share the account's unreserved pool
   */
  readonly reservedConcurrentExecutions?: number;

  /**
   * The CloudWatch namespace of the handlers' metrics.
   * @default 'EcrPullThroughCache'
   */
  readonly metricNamespace?: string;
}

/** Properties of `CacheScanning`. */
export interface CacheScanningProps extends CacheScanningOptions {
  /**
   * The cache whose images are scanned: a `PullThroughCacheRules` (which makes one itself, unless `enableScanning`
   * is false), or one imported with `PullThroughCacheRules.fromPullThroughCacheRulesAttributes`. Its prefixes decide
   * what the rules match and what the handlers may read; it must be in this stack's account and Region, where ECR
   * sends its events.
   */
  readonly cache: IPullThroughCacheRules;
}

/**
 * Scans every image that enters a pull through cache and reports its findings.
 *
 * ```text
 *  ECR Pull Through Cache Action (SUCCESS) --+                                  +--> StartImageScan (basic, by digest)
 *  ECR Image Action (PUSH, SUCCESS)        --+--> rules --> scan trigger  ------+
 *  ECR Image Scan (all but IN_PROGRESS)    --+                                  +--> DLQ (after retries) --(redrive)--+
 *  Inspector2 Scan (INITIAL_SCAN_COMPLETE) --+--> rules --> findings reporter --> EMF metrics, then SNS report
 *  Inspector2 Finding (ACTIVE, ECR image)  --+
 * ```
 *
 * A basic scan that ends FAILED (images FROM scratch, distroless images: `UnsupportedImageError`) is counted
 * in `ImagesNotScanned` per prefix and reason; it is not a vulnerability-free image.
 *
 * `PullThroughCacheRules` creates one for its prefixes (its `scanning` member). Create one yourself for a cache
 * made with `enableScanning: false`, or imported from another app: `new CacheScanning(this, 'Scanning', { cache })`.
 */
export class CacheScanning extends Construct {
  /** The cache whose images this scans. */
  public readonly cache: IPullThroughCacheRules;

  /** The scan trigger, when `scanOnCache` is on. */
  public readonly scanFunction?: lambda.IFunction;
  /** The scan trigger's dead-letter queue: events whose scan could not be started, kept 14 days. */
  public readonly scanDeadLetterQueue?: sqs.IQueue;
  /** The disabled mapping that redrives `scanDeadLetterQueue` into the scan trigger when enabled. */
  public readonly scanRedriveMapping?: lambda.IEventSourceMapping;
  /** The rule on `ECR Pull Through Cache Action` SUCCESS for the cache's prefixes. */
  public readonly cacheSyncRule?: events.IRule;
  /** The rule on `ECR Image Action` PUSH SUCCESS under the cache's prefixes. */
  public readonly imagePushRule?: events.IRule;

  /** The findings reporter. */
  public readonly reportFunction: lambda.IFunction;
  /** The findings reporter's dead-letter queue. */
  public readonly reportDeadLetterQueue: sqs.IQueue;
  /** The disabled mapping that redrives `reportDeadLetterQueue` into the reporter when enabled. */
  public readonly reportRedriveMapping: lambda.IEventSourceMapping;
  /** The rule on `ECR Image Scan` (every status but IN_PROGRESS: COMPLETE, FAILED, ...) under the cache's prefixes. */
  public readonly scanCompletedRule: events.IRule;
  /** The rule on `Inspector2 Finding` (ACTIVE findings of ECR images) under the cache's prefixes: new CVEs of continuous scanning. */
  public readonly inspectorFindingRule: events.IRule;
  /** The rule on `Inspector2 Scan` INITIAL_SCAN_COMPLETE under the cache's prefixes. */
  public readonly inspectorScanRule: events.IRule;

  /** Where findings reports are published. */
  public readonly findingsTopic: sns.ITopic;
  /** The registry scanning configuration, when `registryScanning` is set. */
  public readonly registryScanningConfiguration?: ecr.CfnRegistryScanningConfiguration;

  /** Every handler of this construct (for alarms on errors and throttles). */
  public readonly functions: lambda.IFunction[];
  /** Every dead-letter queue of this construct (for alarms on their depth). */
  public readonly deadLetterQueues: sqs.IQueue[];

  /** The `Cache` dimension value of this construct's metrics. */
  public readonly cacheName: string;
  /** The namespace of this construct's metrics. */
  public readonly metricNamespace: string;

  constructor(scope: Construct, id: string, props: CacheScanningProps) {
    super(scope, id);
    const cache = this.cache = featureCache(this, id, props?.cache, 'CacheScanning', 'scan');
    const prefixes = validatePrefixes(this, cache);
    const enhanced = props.registryScanning === RegistryScanning.ENHANCED_SCAN_ON_PUSH
      || props.registryScanning === RegistryScanning.ENHANCED_CONTINUOUS_SCAN;
    if (enhanced && props.scanOnCache === true) {
      throw new Error(`${this.node.path}: scanOnCache is true, but registryScanning is ${props.registryScanning}: ECR does not `
        + 'start manual scans in a registry with enhanced scanning (Amazon Inspector scans on push). Drop scanOnCache.');
    }
    const scanOnCache = props.scanOnCache ?? !enhanced;
    this.cacheName = Names.uniqueId(cache);
    this.metricNamespace = props.metricNamespace ?? DEFAULT_METRIC_NAMESPACE;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const reservedConcurrency = checkedReservation(this, props.reservedConcurrentExecutions);
    const stack = Stack.of(this);
    const repositoryArns = cache.cacheRepositoryArns();
    const common = {
      [ScanEnv.PREFIXES]: JSON.stringify(prefixes), [ScanEnv.CACHE_NAME]: this.cacheName, [ScanEnv.METRIC_NAMESPACE]: this.metricNamespace,
    };
    const wildcardReason = 'Cached repositories are created on demand under each cache prefix, so the handler covers <prefix>/* of each prefix only';
    const repositoryNames = repositoryNameFilter(prefixes);
    const functions: lambda.IFunction[] = [];
    const deadLetterQueues: sqs.IQueue[] = [];

    if (scanOnCache) {
      const trigger = new BundledHandler(this, 'ScanTrigger', {
        code: ScanTriggerFunction,
        description: 'Starts an ECR image scan of every image the pull through cache imports',
        timeout: Duration.seconds(60),
        environment: common,
        logRetention,
        reservedConcurrency,
        statements: [new iam.PolicyStatement({
          // BatchGetImage reads a multi-architecture image's index; DescribeImageScanFindings tells "already scanned" from the daily quota
          actions: ['ecr:StartImageScan', 'ecr:DescribeImageScanFindings', 'ecr:BatchGetImage'],
          resources: repositoryArns,
        })],
      });
      trigger.acknowledgeWildcards(repositoryArns, wildcardReason);
      const target = trigger.target();
      this.cacheSyncRule = new events.Rule(this, 'CacheSyncRule', {
        description: 'Images the pull through cache imported: scan them',
        eventPattern: syncEventPattern(stack.account, prefixes, ['SUCCESS']),
        targets: [target],
      });
      this.imagePushRule = new events.Rule(this, 'ImagePushRule', {
        description: 'Images pushed under the pull through cache prefixes: scan them',
        eventPattern: {
          source: ['aws.ecr'],
          detailType: ['ECR Image Action'],
          account: [stack.account],
          detail: { 'action-type': ['PUSH'], 'result': ['SUCCESS'], ...repositoryNames },
        },
        targets: [target],
      });
      this.scanFunction = trigger.function;
      this.scanDeadLetterQueue = trigger.deadLetterQueue;
      this.scanRedriveMapping = trigger.redriveMapping;
      functions.push(trigger.function);
      deadLetterQueues.push(trigger.deadLetterQueue);
    }

    this.findingsTopic = props.findingsTopic ?? new sns.Topic(this, 'FindingsTopic', {
      displayName: 'ECR pull through cache: image scan findings',
      enforceSSL: true,
      masterKey: kms.Alias.fromAliasName(this, 'AwsManagedSnsKey', 'alias/aws/sns'),
    });
    const reporter = new BundledHandler(this, 'FindingsReporter', {
      code: FindingsReportFunction,
      description: 'Reports image scan findings of the pull through cache to SNS and as metrics',
      timeout: Duration.seconds(60),
      environment: {
        ...common,
        [ScanEnv.TOPIC_ARN]: this.findingsTopic.topicArn,
        [ScanEnv.REPORT_SEVERITY]: props.reportSeverity ?? FindingSeverity.HIGH,
      },
      logRetention,
      reservedConcurrency,
      statements: [
        new iam.PolicyStatement({ actions: ['ecr:DescribeImageScanFindings'], resources: repositoryArns }),
        // Under enhanced scanning, DescribeImageScanFindings reads Amazon Inspector's findings, which needs
        // inspector2:ListFindings; it has no resource type, so AWS requires "*".
        new iam.PolicyStatement({ actions: ['inspector2:ListFindings'], resources: ['*'] }),
      ],
    });
    reporter.acknowledgeWildcards(repositoryArns, wildcardReason);
    reporter.acknowledgeWildcards(['*'], 'inspector2:ListFindings has no resource type: AWS requires "*"; the reporter reads '
      + 'Inspector findings only through ecr:DescribeImageScanFindings on the cache repositories');
    this.findingsTopic.grantPublish(reporter.role);
    const reportTarget = reporter.target();
    this.scanCompletedRule = new events.Rule(this, 'ScanCompletedRule', {
      description: 'Finished basic scans of cached images (COMPLETE, FAILED, ...): report findings, count images not scanned',
      eventPattern: {
        source: ['aws.ecr'],
        detailType: ['ECR Image Scan'],
        account: [stack.account],
        // FAILED is how basic scanning answers an image it cannot scan: it must be counted, not missed
        detail: { 'scan-status': [{ 'anything-but': ['IN_PROGRESS'] }], ...repositoryNames },
      },
      targets: [reportTarget],
    });
    // Inspector names the repository by its ARN in the documented event (image-scanning-enhanced-events.html);
    // plain names are matched too, so either form reaches the reporter, which accepts both.
    const arnPrefix = stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: '' });
    this.inspectorScanRule = new events.Rule(this, 'InspectorScanRule', {
      description: 'Completed enhanced (Amazon Inspector) scans of cached images: report their findings',
      eventPattern: {
        source: ['aws.inspector2'],
        detailType: ['Inspector2 Scan'],
        account: [stack.account],
        detail: { 'scan-status': ['INITIAL_SCAN_COMPLETE'], ...repositoryNameFilter(prefixes, arnPrefix) },
      },
      targets: [reportTarget],
    });
    // Continuous enhanced scanning reports a vulnerability found after the initial scan only as a finding
    // (https://docs.aws.amazon.com/inspector/latest/user/eventbridge-integration.html); its image is in
    // detail.resources[].details.awsEcrContainerImage, by plain repository name. Checked against that shape with
    // aws/event-ruler 1.8.1, EventBridge's matcher: see docs/BENCHMARKS.md, "Event patterns checked".
    this.inspectorFindingRule = new events.Rule(this, 'InspectorFindingRule', {
      description: 'New Amazon Inspector findings of cached images (continuous scanning): count and report them',
      eventPattern: {
        source: ['aws.inspector2'],
        detailType: ['Inspector2 Finding'],
        account: [stack.account],
        detail: {
          status: ['ACTIVE'],
          resources: {
            type: ['AWS_ECR_CONTAINER_IMAGE'],
            ...(prefixes.includes('ROOT') ? {} : { details: { awsEcrContainerImage: { repositoryName: prefixes.map(p => ({ prefix: `${p}/` })) } } }),
          },
        },
      },
      targets: [reportTarget],
    });
    this.reportFunction = reporter.function;
    this.reportDeadLetterQueue = reporter.deadLetterQueue;
    this.reportRedriveMapping = reporter.redriveMapping;
    functions.push(reporter.function);
    deadLetterQueues.push(reporter.deadLetterQueue);
    this.functions = functions;
    this.deadLetterQueues = deadLetterQueues;

    if (props.registryScanning) {
      this.registryScanningConfiguration = new ecr.CfnRegistryScanningConfiguration(this, 'RegistryScanning', {
        scanType: enhanced ? 'ENHANCED' : 'BASIC',
        rules: [{
          scanFrequency: props.registryScanning === RegistryScanning.ENHANCED_CONTINUOUS_SCAN ? 'CONTINUOUS_SCAN' : 'SCAN_ON_PUSH',
          repositoryFilters: prefixes.map(p => ({ filter: scanFilterFor(this, p), filterType: 'WILDCARD' })),
        }],
      });
      // one per registry: a rename must not create a second copy whose old one's delete resets scanning (private/logical-ids.ts)
      followRegistry(this.registryScanningConfiguration, LogicalIdKind.REGISTRY_SCANNING, 'scanning configuration');
    }
  }

  /** Scans started by the scan trigger, for the whole cache. @default - sum over 5 minutes */
  public metricScansStarted(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(ScanMetric.STARTED, props);
  }

  /** Images not scanned on purpose (already scanned in 24 hours, unsupported, gone). @default - sum over 5 minutes */
  public metricScansSkipped(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(ScanMetric.SKIPPED, props);
  }

  /**
   * Events whose scan failed for good, once each: counted on the attempt after which the event is given up
   * (a redriven event's 5th real failure), never per attempt. An event that failed Lambda's attempts and waits
   * in the dead-letter queue is not in it yet: `metricDeadLetterMessages` (monitoring) counts those, and
   * Lambda's `Errors` count attempts. @default - sum over 5 minutes
   */
  public metricScanFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(ScanMetric.FAILED, props);
  }

  /** Completed scans the reporter read. @default - sum over 5 minutes */
  public metricScansReported(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(ScanMetric.REPORTED, props);
  }

  /**
   * Images the scanner could not scan (basic scanning's FAILED, mostly `UnsupportedImageError`), for the
   * whole cache; dimensions `Prefix` and `Reason` split it. @default - sum over 5 minutes
   */
  public metricImagesNotScanned(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(ScanMetric.NOT_SCANNED, props);
  }

  /** Findings reports SNS refused (their metrics were written). @default - sum over 5 minutes */
  public metricReportsNotPublished(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(ScanMetric.REPORTS_NOT_PUBLISHED, props);
  }

  /** Findings of completed scans at one severity. @default - sum over 5 minutes */
  public metricFindings(severity: FindingSeverity, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(ScanMetric.FINDINGS, { ...props, dimensionsMap: { Cache: this.cacheName, Severity: severity, ...props?.dimensionsMap } });
  }

  /** A metric of this construct's namespace for the whole cache (dimension `Cache`). @default - sum over 5 minutes */
  public metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return cacheMetric(this.metricNamespace, this.cacheName, metricName, props);
  }
}

function validatePrefixes(scope: Construct, cache: IPullThroughCacheRules): string[] {
  const prefixes = cache.ecrRepositoryPrefixes;
  for (const prefix of prefixes) {
    if (Token.isUnresolved(prefix)) {
      throw new Error(`${scope.node.path}: the prefixes of the cache ${cache.node.path} must be known at synth time (they go into event `
        + 'patterns); one is a token. Write the prefixes out.');
    }
  }
  if (prefixes.includes('ROOT') && prefixes.length > 1) {
    throw new Error(`${scope.node.path}: the cache ${cache.node.path} has the prefix ROOT (every repository) and ${prefixes.length - 1} more; `
      + 'ROOT already covers them. Keep ROOT alone, or drop it.');
  }
  return [...new Set(prefixes.map(p => p.replace(/\/$/, '')))];
}

/** A registry scanning WILDCARD filter for a prefix, checked against the CloudFormation pattern. */
function scanFilterFor(scope: Construct, prefix: string): string {
  const filter = prefix === 'ROOT' ? '*' : `${prefix}/*`;
  if (!/^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$/.test(filter)) {
    throw new Error(`${scope.node.path}: the cache prefix '${prefix}' cannot be written as a registry scanning filter ('${filter}' `
      + 'does not match ECR\'s filter pattern, which allows one separator between letters or digits). Rename the prefix, or leave registryScanning unset.');
  }
  return filter;
}
