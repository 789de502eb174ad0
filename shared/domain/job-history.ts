/** A job's history as `GET /v3/jobs/{id}/history` serves it. */
import type { DomainContext } from './context.js';
import { getJobState, type HistoryEntry } from './job-state.js';
import type { JobStatus } from './records.js';
import type { Stage } from './worker-port.js';

export interface JobHistory {
  id: string;
  status: JobStatus;
  reason: string | null;
  stage: Stage | null;
  worker: string;
  events: HistoryEntry[];
}

export async function jobHistory(ctx: DomainContext, id: string): Promise<JobHistory> {
  const state = await getJobState(ctx, id);
  return {
    id,
    status: state.job.status,
    reason: state.reason ?? null,
    stage: state.stage?.name ?? null,
    worker: state.worker,
    events: state.history,
  };
}
