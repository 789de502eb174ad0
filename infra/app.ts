/**
 * The CDK app (`npx cdk synth|deploy`, see cdk.json). Every setting comes from context
 * (`-c key=value`), checked by infra/stacks/settings.ts; the JWT issuer and audience are CloudFormation
 * parameters of the stack. Both cdk-nag packs and AWS Control Tower's proactive controls
 * (cdk-validator-cfnguard, which runs the cfn-guard binary it ships: offline) run as validation
 * plugins: an unacknowledged finding fails the synth.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { ControlTowerChecks } from './constructs/control-tower.js';
import { readDeploySettings } from './stacks/settings.js';
import { ImsStack } from './stacks/ims-stack.js';

const app = new App();
const settings = readDeploySettings((key) => app.node.tryGetContext(key));

new ImsStack(app, settings.stackName, {
  description: 'Image Management Service (IMS): HTTP API, job workflow, records and artifacts',
  settings,
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app), new ControlTowerChecks());
