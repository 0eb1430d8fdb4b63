/**
 * Reads the account's pull through cache rules with the AWS SDK. The only CLI module that imports the SDK: it is
 * bundled on its own (esbuild, SDK inlined, assets/cli/account-rules/index.js, shipped in the package), and the
 * CLI loads it only for `--from-account`, so every other command starts without it.
 */
import { DescribePullThroughCacheRulesCommand, ECRClient } from '@aws-sdk/client-ecr';
import type { AccountRules } from './prefixes';

/**
 * An `AccountRules` over the ECR API. The Region is `region` (from `--registry`) or the usual AWS settings
 * (`AWS_REGION`, the profile); credentials come from the default chain.
 */
export function accountRules(region: string | undefined): AccountRules {
  // The SDK warns on Node.js 20 that its releases after January 2027 need Node.js 22. ecr-ptc ships its own copy of
  // the SDK, so the warning says nothing the user can act on; a user who wants it sets the variable to false.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const client = new ECRClient({ region, customUserAgent: 'ecr-ptc' });
  return {
    region: () => client.config.region(),
    async describe(registryId, nextToken) {
      const out = await client.send(new DescribePullThroughCacheRulesCommand({ registryId, nextToken }));
      return {
        rules: (out.pullThroughCacheRules ?? []).map(r => ({
          ecrRepositoryPrefix: r.ecrRepositoryPrefix ?? '',
          upstreamRegistryUrl: r.upstreamRegistryUrl ?? '',
          upstreamRepositoryPrefix: r.upstreamRepositoryPrefix,
          registryId: r.registryId,
        })).filter(r => r.ecrRepositoryPrefix !== '' && r.upstreamRegistryUrl !== ''),
        nextToken: out.nextToken,
      };
    },
  };
}
