import { App } from 'aws-cdk-lib';
import { ExampleStack } from './stack';

const app = new App();
new ExampleStack(app, 'EcrPullThroughCacheExample', {
  description: 'EKS cluster whose nodes pull public images through an Amazon ECR pull through cache',
  mirroredNodes: true,
});
app.synth();
