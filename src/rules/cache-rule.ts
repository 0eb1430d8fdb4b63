import { ArnFormat, BootstraplessSynthesizer, CfnResource, CustomResource, Duration, Resource, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { CacheRuleFunction } from './cache-rule-function';
import { RULE_RESOURCE_TYPE, RuleProperties } from './contract';
import { acknowledgeFinding, acknowledgeWildcardResources } from '../private/acknowledge';
import { LogicalIdKind, followKey } from '../private/logical-ids';

/** What a rule is made of. */
export interface CacheRuleSpec {
  readonly ecrRepositoryPrefix: string;
  readonly upstreamRegistry: string;
  readonly upstreamRegistryUrl: string;
  readonly upstreamRepositoryPrefix?: string;
  readonly credentials?: secretsmanager.ISecret;
  readonly role?: iam.IRole;
  /** Whether the upstream's kind can carry a credential or role at all (then it may gain or swap one later). */
  readonly authenticated: boolean;
}

/**
 * The rule of one upstream, as the resource that can deploy every later change of it.
 *
 * - An upstream that can carry no credential or role (ECR Public, registry.k8s.io, Quay) is an
 *   `AWS::ECR::PullThroughCacheRule`: nothing of it can change except by a new prefix or upstream, which no resource
 *   can do in place, so CloudFormation's own type is the smallest that deploys.
 * - An upstream with a credential (Docker Hub, GHCR, ...) or a role (ECR to ECR) is a `Custom::EcrPullThroughCacheRule`:
 *   CloudFormation's type makes `CredentialArn` and `CustomRoleArn` create-only, and its replacement collides with the
 *   rule it replaces on the prefix, while `UpdatePullThroughCacheRule` changes both in place. An ECR upstream without
 *   a role is one too, so that adding one later is an update rather than a change of type.
 *
 * - In a stack that can hold no assets (a StackSet member template), every rule is CloudFormation's type.
 *
 * Either way the logical id follows the prefix, so renaming or moving the cache keeps the rule.
 */
export function createCacheRule(scope: Construct, spec: CacheRuleSpec): ecr.IPullThroughCacheRuleRef {
  // A stack without assets (BootstraplessSynthesizer: a StackSet's member template) cannot hold the handler; there
  // the rule is CloudFormation's, and a credential or role change needs the two-step procedure (README).
  if (!spec.authenticated || Stack.of(scope).synthesizer instanceof BootstraplessSynthesizer) {
    const rule = new ecr.CfnPullThroughCacheRule(scope, 'Rule', {
      ecrRepositoryPrefix: spec.ecrRepositoryPrefix,
      upstreamRegistry: spec.upstreamRegistry,
      upstreamRegistryUrl: spec.upstreamRegistryUrl,
      upstreamRepositoryPrefix: spec.upstreamRepositoryPrefix,
      credentialArn: spec.credentials?.secretFullArn,
      customRoleArn: spec.role?.roleArn,
    });
    followKey(rule, LogicalIdKind.RULE, spec.ecrRepositoryPrefix);
    return rule;
  }
  return new UpdatableCacheRule(scope, 'Rule', spec);
}

/** A `Custom::EcrPullThroughCacheRule` (see `cache-rule.lambda.ts` for what each request does). */
class UpdatableCacheRule extends Resource implements ecr.IPullThroughCacheRuleRef {
  public readonly pullThroughCacheRuleRef: ecr.PullThroughCacheRuleReference;

  constructor(scope: Construct, id: string, spec: CacheRuleSpec) {
    super(scope, id);
    const handler = RuleHandler.of(this);
    handler.allow(spec);
    const properties: RuleProperties = {
      EcrRepositoryPrefix: spec.ecrRepositoryPrefix,
      UpstreamRegistry: spec.upstreamRegistry,
      UpstreamRegistryUrl: spec.upstreamRegistryUrl,
      UpstreamRepositoryPrefix: spec.upstreamRepositoryPrefix,
      CredentialArn: spec.credentials?.secretFullArn,
      CustomRoleArn: spec.role?.roleArn,
    };
    const resource = new CustomResource(this, 'Resource', {
      serviceToken: handler.function.functionArn,
      resourceType: RULE_RESOURCE_TYPE,
      // A request the handler never answers (a crash, or an answer S3 never accepted) would keep the deploy waiting
      // CloudFormation's default hour. 15 minutes cover the function's 2 and Lambda's two retries of the
      // asynchronous invocation, minutes apart (RETRY_WINDOW_MS in the handler is the same span).
      serviceTimeout: Duration.minutes(15),
      properties: { ...properties },
    });
    // its permissions first: the create needs iam:PassRole and the secret, and the delete runs before they go
    resource.node.addDependency(handler.role);
    followKey(resource.node.defaultChild as CfnResource, LogicalIdKind.UPDATABLE_RULE, spec.ecrRepositoryPrefix);
    this.pullThroughCacheRuleRef = { ecrRepositoryPrefix: resource.ref };
  }
}

/**
 * The one handler of a stack's updatable rules, whichever cache they belong to, at a fixed place under the stack (so
 * renaming a cache does not replace it). Built directly rather than with `BundledHandler`: CloudFormation invokes it
 * asynchronously (https://docs.aws.amazon.com/lambda/latest/dg/services-cloudformation.html) and the handler answers
 * every request itself, a failure as the stack event's reason and a log line. The one invocation that fails is an
 * answer S3 never accepted: Lambda retries it twice (each step is idempotent), the log has each attempt's reason, and
 * the resource's service timeout ends the deploy; a dead-letter queue would only keep a request nobody waits for.
 */
class RuleHandler extends Construct {
  public static of(scope: Construct): RuleHandler {
    const stack = Stack.of(scope);
    return (stack.node.tryFindChild(RuleHandler.ID) as RuleHandler | undefined) ?? new RuleHandler(stack, RuleHandler.ID);
  }

  private static readonly ID = 'EcrPullThroughCacheRuleHandler';

  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  private readonly secrets = new Set<string>();
  private readonly roles = new Set<string>();

  private constructor(scope: Construct, id: string) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'LogGroup', { retention: logs.RetentionDays.ONE_YEAR });
    this.role = new iam.Role(this, 'ServiceRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Creates, updates in place and deletes the ECR pull through cache rules of this stack',
    });
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn],
    }));
    // The pull through cache rule actions have no resource type in the Service Authorization Reference, so they take
    // "*" (as CloudFormation's own handler of AWS::ECR::PullThroughCacheRule does).
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['ecr:CreatePullThroughCacheRule', 'ecr:UpdatePullThroughCacheRule', 'ecr:DeletePullThroughCacheRule',
        'ecr:DescribePullThroughCacheRules'],
      resources: ['*'],
    }));
    // ECR creates its pull through cache service-linked role with the first rule of an account
    const slr = Stack.of(this).formatArn({
      service: 'iam',
      region: '',
      resource: 'role',
      resourceName: 'aws-service-role/pullthroughcache.ecr.amazonaws.com/AWSServiceRoleForECRPullThroughCache',
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['iam:CreateServiceLinkedRole'],
      resources: [slr],
      conditions: { StringEquals: { 'iam:AWSServiceName': 'pullthroughcache.ecr.amazonaws.com' } },
    }));
    this.function = new CacheRuleFunction(this, 'Function', {
      description: 'Creates, updates in place (credential, role) and deletes ECR pull through cache rules for CloudFormation',
      role: this.role,
      logGroup,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      timeout: Duration.minutes(2),
      environment: { LOG_LEVEL: 'INFO' },
    });
    acknowledgeWildcardResources(this.role.node.findChild('DefaultPolicy'), ['*'],
      'The ECR pull through cache rule actions have no resource type; AWS requires "*" for them');
    acknowledgeFinding(this.function, 'AwsSolutions-L1',
      'Pinned to Node.js 22, the runtime the bundled handler is built and tested for; moving to a newer runtime is a deliberate release');
  }

  /** What creating or updating this rule needs beyond the rule actions: read its secret, pass its role (as CloudFormation's handler). */
  public allow(spec: CacheRuleSpec): void {
    const secretArn = spec.credentials?.secretFullArn;
    if (secretArn && !this.secrets.has(secretArn)) {
      this.secrets.add(secretArn);
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [secretArn] }));
    }
    const roleArn = spec.role?.roleArn;
    if (roleArn && !this.roles.has(roleArn)) {
      this.roles.add(roleArn);
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [roleArn],
      }));
    }
  }
}
