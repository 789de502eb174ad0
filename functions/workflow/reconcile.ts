import '#shared/workers/kubernetes/register.js';
import '#shared/workers/remote-node/register.js';
import '#shared/workers/local/register.js';
import { reconcileJobs } from '#shared/workflow/reconcile.js';
import { appContext } from '#shared/wiring.js';
import { lambdaHandler } from '#shared/observability.js';

/** Scheduled once a minute: checks every job not yet ended, resumes, heartbeats or fails its execution. */
export const handler = lambdaHandler(async () => reconcileJobs(appContext()));
