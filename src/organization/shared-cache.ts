import { Stack, Token } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { acknowledgeFinding } from '../private/acknowledge';
import { registerSharedCache } from '../private/app-validation';
import { LogicalIdKind, followRegistry } from '../private/logical-ids';
import { IPullThroughCacheRules } from '../rules/i-pull-through-cache-rules';

/**
 * What a member account's pull through cache needs on the central registry to pull and import.
 *
 * The first four are the actions the ECR User Guide has the upstream registry grant the downstream account
 * for ECR-to-ECR pull through cache ("Setting up permissions for cross-account ECR to ECR PTC",
 * https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-private.html).
 * `ecr:CreateRepository` is added because the central registry is itself a pull through cache: the first pull
 * of an image neither cache holds makes ECR create the central repository, and the User Guide
 * (pull-through-cache-iam.html) says that first pull needs `ecr:CreateRepository` from the caller "if the
 * repository storing the cached images doesn't already exist", granted by an identity policy or the registry
 * policy. The caller is the member's role, in another account, so it needs the grant on both sides: here, and
 * in that role's policy (`SharedCacheMember`), both on the shared prefixes only.
 */
const SHARED_CACHE_ACTIONS: readonly string[] = [
  'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchImportUpstreamImage', 'ecr:GetImageCopyStatus', 'ecr:CreateRepository',
];

/** Properties of `SharedCache`. Give either the organization (and/or its OU paths) or accounts. */
export interface SharedCacheProps {
  /** The central cache to share, in this stack. The stack needs a concrete account and Region (members address it by URL). */
  readonly cache: IPullThroughCacheRules;

  /**
   * Share with every account of this AWS Organization (`o-...`), through the `aws:PrincipalOrgID` condition.
   * @default - not scoped by organization id
   */
  readonly organizationId?: string;

  /**
   * Share with the accounts under these organizational units, through `aws:PrincipalOrgPaths`
   * (`o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*` and the like, as `ForAnyValue:StringLike`).
   * @default - not scoped by organization path
   */
  readonly organizationPaths?: string[];

  /**
   * Share with these accounts (12-digit ids), as account principals. Not combined with `organizationId`
   * or `organizationPaths`.
   * @default - no accounts listed
   */
  readonly accounts?: string[];

  /**
   * Statements of your own for the same registry policy. A registry has one policy and this construct writes it,
   * replacing any policy set outside this app: copy the existing policy's statements here (for example
   * replication or other pull through cache grants).
   * @default - none
   */
  readonly additionalStatements?: iam.PolicyStatement[];
}

/**
 * Shares a central pull through cache with member accounts: ONE `AWS::ECR::RegistryPolicy` that lets the
 * accounts of an organization, of some OUs or a list of accounts pull and import through the cache's prefixes
 * only (`repository/<prefix>/*`), with exactly the actions downstream ECR-to-ECR pull through cache needs.
 *
 * Members point at it with `SharedCacheMember`; `SharedCacheStackSet` deploys that to every account of an OU.
 * The registry policy must be enforced for these actions: that is ECR's default registry policy scope `V2`
 * (under `V1`, a registry policy is enforced only for replication, import and repository creation).
 *
 * Experimental: the organization form of the registry policy (principal "*" narrowed by aws:PrincipalOrgID) has never been applied by ECR.
 *
 * @experimental
 */
export class SharedCache extends Construct {
  /** The central cache. */
  public readonly cache: IPullThroughCacheRules;

  /** The central registry, `<account>.dkr.ecr.<region>.amazonaws.com`: the upstream URL of every member rule. */
  public readonly registryUri: string;

  /** The central account. */
  public readonly account: string;

  /** The central Region. */
  public readonly region: string;

  /** The shared cache prefixes, one per central rule. */
  public readonly ecrRepositoryPrefixes: string[];

  /** The registry policy (one per account and Region). */
  public readonly policy: ecr.CfnRegistryPolicy;

  constructor(scope: Construct, id: string, props: SharedCacheProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const where = this.node.path;
    const cache = props?.cache;
    if (cache === undefined || cache === null || typeof cache.cacheRepositoryArns !== 'function') {
      throw new Error(`${where}: cache is required: the PullThroughCacheRules to share.`);
    }
    if (Stack.of(cache) !== stack) {
      throw new Error(`${where}: the cache ${cache.node.path} is in the stack ${Stack.of(cache).node.path}, not in ${stack.node.path}: `
        + 'the registry policy is written in the cache\'s registry. Create the SharedCache in the cache\'s stack.');
    }
    if (Token.isUnresolved(stack.account) || Token.isUnresolved(stack.region)) {
      throw new Error(`${where}: the stack ${stack.stackName} has no concrete account and Region, but members address the central `
        + 'registry by its URL. Give the stack env: { account: \'111122223333\', region: \'eu-west-1\' }.');
    }
    if (cache.ecrRepositoryPrefixes.includes('ROOT')) {
      throw new Error(`${where}: an upstream is cached under ROOT, so sharing it would grant repository/* (the whole registry). `
        + 'Give it an ecrRepositoryPrefix.');
    }
    const orgId = props.organizationId;
    const paths = props.organizationPaths ?? [];
    const accounts = props.accounts ?? [];
    if (orgId === undefined && paths.length === 0 && accounts.length === 0) {
      throw new Error(`${where}: nobody to share with. Set organizationId ('o-...'), organizationPaths or accounts.`);
    }
    if (accounts.length > 0 && (orgId !== undefined || paths.length > 0)) {
      throw new Error(`${where}: accounts and organizationId/organizationPaths are both set. Use one: accounts lists principals, `
        + 'the organization settings scope every principal of the organization.');
    }
    if (orgId !== undefined && !Token.isUnresolved(orgId) && !/^o-[a-z0-9]{10,32}$/.test(orgId)) {
      throw new Error(`${where}: organizationId '${orgId}' is not an organization id; it looks like 'o-a1b2c3d4e5'.`);
    }
    for (const path of paths) {
      if (!Token.isUnresolved(path) && !/^o-[a-z0-9]{10,32}\/r-[0-9a-z]{4,32}\/.*$/.test(path)) {
        throw new Error(`${where}: organizationPaths entry '${path}' is not an organization path; write `
          + '\'o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*\' (organization id / root id / OU ids, ending in /* for the accounts below).');
      }
    }
    for (const account of accounts) {
      if (!Token.isUnresolved(account) && !/^\d{12}$/.test(account)) {
        throw new Error(`${where}: accounts entry '${account}' is not a 12-digit account id.`);
      }
    }

    this.cache = cache;
    this.account = stack.account;
    this.region = stack.region;
    this.registryUri = `${stack.account}.dkr.ecr.${stack.region}.amazonaws.com`;
    this.ecrRepositoryPrefixes = [...cache.ecrRepositoryPrefixes];

    // Principals: ECR's documented registry policies name account principals (`arn:aws:iam::<account>:root`,
    // UG registry-permissions-examples.html, pull-through-cache-private.html), which `accounts` uses. For an
    // organization we use the form IAM resource policies take for org-wide access, principal `*` narrowed by
    // `aws:PrincipalOrgID` / `aws:PrincipalOrgPaths` (global condition keys). No ECR page found confirms a
    // registry policy accepts principal `*`; if PutRegistryPolicy refuses it, list the accounts instead.
    const statement = new iam.PolicyStatement({
      sid: 'SharedPullThroughCache',
      actions: [...SHARED_CACHE_ACTIONS],
      resources: cache.cacheRepositoryArns(),
      principals: accounts.length > 0 ? accounts.map(a => new iam.AccountPrincipal(a)) : [new iam.AnyPrincipal()],
    });
    if (orgId !== undefined) {
      statement.addCondition('StringEquals', { 'aws:PrincipalOrgID': orgId });
    }
    if (paths.length > 0) {
      statement.addCondition('ForAnyValue:StringLike', { 'aws:PrincipalOrgPaths': paths });
    }
    const document = new iam.PolicyDocument({ statements: [statement, ...(props.additionalStatements ?? [])] });
    this.policy = new ecr.CfnRegistryPolicy(this, 'Resource', { policyText: document });
    // one per registry: a rename must not create a second copy whose old one's delete removes the policy (private/logical-ids.ts)
    followRegistry(this.policy, LogicalIdKind.REGISTRY_POLICY, 'registry policy');
    if (accounts.length === 0) {
      acknowledgeFinding(this.policy, 'AwsSolutions-ECR1', 'The principal "*" is narrowed by aws:PrincipalOrgID/aws:PrincipalOrgPaths '
        + 'to the organization\'s accounts, and the grant covers only the pull and import actions on <prefix>/* of the shared prefixes');
    }
    registerSharedCache(this, this.policy, this.registryUri, this.ecrRepositoryPrefixes);
  }
}
