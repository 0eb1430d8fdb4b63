import { BootstraplessSynthesizer, Lazy, Names, Stack, Stage, Token } from 'aws-cdk-lib';
import * as cloudformation from 'aws-cdk-lib/aws-cloudformation';
import { Construct } from 'constructs';

/** CloudFormation's limit for a template passed inline (`TemplateBody`). */
const MAX_TEMPLATE_BODY = 51_200;

/** Properties of `SharedCacheStackSet`. */
export interface SharedCacheStackSetProps {
  /**
   * The member stack to deploy in every account: environment-agnostic, in a `Stage` of its own (so `cdk deploy`
   * of the central stack does not deploy it), with `synthesizer: new BootstraplessSynthesizer()` (member accounts
   * are not CDK-bootstrapped, and a StackSet template cannot carry assets).
   */
  readonly memberStack: Stack;

  /** The organizational units (`ou-...` or the root `r-...`) whose accounts get the member stack, now and when they join. */
  readonly organizationalUnitIds: string[];

  /** The Regions to deploy the member stack to in each account. */
  readonly regions: string[];

  /**
   * The StackSet's name. Changing it replaces the StackSet (and every stack instance).
   * @default - derived from the construct path
   */
  readonly stackSetName?: string;

  /**
   * Deploy from a delegated administrator account rather than the management account.
   * @default false
   */
  readonly delegatedAdmin?: boolean;

  /**
   * Keep the member stack in an account that leaves the target OUs.
   * @default false
   */
  readonly retainStacksOnAccountRemoval?: boolean;

  /**
   * How many accounts to deploy to at once, in percent of the targets per Region.
   * @default 25
   */
  readonly maxConcurrentPercentage?: number;

  /**
   * How many accounts may fail, in percent, before CloudFormation stops the operation in a Region.
   * @default 10
   */
  readonly failureTolerancePercentage?: number;
}

/**
 * A service-managed CloudFormation StackSet, auto-deployment on, that deploys a member stack (typically a
 * `PullThroughCacheRules` on `SharedCacheMember.upstreams`) to every account of some OUs, and to each account
 * that joins them. The template is the member stack as CDK synthesizes it, passed inline (`TemplateBody`).
 *
 * Experimental: the StackSet of members has never been deployed.
 *
 * @experimental
 */
export class SharedCacheStackSet extends Construct {
  /** The StackSet. */
  public readonly stackSet: cloudformation.CfnStackSet;

  constructor(scope: Construct, id: string, props: SharedCacheStackSetProps) {
    super(scope, id);
    const where = this.node.path;
    const member = props?.memberStack;
    if (!Stack.isStack(member)) {
      throw new Error(`${where}: memberStack is required: the stack to deploy in every member account.`);
    }
    const memberStage = Stage.of(member);
    if (!memberStage || memberStage === Stage.of(this)) {
      throw new Error(`${where}: the member stack ${member.node.path} is in the same stage as this StackSet, so \`cdk deploy\` would `
        + 'also deploy it here. Create it in a Stage of its own: new Stack(new Stage(app, \'Member\'), \'Cache\', ...).');
    }
    if (!(member.synthesizer instanceof BootstraplessSynthesizer)) {
      throw new Error(`${where}: the member stack ${member.node.path} uses ${member.synthesizer.constructor.name}, whose template needs a `
        + 'CDK-bootstrapped account and S3 assets. Give it synthesizer: new BootstraplessSynthesizer() (and no Lambda functions or other assets).');
    }
    if (!Token.isUnresolved(member.account) || !Token.isUnresolved(member.region)) {
      throw new Error(`${where}: the member stack ${member.node.path} has a concrete account or Region, but a StackSet deploys it to many. `
        + 'Leave its env out.');
    }
    const ous = props.organizationalUnitIds ?? [];
    const regions = props.regions ?? [];
    if (ous.length === 0 || regions.length === 0) {
      throw new Error(`${where}: organizationalUnitIds and regions must each list at least one value.`);
    }
    for (const [name, value] of [['maxConcurrentPercentage', props.maxConcurrentPercentage], ['failureTolerancePercentage', props.failureTolerancePercentage]] as const) {
      if (value !== undefined && (!Number.isInteger(value) || value < 0 || value > 100)) {
        throw new Error(`${where}: ${name} is ${value}; it is a whole percentage from 0 to 100.`);
      }
    }

    this.stackSet = new cloudformation.CfnStackSet(this, 'Resource', {
      stackSetName: props.stackSetName ?? Names.uniqueResourceName(this, { maxLength: 128, separator: '-' }),
      description: 'Pull through cache rules on the shared central ECR cache (cdk-ecr-pull-through-cache)',
      permissionModel: 'SERVICE_MANAGED',
      autoDeployment: { enabled: true, retainStacksOnAccountRemoval: props.retainStacksOnAccountRemoval ?? false },
      callAs: props.delegatedAdmin ? 'DELEGATED_ADMIN' : 'SELF',
      capabilities: ['CAPABILITY_IAM'],
      managedExecution: { Active: true },
      operationPreferences: {
        maxConcurrentPercentage: props.maxConcurrentPercentage ?? 25,
        failureTolerancePercentage: props.failureTolerancePercentage ?? 10,
        regionConcurrencyType: 'PARALLEL',
      },
      stackInstancesGroup: [{ deploymentTargets: { organizationalUnitIds: ous }, regions }],
      // The member stage is synthesized first (CDK synthesizes nested stages before their parent's templates),
      // and its assembly is cached, so this reads the template CDK wrote for the member stack.
      templateBody: Lazy.string({
        produce: () => {
          const body = JSON.stringify(memberStage.synth().getStackArtifact(member.artifactId).template);
          if (body.length > MAX_TEMPLATE_BODY) {
            throw new Error(`${where}: the member template is ${body.length} bytes; CloudFormation takes at most ${MAX_TEMPLATE_BODY} inline. `
              + 'Drop upstreams or features from the member stack.');
          }
          return body;
        },
      }),
    });
  }
}
