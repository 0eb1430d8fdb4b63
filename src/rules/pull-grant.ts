import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, IConstruct } from 'constructs';
import { accountProblem, environmentProblem } from '../private/cache-environment';

/** What a node pulls with (the actions `Repository.grantPull` grants). */
export const PULL_ACTIONS = ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'];
/** What the first pull of an image also needs: import it from upstream, creating its repository. */
export const FIRST_PULL_ACTIONS = ['ecr:BatchImportUpstreamImage', 'ecr:CreateRepository'];

/** The repositories of one cache prefix. */
export interface PullTarget {
  /** `ROOT`, or the prefix. */
  readonly prefix: string;
  /** `arn:...:repository/<prefix>/*`. */
  readonly arn: string;
  /** The prefix is filled by copying (`UpstreamRegistry.copied`), never by a first pull: pulls only. */
  readonly copied: boolean;
}

/**
 * The statements of a pull grant: the cache repositories, and the token (which has no resource type). Copied
 * prefixes are pulled only: their images are pushed by the copier, never imported on a pull.
 */
export function pullStatements(targets: PullTarget[], tagsRepositories: boolean): iam.PolicyStatement[] {
  const actions = [...PULL_ACTIONS, ...FIRST_PULL_ACTIONS, ...(tagsRepositories ? ['ecr:TagResource'] : [])];
  const pulledThrough = targets.filter(t => !t.copied).map(t => t.arn);
  const copied = targets.filter(t => t.copied).map(t => t.arn);
  return [
    ...(pulledThrough.length > 0 ? [new iam.PolicyStatement({ actions, resources: pulledThrough })] : []),
    new iam.PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }),
    ...(copied.length > 0 ? [new iam.PolicyStatement({ actions: PULL_ACTIONS, resources: copied })] : []),
  ];
}

/** `grantPull` of a cache, made or imported: refuses a grant that would not land (see `PullThroughCacheRules.grantPull`). */
export function grantCachePull(cache: IConstruct, grantee: iam.IGrantable, targets: PullTarget[], tagsRepositories: boolean): iam.Grant {
  const principal = grantee.grantPrincipal;
  // an iam.Policy grants through a principal that is not a construct: the policy's own stack is where the grant lands
  const holder = Construct.isConstruct(principal) ? principal : Construct.isConstruct(grantee) ? grantee : undefined;
  const where = `${cache.node.path}.grantPull(${holder ? holder.node.path : principal})`;
  const problem = (holder ? environmentProblem(cache, holder) : undefined)
    ?? accountProblem(cache, principal.principalAccount, 'the grantee');
  if (problem) {
    throw new Error(`${where}: ${problem}`);
  }
  const statements = pullStatements(targets, tagsRepositories);
  const grant = statements
    .map(statement => iam.Grant.addToPrincipal({ grantee, actions: statement.actions, resourceArns: statement.resources }))
    .reduce((all, next) => all.combine(next));
  if (!grant.success || !policyLanded(principal)) {
    throw new Error(`${where}: nothing was granted. ${grant.success
      ? 'The role is immutable (imported with mutable: false, withoutPolicyUpdates(), or from another account), so no policy of this app can be attached to it.'
      : 'This principal has no IAM policy of its own (an AccountPrincipal, ArnPrincipal or ServicePrincipal), so there is nothing to add the permissions to.'} `
      + 'Grant a role or user of this app (for ECS, the task definition\'s execution role), or give the role these permissions where it is '
      + `managed: ${statements[0].actions.join(', ')} on the repositories ${targets.map(t => t.prefix === 'ROOT' ? '*' : `${t.prefix}/*`).join(', ')} `
      + 'of the cache\'s registry (cacheRepositoryArns()), and ecr:GetAuthorizationToken on *.');
  }
  return grant;
}

/**
 * Whether a principal that accepted a statement really holds it: a role or user of the app gets a policy construct
 * beneath it, while an immutable imported role accepts every statement and keeps none.
 */
function policyLanded(principal: iam.IPrincipal): boolean {
  if (!Construct.isConstruct(principal)) {
    return true; // not a construct (PrincipalWithConditions, ...): its grant result is all there is to go by
  }
  return principal.node.findAll().some(c => c instanceof iam.Policy || c instanceof iam.ManagedPolicy);
}
