/**
 * Seconds a waiting stage may take from its first call; `ssh` bounds how long a user may keep the
 * shell. Register and cleanup wait on nothing: each is one invocation, bounded by its function's
 * timeout and the state machine task's (infra/workflow/definition.ts).
 */
export interface StageTimeouts {
  prepare: number;
  build: number;
  ssh: number;
  package: number;
}

export const DEFAULT_STAGE_TIMEOUTS: StageTimeouts = {
  prepare: 3600,
  build: 4 * 3600,
  ssh: 24 * 3600,
  package: 2 * 3600,
};
