/**
 * What to tell someone who changes the upstream or owner of a prefix between two deploys. Pure text: the rule
 * handler (at deploy) and the app-level checks (at synth) both say it, in the same words.
 */

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
