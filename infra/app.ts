/**
 * The CDK app (`npx cdk synth|deploy`, see cdk.json). Bucket names, the version, the job worker,
 * the nodes' known hosts and where job pods reach the API come from context (`-c imsBucketName=...`); the JWT issuer and audience are
 * CloudFormation parameters of the stack.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { REPO_ROOT } from './constructs/ims-function.js';
import { ImsStack } from './stacks/ims-stack.js';

const app = new App();
const context = (key: string): string | undefined => {
  const value: unknown = app.node.tryGetContext(key);
  return typeof value === 'string' && value !== '' ? value : undefined;
};
function podApiScheme(value: string | undefined): 'https' | 'http' | undefined {
  if (value === undefined || value === 'https' || value === 'http') return value;
  throw new Error(`context podApiScheme must be https or http, not '${value}'`);
}
const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

new ImsStack(app, context('stackName') ?? 'Ims', {
  description: 'Image Management Service (IMS): HTTP API, job workflow, records and artifacts',
  imsBucketName: context('imsBucketName'),
  bootImagesBucketName: context('bootImagesBucketName'),
  imsVersion: context('imsVersion') ?? version,
  jobWorker: context('jobWorker') ?? 'kubernetes',
  remoteNodeKnownHosts: context('remoteNodeKnownHosts'),
  podApiHostname: context('podApiHostname'),
  podApiScheme: podApiScheme(context('podApiScheme')),
});

// cdk-nag runs as a validation plugin: an unacknowledged finding fails the synth.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
