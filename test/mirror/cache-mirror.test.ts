import { Aspects, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { CacheCopier, CachedImages, MappingStatus, PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry, UpstreamRegistryType } from '../../src';
import { MirrorEnv } from '../../src/mirror/contract';
import { testApp } from '../util';

const ACCOUNT = '111122223333';
const REGISTRY = `${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com`;
const arn = (prefix: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:eu-west-1:${ACCOUNT}:repository/${prefix}/*`]] });

function stack(): Stack {
  return new Stack(testApp(), 'Mirror', { env: { account: ACCOUNT, region: 'eu-west-1' } });
}

const mcr = () => UpstreamRegistry.copied({ registryUrl: 'mcr.microsoft.com', images: ['dotnet/runtime:8.0', 'dotnet/aspnet:8.0.*'] });

/** A rule set that mixes native upstreams and mirrors, pulled by a node role. */
function mixed() {
  const s = stack();
  const nodeRole = new iam.Role(s, 'NodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
  const redhatSecret = secretsmanager.Secret.fromSecretCompleteArn(s, 'RedHat',
    `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:ecr-pullthroughcache/redhat-AbCdEf`);
  const cache = new PullThroughCacheRules(s, 'Cache', {
    upstreams: [
      UpstreamRegistry.ecrPublic(),
      mcr(),
      UpstreamRegistry.copied({
        registryUrl: 'registry.redhat.io',
        ecrRepositoryPrefix: 'redhat',
        images: ['ubi9/ubi-minimal:9.4'],
        credentials: UpstreamCredentials.fromSecret(redhatSecret),
        schedule: events.Schedule.rate(Duration.days(1)),
      }),
    ],
    nodeRoles: [nodeRole],
  });
  return {
    stack: s,
    cache,
    get template() {
      return Template.fromStack(s);
    },
  };
}

describe('a rule set mixing native upstreams and mirrors', () => {
  test('a rule for the native upstream only; a CREATE_ON_PUSH template per mirror prefix, PULL_THROUGH_CACHE for the rule', () => {
    const { template } = mixed();
    template.resourceCountIs('AWS::ECR::PullThroughCacheRule', 1);
    template.hasResourceProperties('AWS::ECR::PullThroughCacheRule', { EcrRepositoryPrefix: 'ecr-public' });
    template.hasResourceProperties('AWS::ECR::RepositoryCreationTemplate', { Prefix: 'ecr-public', AppliedFor: ['PULL_THROUGH_CACHE'] });
    for (const prefix of ['mcr', 'redhat']) {
      template.hasResourceProperties('AWS::ECR::RepositoryCreationTemplate', {
        Prefix: prefix, AppliedFor: ['CREATE_ON_PUSH'], LifecyclePolicy: Match.anyValue(), ImageTagMutability: 'MUTABLE',
      });
    }
  });

  test('imageUri, the mapping and the Aspect serve mirrored images under their prefix', () => {
    const { stack: s, cache } = mixed();
    expect(cache.imageUri('mcr.microsoft.com/dotnet/runtime:8.0')).toBe(`${REGISTRY}/mcr/dotnet/runtime:8.0`);
    expect(cache.imageUri('registry.redhat.io/ubi9/ubi-minimal:9.4')).toBe(`${REGISTRY}/redhat/ubi9/ubi-minimal:9.4`);
    expect(cache.mapping.map('mcr.microsoft.com/dotnet/aspnet:8.0.11')).toMatchObject({ status: MappingStatus.REWRITTEN, repository: 'mcr/dotnet/aspnet' });
    expect(() => cache.imageUri('gcr.io/distroless/static:nonroot')).toThrow(/UpstreamRegistry\.copied\(\{ registryUrl: 'gcr\.io'/);

    const task = new ecs.FargateTaskDefinition(s, 'Task');
    task.addContainer('web', { image: ecs.ContainerImage.fromRegistry('mcr.microsoft.com/dotnet/aspnet:8.0.11'), memoryLimitMiB: 512 });
    Aspects.of(s.node.root).add(new CachedImages({ cache }));
    const containers = Object.values(Template.fromStack(s).findResources('AWS::ECS::TaskDefinition'))[0].Properties.ContainerDefinitions;
    expect(containers[0].Image).toBe(`${REGISTRY}/mcr/dotnet/aspnet:8.0.11`);
  });

  test('an image of a mirrored registry that the mirror does not copy is not served: imageUri, the Aspect and the mapping agree', () => {
    const { stack: s, cache } = mixed();
    expect(cache.imageUri('mcr.microsoft.com/dotnet/runtime:8.0')).toBe(`${REGISTRY}/mcr/dotnet/runtime:8.0`); // listed
    expect(cache.imageUri('mcr.microsoft.com/dotnet/aspnet:8.0.11')).toBe(`${REGISTRY}/mcr/dotnet/aspnet:8.0.11`); // the pattern
    const notCopied = /the copier copies only dotnet\/runtime:8\.0, dotnet\/aspnet:8\.0\.\* into 'mcr', so nothing copies this image; add it to the copied upstream's images/;
    expect(() => cache.imageUri('mcr.microsoft.com/dotnet/sdk:8.0')).toThrow(notCopied);
    expect(cache.mapping.map('mcr.microsoft.com/dotnet/runtime@sha256:' + 'a'.repeat(64))).toMatchObject({ status: MappingStatus.NOT_COPIED });

    const task = new ecs.FargateTaskDefinition(s, 'Sdk');
    task.addContainer('sdk', { image: ecs.ContainerImage.fromRegistry('mcr.microsoft.com/dotnet/sdk:8.0'), memoryLimitMiB: 512 });
    Aspects.of(s.node.root).add(new CachedImages({ cache }));
    const containers = Object.values(Template.fromStack(s).findResources('AWS::ECS::TaskDefinition'))
      .flatMap((t: any) => t.Properties.ContainerDefinitions).filter((c: any) => c.Name === 'sdk');
    expect(containers[0].Image).toBe('mcr.microsoft.com/dotnet/sdk:8.0'); // not rewritten to a repository nothing fills
    expect(Annotations.fromStack(s).findError('*', Match.stringLikeRegexp('dotnet/sdk:8\\.0.*nothing copies this image'))).toHaveLength(1);
  });

  test('node roles pull mirrored prefixes only: the import and create actions stay on the pull through prefixes', () => {
    const { template } = mixed();
    const statements = Object.values(template.findResources('AWS::IAM::Policy', { Properties: { PolicyName: Match.stringLikeRegexp('NodePullPolicy') } }))
      .flatMap((p: any) => p.Properties.PolicyDocument.Statement);
    expect(statements).toEqual([
      expect.objectContaining({ Action: expect.arrayContaining(['ecr:BatchImportUpstreamImage', 'ecr:CreateRepository']), Resource: arn('ecr-public') }),
      expect.objectContaining({ Action: 'ecr:GetAuthorizationToken', Resource: '*' }),
      { Effect: 'Allow', Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'], Resource: [arn('mcr'), arn('redhat')] },
    ]);
  });

  test('the copy function may push, and create repositories, under the mirror prefixes only', () => {
    const { template, cache } = mixed();
    const role = template.findResources('AWS::IAM::Role', { Properties: { Description: Match.stringLikeRegexp('Copies images') } });
    const roleId = Object.keys(role)[0];
    const policy = Object.values(template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } }))[0] as any;
    const statements = policy.Properties.PolicyDocument.Statement;
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:InitiateLayerUpload',
        'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage', 'ecr:CreateRepository'],
      Resource: [arn('mcr'), arn('redhat')],
    });
    expect(statements).toContainEqual({ Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' });
    // the Red Hat secret, by its ARN, and nothing else of Secrets Manager
    const secretStatements = statements.filter((st: any) => JSON.stringify(st.Action).includes('secretsmanager'));
    expect(secretStatements).toEqual([expect.objectContaining({
      Resource: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:ecr-pullthroughcache/redhat-AbCdEf`,
    })]);
    const everyResource = JSON.stringify(statements.map((st: any) => st.Resource));
    expect(everyResource).not.toContain('ecr-public');
    expect(JSON.stringify(statements)).not.toContain('BatchImportUpstreamImage');
    expect(cache.copier).toBeInstanceOf(CacheCopier);
  });

  test('the copy function: 15 minutes, 1024 MB, one image per invocation from the work queue, the upstreams in its environment', () => {
    const { template } = mixed();
    const fn = Object.values(template.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('Copies images') } }))[0] as any;
    expect(fn.Properties).toMatchObject({ Timeout: 900, MemorySize: 1024, Architectures: ['arm64'], Runtime: 'nodejs22.x' });
    const upstreams = JSON.parse(fn.Properties.Environment.Variables[MirrorEnv.UPSTREAMS]);
    expect(upstreams).toEqual([
      { prefix: 'mcr', registry: 'mcr.microsoft.com', images: ['dotnet/runtime:8.0', 'dotnet/aspnet:8.0.*'], maxTagsPerPattern: 5 },
      {
        prefix: 'redhat',
        registry: 'registry.redhat.io',
        images: ['ubi9/ubi-minimal:9.4'],
        maxTagsPerPattern: 5,
        secretArn: `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:ecr-pullthroughcache/redhat-AbCdEf`,
      },
    ]);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('MirrorWorkQueue'), 'Arn'] },
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      Enabled: false, EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('MirrorCopierDeadLetterQueue'), 'Arn'] },
    });
  });

  test('copies are never throttled: the work queue invokes at most the copies at once, and the function reserves two more for the redrive pollers and one for scheduled runs', () => {
    const mappingOf = (template: Template) => Object.values(template.findResources('AWS::Lambda::EventSourceMapping', {
      Properties: { EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('MirrorWorkQueue'), 'Arn'] } },
    })).map((m: any) => m.Properties.ScalingConfig);
    const copierOf = (template: Template) => Object.values(template.findResources('AWS::Lambda::Function', {
      Properties: { Description: Match.stringLikeRegexp('Copies images') },
    })).map((f: any) => f.Properties.ReservedConcurrentExecutions);

    const { template } = mixed();
    expect(mappingOf(template)).toEqual([{ MaximumConcurrency: 2 }]);
    expect(copierOf(template)).toEqual([5]);

    const five = stack();
    new PullThroughCacheRules(five, 'Cache', { upstreams: [mcr()], copier: { maxConcurrentCopies: 5 } });
    expect(mappingOf(Template.fromStack(five))).toEqual([{ MaximumConcurrency: 5 }]);
    expect(copierOf(Template.fromStack(five))).toEqual([8]);

    // an account that cannot spare executions (a new account's quota of 10): still capped, nothing reserved
    const shared = stack();
    new PullThroughCacheRules(shared, 'Cache', { upstreams: [mcr()], copier: { maxConcurrentCopies: 3, reserveConcurrency: false } });
    expect(mappingOf(Template.fromStack(shared))).toEqual([{ MaximumConcurrency: 3 }]);
    expect(copierOf(Template.fromStack(shared))).toEqual([undefined]);
  });

  test.each([0, 1, 1.5, -1, 1001])('maxConcurrentCopies %d is refused: MaximumConcurrency takes 2 to 1000', (maxConcurrentCopies) => {
    expect(() => new PullThroughCacheRules(stack(), 'Cache', { upstreams: [mcr()], copier: { maxConcurrentCopies } }))
      .toThrow(new RegExp(`Cache/Mirror: maxConcurrentCopies is ${String(maxConcurrentCopies).replace('.', '\\.')}; give the copies that run at once as a whole number from 2 to 1000 .* set reserveConcurrency: false`));
  });

  test('one schedule per mirror, every 6 hours unless set, naming its prefix; failed runs go to the dead-letter queue', () => {
    const { template } = mixed();
    const rules = Object.values(template.findResources('AWS::Events::Rule', { Properties: { Description: Match.stringLikeRegexp('^Copies the mirrored images') } })) as any[];
    expect(rules.map(r => r.Properties.ScheduleExpression)).toEqual(['rate(6 hours)', 'rate(1 day)']);
    const inputs = rules.map(r => r.Properties.Targets[0].InputTransformer.InputTemplate);
    expect(inputs[0]).toMatch(/"detail-type":"Scheduled Event".*"detail":\{"prefix":"mcr"\}/);
    expect(inputs[1]).toMatch(/"detail":\{"prefix":"redhat"\}/);
    expect(rules[0].Properties.Targets[0].DeadLetterConfig).toEqual({ Arn: { 'Fn::GetAtt': [expect.stringMatching(/^CacheMirrorCopierDeadLetterQueue/), 'Arn'] } });
  });

  test('the dead-letter queue keeps failed images 14 days, and is the work queue\'s backstop', () => {
    const { template } = mixed();
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 5400,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('MirrorCopierDeadLetterQueue'), 'Arn'] }, maxReceiveCount: 5 },
    });
    template.hasResourceProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 1209600, VisibilityTimeout: 5400 });
  });

  test('images the mirror pushes are scanned: the push rule covers the mirror prefixes', () => {
    const { template } = mixed();
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: Match.objectLike({
        'detail-type': ['ECR Image Action'],
        'detail': Match.objectLike({ 'repository-name': [{ prefix: 'ecr-public/' }, { prefix: 'mcr/' }, { prefix: 'redhat/' }] }),
      }),
    });
  });

  test('monitoring alarms on the copy function\'s errors and its dead-letter queue', () => {
    const { cache } = mixed();
    expect(cache.monitoring!.functions).toContain(cache.copier!.copyFunction);
    expect(cache.monitoring!.deadLetterQueues).toContain(cache.copier!.deadLetterQueue);
    const dashboard = JSON.stringify(Template.fromStack(cache.node.scope as Stack).findResources('AWS::CloudWatch::Dashboard'));
    expect(dashboard).toMatch(/Mirror: images/);
    expect(dashboard).toMatch(new RegExp(`SEARCH\\('\\{EcrPullThroughCache,Cache,Reason\\} MetricName=\\W+ImageCopyFailures\\W+ Cache=\\W+${cache.copier!.cacheName}`));
    expect(cache.copier!.metricCopyFailures().toMetricConfig().metricStat).toMatchObject({
      namespace: 'EcrPullThroughCache', metricName: 'ImageCopyFailures', dimensions: [{ name: 'Cache', value: cache.monitoring!.cacheName }],
    });
  });

  test('tagged repositories: the copy function may also tag the repositories its first push creates', () => {
    const s = stack();
    new PullThroughCacheRules(s, 'Cache', { upstreams: [mcr()], repositoryOptions: { resourceTags: [{ key: 'team', value: 'platform' }] } });
    const statements = Object.values(Template.fromStack(s).findResources('AWS::IAM::Policy')).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
    expect(statements).toContainEqual(expect.objectContaining({ Action: expect.arrayContaining(['ecr:PutImage', 'ecr:TagResource']), Resource: arn('mcr') }));
  });

  test('a cache of mirrors only has no pull through cache rule, and a created secret is read by the copy function', () => {
    const s = stack();
    const cache = new PullThroughCacheRules(s, 'Cache', {
      upstreams: [UpstreamRegistry.copied({ registryUrl: 'nvcr.io', images: ['nvidia/cuda:12.*'], maxTagsPerPattern: 2, credentials: UpstreamCredentials.createSecret() })],
    });
    const template = Template.fromStack(s);
    template.resourceCountIs('AWS::ECR::PullThroughCacheRule', 0);
    template.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'ecr-pullthroughcache/nvcr' });
    expect(cache.rules).toEqual([]);
    expect(cache.upstreams[0].registryType).toBe(UpstreamRegistryType.COPIED);
  });
});

describe('validation', () => {
  test.each([
    [{ registryUrl: 'quay.io', images: ['a/b:1'] }, /ECR pulls through quay\.io \(Quay\) itself, with no copy: use UpstreamRegistry\.fromUrl\('quay\.io'\)/],
    [{ registryUrl: 'docker.io', images: ['a/b:1'] }, /ECR pulls through docker\.io \(Docker Hub\) itself/],
    [{ registryUrl: 'mcr.microsoft.com/dotnet', images: ['a/b:1'] }, /registryUrl 'mcr\.microsoft\.com\/dotnet' is not a registry host/],
    [{ registryUrl: 'registry.example.com:5000', images: ['a/b:1'] },
      /UpstreamRegistry\.copied: registry\.example\.com:5000 has no default cache prefix, and the prefix is in every image URI your teams write: set ecrRepositoryPrefix, for example ecrRepositoryPrefix: 'example' \(its images are then cached as <registry>\/example\/<repository>\)\. Defaults exist only for mcr\.microsoft\.com \(mcr\), gcr\.io \(gcr\), nvcr\.io \(nvcr\), registry\.redhat\.io \(redhat\), registry\.access\.redhat\.com \(redhat-access\)\./],
    [{ registryUrl: 'us.gcr.io', images: ['a/b:1'] }, /us\.gcr\.io has no default cache prefix.* for example ecrRepositoryPrefix: 'us-gcr'/],
    [{ registryUrl: 'quay.internal', images: ['a/b:1'] }, /quay\.internal has no default cache prefix.* for example ecrRepositoryPrefix: 'quay-copied'/],
    [{ registryUrl: 'mcr.microsoft.com', images: [] }, /images is empty\. Name the images to copy/],
    [{ registryUrl: 'mcr.microsoft.com', images: ['dotnet/runtime'] }, /images has 'dotnet\/runtime' has no tag: write repository:tag/],
    [{ registryUrl: 'mcr.microsoft.com', images: ['mcr.microsoft.com/dotnet/runtime:8.0'] }, /'mcr\.microsoft\.com\/dotnet\/runtime:8\.0', which starts with the registry host: write 'dotnet\/runtime:8\.0'/],
    [{ registryUrl: 'mcr.microsoft.com', images: ['a/b:1', 'a/b:1'] }, /images lists 'a\/b:1' twice/],
    [{ registryUrl: 'mcr.microsoft.com', images: ['a/b:1.*'], maxTagsPerPattern: 0 }, /maxTagsPerPattern is 0; use a whole number from 1 to 100/],
    [{ registryUrl: 'mcr.microsoft.com', images: ['a/b:1'], ecrRepositoryPrefix: 'MCR' }, /ecrRepositoryPrefix 'MCR' is invalid: it has uppercase letters/],
    [{ registryUrl: 'mcr.microsoft.com', images: ['a/b:1'], ecrRepositoryPrefix: 'ROOT' },
      /\(mcr\.microsoft\.com\): ecrRepositoryPrefix is 'ROOT', which would give the copier the whole registry: a registry-wide CREATE_ON_PUSH repository creation template .* push rights on repository\/\*\. Give the copied upstream a prefix of its own, for example 'mcr', or leave ecrRepositoryPrefix out to use that default\./],
    [{ registryUrl: 'harbor.example.com', images: ['a/b:1'], ecrRepositoryPrefix: 'ROOT' }, /Give the copied upstream a prefix of its own, for example 'harbor-example'\.$/],
  ])('%j is refused', (options, message) => {
    expect(() => UpstreamRegistry.copied(options as any)).toThrow(message);
  });

  test('a scheme and a trailing slash are dropped, the host lowercased', () => {
    expect(UpstreamRegistry.copied({ registryUrl: 'https://MCR.Microsoft.com/', images: ['a/b:1'] })).toMatchObject({
      registryUrl: 'mcr.microsoft.com', registry: 'mcr.microsoft.com', ecrRepositoryPrefix: 'mcr',
    });
  });

  test('copier options without a copied upstream are refused', () => {
    expect(() => new PullThroughCacheRules(stack(), 'Cache', { upstreams: [UpstreamRegistry.quay()], copier: { memorySize: 2048 } }))
      .toThrow(/copier options are set, but no upstream is copied\. Add an UpstreamRegistry\.copied\(\) upstream or drop them/);
  });

  test('a mirror prefix another cache of the app uses is refused at synth', () => {
    const s = stack();
    new PullThroughCacheRules(s, 'One', { upstreams: [UpstreamRegistry.quay({ ecrRepositoryPrefix: 'shared' })] });
    new PullThroughCacheRules(s, 'Two', { upstreams: [UpstreamRegistry.copied({ registryUrl: 'gcr.io', ecrRepositoryPrefix: 'shared', images: ['a/b:1'] })] });
    expect(() => Template.fromStack(s)).toThrow(/both create a pull through cache rule with the prefix 'shared'/);
  });

  test('mirrors do not count against the 50 rules of a Region', () => {
    const s = stack();
    const role = iam.Role.fromRoleArn(s, 'PtcRole', `arn:aws:iam::${ACCOUNT}:role/ptc`);
    const upstreams = [
      ...Array.from({ length: 50 }, (_, i) => UpstreamRegistry.ecr({ registryUrl: `${444455556600 + i}.dkr.ecr.us-east-1.amazonaws.com`, ecrRepositoryPrefix: `ecr-${i}`, role })),
      mcr(),
    ];
    expect(() => new PullThroughCacheRules(s, 'Cache', { upstreams, enableScanning: false, enableMonitoring: false })).not.toThrow();
  });

  test('a CacheCopier is made only by its cache (beside the CREATE_ON_PUSH templates it pushes through), and refuses upstreams that are not copied', () => {
    // @ts-expect-error the constructor is private: a copier alone would push where no template creates the repository
    expect(typeof (() => new CacheCopier(stack(), 'Mirror', { upstreams: [mcr()] }))).toBe('function');
    const s = stack();
    const cache = PullThroughCacheRules.fromPullThroughCacheRulesAttributes(s, 'Imported', { prefixes: [{ registry: 'quay.io', ecrRepositoryPrefix: 'quay' }] });
    expect(() => CacheCopier._create(s, 'Mirror', { cache, upstreams: [UpstreamRegistry.quay()] })).toThrow(/quay\.io is not a copied upstream; make copied upstreams with UpstreamRegistry\.copied\(\)/);
    expect(() => CacheCopier._create(s, 'Mirror2', { cache, upstreams: [] })).toThrow(/upstreams is empty/);
  });
});
