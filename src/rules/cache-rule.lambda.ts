/**
 * A pull through cache rule whose credential and role change in place: the handler of `Custom::EcrPullThroughCacheRule`.
 *
 * `AWS::ECR::PullThroughCacheRule` makes every property create-only, so CloudFormation replaces a rule whose secret or
 * role changes, creating the new rule before deleting the old one, and ECR refuses a second rule for the prefix.
 * The ECR API changes both in place (`UpdatePullThroughCacheRule`,
 * https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_UpdatePullThroughCacheRule.html), which is what this
 * handler does on an update, so the prefix keeps its rule throughout.
 *
 * - Create: `CreatePullThroughCacheRule`. A rule that already exists with exactly these settings and was created
 *   within `RETRY_WINDOW_MS` is this request's own (a retried invocation) and is taken; any other rule under the
 *   prefix fails the create, never taken over: a taken rule is deleted with this resource, and when it is the
 *   `AWS::ECR::PullThroughCacheRule` this resource replaces, CloudFormation deletes it right after this create.
 * - Update: a credential or role change is `UpdatePullThroughCacheRule` (idempotent: a retry or a rollback's update
 *   back sets the same values); a change of the prefix, upstream URL, type or upstream prefix, or removing the
 *   credential or role, fails with the two-step procedure. Such a refusal is judged against the live rule too, so
 *   that the Update UPDATE_ROLLBACK then sends back (old and new swapped) succeeds when the rule still is what it asks
 *   for, instead of leaving the stack in UPDATE_ROLLBACK_FAILED. A rule deleted outside CloudFormation is created again
 *   by the update that finds it gone. The physical id (the prefix) never changes, so
 *   CloudFormation never deletes the rule after an update.
 * - Delete: `DeletePullThroughCacheRule`, unless the create had failed, the rule is already gone, or the rule under
 *   the prefix now points at another upstream (not this resource's to delete: logged and left).
 */
import {
  CreatePullThroughCacheRuleCommand, DeletePullThroughCacheRuleCommand, DescribePullThroughCacheRulesCommand, ECRClient,
  PullThroughCacheRule, UpdatePullThroughCacheRuleCommand,
} from '@aws-sdk/client-ecr';
import { FIXED_PROPERTIES, IN_PLACE_PROPERTIES, RuleProperties } from './contract';
import { awsErrorInfo } from '../private/handlers/aws-errors';
import { CustomResourceEvent, customResourceHandler, isFailedCreateId } from '../private/handlers/custom-resource';
import { log } from '../private/handlers/log';
import { sdkClientConfig } from '../private/handlers/sdk-config';
import { twoStepProcedure } from '../private/prefix-change';

let client: ECRClient | undefined;
function ecr(): ECRClient {
  client ??= new ECRClient(sdkClientConfig());
  return client;
}

/** The rule's properties from a request, checked: a missing prefix or URL is the template's fault, said plainly. */
export function ruleProperties(raw: Record<string, unknown> | undefined, which = 'ResourceProperties'): RuleProperties {
  const text = (key: keyof RuleProperties) => {
    const value = raw?.[key];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
  const prefix = text('EcrRepositoryPrefix');
  const url = text('UpstreamRegistryUrl');
  const type = text('UpstreamRegistry');
  if (!prefix || !url || !type) {
    throw new Error(`${which} must have EcrRepositoryPrefix, UpstreamRegistryUrl and UpstreamRegistry as strings; got ${JSON.stringify(raw)}`);
  }
  return {
    EcrRepositoryPrefix: prefix,
    UpstreamRegistryUrl: url,
    UpstreamRegistry: type,
    UpstreamRepositoryPrefix: text('UpstreamRepositoryPrefix'),
    CredentialArn: text('CredentialArn'),
    CustomRoleArn: text('CustomRoleArn'),
  };
}

/** ECR reports an unset upstream prefix as ROOT. */
function upstreamPrefixOf(value: string | undefined): string {
  return value ?? 'ROOT';
}

/**
 * How long after its creation a rule identical to a Create's may still be that request's own. A Create is repeated
 * only by Lambda's retries of an invocation that failed to answer (two retries, minutes apart, of a 2-minute function:
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html); an older identical rule is
 * someone else's.
 */
export const RETRY_WINDOW_MS = 15 * 60_000;

/** The upstream a rule names (what no update can change): its prefix, upstream URL and type, and upstream prefix. */
function sameUpstream(rule: PullThroughCacheRule, wanted: RuleProperties): boolean {
  return rule.ecrRepositoryPrefix === wanted.EcrRepositoryPrefix
    && rule.upstreamRegistryUrl === wanted.UpstreamRegistryUrl
    && (rule.upstreamRegistry === undefined || rule.upstreamRegistry === wanted.UpstreamRegistry)
    && upstreamPrefixOf(rule.upstreamRepositoryPrefix) === upstreamPrefixOf(wanted.UpstreamRepositoryPrefix);
}

/** The rule's credential and role as resource properties (absent when unset). */
function liveSettings(rule: PullThroughCacheRule): Pick<RuleProperties, 'CredentialArn' | 'CustomRoleArn'> {
  return { CredentialArn: rule.credentialArn || undefined, CustomRoleArn: rule.customRoleArn || undefined };
}

function matches(rule: PullThroughCacheRule, wanted: RuleProperties): boolean {
  const live = liveSettings(rule);
  return sameUpstream(rule, wanted) && live.CredentialArn === wanted.CredentialArn && live.CustomRoleArn === wanted.CustomRoleArn;
}

/** Whether a rule identical to a Create's is that request's own: made within the retry window (an unknown age is not). */
function madeByARetriedCreate(rule: PullThroughCacheRule, now = Date.now()): boolean {
  const created = rule.createdAt?.getTime();
  return created !== undefined && !Number.isNaN(created) && now - created <= RETRY_WINDOW_MS;
}

function describeForReason(rule: PullThroughCacheRule | undefined): string {
  if (!rule) {
    return 'upstream unknown';
  }
  return [`upstream ${rule.upstreamRegistryUrl}`, rule.credentialArn ? `credential ${rule.credentialArn}` : '',
    rule.customRoleArn ? `role ${rule.customRoleArn}` : '', rule.createdAt ? `created at ${rule.createdAt.toISOString()}` : '']
    .filter(part => part !== '').join(', ');
}

async function describeRule(prefix: string): Promise<PullThroughCacheRule | undefined> {
  try {
    const found = await ecr().send(new DescribePullThroughCacheRulesCommand({ ecrRepositoryPrefixes: [prefix] }));
    return found.pullThroughCacheRules?.find(r => r.ecrRepositoryPrefix === prefix);
  } catch (error) {
    const info = awsErrorInfo(error);
    if (info.name === 'PullThroughCacheRuleNotFoundException') {
      return undefined;
    }
    throw new Error(`DescribePullThroughCacheRules of the prefix '${prefix}' failed: ${info.name}: ${info.message}`);
  }
}

async function createRule(wanted: RuleProperties): Promise<void> {
  await ecr().send(new CreatePullThroughCacheRuleCommand({
    ecrRepositoryPrefix: wanted.EcrRepositoryPrefix,
    upstreamRegistryUrl: wanted.UpstreamRegistryUrl,
    upstreamRegistry: wanted.UpstreamRegistry as PullThroughCacheRule['upstreamRegistry'],
    upstreamRepositoryPrefix: wanted.UpstreamRepositoryPrefix,
    credentialArn: wanted.CredentialArn,
    customRoleArn: wanted.CustomRoleArn,
  }));
}

async function create(event: CustomResourceEvent) {
  const wanted = ruleProperties(event.ResourceProperties);
  const prefix = wanted.EcrRepositoryPrefix;
  try {
    await createRule(wanted);
    log('INFO', 'rule created', { prefix, upstreamRegistryUrl: wanted.UpstreamRegistryUrl });
  } catch (error) {
    const info = awsErrorInfo(error);
    if (info.name !== 'PullThroughCacheRuleAlreadyExistsException') {
      throw new Error(`CreatePullThroughCacheRule for the prefix '${prefix}' failed: ${info.name}: ${info.message}`);
    }
    const existing = await describeRule(prefix);
    if (!existing || !matches(existing, wanted) || !madeByARetriedCreate(existing)) {
      throw new Error(twoStepProcedure(prefix, `The prefix '${prefix}' already has a rule (${describeForReason(existing)}) that this `
        + `resource did not create, so it cannot create one for ${wanted.UpstreamRegistryUrl}`));
    }
    log('INFO', 'rule already exists with these settings (a retried create): taken', { prefix });
  }
  return { physicalResourceId: prefix };
}

async function update(event: CustomResourceEvent) {
  const wanted = ruleProperties(event.ResourceProperties);
  const before = ruleProperties(event.OldResourceProperties, 'OldResourceProperties');
  const prefix = before.EcrRepositoryPrefix;
  const physicalResourceId = event.PhysicalResourceId ?? prefix;
  const fixed = FIXED_PROPERTIES.filter(k => (k === 'UpstreamRepositoryPrefix'
    ? upstreamPrefixOf(before[k]) !== upstreamPrefixOf(wanted[k]) : before[k] !== wanted[k]));
  const removed = IN_PLACE_PROPERTIES.filter(k => before[k] !== undefined && wanted[k] === undefined);
  if (fixed.length > 0 || removed.length > 0) {
    const what = fixed.length > 0
      ? `cannot change its ${fixed.map(k => `${k} '${before[k] ?? 'ROOT'}' -> '${wanted[k] ?? 'ROOT'}'`).join(', ')} in place`
      : `would drop its ${removed.join(' and ')}, which UpdatePullThroughCacheRule cannot unset`;
    // No rule can make this change. But the request may be UPDATE_ROLLBACK undoing a change refused here (old and new
    // swapped): the rule was left as it was, so the live rule already is what is asked for, and that is success.
    const live = await describeRule(physicalResourceId);
    if (!live || !sameUpstream(live, wanted) || IN_PLACE_PROPERTIES.some(k => liveSettings(live)[k] !== undefined && wanted[k] === undefined)) {
      throw new Error(twoStepProcedure(prefix, `The rule for the prefix '${prefix}' ${what} (the rule under the prefix now has `
        + `${live ? describeForReason(live) : 'no rule'})`));
    }
    log('INFO', 'the live rule already has this upstream: a rollback of a refused change', { prefix, refused: what });
    return applyInPlace(physicalResourceId, liveSettings(live), wanted, physicalResourceId);
  }
  return applyInPlace(prefix, before, wanted, physicalResourceId);
}

/** Sets the credential and role the request asks for where they differ from `current`, with `UpdatePullThroughCacheRule`. */
async function applyInPlace(prefix: string, current: Pick<RuleProperties, 'CredentialArn' | 'CustomRoleArn'>, wanted: RuleProperties,
  physicalResourceId: string) {
  const changed = IN_PLACE_PROPERTIES.filter(k => current[k] !== wanted[k]);
  if (changed.length === 0) {
    log('INFO', 'nothing of the rule changed', { prefix });
    return { physicalResourceId };
  }
  try {
    await ecr().send(new UpdatePullThroughCacheRuleCommand({
      ecrRepositoryPrefix: prefix, credentialArn: wanted.CredentialArn, customRoleArn: wanted.CustomRoleArn,
    }));
  } catch (error) {
    const info = awsErrorInfo(error);
    if (info.name !== 'PullThroughCacheRuleNotFoundException') {
      throw new Error(`UpdatePullThroughCacheRule of the prefix '${prefix}' (${changed.join(', ')}) failed, the rule keeps its `
        + `previous settings: ${info.name}: ${info.message}`);
    }
    // Drift: the rule is gone, so the prefix is free. Putting back the rule the template declares is the only way this
    // update (and the rollback's update back) can succeed; without it the stack would be stuck in UPDATE_ROLLBACK_FAILED.
    log('WARN', 'the rule was deleted outside CloudFormation: created again with the requested settings', { prefix, changed });
    try {
      await createRule({ ...wanted, EcrRepositoryPrefix: prefix });
    } catch (createError) {
      const created = awsErrorInfo(createError);
      throw new Error(`The rule of the prefix '${prefix}' was deleted outside CloudFormation, and creating it again failed: `
        + `${created.name}: ${created.message}`);
    }
    return { physicalResourceId };
  }
  log('INFO', 'rule updated in place', { prefix, changed, credentialArn: wanted.CredentialArn, customRoleArn: wanted.CustomRoleArn });
  return { physicalResourceId };
}

async function remove(event: CustomResourceEvent) {
  if (isFailedCreateId(event.PhysicalResourceId)) {
    log('INFO', 'the create had failed: nothing to delete', { physicalResourceId: event.PhysicalResourceId });
    return;
  }
  const wanted = ruleProperties(event.ResourceProperties);
  const prefix = wanted.EcrRepositoryPrefix;
  if (event.PhysicalResourceId !== prefix) {
    log('WARN', 'physical id is not the rule prefix: left alone', { physicalResourceId: event.PhysicalResourceId, prefix });
    return;
  }
  const existing = await describeRule(prefix);
  if (!existing) {
    log('INFO', 'rule already gone', { prefix });
    return;
  }
  if (existing.upstreamRegistryUrl !== wanted.UpstreamRegistryUrl) {
    log('WARN', 'the rule under the prefix now points at another upstream: not this resource\'s, left alone',
      { prefix, upstreamRegistryUrl: existing.upstreamRegistryUrl, expected: wanted.UpstreamRegistryUrl });
    return;
  }
  try {
    await ecr().send(new DeletePullThroughCacheRuleCommand({ ecrRepositoryPrefix: prefix }));
  } catch (error) {
    const info = awsErrorInfo(error);
    if (info.name === 'PullThroughCacheRuleNotFoundException') {
      log('INFO', 'rule already gone', { prefix });
      return;
    }
    throw new Error(`DeletePullThroughCacheRule of the prefix '${prefix}' failed: ${info.name}: ${info.message}`);
  }
  log('INFO', 'rule deleted', { prefix });
}

export const handler = customResourceHandler({ create, update, delete: remove });
