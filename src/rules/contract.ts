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

/**
 * The steps to put another upstream (or another owner) under a prefix that already has a rule. ECR holds one rule
 * per prefix and CloudFormation creates a replacement before it deletes the original, so no single deploy can do it.
 */
export function twoStepProcedure(prefix: string, change: string): string {
  return `${change}: ECR holds one rule per prefix and CloudFormation creates the new rule before it deletes the old one, `
    + 'so this cannot deploy in one step. Either give the new upstream another ecrRepositoryPrefix (one deploy; images '
    + 'move to the new prefix), or deploy twice: (1) remove the upstream with the prefix '
    + `'${prefix}' from the cache that holds it and deploy, which deletes its rule; (2) add the new upstream with the prefix '${prefix}' `
    + `and deploy. Between the two deploys images not yet cached under '${prefix}/' cannot be pulled; those already cached stay.`;
}
