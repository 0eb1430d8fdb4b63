import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SCENARIOS } from './scenarios';

/** cdk-nag 3 on aws-cdk-lib 2.257 is run directly on a scope (the CDK validation context lacks the tree). */
function violations(stack: Stack): string[] {
  const report = new AwsSolutionsChecks(stack.node.root).validateScope(stack);
  return report.violations.flatMap(v => v.violatingResources.map(r => `${v.ruleName} at ${r.constructPath}`));
}

/** Every acknowledgement recorded under a scope, with its reason. */
function acknowledgements(stack: Stack): Array<{ path: string; id: string; reason: string }> {
  return stack.node.findAll().flatMap(c => c.node.metadata
    .filter(m => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
    .flatMap(m => Object.entries<string>(m.data).map(([id, reason]) => ({ path: c.node.path, id, reason }))));
}

const arn = (prefix: string, region = '<AWS::Region>', account = '<AWS::AccountId>') =>
  `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:${region}:${account}:repository/${prefix}/*]`;

/** What the monitoring acknowledges: the health handler's "*" (APIs without a resource type), runtime pin, DLQ, the alarm topic's key. */
const MONITORING: Record<string, string[]> = {
  'Cache/Monitoring/AlarmTopic': ['AwsSolutions-SNS2'],
  'Cache/Monitoring/Health/ServiceRole/DefaultPolicy': ['AwsSolutions-IAM5[Resource::*]'],
  'Cache/Monitoring/Health/Function': ['AwsSolutions-L1'],
  'Cache/Monitoring/Health/DeadLetterQueue': ['AwsSolutions-SQS3'],
};

/** What the scanning handlers acknowledge: their wildcards (<prefix>/* of each cache prefix), runtime pin and DLQs. */
function scanning(prefixes: string[], region?: string, account?: string): Record<string, string[]> {
  const wildcards = prefixes.map(p => arn(p, region, account));
  return {
    'Cache/Scanning/ScanTrigger/ServiceRole/DefaultPolicy': wildcards,
    'Cache/Scanning/ScanTrigger/Function': ['AwsSolutions-L1'],
    'Cache/Scanning/ScanTrigger/DeadLetterQueue': ['AwsSolutions-SQS3'],
    'Cache/Scanning/FindingsReporter/ServiceRole/DefaultPolicy': [...wildcards, 'AwsSolutions-IAM5[Resource::*]'],
    'Cache/Scanning/FindingsReporter/Function': ['AwsSolutions-L1'],
    'Cache/Scanning/FindingsReporter/DeadLetterQueue': ['AwsSolutions-SQS3'],
    ...MONITORING,
  };
}
/** What the rule handler acknowledges (a stack with a rule that has credentials or a role): the rule APIs' "*", runtime pin. */
const RULE_HANDLER: Record<string, string[]> = {
  'EcrPullThroughCacheRuleHandler/ServiceRole/DefaultPolicy': ['AwsSolutions-IAM5[Resource::*]'],
  'EcrPullThroughCacheRuleHandler/Function': ['AwsSolutions-L1'],
};
const EVERY_PREFIX = ['ecr-public', 'k8s', 'quay', 'docker-hub', 'ghcr', 'gitlab', 'azure', 'chainguard', 'us-east-1'];

describe.each([
  // scenario, and exactly the acknowledgements it must carry (path below the stack: finding ids)
  ['every-upstream', { ...scanning(EVERY_PREFIX, 'eu-west-1', '111122223333'), ...RULE_HANDLER }],
  ['ecr-to-ecr', { ...scanning(['platform'], 'eu-west-1', '111122223333'), ...RULE_HANDLER }],
  ['kms-and-tags', {
    ...scanning(['ecr-public', 'docker-hub']),
    'Cache/TemplateRole': [arn('ecr-public'), arn('docker-hub')],
    'Cache/NodePullPolicy': [arn('ecr-public'), arn('docker-hub'), 'AwsSolutions-IAM5[Resource::*]'],
    'Cache/docker-hub/Credentials': ['AwsSolutions-SMG4'],
    ...RULE_HANDLER,
  }],
  ['mirror', {
    ...scanning(['ecr-public', 'mcr', 'redhat'], 'eu-west-1', '111122223333'),
    'Cache/NodePullPolicy': [
      ...['ecr-public', 'mcr', 'redhat'].map(p => arn(p, 'eu-west-1', '111122223333')), 'AwsSolutions-IAM5[Resource::*]',
    ],
    'Cache/Mirror/Copier/ServiceRole/DefaultPolicy': [
      ...['mcr', 'redhat'].map(p => arn(p, 'eu-west-1', '111122223333')), 'AwsSolutions-IAM5[Resource::*]',
    ],
    'Cache/Mirror/Copier/Function': ['AwsSolutions-L1'],
    'Cache/Mirror/Copier/DeadLetterQueue': ['AwsSolutions-SQS3'],
    'Cache/Mirror/redhat/Credentials': ['AwsSolutions-SMG4'],
  }],
  ['organization-central', {
    ...scanning(['ecr-public', 'k8s', 'quay', 'docker-hub'], 'eu-west-1', '111122223333'),
    'Cache/docker-hub/Credentials': ['AwsSolutions-SMG4'],
    'Shared/Resource': ['AwsSolutions-ECR1'],
    ...RULE_HANDLER,
  }],
  ['organization-member', {
    'Central/Role': [
      ...['ecr-public', 'k8s', 'quay', 'docker-hub'].map(p => arn(p, 'eu-west-1', '111122223333')),
      ...['ecr-public', 'k8s', 'quay', 'docker-hub'].map(p => arn(p)),
      'AwsSolutions-IAM5[Resource::*]',
    ],
  }],
] as Array<[string, Record<string, string[]>]>)('AwsSolutions checks: %s', (name, expected) => {
  const stack = SCENARIOS[name]();

  test('no finding the construct has not acknowledged', () => {
    expect(violations(stack)).toEqual([]);
  });

  test('exactly the expected findings are acknowledged, each with a reason', () => {
    const acks = acknowledgements(stack);
    const byPath: Record<string, string[]> = {};
    for (const ack of acks) {
      (byPath[ack.path.slice(stack.node.path.length + 1)] ??= []).push(ack.id);
      expect(ack.reason.length).toBeGreaterThan(40);
    }
    expect(byPath).toEqual(expected);
  });
});

test('the acknowledgements are exact: a wildcard the user adds to a node role is still reported', () => {
  const stack = SCENARIOS['kms-and-tags']();
  const nodeRole = stack.node.findChild('NodeRole') as iam.Role;
  nodeRole.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }));
  expect(violations(stack)).toEqual(['AwsSolutions-IAM5[Resource::*] at KmsAndTags/NodeRole/DefaultPolicy/Resource']);
});

test('the acknowledgements are exact: the construct\'s own findings appear when they are removed', () => {
  const stack = SCENARIOS['kms-and-tags']();
  for (const c of stack.node.findAll()) {
    const kept = c.node.metadata.filter(m => m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY);
    (c.node as any)._metadata = kept;
  }
  expect(violations(stack)).toEqual(expect.arrayContaining([
    'AwsSolutions-SMG4 at KmsAndTags/Cache/docker-hub/Credentials/Resource',
    'AwsSolutions-IAM5[Resource::*] at KmsAndTags/Cache/NodePullPolicy/Resource',
  ]));
});
