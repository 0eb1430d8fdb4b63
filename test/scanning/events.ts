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

/**
 * A basic scan that did not complete: the `ECR Image Scan` event of ecr-eventbridge.html with the status ECR
 * gives an image it cannot scan (FAILED; DescribeImageScanFindings then says "UnsupportedImageError: ...",
 * https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-troubleshooting.html and
 * aws-observability/aws-otel-collector#2193). A severity key appears only when its count is above 0, so a
 * scan with no counts has an empty map.
 */
export function failedImageScanEvent(repositoryName: string, imageDigest: string, tags = ['latest'], status = 'FAILED'): any {
  const event = imageScanEvent(repositoryName, imageDigest, {}, tags);
  event.id = `failed-${imageDigest.slice(-12)}`;
  event.detail['scan-status'] = status;
  return event;
}

/**
 * An Amazon Inspector finding of an ECR image, shaped like the "Amazon Inspector finding event schema
 * example" (ECR tab) of https://docs.aws.amazon.com/inspector/latest/user/eventbridge-integration.html,
 * times written as that example writes them.
 */
export function inspectorFindingEvent(repositoryName: string, imageDigest: string, severity: string, times: {
  pushedAt: string; firstObservedAt: string; updatedAt?: string;
}, vulnerabilityId = 'CVE-2026-12345', tags = ['latest']): any {
  return {
    'version': '0',
    'id': `finding-${vulnerabilityId}-${imageDigest.slice(-8)}`,
    'detail-type': 'Inspector2 Finding',
    'source': 'aws.inspector2',
    'account': ACCOUNT,
    'time': '2026-11-30T08:12:14Z',
    'region': 'us-east-1',
    'resources': [`arn:aws:ecr:us-east-1:${ACCOUNT}:repository/${repositoryName}/${imageDigest}`],
    'detail': {
      awsAccountId: ACCOUNT,
      description: 'A heap overflow in the example package.',
      findingArn: `arn:aws:inspector2:us-east-1:${ACCOUNT}:finding/0f9e8d7c6b5a49382716f5e4d3c2b1a0`,
      firstObservedAt: times.firstObservedAt,
      inspectorScore: 9.8,
      lastObservedAt: times.updatedAt ?? times.firstObservedAt,
      packageVulnerabilityDetails: {
        cvss: [{ baseScore: 9.8, scoringVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', source: 'NVD', version: '3.1' }],
        referenceUrls: [],
        relatedVulnerabilities: [],
        source: 'NVD',
        sourceUrl: `https://nvd.nist.gov/vuln/detail/${vulnerabilityId}`,
        vendorSeverity: severity,
        vulnerabilityId,
        vulnerablePackages: [{ arch: 'X86_64', epoch: 0, name: 'openssl', packageManager: 'OS', release: '1', sourceLayerHash: `sha256:${'1'.repeat(64)}`, version: '3.0.2' }],
      },
      remediation: { recommendation: { text: 'None Provided' } },
      resources: [{
        details: {
          awsEcrContainerImage: {
            architecture: 'amd64', imageHash: imageDigest, imageTags: tags, platform: 'UBUNTU_22_04', pushedAt: times.pushedAt, registry: ACCOUNT, repositoryName,
          },
        },
        id: `arn:aws:ecr:us-east-1:${ACCOUNT}:repository/${repositoryName}/${imageDigest}`,
        partition: 'aws',
        region: 'us-east-1',
        type: 'AWS_ECR_CONTAINER_IMAGE',
      }],
      severity,
      status: 'ACTIVE',
      title: `${vulnerabilityId} - openssl`,
      type: 'PACKAGE_VULNERABILITY',
      updatedAt: times.updatedAt ?? times.firstObservedAt,
    },
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
