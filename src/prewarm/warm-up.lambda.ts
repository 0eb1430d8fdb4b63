/**
 * The handler of `Custom::EcrPullThroughCacheWarmUp`: on Create and Update, pulls every image of the resource through
 * the cache (warm.ts), answers each image's digest as the attribute `Digest<n>` (what pinned workloads pull), and,
 * with a gate, waits for each image's scan and fails the deploy on findings (scan-gate.ts). Delete does nothing: what
 * was cached stays cached, as any pull's would.
 *
 * The registry is ECR's own endpoint, with the token of `GetAuthorizationToken` as a Basic header
 * (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html). Every failure ends in the stack's
 * events (the resource's reason: each image that failed, by name, with the registry's answer, or the gate's summary),
 * in a log line, and in the metrics `ImagesFailed` / `GateFailures`.
 */
import { DescribeImageScanFindingsCommand, DescribeImageScanFindingsResponse, ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { WARM_UP_NAMESPACE, WarmUpProperties, digestAttribute } from './contract';
import { FAILING_OUTCOMES, GateRules, GatedImage, SEVERITIES, ScanFinding, ScanState, gateFailure, gateScans } from './scan-gate';
import { WarmTarget, WarmedImage, warmImage } from './warm';
import { RegistryClient } from '../mirror/oci-client';
import { awsErrorInfo } from '../private/handlers/aws-errors';
import { CustomResourceEvent, CustomResourceResult, customResourceHandler } from '../private/handlers/custom-resource';
import { log } from '../private/handlers/log';
import { putMetrics } from '../private/handlers/metrics';
import { sdkClientConfig } from '../private/handlers/sdk-config';

let client: ECRClient | undefined;
function ecr(): ECRClient {
  client ??= new ECRClient(sdkClientConfig());
  return client;
}

/** ECR's registry endpoint with a fresh token (valid 12 hours, longer than any deploy). */
async function ecrRegistry(): Promise<RegistryClient> {
  // (the SDK retried a throttle already: sdk-config.ts)
  const data = (await ecr().send(new GetAuthorizationTokenCommand({})).catch(error => {
    const info = awsErrorInfo(error);
    throw new Error(`GetAuthorizationToken failed (${info.name}: ${info.message}), so no image could be warmed`);
  })).authorizationData?.[0];
  if (!data?.authorizationToken || !data.proxyEndpoint) {
    throw new Error('GetAuthorizationToken returned no token or endpoint, so no image could be warmed');
  }
  return new RegistryClient({ url: data.proxyEndpoint, authorization: `Basic ${data.authorizationToken}`, idleTimeoutMs: IDLE_TIMEOUT_MS });
}

/** A request silent this long is a slow upstream: it fails the attempt (retried within the budget). */
const IDLE_TIMEOUT_MS = 30_000;

let registryFactory: () => Promise<RegistryClient> = ecrRegistry;
let timing: { backoffMs?: number; pollMs?: number } = {};

/** Tests only: warm from another registry (a loopback one), with shorter waits; undefined restores ECR. */
export function useRegistry(factory: (() => Promise<RegistryClient>) | undefined, waits: { backoffMs?: number; pollMs?: number } = {}): void {
  registryFactory = factory ?? ecrRegistry;
  timing = waits;
  client = undefined;
}

/** A request's properties, read. */
export interface WarmUpRequest {
  readonly images: WarmTarget[];
  readonly retryBudgetMs: number;
  readonly concurrency: number;
  readonly gate?: GateRules & { readonly timeoutMs: number };
}

/** The properties of a request, checked: anything missing is the template's fault, said with what was received. */
export function warmUpProperties(raw: Record<string, unknown>): WarmUpRequest {
  const props = raw as unknown as WarmUpProperties;
  const images = (value: unknown) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`Concurrency must be a whole number of images, at least 1; got ${JSON.stringify(value)}`);
    }
    return n;
  };
  const seconds = (value: unknown, name: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) {
      throw new Error(`${name} must be a positive number of seconds; got ${JSON.stringify(value)}`);
    }
    return n;
  };
  if (!Array.isArray(props.Images) || props.Images.some(i => typeof i?.Repository !== 'string' || typeof i?.Tag !== 'string')) {
    throw new Error(`Images must be a list of { Repository, Tag, Platforms }; got ${JSON.stringify(props.Images)?.slice(0, 300)}`);
  }
  // a value the gate cannot rank, or an image with no platform, would have it judge nothing: refused, never passed
  props.Images.forEach((image, i) => {
    if (String(image.Platforms ?? '').split(',').filter(Boolean).length === 0) {
      throw new Error(`Images[${i}] (${image.Repository}:${image.Tag}) names no platform to warm; got Platforms ${JSON.stringify(image.Platforms ?? '')}`);
    }
  });
  if (props.Gate && !SEVERITIES.includes(String(props.Gate.Severity))) {
    throw new Error(`Gate.Severity must be one of ${SEVERITIES.join(', ')}; got ${JSON.stringify(props.Gate.Severity)}`);
  }
  const gateRules = props.Gate && {
    severity: String(props.Gate.Severity),
    allowCves: props.Gate.AllowCves ?? [],
    allowImages: props.Gate.AllowImages ?? [],
    unscannable: String(props.Gate.Unscannable),
    timeoutMs: seconds(props.Gate.TimeoutSeconds, 'Gate.TimeoutSeconds') * 1000,
  };
  return {
    images: props.Images.map(i => ({ registry: i.Registry, repository: i.Repository, tag: i.Tag, platforms: String(i.Platforms ?? '').split(',').filter(Boolean) })),
    retryBudgetMs: seconds(props.RetryBudgetSeconds, 'RetryBudgetSeconds') * 1000,
    concurrency: images(props.Concurrency),
    gate: gateRules,
  };
}

async function warmUp(event: CustomResourceEvent): Promise<CustomResourceResult> {
  const props = warmUpProperties(event.ResourceProperties);
  const stack = stackName(event.StackId);
  const started = Date.now();
  const registry = await registryFactory();
  const results = await pool(props.images, props.concurrency, target => warmImage(registry, target, {
    retryBudgetMs: props.retryBudgetMs, backoffMs: timing.backoffMs,
  }).then(warmed => {
    log('INFO', 'image warmed', { image: `${target.repository}:${target.tag}`, digest: warmed.digest, blobs: warmed.blobs, retries: warmed.retries });
    return warmed;
  }));
  const failures = results.filter((r): r is { error: Error } => 'error' in r).map(r => r.error.message);
  const warmed = results.filter((r): r is { value: WarmedImage } => 'value' in r).map(r => r.value);
  putMetrics(WARM_UP_NAMESPACE, {
    values: { ImagesWarmed: warmed.length, ImagesFailed: failures.length, Retries: warmed.reduce((n, w) => n + w.retries, 0) },
    dimensions: { Stack: stack },
    dimensionSets: [['Stack']],
    properties: { seconds: (Date.now() - started) / 1000 },
  });
  if (failures.length > 0) {
    failures.forEach(reason => log('ERROR', 'image not warmed', { reason }));
    throw new Error(`${failures.length} of ${props.images.length} images could not be pulled through the cache: ${failures.join('; ')}`);
  }
  if (props.gate) {
    await gate(warmed, props.gate, stack, isRollback(event));
  }
  return {
    physicalResourceId: event.PhysicalResourceId ?? `warm-up:${event.LogicalResourceId}`,
    data: Object.fromEntries(warmed.map((w, i) => [digestAttribute(i), w.digest])),
  };
}

/**
 * Whether an Update returns the resource to the previous deploy's properties (a rollback): its `Refresh`, the time of
 * that synthesis, is earlier than the failed deploy's. A rollback that fails leaves the stack UPDATE_ROLLBACK_FAILED,
 * so the gate does not fail it (the images ran before; a vulnerability found since in them is for the next deploy).
 * With a fixed `Refresh` (the context key) no rollback can be told apart, and the gate applies as on any Update.
 */
export function isRollback(event: CustomResourceEvent): boolean {
  const now = Date.parse(String(event.ResourceProperties.Refresh));
  const before = Date.parse(String(event.OldResourceProperties?.Refresh));
  return event.RequestType === 'Update' && Number.isFinite(now) && Number.isFinite(before) && now < before;
}

async function gate(warmed: readonly WarmedImage[], rules: GateRules & { timeoutMs: number }, stack: string, rollback: boolean): Promise<void> {
  const images: GatedImage[] = warmed.flatMap(w => w.imageDigests
    .map(imageDigest => ({ repository: w.target.repository, tag: w.target.tag, imageDigest })));
  // a rollback is not failed by the gate, so it does not wait for it either: each scan is read once, for the log
  const verdicts = await gateScans(images, readScan, rules, { timeoutMs: rollback ? 0 : rules.timeoutMs, pollMs: timing.pollMs });
  verdicts.forEach(v => log(v.outcome === 'PASSED' ? 'INFO' : 'WARN', 'scan gate', {
    image: `${v.image.repository}:${v.image.tag}`,
    imageDigest: v.image.imageDigest,
    outcome: v.outcome,
    detail: v.detail,
    blocking: v.blocking.map(f => `${f.id} ${f.severity}`).slice(0, 50),
  }));
  const failure = gateFailure(verdicts, rules);
  putMetrics(WARM_UP_NAMESPACE, {
    values: { GateFailures: verdicts.filter(v => FAILING_OUTCOMES.includes(v.outcome)).length },
    dimensions: { Stack: stack },
    dimensionSets: [['Stack']],
  });
  if (failure && rollback) {
    log('WARN', 'scan gate not enforced: rollback', { reason: failure });
  } else if (failure) {
    throw new Error(failure);
  }
}

/** One image's scan, every page of its findings; undefined while it has none (ScanNotFoundException). */
async function readScan(image: GatedImage): Promise<ScanState | undefined> {
  const findings: ScanFinding[] = [];
  let status = '';
  let description: string | undefined;
  let nextToken: string | undefined;
  do {
    let page: DescribeImageScanFindingsResponse;
    try {
      page = await ecr().send(new DescribeImageScanFindingsCommand({
        repositoryName: image.repository, imageId: { imageDigest: image.imageDigest }, maxResults: 1000, nextToken,
      }));
    } catch (error) {
      if (awsErrorInfo(error).name === 'ScanNotFoundException') {
        return undefined;
      }
      throw new Error(`DescribeImageScanFindings of ${image.repository}@${image.imageDigest}: ${awsErrorInfo(error).name}: ${awsErrorInfo(error).message}`);
    }
    status = page.imageScanStatus?.status ?? '';
    description = page.imageScanStatus?.description;
    for (const f of page.imageScanFindings?.findings ?? []) {
      findings.push({ id: f.name ?? '?', severity: f.severity ?? 'UNDEFINED' });
    }
    for (const f of page.imageScanFindings?.enhancedFindings ?? []) {
      findings.push({ id: f.packageVulnerabilityDetails?.vulnerabilityId ?? f.title ?? '?', severity: f.severity ?? 'UNDEFINED' });
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return { status, description, findings };
}

/** Runs `work` on each item, `size` at a time, keeping each outcome (a failure does not stop the others). */
async function pool<T, R>(items: readonly T[], size: number, work: (item: T) => Promise<R>): Promise<Array<{ value: R } | { error: Error }>> {
  const results: Array<{ value: R } | { error: Error }> = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { value: await work(items[i]) };
      } catch (error) {
        results[i] = { error: error instanceof Error ? error : new Error(String(error)) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
  return results;
}

/** `arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>` -> `<name>`. */
function stackName(stackId: string): string {
  return /:stack\/([^/]+)\//.exec(stackId ?? '')?.[1] ?? 'unknown';
}

export const handler = customResourceHandler({
  create: warmUp,
  update: warmUp,
  // what was cached stays cached, as any pull's would: nothing to undo
  delete: async () => undefined,
});
