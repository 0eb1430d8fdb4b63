/**
 * The CLI's registry-to-prefix table: which upstream registry is served under which cache prefix.
 *
 * It comes from the user's real rules when the CLI is told where they are: the account
 * (`DescribePullThroughCacheRules`, see account-rules.ts) or a synthesized cloud assembly (`cdk.out`). Otherwise it
 * is the library's default table, and the CLI says so. `--prefix host=prefix` adds or overrides a row, with the
 * checks the construct applies: the host must be a registry ECR can pull through, and one prefix serves one upstream.
 * No AWS SDK here: the account is read through a function passed in, so the SDK loads only when it is asked for.
 */
import { existsSync, readFileSync } from 'fs';
import { join } from 'path';
import { CachePrefix, ImageMapping } from '../image-mapping';
import { MIRROR_METADATA } from '../mirror/contract';
import { ECR_REGISTRY_URL, entryForHost, prefixProblem, registryOf, unsupportedRegistryMessage } from '../private/catalogue';
import { awsErrorInfo, isTransient } from '../private/handlers/aws-errors';
import { RULE_RESOURCE_TYPE } from '../rules/contract';

/** The prefix table could not be built: a wrong `--prefix`, or a rules source that cannot be read. */
export class PrefixTableError extends Error {}

/** A pull through cache rule, as `DescribePullThroughCacheRules` and `AWS::ECR::PullThroughCacheRule` describe it. */
export interface RuleDescription {
  readonly ecrRepositoryPrefix: string;
  readonly upstreamRegistryUrl: string;
  readonly upstreamRepositoryPrefix?: string;
  /** The account the rule is in (API only). */
  readonly registryId?: string;
  /** For a copied upstream (cloud assembly only): the images the copier copies; no other image of its registry is served. */
  readonly copiedImages?: string[];
}

/** One page of `DescribePullThroughCacheRules`. */
export interface RulePage {
  readonly rules: RuleDescription[];
  readonly nextToken?: string;
}

/** Reads the rules of the account: one call per page, in the client's Region. */
export interface AccountRules {
  /** The Region the client calls (from `--registry`, or the usual AWS settings). */
  region(): Promise<string>;
  describe(registryId: string | undefined, nextToken: string | undefined): Promise<RulePage>;
}

/** A prefix table and where it came from. */
export interface PrefixTable {
  readonly prefixes: CachePrefix[];
  /** The cache registry the source names (the account's, or the cloud assembly stack's), if it names one. */
  readonly registryUri?: string;
  /** Lines for stderr: what was assumed or noticed while building the table. */
  readonly notices: string[];
}

/** `1 pull through cache rule read`, `2 pull through cache rules read`. */
function rulesRead(count: number): string {
  return `${count} pull through cache rule${count === 1 ? '' : 's'} read`;
}

/** `host=prefix` rows in a stable order, for messages. */
export function describePrefixes(prefixes: readonly CachePrefix[]): string {
  return prefixes.map(p => `${p.registry}${p.upstreamRepositoryPrefix ? `/${p.upstreamRepositoryPrefix}` : ''}=${p.ecrRepositoryPrefix}`).join(', ');
}

/** The library's default table, with a notice saying it was assumed. */
export function defaultTable(): PrefixTable {
  const prefixes = ImageMapping.defaultPrefixes();
  return {
    prefixes,
    notices: [`no --from-account or --from-cdk-out: assuming the default cache prefixes ${describePrefixes(prefixes)}. `
      + 'An image is mapped to its default prefix even if your cache has no rule for it; pass --from-account or '
      + '--from-cdk-out <dir> to use your real rules.'],
  };
}

/**
 * The table of a set of rules. Rules with an upstream repository prefix come first (they serve only part of their
 * registry, so they must be tried before a rule for the whole registry); a registry with two rules for all of it
 * is served by the first prefix in alphabetical order, and a notice says so.
 */
export function tableFromRules(rules: readonly RuleDescription[]): { prefixes: CachePrefix[]; notices: string[] } {
  const notices: string[] = [];
  const rows = rules.map(rule => {
    const upstream = rule.upstreamRepositoryPrefix && rule.upstreamRepositoryPrefix !== 'ROOT' ? rule.upstreamRepositoryPrefix : undefined;
    return {
      registry: registryOf(rule.upstreamRegistryUrl),
      ecrRepositoryPrefix: rule.ecrRepositoryPrefix.replace(/\/$/, ''),
      upstreamRepositoryPrefix: upstream,
      copiedImages: rule.copiedImages,
    };
  }).sort((a, b) => Number(a.upstreamRepositoryPrefix === undefined) - Number(b.upstreamRepositoryPrefix === undefined)
    || a.registry.localeCompare(b.registry) || a.ecrRepositoryPrefix.localeCompare(b.ecrRepositoryPrefix));
  const whole = new Map<string, string>();
  const prefixes: CachePrefix[] = [];
  for (const row of rows) {
    if (row.upstreamRepositoryPrefix === undefined) {
      const first = whole.get(row.registry);
      if (first !== undefined) {
        notices.push(`${row.registry} has two rules, prefixes '${first}' and '${row.ecrRepositoryPrefix}': images are mapped to '${first}'`);
        continue;
      }
      whole.set(row.registry, row.ecrRepositoryPrefix);
    }
    prefixes.push(row.upstreamRepositoryPrefix === undefined
      ? {
        registry: row.registry,
        ecrRepositoryPrefix: row.ecrRepositoryPrefix,
        ...(row.copiedImages ? { copiedImages: row.copiedImages } : {}),
      }
      : row);
  }
  return { prefixes, notices };
}

/**
 * Adds or replaces rows from `--prefix host=prefix`, each checked as the construct checks an upstream: a valid
 * prefix, a registry ECR can pull through (mcr.microsoft.com, Red Hat and Google registries are refused with the
 * reason), and no prefix serving two upstreams.
 */
export function applyOverrides(table: PrefixTable, overrides: readonly string[]): PrefixTable {
  if (overrides.length === 0) {
    return table;
  }
  const prefixes = [...table.prefixes];
  const given = new Map<string, string>();
  for (const override of overrides) {
    const match = /^([^=\s]+)=([^=\s]+)$/.exec(override);
    if (!match) {
      throw new PrefixTableError(`--prefix '${override}' must be host=prefix, for example --prefix myregistry.azurecr.io=azure`);
    }
    const [, host, prefix] = match;
    const problem = prefixProblem(prefix);
    if (problem) {
      throw new PrefixTableError(`--prefix '${override}': prefix '${prefix}' is invalid: ${problem}`);
    }
    const registry = registryOf(host).toLowerCase();
    if (!entryForHost(registry)) {
      throw new PrefixTableError(`--prefix '${override}': ${unsupportedRegistryMessage(registry)}. If your cache copies it (UpstreamRegistry.copied), pass --from-cdk-out: the synthesized app names the images the copier copies`);
    }
    given.set(registry, override);
    const row = { registry, ecrRepositoryPrefix: prefix };
    const index = prefixes.findIndex(p => p.registry === registry && p.upstreamRepositoryPrefix === undefined);
    if (index >= 0) {
      prefixes[index] = row;
    } else {
      prefixes.push(row);
    }
  }
  for (const [registry, override] of given) {
    const row = prefixes.find(p => p.registry === registry && p.upstreamRepositoryPrefix === undefined)!;
    const other = prefixes.find(p => p.ecrRepositoryPrefix === row.ecrRepositoryPrefix && p.registry !== registry);
    if (other) {
      throw new PrefixTableError(`--prefix '${override}': the prefix '${row.ecrRepositoryPrefix}' already serves ${other.registry}, and ECR has one `
        + `rule per prefix, so it cannot serve ${registry} too. Pick another prefix${given.has(other.registry) ? '' : `, or move ${other.registry} with --prefix ${other.registry}=<prefix>`}.`);
    }
  }
  return { ...table, prefixes };
}

/** The account and Region of `--registry`. */
export function registryParts(registry: string): { account: string; region: string } {
  const match = ECR_REGISTRY_URL.exec(registry);
  if (!match) {
    throw new PrefixTableError(`'${registry}' is not a private ECR registry: use <12-digit account>.dkr.ecr.<region>.amazonaws.com`);
  }
  return { account: match[1], region: match[2] };
}

/** Why reading the rules failed, in words that say what to do; `code` is the AWS error code. */
function accountErrorMessage(error: unknown, region: string | undefined): string {
  const info = awsErrorInfo(error);
  const where = region ? ` in ${region}` : '';
  const said = info.message ? ` (${info.name}: ${info.message})` : ` (${info.name})`;
  switch (info.name) {
    case 'AccessDeniedException':
      return `not allowed to read the pull through cache rules${where}: the caller needs ecr:DescribePullThroughCacheRules${said}`;
    case 'UnrecognizedClientException':
    case 'InvalidSignatureException':
    case 'ExpiredTokenException':
    case 'InvalidClientTokenId':
      return `AWS rejected the credentials${where}: refresh them (aws sso login, or new keys) and run again${said}`;
    case 'CredentialsProviderError':
      return `no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or log in (aws sso login)${said}`;
    case 'ValidationException':
    case 'InvalidParameterException':
      return `ECR refused the request${where}: check the account of --registry${said}`;
    default:
      if (/region is missing/i.test(info.message)) {
        return 'no AWS Region: pass --registry <account>.dkr.ecr.<region>.amazonaws.com, or set AWS_REGION';
      }
      return isTransient(info)
        ? `ECR is throttling or failing${where} after the SDK's retries: try again later${said}`
        : `could not read the pull through cache rules${where}${said}`;
  }
}

/**
 * The table of the account's rules, every page of `DescribePullThroughCacheRules`. The cache registry is
 * `--registry` when given (its account is the `registryId` asked for), else the account the rules are in, in the
 * client's Region. An account without rules is an error: nothing would be served.
 */
export async function tableFromAccount(client: AccountRules, registry: string | undefined): Promise<PrefixTable> {
  const account = registry === undefined ? undefined : registryParts(registry).account;
  let region: string | undefined;
  const rules: RuleDescription[] = [];
  try {
    region = await client.region();
    let nextToken: string | undefined;
    do {
      const page = await client.describe(account, nextToken);
      rules.push(...page.rules);
      nextToken = page.nextToken;
    } while (nextToken);
  } catch (e) {
    throw new PrefixTableError(`--from-account: ${accountErrorMessage(e, region)}`);
  }
  if (rules.length === 0) {
    throw new PrefixTableError(`--from-account: ${account ? `account ${account} has` : 'the account has'} no pull through cache rules in ${region}, `
      + 'so the cache serves no image. Deploy your PullThroughCacheRules first, or check the Region (--registry, AWS_REGION).');
  }
  const owners = [...new Set(rules.map(r => r.registryId).filter((id): id is string => id !== undefined))];
  const registryUri = registry ?? (owners.length === 1 ? `${owners[0]}.dkr.ecr.${region}.amazonaws.com` : undefined);
  const { prefixes, notices } = tableFromRules(rules);
  return {
    prefixes,
    registryUri,
    notices: [`${rulesRead(rules.length)} from ${registryUri ?? `the account in ${region}`}: ${describePrefixes(prefixes)}`, ...notices],
  };
}

interface ManifestArtifact {
  readonly type?: string;
  readonly environment?: string;
  readonly properties?: { readonly templateFile?: string; readonly directoryName?: string };
}

interface StackRules { readonly stack: string; readonly account?: string; readonly region?: string; readonly rules: RuleDescription[] }

function readJson(file: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf-8'));
  } catch (e) {
    throw new PrefixTableError(`--from-cdk-out: cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

/** Every stack of a cloud assembly (nested assemblies of Stages too) that has pull through cache rules. */
function stacksWithRules(dir: string, notices: string[]): StackRules[] {
  const manifestFile = join(dir, 'manifest.json');
  if (!existsSync(manifestFile)) {
    throw new PrefixTableError(`--from-cdk-out: ${dir} is not a cloud assembly (no manifest.json); run cdk synth and pass its output folder (cdk.out)`);
  }
  const manifest = readJson(manifestFile, 'the cloud assembly manifest') as { artifacts?: Record<string, ManifestArtifact> };
  const found: StackRules[] = [];
  for (const [id, artifact] of Object.entries(manifest.artifacts ?? {})) {
    if (artifact.type === 'cdk:cloud-assembly' && artifact.properties?.directoryName) {
      found.push(...stacksWithRules(join(dir, artifact.properties.directoryName), notices));
      continue;
    }
    if (artifact.type !== 'aws:cloudformation:stack' || !artifact.properties?.templateFile) {
      continue;
    }
    const template = readJson(join(dir, artifact.properties.templateFile), `the template of ${id}`) as {
      Resources?: Record<string, { Type?: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown> }>;
    };
    const rules: RuleDescription[] = [];
    for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
      const mirrors = resource.Metadata?.[MIRROR_METADATA];
      if (Array.isArray(mirrors)) {
        // a copied upstream has no rule: the copy function's metadata names its prefix and the images it copies
        for (const m of mirrors as Array<{ registryUrl?: unknown; ecrRepositoryPrefix?: unknown; images?: unknown }>) {
          if (typeof m.registryUrl === 'string' && typeof m.ecrRepositoryPrefix === 'string' && Array.isArray(m.images)) {
            rules.push({ ecrRepositoryPrefix: m.ecrRepositoryPrefix, upstreamRegistryUrl: m.registryUrl, copiedImages: m.images.map(String) });
          }
        }
      }
      // a rule with credentials or a role is the library's updatable custom resource, with the same properties
      if (resource.Type !== 'AWS::ECR::PullThroughCacheRule' && resource.Type !== RULE_RESOURCE_TYPE) {
        continue;
      }
      const p = resource.Properties ?? {};
      const prefix = p.EcrRepositoryPrefix;
      const url = p.UpstreamRegistryUrl;
      const upstreamPrefix = p.UpstreamRepositoryPrefix;
      if (typeof prefix !== 'string' || typeof url !== 'string' || (upstreamPrefix !== undefined && typeof upstreamPrefix !== 'string')) {
        notices.push(`${id}/${logicalId}: a pull through cache rule whose prefix or upstream is resolved at deploy time: left out`);
        continue;
      }
      rules.push({ ecrRepositoryPrefix: prefix, upstreamRegistryUrl: url, upstreamRepositoryPrefix: upstreamPrefix as string | undefined });
    }
    if (rules.length > 0) {
      const env = /^aws:\/\/([^/]+)\/([^/]+)$/.exec(artifact.environment ?? '');
      const account = env && /^\d{12}$/.test(env[1]) ? env[1] : undefined;
      const region = env && env[2] !== 'unknown-region' ? env[2] : undefined;
      found.push({ stack: id, account, region, rules });
    }
  }
  return found;
}

/**
 * The table of the `AWS::ECR::PullThroughCacheRule` resources of a synthesized cloud assembly. With `--registry`,
 * only stacks deployed to that account and Region count (and stacks without an environment, which deploy wherever
 * the CLI points them); without it, the stacks with rules must agree on one environment, which names the cache.
 */
export function tableFromCloudAssembly(dir: string, registry: string | undefined): PrefixTable {
  const notices: string[] = [];
  const all = stacksWithRules(dir, notices);
  if (all.length === 0) {
    throw new PrefixTableError(`--from-cdk-out: no AWS::ECR::PullThroughCacheRule in the cloud assembly ${dir}: `
      + 'synthesize the app that holds your PullThroughCacheRules');
  }
  const envName = (s: StackRules) => `${s.account ?? 'any account'}/${s.region ?? 'any Region'}`;
  let stacks = all;
  let registryUri = registry;
  if (registry !== undefined) {
    const { account, region } = registryParts(registry);
    stacks = all.filter(s => (s.account === undefined || s.account === account) && (s.region === undefined || s.region === region));
    if (stacks.length === 0) {
      throw new PrefixTableError(`--from-cdk-out: no stack of ${dir} deploys pull through cache rules to ${registry}; `
        + `its rules are in ${[...new Set(all.map(envName))].join(', ')}`);
    }
  } else {
    const concrete = [...new Set(all.filter(s => s.account && s.region).map(s => `${s.account}.dkr.ecr.${s.region}.amazonaws.com`))];
    if (concrete.length !== 1 || all.some(s => !s.account || !s.region)) {
      throw new PrefixTableError(`--from-cdk-out: the cloud assembly has pull through cache rules in ${[...new Set(all.map(envName))].join(', ')}; `
        + 'pass --registry <account>.dkr.ecr.<region>.amazonaws.com to name the cache');
    }
    registryUri = concrete[0];
  }
  const rules = stacks.flatMap(s => s.rules);
  const table = tableFromRules(rules);
  return {
    prefixes: table.prefixes,
    registryUri,
    notices: [`${rulesRead(rules.length)} from ${dir} (${stacks.map(s => s.stack).join(', ')}): ${describePrefixes(table.prefixes)}`,
      ...notices, ...table.notices],
  };
}
