/**
 * Checks that need the whole app, not one construct: ECR has one pull through cache rule per prefix and at most
 * 50 rules per registry (account and Region), and Secrets Manager one secret per name, whichever construct or
 * stack asks for them. Each `PullThroughCacheRules` registers here, and asks the credentials which secrets they
 * created; the checks run at synth (`node.addValidation`) and name both constructs of a clash.
 *
 * Stacks without a concrete account or Region (environment-agnostic) are deployed wherever the CLI points them,
 * usually all to the same place, so they are compared with each other as one environment.
 */
import { Stack, Token } from 'aws-cdk-lib';
import { Construct, IConstruct } from 'constructs';
import { twoStepProcedure } from './prefix-change';
import { createdSecretName } from '../upstream-credentials';

/** ECR allows 50 pull through cache rules per registry (per Region), a quota that cannot be raised. */
export const MAX_RULES_PER_REGISTRY = 50;

interface CacheEntry {
  readonly construct: Construct;
  readonly environment: string;
  /** Prefixes with a pull through cache rule (they count against the quota). */
  readonly prefixes: readonly string[];
  /** Prefixes the mirror copies into: no rule, but a repository creation template of their own. */
  readonly copiedPrefixes: readonly string[];
  /** The upstream registry URL of each prefix, to tell a prefix given to another upstream from a cache defined twice. */
  readonly upstreamOf: ReadonlyMap<string, string>;
}
interface AppEntries { readonly caches: CacheEntry[] }

/** One list per app (construct tree root), forgotten with the app. */
const apps = new WeakMap<IConstruct, AppEntries>();

function entriesOf(scope: IConstruct): AppEntries {
  const root = scope.node.root;
  let entries = apps.get(root);
  if (!entries) {
    entries = { caches: [] };
    apps.set(root, entries);
  }
  return entries;
}

/** `account 111122223333, Region eu-west-1`, with unresolved parts named as such. */
function environmentOf(scope: IConstruct): string {
  const stack = Stack.of(scope);
  const account = Token.isUnresolved(stack.account) ? 'the deploy-time account' : `account ${stack.account}`;
  const region = Token.isUnresolved(stack.region) ? 'the deploy-time Region' : `Region ${stack.region}`;
  return `${account}, ${region}`;
}

/** Registers a cache's rule prefixes; clashes with caches registered before it fail its validation. */
export function registerCache(cache: Construct, prefixes: readonly string[], copiedPrefixes: readonly string[] = [],
  upstreamOf: ReadonlyMap<string, string> = new Map()): void {
  const entries = entriesOf(cache);
  const entry: CacheEntry = {
    construct: cache, environment: environmentOf(cache), prefixes: prefixes.filter(p => !Token.isUnresolved(p)), copiedPrefixes, upstreamOf,
  };
  entries.caches.push(entry);
  cache.node.addValidation({ validate: () => [...validateCache(entries, entry), ...secretClashes(cache)] });
}

function validateCache(entries: AppEntries, entry: CacheEntry): string[] {
  const errors: string[] = [];
  const here = entry.construct.node.path;
  const sameEnvironment = entries.caches.filter(c => c.environment === entry.environment);
  const index = sameEnvironment.indexOf(entry);
  for (const prefix of [...entry.prefixes, ...entry.copiedPrefixes]) {
    const other = sameEnvironment.slice(0, index).find(c => c.prefixes.includes(prefix) || c.copiedPrefixes.includes(prefix));
    if (other) {
      errors.push(`${here} and ${other.construct.node.path} both create a pull through cache rule with the prefix '${prefix}' `
        + `in ${entry.environment}; ECR allows one rule per prefix. Give one of them another ecrRepositoryPrefix, or cache that upstream once.`
        + ` ${prefixMoveSteps(prefix, entry, other)}`);
    }
  }
  // mirrors' prefixes too: a mirror under a rule's prefix (or another mirror's) collides in the same way
  const used = (c: CacheEntry) => [...c.prefixes, ...c.copiedPrefixes];
  for (const [i, prefix] of used(entry).entries()) {
    for (const other of sameEnvironment.slice(0, index + 1)) {
      // each pair once: against the caches before this one, and within this one against the prefixes before it
      for (const o of other === entry ? used(entry).slice(0, i) : used(other)) {
        const pair = contains(prefix, o) ? [prefix, o] : contains(o, prefix) ? [o, prefix] : undefined;
        if (pair) {
          const [outer, inner] = pair;
          errors.push(`${here}${other === entry ? '' : ` and ${other.construct.node.path}`} use the cache `
            + `prefixes '${outer}' and '${inner}' in ${entry.environment}: an image of the '${outer}' upstream under `
            + `'${outer === 'ROOT' ? inner : inner.slice(outer.length + 1)}/' would get the cache repository of an image of the `
            + `'${inner}' upstream, and ECR would pull it through the wrong rule. Give the upstreams prefixes of which none is ROOT `
            + 'or a path prefix of another.');
        }
      }
    }
  }
  const before = sameEnvironment.slice(0, index).reduce((n, c) => n + c.prefixes.length, 0);
  const total = sameEnvironment.reduce((n, c) => n + c.prefixes.length, 0);
  if (before <= MAX_RULES_PER_REGISTRY && before + entry.prefixes.length > MAX_RULES_PER_REGISTRY) {
    const others = sameEnvironment.filter(c => c !== entry).map(c => `${c.construct.node.path} (${c.prefixes.length})`);
    errors.push(`${here} (${entry.prefixes.length} rules) and ${others.join(', ')} together create ${total} pull through cache rules `
      + `in ${entry.environment}, but ECR allows at most ${MAX_RULES_PER_REGISTRY} per Region (a quota that cannot be raised). `
      + 'Drop upstreams, or deploy some caches to another Region.');
  }
  return errors;
}

/**
 * What to do when the clash is a change between two deploys: another upstream under a prefix (two steps), or a cache
 * moved to another stack (the stack that gives the prefix up deploys first).
 */
function prefixMoveSteps(prefix: string, entry: CacheEntry, other: CacheEntry): string {
  const mine = entry.upstreamOf.get(prefix);
  const theirs = other.upstreamOf.get(prefix);
  if (mine !== undefined && theirs !== undefined && mine !== theirs) {
    return twoStepProcedure(prefix, `To give the prefix '${prefix}' to ${mine} instead of ${theirs}`);
  }
  if (Stack.of(entry.construct) === Stack.of(other.construct)) {
    // the rule's logical id follows its prefix, not its cache (private/logical-ids.ts): moved in one change, it stays
    return `To move the rule to another cache of the stack: Remove it from ${other.construct.node.path} and add it to `
      + `${entry.construct.node.path} in the same deploy; its rule keeps its logical id, so nothing is replaced.`;
  }
  return `To move the rule to another stack: remove it from ${other.construct.node.path} and deploy that stack first (its rule `
    + `is deleted), then add it to ${entry.construct.node.path} and deploy this one. The README ("Changing a cache") says when `
    + '`cdk refactor` can move it instead.';
}

/** Whether the repositories of prefix `outer` include those of `inner`: ROOT includes every prefix, `a` includes `a/b`. */
function contains(outer: string, inner: string): boolean {
  return outer !== inner && (outer === 'ROOT' || inner.startsWith(`${outer}/`));
}

/**
 * The secrets `UpstreamCredentials.createSecret` made under `cache` whose name an earlier created secret of the app
 * already has in the same environment (a secret name exists once per account and Region).
 */
function secretClashes(cache: Construct): string[] {
  const seen = new Map<string, IConstruct>();
  const errors: string[] = [];
  for (const construct of cache.node.root.node.findAll()) {
    const name = createdSecretName(construct);
    if (name === undefined || Token.isUnresolved(name)) {
      continue;
    }
    const environment = environmentOf(construct);
    const key = `${environment}\u0000${name}`;
    const other = seen.get(key);
    if (other === undefined) {
      seen.set(key, construct);
    } else if (construct.node.scopes.includes(cache)) {
      errors.push(`${construct.node.path} and ${other.node.path} both create the secret '${name}' in ${environment}; `
        + 'a secret name can exist only once. Pass another secretName to UpstreamCredentials.createSecret, or share one secret '
        + 'with UpstreamCredentials.fromSecret.');
    }
  }
  return errors;
}

interface SharedEntry { readonly construct: Construct; readonly registryUrl: string; readonly prefixes: readonly string[] }
const sharedCaches = new WeakMap<IConstruct, SharedEntry[]>();

/**
 * Registers a shared central cache and its registry policy. A registry has one registry policy
 * (`AWS::ECR::RegistryPolicy` is one per account and Region, and `PutRegistryPolicy` replaces the whole policy),
 * so another one in the same environment of the app, ours or the user's own L1, fails validation.
 */
export function registerSharedCache(shared: Construct, policy: Construct, registryUrl: string, prefixes: readonly string[]): void {
  const root = shared.node.root;
  const list = sharedCaches.get(root) ?? [];
  sharedCaches.set(root, list);
  list.push({ construct: shared, registryUrl, prefixes });
  const environment = environmentOf(policy);
  shared.node.addValidation({
    validate: () => root.node.findAll()
      .filter(c => c !== policy && (c as { cfnResourceType?: string }).cfnResourceType === 'AWS::ECR::RegistryPolicy'
        && environmentOf(c) === environment)
      .map(c => `${policy.node.path} and ${c.node.path} both set the ECR registry policy of ${environment}; a registry has `
        + 'one policy, and each deploy would replace the other. Move the other policy\'s statements into the SharedCache\'s '
        + 'additionalStatements and remove it.'),
  });
}

/**
 * ECR upstreams that point at a shared cache of this app must name one of its shared prefixes as their upstream
 * prefix: its registry policy grants nothing else (a rule without one would mirror the whole central registry).
 */
export function checkSharedCacheUpstreams(cache: Construct, upstreams: ReadonlyArray<{
  readonly registryUrl: string; readonly ecrRepositoryPrefix: string; readonly upstreamRepositoryPrefix?: string;
}>): void {
  const root = cache.node.root;
  cache.node.addValidation({
    validate: () => {
      const errors: string[] = [];
      for (const shared of sharedCaches.get(root) ?? []) {
        for (const u of upstreams.filter(x => x.registryUrl === shared.registryUrl)) {
          const upstreamPrefix = u.upstreamRepositoryPrefix ?? 'ROOT';
          if (!shared.prefixes.includes(upstreamPrefix)) {
            errors.push(`${cache.node.path}: the ECR upstream ${u.registryUrl} (prefix '${u.ecrRepositoryPrefix}') is the shared cache `
              + `${shared.construct.node.path}, but its upstreamRepositoryPrefix is ${u.upstreamRepositoryPrefix === undefined ? 'missing (the whole registry)' : `'${upstreamPrefix}'`}; `
              + `the shared cache grants only ${shared.prefixes.map(p => `'${p}'`).join(', ')}. Use SharedCacheMember, or set upstreamRepositoryPrefix `
              + 'to one of those prefixes.');
          }
        }
      }
      return errors;
    },
  });
}
