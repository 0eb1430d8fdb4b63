/**
 * Event fixtures shaped exactly like the documented events (Amazon ECR User Guide, ecr-eventbridge.html and
 * image-scanning-enhanced-events.html), with the values a test needs.
 */
export const ACCOUNT = '123456789012';

export function pullThroughCacheEvent(repositoryName: string, imageDigest: string, prefix: string, tag = '3.17.2'): any {
  return {
    'version': '0',
    'id': `ptc-${imageDigest.slice(-12)}`,
    'detail-type': 'ECR Pull Through Cache Action',
    'source': 'aws.ecr',
    'account': ACCOUNT,
    'time': '2023-02-29T02:36:48Z',
    'region': 'us-east-1',
    'resources': [`arn:aws:ecr:us-east-1:${ACCOUNT}:repository/${repositoryName}`],
    'detail': {
      'rule-version': '1',
      'sync-status': 'SUCCESS',
      'ecr-repository-prefix': prefix,
      'repository-name': repositoryName,
      'upstream-registry-url': 'public.ecr.aws',
      'image-tag': tag,
      'image-digest': imageDigest,
    },
  };
}

export function imagePushEvent(repositoryName: string, imageDigest: string, tag = 'latest'): any {
  return {
    'version': '0',
    'id': `push-${imageDigest.slice(-12)}`,
    'detail-type': 'ECR Image Action',
    'source': 'aws.ecr',
    'account': ACCOUNT,
    'time': '2019-11-16T01:54:34Z',
    'region': 'us-east-1',
    'resources': [],
    'detail': { 'result': 'SUCCESS', 'repository-name': repositoryName, 'image-digest': imageDigest, 'action-type': 'PUSH', 'image-tag': tag },
  };
}

export function imageScanEvent(repositoryName: string, imageDigest: string, counts: Record<string, number>, tags = ['latest']): any {
  return {
    'version': '0',
    'id': `scan-${imageDigest.slice(-12)}`,
    'detail-type': 'ECR Image Scan',
    'source': 'aws.ecr',
    'account': ACCOUNT,
    'time': '2019-10-29T02:36:48Z',
    'region': 'us-east-1',
    'resources': [`arn:aws:ecr:us-east-1:${ACCOUNT}:repository/${repositoryName}`],
    'detail': { 'scan-status': 'COMPLETE', 'repository-name': repositoryName, 'finding-severity-counts': counts, 'image-digest': imageDigest, 'image-tags': tags },
  };
}

/** Inspector names the repository by its ARN, in `detail.repository-name` and in `resources`. */
export function inspectorScanEvent(repositoryName: string, imageDigest: string, counts: Record<string, number>, tags = ['latest']): any {
  const arn = `arn:aws:ecr:us-east-1:${ACCOUNT}:repository/${repositoryName}`;
  return {
    'version': '0',
    'id': `inspector-${imageDigest.slice(-12)}`,
    'detail-type': 'Inspector2 Scan',
    'source': 'aws.inspector2',
    'account': ACCOUNT,
    'time': '2021-12-03T18:03:16Z',
    'region': 'us-east-1',
    'resources': [arn],
    'detail': { 'scan-status': 'INITIAL_SCAN_COMPLETE', 'repository-name': arn, 'finding-severity-counts': counts, 'image-digest': imageDigest, 'image-tags': tags },
  };
}

/** What Lambda sends to an on-failure destination: the event is `requestPayload`. */
export function destinationRecord(event: any): any {
  return {
    version: '1.0',
    timestamp: '2026-11-28T07:00:00.000Z',
    requestContext: { requestId: 'r-1', functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST', condition: 'RetriesExhausted', approximateInvokeCount: 3 },
    requestPayload: event,
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    responsePayload: { errorType: 'ThrottlingException', errorMessage: 'Rate exceeded' },
  };
}

/** The SQS event the redrive mapping delivers; `attempts` is the real failures recorded in the message (redrive.ts). */
export function sqsBatch(bodies: string[], receiveCount = 1, attempts?: number): any {
  return {
    Records: bodies.map((body, i) => ({
      messageId: `m-${i}`,
      receiptHandle: `h-${i}`,
      body,
      attributes: { ApproximateReceiveCount: String(receiveCount) },
      messageAttributes: attempts === undefined ? {} : { RedriveAttempts: { stringValue: String(attempts), dataType: 'Number', stringListValues: [], binaryListValues: [] } },
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:dlq',
      awsRegion: 'us-east-1',
    })),
  };
}
