/**
 * The repository creation templates of a cache: the settings ECR gives each repository it creates under a cache
 * prefix (lifecycle, encryption, tags, policy), checked, and the role ECR needs to apply tags and a KMS key.
 */
import { Annotations, CfnTag, Duration, Lazy, Stack, TagManager, Token } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { CacheRepositoryOptions } from './cache-repository-options';
import { acknowledgeWildcardResources } from '../private/acknowledge';
import { renderLifecyclePolicy } from '../private/lifecycle';
import { LogicalIdKind, followKey } from '../private/logical-ids';

/** What the templates need of their cache: its tags (`Tags.of(cache)`) and the repositories under its prefixes. */
export interface TemplateOwner extends Construct {
  readonly tags: TagManager;
  cacheRepositoryArns(): string[];
}

/** The template properties shared by every prefix, and the role ECR needs for them. */
export function templateSettings(cache: TemplateOwner, options: CacheRepositoryOptions) {
  const where = `${cache.node.path} repositoryOptions`;
  const mutability = options.imageTagMutability ?? ecr.TagMutability.MUTABLE;
  if (mutability !== ecr.TagMutability.MUTABLE) {
    throw new Error(`${where}: imageTagMutability ${mutability} would stop ECR from refreshing cached tags when upstream `
      + 'moves them (the cache would serve its first copy forever). Cached repositories must be MUTABLE; pin images by digest instead.');
  }
  const encryption = encryptionSettings(options, where);

  const usesLifecycleDefaults = options.lifecycleRules === undefined;
  if (!usesLifecycleDefaults && (options.untaggedImageExpiration !== undefined || options.maxImageCount !== undefined)) {
    throw new Error(`${where}: lifecycleRules replaces the default rules, so untaggedImageExpiration and maxImageCount `
      + 'would be ignored. Set either lifecycleRules or those two.');
  }
  const lifecycleRules = options.lifecycleRules ?? [
    { description: 'Expire untagged images', tagStatus: ecr.TagStatus.UNTAGGED, maxImageAge: options.untaggedImageExpiration ?? Duration.days(7) },
    { description: 'Keep the newest images', tagStatus: ecr.TagStatus.ANY, maxImageCount: options.maxImageCount ?? 100 },
  ];
  const lifecyclePolicy = lifecycleRules.length > 0 ? renderLifecyclePolicy(lifecycleRules, where) : undefined;

  const tags = options.resourceTags ?? [];
  if (tags.length > 50) {
    throw new Error(`${where}: ${tags.length} resourceTags; ECR allows at most 50.`);
  }
  const needsRole = tags.length > 0 || encryption?.kmsKey !== undefined;
  const role = options.role ?? (needsRole ? createTemplateRole(cache, options.encryptionKey) : undefined);

  const properties: Partial<ecr.CfnRepositoryCreationTemplateProps> = {
    imageTagMutability: mutability,
    lifecyclePolicy,
    encryptionConfiguration: encryption,
    resourceTags: templateTags(cache, tags, where),
    repositoryPolicy: options.repositoryPolicy ? Stack.of(cache).toJsonString(options.repositoryPolicy.toJSON()) : undefined,
    customRoleArn: role?.roleArn,
  };
  return { properties, role };
}

function encryptionSettings(options: CacheRepositoryOptions, where: string):
ecr.CfnRepositoryCreationTemplate.EncryptionConfigurationProperty | undefined {
  const type = options.encryption ?? (options.encryptionKey ? ecr.RepositoryEncryption.KMS : ecr.RepositoryEncryption.AES_256);
  if (type === ecr.RepositoryEncryption.KMS_DSSE) {
    throw new Error(`${where}: KMS_DSSE encryption exists only in the GovCloud (US) Regions, where ECR has no pull through cache. Use KMS.`);
  }
  if (options.encryptionKey && type !== ecr.RepositoryEncryption.KMS) {
    throw new Error(`${where}: encryptionKey is set, but encryption is ${type.value}. Use RepositoryEncryption.KMS or drop the key.`);
  }
  const keyArn = options.encryptionKey?.keyArn;
  const aliasName = (options.encryptionKey as Partial<kms.IAlias> | undefined)?.aliasName;
  if (aliasName !== undefined || (keyArn !== undefined && !Token.isUnresolved(keyArn) && /:alias\//.test(keyArn))) {
    throw new Error(`${where}: encryptionKey is the alias '${aliasName ?? keyArn}', but ECR needs the full ARN of the key itself. `
      + 'Import it with kms.Key.fromKeyArn(scope, id, \'arn:aws:kms:<region>:<account>:key/<key id>\').');
  }
  if (type === ecr.RepositoryEncryption.AES_256 && options.encryption === undefined) {
    return undefined; // ECR's default: keep the template free of it
  }
  return { encryptionType: type.value, kmsKey: keyArn };
}

/** The documented custom role for templates that tag or use KMS, scoped to the cache prefixes and the key. */
function createTemplateRole(cache: TemplateOwner, key?: kms.IKey): iam.Role {
  const role = new iam.Role(cache, 'TemplateRole', {
    assumedBy: new iam.ServicePrincipal('ecr.amazonaws.com'),
    description: 'Lets ECR create pull through cache repositories with tags and KMS encryption from the repository creation templates',
  });
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    actions: ['ecr:CreateRepository', 'ecr:TagResource'],
    resources: cache.cacheRepositoryArns(),
  }));
  key?.grant(role, 'kms:CreateGrant', 'kms:RetireGrant', 'kms:DescribeKey');
  acknowledgeWildcardResources(role, cache.cacheRepositoryArns(),
    'ECR creates cached repositories on demand under each cache prefix, so the role covers <prefix>/* of each prefix');
  return role;
}

function templateTags(cache: TemplateOwner, given: CfnTag[], where: string): any {
  // TagManager renders KEY_VALUE tags as CloudFormation writes them ({ Key, Value }), or undefined for none
  const inherited = (): CfnTag[] => ((cache.tags.renderTags() ?? []) as Array<{ Key: string; Value: string }>)
    .map(t => ({ key: t.Key, value: t.Value }));
  cache.node.addValidation({
    validate: () => {
      const keys = inherited().map(t => t.key).filter(k => !given.some(g => g.key === k));
      if (keys.length > 0 && given.length === 0) {
        Annotations.of(cache).addWarningV2('cdk-ecr-pull-through-cache:inheritedTagsNotApplied', 'Tags.of gave the cache the tags '
          + `${keys.join(', ')}, which do not reach the repositories ECR creates: tagging them needs a custom role for ECR and `
          + 'ecr:TagResource for every puller, which the cache sets up only when repositoryOptions.resourceTags is set. Set it '
          + '(for example to these tags) to tag the cached repositories, or acknowledge this warning.');
      }
      const total = given.length + keys.length;
      return total > 50 ? [`${where}: ${total} tags for cached repositories (resourceTags and Tags.of together); ECR allows at most 50.`] : [];
    },
  });
  if (given.length === 0) {
    return undefined;
  }
  return Lazy.any({
    // resolved before the L1 checks its props: the L1's own form, { key, value }
    produce: () => [...given, ...inherited().filter(t => !given.some(g => g.key === t.key))].map(t => ({ key: t.key, value: t.value })),
  });
}

/** A template's logical id follows its prefix (`private/logical-ids.ts`): renaming or moving the cache keeps it. */
export function keyedTemplate(template: ecr.CfnRepositoryCreationTemplate): ecr.CfnRepositoryCreationTemplate {
  followKey(template, LogicalIdKind.TEMPLATE, template.prefix);
  return template;
}
