import { Aws, BootstraplessSynthesizer, CfnTag, CustomResource, Duration, Fn, Lazy, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, IConstruct } from 'constructs';
import { BackfillFunction } from './backfill-function';
import { CacheAdoptionOptions, CachedRepositoryRemoval } from './cached-repository-options';
import { BACKFILL_RESOURCE_TYPE, BackfillProperties, CREATED_BY_TAG, TEARDOWN_RESOURCE_TYPE, TeardownProperties } from './contract';
import { TeardownFunction } from './teardown-function';
import { acknowledgeFinding, acknowledgeWildcardResources } from '../private/acknowledge';

/** What `PullThroughCacheRules` hands over for backfill and teardown. */
export interface CachedRepositoriesSpec {
  readonly cacheName: string;
  /** The prefixes with a creation template (backfill adopts their repositories). */
  readonly templatePrefixes: string[];
  /** The prefixes with a pull through cache rule (teardown deletes under these only). */
  readonly rulePrefixes: string[];
  readonly templates: ecr.CfnRepositoryCreationTemplate[];
  readonly rules: IConstruct[];
  /** The settings every template shares; undefined when the cache has no templates. */
  readonly templateSettings?: Partial<ecr.CfnRepositoryCreationTemplateProps>;
  readonly adopt: boolean;
  readonly adoption?: CacheAdoptionOptions;
  readonly removal: CachedRepositoryRemoval;
}

/**
 * The `CREATED_BY_TAG` value of one cache: the UUID of its stack's id (a stack deleted and deployed again under the
 * same name gets another) and the construct's address (unique in the app), 79 characters in all (a tag value may have
 * 256; a whole stack ARN may not fit beside the address). Teardown deletes only repositories with this value.
 */
export function cachedRepositoryOwner(cache: Construct): string {
  // arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<uuid>; a stack name has no slash
  return Fn.join('/', [Fn.select(2, Fn.split('/', Aws.STACK_ID)), cache.node.addr]);
}

/**
 * The resource tags the creation templates of `cache` get: the user's, plus `CREATED_BY_TAG` with the cache's value
 * when teardown is on, so that teardown can tell the repositories the cache created from any other.
 */
export function templateResourceTags(cache: Construct, tags: readonly { key: string; value: string }[] | undefined,
  removal: CachedRepositoryRemoval): { key: string; value: string }[] | undefined {
  const where = `${cache.node.path} repositoryOptions`;
  const own = [...(tags ?? [])];
  if (own.some(t => t.key === CREATED_BY_TAG.key)) {
    throw new Error(`${where}: resourceTags has the key '${CREATED_BY_TAG.key}', which marks the repositories the cache created for `
      + 'cachedRepositoryRemoval. Use another key.');
  }
  if (removal === CachedRepositoryRemoval.RETAIN) {
    return tags === undefined ? undefined : own;
  }
  if (own.length >= 50) {
    throw new Error(`${where}: ${own.length} resourceTags, and cachedRepositoryRemoval ${removal} adds the tag '${CREATED_BY_TAG.key}' `
      + 'that marks the repositories the cache created; ECR allows at most 50 tags. Drop one of yours.');
  }
  return [...own, { key: CREATED_BY_TAG.key, value: cachedRepositoryOwner(cache) }];
}

/**
 * Backfill and teardown of a cache's repositories: custom resources ordered with the templates and rules.
 *
 * - Backfill (`Custom::EcrCacheRepositoryBackfill`) depends on the templates: created, and updated, after them, with
 *   their settings as properties, so every change of a template setting runs it again.
 * - Teardown (`Custom::EcrCacheRepositoryTeardown`): every rule depends on it, and CloudFormation deletes dependents
 *   first, so its delete runs once the rules are gone and nothing creates a repository under it meanwhile.
 */
export function manageCachedRepositories(scope: Construct, spec: CachedRepositoriesSpec): void {
  const where = scope.node.path;
  if (spec.adoption && !spec.adopt) {
    throw new Error(`${where}: adoption options are set, but adoptExistingRepositories is not true. Set it, or drop adoption.`);
  }
  const tearsDown = spec.removal !== CachedRepositoryRemoval.RETAIN;
  if (!spec.adopt && !tearsDown) {
    return;
  }
  if (!spec.templateSettings) {
    throw new Error(`${where}: ${spec.adopt ? 'adoptExistingRepositories applies the creation templates\' settings'
      : `cachedRepositoryRemoval ${spec.removal} deletes only what the creation templates created`}, but createRepositoryTemplates `
      + 'is false. Let the cache create its templates, or leave this setting off.');
  }
  // a ROOT rule's repositories carry no prefix (`library/nginx`): the handlers would act on `ROOT/*`, which is nothing,
  // and reaching its repositories means the whole registry, which no cache owns
  const root = [...(spec.adopt ? spec.templatePrefixes : []), ...(tearsDown ? spec.rulePrefixes : [])].includes('ROOT');
  if (root) {
    const settings = [spec.adopt ? 'adoptExistingRepositories' : '', tearsDown ? `cachedRepositoryRemoval ${spec.removal}` : '']
      .filter(s => s !== '').join(' and ');
    throw new Error(`${where}: ${settings} act on the repositories under each cache prefix, and an upstream has the prefix 'ROOT', `
      + 'whose repositories are anywhere in the registry. Give the upstream a prefix (ecrRepositoryPrefix), or leave this off.');
  }
  if (Stack.of(scope).synthesizer instanceof BootstraplessSynthesizer) {
    throw new Error(`${where}: adoptExistingRepositories and cachedRepositoryRemoval need a bundled Lambda function, which a stack `
      + 'without assets (a StackSet member template) cannot hold. Turn them off here; adopt or delete with the steps in docs/ADOPTION.md.');
  }
  if (spec.adopt) {
    const handler = RepositoryHandler.of(scope, 'backfill');
    handler.allowPrefixes(spec.templatePrefixes);
    const settings = spec.templateSettings;
    const properties: BackfillProperties = {
      Prefixes: spec.templatePrefixes,
      LifecyclePolicy: settings.lifecyclePolicy,
      // the teardown marker is never adopted: a repository the templates did not create never becomes the cache's to delete
      // the templates' tags are resolved at synth (Tags.of(cache) adds to them), so these are too
      ResourceTags: Lazy.any({
        produce: () => ((Stack.of(scope).resolve(settings.resourceTags) ?? []) as CfnTag[])
          .filter(t => t.key !== CREATED_BY_TAG.key).map(t => ({ Key: t.key, Value: t.value })),
      }) as unknown as BackfillProperties['ResourceTags'],
      EncryptionType: (settings.encryptionConfiguration as ecr.CfnRepositoryCreationTemplate.EncryptionConfigurationProperty | undefined)
        ?.encryptionType,
      KmsKey: (settings.encryptionConfiguration as ecr.CfnRepositoryCreationTemplate.EncryptionConfigurationProperty | undefined)?.kmsKey,
      ReplaceOtherLifecyclePolicies: String(spec.adoption?.replaceOtherLifecyclePolicies ?? false),
      CacheName: spec.cacheName,
    };
    const backfill = handler.resource(scope, 'RepositoryBackfill', BACKFILL_RESOURCE_TYPE, { ...properties });
    for (const template of spec.templates) {
      backfill.node.addDependency(template);
    }
  }
  if (tearsDown) {
    if (spec.rulePrefixes.length === 0) {
      throw new Error(`${where}: cachedRepositoryRemoval ${spec.removal} deletes the repositories of pull through cache rules, and this `
        + 'cache has none (only mirrors). Leave it at RETAIN.');
    }
    const handler = RepositoryHandler.of(scope, 'teardown');
    // a dry run lists only: its function may not delete (the grant comes with the deploy that switches to DESTROY_WITH_IMAGES)
    handler.allowPrefixes(spec.rulePrefixes, spec.removal === CachedRepositoryRemoval.DESTROY_WITH_IMAGES ? cachedRepositoryOwner(scope) : undefined);
    const createdBy = cachedRepositoryOwner(scope);
    const properties: TeardownProperties = { Prefixes: spec.rulePrefixes, Mode: spec.removal, CacheName: spec.cacheName, CreatedBy: createdBy };
    const teardown = handler.resource(scope, 'RepositoryTeardown', TEARDOWN_RESOURCE_TYPE, { ...properties });
    for (const rule of spec.rules) {
      rule.node.addDependency(teardown);
    }
  }
}

type HandlerKind = 'backfill' | 'teardown';

/**
 * The one backfill (or teardown) function of a stack, whichever caches use it, at a fixed place under the stack.
 * Like the rule handler (`rules/cache-rule.ts`), CloudFormation invokes it asynchronously and it answers every request
 * itself, a failure as the stack event's reason plus a log line; a dead-letter queue would keep requests nobody waits for.
 */
class RepositoryHandler extends Construct {
  public static of(scope: Construct, kind: HandlerKind): RepositoryHandler {
    const stack = Stack.of(scope);
    const id = kind === 'backfill' ? 'EcrCacheRepositoryBackfillHandler' : 'EcrCacheRepositoryTeardownHandler';
    return (stack.node.tryFindChild(id) as RepositoryHandler | undefined) ?? new RepositoryHandler(stack, id, kind);
  }

  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  private readonly kind: HandlerKind;

  private constructor(scope: Construct, id: string, kind: HandlerKind) {
    super(scope, id);
    this.kind = kind;
    const stack = Stack.of(this);
    const logGroup = new logs.LogGroup(this, 'LogGroup', { retention: logs.RetentionDays.ONE_YEAR });
    this.role = new iam.Role(this, 'ServiceRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: kind === 'backfill'
        ? 'Applies the creation templates\' lifecycle policy and tags to existing pull through cache repositories'
        : 'Deletes, on stack delete, the pull through cache repositories the creation templates created',
    });
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn],
    }));
    // DescribeRepositories has no name filter: listing the prefixes' repositories reads the registry's list (names and
    // settings only; every change is scoped to the prefixes below)
    const everyRepository = stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: '*' });
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ecr:DescribeRepositories'], resources: [everyRepository] }));
    if (kind === 'teardown') {
      // The pull through cache rule actions have no resource type (Service Authorization Reference): "*"
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ecr:DescribePullThroughCacheRules'], resources: ['*'] }));
    }
    const factory = kind === 'backfill' ? BackfillFunction : TeardownFunction;
    this.function = new factory(this, 'Function', {
      description: kind === 'backfill'
        ? 'Gives existing ECR pull through cache repositories their creation template\'s lifecycle policy and tags (CloudFormation)'
        : 'Deletes the ECR pull through cache repositories the cache created, when its stack is deleted (CloudFormation)',
      role: this.role,
      logGroup,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      // Lambda's longest: 2,000 repositories take about a minute at 8 calls in flight (docs/ADOPTION.md), and a run cut
      // short by the timeout is answered FAILED and finished by the next deploy (every step is idempotent)
      timeout: Duration.minutes(15),
      environment: { LOG_LEVEL: 'INFO' },
    });
    acknowledgeWildcardResources(this.role.node.findChild('DefaultPolicy'), [everyRepository],
      'DescribeRepositories has no name filter: the handler lists the registry\'s repositories to find those under the cache prefixes; '
      + 'it reads names and settings only');
    if (kind === 'teardown') {
      acknowledgeWildcardResources(this.role.node.findChild('DefaultPolicy'), ['*'],
        'ecr:DescribePullThroughCacheRules has no resource type; AWS requires "*" for it, and it only reads');
    }
    acknowledgeFinding(this.function, 'AwsSolutions-L1',
      'Pinned to Node.js 22, the runtime the bundled handler is built and tested for; moving to a newer runtime is a deliberate release');
  }

  /**
   * What the handler may do to the repositories under these prefixes (and nowhere else); teardown deletes only with
   * `deletableWith`, the created-by value of the cache's repositories.
   */
  public allowPrefixes(prefixes: readonly string[], deletableWith?: string): void {
    const stack = Stack.of(this);
    const arns = prefixes.map(prefix => stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: `${prefix}/*` }));
    if (this.kind === 'backfill') {
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({
        actions: ['ecr:GetLifecyclePolicy', 'ecr:PutLifecyclePolicy', 'ecr:ListTagsForResource', 'ecr:TagResource', 'ecr:UntagResource'],
        resources: arns,
      }));
    } else {
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ecr:ListTagsForResource'], resources: arns }));
      if (deletableWith !== undefined) {
        // IAM itself refuses to delete a repository without this cache's tag value, whatever the handler decides
        this.role.addToPrincipalPolicy(new iam.PolicyStatement({
          actions: ['ecr:DeleteRepository'],
          resources: arns,
          conditions: { StringEquals: { [`aws:ResourceTag/${CREATED_BY_TAG.key}`]: deletableWith } },
        }));
      }
    }
    acknowledgeWildcardResources(this.role.node.findChild('DefaultPolicy'), arns,
      'The cache creates its repositories on demand under each cache prefix, so the handler acts on <prefix>/* of each prefix');
  }

  /** A custom resource served by this handler. */
  public resource(scope: Construct, id: string, resourceType: string, properties: Record<string, unknown>): CustomResource {
    const resource = new CustomResource(scope, id, {
      serviceToken: this.function.functionArn,
      resourceType,
      // a request the handler never answers (a crash) would keep the deploy waiting CloudFormation's default hour;
      // 50 minutes cover the function's 15 and Lambda's retries of the asynchronous invocation
      serviceTimeout: Duration.minutes(50),
      properties,
    });
    // its permissions first: on delete they must outlive the request
    resource.node.addDependency(this.role);
    return resource;
  }
}
