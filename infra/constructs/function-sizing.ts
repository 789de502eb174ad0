/**
 * Memory and timeout of each kind of function, kept apart from the CDK construct so that the
 * local Lambda sandbox (infra/local/lambda-sandbox.ts) runs handlers with the deployed limits
 * without loading aws-cdk-lib.
 */

/** `api` answers API Gateway (which gives up after 30 s); `workflow` runs one state-machine stage. */
export type ImsFunctionKind = 'api' | 'workflow';

export const FUNCTION_SIZING: Record<ImsFunctionKind, { memoryMiB: number; timeoutSeconds: number }> = {
  api: { memoryMiB: 1024, timeoutSeconds: 29 },
  // Below the state machine's 300 s task timeout, so a slow stage fails as a Lambda timeout,
  // which the task's retry and catch handle, instead of an abandoned invocation still running.
  workflow: { memoryMiB: 1024, timeoutSeconds: 280 },
};

/** The kind a handler module is deployed as (infra/stacks/ims-stack.ts): the workflow's stages, or API-sized. */
export function functionKindOf(entry: string): ImsFunctionKind {
  return entry.replace(/^\.?\//, '').startsWith('functions/workflow/') ? 'workflow' : 'api';
}
