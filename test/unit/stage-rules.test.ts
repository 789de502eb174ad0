/** The rules of a waiting stage: pure functions of (job state, progress, now), no store and no clock. */
import { describe, expect, test } from '@jest/globals';
import type { JobState } from '#shared/domain/job-state.js';
import type { JobRecord } from '#shared/domain/records.js';
import { allOf, finishedStage, ruleBeforeAsking, ruleOnContact, ruleOnProgress } from '#shared/workflow/stage-rules.js';

const SECOND = 1_000_000n;
const T0 = 1_700_000_000n * SECOND;

function jobState(overrides: Partial<JobState> = {}, job: Partial<JobRecord> = {}): JobState {
  return {
    job: {
      id: 'job-1',
      status: 'building_image',
      ssh_containers: [
        {
          name: 'debug',
          jail: false,
          status: 'pending',
          connection_info: { customer_access: { host: 'job-1.ims.cmn.shasta.local', port: 22 }, 'cluster.local': { host: 'svc.ims.svc.cluster.local', port: 22 } },
        },
      ],
      ...job,
    } as JobRecord,
    worker: 'local',
    input: {} as JobState['input'],
    stage: { name: 'build', startedMicros: T0.toString(), token: 'token-1' },
    history: [],
    ...overrides,
  };
}

describe('before the worker is asked', () => {
  test('a job set to error has failed, with its reason', () => {
    expect(ruleBeforeAsking(jobState({ reason: 'pod failed' }, { status: 'error' }), 'build', T0, 60)).toEqual({ outcome: 'failed', reason: 'pod failed' });
    expect(ruleBeforeAsking(jobState({}, { status: 'error' }), 'build', T0, 60)).toEqual({ outcome: 'failed', reason: 'the job was set to error' });
  });

  test('a stage past its limit has timed out; at the limit it has not', () => {
    expect(ruleBeforeAsking(jobState(), 'build', T0 + 60n * SECOND, 60)).toBeUndefined();
    expect(ruleBeforeAsking(jobState(), 'build', T0 + 61n * SECOND, 60)).toEqual({ outcome: 'failed', reason: 'stage build timed out after 60 s' });
  });
});

describe('contact with the executor', () => {
  const lost = { state: 'running' as const, lost: { reason: 'node x1 unreachable', timeoutSeconds: 600 } };

  test('the first poll without contact remembers since when, once', () => {
    const state = jobState();
    const { lost: reason, change } = ruleOnContact(state, lost, T0 + 5n * SECOND);
    expect(reason).toBeUndefined();
    const next = change!(state)!;
    expect(next.lostContact).toEqual({ sinceMicros: (T0 + 5n * SECOND).toString() });
    expect(next.history.map((e) => e.detail)).toEqual(['lost contact: node x1 unreachable']);
    // Applied to a state that already remembers it (another check got there first): no change.
    expect(change!(next)).toBeUndefined();
  });

  test('the job fails once contact has been lost for the timeout', () => {
    const state = jobState({ lostContact: { sinceMicros: T0.toString() } });
    expect(ruleOnContact(state, lost, T0 + 599n * SECOND)).toEqual({});
    expect(ruleOnContact(state, lost, T0 + 600n * SECOND).lost).toBe('node x1 unreachable (no contact for 600 s)');
  });

  test('a good poll forgets it', () => {
    const state = jobState({ lostContact: { sinceMicros: T0.toString() } });
    const { change } = ruleOnContact(state, { state: 'running' }, T0 + SECOND);
    const next = change!(state)!;
    expect(next.lostContact).toBeUndefined();
    expect(next.history.map((e) => e.detail)).toEqual(['contact restored']);
    expect(ruleOnContact(jobState(), { state: 'running' }, T0)).toEqual({});
  });
});

describe("the worker's progress", () => {
  test('failed and done are verdicts; running keeps waiting', () => {
    expect(ruleOnProgress(jobState(), { state: 'failed', reason: 'kiwi failed' }, T0)).toEqual({ verdict: { outcome: 'failed', reason: 'kiwi failed' } });
    expect(ruleOnProgress(jobState(), { state: 'done', detail: 'built' }, T0)).toEqual({ verdict: { outcome: 'done', detail: 'built' } });
    expect(ruleOnProgress(jobState(), { state: 'running' }, T0)).toEqual({ verdict: { outcome: 'running' } });
  });

  test('a new status and SSH endpoint are written, unless the stage has moved on', () => {
    const state = jobState();
    const { verdict, change } = ruleOnProgress(state, { state: 'running', status: 'waiting_on_user', detail: 'shell ready', ssh: { status: 'live', host: '10.0.0.5', port: 2222 } }, T0);
    expect(verdict).toEqual({ outcome: 'running' });
    const next = change!(state)!;
    expect(next.job.status).toBe('waiting_on_user');
    expect(next.job.ssh_containers![0].status).toBe('live');
    expect(next.job.ssh_containers![0].connection_info.customer_access).toEqual({ host: '10.0.0.5', port: 2222 });
    expect(next.history).toEqual([{ time: expect.any(String), event: 'status', status: 'waiting_on_user', detail: 'shell ready' }]);
    expect(change!(jobState({ stage: { name: 'ssh', startedMicros: T0.toString(), token: 'token-2' } }))).toBeUndefined();
  });

  test('lost contact past the timeout fails the stage', () => {
    const state = jobState({ lostContact: { sinceMicros: T0.toString() } });
    const { verdict } = ruleOnProgress(state, { state: 'running', lost: { reason: 'gone', timeoutSeconds: 10 } }, T0 + 11n * SECOND);
    expect(verdict).toEqual({ outcome: 'failed', reason: 'gone (no contact for 11 s)' });
  });
});

test('changes compose in order, and nothing changed is no change', () => {
  const state = jobState();
  const both = allOf(finishedStage('build', T0, 'built'), (s) => ({ ...s, reason: 'x' }));
  const next = both(state)!;
  expect(next.history).toEqual([{ time: expect.any(String), event: 'stage-finished', stage: 'build', detail: 'built' }]);
  expect(next.reason).toBe('x');
  expect(allOf(undefined, () => undefined)(state)).toBeUndefined();
});
