/**
 * What `cdk destroy` leaves, and where tags go: the created credential secret is kept unless asked (it holds a
 * token entered by hand, as `ecr.Repository` keeps its images), and `Tags.of` reaches the repositories ECR creates
 * through the repository creation templates' resource tags.
 */
import { RemovalPolicy, Stack, Tags } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';
import { testApp } from './util';

const ENV = { account: '111122223333', region: 'eu-west-1' };

function cache(props: { resourceTags?: Array<{ key: string; value: string }>; removalPolicy?: RemovalPolicy } = {}) {
  const stack = new Stack(testApp(), 'Cache', { env: ENV });
  const made = new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [
      UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret({ removalPolicy: props.removalPolicy }) }),
      UpstreamRegistry.quay(),
    ],
    repositoryOptions: props.resourceTags ? { resourceTags: props.resourceTags } : undefined,
    enableScanning: false,
    enableMonitoring: false,
  });
  return { stack, made };
}

const templateTags = (stack: Stack) => Object.values(Template.fromStack(stack).findResources('AWS::ECR::RepositoryCreationTemplate'))
  .map((t: any) => t.Properties.ResourceTags);

describe('deletion', () => {
  test('the created credential secret is retained by default, like ecr.Repository; DESTROY is opt-in', () => {
    const kept = Template.fromStack(cache().stack);
    kept.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    const destroyed = Template.fromStack(cache({ removalPolicy: RemovalPolicy.DESTROY }).stack);
    destroyed.hasResource('AWS::SecretsManager::Secret', { DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete' });
  });
});

describe('Tags.of', () => {
  test('tags of the cache and of its stack reach the repositories ECR creates, beside resourceTags (which win a clash)', () => {
    const { stack, made } = cache({ resourceTags: [{ key: 'cost-center', value: 'platform' }] });
    Tags.of(made).add('team', 'containers');
    Tags.of(stack).add('env', 'prod');
    Tags.of(made).add('cost-center', 'ignored'); // resourceTags names it already
    Tags.of(stack).add('only-buckets', 'x', { includeResourceTypes: ['AWS::S3::Bucket'] });
    const expected = [
      { Key: 'cost-center', Value: 'platform' },
      { Key: 'env', Value: 'prod' },
      { Key: 'team', Value: 'containers' },
    ];
    expect(templateTags(stack).map(tags => [...tags].sort((a: any, b: any) => a.Key.localeCompare(b.Key)))).toEqual([expected, expected]);
    Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp('inheritedTagsNotApplied'));
  });

  test('without resourceTags the cache has no role to tag with: inherited tags are left out, with a warning that says what to set', () => {
    const { stack, made } = cache();
    Tags.of(made).add('team', 'containers');
    expect(templateTags(stack)).toEqual([undefined, undefined]);
    Template.fromStack(stack).resourcePropertiesCountIs('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: [Match.objectLike({ Principal: { Service: 'ecr.amazonaws.com' } })],
      }),
    }, 0);
    Annotations.fromStack(stack).hasWarning('/Cache/Cache', Match.stringLikeRegexp(
      'Tags.of gave the cache the tags team, which do not reach the repositories ECR creates: .* Set it \\(for example to these tags\\)'));
  });

  test('more than 50 tags together fail the synth', () => {
    const { stack, made } = cache({ resourceTags: Array.from({ length: 45 }, (_, i) => ({ key: `k${i}`, value: 'v' })) });
    for (let i = 0; i < 6; i++) {
      Tags.of(made).add(`t${i}`, 'v');
    }
    expect(() => Template.fromStack(stack)).toThrow(/51 tags for cached repositories \(resourceTags and Tags\.of together\); ECR allows at most 50/);
  });
});
