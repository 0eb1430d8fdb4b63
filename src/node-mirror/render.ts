/**
 * Pure generators of the node files that send image pulls through the cache without changing any image
 * reference: containerd `hosts.toml` files, the kubelet credential provider change, the Amazon Linux 2023
 * (nodeadm) MIME multipart user data and the Bottlerocket settings. No CDK imports: the values may hold
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
 * - Bottlerocket (bottlerocket-os/bottlerocket-core-kit @a10182f, 2024-10-24): `settings.container-registry
 *   .mirrors` become containerd CRI `registry.mirrors.<registry>.endpoint`, whose URL path is used as is
 *   (`/v2` is added only when the path is empty, containerd pkg/cri/server/image_pull.go) and after which
 *   the upstream is always tried (bottlerocket-os/bottlerocket#4891). Hence an endpoint with a scheme and
 *   `/v2/<prefix>`; the reports in bottlerocket-os/bottlerocket#3631 used neither. The credential provider
 *   is `settings.kubernetes.credential-providers.ecr-credential-provider` (`image-patterns`, `environment`).
 */

/** One registry whose pulls go through the cache. */
export interface MirrorRoute {
  /** The registry as image references name it: `docker.io`, `quay.io`. */
  readonly registry: string;
  /** The cache prefix serving it, or `ROOT`. */
  readonly prefix: string;
  /** The upstream's own endpoint, tried last when falling back: `https://registry-1.docker.io`. */
  readonly upstreamEndpoint: string;
}

/** What the generators need: where the cache is, what it serves, and whether to fall back. */
export interface MirrorPlan {
  /** `<account>.dkr.ecr.<region>.<suffix>`. */
  readonly registryDomain: string;
  /** The cache's Region (`AWS_REGION` of the credential provider). */
  readonly region: string;
  readonly routes: readonly MirrorRoute[];
  /** Try the upstream registry itself when the cache fails. */
  readonly fallbackToUpstream: boolean;
}

/** Where containerd reads the mirror configuration of a registry (AL2023 `config_path`). */
export const CERTS_DIR = '/etc/containerd/certs.d';
/** Where nodeadm writes kubelet's credential provider config (before cloud-init). */
export const NODEADM_CREDENTIAL_CONFIG = '/etc/eks/image-credential-provider/config.json';
/** The credential provider config this library writes, and points kubelet at. */
export const MIRROR_CREDENTIAL_CONFIG = '/etc/eks/pull-through-cache/credential-provider-config.json';
/** The MIME boundary of the AL2023 user data. */
export const MIME_BOUNDARY = '//cdk-ecr-pull-through-cache//';

/**
 * The patterns Bottlerocket's ecr-credential-provider matches by default (bottlerocket
 * sources/shared-defaults/kubernetes-aws-credential-provider.toml). Setting `image-patterns` replaces the
 * list, so the defaults are repeated before the mirrored registries.
 */
export const BOTTLEROCKET_DEFAULT_IMAGE_PATTERNS: readonly string[] = [
  '*.dkr.ecr.*.amazonaws.com',
  '*.dkr.ecr.*.amazonaws.com.cn',
  '*.dkr.ecr-fips.*.amazonaws.com',
  '*.dkr.ecr.us-iso-east-1.c2s.ic.gov',
  '*.dkr.ecr.us-isob-east-1.sc2s.sgov.gov',
];

/** The cache endpoint of a route: `https://<domain>/v2/<prefix>` (the full API path, see `override_path`). */
export function cacheEndpoint(plan: MirrorPlan, route: MirrorRoute): string {
  return `https://${plan.registryDomain}/v2${route.prefix === 'ROOT' ? '' : `/${route.prefix}`}`;
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
 * The cache is always the first `[host]`. Without fallback it is also the `server` (the host containerd
 * tries last), so containerd has no other host to try: a pull the cache cannot serve fails, and nothing
 * reaches the upstream from the node. With fallback the `server` is the upstream.
 *
 * The `[host]` table is there even without fallback: containerd 1.6 refuses a hosts.toml without one
 * ("invalid `host` tree"), logs it, and then pulls from the upstream as if there were no file, which is
 * exactly the silent bypass this file exists to prevent (found by test/node-mirror-containerd.test.ts).
 */
export function renderHostsToml(plan: MirrorPlan, route: MirrorRoute): string {
  const endpoint = cacheEndpoint(plan, route);
  const lines = [
    `# Generated by cdk-ecr-pull-through-cache: pulls of ${route.registry} images go through the ECR pull through cache`,
    `# (prefix ${route.prefix}).`,
  ];
  if (plan.fallbackToUpstream) {
    lines.push(
      '# Fallback: when the cache fails, containerd pulls from the upstream (the server, tried last).',
      `server = ${tomlString(route.upstreamEndpoint)}`,
    );
  } else {
    lines.push(
      '# No fallback: the server (tried last) is the cache too, so when the cache fails the pull fails;',
      '# the upstream is never contacted.',
      `server = ${tomlString(endpoint)}`,
      'capabilities = ["pull", "resolve"]',
      'override_path = true',
    );
  }
  lines.push(
    '',
    `[host.${tomlString(endpoint)}]`,
    '  capabilities = ["pull", "resolve"]',
    '  override_path = true',
    '',
  );
  return lines.join('\n');
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

/**
 * The Bottlerocket settings (user data TOML): one mirror per registry, and the registries added to the
 * ecr-credential-provider's image patterns with the cache's Region.
 */
export function renderBottlerocketSettings(plan: MirrorPlan): string {
  const lines = [
    `# Generated by cdk-ecr-pull-through-cache: image pulls of ${plan.routes.map(r => r.registry).join(', ')} go through the`,
    '# ECR pull through cache. Bottlerocket always tries the upstream registry after its mirrors.',
  ];
  for (const route of plan.routes) {
    lines.push(
      '[[settings.container-registry.mirrors]]',
      `registry = ${tomlString(route.registry)}`,
      `endpoint = [${tomlString(cacheEndpoint(plan, route))}]`,
      '',
    );
  }
  const patterns = [...BOTTLEROCKET_DEFAULT_IMAGE_PATTERNS, ...plan.routes.map(r => r.registry)];
  lines.push(
    '[settings.kubernetes.credential-providers.ecr-credential-provider]',
    'enabled = true',
    'cache-duration = "12h"',
    'image-patterns = [',
    ...patterns.map(p => `  ${tomlString(p)},`),
    ']',
    '',
    '[settings.kubernetes.credential-providers.ecr-credential-provider.environment]',
    `AWS_REGION = ${tomlString(plan.region)}`,
    '',
  );
  return lines.join('\n');
}
