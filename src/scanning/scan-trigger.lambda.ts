/**
 * Scan trigger: starts a basic ECR scan of every image the cache imports.
 *
 * Invoked by two EventBridge rules (`ECR Pull Through Cache Action` SUCCESS, `ECR Image Action` PUSH
 * SUCCESS) for the cache's prefixes, and by the dead-letter queue's redrive mapping.
 *
 * - Scans by digest. ECR allows one scan per image per 24 hours: its `LimitExceededException` means the
 *   image is already scanned (a duplicate event, or a push and a pull-through event of one image), so a
 *   repeated event never starts a second scan. The same exception also means the registry's 100,000 scans a
 *   day are used up, so it is checked: an image with no scan on record is a failure, not a skip.
 * - A multi-architecture image (an image index or manifest list, which ECR cannot scan) is scanned through
 *   its platform images, each by digest; attestation manifests (platform unknown/unknown) are left out. A
 *   platform image not in the repository is counted as `PlatformNotCached`, not as gone.
 * - Permanent refusals (unsupported image type, archived, image or repository gone) are skipped and
 *   counted, never retried.
 * - Throttling and server errors are retried by the SDK with backoff and jitter; what still fails is
 *   thrown, retried by Lambda, then kept in the dead-letter queue with the original event.
 * - `ScanFailures` counts events, not attempts: an event is counted once, on the attempt after which it is
 *   given up (a redriven event's last real attempt, `Attempt.last`). Earlier attempts are logged as ERROR
 *   lines (and are Lambda `Errors`); an event waiting in the dead-letter queue is counted there (one message).
 */
import { BatchGetImageCommand, DescribeImageScanFindingsCommand, ECRClient, StartImageScanCommand } from '@aws-sdk/client-ecr';
import { ScanEnv, ScanMetric, SkipReason } from './contract';
import { eventImage } from './event-image';
import { awsErrorInfo } from '../private/handlers/aws-errors';
import { Attempt, BatchResult, cachePrefixOf, dispatch, requiredEnv } from '../private/handlers/dispatch';
import { CloudEvent } from '../private/handlers/envelope';
import { log } from '../private/handlers/log';
import { putMetrics } from '../private/handlers/metrics';
import { sdkClientConfig } from '../private/handlers/sdk-config';

const PULL_THROUGH_CACHE_ACTION = 'ECR Pull Through Cache Action';
const IMAGE_ACTION = 'ECR Image Action';

/** ECR error codes that mean "this image will never be scanned by asking again", with the skip reason. */
const PERMANENT: Record<string, string> = {
  UnsupportedImageTypeException: SkipReason.UNSUPPORTED_IMAGE,
  ImageArchivedException: SkipReason.ARCHIVED,
  ImageNotFoundException: SkipReason.GONE,
  RepositoryNotFoundException: SkipReason.GONE,
};


/** Media types of a multi-architecture image, whose platform images are what ECR scans. */
const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];
const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'];

let client: ECRClient | undefined;

/** What became of one image digest. */
type Outcome =
  | { readonly started: true }
  | { readonly started: false; readonly reason: string; readonly errorCode: string; readonly errorMessage: string };

/** Start a scan of one digest; a refusal that asking again cannot change is an outcome, anything else is thrown. */
async function startScan(ecr: ECRClient, repositoryName: string, imageDigest: string): Promise<Outcome> {
  try {
    await ecr.send(new StartImageScanCommand({ repositoryName, imageId: { imageDigest } }));
    return { started: true };
  } catch (error) {
    const info = awsErrorInfo(error);
    if (info.name === 'LimitExceededException' && await hasScan(ecr, repositoryName, imageDigest)) {
      return { started: false, reason: SkipReason.ALREADY_SCANNED, errorCode: info.name, errorMessage: info.message };
    }
    const reason = PERMANENT[info.name];
    if (reason) {
      return { started: false, reason, errorCode: info.name, errorMessage: info.message };
    }
    throw error;
  }
}

/** Whether ECR has a scan of the image on record (so a LimitExceededException is its 24-hour limit, not the registry's daily quota). */
async function hasScan(ecr: ECRClient, repositoryName: string, imageDigest: string): Promise<boolean> {
  try {
    const found = await ecr.send(new DescribeImageScanFindingsCommand({ repositoryName, imageId: { imageDigest }, maxResults: 1 }));
    return found.imageScanStatus?.status !== undefined;
  } catch (error) {
    if (awsErrorInfo(error).name === 'ScanNotFoundException') {
      return false;
    }
    throw error;
  }
}

/** The platform images of a multi-architecture image, or undefined when the digest is not an index. */
async function platformImages(ecr: ECRClient, repositoryName: string, imageDigest: string): Promise<string[] | undefined> {
  const response = await ecr.send(new BatchGetImageCommand({
    repositoryName, imageIds: [{ imageDigest }], acceptedMediaTypes: [...INDEX_TYPES, ...MANIFEST_TYPES],
  }));
  const image = response.images?.[0];
  const manifest = image?.imageManifest ? JSON.parse(image.imageManifest) as { mediaType?: string; manifests?: any[] } : undefined;
  const mediaType = image?.imageManifestMediaType ?? manifest?.mediaType;
  if (!manifest || !INDEX_TYPES.includes(String(mediaType)) || !Array.isArray(manifest.manifests)) {
    return undefined;
  }
  return manifest.manifests
    .filter(m => typeof m?.digest === 'string' && !(m.platform?.os === 'unknown' && m.platform?.architecture === 'unknown'))
    .map(m => m.digest as string);
}

/** The image an event names, or why it names none. */
export function imageOf(event: CloudEvent): { repositoryName: string; imageDigest: string; tag?: string } {
  const detail = event.detail;
  const type = event['detail-type'];
  if (event.source !== 'aws.ecr' || (type !== PULL_THROUGH_CACHE_ACTION && type !== IMAGE_ACTION)) {
    throw new Error(`unexpected event '${type}' from '${event.source}'`);
  }
  const { repositoryName, imageDigest } = eventImage(event, detail['repository-name'], detail['image-digest']);
  const tag = detail['image-tag'];
  return { repositoryName, imageDigest, tag: typeof tag === 'string' && tag !== '' ? tag : undefined };
}

async function scan(event: CloudEvent, attempt: Attempt): Promise<void> {
  const namespace = requiredEnv(ScanEnv.METRIC_NAMESPACE);
  const cache = requiredEnv(ScanEnv.CACHE_NAME);
  const prefixes = JSON.parse(requiredEnv(ScanEnv.PREFIXES)) as string[];
  let image: ReturnType<typeof imageOf>;
  try {
    image = imageOf(event);
  } catch (error) {
    // kept, not dropped: thrown, so Lambda retries it and the dead-letter queue keeps it for a look
    log('ERROR', 'event rejected: it names no image to scan', { eventId: event.id, detailType: event['detail-type'], lastAttempt: attempt.last, error });
    if (attempt.last) {
      putMetrics(namespace, { values: { [ScanMetric.FAILED]: 1 }, dimensions: { Cache: cache, Prefix: 'none' }, dimensionSets: [['Cache'], ['Cache', 'Prefix']] });
    }
    throw error;
  }
  const { repositoryName, imageDigest, tag } = image;
  const prefix = cachePrefixOf(repositoryName, prefixes);
  const context = { eventId: event.id, detailType: event['detail-type'], repositoryName, imageDigest, tag };
  const count = (metric: string, extra: { reason?: string; prefix?: string } = {}) => {
    const dimensions: Record<string, string> = { Cache: cache, Prefix: extra.prefix ?? prefix ?? 'none' };
    const dimensionSets = [['Cache'], ['Cache', 'Prefix']];
    if (extra.reason) {
      dimensions.Reason = extra.reason;
      dimensionSets.push(['Cache', 'Reason']);
    }
    putMetrics(namespace, { values: { [metric]: 1 }, dimensions, dimensionSets, properties: context });
  };

  if (prefix === undefined) {
    log('WARN', 'scan skipped: the repository is outside the cache', { ...context, prefixes });
    count(ScanMetric.SKIPPED, { reason: SkipReason.OUTSIDE_CACHE, prefix: 'none' });
    return;
  }
  client ??= new ECRClient(sdkClientConfig());
  const ecr = client;
  const record = (digest: string, outcome: Outcome, extra: Record<string, unknown> = {}) => {
    if (outcome.started) {
      log('INFO', 'scan started', { ...context, scannedDigest: digest, ...extra });
      count(ScanMetric.STARTED);
    } else {
      const { reason, errorCode, errorMessage } = outcome;
      log('INFO', 'scan skipped', { ...context, scannedDigest: digest, reason, errorCode, errorMessage, ...extra });
      count(ScanMetric.SKIPPED, { reason: outcome.reason });
    }
  };
  try {
    const outcome = await startScan(ecr, repositoryName, imageDigest);
    if (!outcome.started && outcome.reason === SkipReason.UNSUPPORTED_IMAGE) {
      const platforms = await platformImages(ecr, repositoryName, imageDigest);
      if (platforms) {
        log('INFO', `multi-architecture image: scanning its ${platforms.length} platform images`, { ...context, platforms });
        for (const platform of platforms) {
          const answer = await startScan(ecr, repositoryName, platform);
          // the index is here, so a missing platform image was never imported (or expired alone): not "gone"
          const platformOutcome: Outcome = !answer.started && answer.errorCode === 'ImageNotFoundException'
            ? { ...answer, reason: SkipReason.PLATFORM_NOT_CACHED } : answer;
          record(platform, platformOutcome, { index: imageDigest });
        }
        return;
      }
    }
    record(imageDigest, outcome);
  } catch (error) {
    const info = awsErrorInfo(error);
    const fields = { ...context, errorCode: info.name, errorMessage: info.message, httpStatus: info.status, lastAttempt: attempt.last };
    if (attempt.last) {
      log('ERROR', 'scan failed on the event\'s last real attempt: counted in ScanFailures', fields);
      count(ScanMetric.FAILED);
    } else {
      log('ERROR', 'scan failed; the event is retried, then kept in the dead-letter queue', fields);
    }
    throw error;
  }
}

export async function handler(input: unknown): Promise<BatchResult | void> {
  return dispatch(input, scan);
}

/** Tests only: forget the cached client so a new endpoint or mock takes effect. */
export function resetClient(): void {
  client = undefined;
}
