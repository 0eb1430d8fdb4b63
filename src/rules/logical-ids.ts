import { createHash } from 'crypto';
import { CfnElement } from 'aws-cdk-lib';

/**
 * Logical ids that follow what a resource is (its cache prefix, its secret name), not where its construct sits.
 *
 * CloudFormation knows a resource by its logical id. CDK derives that id from the construct path, so renaming the
 * cache construct, or moving it under another construct, gives every resource a new id: CloudFormation creates the
 * "new" resource before it deletes the "old" one, and a rule prefix, a template prefix and a secret name exist once
 * per registry, so the create fails and the deploy rolls back. Ids derived from the prefix (or name) stay the same
 * through any refactoring of the app; a prefix appears at most once per stack (the app-level checks refuse two rules
 * or secrets of one name in one environment), so the ids are unique too.
 *
 * The id is `<kind><readable key><8 hex of the key's SHA-256>`: the readable part for people reading the template,
 * the hash because the readable part drops characters (`a-b`, `a/b` and `ab` read the same).
 */
export function keyedLogicalId(kind: string, key: string): string {
  const readable = key.split(/[^A-Za-z0-9]+/).filter(w => w !== '')
    .map(w => w[0].toUpperCase() + w.slice(1)).join('').slice(0, 64);
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 8).toUpperCase();
  return `${kind}${readable}${hash}`;
}

/** The kinds of keyed ids, distinct so that no two resource types ever share one (a type change under one id fails). */
export const LogicalIdKind = {
  /** An `AWS::ECR::PullThroughCacheRule` of an upstream without credentials or role. */
  RULE: 'CacheRule',
  /** A `Custom::EcrPullThroughCacheRule`, whose credential and role change in place. */
  UPDATABLE_RULE: 'CacheUpdatableRule',
  /** An `AWS::ECR::RepositoryCreationTemplate`. */
  TEMPLATE: 'CacheTemplate',
  /** An `AWS::SecretsManager::Secret` the library creates, by its name. */
  SECRET: 'CacheSecret',
} as const;

/** Gives a resource the keyed logical id of its kind. */
export function followKey(resource: CfnElement, kind: string, key: string): void {
  resource.overrideLogicalId(keyedLogicalId(kind, key));
}
