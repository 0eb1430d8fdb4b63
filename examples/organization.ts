import { App, BootstraplessSynthesizer, Stack, Stage } from 'aws-cdk-lib';
import {
  PullThroughCacheRules, SharedCache, SharedCacheMember, SharedCacheStackSet, UpstreamCredentials, UpstreamRegistry,
} from '../src';

/** The central account of the example organization (placeholders: nothing is looked up). */
export const CENTRAL = { account: '111122223333', region: 'eu-west-1' };

/** What `organizationExample` builds: the central stack, with the StackSet, and the member stack it deploys. */
export interface OrganizationExample {
  readonly central: Stack;
  readonly member: Stack;
}

/**
 * One cache for a whole AWS Organization:
 * - the central account caches the internet (Docker Hub credentials live only here) and shares its prefixes
 *   with the organization through one registry policy;
 * - every account of the workloads OU gets, through a service-managed StackSet, pull through cache rules on
 *   the central registry, under the same prefixes.
 *
 * The member stack has no scanning or monitoring: their Lambda functions are assets, which a StackSet template
 * cannot carry, and the central cache already scans every image it imports.
 */
export function organizationExample(app: App): OrganizationExample {
  const central = new Stack(app, 'CentralCache', { env: CENTRAL, description: 'Central pull through cache shared with the organization' });
  const cache = new PullThroughCacheRules(central, 'Cache', {
    upstreams: [
      UpstreamRegistry.ecrPublic(),
      UpstreamRegistry.kubernetes(),
      UpstreamRegistry.quay(),
      UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
    ],
  });
  const shared = new SharedCache(central, 'Shared', { cache, organizationId: 'o-a1b2c3d4e5' });

  // The member template: in a Stage of its own, environment-agnostic, without bootstrap or assets.
  const member = new Stack(new Stage(app, 'Member'), 'Cache', {
    synthesizer: new BootstraplessSynthesizer(),
    description: 'Pull through cache rules on the central cache (deployed by StackSet)',
  });
  const centralCache = new SharedCacheMember(member, 'Central', { sharedCache: shared });
  new PullThroughCacheRules(member, 'Cache', { upstreams: centralCache.upstreams, enableScanning: false, enableMonitoring: false });

  new SharedCacheStackSet(central, 'Members', {
    memberStack: member,
    organizationalUnitIds: ['ou-ab12-workload1'],
    regions: ['eu-west-1', 'us-east-1'],
    stackSetName: 'ecr-pull-through-cache-members',
  });
  return { central, member };
}
