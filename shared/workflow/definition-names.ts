/**
 * The state names of the job workflow (shared/workflow/definition.ts) that runners need, kept
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

export const POLL_WAIT_STATES = ['PrepareWait', 'BuildWait', 'SshWait', 'PackageWait'] as const;
