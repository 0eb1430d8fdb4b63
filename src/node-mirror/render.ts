/**
 * Pure generators of the node files that send image pulls through the cache without changing any image
 * reference: containerd `hosts.toml` files, the kubelet credential provider change, the Amazon Linux 2023
 * (nodeadm) MIME multipart user data. No CDK imports: the values may hold
 * CDK tokens (account, Region), which pass through as strings and resolve in the template.
 *
 * Sources, read 2026-11-28 (the README's "Caching without changing image references: node mirrors" cites them too):
 * - containerd hosts.toml: `server`, `[host."<url>"]`, `capabilities`, `override_path` (containerd
 *   docs/hosts.md). Hosts are tried in order, the `server` last; with `override_path` the URL's path is the
 *   full API path, so it carries `/v2/<prefix>`. Docker Hub's `library/` is added by containerd itself.
 * - AL2023 EKS AMI (awslabs/amazon-eks-ami @81fec2e, 2026-07-23): `nodeadm-config.service` runs before
 *   cloud-init and writes `/etc/eks/image-credential-provider/config.json`; `nodeadm-run.service` starts
 *   containerd and kubelet after `cloud-final.service`, so a user data shell script runs in between.
 *   containerd's `config_path` is `/etc/containerd/certs.d:/etc/docker/certs.d`. `spec.kubelet.flags` are
 *   appended after nodeadm's own flags "to give them precedence" (nodeadm/internal/kubelet/environment.go).
 *   `jq` is installed on the AMI (templates/al2023/provisioners/install-worker.sh).
 * - ecr-credential-provider (kubernetes/cloud-provider-aws @63ec440, 2026-07-07; non-ECR hosts since
 *   cd5ad050, 2023-10, released in 1.29.0 per kubernetes/kops#16593): for an image host that is not an ECR
 *   registry it calls GetAuthorizationToken in the SDK's default Region (hence `AWS_REGION`) and returns the
 *   token for that host. `public.ecr.aws` is special-cased to an ECR *Public* token, which a private
 *   registry refuses, so it is never mirrored.
 * - Credentials (why the cache is the only host, and Bottlerocket is refused): kubelet builds the CRI pull's
 *   `AuthConfig` with no `ServerAddress` (kubernetes/kubernetes@4f3d0e3b `pkg/credentialprovider/keyring.go`,
 *   `BasicDockerKeyring.Add`), and containerd's `ParseAuth` scopes credentials to a host only when a server
 *   address is set (containerd/containerd@28e7ad24 `internal/cri/server/images/image_pull.go`), so every host
 *   of a hosts.toml is offered the node's ECR token. Bottlerocket always tries the upstream after its mirrors
 *   (bottlerocket-os/bottlerocket#4891), so it would always offer it there.
 */

/** One registry whose pulls go through the cache. */
export interface MirrorRoute {
  /** The registry as image references name it: `docker.io`, `quay.io`. */
  readonly registry: string;
  /** The cache prefix serving it, or `ROOT`. */
  readonly prefix: string;
}

/** What the generators need: where the cache is, what it serves, and whether to fall back. */
export interface MirrorPlan {
  /** `<account>.dkr.ecr.<region>.<suffix>`. */
  readonly registryUri: string;
  /** The cache's Region (`AWS_REGION` of the credential provider). */
  readonly region: string;
  readonly routes: readonly MirrorRoute[];
}

/** Where containerd reads the mirror configuration of a registry (AL2023 `config_path`). */
export const CERTS_DIR = '/etc/containerd/certs.d';
/** Where nodeadm writes kubelet's credential provider config (before cloud-init). */
export const NODEADM_CREDENTIAL_CONFIG = '/etc/eks/image-credential-provider/config.json';
/** The credential provider config this library writes, and points kubelet at. */
export const MIRROR_CREDENTIAL_CONFIG = '/etc/eks/pull-through-cache/credential-provider-config.json';
/** The MIME boundary of the AL2023 user data. */
export const MIME_BOUNDARY = '//cdk-ecr-pull-through-cache//';

/** The cache endpoint of a route: `https://<domain>/v2/<prefix>` (the full API path, see `override_path`). */
export function cacheEndpoint(plan: MirrorPlan, route: MirrorRoute): string {
  return `https://${plan.registryUri}/v2${route.prefix === 'ROOT' ? '' : `/${route.prefix}`}`;
}

/** The path of a route's hosts.toml on the node. */
export function hostsTomlPath(route: MirrorRoute): string {
  return `${CERTS_DIR}/${route.registry}/hosts.toml`;
}

/** A TOML basic string (the values are host names and URLs; quotes and backslashes escaped all the same). */
function tomlString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * The containerd `hosts.toml` of one mirrored registry.
 *
 * The cache is the only host: the `server` (the host containerd tries last) and the one `[host]`. containerd
 * offers the CRI pull's credentials to every host it tries (they come from kubelet without a server address),
 * so no other host may ever be listed: a pull the cache cannot serve fails, and nothing, the node's ECR
 * token least of all, reaches the upstream from the node.
 *
 * The `[host]` table is there although the `server` is the same URL: containerd 1.6 refuses a hosts.toml
 * without one ("invalid `host` tree"), logs it, and then pulls from the upstream as if there were no file,
 * which is exactly the silent bypass this file exists to prevent (found by test/node-mirror-containerd.test.ts).
 */
export function renderHostsToml(plan: MirrorPlan, route: MirrorRoute): string {
  const endpoint = cacheEndpoint(plan, route);
  return [
    `# Generated by cdk-ecr-pull-through-cache: pulls of ${route.registry} images go through the ECR pull through cache`,
    `# (prefix ${route.prefix}).`,
    '# The cache is the only host (the server, tried last, is the cache too): when the cache fails the pull fails,',
    '# and the upstream, which must never see the node\'s ECR credentials, is never contacted.',
    `server = ${tomlString(endpoint)}`,
    'capabilities = ["pull", "resolve"]',
    'override_path = true',
    '',
    `[host.${tomlString(endpoint)}]`,
    '  capabilities = ["pull", "resolve"]',
    '  override_path = true',
    '',
  ].join('\n');
}

/**
 * The jq program that turns nodeadm's credential provider config into this library's: the mirrored
 * registries added to the `ecr-credential-provider` entry's `matchImages`, and `AWS_REGION` set to the
 * cache's Region (for a host that is not an ECR registry the provider has no Region to read).
 */
export const CREDENTIAL_CONFIG_JQ = [
  '.providers |= map(if .name == "ecr-credential-provider"',
  '  then .matchImages = ((.matchImages // []) as $m | $m + ($registries - $m))',
  '    | .env = ([(.env // [])[] | select(.name != "AWS_REGION")] + [{name: "AWS_REGION", value: $region}])',
  '  else . end)',
].join('\n');

/** The jq check that the result has the entry, with every mirrored registry: otherwise the script fails. */
export const CREDENTIAL_CONFIG_CHECK_JQ =
  'any(.providers[]; .name == "ecr-credential-provider" and ($registries - .matchImages) == [])';

/** A shell word in single quotes. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, '\'\\\'\'')}'`;
}

/** The heredoc delimiter of the script: a line the generated files never contain. */
const EOF = 'CDK_ECR_PTC_EOF';

/**
 * The AL2023 shell script: writes each registry's hosts.toml and the credential provider config. It runs
 * as cloud-init user data, after nodeadm's config phase and before containerd and kubelet start; it fails
 * (and kubelet, pointed at a missing config, does not start) rather than leave a node that pulls without
 * credentials.
 */
export function renderNodeadmScript(plan: MirrorPlan): string {
  const registries = JSON.stringify(plan.routes.map(r => r.registry));
  const lines = [
    '#!/bin/bash',
    `# Generated by cdk-ecr-pull-through-cache: image pulls of ${plan.routes.map(r => r.registry).join(', ')} go through the`,
    '# ECR pull through cache, with ECR credentials from kubelet\'s ecr-credential-provider.',
    'set -euo pipefail',
  ];
  for (const route of plan.routes) {
    const path = hostsTomlPath(route);
    lines.push(
      `mkdir -p ${shellQuote(path.slice(0, path.lastIndexOf('/')))}`,
      `cat > ${shellQuote(path)} <<'${EOF}'`,
      renderHostsToml(plan, route).replace(/\n$/, ''),
      EOF,
    );
  }
  lines.push(
    `registries=${shellQuote(registries)}`,
    `region=${shellQuote(plan.region)}`,
    `source=${NODEADM_CREDENTIAL_CONFIG}`,
    `target=${MIRROR_CREDENTIAL_CONFIG}`,
    'mkdir -p "$(dirname "$target")"',
    `jq --argjson registries "$registries" --arg region "$region" ${shellQuote(CREDENTIAL_CONFIG_JQ)} "$source" > "$target.tmp"`,
    `if ! jq -e --argjson registries "$registries" ${shellQuote(CREDENTIAL_CONFIG_CHECK_JQ)} "$target.tmp" > /dev/null; then`,
    '  echo "cdk-ecr-pull-through-cache: $source has no ecr-credential-provider entry; kubelet cannot get ECR credentials for the mirrored registries" >&2',
    '  exit 1',
    'fi',
    'mv "$target.tmp" "$target"',
    '',
  );
  return lines.join('\n');
}

/**
 * The NodeConfig part: kubelet reads this library's credential provider config. Flags given in
 * `spec.kubelet.flags` come after nodeadm's own, so this one wins over nodeadm's path.
 */
export function renderNodeConfig(): string {
  return [
    '---',
    'apiVersion: node.eks.aws/v1alpha1',
    'kind: NodeConfig',
    'spec:',
    '  kubelet:',
    '    flags:',
    `      - --image-credential-provider-config=${MIRROR_CREDENTIAL_CONFIG}`,
    '',
  ].join('\n');
}

/**
 * The AL2023 user data: a MIME multipart document with the NodeConfig part (nodeadm merges it with the
 * cluster's own, which EKS managed node groups and Karpenter add) and the shell script part (cloud-init).
 */
export function renderNodeadmUserData(plan: MirrorPlan): string {
  return [
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${MIME_BOUNDARY}"`,
    '',
    `--${MIME_BOUNDARY}`,
    'Content-Type: application/node.eks.aws',
    '',
    renderNodeConfig(),
    `--${MIME_BOUNDARY}`,
    'Content-Type: text/x-shellscript; charset="us-ascii"',
    '',
    renderNodeadmScript(plan),
    `--${MIME_BOUNDARY}--`,
    '',
  ].join('\n');
}
