import { CfnResource, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import {
  MirrorPlan, MirrorRoute, cacheEndpoint, hostsTomlPath, renderHostsToml, renderNodeadmUserData,
} from './render';
import { CachePrefix } from '../image-mapping';
import { acknowledgeWildcardResources } from '../private/acknowledge';
import { accountProblem } from '../private/cache-environment';
import { ECR_REGISTRY_URL } from '../private/catalogue';
import { IPullThroughCacheRules } from '../rules/i-pull-through-cache-rules';

/** Options of `PullThroughCacheRules.nodeMirrors`. */
export interface NodeMirrorOptions {
  /**
   * Let containerd pull from the upstream registry itself when the cache fails. Refused: `true` throws.
   *
   * kubelet hands the ECR credentials it gets from `ecr-credential-provider` to containerd with no server
   * address (kubernetes/kubernetes@4f3d0e3b `pkg/credentialprovider/keyring.go`, `BasicDockerKeyring.Add`
   * copies only the user name, password and e-mail), and containerd offers credentials without a server
   * address to every host it tries (containerd/containerd@28e7ad24 `internal/cri/server/images/image_pull.go`,
   * `ParseAuth`). A fallback pull would therefore send `AWS:<ECR token>` to the upstream's token service, and
   * containerd has no setting that scopes them to the cache. So a pull the cache cannot serve fails, on every
   * node. To reach images the cache does not serve, rewrite their references instead (`imageUri`, the
   * `CachedImages` Aspect, the `ecr-ptc` CLI) and leave the rest of the references as they are.
   *
   * @default false
   */
  readonly fallbackToUpstream?: boolean;
}

/** One registry whose pulls the nodes send through the cache. */
export interface RegistryMirror {
  /** The registry as image references name it: `docker.io`, `quay.io`. */
  readonly registry: string;

  /** The cache prefix that serves it. */
  readonly ecrRepositoryPrefix: string;

  /** The cache endpoint containerd pulls from: `https://<account>.dkr.ecr.<region>.amazonaws.com/v2/<prefix>`. */
  readonly endpoint: string;

  /** Where the registry's containerd configuration goes on the node: `/etc/containerd/certs.d/<registry>/hosts.toml`. */
  readonly hostsTomlPath: string;

  /** The content of that `hosts.toml`. */
  readonly hostsToml: string;
}

/** An upstream of the cache that the nodes do not mirror, and why. */
export interface UnmirroredRegistry {
  /** The registry as image references name it. */
  readonly registry: string;

  /** Why its pulls are not sent through the cache (rewrite its image references instead). */
  readonly reason: string;
}

/**
 * The node configuration that sends every pull of a cached registry (`docker.io/library/nginx:1.27`)
 * through the pull through cache, with no image reference changed: containerd mirrors (`hosts.toml`) and
 * kubelet's ECR credential provider extended to the mirrored registries.
 *
 * Get one from `PullThroughCacheRules.nodeMirrors()`. For Amazon Linux 2023 nodes use `al2023UserData()`
 * (a MIME multipart user data for a launch template or a Karpenter `EC2NodeClass`); for an EKS managed node
 * group, `addNodegroup()` does it all.
 *
 * The cache is the only host containerd tries: no AWS credential is ever offered to another host. Hence no
 * fallback to the upstream, and no Bottlerocket nodes (which always fall back); see `fallbackToUpstream`.
 *
 * Images that already name the cache keep working (the credential provider matches ECR hosts as before).
 * Upstreams the nodes cannot mirror are listed in `unmirrored`, with the reason.
 *
 * Experimental: containerd node mirrors have never run on an EKS node against a live cache (tested with containerd on loopback only).
 *
 * @experimental
 */
export class NodeMirrors {
  /** The cache the nodes pull through. */
  public readonly cache: IPullThroughCacheRules;

  /** The mirrored registries, in the order of the cache's upstreams. */
  public readonly mirrors: RegistryMirror[];

  /** The cache's upstreams that are not mirrored, with the reason. */
  public readonly unmirrored: UnmirroredRegistry[];

  private readonly plan: MirrorPlan;

  constructor(cache: IPullThroughCacheRules, options: NodeMirrorOptions = {}) {
    this.cache = cache;
    if (options.fallbackToUpstream) {
      throw new Error(`${cache.node.path}: nodeMirrors({ fallbackToUpstream: true }) is refused: it would send the node's ECR `
        + 'credentials to the upstream registry. kubelet passes the ecr-credential-provider\'s credentials to containerd without '
        + 'a server address, and containerd then offers them to every host it tries, so a fallback pull hands AWS:<ECR token> '
        + 'to the upstream\'s token service (Docker Hub, Quay, GHCR, ...). Drop fallbackToUpstream: a pull the cache cannot '
        + 'serve then fails, visibly. For images the cache does not serve, rewrite their references instead (imageUri, the '
        + 'CachedImages Aspect or the ecr-ptc CLI).');
    }
    const routes: MirrorRoute[] = [];
    this.unmirrored = [];
    const rows = cache.mapping.prefixes;
    for (const row of rows) {
      // a shared cache's downstream serves its central upstream's images: its row for the central registry is the rule's way there
      if (ECR_REGISTRY_URL.test(row.registry) && rows.some(other => other !== row && other.ecrRepositoryPrefix === row.ecrRepositoryPrefix)) {
        continue;
      }
      const reason = whyNotMirrored(row);
      if (reason) {
        this.unmirrored.push({ registry: row.registry, reason });
      } else {
        routes.push({ registry: row.registry, prefix: row.ecrRepositoryPrefix });
      }
    }
    if (routes.length === 0) {
      throw new Error(`${cache.node.path}: none of this cache's upstreams can be mirrored on the nodes `
        + `(${this.unmirrored.map(u => `${u.registry}: ${u.reason}`).join('; ')}). `
        + 'Rewrite those image references instead (imageUri, the CachedImages Aspect or the ecr-ptc CLI).');
    }
    this.plan = {
      registryUri: cache.registryUri,
      // the cache's own Region (an imported cache may be in another one than this stack)
      region: ECR_REGISTRY_URL.exec(cache.registryUri)?.[2] ?? Stack.of(cache).region,
      routes,
    };
    this.mirrors = routes.map(route => ({
      registry: route.registry,
      ecrRepositoryPrefix: route.prefix,
      endpoint: cacheEndpoint(this.plan, route),
      hostsTomlPath: hostsTomlPath(route),
      hostsToml: renderHostsToml(this.plan, route),
    }));
  }

  /**
   * User data for Amazon Linux 2023 EKS nodes (nodeadm): a MIME multipart document with a `NodeConfig` part
   * that points kubelet at this library's credential provider config, and a shell script part that writes
   * each registry's `hosts.toml` and that config (nodeadm's, with the mirrored registries added to
   * `matchImages` and `AWS_REGION` set to the cache's Region).
   *
   * Use it as the user data of a launch template for an EKS managed node group (EKS adds the cluster's own
   * `NodeConfig`) or as `spec.userData` of a Karpenter `EC2NodeClass` with `amiFamily: AL2023`.
   */
  public al2023UserData(): string {
    return renderNodeadmUserData(this.plan);
  }

  /**
   * The user data for nodes of an EKS AMI type: `al2023UserData()` for `AL2023_*`.
   *
   * @throws for Bottlerocket (it always falls back to the upstream registry, with the node's ECR credentials)
   * and for AMI types whose nodes cannot be configured this way (Amazon Linux 2, Windows, custom AMIs)
   */
  public userData(amiType: eks.NodegroupAmiType): ec2.UserData {
    const type = String(amiType);
    if (type.startsWith('AL2023_')) {
      return ec2.UserData.custom(this.al2023UserData());
    }
    if (type.startsWith('BOTTLEROCKET_')) {
      throw new Error(`${this.cache.node.path}: Bottlerocket nodes (AMI type ${type}) cannot mirror the cache safely: Bottlerocket `
        + 'always pulls from the upstream registry when its mirrors fail (settings.container-registry.mirrors cannot turn that off, '
        + 'bottlerocket-os/bottlerocket#4891), and containerd would offer the node\'s ECR credentials to that upstream too '
        + '(kubelet passes them without a server address). Use Amazon Linux 2023 nodes (AL2023_*), or keep Bottlerocket and '
        + 'rewrite image references instead (imageUri, the CachedImages Aspect or the ecr-ptc CLI).');
    }
    throw new Error(`${this.cache.node.path}: nodes of AMI type ${type} cannot mirror the cache: only Amazon Linux 2023 `
      + '(AL2023_*) nodes are supported. Use those, or rewrite image references instead.');
  }

  /**
   * Adds an EKS managed node group whose nodes pull every mirrored registry through the cache: a launch
   * template with `userData(options.amiType)` and nothing else, and the node role granted pull rights on
   * the cache (`PullThroughCacheRules.grantPull`) in an `iam.Policy` of its own (`<node group>/CachePullPolicy`),
   * which alone carries the cdk-nag acknowledgements of the grant's two wildcards: statements you add to the node
   * role, its default policy included, keep their findings.
   *
   * @param cluster the cluster (eks-v2); the node group is created in its scope, as `cluster.addNodegroupCapacity` does
   * @param id the node group's construct id
   * @param options the node group's options; `amiType` is required (only `AL2023_*` nodes can mirror), `launchTemplateSpec` is not allowed
   */
  public addNodegroup(cluster: eks.ICluster, id: string, options: eks.NodegroupOptions): eks.Nodegroup {
    const where = `${this.cache.node.path}.nodeMirrors().addNodegroup('${id}')`;
    if (!options?.amiType) {
      throw new Error(`${where}: amiType is required: only Amazon Linux 2023 nodes can mirror the cache. `
        + 'Set it, for example amiType: eks.NodegroupAmiType.AL2023_X86_64_STANDARD.');
    }
    if (options.launchTemplateSpec) {
      throw new Error(`${where}: launchTemplateSpec is set, but the mirrors come in a launch template of their own. `
        + 'Drop it, or add userData(amiType) to your launch template and call cluster.addNodegroupCapacity yourself.');
    }
    if (options.nodeRole) {
      // the grant's policy names the role by name: a role of another account would be a same-named role of this one
      const problem = accountProblem(this.cache, options.nodeRole.env.account, `the node role ${options.nodeRole.node.path}`);
      if (problem) {
        throw new Error(`${where}: ${problem}`);
      }
    }
    const userData = this.userData(options.amiType);
    const scope = cluster as unknown as Construct; // every ICluster is a construct (a Cluster, or an imported one)
    // Only the user data: the instance metadata options, AMI, instance profile and disks stay what EKS and
    // the AMI give a managed node group without a launch template, so adding mirrors changes nothing else.
    const launchTemplate = new ec2.LaunchTemplate(scope, `${id}MirrorLaunchTemplate`, { userData });
    const nodegroup = new eks.Nodegroup(scope, id, {
      cluster,
      ...options,
      launchTemplateSpec: { id: launchTemplate.launchTemplateId!, version: launchTemplate.latestVersionNumber },
    });
    // The grant goes into a policy of its own on the node role, never the role's default policy: that one also takes
    // the statements you add to the role (addToPrincipalPolicy), whose findings an acknowledgement there would hide.
    const pullPolicy = new iam.Policy(nodegroup, 'CachePullPolicy');
    nodegroup.role.attachInlinePolicy(pullPolicy); // an immutable role ignores it, and is refused below
    const attached = Stack.of(pullPolicy).resolve((pullPolicy.node.defaultChild as iam.CfnPolicy).roles);
    if (!Array.isArray(attached) || attached.length === 0) {
      throw new Error(`${where}: nothing was granted. The node role ${nodegroup.role.node.path} is immutable (imported with mutable: false or `
        + 'withoutPolicyUpdates()), so no policy of this app can be attached to it. Pass a role this app may change, or give the role '
        + 'where it is managed what cache.grantPull gives: ECR pulls on the cache\'s repositories (cache.cacheRepositoryArns()), with '
        + 'ecr:BatchImportUpstreamImage for the first pull, and ecr:GetAuthorizationToken on *.');
    }
    this.cache.grantPull(pullPolicy);
    // the nodes pull through the mirror as soon as they boot: the grant is in place before the node group is created
    (nodegroup.node.defaultChild as CfnResource).addDependency(pullPolicy.node.defaultChild as CfnResource);
    acknowledgeWildcardResources(pullPolicy, this.cache.cacheRepositoryArns(),
      'Pull through cache repositories are created on first pull, so the grant covers <prefix>/* of each cache prefix');
    acknowledgeWildcardResources(pullPolicy, ['*'], 'ecr:GetAuthorizationToken has no resource type; AWS requires "*" for it, '
      + 'and it is the only action granted on "*"');
    return nodegroup;
  }
}

/** Why a registry the cache serves cannot be mirrored on the nodes, or undefined when it can. */
function whyNotMirrored(row: CachePrefix): string | undefined {
  if (row.copiedImages !== undefined) {
    return 'the cache holds only the images the mirror copies, from its first scheduled copy on: a node-wide mirror would '
      + 'fail every other pull of that registry. Rewrite the references of the copied images instead';
  }
  if (ECR_REGISTRY_URL.test(row.registry)) {
    return 'it is a private ECR registry: kubelet already has credentials for it, and a node-wide mirror would send all of '
      + 'that registry to the cache, while the rule may serve part of it';
  }
  if (row.registry === 'public.ecr.aws') {
    return 'ecr-credential-provider answers public.ecr.aws with an ECR Public token, which the private cache refuses';
  }
  if (Token.isUnresolved(row.registry)) {
    return 'its registry URL is a token, and the node files need the host name at synth time';
  }
  return undefined;
}
