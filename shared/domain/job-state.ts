/**
 * A job's state and its changes: the PATCH job pods send, status and history entries, errors.
 * Creation is in job-create.ts, deletion in job-delete.ts, the served history in job-history.ts.
 *
 * A job is stored as a JobState: the wire record plus what the workflow needs (the worker's
 * inputs, the current stage, the history of stages and statuses, the execution id).
 */
import { getInState, mutate, walkRecords } from './lifecycle.js';
import { formatTimestamp } from './time.js';
import { withHistoryBounded } from './job-history.js';
import { toListQuery } from './record-index.js';
import type { PlacementContext } from './node-placement.js';
import type { DomainContext } from './context.js';
import type { WorkflowRunner } from './ports.js';
import { JOB_STATUSES, type JobRecord, type JobStatus } from './records.js';
import type { Stage, Worker, WorkerJob } from './worker-port.js';

export const JOB_KIND = 'job';
const KIND = JOB_KIND;

export interface JobSettings {
  defaultBuildEnvSize: number;
  defaultJobMemSize: number;
  namespace: string;
  customerAccessSubnet: string;
  customerAccessDomain: string;
  /** JOB_ENABLE_DKMS: customize jobs default to DKMS unless this is false. */
  enableDkms: boolean;
  urlExpirationSeconds: number;
  /**
   * How long a bulk DELETE /jobs finishes deletions before it answers (IMS_JOB_DELETE_INLINE_MS);
   * the jobs it has not begun by then are left, marked, to the reconciler (job-delete.ts).
   */
  deleteInlineMs: number;
  /** Which worker runs new jobs. */
  worker: string;
}

export interface JobContext extends PlacementContext {
  jobs: JobSettings;
  workflow: WorkflowRunner;
  /** The worker by name, loaded on first use. */
  workerFor(name: string): Promise<Worker>;
}

export interface HistoryEntry {
  time: string;
  event: 'created' | 'status' | 'stage-started' | 'stage-finished' | 'error' | 'note';
  stage?: Stage;
  status?: JobStatus;
  detail?: string;
}

export interface JobState {
  job: JobRecord;
  worker: string;
  input: Omit<WorkerJob, 'job'>;
  execution?: string;
  /**
   * The stage the workflow is in; `token` while it waits for its work. The check lease is an item
   * of its own (shared/workflow/stages.ts), so a check does not rewrite the job.
   */
  stage?: { name: Stage; startedMicros: string; token?: string };
  reason?: string;
  /** Since when the worker has not been able to see the job's executor (shared/workflow/heartbeat.ts). */
  lostContact?: { sinceMicros: string };
  /** The newest events; the older ones are in `historyChunks` chunks of their own (job-history.ts). */
  history: HistoryEntry[];
  historyChunks?: number;
  /** The job's logs as kept in the artifact store once the job ended (`s3://` paths). */
  logs?: { name: string; path: string }[];
}

export interface JobPatchInput {
  status?: JobStatus;
  resultant_image_id?: string;
}

export async function getJobState(ctx: DomainContext, id: string): Promise<JobState> {
  return (await getInState<JobState>(ctx.store, KIND, id, 'live')).record;
}

export async function findJobState(ctx: DomainContext, id: string): Promise<JobState | undefined> {
  const stored = await ctx.store.get<JobState>(KIND, id);
  return stored?.state === 'live' ? stored.record : undefined;
}

export async function getJob(ctx: DomainContext, id: string): Promise<JobRecord> {
  return (await getJobState(ctx, id)).job;
}

/** Every job, a page at a time. */
export async function* allJobs(ctx: DomainContext): AsyncGenerator<JobRecord> {
  for await (const stored of walkRecords<Pick<JobState, 'job'>>(ctx.store, KIND, 'live')) yield stored.record.job;
}

/**
 * Jobs not yet ended (neither success nor error), oldest first per status: Queries on the status
 * index, which lists the wire records; each job's state is then read whole (one gone meanwhile is
 * left out).
 */
export async function* unfinishedJobs(ctx: DomainContext): AsyncGenerator<JobState> {
  for (const status of JOB_STATUSES) {
    if (status === 'success' || status === 'error') continue;
    let cursor: string | undefined;
    do {
      const page = await ctx.store.list<Pick<JobState, 'job'>>(KIND, 'live', toListQuery(KIND, { facets: { status } }, { cursor }));
      for (const stored of page.items) {
        const state = await findJobState(ctx, stored.record.job.id);
        if (state) yield state;
      }
      cursor = page.cursor;
    } while (cursor);
  }
}

/** Read-modify-write of a job's state with the store's optimistic locking; the history kept bounded. */
export async function updateJobState(ctx: DomainContext, id: string, change: (state: JobState) => JobState | undefined): Promise<JobState | undefined> {
  return mutate<JobState>(ctx.store, KIND, id, 'live', async ({ record }) => {
    const next = change(record);
    return next ? { record: await withHistoryBounded(ctx, next), state: 'live' } : undefined;
  });
}

function now(ctx: Pick<DomainContext, 'clock'>): string {
  return formatTimestamp(ctx.clock.nowMicros());
}

/** Sets the status with a history entry; a no-op when it already has that status. */
export function withStatus(ctx: Pick<DomainContext, 'clock'>, state: JobState, status: JobStatus, detail?: string): JobState {
  if (state.job.status === status) return state;
  return {
    ...state,
    job: { ...state.job, status },
    history: [...state.history, { time: now(ctx), event: 'status', status, ...(detail ? { detail } : {}) }],
  };
}

export function withHistory(ctx: Pick<DomainContext, 'clock'>, state: JobState, entry: Omit<HistoryEntry, 'time'>): JobState {
  return { ...state, history: [...state.history, { time: now(ctx), ...entry }] };
}

/** Ends a job in `error`, keeping the first reason given. */
export async function recordJobError(ctx: DomainContext, id: string, reason: string): Promise<JobState | undefined> {
  return updateJobState(ctx, id, (state) => {
    if (state.job.status === 'error' && state.reason) return undefined;
    const next = withStatus(ctx, state, 'error', reason);
    return withHistory(ctx, { ...next, reason: state.reason ?? reason }, { event: 'error', detail: reason });
  });
}

/** PATCH /jobs/{id}: the calls job pods make through ims-python-helper. */
export async function patchJob(ctx: DomainContext, id: string, patch: JobPatchInput): Promise<JobRecord> {
  const state = await updateJobState(ctx, id, (current) => {
    let next = current;
    if (patch.resultant_image_id !== undefined && patch.resultant_image_id !== current.job.resultant_image_id) {
      next = withHistory(ctx, { ...next, job: { ...next.job, resultant_image_id: patch.resultant_image_id } }, {
        event: 'note',
        detail: `resultant_image_id set to ${patch.resultant_image_id}`,
      });
    }
    if (patch.status !== undefined) next = withStatus(ctx, next, patch.status, 'set through the API');
    return next;
  });
  return (state ?? (await getJobState(ctx, id))).job;
}

export function workerJobOf(state: JobState): WorkerJob {
  return { job: state.job, ...state.input };
}

