import { reconcileJobs } from '#shared/workflow/reconcile.js';
import { contextFrom, type AppContext } from '#shared/wiring.js';
import { WORKERS } from '#shared/worker-table.js';
import { lambdaHandler } from '#shared/observability.js';

/** Scheduled once a minute: checks every job not yet ended, resumes, heartbeats or fails its execution. */
export const handlerWith =
  (context: () => AppContext) =>
  async () =>
    reconcileJobs(context());

/** The Lambda entry point: its context is built, once per container, from the function's environment. */
export const handler = lambdaHandler(handlerWith(contextFrom(process.env, { workers: WORKERS })));
