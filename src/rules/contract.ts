/**
 * What the rule custom resource (`updatable-rule.ts`) and its handler (`rule.lambda.ts`) agree on. No CDK
 * imports: the handler bundle and the test harness read it too.
 */

/** The custom resource type of a rule whose credential or role can change in place. */
export const RULE_RESOURCE_TYPE = 'Custom::EcrPullThroughCacheRule';

/** The resource properties, named as `AWS::ECR::PullThroughCacheRule` names them. */
export interface RuleProperties {
  readonly EcrRepositoryPrefix: string;
  readonly UpstreamRegistry: string;
  readonly UpstreamRegistryUrl: string;
  readonly UpstreamRepositoryPrefix?: string;
  readonly CredentialArn?: string;
  readonly CustomRoleArn?: string;
}

/**
 * The properties `UpdatePullThroughCacheRule` changes in place
 * (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_UpdatePullThroughCacheRule.html). A change of any
 * other property cannot be made to a rule: the handler refuses it, with `twoStepProcedure`.
 */
export const IN_PLACE_PROPERTIES: ReadonlyArray<'CredentialArn' | 'CustomRoleArn'> = ['CredentialArn', 'CustomRoleArn'];

/** The properties that name the rule and its upstream: changing one is a new rule, which a prefix can hold only one of. */
export const FIXED_PROPERTIES: ReadonlyArray<keyof RuleProperties> =
  ['EcrRepositoryPrefix', 'UpstreamRegistry', 'UpstreamRegistryUrl', 'UpstreamRepositoryPrefix'];

