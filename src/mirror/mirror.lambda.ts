/**
 * The mirror's copy handler: copies the images a user named from a registry ECR cannot pull through into the
 * cache, through the OCI distribution API on both sides (the upstream's, and ECR's registry endpoint with the
 * token of `GetAuthorizationToken`).
 *
 * Invoked by:
 * - a schedule (EventBridge, `Scheduled Event` with `detail.prefix`), or by hand with the same event: lists the
 *   upstream's images (a tag pattern becomes its highest matching tags) and queues one work message per image;
 * - the work queue (one `Mirror Image` message per invocation): copies that image. Out of time before a blob, it
 *   queues the rest of the image for a new invocation (what is stored stays stored); a blob too large for any
 *   one invocation fails with `TooLarge`;
 * - the dead-letter queue's redrive mapping, when a user enables it: each failed image is tried again.
 *
 * Every image that cannot be copied is counted (`ImageCopyFailures`, dimension `Reason`), logged with the error,
 * and sent to the dead-letter queue with its reason; the other images go on. Transient failures are retried
 * by the copy, then by the queue (up to `MAX_DELIVERIES` deliveries) before they count as failures.
 */
import { randomUUID } from 'crypto';
import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient, SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import {
  MAX_DELIVERIES, MAX_RESUMES, MIRROR_SOURCE, MirrorEnv, MirrorEvent, MirrorImageDetail, MirrorMetric, MirrorUploadDetail, MirrorUpstreamConfig,
} from './contract';
import { CopyError, FailureReason, ImageCopier, OutOfTime, selectTags } from './copy';
import { RegistryClient, RegistryCredentials, RegistryError } from './oci-client';
import { parseImageSpec } from '../image-spec';
import { awsErrorInfo } from '../private/handlers/aws-errors';
import { BatchResult, requiredEnv } from '../private/handlers/dispatch';
import { CloudEvent, QueuedEvent, openEnvelope } from '../private/handlers/envelope';
import { log } from '../private/handlers/log';
import { putMetrics } from '../private/handlers/metrics';
import { retryLater } from '../private/handlers/redrive';
import { sdkClientConfig } from '../private/handlers/sdk-config';

/** What the Lambda runtime tells the handler about its time. */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/** Time kept back from the deadline: the last blob's commit, the hand-over message, the log lines. */
const SAFETY_MARGIN_MS = 30_000;

/** The registry the copy pushes to, with its credentials. */
export type DestinationFactory = () => Promise<RegistryClient>;

let ecr: ECRClient | undefined;
let secrets: SecretsManagerClient | undefined;
let sqs: SQSClient | undefined;
let destination: { client: RegistryClient; renewAt: number } | undefined;
let destinationFactory: DestinationFactory = () => ecrDestination((ecr ??= new ECRClient(sdkClientConfig())));

/**
 * ECR's registry endpoint, with the token of `GetAuthorizationToken` (valid 12 hours) as a Basic header: the
 * same OCI API as any registry, so the copy has one code path.
 */
export async function ecrDestination(client: ECRClient): Promise<RegistryClient> {
  const answer = await client.send(new GetAuthorizationTokenCommand({}));
  const data = answer.authorizationData?.[0];
  if (!data?.authorizationToken || !data.proxyEndpoint) {
    throw new Error('GetAuthorizationToken returned no token or endpoint');
  }
  return new RegistryClient({ url: data.proxyEndpoint, authorization: `Basic ${data.authorizationToken}` });
}

/** Tests only: push somewhere else than ECR (a registry on loopback), and forget cached clients. */
export function useDestination(factory: DestinationFactory | undefined): void {
  destinationFactory = factory ?? (() => ecrDestination((ecr ??= new ECRClient(sdkClientConfig()))));
  destination = undefined;
  ecr = undefined;
  secrets = undefined;
  sqs = undefined;
}

async function destinationClient(): Promise<RegistryClient> {
  if (!destination || destination.renewAt < Date.now()) {
    // ECR tokens last 12 hours; a warm function renews its token every hour
    destination = { client: await destinationFactory(), renewAt: Date.now() + 3600_000 };
  }
  return destination.client;
}

interface Settings {
  readonly upstreams: MirrorUpstreamConfig[];
  readonly workQueueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly deadLetterQueueArn: string;
  readonly cache: string;
  readonly namespace: string;
}

function settings(): Settings {
  return {
    upstreams: JSON.parse(requiredEnv(MirrorEnv.UPSTREAMS)),
    workQueueUrl: requiredEnv(MirrorEnv.WORK_QUEUE_URL),
    deadLetterQueueUrl: requiredEnv(MirrorEnv.DEAD_LETTER_QUEUE_URL),
    deadLetterQueueArn: requiredEnv(MirrorEnv.DEAD_LETTER_QUEUE_ARN),
    cache: requiredEnv(MirrorEnv.CACHE_NAME),
    namespace: requiredEnv(MirrorEnv.METRIC_NAMESPACE),
  };
}

function count(s: Settings, prefix: string, values: Record<string, number>, reason?: string, properties?: Record<string, unknown>): void {
  const dimensions: Record<string, string> = { Cache: s.cache, Prefix: prefix };
  const dimensionSets = [['Cache'], ['Cache', 'Prefix']];
  if (reason) {
    dimensions.Reason = reason;
    dimensionSets.push(['Cache', 'Reason']);
  }
  putMetrics(s.namespace, { values, dimensions, dimensionSets, properties });
}

function imageMessage(detail: MirrorImageDetail): string {
  return JSON.stringify({ 'id': randomUUID(), 'detail-type': MirrorEvent.IMAGE, 'source': MIRROR_SOURCE, 'time': new Date().toISOString(), detail });
}

/** The upstream's credentials from its secret (`{"username", "accessToken"}`), read once per invocation. */
async function credentialsOf(upstream: MirrorUpstreamConfig, cache: Map<string, RegistryCredentials | undefined>):
Promise<RegistryCredentials | undefined> {
  if (!upstream.secretArn) {
    return undefined;
  }
  if (!cache.has(upstream.secretArn)) {
    secrets ??= new SecretsManagerClient(sdkClientConfig());
    const value = await secrets.send(new GetSecretValueCommand({ SecretId: upstream.secretArn }));
    let parsed: { username?: unknown; accessToken?: unknown };
    try {
      parsed = JSON.parse(value.SecretString ?? '');
    } catch {
      throw new CopyError(`the secret ${upstream.secretArn} does not hold JSON`, FailureReason.UNAUTHORIZED, false);
    }
    if (parsed.username === 'REPLACE_ME') {
      throw new CopyError(`the secret ${upstream.secretArn} still holds its placeholder: put {"username": "...", "accessToken": "..."} in it`,
        FailureReason.CREDENTIALS_NOT_SET, false);
    }
    if (typeof parsed.username !== 'string' || typeof parsed.accessToken !== 'string') {
      throw new CopyError(`the secret ${upstream.secretArn} needs the keys username and accessToken`, FailureReason.UNAUTHORIZED, false);
    }
    cache.set(upstream.secretArn, { username: parsed.username, password: parsed.accessToken });
  }
  return cache.get(upstream.secretArn);
}

/** The upstream registry over HTTPS (a test may name an `http://` registry on loopback). */
function sourceClient(upstream: MirrorUpstreamConfig, credentials: RegistryCredentials | undefined): RegistryClient {
  const url = /^https?:\/\//.test(upstream.registry) ? upstream.registry : `https://${upstream.registry}`;
  return new RegistryClient({ url, credentials });
}

/** What the copy of one image came to, for the message it came in. */
type Disposition = 'done' | 'retry';

class Run {
  private readonly credentials = new Map<string, RegistryCredentials | undefined>();
  private readonly knownBlobs = new Map<string, string>();
  private bytesThisInvocation = 0;

  constructor(private readonly s: Settings, private readonly context: InvocationContext | undefined) {}

  private upstream(prefix: unknown): MirrorUpstreamConfig {
    const upstream = this.s.upstreams.find(u => u.prefix === prefix);
    if (!upstream) {
      throw new CopyError(`no mirrored upstream has the prefix '${String(prefix)}' (known: ${this.s.upstreams.map(u => u.prefix).join(', ')})`,
        FailureReason.INTERNAL, false);
    }
    return upstream;
  }

  /** A scheduled run: queue every image of the upstreams named (all of them when `detail.prefix` is absent). */
  public async plan(event: CloudEvent): Promise<void> {
    const prefix = event.detail.prefix;
    const upstreams = prefix === undefined ? this.s.upstreams : [this.upstream(prefix)];
    for (const upstream of upstreams) {
      const work: MirrorImageDetail[] = [];
      for (const image of upstream.images) {
        const spec = parseImageSpec(image);
        work.push(...await this.expand(upstream, spec.repository, spec.tag));
      }
      await this.queue(work);
      count(this.s, upstream.prefix, { [MirrorMetric.QUEUED]: work.length });
      log('INFO', `queued ${work.length} images of ${upstream.registry}`, { prefix: upstream.prefix, images: work.map(w => `${w.repository}:${w.tag}`) });
    }
  }

  /** The exact tags a spec stands for; a pattern that cannot be listed (or matches nothing) is recorded as a failure. */
  private async expand(upstream: MirrorUpstreamConfig, repository: string, tag: string): Promise<MirrorImageDetail[]> {
    if (!tag.includes('*')) {
      return [{ prefix: upstream.prefix, repository, tag }];
    }
    const detail = { prefix: upstream.prefix, repository, tag };
    try {
      const client = sourceClient(upstream, await credentialsOf(upstream, this.credentials));
      const tags = selectTags(await client.listTags(repository), tag, upstream.maxTagsPerPattern);
      if (tags.length === 0) {
        throw new CopyError(`no tag of ${repository} matches '${tag}'`, FailureReason.NO_MATCHING_TAG, false);
      }
      return tags.map(t => ({ prefix: upstream.prefix, repository, tag: t }));
    } catch (error) {
      await this.fail(detail, asCopyError(error));
      return [];
    }
  }

  private async queue(work: MirrorImageDetail[]): Promise<void> {
    sqs ??= new SQSClient(sdkClientConfig());
    for (let i = 0; i < work.length; i += 10) {
      const batch = work.slice(i, i + 10);
      const answer = await sqs.send(new SendMessageBatchCommand({
        QueueUrl: this.s.workQueueUrl,
        Entries: batch.map((detail, n) => ({ Id: String(n), MessageBody: imageMessage(detail) })),
      }));
      if (answer.Failed?.length) {
        throw new Error(`the work queue refused ${answer.Failed.length} messages: ${answer.Failed.map(f => `${f.Code} ${f.Message}`).join('; ')}`);
      }
    }
  }

  /** Copy one image; what became of it decides whether its message leaves the queue. */
  /**
   * Copy one image. `redriven` is the dead-letter queue record when the image comes from a redrive: its failures
   * then follow the shared give-up rule (`retryLater`: real attempts, never SQS's receive count, which throttled
   * receives raise too).
   */
  public async copy(detail: MirrorImageDetail, deliveries: number, redriven?: QueuedEvent): Promise<Disposition> {
    const fromDeadLetterQueue = redriven !== undefined;
    const { prefix, repository, tag } = detail;
    const context = { prefix, repository, tag, resumes: detail.resumes ?? 0, deliveries, fromDeadLetterQueue };
    try {
      const upstream = this.upstream(detail.prefix);
      if (detail.tag.includes('*')) {
        // a pattern that could not be listed, redriven from the dead-letter queue: list it again
        await this.queue(await this.expand(upstream, detail.repository, detail.tag));
        return 'done';
      }
      const copier = new ImageCopier(sourceClient(upstream, await credentialsOf(upstream, this.credentials)), await destinationClient(), {
        timeLeft: this.context ? () => this.context!.getRemainingTimeInMillis() - SAFETY_MARGIN_MS : undefined,
        freshInvocation: this.bytesThisInvocation === 0,
        knownBlobs: this.knownBlobs,
        onRetry: (what, attempt, error, waitMs) => log('WARN', 'retrying', { ...context, what, attempt, waitMs, error }),
        onNote: (message, details) => log('WARN', message, { ...context, ...details }),
        uploads: handedOverUploads(detail.uploads),
      });
      const destinationRepository = upstream.prefix === 'ROOT' ? detail.repository : `${upstream.prefix}/${detail.repository}`;
      const result = await copier.copy({ sourceRepository: detail.repository, destinationRepository, tag: detail.tag });
      this.bytesThisInvocation += result.bytesCopied;
      const copied = result.outcome === 'COPIED';
      count(this.s, detail.prefix, { [copied ? MirrorMetric.COPIED : MirrorMetric.UNCHANGED]: 1, [MirrorMetric.BYTES]: result.bytesCopied });
      log('INFO', copied ? 'image copied' : 'image unchanged', { ...context, destinationRepository, ...result });
      return 'done';
    } catch (error) {
      if (error instanceof OutOfTime) {
        return this.resume(detail, error, context);
      }
      const failure = asCopyError(error);
      if (redriven) {
        // already in the dead-letter queue: sent back with one more real attempt, or given up (EventsGivenUp) after MAX_REDRIVES
        count(this.s, detail.prefix, { [MirrorMetric.FAILED]: 1 }, failure.reason, context);
        return await retryLater(redriven, failure) === 'kept' ? 'retry' : 'done';
      }
      if (failure.retryable && deliveries < MAX_DELIVERIES) {
        log('WARN', 'copy failed; the message is delivered again later', { ...context, reason: failure.reason, error: failure });
        return 'retry';
      }
      await this.fail(detail, failure);
      return 'done';
    }
  }

  /** Out of time: the rest of the image goes to a new invocation (stored blobs are not copied again; handed-over uploads resume where they stopped). */
  private async resume(detail: MirrorImageDetail, stop: OutOfTime, context: Record<string, unknown>): Promise<Disposition> {
    const resumes = (detail.resumes ?? 0) + 1;
    if (resumes > MAX_RESUMES) {
      await this.fail(detail, new CopyError(`not finished after ${MAX_RESUMES} invocations: ${stop.message}`, FailureReason.TOO_MANY_RESUMES, false));
      return 'done';
    }
    sqs ??= new SQSClient(sdkClientConfig());
    const uploads = stop.uploads.map(u => ({ digest: u.digest, location: u.location, offset: u.offset }));
    const next = imageMessage({
      prefix: detail.prefix, repository: detail.repository, tag: detail.tag, resumes, ...(uploads.length ? { uploads } : {}),
    });
    await sqs.send(new SendMessageCommand({ QueueUrl: this.s.workQueueUrl, MessageBody: next }));
    count(this.s, detail.prefix, { [MirrorMetric.RESUMED]: 1, [MirrorMetric.BYTES]: stop.progress.bytesCopied });
    log('INFO', 'out of time: the rest of the image is handed to a new invocation', {
      ...context, ...stop.progress, stoppedAt: stop.message, openUploads: uploads.map(u => ({ digest: u.digest, offset: u.offset })),
    });
    return 'done';
  }

  /** Record a failed image: a metric with the reason, an ERROR line, and a dead-letter message a redrive can copy again. */
  private async fail(detail: MirrorImageDetail, failure: CopyError): Promise<void> {
    count(this.s, detail.prefix, { [MirrorMetric.FAILED]: 1 }, failure.reason, { repository: detail.repository, tag: detail.tag });
    log('ERROR', 'image not copied; it is in the dead-letter queue with the reason', {
      prefix: detail.prefix, repository: detail.repository, tag: detail.tag, reason: failure.reason, error: failure,
    });
    sqs ??= new SQSClient(sdkClientConfig());
    await sqs.send(new SendMessageCommand({
      QueueUrl: this.s.deadLetterQueueUrl,
      MessageBody: imageMessage({
        prefix: detail.prefix, repository: detail.repository, tag: detail.tag, reason: failure.reason, error: failure.message,
      }),
    }));
  }
}

/** The well-formed upload sessions of a hand-over message (a malformed entry is dropped: its blob starts from byte 0). */
function handedOverUploads(uploads: unknown): MirrorUploadDetail[] {
  return (Array.isArray(uploads) ? uploads : []).filter((u: any) => typeof u?.digest === 'string' && /^sha256:[a-f0-9]{64}$/.test(u.digest)
    && typeof u.location === 'string' && Number.isSafeInteger(u.offset) && u.offset > 0);
}

/** Any error as a `CopyError`: registry errors by what they mean, AWS and unknown errors as transient `Internal` ones. */
function asCopyError(error: unknown): CopyError {
  if (error instanceof CopyError) {
    return error;
  }
  if (error instanceof RegistryError) {
    const unauthorized = error.code === 'UNAUTHORIZED' || error.status === 401 || error.status === 403;
    const reason = unauthorized ? FailureReason.UNAUTHORIZED : FailureReason.UPSTREAM_UNAVAILABLE;
    return new CopyError(error.message, reason, error.retryable && !unauthorized);
  }
  const info = awsErrorInfo(error);
  return new CopyError(`${info.name}: ${info.message}`, FailureReason.INTERNAL, true);
}

export async function handler(input: unknown, context?: InvocationContext): Promise<BatchResult | void> {
  const envelope = openEnvelope(input);
  if (envelope.kind === 'invalid') {
    log('ERROR', 'invocation rejected', { reason: envelope.problem });
    throw new Error(`invocation rejected: ${envelope.problem}`);
  }
  const s = settings();
  const run = new Run(s, context);
  if (envelope.kind === 'event') {
    const event = envelope.event;
    if (event['detail-type'] === MirrorEvent.IMAGE) {
      // a hand-made invocation for one image: its failures are recorded like any other
      await run.copy(event.detail as unknown as MirrorImageDetail, MAX_DELIVERIES);
      return;
    }
    return run.plan(event);
  }
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (const record of envelope.records) {
    const fromDeadLetterQueue = record.queueArn === s.deadLetterQueueArn;
    try {
      if (!record.event) {
        throw new Error(record.problem);
      }
      if (record.event['detail-type'] === MirrorEvent.IMAGE) {
        const detail = record.event.detail as unknown as MirrorImageDetail;
        if (await run.copy(detail, record.receiveCount, fromDeadLetterQueue ? record : undefined) === 'retry') {
          batchItemFailures.push({ itemIdentifier: record.messageId });
        }
      } else {
        await run.plan(record.event); // a scheduled run that failed, redriven
      }
    } catch (error) {
      log('ERROR', 'message not processed; it stays in its queue', { messageId: record.messageId, receiveCount: record.receiveCount, error });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
}
