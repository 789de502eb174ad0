/** Seconds a stage may take from its first call; `ssh` bounds how long a user may keep the shell. */
export interface StageTimeouts {
  prepare: number;
  build: number;
  ssh: number;
  package: number;
  register: number;
}

export const DEFAULT_STAGE_TIMEOUTS: StageTimeouts = {
  prepare: 3600,
  build: 4 * 3600,
  ssh: 24 * 3600,
  package: 2 * 3600,
  register: 3600,
};
