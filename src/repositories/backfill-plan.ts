/**
 * What backfill does to one repository: pure, so every case is tested without an API (no CDK, no SDK imports).
 *
 * Lifecycle policy, "ours" and "theirs": a repository's policy is this cache's when it is the template's current policy
 * or the one the template had before this update (what ECR gave the repositories created under it, or a previous
 * backfill set). A repository without a policy is adopted. Any other policy someone wrote for that repository: it is
 * kept and reported, unless the user asked to replace such policies.
 * Tags: the template's tags are set where missing or different; a tag the previous template had and this one dropped is
 * removed where it still has the previous value (a value someone changed since is theirs). Encryption cannot change on
 * an existing repository (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html is the only
 * call that sets it): a difference is reported, nothing more.
 */

export interface WantedSettings {
  readonly lifecyclePolicy?: string;
  readonly tags: ReadonlyMap<string, string>;
  readonly encryptionType: string;
  readonly kmsKey?: string;
  readonly replaceOtherLifecyclePolicies: boolean;
}

export interface RepositoryState {
  readonly name: string;
  readonly lifecyclePolicy?: string;
  readonly tags: ReadonlyMap<string, string>;
  readonly encryptionType?: string;
  readonly kmsKey?: string;
}

export type LifecycleDecision =
  | { readonly action: 'keep'; readonly reason: 'current' | 'template has none' }
  | { readonly action: 'set'; readonly reason: 'had none' | 'previous template policy' | 'replaced its own policy' }
  | { readonly action: 'skip'; readonly reason: 'has a lifecycle policy this cache did not write' };

export interface BackfillPlan {
  readonly lifecycle: LifecycleDecision;
  /** Tags to set (missing or different). */
  readonly tagsToSet: ReadonlyMap<string, string>;
  /** Tag keys to remove (dropped from the template, still with the old value). */
  readonly tagsToRemove: readonly string[];
  /** Why the encryption differs from the template's, when it does. */
  readonly encryptionDiffers?: string;
}

/** A lifecycle policy in a form that compares equal however ECR or a person spaced or ordered its keys. */
export function canonicalPolicy(text: string | undefined): string | undefined {
  if (text === undefined || text.trim() === '') {
    return undefined;
  }
  try {
    return JSON.stringify(sortKeys(JSON.parse(text)));
  } catch {
    return text.trim(); // not JSON: compared as text (ECR would not have accepted it, so it matches nothing of ours)
  }
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(sortKeys);
  }
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map(k => [k, sortKeys((value as Record<string, unknown>)[k])]));
  }
  return value;
}

export function planBackfill(repository: RepositoryState, wanted: WantedSettings, previous?: WantedSettings): BackfillPlan {
  return {
    lifecycle: lifecycleDecision(repository, wanted, previous),
    ...tagChanges(repository, wanted, previous),
    encryptionDiffers: encryptionDifference(repository, wanted),
  };
}

function lifecycleDecision(repository: RepositoryState, wanted: WantedSettings, previous?: WantedSettings): LifecycleDecision {
  const target = canonicalPolicy(wanted.lifecyclePolicy);
  const current = canonicalPolicy(repository.lifecyclePolicy);
  if (target === undefined) {
    return { action: 'keep', reason: 'template has none' };
  }
  if (current === target) {
    return { action: 'keep', reason: 'current' };
  }
  if (current === undefined) {
    return { action: 'set', reason: 'had none' };
  }
  const before = canonicalPolicy(previous?.lifecyclePolicy);
  if (before !== undefined && current === before) {
    return { action: 'set', reason: 'previous template policy' };
  }
  return wanted.replaceOtherLifecyclePolicies
    ? { action: 'set', reason: 'replaced its own policy' }
    : { action: 'skip', reason: 'has a lifecycle policy this cache did not write' };
}

function tagChanges(repository: RepositoryState, wanted: WantedSettings, previous?: WantedSettings) {
  const tagsToSet = new Map([...wanted.tags].filter(([key, value]) => repository.tags.get(key) !== value));
  const tagsToRemove = [...(previous?.tags ?? new Map<string, string>())]
    .filter(([key, value]) => !wanted.tags.has(key) && repository.tags.get(key) === value)
    .map(([key]) => key);
  return { tagsToSet, tagsToRemove };
}

function encryptionDifference(repository: RepositoryState, wanted: WantedSettings): string | undefined {
  const type = repository.encryptionType ?? 'AES256';
  if (type !== wanted.encryptionType) {
    return `encrypted with ${type}, the template says ${wanted.encryptionType}`;
  }
  if (wanted.kmsKey !== undefined && repository.kmsKey !== undefined && repository.kmsKey !== wanted.kmsKey) {
    return `encrypted with the KMS key ${repository.kmsKey}, the template says ${wanted.kmsKey}`;
  }
  return undefined;
}
