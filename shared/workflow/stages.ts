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
import { recordLineage } from '../domain/image-contents.js';
import {
  findJobState,
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
      // Entered again (a retry) with a new token: a check of the old one can no longer finish the stage.
      return { ...s, stage: { ...s.stage, token } };
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

/**
 * The check lease is a claim item of its own (small, in no index), so a check that changes
 * nothing does not rewrite the job item; a second claim asks the holder for one more look. Both
 * are the waiting task's (keyed by its token): a check that resumes the execution may run the
 * next stage's entry while it still holds the lease of the stage it finished.
 */
const LEASE = 'job-check';
const RECHECK = 'job-recheck';
const leaseOf = (state: WaitingState): string => `${state.job.id}#${state.stage.token}`;
/** How long one check may hold a job's lease; past it (the checker died) another takes it over. */
const CHECK_LEASE_MS = 300_000;

type WaitingState = JobState & { stage: { name: WaitingStage; startedMicros: string; token: string } };

/** The job's state when it waits in a stage for its work; undefined otherwise (or when it is gone). */
async function waitingState(ctx: WorkflowContext, jobId: string): Promise<WaitingState | undefined> {
  const state = await findJobState(ctx, jobId);
  return state?.stage?.token && isWaitingStage(state.stage.name) ? (state as WaitingState) : undefined;
}

/**
 * Checks the stage the job waits in, and resumes or heartbeats its execution. A worker whose look
 * at the stage only reads (Worker.readsOnly) is asked without more: a check that changes nothing
 * then writes nothing. Otherwise one check at a time per job does the work (the lease), so a
 * worker is never asked to start the same thing twice at once; a check that finds the lease held
 * asks the holder to check once more when it is done, so no report is lost. The checker that
 * clears the parked token resumes, so a stage is finished once. `inspect` is the reconciler's
 * closer look (Worker.inspect); an error of the worker fails the task, so the state machine's
 * Retry and Catch see it as they see a failed invocation.
 */
export async function checkWaitingStage(ctx: WorkflowContext, jobId: string, look: 'advance' | 'inspect'): Promise<CheckResult> {
  const seen = await waitingState(ctx, jobId);
  if (!seen) return 'not-waiting';
  const worker = await ctx.workerFor(seen.worker);
  if (worker.readsOnly?.(seen.stage.name, look)) return checkAndKeep(ctx, seen, look);
  const lease = leaseOf(seen);
  for (let round = 0; round < 3; round++) {
    const owner = ctx.ids.newId();
    if ((await takeLease(ctx, lease, owner)) === 'busy') {
      // The holder is at work (its lease is fresh): the execution is not forgotten. The heartbeat
      // timeout is for a reconciler that stopped, not for a look that takes its time.
      return (await ctx.workflow.heartbeat(seen.stage.token)) ? 'waiting' : 'spent';
    }
    let result: CheckResult;
    try {
      // A request for one more look made before this one is answered by it.
      if (await ctx.store.claimHolder(RECHECK, lease)) await ctx.store.release(RECHECK, lease, RECHECK);
      const state = await waitingState(ctx, jobId);
      if (!state || leaseOf(state) !== lease) return 'not-waiting';
      result = await checkAndKeep(ctx, state, look);
    } finally {
      await ctx.store.release(LEASE, lease, owner).catch((error: unknown) => {
        logger.warn('the check lease was not given back; it lapses by itself', { jobId, error: (error as Error).message });
      });
    }
    const asked = await ctx.store.claimHolder(RECHECK, lease);
    // Any other result took the token: a request for one more look has nothing left to look at.
    if (result !== 'waiting') {
      if (asked) await ctx.store.release(RECHECK, lease, RECHECK);
      return result;
    }
    if (!asked) return 'waiting';
  }
  return 'waiting';
}

/** Takes the job's check lease, or says another check holds it (having asked it for one more look). */
async function takeLease(ctx: WorkflowContext, lease: string, owner: string): Promise<'held' | 'busy'> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const holder = await ctx.store.claim(LEASE, lease, owner);
    if (!holder) return 'held';
    if (holder.ageMs < CHECK_LEASE_MS) {
      await ctx.store.claim(RECHECK, lease, RECHECK);
      // The holder may have let go before it could see the request: then this check is the one more look.
      return (await ctx.store.claim(LEASE, lease, owner)) ? 'busy' : 'held';
    }
    // Its checker died: the lease is taken over.
    await ctx.store.release(LEASE, lease, holder.owner);
  }
  return 'busy';
}

/** One look, and a running stage's change of the job state written with the token still parked. */
async function checkAndKeep(ctx: WorkflowContext, state: WaitingState, look: 'advance' | 'inspect'): Promise<CheckResult> {
  const checked = await checkOnce(ctx, state, look);
  if (checked.result === 'waiting' && checked.change) await keepWaiting(ctx, state.job.id, state.stage.token, checked.change);
  return checked.result;
}

/**
 * One look at the stage: the verdict's change of the job state is written with the token (done,
 * failed) or, while the work goes on, by the caller (keepWaiting), so a check writes the job at
 * most once, and not at all when nothing changed.
 */
async function checkOnce(ctx: WorkflowContext, state: WaitingState, look: 'advance' | 'inspect'): Promise<{ result: CheckResult; change?: StateChange }> {
  const jobId = state.job.id;
  const stage = state.stage;
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

/** Writes a running stage's change while its token is still the one parked; nothing when it changes nothing. */
async function keepWaiting(ctx: WorkflowContext, jobId: string, token: string, change: StateChange): Promise<void> {
  await updateIfPresent(ctx, jobId, (s) => (s.stage?.token === token ? change(s) : undefined));
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
    const { token: _spent, ...stage } = changed.stage!;
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
  await recordLineage(ctx, {
    image_id: imageId,
    parent_kind: state.job.job_type === 'customize' ? 'image' : 'recipe',
    parent_id: state.job.artifact_id,
    job_id: input.jobId,
  });
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
