import { App } from 'aws-cdk-lib';
import { organizationExample } from './organization';

const app = new App();
organizationExample(app);
app.synth();
