/**
 * The work of each state-machine stage. prepare, build, ssh and package wait on outside work:
 * the state machine invokes the stage with a task token and waits (`.waitForTaskToken`), and the
 * stage's entry parks the token in the job state. Whoever learns of progress checks the stage
 * (checkWaitingStage): the entry itself, a job pod's PATCH, a worker's report that a step of its
 * work ended (the local worker's processes), the reconciler once a minute. A check
 * resumes the execution with `done`, `failed` (with a reason) or `gone` (the job was deleted), or
 * sends a heartbeat while the work goes on, so a job costs the same few history events whether it
 * runs a minute or a day. Every stage has a time limit measured from its entry.
 */
import { NotFoundError } from '../domain/errors.js';
import { createImageWithId } from '../domain/images.js';
import {
  recordJobError,
  updateJobState,
  withHistory,
  withStatus,
  workerJobOf,
  type JobContext,
  type JobState,
} from '../domain/job-state.js';
import { logger } from '../logger.js';
import { registerArtifacts } from './register-artifacts.js';
import { markNodeJobStarted, releaseNodeJob } from '../domain/node-placement.js';
import { uploadJobLogs } from './job-logs.js';
import { allOf, finishedStage, isWaitingStage, ruleBeforeAsking, ruleOnProgress, type StateChange, type Verdict, type WaitingStage } from './stage-rules.js';
import type { Stage } from '../domain/worker-port.js';
import type { StageTimeouts } from './stage-timeouts.js';

export interface StageInput {
  jobId: string;
}

/** What the state machine passes a waiting stage: the job, the stage, and the token to resume it with. */
export interface WaitingStageInput extends StageInput {
  stage: WaitingStage;
  taskToken: string;
}

export type StageOutcome = 'done' | 'failed' | 'gone';

export type StageOutput = {
  jobId: string;
  outcome: StageOutcome;
  reason?: string;
};

export interface WorkflowContext extends JobContext {
  stageTimeouts: StageTimeouts;
}

/** updateJobState for a job that may have been deleted meanwhile: undefined when it is gone. */
function updateIfPresent(ctx: WorkflowContext, jobId: string, change: StateChange): Promise<JobState | undefined> {
  return updateJobState(ctx, jobId, change).catch((error: unknown) => {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  });
}

/** Records the stage's start once (and the token it now waits on); undefined when the job is gone. */
async function enterStage(ctx: WorkflowContext, jobId: string, stage: Stage, token?: string): Promise<JobState | undefined> {
  let seen: JobState | undefined;
  const state = await updateIfPresent(ctx, jobId, (s) => {
    seen = s;
    if (s.stage?.name === stage) {
      if (s.stage.token === token) return undefined;
      // Entered again (a retry) with a new token: a check of the old one no longer holds the stage.
      const { checking: _held, recheck: _asked, ...same } = s.stage;
      return { ...s, stage: { ...same, token } };
    }
    const entered = { ...s, stage: { name: stage, startedMicros: ctx.clock.nowMicros().toString(), ...(token ? { token } : {}) } };
    return withHistory(ctx, entered, { event: 'stage-started', stage });
  });
  // Unchanged (entered again with the same token): the state as read.
  return state ?? seen;
}

async function finishStage(ctx: WorkflowContext, jobId: string, stage: Stage, detail?: string): Promise<void> {
  await updateJobState(ctx, jobId, finishedStage(stage, ctx.clock.nowMicros(), detail));
}

/**
 * The entry of prepare, build, ssh and package: parks the token, then checks the stage once (a
 * stage with nothing to wait for, such as ssh of a create job, resumes at once).
 */
export async function enterWaitingStage(ctx: WorkflowContext, input: WaitingStageInput): Promise<void> {
  const state = await enterStage(ctx, input.jobId, input.stage, input.taskToken);
  if (!state) {
    await ctx.workflow.resume(input.taskToken, { jobId: input.jobId, outcome: 'gone' } satisfies StageOutput);
    return;
  }
  await checkWaitingStage(ctx, input.jobId, 'advance');
}

/** Where the waiting stage stands, and the change of the job state that goes with it; asks the job's worker unless the job's own state decides. */
async function judgeStage(ctx: WorkflowContext, state: JobState, stage: WaitingStage, look: 'advance' | 'inspect'): Promise<{ verdict: Verdict; change?: StateChange }> {
  const early = ruleBeforeAsking(state, stage, ctx.clock.nowMicros(), ctx.stageTimeouts[stage]);
  if (early) return { verdict: early };
  const worker = await ctx.workerFor(state.worker);
  const job = workerJobOf(state);
  const progress = look === 'inspect' && worker.inspect ? await worker.inspect(stage, job) : await worker.advance(stage, job);
  return ruleOnProgress(state, progress, ctx.clock.nowMicros());
}

/** What a check did: resumed the execution, kept it waiting (heartbeat), or found nothing waiting. */
export type CheckResult = 'resumed' | 'waiting' | 'not-waiting' | 'spent';

/** How long one check may hold a job's stage; past it (the checker died) another may check. */
const CHECK_LEASE_MICROS = 300_000_000n;

/**
 * Checks the stage the job waits in, and resumes or heartbeats its execution. One check at a
 * time per job does the work (a lease in the job state), so a worker is never asked to start the
 * same thing twice at once; a check that finds the lease held asks the holder to check once more
 * when it is done, so no report is lost. The checker that clears the parked token resumes, so a
 * stage is finished once. `inspect` is the reconciler's closer look (Worker.inspect); an error of
 * the worker fails the task, so the state machine's Retry and Catch see it as they see a failed
 * invocation.
 */
export async function checkWaitingStage(ctx: WorkflowContext, jobId: string, look: 'advance' | 'inspect'): Promise<CheckResult> {
  for (let round = 0; round < 3; round++) {
    const lease = await takeLease(ctx, jobId);
    if (lease === 'not-waiting') return 'not-waiting';
    if (lease === 'busy') return 'waiting';
    let checked: { result: CheckResult; change?: StateChange };
    try {
      checked = await checkOnce(ctx, lease, look);
    } catch (error) {
      await dropLease(ctx, jobId, lease.stage!.token!).catch(() => undefined);
      throw error;
    }
    // Any other result took the token, and the lease with it.
    if (checked.result !== 'waiting') return checked.result;
    if (!(await dropLease(ctx, jobId, lease.stage!.token!, checked.change))) return 'waiting';
  }
  return 'waiting';
}

/**
 * One look at the stage: the verdict's change of the job state is written with the token (done,
 * failed) or, while the work goes on, with the lease given back (the caller's dropLease), so a
 * check writes the job once after taking its lease.
 */
async function checkOnce(ctx: WorkflowContext, state: JobState, look: 'advance' | 'inspect'): Promise<{ result: CheckResult; change?: StateChange }> {
  const jobId = state.job.id;
  const stage = state.stage as { name: WaitingStage; token: string };
  const token = stage.token;
  let judged: { verdict: Verdict; change?: StateChange };
  try {
    judged = await judgeStage(ctx, state, stage.name, look);
  } catch (error) {
    if (!(await takeToken(ctx, jobId, token))) return { result: 'not-waiting' };
    const failed = error as Error;
    return { result: (await ctx.workflow.fail(token, failed.name || 'Error', failed.message)) ? 'resumed' : 'spent' };
  }
  const { verdict, change } = judged;
  if (verdict.outcome === 'running') {
    if (await ctx.workflow.heartbeat(token)) return { result: 'waiting', change };
    await takeToken(ctx, jobId, token, change);
    return { result: 'spent' };
  }
  const finished = verdict.outcome === 'done' ? finishedStage(stage.name, ctx.clock.nowMicros(), verdict.detail) : undefined;
  if (!(await takeToken(ctx, jobId, token, allOf(change, finished)))) return { result: 'not-waiting' };
  // The job's first stage on its node is behind it: the node's own count includes it from now on.
  if (verdict.outcome === 'done' && stage.name === 'prepare' && state.job.remote_build_node) await markNodeJobStarted(ctx, state.job.remote_build_node, jobId);
  const output: StageOutput = verdict.outcome === 'done' ? { jobId, outcome: 'done' } : { jobId, outcome: 'failed', reason: verdict.reason };
  return { result: (await ctx.workflow.resume(token, output)) ? 'resumed' : 'spent' };
}

/** Takes the job's check lease: the state as it now is, or why not (nothing waits; another check holds it). */
async function takeLease(ctx: WorkflowContext, jobId: string): Promise<JobState | 'busy' | 'not-waiting'> {
  const now = ctx.clock.nowMicros();
  let outcome: 'held' | 'busy' | 'not-waiting' = 'not-waiting';
  const state = await updateIfPresent(ctx, jobId, (s) => {
    outcome = 'not-waiting';
    const stage = s.stage;
    if (!stage?.token || !isWaitingStage(stage.name)) return undefined;
    if (stage.checking && BigInt(stage.checking) > now) {
      outcome = 'busy';
      return stage.recheck ? undefined : { ...s, stage: { ...stage, recheck: true } };
    }
    outcome = 'held';
    const { recheck: _asked, ...rest } = stage;
    return { ...s, stage: { ...rest, checking: (now + CHECK_LEASE_MICROS).toString() } };
  });
  // Set inside the change above, which TypeScript does not follow.
  const taken = outcome as 'held' | 'busy' | 'not-waiting';
  if (taken !== 'held') return taken;
  return state ?? 'not-waiting';
}

/** Gives the lease back, with the check's change; true when another check asked for one more look meanwhile. */
async function dropLease(ctx: WorkflowContext, jobId: string, token: string, change?: StateChange): Promise<boolean> {
  let again = false;
  await updateIfPresent(ctx, jobId, (s) => {
    again = false;
    if (s.stage?.token !== token) return undefined;
    const changed = change?.(s) ?? s;
    const { checking: _held, recheck, ...stage } = changed.stage!;
    again = recheck === true;
    return { ...changed, stage };
  });
  return again;
}

/**
 * After a job pod's PATCH, or a worker's own report that a step ended (WorkerDeps.wake): checks
 * the stage the job waits in, so the report resumes it at once. What was reported is already
 * stored; a failed check is left to the reconciler's next pass.
 */
export async function resumeReportedStage(ctx: WorkflowContext, jobId: string): Promise<void> {
  try {
    await checkWaitingStage(ctx, jobId, 'advance');
  } catch (error) {
    logger.warn('the reported progress did not resume the job workflow; the reconciler will', { jobId, error: (error as Error).message });
  }
}

/** Clears the parked token if it is still `token`, with the check's change; true for the one caller that did. */
async function takeToken(ctx: WorkflowContext, jobId: string, token: string, change?: StateChange): Promise<boolean> {
  let took = false;
  await updateIfPresent(ctx, jobId, (s) => {
    took = false;
    if (s.stage?.token !== token) return undefined;
    took = true;
    const changed = change?.(s) ?? s;
    const { token: _spent, checking: _held, recheck: _asked, ...stage } = changed.stage!;
    return { ...changed, stage };
  });
  return took;
}

/**
 * register: turns what the worker produced into an image record (or checks the one the worker
 * registered) and ends the job in `success`. The resultant image id is fixed per job, so a
 * retried register finds its own image instead of making a second one.
 */
export async function runRegisterStage(ctx: WorkflowContext, input: StageInput): Promise<StageOutput> {
  const state = await enterStage(ctx, input.jobId, 'register');
  if (!state) return { jobId: input.jobId, outcome: 'gone' };
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
  const state = await enterStage(ctx, input.jobId, 'cleanup');
  if (!state) return { jobId: input.jobId, outcome: 'gone' };
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
