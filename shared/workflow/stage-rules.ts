/**
 * The rules of a waiting stage, as pure functions of (job state, worker's progress, now): where
 * the stage stands, and how the job state must change for it. shared/workflow/stages.ts reads
 * the job, asks the worker, applies these rules and writes the outcome with the lease or token
 * it holds, in one write.
 *
 * Contact: a worker that cannot see its job's executor (a remote node that went away) says so on
 * each poll; the first such poll is remembered in the job state, so the judgement holds across
 * processes (each Lambda invocation is new), and the job fails once contact has been lost for the
 * worker's timeout. A good poll forgets it. The original only had this for remote customize
 * containers, and a rebooted node still left jobs at waiting_on_user (ims-job-workflow.md §9 item 1).
 */
import { withHistory, withStatus, type JobState } from '../domain/job-state.js';
import type { Stage, StageProgress } from '../domain/worker-port.js';
import { withSshEndpoint } from './ssh-endpoint.js';

export type WaitingStage = 'prepare' | 'build' | 'ssh' | 'package';

export const WAITING_STAGES: readonly WaitingStage[] = ['prepare', 'build', 'ssh', 'package'];

export function isWaitingStage(stage: Stage | undefined): stage is WaitingStage {
  return (WAITING_STAGES as readonly (Stage | undefined)[]).includes(stage);
}

export type Verdict = { outcome: 'running' } | { outcome: 'done'; detail?: string } | { outcome: 'failed'; reason: string };

/** A change of the job state; undefined when there is nothing to change. */
export type StateChange = (state: JobState) => JobState | undefined;

/** History entries written by a rule carry the time the rule was applied at. */
const at = (now: bigint) => ({ clock: { nowMicros: () => now } });

/** Applies each change in turn; undefined when none changed anything. */
export function allOf(...changes: (StateChange | undefined)[]): StateChange {
  return (state) => {
    let next = state;
    for (const change of changes) next = change?.(next) ?? next;
    return next === state ? undefined : next;
  };
}

/**
 * Before the worker is asked: a job set to error has failed, and a stage past its time limit
 * (seconds since the stage's entry) has timed out. Undefined: ask the worker.
 */
export function ruleBeforeAsking(state: JobState, stage: WaitingStage, now: bigint, limitSeconds: number): Verdict | undefined {
  if (state.job.status === 'error') return { outcome: 'failed', reason: state.reason ?? 'the job was set to error' };
  const elapsed = Number(now - BigInt(state.stage!.startedMicros)) / 1e6;
  if (elapsed > limitSeconds) return { outcome: 'failed', reason: `stage ${stage} timed out after ${limitSeconds} s` };
  return undefined;
}

/** Contact with the job's executor: why the job must fail now (if it must), and what to remember. */
export function ruleOnContact(state: JobState, progress: StageProgress, now: bigint): { lost?: string; change?: StateChange } {
  if (progress.state === 'failed') return {};
  if (progress.state === 'running' && progress.lost) {
    const { reason, timeoutSeconds } = progress.lost;
    const since = state.lostContact ? BigInt(state.lostContact.sinceMicros) : now;
    const change: StateChange | undefined = state.lostContact
      ? undefined
      : (s) => (s.lostContact ? undefined : withHistory(at(now), { ...s, lostContact: { sinceMicros: now.toString() } }, { event: 'note', detail: `lost contact: ${reason}` }));
    const seconds = Number(now - since) / 1e6;
    return { lost: seconds >= timeoutSeconds ? `${reason} (no contact for ${Math.round(seconds)} s)` : undefined, change };
  }
  if (!state.lostContact) return {};
  return {
    change: (s) => {
      if (!s.lostContact) return undefined;
      const { lostContact: _gone, ...rest } = s;
      return withHistory(at(now), rest, { event: 'note', detail: 'contact restored' });
    },
  };
}

/**
 * The worker's answer for the stage the job waits in (parked on `state.stage.token`): the verdict,
 * and the change of the job state it calls for (contact bookkeeping; the status and SSH endpoint
 * the worker reports, unless the stage has moved on meanwhile).
 */
export function ruleOnProgress(state: JobState, progress: StageProgress, now: bigint): { verdict: Verdict; change?: StateChange } {
  if (progress.state === 'failed') return { verdict: { outcome: 'failed', reason: progress.reason } };
  const contact = ruleOnContact(state, progress, now);
  if (contact.lost) return { verdict: { outcome: 'failed', reason: contact.lost }, change: contact.change };
  const token = state.stage?.token;
  const report: StateChange | undefined =
    (progress.status && progress.status !== state.job.status) || withSshEndpoint(state, progress.ssh) !== state
      ? (s) => {
          // A check that raced with the stage's end says nothing of the next stage.
          if (s.stage?.token !== token) return undefined;
          const next = withSshEndpoint(s, progress.ssh);
          return progress.status ? withStatus(at(now), next, progress.status, progress.detail) : next;
        }
      : undefined;
  const verdict: Verdict = progress.state === 'done' ? { outcome: 'done', detail: progress.detail } : { outcome: 'running' };
  return { verdict, change: contact.change || report ? allOf(contact.change, report) : undefined };
}

/** The stage's end in the job's history. */
export function finishedStage(stage: Stage, now: bigint, detail?: string): StateChange {
  return (s) => withHistory(at(now), s, { event: 'stage-finished', stage, ...(detail ? { detail } : {}) });
}
