import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { SharedCache } from './shared-cache';
import { acknowledgeWildcardResources } from '../private/acknowledge';
import { UpstreamRegistry } from '../upstream-registry';

/**
 * The actions of the role ECR assumes for a cross-account ECR-to-ECR rule, as the ECR User Guide lists them
 * ("Creating an IAM role to define the pull through cache permissions",
 * https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-private.html), minus
 * `ecr:GetAuthorizationToken`, which has no resource type and gets `*` on its own.
 */
const MEMBER_ROLE_ACTIONS = [
  'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchImportUpstreamImage', 'ecr:GetImageCopyStatus',
  'ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage',
];

/** Properties of `SharedCacheMember`. */
export interface SharedCacheMemberProps {
  /** The central cache shared with this account (from the same CDK app). */
  readonly sharedCache: SharedCache;

  /**
   * Reach only these prefixes of the central cache.
   * @default - every prefix of the central cache
   */
  readonly ecrRepositoryPrefixes?: string[];

  /**
   * The role ECR assumes to pull from the central registry. It must trust `pullthroughcache.ecr.amazonaws.com`.
   * @default - a role scoped to the shared prefixes is created
   */
  readonly role?: iam.IRole;
}

/**
 * The member side of a `SharedCache`: one ECR-to-ECR upstream per central prefix, under the same prefix
 * (so `imageUri('nginx:1.27')` maps the same way in both accounts), and the role ECR assumes to pull through
 * the central registry. Pass `upstreams` to a `PullThroughCacheRules` in the member account or Region.
 *
 * Experimental: ECR to ECR pull through a shared central cache has never run against AWS.
 *
 * @example
 * declare const shared: SharedCache;
 * const member = new SharedCacheMember(this, 'Central', { sharedCache: shared });
 * const cache = new PullThroughCacheRules(this, 'Cache', { upstreams: member.upstreams });
 * cache.imageUri('nginx:1.27'); // <member account>.dkr.ecr.<region>.amazonaws.com/docker-hub/library/nginx:1.27
 *
 * @experimental
 */
export class SharedCacheMember extends Construct {
  /** One ECR upstream per shared prefix, for `PullThroughCacheRules.upstreams` (add local upstreams beside them). */
  public readonly upstreams: UpstreamRegistry[];

  /** The role ECR assumes to pull from the central registry. */
  public readonly role: iam.IRole;

  constructor(scope: Construct, id: string, props: SharedCacheMemberProps) {
    super(scope, id);
    const where = this.node.path;
    const shared = props?.sharedCache;
    if (!(shared instanceof SharedCache)) {
      throw new Error(`${where}: sharedCache is required: the SharedCache of the central account.`);
    }
    const prefixes = props.ecrRepositoryPrefixes ?? shared.ecrRepositoryPrefixes;
    if (prefixes.length === 0) {
      throw new Error(`${where}: ecrRepositoryPrefixes is empty. Leave it out to reach every prefix of the central cache.`);
    }
    const origins = prefixes.map(prefix => {
      // the central cache's rows for the prefix: a prefix it serves through another shared cache has that cache's row
      // first and its origin's last, and the origin is what members reach (images keep their registry's name)
      const origin = shared.cache.mapping.prefixes.filter(row => row.ecrRepositoryPrefix.replace(/\/$/, '') === prefix).pop();
      if (!origin) {
        throw new Error(`${where}: the central cache ${shared.registryUri} has no prefix '${prefix}', so no upstream prefix to pull `
          + `through. Its prefixes: ${shared.ecrRepositoryPrefixes.map(p => `'${p}'`).join(', ')}.`);
      }
      return origin;
    });

    const stack = Stack.of(this);
    const arns = (account: string, region: string) => prefixes.map(prefix => stack.formatArn({
      service: 'ecr', account, region, resource: 'repository', resourceName: `${prefix}/*`,
    }));
    if (props.role) {
      this.role = props.role;
    } else {
      const role = new iam.Role(this, 'Role', {
        // Confused deputy: the ECR User Guide's trust policy for this role has no condition
        // (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-private.html), and no AWS page says
        // whether ECR's pull through cache sends aws:SourceAccount when it assumes it. IfExists: a request that carries
        // it must come on behalf of this account; one that does not is not refused (a plain StringEquals would refuse
        // every assume if ECR sends nothing, and break every pull).
        assumedBy: new iam.ServicePrincipal('pullthroughcache.ecr.amazonaws.com', {
          conditions: { StringEqualsIfExists: { 'aws:SourceAccount': stack.account } },
        }),
        description: `Lets ECR pull through the shared cache ${shared.registryUri} into this account's cache`,
      });
      // Which side (central or this registry) ECR calls each listed action on is not documented, so every action
      // is allowed on the shared prefixes of both registries, and on nothing else. The puller actions take the
      // `repository` resource type (Service Authorization Reference for ECR); for ecr:GetImageCopyStatus no source
      // confirmed its resource type. Public Terraform modules scope it to repository ARNs as here; if a pull fails on
      // it, pass a role of your own (`role`).
      const resources = [...arns(shared.account, shared.region), ...arns(stack.account, stack.region)];
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: MEMBER_ROLE_ACTIONS, resources }));
      // A chained first pull (an image neither cache holds) makes the central cache create its repository, and a pull
      // through cache's first pull needs ecr:CreateRepository from the caller when "the repository storing the cached
      // images doesn't already exist" (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html).
      // The caller is this role, in another account: a cross-account call needs the grant on both sides, so the central
      // registry policy grants it (SharedCache) and this role holds it, on the shared prefixes of the central registry only.
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ecr:CreateRepository'], resources: arns(shared.account, shared.region) }));
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }));
      acknowledgeWildcardResources(role, resources,
        'Pull through cache repositories are created on first pull, so the role covers <prefix>/* of each shared prefix, in the central and this registry');
      acknowledgeWildcardResources(role, ['*'], 'ecr:GetAuthorizationToken has no resource type; AWS requires "*" for it, '
        + 'and it is the only action granted on "*"');
      this.role = role;
    }
    this.upstreams = origins.map((origin, i) => UpstreamRegistry._throughSharedCache(
      { registry: origin.registry, upstreamRepositoryPrefix: origin.upstreamRepositoryPrefix }, prefixes[i], shared.registryUri, this.role));
  }
}
