/**
 * Synthesizes the stack as `npx cdk synth` does, from context (cdk.json's feature flags plus the
 * given keys), with bundling skipped (bundling.test.ts builds a real bundle).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { REPO_ROOT } from '#infra/constructs/ims-function.js';
import { readDeploySettings } from '#infra/stacks/settings.js';
import { ImsStack } from '#infra/stacks/ims-stack.js';

export const CDK_CONTEXT = (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;

/** A principal allowed to upload recipes in the tests. */
export const UPLOADER = 'arn:aws:iam::123456789012:role/recipe-publisher';

export type Resource = { Type: string; Properties: Record<string, any>; DeletionPolicy?: string; UpdateReplacePolicy?: string };

export function synthStack(id: string, context: Record<string, unknown> = {}) {
  const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [], ...context } });
  const settings = readDeploySettings((key) => app.node.tryGetContext(key));
  const stack = new ImsStack(app, id, { settings });
  const template = Template.fromStack(stack);
  const resources = template.toJSON().Resources as Record<string, Resource>;
  const logicalId = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
  const envOf = (f: { fn: IConstruct }) => (resources[logicalId(f.fn)].Properties.Environment?.Variables ?? {}) as Record<string, unknown>;
  const propsOf = (f: { fn: IConstruct }) => resources[logicalId(f.fn)].Properties;
  return { app, stack, template, resources, logicalId, ofType, envOf, propsOf };
}

/** A VPC to run in, with endpoints. */
export const PRIVATE_CONTEXT = {
  vpcId: 'vpc-0123456789abcdef0',
  subnetIds: 'subnet-0123456789abcdef0,subnet-0123456789abcdef1',
  subnetAvailabilityZones: 'us-east-1a,us-east-1b',
  securityGroupIds: 'sg-0123456789abcdef0',
  routeTableIds: 'rtb-0123456789abcdef0',
};

export const KNOWN_HOSTS_SECRET = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:ims/known-hosts-AbC123';
