/**
 * One call at a time per job in this process: a DELETE's cleanup must not run while a stage's
 * poll is starting a process in the same work directory (the embedded runtime runs both in one
 * process; the poll finishes first, then the cleanup ends what it started).
 */
const tails = new Map<string, Promise<unknown>>();

export async function withJobLock<T>(jobId: string, work: () => Promise<T>): Promise<T> {
  const before = tails.get(jobId) ?? Promise.resolve();
  const result = before.catch(() => undefined).then(work);
  const tail = result.catch(() => undefined);
  tails.set(jobId, tail);
  try {
    return await result;
  } finally {
    if (tails.get(jobId) === tail) tails.delete(jobId);
  }
}
