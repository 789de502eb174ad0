/**
 * Heartbeats of a job's executor, judged across polls. A worker that cannot see its job's
 * executor (a remote node that went away) says so on each poll; the first such poll is remembered
 * in the job state, so the judgement holds across processes (each Lambda invocation is new), and
 * the job fails once contact has been lost for the worker's timeout. A good poll forgets it.
 * The original only had this for remote customize containers, and a rebooted node still left jobs
 * at waiting_on_user (ims-job-workflow.md §9 item 1).
 */
import { updateJobState, withHistory, type JobState } from '../domain/job-state.js';
import type { DomainContext } from '../domain/context.js';
import type { StageProgress } from '../domain/worker-port.js';

/** Why the job must fail now, or undefined while contact is fine or not lost for long enough. */
export async function judgeContact(ctx: DomainContext, jobId: string, state: JobState, progress: StageProgress): Promise<string | undefined> {
  if (progress.state === 'failed') return undefined;
  const now = ctx.clock.nowMicros();
  if (progress.state === 'running' && progress.lost) {
    const { reason, timeoutSeconds } = progress.lost;
    let since = state.lostContact ? BigInt(state.lostContact.sinceMicros) : undefined;
    if (since === undefined) {
      since = now;
      await updateJobState(ctx, jobId, (s) =>
        s.lostContact ? undefined : withHistory(ctx, { ...s, lostContact: { sinceMicros: now.toString() } }, { event: 'note', detail: `lost contact: ${reason}` }),
      );
    }
    const seconds = Number(now - since) / 1e6;
    return seconds >= timeoutSeconds ? `${reason} (no contact for ${Math.round(seconds)} s)` : undefined;
  }
  if (state.lostContact) {
    await updateJobState(ctx, jobId, (s) => {
      if (!s.lostContact) return undefined;
      const { lostContact: _gone, ...rest } = s;
      return withHistory(ctx, rest, { event: 'note', detail: 'contact restored' });
    });
  }
  return undefined;
}
