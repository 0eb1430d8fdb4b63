/**
 * The execution role of an L1 task definition, as a role a grant can land on. `iam.Role.fromRoleArn` reads the
 * name of a role from its ARN; from an ARN known only at deploy time it takes the first part after `role/`, which
 * for a role with a path (`role/service-role/x`) is the path, so the grant would go to a role named "service-role"
 * (aws/aws-cdk#26175, https://github.com/aws/aws-cdk/issues/26175). A role of the app itself is found instead, by
 * the reference the ARN is.
 */
import { CfnResource, Reference, Stack, Token, Tokenization } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/**
 * The role `executionRoleArn` (of an L1 ECS task definition or Batch job definition) names: the app's own role when
 * it is one, otherwise a role imported by that ARN.
 */
export function executionRoleOf(cfn: CfnResource, executionRoleArn: string): iam.IRole {
  const scope = cfn.node.scope as Construct;
  const id = `${cfn.node.id}CachedImagesExecutionRole`;
  const made = scope.node.tryFindChild(id) as iam.IRole | undefined;
  if (made) {
    return made;
  }
  const reference = Token.isUnresolved(executionRoleArn) ? Tokenization.reverse(executionRoleArn) : undefined;
  const target = Reference.isReference(reference) ? reference.target : undefined;
  if (target instanceof iam.CfnRole) {
    const owner = target.node.scope;
    if (owner instanceof iam.Role && owner.node.defaultChild === target) {
      return owner; // an L2 role: its own default policy
    }
    return iam.Role.fromRoleName(scope, id, target.ref); // the Ref of an AWS::IAM::Role is its name, path or not
  }
  return iam.Role.fromRoleArn(scope, id, executionRoleArn);
}

/**
 * Why a grant to `role` may land on the wrong role, or undefined: it was imported by `iam.Role.fromRoleArn` from an
 * ARN known only at deploy time, and CDK names it by the ARN's first segment after `role/` (`Fn::Select` 1 of its
 * `/` parts), which for a role with a path is the path's first folder (aws/aws-cdk#26175): a policy attached to it
 * names a role that does not exist. No one can tell at synth whether the role has a path, so it is said.
 */
export function deployTimeArnCaution(role: iam.IRole): string | undefined {
  if (!Construct.isConstruct(role) || !Token.isUnresolved(role.roleArn)) {
    return undefined;
  }
  const stack = Stack.of(role);
  const name = stack.resolve(role.roleName) as { 'Fn::Select'?: [unknown, { 'Fn::Split'?: [unknown, unknown] }] } | undefined;
  const select = name?.['Fn::Select'];
  const split = select?.[1]?.['Fn::Split'];
  if (select?.[0] !== 1 || split?.[0] !== '/' || !JSON.stringify(split[1]).startsWith('{"Fn::Select":[5,{"Fn::Split":[":",')) {
    return undefined;
  }
  return `its execution role is imported from an ARN known only at deploy time (${JSON.stringify(stack.resolve(role.roleArn))}), `
    + 'and CDK names it by the first segment after role/: for a role with a path (arn:aws:iam::<account>:role/service-role/name) '
    + 'the pull grant goes to a role named "service-role" (aws/aws-cdk#26175) and the deployment fails. Import the role with '
    + 'iam.Role.fromRoleName (its name, without the path) or from a literal ARN, or acknowledge this warning if the role has no path.';
}
