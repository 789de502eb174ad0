/**
 * The work of each state-machine stage. The state machine calls a stage's handler in a bounded
 * poll loop: a stage answers `running` (call me again after a wait), `done` (move on), `failed`
 * (go to the error path with a reason) or `gone` (the job was deleted: stop quietly). Every stage
 * has a time limit measured from its first call, so no job waits forever.
 */
import { ProblemError } from '../domain/errors.js';
import { createImageWithId } from '../domain/images.js';
import {
  findJobState,
  recordJobError,
  updateJobState,
  withHistory,
  withStatus,
  workerJobOf,
  type JobContext,
  type JobState,
} from '../domain/jobs.js';
import { registerArtifacts } from './register-artifacts.js';
import { judgeContact } from './heartbeat.js';
import { markNodeJobStarted, releaseNodeJob } from '../domain/node-placement.js';
import { withSshEndpoint } from './ssh-endpoint.js';
import { uploadJobLogs } from './job-logs.js';
import type { Stage } from '../workers/worker.js';
import type { StageTimeouts } from './stage-timeouts.js';

export interface StageInput {
  jobId: string;
}

export type StageOutcome = 'running' | 'done' | 'failed' | 'gone';

export interface StageOutput {
  jobId: string;
  outcome: StageOutcome;
  reason?: string;
}

export type PolledStage = 'prepare' | 'build' | 'ssh' | 'package';

export interface WorkflowContext extends JobContext {
  stageTimeouts: StageTimeouts;
}

/** Records the stage's start once and returns the job state and the seconds spent in the stage. */
async function enterStage(ctx: WorkflowContext, jobId: string, stage: Stage): Promise<{ state: JobState; elapsed: number } | undefined> {
  const state = await updateJobState(ctx, jobId, (s) => {
    if (s.stage?.name === stage) return undefined;
    return withHistory(ctx, { ...s, stage: { name: stage, startedMicros: ctx.clock.nowMicros().toString() } }, { event: 'stage-started', stage });
  }).catch((error: unknown) => {
    if (error instanceof ProblemError && error.status === 404) return undefined;
    throw error;
  });
  const current = state ?? (await findJobState(ctx, jobId));
  if (!current) return undefined;
  const started = BigInt(current.stage?.startedMicros ?? ctx.clock.nowMicros().toString());
  return { state: current, elapsed: Number(ctx.clock.nowMicros() - started) / 1e6 };
}

async function finishStage(ctx: WorkflowContext, jobId: string, stage: Stage, detail?: string): Promise<void> {
  await updateJobState(ctx, jobId, (s) => withHistory(ctx, s, { event: 'stage-finished', stage, ...(detail ? { detail } : {}) }));
}

/** prepare, build, ssh and package: ask the job's worker to advance the stage. */
export async function runPolledStage(ctx: WorkflowContext, stage: PolledStage, input: StageInput): Promise<StageOutput> {
  const entered = await enterStage(ctx, input.jobId, stage);
  if (!entered) return { jobId: input.jobId, outcome: 'gone' };
  const { state, elapsed } = entered;
  if (state.job.status === 'error') {
    return { jobId: input.jobId, outcome: 'failed', reason: state.reason ?? 'the job was set to error' };
  }
  const limit = ctx.stageTimeouts[stage];
  if (elapsed > limit) {
    return { jobId: input.jobId, outcome: 'failed', reason: `stage ${stage} timed out after ${limit} s` };
  }
  const progress = await (await ctx.workerFor(state.worker)).advance(stage, workerJobOf(state));
  if (progress.state === 'failed') return { jobId: input.jobId, outcome: 'failed', reason: progress.reason };
  const lost = await judgeContact(ctx, input.jobId, state, progress);
  if (lost) return { jobId: input.jobId, outcome: 'failed', reason: lost };
  if ((progress.status && progress.status !== state.job.status) || withSshEndpoint(state, progress.ssh) !== state) {
    await updateJobState(ctx, input.jobId, (s) => {
      const next = withSshEndpoint(s, progress.ssh);
      return progress.status ? withStatus(ctx, next, progress.status, progress.detail) : next;
    });
  }
  if (progress.state === 'done') {
    // The job's first stage on its node is behind it: the node's own count includes it from now on.
    if (stage === 'prepare' && state.job.remote_build_node) await markNodeJobStarted(ctx, state.job.remote_build_node, input.jobId);
    await finishStage(ctx, input.jobId, stage, progress.detail);
    return { jobId: input.jobId, outcome: 'done' };
  }
  return { jobId: input.jobId, outcome: 'running' };
}

/**
 * register: turns what the worker produced into an image record (or checks the one the worker
 * registered) and ends the job in `success`. The resultant image id is fixed per job, so a
 * retried register finds its own image instead of making a second one.
 */
export async function runRegisterStage(ctx: WorkflowContext, input: StageInput): Promise<StageOutput> {
  const entered = await enterStage(ctx, input.jobId, 'register');
  if (!entered) return { jobId: input.jobId, outcome: 'gone' };
  const { state } = entered;
  const job = workerJobOf(state);
  const collected = await (await ctx.workerFor(state.worker)).collect(job);
  let imageId: string;
  if (collected.kind === 'registered') {
    const image = await ctx.store.get('image', collected.imageId);
    if (!image || image.state !== 'live') {
      return { jobId: input.jobId, outcome: 'failed', reason: `the worker reported image ${collected.imageId}, which does not exist` };
    }
    imageId = collected.imageId;
  } else {
    const source = state.job.job_type === 'customize' ? await ctx.store.get<{ metadata: Record<string, string> }>('image', state.job.artifact_id) : undefined;
    const link = await registerArtifacts(ctx, job, collected);
    await createImageWithId(ctx, job.resultImageId, {
      name: state.job.image_root_archive_name,
      link,
      arch: state.job.arch,
      metadata: { ...(source?.record.metadata ?? {}) },
    });
    imageId = job.resultImageId;
  }
  await updateJobState(ctx, input.jobId, (s) => {
    const next = withStatus(ctx, { ...s, job: { ...s.job, resultant_image_id: imageId } }, 'success');
    return withHistory(ctx, next, { event: 'stage-finished', stage: 'register', detail: `image ${imageId}` });
  });
  return { jobId: input.jobId, outcome: 'done' };
}

export interface CleanupInput {
  jobId: string;
  outcome: 'success' | 'error';
  /** The error path passes what went wrong: a stage's reason, or the state machine's caught error. */
  reason?: string;
  error?: { Error?: string; Cause?: string };
}

function reasonOf(input: CleanupInput): string {
  if (input.reason) return input.reason;
  if (input.error) {
    let cause = input.error.Cause ?? '';
    try {
      const parsed = JSON.parse(cause) as { errorMessage?: string };
      cause = parsed.errorMessage ?? cause;
    } catch {
      // Cause is plain text
    }
    return `${input.error.Error ?? 'error'}: ${cause}`.trim();
  }
  return 'the job failed';
}

/** cleanup: on the error path records the reason and `error` first; then the worker removes what it created. */
export async function runCleanupStage(ctx: WorkflowContext, input: CleanupInput): Promise<StageOutput> {
  if (input.outcome === 'error') await recordJobError(ctx, input.jobId, reasonOf(input)).catch(() => undefined);
  const state = await findJobState(ctx, input.jobId);
  if (!state) return { jobId: input.jobId, outcome: 'gone' };
  await enterStage(ctx, input.jobId, 'cleanup');
  const worker = await ctx.workerFor(state.worker);
  // Logs first: the worker's cleanup removes them.
  await uploadJobLogs(ctx, state, worker);
  try {
    await worker.cleanup(workerJobOf(state), input.outcome);
  } finally {
    // The job has ended either way: it no longer counts on its node.
    if (state.job.remote_build_node) await releaseNodeJob(ctx, state.job.remote_build_node, input.jobId);
  }
  await finishStage(ctx, input.jobId, 'cleanup', `outcome ${input.outcome}`);
  return { jobId: input.jobId, outcome: 'done' };
}
