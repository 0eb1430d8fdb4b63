import { App, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { AwsSolutionsChecks } from 'cdk-nag';
import { PullThroughCacheRules, UpstreamCredentials, UpstreamRegistry } from '../src';

test('AwsSolutions finds nothing the construct has not acknowledged with a reason', () => {
  const app = new App();
  const stack = new Stack(app, 'Nag');
  const nodeRole = new iam.Role(stack, 'NodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
  const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
  new PullThroughCacheRules(stack, 'Cache', {
    upstreams: [
      UpstreamRegistry.ecrPublic(),
      UpstreamRegistry.dockerHub({ credentials: UpstreamCredentials.createSecret() }),
    ],
    nodeRoles: [nodeRole],
    repositoryOptions: { encryptionKey: key, resourceTags: [{ key: 'team', value: 'platform' }] },
  });
  const report = new AwsSolutionsChecks(app).validateScope(stack);
  console.log(JSON.stringify(report, null, 1));
});
