/**
 * A job's logs (build log, sshd log, the worker's own stage log) outlive the job: the cleanup
 * stage uploads the files the worker kept to `s3://<boot bucket>/jobs/<job id>/logs/<name>`
 * before the worker removes them, for failed jobs too (the original lost kiwi.log with the
 * PVC). `GET /v3/jobs/{id}/logs` serves them: from the artifact store once uploaded, from the
 * worker's files while the job runs.
 */
import { open, stat } from 'node:fs/promises';
import { parseS3Path, s3Path } from '../domain/links.js';
import { getJobState, updateJobState, workerJobOf, type JobContext, type JobState } from '../domain/job-state.js';
import { logger } from '../logger.js';
import type { Worker } from '../domain/worker-port.js';

/** Each log is served up to its last this many bytes, so that the answer stays small (Lambda's limit is 6 MB). */
export const LOG_TAIL_BYTES = 256 * 1024;

export interface JobLogEntry {
  name: string;
  /** Where the full log is: an `s3://` path, or `worker` while the job's worker still holds it. */
  location: string;
  size: number;
  /** True when `text` is only the end of the log. */
  truncated: boolean;
  text: string;
}

export interface JobLogs {
  id: string;
  logs: JobLogEntry[];
}

/** Uploads the worker's log files and notes where they are in the job's state. Failures are logged, never thrown: cleanup must go on. */
export async function uploadJobLogs(ctx: JobContext, state: JobState, worker: Worker): Promise<void> {
  if (!worker.logs) return;
  const id = state.job.id;
  const uploaded: { name: string; path: string }[] = [];
  try {
    for (const file of await worker.logs(workerJobOf(state))) {
      const at = { bucket: ctx.settings.bootImagesBucket, key: `jobs/${id}/logs/${file.name}` };
      await ctx.artifacts.uploadFile(at, file.path, { 'x-shasta-ims-job-id': id });
      uploaded.push({ name: file.name, path: s3Path(at) });
    }
  } catch (error) {
    logger.warn('job logs could not be uploaded', { jobId: id, error: (error as Error).message });
  }
  if (uploaded.length === 0) return;
  await updateJobState(ctx, id, (s) => ({ ...s, logs: uploaded })).catch((error: unknown) => {
    logger.warn('job log locations could not be recorded', { jobId: id, error: (error as Error).message });
  });
}

async function readFileTail(path: string, maxBytes: number): Promise<{ text: string; size: number }> {
  const { size } = await stat(path);
  const length = Math.min(size, maxBytes);
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return { text: buffer.toString('utf8'), size };
  } finally {
    await handle.close();
  }
}

/** GET /v3/jobs/{id}/logs. */
export async function readJobLogs(ctx: JobContext, id: string): Promise<JobLogs> {
  const state = await getJobState(ctx, id);
  if (state.logs?.length) {
    const logs: JobLogEntry[] = [];
    for (const log of state.logs) {
      const at = parseS3Path(log.path);
      const tail = at ? await ctx.artifacts.readTail(at, LOG_TAIL_BYTES) : undefined;
      if (!tail) continue;
      logs.push({ name: log.name, location: log.path, size: tail.size, truncated: tail.size > LOG_TAIL_BYTES, text: tail.text });
    }
    return { id, logs };
  }
  if (state.job.status === 'success' || state.job.status === 'error') return { id, logs: [] };
  // Still running: only a worker that keeps its logs on this host can show them.
  const worker = await ctx.workerFor(state.worker);
  const files = worker.logs ? await worker.logs(workerJobOf(state)) : [];
  const logs: JobLogEntry[] = [];
  for (const file of files) {
    const tail = await readFileTail(file.path, LOG_TAIL_BYTES).catch(() => undefined);
    if (tail) logs.push({ name: file.name, location: 'worker', size: tail.size, truncated: tail.size > LOG_TAIL_BYTES, text: tail.text });
  }
  return { id, logs };
}
