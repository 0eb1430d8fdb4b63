/**
 * Backfill: gives the repositories that already exist under the cache prefixes what the creation template gives new
 * ones (`Custom::EcrCacheRepositoryBackfill`). Creation templates apply only to repositories created after them
 * (https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-creation-templates.html).
 *
 * - Create, and Update (CloudFormation sends one only when a property changed: a template setting, a prefix): every
 *   repository under the prefixes is read (lifecycle policy, tags, encryption) and changed as `planBackfill` decides.
 *   Idempotent: a retried or repeated run finds the work done and changes nothing.
 * - Delete: nothing (the repositories keep their settings; teardown is the other resource's).
 * - The run's report is one log line, `"message":"backfill report"`, with the counts and names of what was changed,
 *   skipped and why, and the same counts as metrics. A repository that failed after every retry fails the deploy,
 *   with the counts in the stack event: deploying again finishes the job.
 */
import {
  ECRClient, GetLifecyclePolicyCommand, PutLifecyclePolicyCommand, Repository, TagResourceCommand, UntagResourceCommand,
} from '@aws-sdk/client-ecr';
import { BackfillPlan, WantedSettings, planBackfill } from './backfill-plan';
import { BackfillProperties, METRIC_NAMESPACE, RepositoryMetric, TagProperty } from './contract';
import { awsErrorInfo } from '../private/handlers/aws-errors';
import { mapBounded, retryTransient } from '../private/handlers/bounded';
import { CustomResourceEvent, customResourceHandler } from '../private/handlers/custom-resource';
import { log } from '../private/handlers/log';
import { CONCURRENCY, repositoriesUnder, sample, tagsOf, writeReport } from '../private/handlers/repository-listing';
import { sdkClientConfig } from '../private/handlers/sdk-config';

let client: ECRClient | undefined;
function ecr(): ECRClient {
  client ??= new ECRClient(sdkClientConfig());
  return client;
}

/** The properties of a request, checked: anything missing is the template's fault, said with what arrived. */
export function backfillProperties(raw: Record<string, unknown> | undefined, which = 'ResourceProperties'): BackfillProperties {
  const prefixes = raw?.Prefixes;
  if (!Array.isArray(prefixes) || prefixes.length === 0 || prefixes.some(p => typeof p !== 'string' || p === '')
    || typeof raw?.CacheName !== 'string') {
    throw new Error(`${which} must have Prefixes (a non-empty list of cache prefixes) and CacheName; got ${JSON.stringify(raw)}`);
  }
  const text = (key: string) => (typeof raw[key] === 'string' && raw[key] !== '' ? raw[key] as string : undefined);
  const tags = Array.isArray(raw.ResourceTags) ? raw.ResourceTags as TagProperty[] : [];
  return {
    Prefixes: prefixes as string[],
    LifecyclePolicy: text('LifecyclePolicy'),
    ResourceTags: tags,
    EncryptionType: text('EncryptionType'),
    KmsKey: text('KmsKey'),
    ReplaceOtherLifecyclePolicies: text('ReplaceOtherLifecyclePolicies'),
    CacheName: raw.CacheName,
  };
}

function wantedOf(properties: BackfillProperties): WantedSettings {
  return {
    lifecyclePolicy: properties.LifecyclePolicy,
    tags: new Map((properties.ResourceTags ?? []).map(t => [t.Key, t.Value])),
    encryptionType: properties.EncryptionType ?? 'AES256',
    kmsKey: properties.KmsKey,
    replaceOtherLifecyclePolicies: properties.ReplaceOtherLifecyclePolicies === 'true',
  };
}

type Outcome =
  | { readonly name: string; readonly result: 'changed' | 'current' | 'gone'; readonly plan?: BackfillPlan }
  | { readonly name: string; readonly result: 'failed'; readonly reason: string; readonly plan?: BackfillPlan };

async function lifecyclePolicyOf(name: string): Promise<string | undefined> {
  try {
    const found = await retryTransient('GetLifecyclePolicy', () => ecr().send(new GetLifecyclePolicyCommand({ repositoryName: name })));
    return found.lifecyclePolicyText;
  } catch (error) {
    if (awsErrorInfo(error).name === 'LifecyclePolicyNotFoundException') {
      return undefined;
    }
    throw error;
  }
}

async function backfillOne(repository: Repository, wanted: WantedSettings, previous?: WantedSettings): Promise<Outcome> {
  const name = repository.repositoryName!;
  let plan: BackfillPlan | undefined;
  try {
    const [lifecyclePolicy, tags] = await Promise.all([lifecyclePolicyOf(name), tagsOf(ecr(), repository.repositoryArn!)]);
    plan = planBackfill({
      name,
      lifecyclePolicy,
      tags,
      encryptionType: repository.encryptionConfiguration?.encryptionType,
      kmsKey: repository.encryptionConfiguration?.kmsKey,
    }, wanted, previous);
    if (plan.lifecycle.action === 'set') {
      await retryTransient('PutLifecyclePolicy', () => ecr().send(new PutLifecyclePolicyCommand({
        repositoryName: name, lifecyclePolicyText: wanted.lifecyclePolicy,
      })));
    }
    if (plan.tagsToSet.size > 0) {
      await retryTransient('TagResource', () => ecr().send(new TagResourceCommand({
        resourceArn: repository.repositoryArn, tags: [...plan!.tagsToSet].map(([Key, Value]) => ({ Key, Value })),
      })));
    }
    if (plan.tagsToRemove.length > 0) {
      await retryTransient('UntagResource', () => ecr().send(new UntagResourceCommand({
        resourceArn: repository.repositoryArn, tagKeys: [...plan!.tagsToRemove],
      })));
    }
    const changed = plan.lifecycle.action === 'set' || plan.tagsToSet.size > 0 || plan.tagsToRemove.length > 0;
    return { name, plan, result: changed ? 'changed' : 'current' };
  } catch (error) {
    const info = awsErrorInfo(error);
    if (info.name === 'RepositoryNotFoundException') {
      return { name, plan, result: 'gone' }; // deleted since the listing: nothing to adopt
    }
    return { name, plan, result: 'failed', reason: `${info.name}: ${info.message}` };
  }
}

/** Adopts every repository under the prefixes; logs the report, publishes its counts, throws when any failed. */
export async function backfill(properties: BackfillProperties, previousProperties?: BackfillProperties): Promise<Record<string, string>> {
  const started = Date.now();
  const wanted = wantedOf(properties);
  const previous = previousProperties ? wantedOf(previousProperties) : undefined;
  const repositories = await repositoriesUnder(ecr(), properties.Prefixes);
  const outcomes = await mapBounded(repositories, CONCURRENCY, r => backfillOne(r, wanted, previous));

  const named = (result: Outcome['result']) => outcomes.filter(o => o.result === result).map(o => o.name);
  const changed = outcomes.filter(o => o.result === 'changed');
  // a repository whose own policy was kept may still have had its tags set: skipped counts the policy decision
  const skipped = outcomes.filter(o => o.result !== 'failed' && o.plan?.lifecycle.action === 'skip').map(o => o.name);
  const failed = outcomes.filter((o): o is Extract<Outcome, { result: 'failed' }> => o.result === 'failed');
  const encryption = outcomes.filter(o => o.plan?.encryptionDiffers);
  const counts = {
    [RepositoryMetric.BACKFILL_CHANGED]: changed.length,
    [RepositoryMetric.BACKFILL_CURRENT]: named('current').length,
    [RepositoryMetric.BACKFILL_SKIPPED]: skipped.length,
    [RepositoryMetric.BACKFILL_ENCRYPTION_DIFFERS]: encryption.length,
    [RepositoryMetric.BACKFILL_FAILED]: failed.length,
  };
  writeReport('backfill report', { namespace: METRIC_NAMESPACE, cacheName: properties.CacheName, started, failed: failed.length }, counts, {
    prefixes: properties.Prefixes,
    repositories: repositories.length,
    gone: named('gone').length,
    changed: sample(changed.map(o => `${o.name} (${describeChange(o.plan!)})`)),
    skipped: sample(skipped.map(name => `${name} (has a lifecycle policy this cache did not write; replaceOtherLifecyclePolicies replaces it)`)),
    encryptionDiffers: sample(encryption.map(o => `${o.name} (${o.plan!.encryptionDiffers}; ECR cannot change it: delete the repository `
      + 'and let the next pull create it from the template)')),
    failed: sample(failed.map(o => `${o.name} (${o.reason})`)),
  });
  if (failed.length > 0) {
    throw new Error(`backfill could not change ${failed.length} of ${repositories.length} repositories under `
      + `${properties.Prefixes.join(', ')} (first: ${failed[0].name}: ${failed[0].reason}); ${changed.length} were changed. `
      + 'Each step is idempotent: deploy again to finish. The log line "backfill report" lists them all.');
  }
  return Object.fromEntries(Object.entries({ ...counts, Repositories: repositories.length }).map(([k, v]) => [k, String(v)]));
}

function describeChange(plan: BackfillPlan): string {
  return [
    plan.lifecycle.action === 'set' ? `lifecycle policy: ${plan.lifecycle.reason}` : '',
    plan.tagsToSet.size > 0 ? `tags set: ${[...plan.tagsToSet.keys()].join(', ')}` : '',
    plan.tagsToRemove.length > 0 ? `tags removed: ${plan.tagsToRemove.join(', ')}` : '',
  ].filter(part => part !== '').join('; ');
}

/** One physical id per resource, never changed by an update (a new id would make CloudFormation delete the old one). */
function physicalIdOf(event: CustomResourceEvent): string {
  return event.PhysicalResourceId ?? `backfill:${event.LogicalResourceId}`;
}

export const handler = customResourceHandler({
  create: async event => ({ physicalResourceId: physicalIdOf(event), data: await backfill(backfillProperties(event.ResourceProperties)) }),
  update: async event => ({
    physicalResourceId: physicalIdOf(event),
    data: await backfill(backfillProperties(event.ResourceProperties),
      backfillProperties(event.OldResourceProperties, 'OldResourceProperties')),
  }),
  delete: async () => {
    log('INFO', 'backfill removed: the repositories keep their settings');
  },
});
