import { reconcileJobs } from '#shared/workflow/reconcile.js';
import { contextFrom, type AppContext } from '#shared/wiring.js';
import { WORKERS } from '#shared/worker-table.js';
import { countMetric, lambdaHandler } from '#shared/observability.js';

/** Scheduled once a minute: checks every job not yet ended, resumes, heartbeats or fails its execution. */
export const handlerWith =
  (context: () => AppContext) =>
  async () =>
    reconcileJobs(context());

/** Its context is built, once per container, from the function's environment. */
const reconcile = handlerWith(contextFrom(process.env, { workers: WORKERS }));

/** The Lambda entry point: a pass, and the jobs it had to fail as the metric the stack's alarm watches. */
export const handler = lambdaHandler(async () => {
  const report = await reconcile();
  if (report.failed > 0) countMetric('ReconcilerFailedJobs', report.failed);
  return report;
});
