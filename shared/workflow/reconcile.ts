/**
 * The reconciler: a scheduled pass (EventBridge Scheduler once a minute deployed, a timer under
 * `npm start`) over every job not yet ended. It is how a job whose progress nobody reports still
 * moves on, and how no job stays stuck:
 * - a job waiting in a stage gets a closer look (Worker.inspect): its execution is resumed when
 *   the work is done or failed, sent a heartbeat while the work goes on, and failed when the
 *   stage ran past its limit or its worker lost contact for too long;
 * - a job whose execution ended without ending the job (stopped by hand, or failed where no Catch
 *   sees it) is failed here, with the reason in its history, and its worker cleans up;
 * - a job marked deleted by a bulk DELETE /jobs that did not finish it is finished here.
 * Passes do not overlap: a pass first takes the reconciler's lease (a claim in the records
 * table), and a pass that finds it held by another returns at once; two overlapping passes would
 * heartbeat and fail the same jobs twice. A lease whose pass died without releasing it expires
 * after RECONCILE_LEASE_MS, longer than the deployed function may run (280 s), so a live pass is
 * never overtaken. No reserved concurrency is needed for this (it would fail the deploy in
 * accounts with a low concurrency quota).
 */
import type { RecordStore } from '../domain/ports.js';
import { logger } from '../logger.js';
import { unfinishedJobs, type JobState } from '../domain/job-state.js';
import { finishJobDeletions } from '../domain/job-delete.js';
import { eachConcurrently } from '../domain/concurrency.js';
import { checkWaitingStage, runCleanupStage, type WorkflowContext } from './stages.js';

export interface ReconcileReport {
  /** Jobs looked at. */
  jobs: number;
  /** Executions resumed (the stage's work was done or failed). */
  resumed: number;
  /** Heartbeats sent for work still going on. */
  heartbeats: number;
  /** Jobs failed here because their execution had ended. */
  failed: number;
  /** Jobs whose check threw (logged; the next pass tries again). */
  errors: number;
  /** Deletions finished for jobs a bulk DELETE marked; and those that failed (the job is back, in error). */
  deleted: number;
  deletionsFailed: number;
  /** True when another pass held the lease, so this one looked at nothing. */
  skipped?: true;
}

const CONCURRENCY = 8;

/** The lease's claim: one value in a scope of its own. */
const LEASE = { scope: 'reconciler', value: 'pass' } as const;

/** How long a lease lasts when its pass never releases it: above the deployed function's 280 s timeout. */
export const RECONCILE_LEASE_MS = 300_000;

export async function reconcileJobs(ctx: WorkflowContext): Promise<ReconcileReport> {
  const owner = ctx.ids.newId();
  if (!(await takeLease(ctx.store, owner))) {
    logger.info('reconciler pass skipped: another pass is running');
    return { jobs: 0, resumed: 0, heartbeats: 0, failed: 0, errors: 0, deleted: 0, deletionsFailed: 0, skipped: true };
  }
  try {
    return await reconcilePass(ctx);
  } finally {
    await ctx.store.release(LEASE.scope, LEASE.value, owner);
  }
}

/** True when the lease is now `owner`'s: it was free, or its holder's time is up. */
async function takeLease(store: RecordStore, owner: string): Promise<boolean> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const holder = await store.claim(LEASE.scope, LEASE.value, owner);
    if (!holder) return true;
    if (holder.ageMs < RECONCILE_LEASE_MS) return false;
    logger.warn('reconciler lease expired: its pass ended without releasing it', { ageMs: holder.ageMs });
    // Released only if that holder still has it: of two passes that find it expired, one gets it.
    await store.release(LEASE.scope, LEASE.value, holder.owner);
  }
  return false;
}

/**
 * Drops the lease whoever holds it. Only for a process that runs every pass itself (`npm start`):
 * a lease found at its start was left by its own predecessor, stopped in the middle of a pass.
 */
export async function clearReconcileLease(store: RecordStore): Promise<void> {
  const holder = await store.claimHolder(LEASE.scope, LEASE.value);
  if (holder) await store.release(LEASE.scope, LEASE.value, holder.owner);
}

async function reconcilePass(ctx: WorkflowContext): Promise<ReconcileReport> {
  const report: ReconcileReport = { jobs: 0, resumed: 0, heartbeats: 0, failed: 0, errors: 0, deleted: 0, deletionsFailed: 0 };
  await eachConcurrently(unfinishedJobs(ctx), CONCURRENCY, async (state) => {
    report.jobs++;
    await reconcileJob(ctx, state, report).catch((error: unknown) => {
      report.errors++;
      logger.warn('job not reconciled', { jobId: state.job.id, error: (error as Error).message });
    });
  });
  const deletions = await finishJobDeletions(ctx);
  report.deleted = deletions.finished;
  report.deletionsFailed = deletions.failed;
  if (report.resumed + report.failed + report.errors + report.deleted + report.deletionsFailed > 0) logger.info('jobs reconciled', { ...report });
  return report;
}

async function reconcileJob(ctx: WorkflowContext, state: JobState, report: ReconcileReport): Promise<void> {
  const jobId = state.job.id;
  const result = await checkWaitingStage(ctx, jobId, 'inspect');
  if (result === 'resumed') report.resumed++;
  if (result === 'waiting') report.heartbeats++;
  if (result === 'waiting' || result === 'resumed' || !state.execution) return;
  // Nothing waits in a stage: either a short stage is running, or the execution is gone.
  const status = await ctx.workflow.status(state.execution);
  if (status === 'RUNNING' || status === 'UNKNOWN') return;
  const reason = `the job's workflow ended (${status}) before the job did`;
  logger.warn('job failed by the reconciler', { jobId, reason, metric: 'ReconcilerFailedJobs' });
  report.failed++;
  await runCleanupStage(ctx, { jobId, outcome: 'error', reason });
}
