/**
 * Long jobs in virtual time. The ASL that CDK synthesizes runs in aws-local-stepfunctions with
 * the real stage handlers and the real reconciler; a test clock stands for time (the runner's
 * heartbeat and timeout judgement, the stages' limits, the worker's progress), and the test moves
 * it five minutes per reconciler pass (deployed, EventBridge Scheduler runs it every minute; any
 * step under the 600 s heartbeat timeout writes the same history). Each
 * job's history is counted as Step Functions would write it (test/helpers/history-events.ts):
 * it must stay far below the 25,000 events at which AWS ends an execution, and must not grow
 * with the job's duration. Not covered: Step Functions itself (its own heartbeat clock, its
 * history as AWS writes it); the counts follow AWS's documented events per state.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { JobState } from '#shared/domain/job-state.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { TimedWorker, type JobPlan } from '../helpers/timed-worker.js';
import { countHistory } from '../helpers/history-events.js';

const HOUR = 3600;
const STEP = 300;
/** What one retried invocation of a waiting stage adds: its TaskFailed and a new scheduled, started and submitted task. */
const RETRY_EVENTS = 4;
const definition = JSON.parse(readFileSync(new URL('../../shared/workflow/generated/job-workflow.asl.json', import.meta.url), 'utf8'));

const plans: Record<string, JobPlan> = {
  'build-10m': { seconds: { build: 600 } },
  'build-4h': { seconds: { build: 4 * HOUR } },
  'ssh-10m': { seconds: { ssh: 600 } },
  'ssh-24h': { seconds: { ssh: 24 * HOUR } },
  'fail-build': { seconds: { build: 2 * HOUR }, failIn: 'build' },
  'hang-build': { hangIn: 'build' },
  'lost-build': { loseIn: { stage: 'build', timeoutSeconds: 1800 } },
  'delete-build': { hangIn: 'build' },
  'silent-build': { hangIn: 'build' },
  'quiet-build': { hangIn: 'build' },
};

let svc: TestService;
let worker: TimedWorker;
let now = Date.parse('2026-12-01T00:00:00Z');
const invocations = new Map<string, number>();
let recipeId: string;
let imageId: string;
let keyId: string;
/** While false the reconciler is down: nobody checks or heartbeats waiting stages. */
let reconcilerUp = true;

beforeAll(async () => {
  process.env.IMS_JOB_WORKER = 'timed';
  process.env.IMS_STAGE_TIMEOUT_BUILD = String(5 * HOUR);
  process.env.IMS_STAGE_TIMEOUT_SSH = String(25 * HOUR);
  worker = new TimedWorker(plans, () => now, (bucket, key, body, metadata) => svc.putObject(bucket, key, body, metadata));
  svc = await startTestService({
    workers: { timed: () => worker },
    reconcileMs: 0,
    workflow: {
      clock: { nowMs: () => now },
      wrapTask: (_state, handler) => async (input) => {
        invocations.set(input.jobId ?? input.Payload?.jobId, (invocations.get(input.jobId) ?? 0) + 1);
        return handler(input);
      },
    },
  });
  await svc.putObject('ims', 'recipes/r/recipe.tgz', 'recipe archive', { md5sum: 'abc' });
  recipeId = (await svc.request('POST', '/v3/recipes', { name: 'r', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: 's3://ims/recipes/r/recipe.tgz', type: 's3' } })).body.id;
  await svc.putObject('boot-images', 'src/rootfs', 'squashfs');
  await svc.putObject('boot-images', 'src/manifest.json', JSON.stringify({ version: '1.0', artifacts: [{ type: 'application/vnd.cray.image.rootfs.squashfs', md5: 'm', link: { path: 's3://boot-images/src/rootfs', type: 's3' } }] }));
  imageId = (await svc.request('POST', '/v3/images', { name: 'src', link: { path: 's3://boot-images/src/manifest.json', type: 's3' } })).body.id;
  keyId = (await svc.request('POST', '/v3/public-keys', { name: 'k', public_key: 'ssh-ed25519 AAAA' })).body.id;
});

afterAll(async () => {
  await svc.stop();
  delete process.env.IMS_JOB_WORKER;
  delete process.env.IMS_STAGE_TIMEOUT_BUILD;
  delete process.env.IMS_STAGE_TIMEOUT_SSH;
});

async function post(plan: string): Promise<string> {
  const customize = plan.startsWith('ssh-');
  const res = await svc.request('POST', '/v3/jobs', {
    job_type: customize ? 'customize' : 'create',
    artifact_id: customize ? imageId : recipeId,
    public_key_id: keyId,
    image_root_archive_name: plan,
  });
  expect(res.status).toBe(201);
  return res.body.id;
}

const job = async (id: string) => (await svc.request('GET', `/v3/jobs/${id}`)).body;
const ended = (j: { status?: string } | undefined) => j?.status === 'success' || j?.status === 'error';

/** Lets the handlers that a pass set going finish (in-process, they run on the event loop). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 5));
}

/** Moves time five minutes at a time, running the reconciler after each, until `done` or `limitSeconds`. */
async function runFor(limitSeconds: number, done: () => Promise<boolean>): Promise<void> {
  for (let t = 0; t < limitSeconds; t += STEP) {
    now += STEP * 1000;
    if (reconcilerUp) await svc.reconcile();
    else svc.workflow.checkTimeouts();
    await settle();
    if (t % 1800 === 0 && (await done())) return;
  }
}

function historyOf(jobId: string) {
  const executions = [...svc.workflow.executions.values()].filter((e) => e.jobId === jobId);
  expect(executions).toHaveLength(1);
  return { ...countHistory(executions[0].events, definition), status: executions[0].status };
}

async function untilEnded(ids: string[], limitSeconds: number): Promise<Record<string, any>> {
  await runFor(limitSeconds, async () => (await Promise.all(ids.map(job))).every(ended));
  await svc.workflow.drain();
  return Object.fromEntries(await Promise.all(ids.map(async (id) => [id, await job(id)])));
}

describe('job history in virtual time', () => {
  test('a 4 h build and a 24 h SSH session end in success with as many history events as 10-minute ones', async () => {
    const ids = { b10: await post('build-10m'), b4h: await post('build-4h'), s10: await post('ssh-10m'), s24h: await post('ssh-24h') };
    const jobs = await untilEnded(Object.values(ids), 26 * HOUR);
    for (const id of Object.values(ids)) expect(jobs[id].status).toBe('success');
    const h = Object.fromEntries(Object.entries(ids).map(([k, id]) => [k, historyOf(id)]));
    for (const k of Object.keys(ids)) {
      expect(h[k].status).toBe('SUCCEEDED');
      expect(h[k].events).toBeLessThan(500);
    }
    // Duration costs nothing: the 4 h and 24 h jobs write the events of the 10-minute ones (give or
    // take one retried invocation, which a loaded machine can cause), and as many transitions.
    expect(h.b4h.transitions).toBe(h.b10.transitions);
    expect(h.s24h.transitions).toBe(h.s10.transitions);
    expect(Math.abs(h.b4h.events - h.b10.events)).toBeLessThanOrEqual(RETRY_EVENTS);
    expect(Math.abs(h.s24h.events - h.s10.events)).toBeLessThanOrEqual(RETRY_EVENTS);
    // The stage functions run once per stage, however long the stage waits.
    expect(Math.abs(invocations.get(ids.b4h)! - invocations.get(ids.b10)!)).toBeLessThanOrEqual(1);
    expect(Math.abs(invocations.get(ids.s24h)! - invocations.get(ids.s10)!)).toBeLessThanOrEqual(1);
    expect(invocations.get(ids.s24h)).toBeLessThanOrEqual(8);
  }, 120_000);

  test('failure, stage timeout, lost worker, silent reconciler and delete mid-stage all end the job, each under 500 events', async () => {
    const ids = {
      fail: await post('fail-build'),
      timeout: await post('hang-build'),
      lost: await post('lost-build'),
      del: await post('delete-build'),
    };
    await runFor(HOUR, async () => true);
    expect(await svc.request('DELETE', `/v3/jobs/${ids.del}`)).toMatchObject({ status: 204 });
    const jobs = await untilEnded([ids.fail, ids.timeout, ids.lost], 6 * HOUR);
    expect(jobs[ids.fail]).toMatchObject({ status: 'error' });
    expect(jobs[ids.timeout]).toMatchObject({ status: 'error' });
    expect(jobs[ids.lost]).toMatchObject({ status: 'error' });
    const reason = async (id: string) => (await svc.request('GET', `/v3/jobs/${id}/history`)).body.reason;
    expect(await reason(ids.fail)).toMatch(/build failed after 7200 s/);
    expect(await reason(ids.timeout)).toBe(`stage build timed out after ${5 * HOUR} s`);
    expect(await reason(ids.lost)).toMatch(/the executor does not answer \(no contact for \d+ s\)/);
    expect((await svc.request('GET', `/v3/jobs/${ids.del}`)).status).toBe(404);
    for (const id of Object.values(ids)) {
      const h = historyOf(id);
      expect(h.events).toBeLessThan(500);
      expect(worker.cleanups.filter((c) => c.jobId === id)).toHaveLength(1);
    }
    expect(historyOf(ids.del).status).toBe('ABORTED');
  }, 120_000);

  test("the reconciler's checks of a waiting job do not rewrite it: its item's version stays while the stage is heartbeaten", async () => {
    const id = await post('quiet-build');
    const stored = async () => (await svc.app.store.get<JobState>('job', id))!;
    await runFor(HOUR, async () => (await stored()).record.stage?.name === 'build');
    // One pass more: what the stage's entry and first look write (its status) has landed.
    await runFor(STEP, async () => false);
    const before = await stored();
    expect(before.record.stage).toMatchObject({ name: 'build', token: expect.any(String) });
    const checks = worker.checks.get(id) ?? 0;
    await runFor(2 * HOUR, async () => false);
    const after = await stored();
    // 24 passes (five minutes each, past the 600 s heartbeat timeout many times over): the worker
    // was asked each time, the stage is still waiting, and the job item was not written once.
    expect((worker.checks.get(id) ?? 0) - checks).toBeGreaterThanOrEqual(24);
    expect(after.record.stage).toEqual(before.record.stage);
    expect(after.version).toBe(before.version);
    expect((await svc.request('DELETE', `/v3/jobs/${id}`)).status).toBe(204);
  }, 120_000);

  test('with the reconciler down, a waiting stage ends by its heartbeat timeout, and the job in error', async () => {
    reconcilerUp = false;
    try {
      const id = await post('silent-build');
      const done = await untilEnded([id], 2 * HOUR);
      expect(done[id].status).toBe('error');
      expect((await svc.request('GET', `/v3/jobs/${id}/history`)).body.reason).toMatch(/States.HeartbeatTimeout/);
      expect(historyOf(id).events).toBeLessThan(500);
    } finally {
      reconcilerUp = true;
    }
  }, 120_000);
});
