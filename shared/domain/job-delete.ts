/**
 * Deleting jobs, in two steps. Marking moves the record to the `deleted` state in one
 * conditional write: from then on the job is gone for the API and for its workflow (whose
 * stages see a job that is not live as gone). Finishing stops the execution, removes what the
 * worker made and the logs the job kept, then the record.
 *
 * DELETE /jobs/{id} marks and finishes at once. A bulk DELETE /jobs marks every matching job,
 * finishes what fits in `deleteInlineMs` and answers; the reconciler finishes the rest
 * (finishJobDeletions), so the request answers within API Gateway's limit however many jobs
 * match and however slow their cleanup is. A finish that fails (the worker's cleanup, the logs)
 * brings the job back, in error and with the reason, as the original keeps a job whose deletion
 * failed, so that the DELETE can be retried.
 */
import { eachConcurrently } from './concurrency.js';
import { NotFoundError, OperationFailedError } from './errors.js';
import { getInState, mutate, removeInState, walkRecords } from './lifecycle.js';
import { parseS3Path } from './links.js';
import { matchesJobFilter, type JobFilter } from './job-filters.js';
import { releaseNodeJob } from './node-placement.js';
import { removeHistoryChunks } from './job-history.js';
import { JOB_KIND as KIND, recordJobError, workerJobOf, type JobContext, type JobState } from './job-state.js';

const REVIEW = 'Review the errors, take any corrective action and then re-run the request with valid information.';

/** Claim scope of a finish in progress, so that a request and the reconciler never finish one job twice at once. */
const FINISH_SCOPE = 'job-deletion';
/** A finish runs for seconds; a claim older than this was left by a process that died, and is taken over. */
const FINISH_LEASE_MS = 5 * 60 * 1000;
const MARK_CONCURRENCY = 16;
const FINISH_CONCURRENCY = 8;

/** Marks a live job deleted (a 404 from now on); NotFoundError when it is not live. */
async function markJobDeleted(ctx: JobContext, id: string): Promise<void> {
  await mutate<JobState>(ctx.store, KIND, id, 'live', async ({ record }) => ({ record, state: 'deleted' }));
}

/** Brings a marked job back, failed with the reason, so that its deletion can be retried. */
async function restoreJob(ctx: JobContext, id: string, reason: string): Promise<void> {
  await mutate<JobState>(ctx.store, KIND, id, 'deleted', async ({ record }) => ({ record, state: 'live' }));
  await recordJobError(ctx, id, reason);
}

/**
 * Finishes the deletion of a marked job; false when there was nothing to do (finished already,
 * or being finished by another). Safe to repeat, and to run beside another finisher. Throws when
 * it failed and brought the job back.
 */
export async function finishJobDeletion(ctx: JobContext, id: string): Promise<boolean> {
  const token = ctx.ids.newId();
  const holder = await ctx.store.claim(FINISH_SCOPE, id, token);
  if (holder) {
    if (holder.ageMs < FINISH_LEASE_MS) return false;
    await ctx.store.release(FINISH_SCOPE, id, holder.owner);
    return finishJobDeletion(ctx, id);
  }
  try {
    const state = await getInState<JobState>(ctx.store, KIND, id, 'deleted')
      .then((stored) => stored.record)
      .catch((error: unknown) => {
        if (error instanceof NotFoundError) return undefined; // finished meanwhile, or never marked
        throw error;
      });
    if (!state) return false;
    if (state.execution) await ctx.workflow.stop(state.execution, 'job deleted');
    if (state.job.remote_build_node) await releaseNodeJob(ctx, state.job.remote_build_node, id);
    try {
      await (await ctx.workerFor(state.worker)).cleanup(workerJobOf(state), 'deleted');
    } catch (error) {
      // Its workflow is stopped: the kept job must not look as if it were still running.
      const message = (error as Error).message;
      await restoreJob(ctx, id, `deleting the job failed, retry the DELETE: ${message}`).catch(() => undefined);
      throw new OperationFailedError(`Errors were encountered deleting the kubernetes resources for IMS job_id=${id}. ${REVIEW}`, [message]);
    }
    // The job's kept logs go with its record (the images it made stay). A removal the store
    // refuses (access denied) keeps the record, so the logs are never left behind unnoticed.
    try {
      for (const log of state.logs ?? []) {
        const at = parseS3Path(log.path);
        if (at) await ctx.artifacts.remove(at);
      }
    } catch (error) {
      await restoreJob(ctx, id, `deleting the job's logs failed, retry the DELETE: ${(error as Error).message}`).catch(() => undefined);
      throw error;
    }
    await removeInState(ctx.store, KIND, id, 'deleted');
    await removeHistoryChunks(ctx.store, id);
    return true;
  } finally {
    await ctx.store.release(FINISH_SCOPE, id, token);
  }
}

export async function deleteJob(ctx: JobContext, id: string): Promise<void> {
  await markJobDeleted(ctx, id);
  await finishJobDeletion(ctx, id);
}

/**
 * Marks every job that matches, then finishes deletions until `deleteInlineMs` has passed since
 * the request began; those not begun by then are left, marked, to the reconciler. The failures
 * of the finishes run here are reported together, as the original reports them.
 */
export async function deleteJobs(ctx: JobContext, filter: JobFilter): Promise<void> {
  const began = Date.now();
  const marked: string[] = [];
  await eachConcurrently(walkRecords<JobState>(ctx.store, KIND, 'live'), MARK_CONCURRENCY, async ({ record }) => {
    if (!matchesJobFilter(record.job, filter)) return;
    try {
      await markJobDeleted(ctx, record.job.id);
      marked.push(record.job.id);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error; // deleted meanwhile
    }
  });
  const failures: string[] = [];
  await eachConcurrently(marked, FINISH_CONCURRENCY, async (id) => {
    if (Date.now() - began >= ctx.jobs.deleteInlineMs) return;
    try {
      await finishJobDeletion(ctx, id);
    } catch (error) {
      failures.push(`${id}: ${error instanceof OperationFailedError ? error.errors : (error as Error).message}`);
    }
  });
  if (failures.length > 0) {
    throw new OperationFailedError(`Errors were encountered deleting the kubernetes resources for one or more IMS jobs. ${REVIEW}`, failures);
  }
}

/** The reconciler's part: finishes every marked job. Returns how many were finished and how many failed (and came back). */
export async function finishJobDeletions(ctx: JobContext): Promise<{ finished: number; failed: number }> {
  const counts = { finished: 0, failed: 0 };
  await eachConcurrently(walkRecords<JobState>(ctx.store, KIND, 'deleted'), FINISH_CONCURRENCY, async ({ record }) => {
    try {
      if (await finishJobDeletion(ctx, record.job.id)) counts.finished++;
    } catch {
      counts.failed++;
    }
  });
  return counts;
}
