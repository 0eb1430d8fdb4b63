import { Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { PullThroughCacheRules, PullThroughCacheRulesProps, UpstreamCredentials, UpstreamRegistry } from '../src';
import { testApp } from './util';
import { RULE_RESOURCE_TYPE } from '../src/rules/contract';

const ACCOUNT = '111122223333';
const REGION = 'us-east-1';
const SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:ecr-pullthroughcache/hub-AbCdEf`;

function newStack(env = { account: ACCOUNT, region: REGION }): Stack {
  return new Stack(testApp(), 'Test', { env });
}

function existingSecret(stack: Stack, arn = SECRET_ARN): UpstreamCredentials {
  return UpstreamCredentials.fromSecret(secretsmanager.Secret.fromSecretCompleteArn(stack, `Imported${stack.node.children.length}`, arn));
}

function cache(stack: Stack, props: PullThroughCacheRulesProps): PullThroughCacheRules {
  return new PullThroughCacheRules(stack, 'Cache', props);
}

/** The statements of every IAM policy in the template, flattened (the handlers' own are tested in test/scanning/ and test/monitoring/). */
function statements(template: Template): any[] {
  return Object.entries(template.findResources('AWS::IAM::Policy'))
    .filter(([id]) => !/^(Cache(Scanning|Monitoring)|EcrPullThroughCacheRuleHandler)/.test(id))
    .flatMap(([, p]: [string, any]) => p.Properties.PolicyDocument.Statement);
}

describe('rules', () => {
  test('one rule per upstream with the exact URL, API value, prefix and credential ARN', () => {
    const stack = newStack();
    const credentials = existingSecret(stack);
    const role = iam.Role.fromRoleArn(stack, 'PtcRole', `arn:aws:iam::${ACCOUNT}:role/ptc`);
    cache(stack, {
      upstreams: [
        UpstreamRegistry.ecrPublic(),
        UpstreamRegistry.kubernetes(),
        UpstreamRegistry.quay(),
        UpstreamRegistry.dockerHub({ credentials }),
        UpstreamRegistry.githubContainerRegistry({ credentials }),
        UpstreamRegistry.gitlabContainerRegistry({ credentials }),
        UpstreamRegistry.azureContainerRegistry({ credentials, registryUrl: 'myregistry.azurecr.io' }),
        UpstreamRegistry.chainguard({ credentials }),
        UpstreamRegistry.ecr({ registryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com', role, ecrRepositoryPrefix: 'team', upstreamRepositoryPrefix: 'shared' }),
      ],
      createRepositoryTemplates: false,
    });
    const template = Template.fromStack(stack);
    // anonymous upstreams: CloudFormation's own type; credentials or a role: the custom resource that updates in place
    template.resourceCountIs('AWS::ECR::PullThroughCacheRule', 3);
    template.resourceCountIs(RULE_RESOURCE_TYPE, 6);
    const expected: Array<[string, string, string, boolean]> = [
      ['ecr-public', 'public.ecr.aws', 'ecr-public', false],
      ['k8s', 'registry.k8s.io', 'k8s', false],
      ['quay', 'quay.io', 'quay', false],
      ['docker-hub', 'registry-1.docker.io', 'docker-hub', true],
      ['ghcr', 'ghcr.io', 'github-container-registry', true],
      ['gitlab', 'registry.gitlab.com', 'gitlab-container-registry', true],
      ['azure', 'myregistry.azurecr.io', 'azure-container-registry', true],
      ['chainguard', 'cgr.dev', 'chainguard', true],
    ];
    for (const [prefix, url, type, needsSecret] of expected) {
      const rules = template.findResources(needsSecret ? RULE_RESOURCE_TYPE : 'AWS::ECR::PullThroughCacheRule', {
        Properties: { EcrRepositoryPrefix: prefix, UpstreamRegistryUrl: url, UpstreamRegistry: type },
      });
      expect(Object.keys(rules)).toHaveLength(1);
      const props = Object.values(rules)[0].Properties;
      expect(props.CredentialArn).toEqual(needsSecret ? SECRET_ARN : undefined);
      expect(props.CustomRoleArn).toBeUndefined();
      expect(props.UpstreamRepositoryPrefix).toBeUndefined();
    }
    template.hasResourceProperties(RULE_RESOURCE_TYPE, {
      EcrRepositoryPrefix: 'team',
      UpstreamRegistryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com',
      UpstreamRegistry: 'ecr',
      CustomRoleArn: `arn:aws:iam::${ACCOUNT}:role/ptc`,
      UpstreamRepositoryPrefix: 'shared',
      CredentialArn: Match.absent(),
    });
  });

  test('construct ids come from the prefix, so reordering upstreams changes no logical id', () => {
    const ids = (upstreams: UpstreamRegistry[]) => {
      const stack = newStack();
      cache(stack, { upstreams });
      return Object.keys(Template.fromStack(stack).findResources('AWS::ECR::PullThroughCacheRule')).sort();
    };
    expect(ids([UpstreamRegistry.quay(), UpstreamRegistry.ecrPublic({ ecrRepositoryPrefix: 'mirror/ecr-public' })]))
      .toEqual(ids([UpstreamRegistry.ecrPublic({ ecrRepositoryPrefix: 'mirror/ecr-public' }), UpstreamRegistry.quay()]));
  });
});

describe('credentials', () => {
  test('createSecret makes ecr-pullthroughcache/<prefix> with the two JSON keys and no value in the template', () => {
    const stack = newStack();
    cache(stack, { upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() })] });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: 'ecr-pullthroughcache/docker-hub',
      GenerateSecretString: { SecretStringTemplate: '{"username":"REPLACE_ME"}', GenerateStringKey: 'accessToken' },
      SecretString: Match.absent(),
      KmsKeyId: Match.absent(),
    });
    const secretId = Object.keys(template.findResources('AWS::SecretsManager::Secret'))[0];
    template.hasResourceProperties(RULE_RESOURCE_TYPE, { CredentialArn: { Ref: secretId } });
  });

  test('createSecret takes a name of your own under ecr-pullthroughcache/ and refuses any other', () => {
    const stack = newStack();
    cache(stack, { upstreams: [UpstreamRegistry.githubContainerRegistry({ credentials: UpstreamCredentials.createSecret({ secretName: 'ecr-pullthroughcache/gh/org' }) })] });
    Template.fromStack(stack).hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'ecr-pullthroughcache/gh/org' });
    expect(() => cache(newStack(), {
      upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret({ secretName: 'dockerhub' }) })],
    })).toThrow(/secretName 'dockerhub' must start with 'ecr-pullthroughcache\/'.*Use 'ecr-pullthroughcache\/dockerhub'/);
  });

  test('a secret defined in the app with the right name is used by reference', () => {
    const stack = newStack();
    const secret = new secretsmanager.Secret(stack, 'HubSecret', { secretName: 'ecr-pullthroughcache/hub' });
    cache(stack, { upstreams: [UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.fromSecret(secret) })] });
    Template.fromStack(stack).hasResourceProperties(RULE_RESOURCE_TYPE, { CredentialArn: { Ref: Match.stringLikeRegexp('^HubSecret') } });
  });

  test.each([
    ['imported by name (partial ARN)', (s: Stack) => secretsmanager.Secret.fromSecretNameV2(s, 'X', 'ecr-pullthroughcache/hub'),
      /imported by name, so its full ARN is unknown.*Secret\.fromSecretCompleteArn/],
    ['imported by partial ARN', (s: Stack) => secretsmanager.Secret.fromSecretPartialArn(s, 'X', `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:ecr-pullthroughcache/hub`),
      /full ARN is unknown/],
    ['wrongly named', (s: Stack) => secretsmanager.Secret.fromSecretCompleteArn(s, 'X', `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:dockerhub-AbCdEf`),
      /named 'dockerhub', but ECR reads only secrets named 'ecr-pullthroughcache\/\.\.\.'.*rename it to 'ecr-pullthroughcache\/dockerhub'/],
    ['defined without a name', (s: Stack) => new secretsmanager.Secret(s, 'X'),
      /has a generated name.*secretName: 'ecr-pullthroughcache\/docker-hub'/],
    ['defined with a wrong name', (s: Stack) => new secretsmanager.Secret(s, 'X', { secretName: 'hub-token' }),
      /named 'hub-token'/],
    ['encrypted with a customer managed key', (s: Stack) => new secretsmanager.Secret(s, 'X', { secretName: 'ecr-pullthroughcache/hub', encryptionKey: new kms.Key(s, 'K') }),
      /customer managed KMS key, which ECR cannot use/],
    ['imported with a customer managed key', (s: Stack) => secretsmanager.Secret.fromSecretAttributes(s, 'X', { secretCompleteArn: SECRET_ARN, encryptionKey: kms.Key.fromKeyArn(s, 'K', `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`) }),
      /customer managed KMS key/],
    ['in another account', (s: Stack) => secretsmanager.Secret.fromSecretCompleteArn(s, 'X', `arn:aws:secretsmanager:${REGION}:999999999999:secret:ecr-pullthroughcache/hub-AbCdEf`),
      /the secret is in account 999999999999, but the rule is in account 111122223333/],
    ['in another Region', (s: Stack) => secretsmanager.Secret.fromSecretCompleteArn(s, 'X', `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:ecr-pullthroughcache/hub-AbCdEf`),
      /the secret is in Region eu-west-1, but the rule is in Region us-east-1/],
  ])('a secret %s is refused with how to fix it', (_what, makeSecret, message) => {
    const stack = newStack();
    const credentials = UpstreamCredentials.fromSecret(makeSecret(stack));
    expect(() => cache(stack, { upstreams: [UpstreamRegistry.dockerHub({ credentials })] }))
      .toThrow(new RegExp(`the credentials of the 'docker-hub' pull through cache rule: .*${message.source}`));
  });
});

describe('repository creation templates', () => {
  test('defaults: one per prefix, PULL_THROUGH_CACHE, mutable tags, lifecycle that bounds storage, no custom role', () => {
    const stack = newStack();
    cache(stack, { upstreams: [UpstreamRegistry.quay(), UpstreamRegistry.ecrPublic({ ecrRepositoryPrefix: 'mirror/ecr' })] });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::ECR::RepositoryCreationTemplate', 2);
    expect(Object.keys(template.findResources('AWS::IAM::Role')).filter(id => !/^Cache(Scanning|Monitoring)/.test(id))).toEqual([]);
    for (const prefix of ['quay', 'mirror/ecr']) {
      template.hasResourceProperties('AWS::ECR::RepositoryCreationTemplate', {
        Prefix: prefix,
        AppliedFor: ['PULL_THROUGH_CACHE'],
        ImageTagMutability: 'MUTABLE',
        CustomRoleArn: Match.absent(),
        EncryptionConfiguration: Match.absent(),
        ResourceTags: Match.absent(),
      });
    }
    const policy = JSON.parse(Object.values(template.findResources('AWS::ECR::RepositoryCreationTemplate'))[0].Properties.LifecyclePolicy);
    expect(policy).toEqual({
      rules: [
        { rulePriority: 1, description: 'Expire untagged images', selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 7 }, action: { type: 'expire' } },
        { rulePriority: 2, description: 'Keep the newest images', selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 100 }, action: { type: 'expire' } },
      ],
    });
  });

  test('lifecycle knobs, custom rules, and no rules at all', () => {
    const lifecycleOf = (repositoryOptions: any) => {
      const stack = newStack();
      cache(stack, { upstreams: [UpstreamRegistry.quay()], repositoryOptions });
      const props = Object.values(Template.fromStack(stack).findResources('AWS::ECR::RepositoryCreationTemplate'))[0].Properties;
      return props.LifecyclePolicy === undefined ? undefined : JSON.parse(props.LifecyclePolicy);
    };
    const knobs = lifecycleOf({ untaggedImageExpiration: Duration.days(2), maxImageCount: 20 });
    expect(knobs.rules.map((r: any) => r.selection.countNumber)).toEqual([2, 20]);
    const custom = lifecycleOf({ lifecycleRules: [{ maxImageCount: 5 }, { tagPrefixList: ['v'], maxImageAge: Duration.days(30) }] });
    expect(custom.rules).toEqual([
      { rulePriority: 1, selection: { tagStatus: 'tagged', tagPrefixList: ['v'], countType: 'sinceImagePushed', countUnit: 'days', countNumber: 30 }, action: { type: 'expire' } },
      { rulePriority: 2, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 5 }, action: { type: 'expire' } },
    ]);
    expect(lifecycleOf({ lifecycleRules: [] })).toBeUndefined();
  });

  test.each([
    [{ lifecycleRules: [], maxImageCount: 3 }, /lifecycleRules replaces the default rules, so untaggedImageExpiration and maxImageCount/],
    [{ lifecycleRules: [{ maxImageCount: 1, maxImageAge: Duration.days(1) }] }, /must set exactly one of maxImageCount and maxImageAge/],
    [{ lifecycleRules: [{ tagStatus: ecr.TagStatus.TAGGED, maxImageCount: 1 }] }, /tagStatus TAGGED needs tagPrefixList or tagPatternList/],
    [{ lifecycleRules: [{ rulePriority: 1, maxImageCount: 1 }, { rulePriority: 1, tagStatus: ecr.TagStatus.UNTAGGED, maxImageCount: 1 }] }, /same rulePriority/],
    [{ lifecycleRules: [{ rulePriority: 1, maxImageCount: 1 }, { rulePriority: 2, tagStatus: ecr.TagStatus.UNTAGGED, maxImageCount: 1 }] }, /tagStatus ANY must have the highest rulePriority/],
    [{ maxImageCount: 0 }, /maxImageCount must be a whole number of at least 1/],
    [{ imageTagMutability: ecr.TagMutability.IMMUTABLE }, /imageTagMutability IMMUTABLE would stop ECR from refreshing cached tags.*must be MUTABLE/],
    [{ imageTagMutability: ecr.TagMutability.IMMUTABLE_WITH_EXCLUSION }, /IMMUTABLE_WITH_EXCLUSION would stop ECR/],
    [{ encryption: ecr.RepositoryEncryption.KMS_DSSE }, /KMS_DSSE encryption exists only in the GovCloud/],
    [{ resourceTags: Array.from({ length: 51 }, (_, i) => ({ key: `k${i}`, value: 'v' })) }, /51 resourceTags; ECR allows at most 50/],
  ])('refuses %o', (repositoryOptions, message) => {
    expect(() => cache(newStack(), { upstreams: [UpstreamRegistry.quay()], repositoryOptions: repositoryOptions as any })).toThrow(message);
  });

  test('refuses an alias or a key with the wrong encryption type', () => {
    const stack = newStack();
    const alias = kms.Alias.fromAliasName(stack, 'Alias', 'alias/ecr');
    expect(() => cache(stack, { upstreams: [UpstreamRegistry.quay()], repositoryOptions: { encryptionKey: alias } }))
      .toThrow(/encryptionKey is the alias .* ECR needs the full ARN of the key itself/);
    const other = newStack();
    expect(() => cache(other, { upstreams: [UpstreamRegistry.quay()], repositoryOptions: { encryptionKey: new kms.Key(other, 'K'), encryption: ecr.RepositoryEncryption.AES_256 } }))
      .toThrow(/encryptionKey is set, but encryption is AES256/);
  });

  test('tags and a KMS key: full key ARN, and a role ECR assumes, scoped to the cache prefixes and the key', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'Key');
    const rules = cache(stack, {
      upstreams: [UpstreamRegistry.quay(), UpstreamRegistry.kubernetes()],
      repositoryOptions: { encryptionKey: key, resourceTags: [{ key: 'cost-center', value: 'platform' }] },
    });
    const template = Template.fromStack(stack);
    const roleId = stack.getLogicalId(rules.templateRole!.node.defaultChild as iam.CfnRole);
    template.hasResourceProperties('AWS::ECR::RepositoryCreationTemplate', {
      Prefix: 'quay',
      EncryptionConfiguration: { EncryptionType: 'KMS', KmsKey: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Key'), 'Arn'] } },
      ResourceTags: [{ Key: 'cost-center', Value: 'platform' }],
      CustomRoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] },
    });
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'ecr.amazonaws.com' } }] },
    });
    const roleStatements = statements(template);
    expect(roleStatements).toContainEqual({
      Action: ['ecr:CreateRepository', 'ecr:TagResource'],
      Effect: 'Allow',
      Resource: [
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:${REGION}:${ACCOUNT}:repository/quay/*`]] },
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:${REGION}:${ACCOUNT}:repository/k8s/*`]] },
      ],
    });
    expect(roleStatements).toContainEqual({
      Action: ['kms:CreateGrant', 'kms:RetireGrant', 'kms:DescribeKey'],
      Effect: 'Allow',
      Resource: { 'Fn::GetAtt': [stack.getLogicalId(key.node.defaultChild as kms.CfnKey), 'Arn'] },
    });
  });

  test('createRepositoryTemplates: false makes none, and refuses repositoryOptions it would ignore', () => {
    const stack = newStack();
    cache(stack, { upstreams: [UpstreamRegistry.quay()], createRepositoryTemplates: false });
    Template.fromStack(stack).resourceCountIs('AWS::ECR::RepositoryCreationTemplate', 0);
    const props = { upstreams: [UpstreamRegistry.quay()], createRepositoryTemplates: false, repositoryOptions: { maxImageCount: 5 } };
    expect(() => cache(newStack(), props))
      .toThrow(/createRepositoryTemplates is false/);
  });
});

describe('pull grants', () => {
  const cacheArn = (prefix: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:${REGION}:${ACCOUNT}:repository/${prefix}/*`]] });
  const PULL = ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage', 'ecr:BatchImportUpstreamImage', 'ecr:CreateRepository'];

  test('grantPull: pull and first pull on <prefix>/* only, and GetAuthorizationToken alone on *', () => {
    const stack = newStack();
    const rules = cache(stack, { upstreams: [UpstreamRegistry.quay(), UpstreamRegistry.ecrPublic()] });
    const role = new iam.Role(stack, 'Puller', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    rules.grantPull(role);
    const granted = statements(Template.fromStack(stack));
    expect(granted).toEqual([
      { Action: PULL, Effect: 'Allow', Resource: [cacheArn('quay'), cacheArn('ecr-public')] },
      { Action: 'ecr:GetAuthorizationToken', Effect: 'Allow', Resource: '*' },
    ]);
  });

  test('ecr:TagResource is granted only when the templates tag repositories', () => {
    const stack = newStack();
    const rules = cache(stack, { upstreams: [UpstreamRegistry.quay()], repositoryOptions: { resourceTags: [{ key: 'a', value: 'b' }] } });
    rules.grantPull(new iam.Role(stack, 'Puller', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') }));
    expect(statements(Template.fromStack(stack))).toContainEqual({ Action: [...PULL, 'ecr:TagResource'], Effect: 'Allow', Resource: cacheArn('quay') });
  });

  test('a ROOT prefix covers every repository, by necessity', () => {
    const stack = newStack();
    const rules = cache(stack, { upstreams: [UpstreamRegistry.ecr({ registryUrl: `${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com`, ecrRepositoryPrefix: 'ROOT' })] });
    expect(stack.resolve(rules.cacheRepositoryArns())).toEqual([{ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:${REGION}:${ACCOUNT}:repository/*`]] }]);
  });

  test('one line serves an EKS managed node group, a Karpenter node role, a Fargate pod execution role and an ECS task execution role', () => {
    const stack = newStack();
    const cluster = new eks.Cluster(stack, 'Cluster', { version: eks.KubernetesVersion.V1_33, defaultCapacity: 0, defaultCapacityType: eks.DefaultCapacityType.NODEGROUP });
    const nodegroup = cluster.addNodegroupCapacity('Nodes', { minSize: 1 });
    const karpenterNodeRole = new iam.Role(stack, 'KarpenterNodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    const fargate = cluster.addFargateProfile('Fargate', { selectors: [{ namespace: 'default' }] });
    const taskDefinition = new ecs.FargateTaskDefinition(stack, 'Task');
    taskDefinition.addContainer('app', { image: ecs.ContainerImage.fromRegistry('nginx') });

    cache(stack, {
      upstreams: [UpstreamRegistry.quay()],
      nodeRoles: [nodegroup.role, karpenterNodeRole, fargate.podExecutionRole, taskDefinition.obtainExecutionRole()],
    });

    const template = Template.fromStack(stack);
    const policies = template.findResources('AWS::IAM::Policy', { Properties: { PolicyName: Match.stringLikeRegexp('^CacheNodePullPolicy') } });
    expect(Object.keys(policies)).toHaveLength(1);
    const policy = Object.values(policies)[0].Properties;
    expect(policy.PolicyDocument.Statement).toEqual([
      { Action: PULL, Effect: 'Allow', Resource: cacheArn('quay') },
      { Action: 'ecr:GetAuthorizationToken', Effect: 'Allow', Resource: '*' },
    ]);
    const roleRef = (role: iam.IRole) => ({ Ref: stack.getLogicalId(role.node.defaultChild as iam.CfnRole) });
    expect(policy.Roles).toEqual([nodegroup.role, karpenterNodeRole, fargate.podExecutionRole, taskDefinition.executionRole!].map(roleRef));
  });

  test('no grant, template role or node policy gives an ECR action other than GetAuthorizationToken on *', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'Key');
    const rules = cache(stack, {
      upstreams: [UpstreamRegistry.quay(), UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() })],
      nodeRoles: [new iam.Role(stack, 'Node', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') })],
      repositoryOptions: { encryptionKey: key, resourceTags: [{ key: 'a', value: 'b' }] },
    });
    rules.grantPull(new iam.Role(stack, 'Other', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') }));
    const onStar = statements(Template.fromStack(stack)).filter(s => s.Resource === '*' || (Array.isArray(s.Resource) && s.Resource.includes('*')));
    // the node-role policy and the other role's grant: two, and nothing else
    expect(onStar.map(s => s.Action)).toEqual(['ecr:GetAuthorizationToken', 'ecr:GetAuthorizationToken']);
  });
});

describe('validation', () => {
  test.each([
    [{ upstreams: [] }, /upstreams is empty/],
    [{} as any, /upstreams is empty/],
    [{ upstreams: [{ registryUrl: 'quay.io' }] } as any, /must be made with an UpstreamRegistry factory/],
    [{ upstreams: [UpstreamRegistry.quay(), UpstreamRegistry.kubernetes({ ecrRepositoryPrefix: 'quay' })] },
      /the cache prefix 'quay' is used by both quay\.io and registry\.k8s\.io.*set ecrRepositoryPrefix on one of them/],
    [{ upstreams: [UpstreamRegistry.quay(), UpstreamRegistry.quay({ ecrRepositoryPrefix: 'quay2' })] },
      /quay\.io is listed twice \(prefixes 'quay' and 'quay2'\)/],
    [{ upstreams: Array.from({ length: 51 }, (_, i) => UpstreamRegistry.ecr({ registryUrl: `${String(i).padStart(12, '4')}.dkr.ecr.eu-west-1.amazonaws.com`, ecrRepositoryPrefix: `ecr-${i}` })) },
      /51 upstreams, but ECR allows at most 50 pull through cache rules per Region/],
  ])('refuses %#', (props, message) => {
    expect(() => cache(newStack(), props)).toThrow(message);
  });

  test.each(['cn-north-1', 'us-gov-west-1'])('refuses Region %s, where ECR has no pull through cache', region => {
    expect(() => cache(newStack({ account: ACCOUNT, region }), { upstreams: [UpstreamRegistry.quay()] }))
      .toThrow(new RegExp(`not available in ${region}`));
  });

  test('an ECR upstream must be another registry, and another account needs a role', () => {
    expect(() => cache(newStack(), { upstreams: [UpstreamRegistry.ecr({ registryUrl: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com` })] }))
      .toThrow(/is this stack's own registry/);
    expect(() => cache(newStack(), { upstreams: [UpstreamRegistry.ecr({ registryUrl: `444455556666.dkr.ecr.${REGION}.amazonaws.com` })] }))
      .toThrow(/is in account 444455556666, not 111122223333: ECR needs a role to pull across accounts/);
    // same account, other Region: the service-linked role is enough
    expect(() => cache(newStack(), { upstreams: [UpstreamRegistry.ecr({ registryUrl: `${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com` })] })).not.toThrow();
  });

  test('an environment-agnostic stack synthesizes, with tokens where the account and Region go', () => {
    const stack = new Stack(testApp(), 'Agnostic');
    const rules = cache(stack, { upstreams: [UpstreamRegistry.quay(), UpstreamRegistry.ecr({ registryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com' })] });
    expect(stack.resolve(rules.imageUri('quay.io/org/img:1'))).toEqual({
      'Fn::Join': ['', [{ Ref: 'AWS::AccountId' }, '.dkr.ecr.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/quay/org/img:1']],
    });
    Template.fromStack(stack).resourceCountIs('AWS::ECR::PullThroughCacheRule', 1);
    Template.fromStack(stack).resourceCountIs(RULE_RESOURCE_TYPE, 1); // the ECR upstream, which may gain a role later
  });
});

describe('imageUri', () => {
  const stack = newStack();
  const rules = cache(stack, {
    upstreams: [
      UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
      UpstreamRegistry.quay(),
      UpstreamRegistry.githubContainerRegistry({ credentials: UpstreamCredentials.createSecret(), ecrRepositoryPrefix: 'github' }),
      UpstreamRegistry.kubernetes({ ecrRepositoryPrefix: 'kubernetes' }),
      UpstreamRegistry.ecrPublic(),
      UpstreamRegistry.ecr({ registryUrl: `${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com`, ecrRepositoryPrefix: 'my-app', upstreamRepositoryPrefix: 'upstream-app' }),
    ],
  });
  const registry = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`;

  test.each([
    ['nginx:1.25', 'docker-hub/library/nginx:1.25'],
    ['docker.io/nginx:latest', 'docker-hub/library/nginx:latest'],
    ['index.docker.io/library/nginx', 'docker-hub/library/nginx'],
    ['bitnami/redis:7.2', 'docker-hub/bitnami/redis:7.2'],
    ['quay.io/org/img:t', 'quay/org/img:t'],
    ['ghcr.io/org/img:t', 'github/org/img:t'],
    ['registry.k8s.io/pause:3.9', 'kubernetes/pause:3.9'],
    ['public.ecr.aws/amazonlinux/amazonlinux', 'ecr-public/amazonlinux/amazonlinux'],
    [`${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/upstream-app/image1:v1`, 'my-app/image1:v1'],
    [`nginx:1.25@sha256:${'a'.repeat(64)}`, `docker-hub/library/nginx:1.25@sha256:${'a'.repeat(64)}`],
  ])('%s -> <registry>/%s', (image, path) => {
    expect(rules.imageUri(image)).toBe(`${registry}/${path}`);
  });

  test('a URI already in the cache is returned unchanged (idempotent)', () => {
    const once = rules.imageUri('nginx:1.25');
    expect(rules.imageUri(once)).toBe(once);
  });

  test('a registry without a rule, or one ECR cannot pull through, is an error that says what to do', () => {
    expect(() => rules.imageUri('cgr.dev/chainguard/static:latest')).toThrow(/no pull through cache rule serves 'cgr\.dev\/chainguard\/static:latest': no cache prefix for cgr\.dev: add UpstreamRegistry\.chainguard\(\{ credentials \}\) to the cache's upstreams\.$/);
    expect(() => rules.imageUri('mcr.microsoft.com/dotnet/runtime:8.0')).toThrow(/ECR cannot pull through 'mcr\.microsoft\.com'/);
    expect(() => rules.imageUri(`${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/other/image1`)).toThrow(/no pull through cache rule serves/);
    expect(() => rules.imageUri('NGINX')).toThrow(/Invalid image reference 'NGINX'/);
  });

  test('a digest-only reference gets a warning: ECR cannot fill the cache on a first pull by digest', () => {
    const s = newStack();
    const r = cache(s, { upstreams: [UpstreamRegistry.quay()] });
    expect(r.imageUri(`quay.io/org/img@sha256:${'b'.repeat(64)}`)).toBe(`${registry}/quay/org/img@sha256:${'b'.repeat(64)}`);
    Annotations.fromStack(s).hasWarning('/Test/Cache', Match.stringLikeRegexp('pinned by digest only: ECR fills the cache only on a pull by tag'));
    r.imageUri('quay.io/org/img:1');
    expect(Annotations.fromStack(s).findWarning('/Test/Cache', Match.anyValue())).toHaveLength(1);
  });
});
