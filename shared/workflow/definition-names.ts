/**
 * The state names of the job workflow (infra/workflow/definition.ts) that runners need, kept
 * apart so that the embedded runner does not load aws-cdk-lib at run time.
 */
export const TASK_STATES = {
  Prepare: 'prepare',
  Build: 'build',
  Ssh: 'ssh',
  Package: 'package',
  Register: 'register',
  CleanupSuccess: 'cleanup',
  CleanupAfterFailure: 'cleanup',
  CleanupAfterError: 'cleanup',
} as const;

/** The task states that wait for a callback (`.waitForTaskToken`). */
export const WAITING_STATES = ['Prepare', 'Build', 'Ssh', 'Package'] as const;
