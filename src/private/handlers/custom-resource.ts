/**
 * A Lambda-backed CloudFormation custom resource, the protocol once: every deploy-time handler of the library
 * (rules updated in place; later pre-warm, adoption) gives it three functions and gets back a Lambda handler.
 *
 * The protocol (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html):
 * CloudFormation waits, up to an hour, for a JSON document PUT to the request's pre-signed `ResponseURL`:
 * `Status` SUCCESS or FAILED, `Reason` (shown in the stack's events), `PhysicalResourceId`, the request's
 * `StackId`, `RequestId` and `LogicalResourceId`, and `Data` for `Fn::GetAtt`. This module makes sure that,
 * whatever a handler does, exactly that happens:
 * - a handler that throws is answered FAILED with its message as the reason (also logged, with the request);
 * - physical ids: a create names the resource; an update that returns another id asks CloudFormation to delete
 *   the old one (a replacement), so handlers here return the event's id unless they mean that; a create that
 *   failed is answered with `FAILED_CREATE_ID`-style id (`isFailedCreateId`), which the delete of its rollback
 *   must treat as "nothing was created" and never resolve to a real resource;
 * - the response is retried, each attempt with a timeout (the URL is S3; a dropped or hung PUT would leave the
 *   stack waiting an hour) and cut to the 4 KB CloudFormation accepts;
 * - a request still running 10 s before the function's timeout is answered FAILED, for the same reason;
 * - an invocation that is not CloudFormation's (no `ResponseURL`) has nobody to answer: it fails, logged.
 * Handlers must be idempotent: Lambda retries an asynchronous invocation that crashed or timed out, and a
 * rollback replays the previous properties as an update.
 */
import { log } from './log';

export type CustomResourceRequestType = 'Create' | 'Update' | 'Delete';

/** The request CloudFormation sends (the fields a handler reads). */
export interface CustomResourceEvent {
  readonly RequestType: CustomResourceRequestType;
  readonly ResponseURL: string;
  readonly StackId: string;
  readonly RequestId: string;
  readonly LogicalResourceId: string;
  readonly ResourceType: string;
  /** Absent on Create. */
  readonly PhysicalResourceId?: string;
  /** Every value is a string (CloudFormation turns numbers and booleans into strings), ServiceToken included. */
  readonly ResourceProperties: Record<string, unknown>;
  /** On Update only: the properties of the previous deploy (or, in a rollback, of the failed one). */
  readonly OldResourceProperties?: Record<string, unknown>;
}

/** What a handler reports: the physical id, and attributes for `Fn::GetAtt`. */
export interface CustomResourceResult {
  readonly physicalResourceId: string;
  readonly data?: Record<string, string>;
}

export interface CustomResourceHandlers {
  create(event: CustomResourceEvent): Promise<CustomResourceResult>;
  update(event: CustomResourceEvent): Promise<CustomResourceResult>;
  delete(event: CustomResourceEvent): Promise<void>;
}

/** The part of the Lambda context the protocol reads. */
export interface InvocationContext {
  getRemainingTimeInMillis?(): number;
}

/** Time kept before the function's timeout to send a FAILED answer for a request that has not finished. */
const TIMEOUT_MARGIN_MS = 10_000;

/** CloudFormation rejects a response body over 4096 bytes; the reason gives way first. */
const MAX_RESPONSE_BYTES = 4096;
const FAILED_CREATE_PREFIX = 'FAILED-CREATE:';

/** The id a failed create answers with: not a name any resource can have (it is not a valid prefix, ARN or name). */
export function failedCreateId(event: CustomResourceEvent): string {
  return `${FAILED_CREATE_PREFIX}${event.RequestId}`;
}

/** Whether a physical id is the one a failed create answered with: its rollback delete has nothing to delete. */
export function isFailedCreateId(physicalResourceId: string | undefined): boolean {
  return physicalResourceId === undefined || physicalResourceId.startsWith(FAILED_CREATE_PREFIX);
}

/** How the response is sent; tests on loopback use the default, over plain HTTP. */
export interface ResponseOptions {
  /** Attempts at the PUT before giving up (the failure is logged: the stack then waits for its timeout). */
  readonly attempts?: number;
  /** Milliseconds before the second attempt, doubled for each next one. */
  readonly backoffMs?: number;
  /** Milliseconds one attempt may take before it is abandoned (a PUT that hangs would otherwise outlive the function). */
  readonly attemptTimeoutMs?: number;
}

/** Wraps the three handlers in the protocol: the returned function is the Lambda handler. */
export function customResourceHandler(handlers: CustomResourceHandlers, options: ResponseOptions = {}):
(event: CustomResourceEvent, context?: InvocationContext) => Promise<void> {
  return async (event: CustomResourceEvent, context?: InvocationContext) => {
    if (typeof event?.ResponseURL !== 'string' || typeof event.RequestId !== 'string') {
      // nothing to answer: not CloudFormation's (a mistaken or manual invocation); fail it visibly instead
      log('ERROR', 'invocation rejected: not a CloudFormation custom resource request', { keys: Object.keys(event ?? {}) });
      throw new Error('invocation rejected: not a CloudFormation custom resource request (no ResponseURL or RequestId)');
    }
    const request = {
      requestType: event.RequestType,
      requestId: event.RequestId,
      stackId: event.StackId,
      logicalResourceId: event.LogicalResourceId,
      physicalResourceId: event.PhysicalResourceId,
    };
    log('INFO', 'custom resource request', request);
    let body: ResponseBody;
    let timer: NodeJS.Timeout | undefined;
    try {
      // answer FAILED before Lambda kills a hung request: otherwise CloudFormation would wait an hour for an answer
      const remaining = context?.getRemainingTimeInMillis?.();
      const deadline = remaining === undefined ? undefined : new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within the function's timeout (${Math.round(remaining / 1000)} s left at `
          + 'the start); the request may have been applied partly: deploy again, which repeats it (each step is idempotent)')),
        Math.max(0, remaining - TIMEOUT_MARGIN_MS));
      });
      body = await (deadline ? Promise.race([run(handlers, event), deadline]) : run(handlers, event));
      log('INFO', 'custom resource succeeded', { ...request, physicalResourceId: body.PhysicalResourceId });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      log('ERROR', 'custom resource failed', { ...request, reason, error });
      body = responseBody(event, 'FAILED', event.PhysicalResourceId ?? failedCreateId(event), reason);
    } finally {
      clearTimeout(timer);
    }
    await sendResponse(event.ResponseURL, body, options);
  };
}

interface ResponseBody {
  readonly Status: 'SUCCESS' | 'FAILED';
  readonly Reason?: string;
  readonly PhysicalResourceId: string;
  readonly StackId: string;
  readonly RequestId: string;
  readonly LogicalResourceId: string;
  readonly Data?: Record<string, string>;
}

async function run(handlers: CustomResourceHandlers, event: CustomResourceEvent): Promise<ResponseBody> {
  switch (event.RequestType) {
    case 'Create': {
      const result = await handlers.create(event);
      return responseBody(event, 'SUCCESS', result.physicalResourceId, undefined, result.data);
    }
    case 'Update': {
      const result = await handlers.update(event);
      return responseBody(event, 'SUCCESS', result.physicalResourceId, undefined, result.data);
    }
    case 'Delete':
      await handlers.delete(event);
      return responseBody(event, 'SUCCESS', event.PhysicalResourceId ?? failedCreateId(event));
    default:
      throw new Error(`unknown RequestType '${(event as { RequestType?: unknown }).RequestType}'; expected Create, Update or Delete`);
  }
}

function responseBody(event: CustomResourceEvent, status: 'SUCCESS' | 'FAILED', physicalResourceId: string,
  reason?: string, data?: Record<string, string>): ResponseBody {
  const body: ResponseBody = {
    Status: status,
    Reason: reason,
    PhysicalResourceId: physicalResourceId,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
    Data: data,
  };
  const size = Buffer.byteLength(JSON.stringify(body));
  if (size <= MAX_RESPONSE_BYTES || reason === undefined) {
    return body;
  }
  const keep = Math.max(0, Buffer.byteLength(reason) - (size - MAX_RESPONSE_BYTES) - 40);
  return { ...body, Reason: `${Buffer.from(reason).subarray(0, keep).toString().replace(/\uFFFD$/, '')} ... (cut; the log has it whole)` };
}

/** PUT the response to the pre-signed URL: no content type (the URL is signed without one), retried with backoff. */
export async function sendResponse(url: string, body: object, options: ResponseOptions = {}): Promise<void> {
  const attempts = options.attempts ?? 5;
  const json = JSON.stringify(body);
  let problem = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const response = await fetch(url, {
        method: 'PUT', body: json, headers: { 'content-type': '' }, signal: AbortSignal.timeout(options.attemptTimeoutMs ?? 5_000),
      });
      if (response.ok) {
        return;
      }
      problem = `HTTP ${response.status} ${await response.text().catch(() => '')}`.trim();
    } catch (error) {
      problem = error instanceof Error ? error.message : String(error);
    }
    log('WARN', 'custom resource response not accepted', { attempt, attempts, problem });
    if (attempt < attempts) {
      await new Promise(resolve => setTimeout(resolve, (options.backoffMs ?? 500) * 2 ** (attempt - 1)));
    }
  }
  // the stack waits for its timeout; throwing makes the invocation fail, so Lambda's async retry tries again
  throw new Error(`the response to CloudFormation was not accepted after ${attempts} attempts: ${problem}`);
}
