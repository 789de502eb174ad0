/**
 * A job's history: the newest events in the job's state, the older ones in items of their own, so
 * the job item stays small however many events a job has, and `GET /v3/jobs/{id}/history` still
 * serves every event, in order.
 *
 * The job state keeps at most HISTORY_INLINE_MAX events. A write that would keep more first stores
 * the oldest HISTORY_CHUNK of them as chunk `historyChunks` (record `job-history`, id
 * `<job id>.<n>`), then drops them from the state in the same conditional write that makes the
 * change. Chunk n always holds events n·CHUNK … (n+1)·CHUNK−1: writers racing on the same version
 * store the same chunk (creation is conditional, the second finds it), and the loser re-reads a
 * state that no longer holds those events. A crash between the two writes leaves a chunk the next
 * write finds already there.
 */
import type { DomainContext } from './context.js';
import type { RecordStore } from './ports.js';
import type { JobStatus } from './records.js';
import { sortableTimestamp } from './time.js';
import type { Stage } from './worker-port.js';
import { getJobState, type HistoryEntry, type JobState } from './job-state.js';

export const HISTORY_INLINE_MAX = 40;
export const HISTORY_CHUNK = 32;
const CHUNK_KIND = 'job-history';

interface HistoryChunk {
  job: string;
  n: number;
  events: HistoryEntry[];
}

const chunkId = (jobId: string, n: number) => `${jobId}.${n}`;

/** The state to write: its oldest events moved to chunks until at most HISTORY_INLINE_MAX stay. */
export async function withHistoryBounded(ctx: Pick<DomainContext, 'store' | 'clock'>, state: JobState): Promise<JobState> {
  let next = state;
  while (next.history.length > HISTORY_INLINE_MAX) {
    const n = next.historyChunks ?? 0;
    const chunk: HistoryChunk = { job: next.job.id, n, events: next.history.slice(0, HISTORY_CHUNK) };
    // false: stored already (a racing writer, or a crash after it): the same events by construction.
    await ctx.store.create(CHUNK_KIND, chunkId(next.job.id, n), chunk, sortableTimestamp(ctx.clock.nowMicros()));
    next = { ...next, history: next.history.slice(HISTORY_CHUNK), historyChunks: n + 1 };
  }
  return next;
}

/** Every event of the job, oldest first. */
export async function allHistory(ctx: Pick<DomainContext, 'store'>, state: JobState): Promise<HistoryEntry[]> {
  const count = state.historyChunks ?? 0;
  const chunks = await Promise.all(
    Array.from({ length: count }, async (_, n) => {
      const stored = await ctx.store.get<HistoryChunk>(CHUNK_KIND, chunkId(state.job.id, n));
      if (!stored) throw new Error(`job ${state.job.id}: history chunk ${n} is missing`);
      return stored.record.events;
    }),
  );
  return [...chunks.flat(), ...state.history];
}

/** Removes the job's history chunks (after the job itself): each one there is, in order. */
export async function removeHistoryChunks(store: RecordStore, jobId: string): Promise<void> {
  for (let n = 0; ; n++) {
    const stored = await store.get(CHUNK_KIND, chunkId(jobId, n));
    if (!stored) return;
    await store.remove(CHUNK_KIND, chunkId(jobId, n), stored.version);
  }
}

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
    events: await allHistory(ctx, state),
  };
}
