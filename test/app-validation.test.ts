/**
 * Clashes between caches are found at synth, across constructs and stacks of one app, with both constructs named.
 */
import { App, Stack, StackProps } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';
import { testApp } from './util';

const EU = { account: '111122223333', region: 'eu-west-1' };
const US = { account: '111122223333', region: 'us-east-1' };

function stack(app: App, id: string, env?: StackProps['env'], props: StackProps = {}): Stack {
  return new Stack(app, id, { env, ...props });
}

/** `count` distinct ECR-to-ECR upstreams of the same account (another Region), prefixes `<tag>0`, `<tag>1`, ... */
function ecrUpstreams(tag: string, count: number): UpstreamRegistry[] {
  return Array.from({ length: count }, (_, i) => UpstreamRegistry.ecr({
    registryUrl: '111122223333.dkr.ecr.us-west-2.amazonaws.com', ecrRepositoryPrefix: `${tag}${i}`, upstreamRepositoryPrefix: `team${i}`,
  }));
}

describe('two caches in one account and Region', () => {
  test('the same prefix in one stack: a synth error naming both constructs', () => {
    const app = testApp();
    const s = stack(app, 'S', EU);
    new PullThroughCacheRules(s, 'CacheA', { upstreams: [UpstreamRegistry.quay()] });
    new PullThroughCacheRules(s, 'CacheB', { upstreams: [UpstreamRegistry.ecrPublic({ ecrRepositoryPrefix: 'quay' })] });
    expect(() => app.synth()).toThrow(/S\/CacheB and S\/CacheA both create a pull through cache rule with the prefix 'quay' in account 111122223333, Region eu-west-1/);
  });

  test('the same prefix in two stacks of one app, same environment: a synth error', () => {
    const app = testApp();
    new PullThroughCacheRules(stack(app, 'One', EU), 'Cache', { upstreams: [UpstreamRegistry.kubernetes()] });
    new PullThroughCacheRules(stack(app, 'Two', EU), 'Cache', { upstreams: [UpstreamRegistry.kubernetes()] });
    expect(() => app.synth()).toThrow(/Two\/Cache and One\/Cache both create a pull through cache rule with the prefix 'k8s'/);
  });

  test('environment-agnostic stacks count as one environment', () => {
    const app = testApp();
    new PullThroughCacheRules(stack(app, 'One'), 'Cache', { upstreams: [UpstreamRegistry.kubernetes()] });
    new PullThroughCacheRules(stack(app, 'Two'), 'Cache', { upstreams: [UpstreamRegistry.kubernetes()] });
    expect(() => app.synth()).toThrow(/both create .* in the deploy-time account, the deploy-time Region/);
  });

  test('the same prefix in two Regions, or two prefixes in one, is fine', () => {
    const app = testApp();
    new PullThroughCacheRules(stack(app, 'Eu', EU), 'Cache', { upstreams: [UpstreamRegistry.kubernetes()] });
    new PullThroughCacheRules(stack(app, 'Us', US), 'Cache', { upstreams: [UpstreamRegistry.kubernetes()] });
    new PullThroughCacheRules(stack(app, 'Eu2', EU), 'Cache', { upstreams: [UpstreamRegistry.quay()] });
    expect(() => app.synth()).not.toThrow();
  });

  test('more than 50 rules together: a synth error naming the caches', () => {
    const app = testApp();
    new PullThroughCacheRules(stack(app, 'One', EU), 'Cache', { upstreams: ecrUpstreams('a', 30) });
    new PullThroughCacheRules(stack(app, 'Two', EU), 'Cache', { upstreams: ecrUpstreams('b', 21) });
    expect(() => app.synth()).toThrow(/Two\/Cache \(21 rules\) and One\/Cache \(30\) together create 51 pull through cache rules in account 111122223333, Region eu-west-1, but ECR allows at most 50/);
  });

  test('exactly 50 rules together are fine', () => {
    const app = testApp();
    new PullThroughCacheRules(stack(app, 'One', EU), 'Cache', { upstreams: ecrUpstreams('a', 30) });
    new PullThroughCacheRules(stack(app, 'Two', EU), 'Cache', { upstreams: ecrUpstreams('b', 20) });
    expect(() => app.synth()).not.toThrow();
  });

  test('the same created secret name twice: a synth error naming both secrets', () => {
    const app = testApp();
    const credentials = () => UpstreamCredentials.createSecret({ secretName: 'ecr-pullthroughcache/shared' });
    new PullThroughCacheRules(stack(app, 'One', EU), 'Cache', { upstreams: [UpstreamRegistry.githubContainerRegistry({ credentials: credentials() })] });
    new PullThroughCacheRules(stack(app, 'Two', EU), 'Cache', {
      upstreams: [UpstreamRegistry.chainguard({ credentials: credentials() })],
    });
    expect(() => app.synth()).toThrow(/Two\/Cache\/chainguard\/Credentials and One\/Cache\/ghcr\/Credentials both create the secret 'ecr-pullthroughcache\/shared'/);
  });

  test('the same default secret name in two caches of one Region: a synth error', () => {
    const app = testApp();
    for (const id of ['One', 'Two']) {
      new PullThroughCacheRules(stack(app, id, EU), 'Cache', {
        upstreams: [UpstreamRegistry.githubContainerRegistry({ credentials: UpstreamCredentials.createSecret() })],
      });
    }
    expect(() => app.synth()).toThrow(/both create the secret 'ecr-pullthroughcache\/ghcr'/);
  });
});

describe('a prefix with a trailing /', () => {
  test('refused, rather than trimmed into an invalid value (a/ -> a) or a different one', () => {
    expect(() => UpstreamRegistry.quay({ ecrRepositoryPrefix: 'a/' }))
      .toThrow(/ecrRepositoryPrefix 'a\/' is invalid: it ends with '\/', which ECR always assumes; write 'a' \(and note that 'a' is 1 character long; ECR allows 2 to 30\)/);
    expect(() => UpstreamRegistry.ecr({ registryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com', upstreamRepositoryPrefix: 'team/' }))
      .toThrow(/upstreamRepositoryPrefix 'team\/' is invalid: it ends with '\/'/);
  });
});

describe('a secret from another Region or account is refused', () => {
  test('a secret defined in a stack of another Region (cross-Region references on)', () => {
    const app = testApp();
    const us = stack(app, 'Us', US, { crossRegionReferences: true });
    const secret = new secretsmanager.Secret(us, 'Hub', { secretName: 'ecr-pullthroughcache/docker-hub' });
    const eu = stack(app, 'Eu', EU, { crossRegionReferences: true });
    expect(() => new PullThroughCacheRules(eu, 'Cache', { upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.fromSecret(secret) })] }))
      .toThrow(/the secret is in Region us-east-1, but the rule is in Region eu-west-1/);
  });

  test('a secret defined in a stack of another account', () => {
    const app = testApp();
    const other = stack(app, 'Other', { account: '444455556666', region: 'eu-west-1' });
    const secret = new secretsmanager.Secret(other, 'Hub', { secretName: 'ecr-pullthroughcache/docker-hub' });
    expect(() => new PullThroughCacheRules(stack(app, 'Eu', EU), 'Cache', { upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.fromSecret(secret) })] }))
      .toThrow(/the secret is in account 444455556666, but the rule is in account 111122223333/);
  });

  test('a secret of this Region and account in another stack is fine', () => {
    const app = testApp();
    const secret = new secretsmanager.Secret(stack(app, 'Secrets', EU), 'Hub', { secretName: 'ecr-pullthroughcache/docker-hub' });
    new PullThroughCacheRules(stack(app, 'Eu', EU), 'Cache', { upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.fromSecret(secret) })] });
    expect(() => app.synth()).not.toThrow();
  });
});
