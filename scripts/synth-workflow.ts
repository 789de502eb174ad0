/**
 * Synthesizes the job workflow defined in infra/workflow/definition.ts with aws-cdk-lib and
 * writes its ASL to shared/workflow/generated/job-workflow.asl.json, the definition the embedded
 * runtime executes. CHECK=1 fails when the committed file is stale.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { buildJobWorkflow, DEFAULT_EXECUTION_TIMEOUT, type JobWorkflowFunctions } from '../infra/workflow/definition.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outPath = join(root, 'shared/workflow/generated/job-workflow.asl.json');

/** Joins a CloudFormation `Fn::Join` of the definition into plain JSON text. */
export function resolveDefinition(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if (v['Fn::Join']) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map(resolveDefinition).join(sep);
  }
  if (v.Ref === 'AWS::Partition') return 'aws';
  if (v.Ref === 'AWS::Region') return 'us-east-1';
  if (v.Ref === 'AWS::AccountId') return '000000000000';
  throw new Error(`cannot resolve ${JSON.stringify(value)}`);
}

export function synthesizeWorkflowAsl(): Record<string, unknown> {
  const app = new App();
  const stack = new Stack(app, 'WorkflowSynth', { env: { account: '000000000000', region: 'us-east-1' } });
  const fn = (stage: string) =>
    lambda.Function.fromFunctionArn(stack, `Fn-${stage}`, `arn:aws:lambda:us-east-1:000000000000:function:ims-workflow-${stage}`);
  const fns: JobWorkflowFunctions = {
    prepare: fn('prepare'),
    build: fn('build'),
    ssh: fn('ssh'),
    package: fn('package'),
    register: fn('register'),
    cleanup: fn('cleanup'),
  };
  new sfn.StateMachine(stack, 'JobWorkflow', { definitionBody: buildJobWorkflow(stack, fns), timeout: DEFAULT_EXECUTION_TIMEOUT });
  const resources = Template.fromStack(stack).findResources('AWS::StepFunctions::StateMachine');
  const [machine] = Object.values(resources) as { Properties: { DefinitionString: unknown } }[];
  return JSON.parse(resolveDefinition(machine.Properties.DefinitionString));
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const text = `${JSON.stringify(synthesizeWorkflowAsl(), null, 2)}\n`;
  if (process.env.CHECK === '1') {
    if (readFileSync(outPath, 'utf8') !== text) {
      console.error('shared/workflow/generated/job-workflow.asl.json is stale: run `npm run generate`');
      process.exit(1);
    }
  } else {
    mkdirSync(dirname(outPath), { recursive: true });
    writeFileSync(outPath, text);
  }
}
