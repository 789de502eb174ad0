/**
 * Deleting jobs: the execution is stopped and the worker's resources removed before the record.
 */
import { NotFoundError, OperationFailedError } from './errors.js';
import { removeInState, walkRecords } from './lifecycle.js';
import { parseS3Path } from './links.js';
import { matchesJobFilter, type JobFilter } from './job-filters.js';
import { releaseNodeJob } from './node-placement.js';
import { removeHistoryChunks } from './job-history.js';
import { getJobState, JOB_KIND as KIND, recordJobError, workerJobOf, type JobContext, type JobState } from './job-state.js';

const REVIEW = 'Review the errors, take any corrective action and then re-run the request with valid information.';

/**
 * Stops the job's execution, removes everything its worker created, then the record. When the
 * worker's cleanup fails the record is kept (so the delete can be retried) and the failures are
 * reported, as the original does.
 */
export async function deleteJob(ctx: JobContext, id: string): Promise<void> {
  const state = await getJobState(ctx, id);
  if (state.execution) await ctx.workflow.stop(state.execution, 'job deleted');
  if (state.job.remote_build_node) await releaseNodeJob(ctx, state.job.remote_build_node, id);
  try {
    await (await ctx.workerFor(state.worker)).cleanup(workerJobOf(state), 'deleted');
  } catch (error) {
    // Its workflow is stopped: the kept job must not look as if it were still running.
    const message = (error as Error).message;
    await recordJobError(ctx, id, `deleting the job failed, retry the DELETE: ${message}`).catch(() => undefined);
    throw new OperationFailedError(`Errors were encountered deleting the kubernetes resources for IMS job_id=${id}. ${REVIEW}`, [message]);
  }
  // The job's kept logs go with its record (the images it made stay).
  for (const log of state.logs ?? []) {
    const at = parseS3Path(log.path);
    if (at) await ctx.artifacts.remove(at);
  }
  // A write that lands between the read and the remove (a stage, a pod's PATCH) is retried, not lost.
  await removeInState(ctx.store, KIND, id, 'live');
  await removeHistoryChunks(ctx.store, id);
}

export async function deleteJobs(ctx: JobContext, filter: JobFilter): Promise<void> {
  const failures: string[] = [];
  for await (const { record } of walkRecords<Pick<JobState, 'job'>>(ctx.store, KIND, 'live')) {
    if (!matchesJobFilter(record.job, filter)) continue;
    try {
      await deleteJob(ctx, record.job.id);
    } catch (error) {
      if (error instanceof NotFoundError) continue;
      failures.push(`${record.job.id}: ${error instanceof OperationFailedError ? error.errors : (error as Error).message}`);
    }
  }
  if (failures.length > 0) {
    throw new OperationFailedError(`Errors were encountered deleting the kubernetes resources for one or more IMS jobs. ${REVIEW}`, failures);
  }
}
