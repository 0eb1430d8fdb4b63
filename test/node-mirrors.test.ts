/**
 * The node mirror files, exactly (snapshots), read the way the nodes read them (Python's MIME parser for the
 * user data, a real bash and jq for the script), and wired into EKS managed node groups.
 */
import { execFileSync, spawnSync } from 'child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parse } from 'yaml';
import { organizationExample } from '../examples/organization';
import { NodeMirrors, PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';
import { SCENARIOS } from './scenarios';
import { testApp, testDir } from './util';

const DOMAIN = '111122223333.dkr.ecr.eu-west-1.amazonaws.com';

function cacheStack(upstreams?: UpstreamRegistry[], env = true) {
  const stack = new Stack(testApp(), 'Nodes', env ? { env: { account: '111122223333', region: 'eu-west-1' } } : {});
  const cache = new PullThroughCacheRules(stack, 'Cache', {
    upstreams: upstreams ?? [
      UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
      UpstreamRegistry.quay(),
      UpstreamRegistry.kubernetes(),
      UpstreamRegistry.ecrPublic(),
      UpstreamRegistry.githubContainerRegistry({ credentials: UpstreamCredentials.createSecret() }),
      UpstreamRegistry.ecr({
        registryUrl: '444455556666.dkr.ecr.eu-west-1.amazonaws.com',
        ecrRepositoryPrefix: 'golden',
        role: iam.Role.fromRoleArn(stack, 'PullThroughCacheRole', 'arn:aws:iam::111122223333:role/ptc'),
      }),
    ],
    enableScanning: false,
    enableMonitoring: false,
  });
  return { stack, cache };
}

/** The parts of a MIME multipart document, as Python's email parser (a strict, standard one) reads them. */
function mimeParts(document: string): Array<{ contentType: string; body: string }> {
  const program = [
    'import email, json, sys',
    'message = email.message_from_string(sys.stdin.read())',
    'assert message.is_multipart(), "not multipart"',
    'print(json.dumps([{"contentType": p.get_content_type(), "body": p.get_payload()} for p in message.get_payload()]))',
  ].join('\n');
  return JSON.parse(execFileSync('python3', ['-c', program], { input: document, encoding: 'utf8' }));
}

describe('what is mirrored', () => {
  test('every upstream the nodes can mirror, under its cache prefix; the others with the reason', () => {
    const mirrors = cacheStack().cache.nodeMirrors();
    expect(mirrors.mirrors.map(m => [m.registry, m.ecrRepositoryPrefix, m.endpoint, m.hostsTomlPath])).toEqual([
      ['docker.io', 'docker-hub', `https://${DOMAIN}/v2/docker-hub`, '/etc/containerd/certs.d/docker.io/hosts.toml'],
      ['quay.io', 'quay', `https://${DOMAIN}/v2/quay`, '/etc/containerd/certs.d/quay.io/hosts.toml'],
      ['registry.k8s.io', 'k8s', `https://${DOMAIN}/v2/k8s`, '/etc/containerd/certs.d/registry.k8s.io/hosts.toml'],
      ['ghcr.io', 'ghcr', `https://${DOMAIN}/v2/ghcr`, '/etc/containerd/certs.d/ghcr.io/hosts.toml'],
    ]);
    expect(mirrors.unmirrored).toEqual([
      { registry: 'public.ecr.aws', reason: expect.stringMatching(/ECR Public token, which the private cache refuses/) },
      { registry: '444455556666.dkr.ecr.eu-west-1.amazonaws.com', reason: expect.stringMatching(/private ECR registry/) },
    ]);
  });

  test('a cache with nothing to mirror says so, and what to do instead', () => {
    const { cache } = cacheStack([UpstreamRegistry.ecrPublic()]);
    expect(() => cache.nodeMirrors()).toThrow(/none of this cache's upstreams can be mirrored on the nodes \(public\.ecr\.aws: .*\)\. Rewrite those image references instead/);
  });

  test('a member of a shared cache mirrors the central cache\'s upstreams, through its own rules on the central registry', () => {
    const member = organizationExample(testApp()).member;
    const cache = member.node.findChild('Cache') as PullThroughCacheRules;
    const mirrors = cache.nodeMirrors();
    expect(mirrors.mirrors.map(m => [m.registry, m.ecrRepositoryPrefix])).toEqual([
      ['registry.k8s.io', 'k8s'], ['quay.io', 'quay'], ['docker.io', 'docker-hub'],
    ]);
    expect(mirrors.unmirrored.map(u => u.registry)).toEqual(['public.ecr.aws']);
    expect(mirrors.mirrors[2].hostsToml).not.toContain('registry-1.docker.io'); // the cache is the only host
  });

  test('a copy-mirror registry is not mirrored node-wide: the cache holds only the images the mirror copies', () => {
    const { cache } = cacheStack([
      UpstreamRegistry.quay(),
      UpstreamRegistry.copied({ registryUrl: 'mcr.microsoft.com', images: ['dotnet/runtime:8.0'] }),
    ]);
    const mirrors = cache.nodeMirrors();
    expect(mirrors.mirrors.map(m => m.registry)).toEqual(['quay.io']);
    expect(mirrors.unmirrored).toEqual([{
      registry: 'mcr.microsoft.com',
      reason: expect.stringMatching(/holds only the images the mirror copies, from its first scheduled copy on: a node-wide mirror would fail every other pull/),
    }]);
    expect(mirrors.al2023UserData()).not.toContain('mcr.microsoft.com');
  });

  test('a ROOT prefix is served from /v2 itself', () => {
    const { cache } = cacheStack([UpstreamRegistry.quay({ ecrRepositoryPrefix: 'ROOT' })]);
    expect(cache.nodeMirrors().mirrors[0].endpoint).toBe(`https://${DOMAIN}/v2`);
  });

  test('new NodeMirrors(cache) is the same as cache.nodeMirrors()', () => {
    const { cache } = cacheStack();
    const direct = new NodeMirrors(cache);
    expect(direct.al2023UserData()).toBe(cache.nodeMirrors().al2023UserData());
  });
});

describe('no AWS credential is ever offered to a non-AWS host', () => {
  test('every host of every hosts.toml is the cache', () => {
    const mirrors = cacheStack().cache.nodeMirrors();
    for (const mirror of mirrors.mirrors) {
      const urls = mirror.hostsToml.match(/https?:\/\/[^"\s]+/g);
      expect(urls).toEqual([mirror.endpoint, mirror.endpoint]); // the server and the one [host]
    }
  });

  test('fallbackToUpstream is refused, with the reason and the safe alternative', () => {
    const { cache } = cacheStack();
    expect(() => cache.nodeMirrors({ fallbackToUpstream: true })).toThrow(new RegExp(
      'Nodes/Cache: nodeMirrors\\(\\{ fallbackToUpstream: true \\}\\) is refused: it would send the node\'s ECR credentials to the upstream registry\\. '
      + 'kubelet passes the ecr-credential-provider\'s credentials to containerd without a server address, .* AWS:<ECR token> .*'
      + 'Drop fallbackToUpstream: .* rewrite their references instead \\(imageUri, the CachedImages Aspect or the ecr-ptc CLI\\)'));
    expect(() => new NodeMirrors(cache, { fallbackToUpstream: true })).toThrow(/is refused/);
  });

  test.each([eks.NodegroupAmiType.BOTTLEROCKET_X86_64, eks.NodegroupAmiType.BOTTLEROCKET_ARM_64_NVIDIA])(
    'Bottlerocket (%s) is refused: it always falls back to the upstream, with the node\'s ECR credentials', (amiType) => {
      const mirrors = cacheStack().cache.nodeMirrors();
      expect(() => mirrors.userData(amiType)).toThrow(new RegExp(
        `Bottlerocket nodes \\(AMI type ${amiType}\\) cannot mirror the cache safely: Bottlerocket always pulls from the upstream registry `
        + 'when its mirrors fail .* containerd would offer the node\'s ECR credentials to that upstream too .* Use Amazon Linux 2023 nodes'));
    });
});

describe('generated files (exact content)', () => {
  const mirrors = cacheStack().cache.nodeMirrors();

  test('hosts.toml: the cache is the only host', () => {
    expect(mirrors.mirrors[0].hostsToml).toMatchSnapshot();
  });

  test('AL2023 user data', () => {
    expect(mirrors.al2023UserData()).toMatchSnapshot();
  });
});

describe('the AL2023 user data, read as a MIME multipart document', () => {
  const mirrors = cacheStack().cache.nodeMirrors();
  const parts = mimeParts(mirrors.al2023UserData());

  test('a NodeConfig part for nodeadm, then a shell script part for cloud-init', () => {
    expect(parts.map(p => p.contentType)).toEqual(['application/node.eks.aws', 'text/x-shellscript']);
    expect(parse(parts[0].body)).toEqual({
      apiVersion: 'node.eks.aws/v1alpha1',
      kind: 'NodeConfig',
      spec: { kubelet: { flags: ['--image-credential-provider-config=/etc/eks/pull-through-cache/credential-provider-config.json'] } },
    });
    expect(parts[1].body).toMatch(/^#!\/bin\/bash\n/);
    // each hosts.toml is in the script byte for byte
    for (const mirror of mirrors.mirrors) {
      expect(parts[1].body).toContain(`cat > '${mirror.hostsTomlPath}' <<'CDK_ECR_PTC_EOF'\n${mirror.hostsToml}CDK_ECR_PTC_EOF\n`);
    }
  });

  test('in an environment-agnostic stack, the account and Region resolve in the template', () => {
    const { stack, cache } = cacheStack(undefined, false);
    const resolved = JSON.stringify(stack.resolve(cache.nodeMirrors().al2023UserData()));
    expect(resolved).toContain('{"Ref":"AWS::AccountId"},".dkr.ecr.",{"Ref":"AWS::Region"}');
    expect(resolved).toContain('region=\'",{"Ref":"AWS::Region"},"\'');
  });
});

/** nodeadm's credential provider config on an AL2023 node (awslabs/amazon-eks-ami, nodeadm e2e expected output). */
const NODEADM_CONFIG = readFileSync(join(__dirname, 'fixtures', 'nodeadm-image-credential-provider-config.json'), 'utf8');

/** Why this machine cannot run the script in a mount namespace, or undefined. */
function whyNoScriptRun(): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return 'running the script over a private /etc needs root (this user is not root)';
  }
  for (const tool of ['unshare', 'jq', 'bash']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      return `${tool} is not installed (./scripts/install-test-deps installs jq; unshare is in util-linux)`;
    }
  }
  return undefined;
}

/** A test folder to stand in for a node's /etc: nodeadm's credential provider config (when given) and the loader cache. */
function nodeEtc(nodeadmConfig: string | undefined): string {
  const etc = testDir('etc-');
  copyFileSync('/etc/ld.so.cache', join(etc, 'ld.so.cache'));
  if (nodeadmConfig !== undefined) {
    mkdirSync(join(etc, 'eks', 'image-credential-provider'), { recursive: true });
    writeFileSync(join(etc, 'eks', 'image-credential-provider', 'config.json'), nodeadmConfig);
  }
  return etc;
}

/**
 * Runs the user data's script as cloud-init would, as root, but in a private mount namespace whose /etc is
 * `etc`, so the machine's own /etc is never touched (the mount ends with the namespace).
 */
function runScript(script: string, etc: string) {
  const scriptFile = join(testDir('script-'), 'user-data.sh');
  writeFileSync(scriptFile, script);
  const run = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c',
    'mount --bind "$1" /etc && exec bash "$2"', 'sh', etc, scriptFile], { encoding: 'utf8' });
  return { status: run.status, stderr: run.stderr };
}

const whyNot = whyNoScriptRun();
(whyNot && !process.env.CI ? describe.skip : describe)(`the AL2023 script, run by bash and jq${whyNot ? ` (skipped: ${whyNot})` : ''}`, () => {
  if (whyNot) {
    // eslint-disable-next-line no-console
    console.warn(`node-mirrors.test.ts: the AL2023 script is not run: ${whyNot}`);
  }
  const mirrors = cacheStack().cache.nodeMirrors();
  const script = mimeParts(mirrors.al2023UserData())[1].body;

  test('writes every hosts.toml, and kubelet\'s config with the mirrored registries and the cache\'s Region', () => {
    const etc = nodeEtc(NODEADM_CONFIG);
    expect(runScript(script, etc)).toEqual({ status: 0, stderr: '' });
    for (const mirror of mirrors.mirrors) {
      expect(readFileSync(join(etc, mirror.hostsTomlPath.replace(/^\/etc\//, '')), 'utf8')).toBe(mirror.hostsToml);
    }
    const original = JSON.parse(NODEADM_CONFIG);
    const written = JSON.parse(readFileSync(join(etc, 'eks', 'pull-through-cache', 'credential-provider-config.json'), 'utf8'));
    expect(written).toEqual({
      ...original,
      providers: [{
        ...original.providers[0],
        matchImages: [...original.providers[0].matchImages, 'docker.io', 'quay.io', 'registry.k8s.io', 'ghcr.io'],
        env: [{ name: 'AWS_REGION', value: 'eu-west-1' }],
      }],
    });
    expect(readFileSync(join(etc, 'eks', 'image-credential-provider', 'config.json'), 'utf8')).toBe(NODEADM_CONFIG); // nodeadm's is left alone
  });

  test('run twice (a reboot), it gives the same files', () => {
    const etc = nodeEtc(NODEADM_CONFIG);
    expect(runScript(script, etc).status).toBe(0);
    const first = readFileSync(join(etc, 'eks', 'pull-through-cache', 'credential-provider-config.json'), 'utf8');
    expect(runScript(script, etc)).toEqual({ status: 0, stderr: '' });
    expect(readFileSync(join(etc, 'eks', 'pull-through-cache', 'credential-provider-config.json'), 'utf8')).toBe(first);
  });

  test('without an ecr-credential-provider entry in nodeadm\'s config, it fails and writes no kubelet config', () => {
    const config = JSON.stringify({ apiVersion: 'kubelet.config.k8s.io/v1', kind: 'CredentialProviderConfig', providers: [] });
    const etc = nodeEtc(config);
    const { status, stderr } = runScript(script, etc);
    expect(status).toBe(1);
    expect(stderr).toMatch(/has no ecr-credential-provider entry; kubelet cannot get ECR credentials for the mirrored registries/);
    expect(existsSync(join(etc, 'eks', 'pull-through-cache', 'credential-provider-config.json'))).toBe(false);
  });

  test('without nodeadm\'s config (not an AL2023 EKS node), it fails', () => {
    const { status, stderr } = runScript(script, nodeEtc(undefined));
    expect(status).not.toBe(0);
    expect(stderr).toMatch(/config\.json: No such file or directory/);
  });
});

describe('EKS managed node groups', () => {
  function clusterStack() {
    const { stack, cache } = cacheStack();
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
      vpcId: 'vpc-0123456789abcdef0',
      availabilityZones: ['eu-west-1a', 'eu-west-1b'],
      privateSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
    });
    const cluster = eks.Cluster.fromClusterAttributes(stack, 'Cluster', { clusterName: 'platform', vpc });
    return { stack, cache, cluster };
  }

  test('an AL2023 node group gets a launch template with the user data, and its role the pull grant', () => {
    const { stack, cache, cluster } = clusterStack();
    const mirrors = cache.nodeMirrors();
    mirrors.addNodegroup(cluster, 'Nodes', { amiType: eks.NodegroupAmiType.AL2023_ARM_64_STANDARD, instanceTypes: [new ec2.InstanceType('m7g.large')] });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({ UserData: { 'Fn::Base64': mirrors.al2023UserData() }, MetadataOptions: Match.absent() }),
    });
    template.hasResourceProperties('AWS::EKS::Nodegroup', {
      AmiType: 'AL2023_ARM_64_STANDARD',
      LaunchTemplate: { Id: { Ref: Match.stringLikeRegexp('NodesMirrorLaunchTemplate') }, Version: { 'Fn::GetAtt': [Match.anyValue(), 'LatestVersionNumber'] } },
    });
    const policies = Object.values(template.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: Match.stringLikeRegexp('NodesNodeGroupRole') }] },
    }));
    expect(Object.keys(template.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: Match.stringLikeRegexp('NodesNodeGroupRole') }] },
    }))).toEqual([expect.stringMatching(/^ClusterNodesCachePullPolicy/)]);
    expect(policies).toHaveLength(1);
    const statements = stack.resolve(policies[0].Properties.PolicyDocument.Statement);
    expect(statements[0].Action).toEqual(expect.arrayContaining(['ecr:BatchGetImage', 'ecr:BatchImportUpstreamImage', 'ecr:CreateRepository']));
    expect(JSON.stringify(statements[0].Resource)).toContain(':ecr:eu-west-1:111122223333:repository/docker-hub/*');
    expect(statements[1]).toEqual({ Action: 'ecr:GetAuthorizationToken', Effect: 'Allow', Resource: '*' });
  });

  test('a Bottlerocket node group is refused before anything is added', () => {
    const { stack, cache, cluster } = clusterStack();
    expect(() => cache.nodeMirrors().addNodegroup(cluster, 'Rockets', { amiType: eks.NodegroupAmiType.BOTTLEROCKET_X86_64 }))
      .toThrow(/Bottlerocket nodes \(AMI type BOTTLEROCKET_x86_64\) cannot mirror the cache safely/);
    expect(Template.fromStack(stack).findResources('AWS::EKS::Nodegroup')).toEqual({});
  });

  test('cdk-nag: the helper acknowledges the grant\'s wildcards on its own policy; only eks-v2\'s own managed policies remain', () => {
    const stack = SCENARIOS['node-mirrors']();
    const report = new AwsSolutionsChecks(stack.node.root).validateScope(stack);
    const findings = report.violations.flatMap(v => v.violatingResources.map(r => `${v.ruleName} at ${r.constructPath}`));
    const managed = ['AmazonEKSWorkerNodePolicy', 'AmazonEKS_CNI_Policy', 'AmazonEC2ContainerRegistryReadOnly'];
    expect(findings.sort()).toEqual(['Al2023Nodes', 'Al2023ArmNodes'].flatMap(group => managed.map(policy =>
      `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policy}] at NodeMirrors/Cluster/${group}/NodeGroupRole/Resource`)).sort());
  });

  test('cdk-nag: a node role you pass gets the grant in the helper\'s own policy, and keeps the findings of its own statements', () => {
    const { stack, cache, cluster } = clusterStack();
    const nodeRole = new iam.Role(stack, 'MyNodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    nodeRole.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ec2:DescribeInstances'], resources: ['*'] }));
    cache.nodeMirrors().addNodegroup(cluster, 'Nodes', { amiType: eks.NodegroupAmiType.AL2023_X86_64_STANDARD, nodeRole });
    const report = new AwsSolutionsChecks(stack.node.root).validateScope(stack);
    const iam5 = report.violations.filter(v => v.ruleName.startsWith('AwsSolutions-IAM5'))
      .flatMap(v => v.violatingResources.map(r => `${v.ruleName} at ${r.constructPath}`));
    expect(iam5).toEqual(['AwsSolutions-IAM5[Resource::*] at Nodes/MyNodeRole/DefaultPolicy/Resource']);
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^MyNodeRole') }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['ecr:BatchImportUpstreamImage']) })]) },
      PolicyName: Match.stringLikeRegexp('CachePullPolicy'),
    });
    // the role's default policy holds only your statement
    const defaults = Object.entries(template.findResources('AWS::IAM::Policy')).filter(([id]) => id.startsWith('MyNodeRoleDefaultPolicy'));
    expect(defaults).toHaveLength(1);
    expect(JSON.stringify(defaults[0][1])).not.toContain('ecr:');
  });

  test('an immutable node role is refused before anything is granted (no policy of this app may be attached to it)', () => {
    const { stack, cache, cluster } = clusterStack();
    const nodeRole = iam.Role.fromRoleArn(stack, 'Managed', 'arn:aws:iam::111122223333:role/some/path/nodes', { mutable: false });
    expect(() => cache.nodeMirrors().addNodegroup(cluster, 'Nodes', { amiType: eks.NodegroupAmiType.AL2023_X86_64_STANDARD, nodeRole }))
      .toThrow(/addNodegroup\('Nodes'\): nothing was granted\. The node role Nodes\/Managed is immutable .* Pass a role this app may change, or give the role where it is managed/);
  });

  test('a mutable imported node role with a path gets the grant policy by its name; the node group waits for the grant', () => {
    const { stack, cache, cluster } = clusterStack();
    const nodeRole = iam.Role.fromRoleArn(stack, 'Imported', 'arn:aws:iam::111122223333:role/some/path/nodes');
    cache.nodeMirrors().addNodegroup(cluster, 'Nodes', { amiType: eks.NodegroupAmiType.AL2023_X86_64_STANDARD, nodeRole });
    const template = Template.fromStack(stack);
    const policies = template.findResources('AWS::IAM::Policy', { Properties: { PolicyName: Match.stringLikeRegexp('CachePullPolicy') } });
    expect(Object.values(policies).map(p => p.Properties.Roles)).toEqual([['nodes']]);
    const nodegroups = Object.values(template.findResources('AWS::EKS::Nodegroup'));
    expect(nodegroups).toHaveLength(1);
    expect(nodegroups[0].DependsOn).toEqual(Object.keys(policies));
  });

  test('a node role of another account is refused (the grant\'s policy would land on a same-named role of this one)', () => {
    const { stack, cache, cluster } = clusterStack();
    const nodeRole = iam.Role.fromRoleArn(stack, 'Foreign', 'arn:aws:iam::999999999999:role/nodes');
    expect(() => cache.nodeMirrors().addNodegroup(cluster, 'Nodes', { amiType: eks.NodegroupAmiType.AL2023_X86_64_STANDARD, nodeRole }))
      .toThrow(/addNodegroup\('Nodes'\): the node role Nodes\/Foreign is in account 999999999999, but Nodes\/Cache is in account 111122223333/);
  });

  test.each([
    [{}, /amiType is required: only Amazon Linux 2023 nodes can mirror the cache/],
    [{ amiType: eks.NodegroupAmiType.AL2_X86_64 }, /nodes of AMI type AL2_x86_64 cannot mirror the cache: only Amazon Linux 2023 \(AL2023_\*\) nodes are supported/],
    [{ amiType: eks.NodegroupAmiType.WINDOWS_CORE_2022_X86_64 }, /nodes of AMI type WINDOWS_CORE_2022_x86_64 cannot mirror the cache/],
    [{ amiType: eks.NodegroupAmiType.AL2023_X86_64_STANDARD, launchTemplateSpec: { id: 'lt-1' } }, /launchTemplateSpec is set, but the mirrors come in a launch template of their own/],
  ] as Array<[eks.NodegroupOptions, RegExp]>)('refuses %j', (options, message) => {
    const { cache, cluster } = clusterStack();
    expect(() => cache.nodeMirrors().addNodegroup(cluster, 'Nodes', options)).toThrow(message);
  });
});
