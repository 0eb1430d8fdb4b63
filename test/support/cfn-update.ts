/**
 * Judges a stack update as CloudFormation applies it, from the templates before and after, so a test can say whether
 * a change a user makes between two deploys deploys, without an AWS account.
 *
 * What CloudFormation does (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html):
 * - resources are matched by logical id; a logical id that changes its Type fails the update;
 * - a change of a create-only property (the resource schema's `createOnlyProperties`), or of a value it takes by
 *   `Ref`/`Fn::GetAtt` from a resource that is replaced or new, replaces the resource: the new one is created first,
 *   and the old one deleted in the cleanup phase, after every create and update succeeded;
 * - a new logical id is created, and a logical id that is gone is deleted in the cleanup phase.
 * So for a moment the old and the new copies of everything exist together: names that must be unique in a registry
 * (a pull through cache rule's prefix, a repository creation template's prefix, a secret's name; generically a
 * writable primary identifier such as a function name) collide, and the update fails and rolls back; and of a
 * per-registry setting (registry policy, registry scanning) the old copy's delete removes what the new one set.
 *
 * The create-only properties and primary identifiers come from the resource schemas cfn-lint ships (the
 * CloudFormation registry's own), read once through Python. The library's custom rule type has no schema: its
 * behaviour comes from `src/rules/contract.ts`, the same constants its handler acts on.
 */
import { execFileSync } from 'child_process';
import { FIXED_PROPERTIES, IN_PLACE_PROPERTIES, RULE_RESOURCE_TYPE } from '../../src/rules/contract';

export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}
export interface StackTemplate {
  readonly Resources?: Record<string, TemplateResource>;
}

interface TypeSchema {
  /** Top-level property names that are create-only (nested create-only paths count as their top-level property). */
  readonly createOnly: string[];
  /** Property names whose value is unique in the account and Region, when the template sets them. */
  readonly unique: string[];
}

/** Names a schema does not mark as the primary identifier but that are unique all the same. */
const ALSO_UNIQUE: Record<string, string[]> = {
  'AWS::SecretsManager::Secret': ['Name'], // primary identifier: the ARN; the name is unique per account and Region
  'AWS::Events::Rule': ['Name'],
};

/**
 * Types of which a registry (account and Region) has one: their primary identifier is the read-only `RegistryId`, so
 * a second copy does not fail, it overwrites the first, and the old copy's delete at cleanup then removes the
 * setting (for scanning, CloudFormation's delete handler even calls `inspector2:Disable`, ECR-FACTS.md section 2).
 */
const ONE_PER_REGISTRY = new Set(['AWS::ECR::RegistryPolicy', 'AWS::ECR::RegistryScanningConfiguration', 'AWS::ECR::ReplicationConfiguration']);

const schemas = new Map<string, TypeSchema>();

/** Reads the schemas of these types from cfn-lint's data (one Python run for every type not read yet). */
function loadSchemas(types: Iterable<string>): void {
  const missing = [...new Set(types)].filter(t => !schemas.has(t) && !t.startsWith('Custom::') && t !== 'AWS::CloudFormation::CustomResource');
  if (missing.length === 0) {
    return;
  }
  const script = [
    'import json, sys',
    'from cfnlint.schema import PROVIDER_SCHEMA_MANAGER as m',
    'out = {}',
    'for t in json.loads(sys.argv[1]):',
    '    s = m.get_resource_schema("us-east-1", t).schema',
    '    out[t] = {k: s.get(k, []) for k in ("createOnlyProperties", "primaryIdentifier", "readOnlyProperties")}',
    'print(json.dumps(out))',
  ].join('\n');
  let raw: string;
  try {
    raw = execFileSync('python3', ['-c', script, JSON.stringify(missing)], { encoding: 'utf-8' });
  } catch (e: any) {
    throw new Error(`reading the resource schemas of ${missing.join(', ')} from cfn-lint failed (run ./scripts/install-test-deps): ${e.stderr ?? e}`);
  }
  const topLevel = (paths: string[]) => [...new Set(paths.map(p => p.split('/')[2]))];
  for (const [type, s] of Object.entries(JSON.parse(raw) as Record<string, Record<string, string[]>>)) {
    const readOnly = new Set(topLevel(s.readOnlyProperties));
    const identifiers = s.primaryIdentifier.length === 1 ? topLevel(s.primaryIdentifier).filter(p => !readOnly.has(p)) : [];
    schemas.set(type, { createOnly: topLevel(s.createOnlyProperties), unique: [...identifiers, ...(ALSO_UNIQUE[type] ?? [])] });
  }
}

/** The create-only properties of a type, as cfn-lint's schema lists them. */
export function createOnlyProperties(type: string): string[] {
  loadSchemas([type]);
  return schemas.get(type)?.createOnly ?? [];
}

/** What the resource holds uniquely: `AWS::ECR::PullThroughCacheRule prefix=docker-hub`, whichever type holds it. */
function claimsOf(resource: TemplateResource): string[] {
  const props = resource.Properties ?? {};
  if (resource.Type === RULE_RESOURCE_TYPE) {
    return [`AWS::ECR::PullThroughCacheRule EcrRepositoryPrefix=${JSON.stringify(props.EcrRepositoryPrefix)}`];
  }
  if (ONE_PER_REGISTRY.has(resource.Type)) {
    return [`${resource.Type} (one per registry: the second copy overwrites the first, and the old copy's delete removes it)`];
  }
  const schema = schemas.get(resource.Type);
  return (schema?.unique ?? []).filter(p => props[p] !== undefined).map(p => `${resource.Type} ${p}=${JSON.stringify(props[p])}`);
}

/** Whether a value refers (`Ref`, `Fn::GetAtt`, `Fn::Sub` `${Id}`) to any of these logical ids. */
function refersTo(value: unknown, ids: ReadonlySet<string>): boolean {
  if (Array.isArray(value)) {
    return value.some(v => refersTo(v, ids));
  }
  if (value && typeof value === 'object') {
    return Object.entries(value).some(([k, v]) => {
      if (k === 'Ref' && typeof v === 'string') {
        return ids.has(v);
      }
      if (k === 'Fn::GetAtt') {
        const target = Array.isArray(v) ? v[0] : String(v).split('.')[0];
        return ids.has(target as string);
      }
      if (k === 'Fn::Sub') {
        const text = Array.isArray(v) ? v[0] : v;
        if (typeof text === 'string' && [...text.matchAll(/\$\{([^!}.]+)[^}]*\}/g)].some(m => ids.has(m[1]))) {
          return true;
        }
      }
      return refersTo(v, ids);
    });
  }
  return false;
}

export interface UpdateJudgement {
  /** Whether CloudFormation would apply the update without failing. */
  readonly deploys: boolean;
  /** Why it would fail, one line each. */
  readonly problems: string[];
  readonly created: string[];
  readonly replaced: string[];
  readonly updated: string[];
  readonly deleted: string[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Judges the update of one stack from `before` to `after`. `others` are the templates of the app's other stacks as
 * deployed while this one updates (same account and Region): what they hold is held for the whole update.
 */
export function judgeUpdate(before: StackTemplate, after: StackTemplate, others: readonly StackTemplate[] = []): UpdateJudgement {
  const old = before.Resources ?? {};
  const next = after.Resources ?? {};
  loadSchemas([...Object.values(old), ...Object.values(next), ...others.flatMap(o => Object.values(o.Resources ?? {}))].map(r => r.Type));
  const problems: string[] = [];
  const created = Object.keys(next).filter(id => !(id in old));
  const deleted = Object.keys(old).filter(id => !(id in next));
  const kept = Object.keys(next).filter(id => id in old);
  for (const id of kept.filter(i => old[i].Type !== next[i].Type)) {
    problems.push(`${id}: its type changes from ${old[id].Type} to ${next[id].Type}, which CloudFormation does not allow under one logical id`);
  }

  // replacements, to a fixed point: a create-only value taken from a new or replaced resource changes too
  const replaced = new Set<string>();
  const fresh = new Set(created);
  for (let grew = true; grew;) {
    grew = false;
    for (const id of kept.filter(i => !replaced.has(i) && old[i].Type === next[i].Type)) {
      const changed = (p: string) => !same(old[id].Properties?.[p], next[id].Properties?.[p])
        || refersTo(next[id].Properties?.[p], new Set([...fresh, ...replaced]));
      if (next[id].Type === RULE_RESOURCE_TYPE) {
        // the handler refuses, and CloudFormation rolls back
        const fixed = FIXED_PROPERTIES.filter(changed);
        const dropped = IN_PLACE_PROPERTIES.filter(p => old[id].Properties?.[p] !== undefined && next[id].Properties?.[p] === undefined);
        if (fixed.length + dropped.length > 0) {
          problems.push(`${id}: the rule handler refuses to change ${[...fixed, ...dropped].join(', ')} in place (two-step procedure)`);
        }
        if (changed('ServiceToken')) {
          problems.push(`${id}: a custom resource's ServiceToken cannot change`);
        }
        continue;
      }
      if (createOnlyProperties(next[id].Type).some(changed)) {
        replaced.add(id);
        grew = true;
      }
    }
  }
  const updated = kept.filter(id => !replaced.has(id) && (!same(old[id].Properties, next[id].Properties)
    || refersTo(next[id].Properties, new Set([...fresh, ...replaced]))));

  // during the update: everything of before still exists; new and replacement copies are added; in-place updates
  // hold their new values. The cleanup phase then deletes the old copies.
  const held: Array<[string, string]> = others.flatMap((o, i) => Object.entries(o.Resources ?? {})
    .flatMap(([id, r]) => claimsOf(r).map(c => [c, `${id} (another stack #${i + 1})`] as [string, string])));
  for (const [id, r] of Object.entries(old)) {
    const current = updated.includes(id) ? next[id] : r;
    held.push(...claimsOf(current).map(c => [c, `${id}${replaced.has(id) ? ' (old copy)' : deleted.includes(id) ? ' (deleted at cleanup)' : ''}`] as [string, string]));
  }
  for (const id of [...created, ...replaced]) {
    held.push(...claimsOf(next[id]).map(c => [c, `${id} (${replaced.has(id) ? 'replacement' : 'new'})`] as [string, string]));
  }
  const byClaim = new Map<string, string[]>();
  for (const [claim, holder] of held) {
    byClaim.set(claim, [...(byClaim.get(claim) ?? []), holder]);
  }
  for (const [claim, holders] of byClaim) {
    if (holders.length > 1) {
      problems.push(`${claim} would be held twice while the update runs (create before delete): ${holders.join(' and ')}`);
    }
  }
  return { deploys: problems.length === 0, problems, created, replaced: [...replaced], updated, deleted };
}

/**
 * Judges an app update stack by stack, in deploy order, the way `cdk deploy --all` runs it: each stack updates while
 * the stacks before it already hold their new state and those after it their old one (a stack that left the app
 * stays deployed). Returns the first stack's judgement that fails, or the last one.
 */
export function judgeAppUpdate(before: Readonly<Record<string, StackTemplate>>, after: Readonly<Record<string, StackTemplate>>,
  order: readonly string[] = Object.keys(after)): UpdateJudgement & { readonly stack?: string } {
  const state: Record<string, StackTemplate> = { ...before };
  let last: UpdateJudgement & { stack?: string } = { deploys: true, problems: [], created: [], replaced: [], updated: [], deleted: [] };
  for (const name of order) {
    const others = Object.entries(state).filter(([n]) => n !== name).map(([, t]) => t);
    const judgement = judgeUpdate(state[name] ?? {}, after[name], others);
    if (!judgement.deploys) {
      return { ...judgement, stack: name };
    }
    state[name] = after[name];
    last = { ...judgement, stack: name };
  }
  return last;
}
