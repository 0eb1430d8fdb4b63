/**
 * Where a cache is, seen from where it is used. A cache's registry is `<account>.dkr.ecr.<region>.<suffix>` of
 * its own stack. In an environment-agnostic stack those are `AWS::AccountId` and `AWS::Region`, which every stack
 * resolves to its *own* account and Region: used from a stack with a concrete environment, the URI, the grants and
 * the Aspect's output would name a registry where there is no cache. Pulling across accounts needs a repository
 * or registry policy in the cache's account as well as the puller's own IAM policy, which a grant cannot write.
 */
import { IResolveContext, Lazy, Stack, Token, TokenComparison } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

function isEnvironmentAgnostic(stack: Stack): boolean {
  return Token.isUnresolved(stack.account) || Token.isUnresolved(stack.region);
}

function describe(stack: Stack): string {
  return isEnvironmentAgnostic(stack)
    ? `the environment-agnostic stack ${stack.node.path}`
    : `the stack ${stack.node.path} (account ${stack.account}, Region ${stack.region})`;
}

/**
 * Why `cache` cannot serve `consumer` (a construct of another stack), or undefined when it can: the same stack,
 * two environment-agnostic stacks (deployed to the same place, as the CLI points them), or two concrete
 * environments of the same account (another Region pulls across Regions, which ECR allows).
 */
export function environmentProblem(cache: IConstruct, consumer: IConstruct): string | undefined {
  const home = Stack.of(cache);
  const there = Stack.of(consumer);
  if (home === there) {
    return undefined;
  }
  if (isEnvironmentAgnostic(home) && !isEnvironmentAgnostic(there)) {
    return `${cache.node.path} is in ${describe(home)}, so its registry is "the account and Region it is deployed to", `
      + `which ${consumer.node.path} in ${describe(there)} would read as its own account and Region, where there is no cache. `
      + `Give ${home.node.path} a concrete env: { account, region }.`;
  }
  return accountProblem(cache, there.account, `${consumer.node.path} in ${describe(there)}`);
}

/**
 * A caution for a `consumer` in an environment-agnostic stack using a cache of a concrete environment: the URIs name
 * the cache's account and Region, right only where the stack is deployed to that account (elsewhere the pulls need
 * cross-account access). Undefined in every other case.
 */
export function environmentCaution(cache: IConstruct, consumer: IConstruct): string | undefined {
  const home = Stack.of(cache);
  const there = Stack.of(consumer);
  if (home === there || isEnvironmentAgnostic(home) || !isEnvironmentAgnostic(there)) {
    return undefined;
  }
  return `${there.node.path} has no environment, but its images now name the registry of ${cache.node.path} `
    + `(account ${home.account}, Region ${home.region}): deployed to another account, its tasks and pods cannot pull them. `
    + `Give ${there.node.path} env: { account: '${home.account}', region: '${home.region}' } (or the account it is deployed to, sharing the cache with SharedCache).`;
}

/** Why a puller of `account` cannot be granted pulls from `cache`, or undefined (same or unknown account). */
export function accountProblem(cache: IConstruct, account: string | undefined, who: string): string | undefined {
  const home = Stack.of(cache);
  if (account === undefined || Token.compareStrings(account, home.account) !== TokenComparison.DIFFERENT) {
    return undefined;
  }
  return `${who} is in account ${account}, but ${cache.node.path} is in account ${home.account}. Pulling across accounts `
    + 'needs a repository or registry policy in the cache\'s account as well as the puller\'s own IAM policy, and a grant '
    + 'writes only the second. Share the cache with that account through SharedCache (and SharedCacheMember there), '
    + 'or give that account a cache of its own.';
}

/**
 * The cache's registry URI as a token that refuses, at synth, to be used from a stack of another environment.
 * Only environment-agnostic stacks need it: a concrete environment gives a literal domain, right everywhere.
 */
export function checkedRegistryUri(cache: IConstruct, domain: string): string {
  if (!isEnvironmentAgnostic(Stack.of(cache))) {
    return domain;
  }
  // uncached: each use is checked in its own stack
  return Lazy.uncachedString({
    produce: (context: IResolveContext) => {
      const problem = environmentProblem(cache, context.scope);
      if (problem) {
        throw new Error(problem);
      }
      return domain;
    },
  }, { displayHint: 'RegistryUri' });
}
