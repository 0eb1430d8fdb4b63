import { createHash } from 'crypto';
import { CfnElement, Stack } from 'aws-cdk-lib';

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
  /** The registry's one `AWS::ECR::RegistryScanningConfiguration`. */
  REGISTRY_SCANNING: 'CacheRegistryScanning',
  /** The registry's one `AWS::ECR::RegistryPolicy`. */
  REGISTRY_POLICY: 'CacheRegistryPolicy',
} as const;

/** Gives a resource the keyed logical id of its kind. */
export function followKey(resource: CfnElement, kind: string, key: string): void {
  resource.overrideLogicalId(keyedLogicalId(kind, key));
}

const registrySettings = new WeakMap<Stack, Map<string, string>>();

/**
 * Gives a setting the registry has only one of (registry policy, registry scanning) a logical id of its own kind,
 * the same wherever its construct sits. Under a path-derived id a rename creates the new copy, which overwrites the
 * registry's setting, and then deletes the old one, which removes it. A second one in the stack is refused here, as
 * its keyed id would be the same.
 */
export function followRegistry(resource: CfnElement, kind: string, what: string): void {
  const stack = Stack.of(resource);
  const seen = registrySettings.get(stack) ?? new Map<string, string>();
  registrySettings.set(stack, seen);
  const other = seen.get(kind);
  if (other !== undefined) {
    throw new Error(`${resource.node.path} and ${other} both set the ${what} of the stack's registry; a registry has one, and each `
      + 'would replace the other. Keep one of them.');
  }
  seen.set(kind, resource.node.path);
  followKey(resource, kind, 'registry');
}
