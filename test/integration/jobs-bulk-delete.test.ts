/**
 * A bulk DELETE /jobs answers within its budget however many jobs match and however slow their
 * cleanup is: it marks every matching job (a 404 from then on), finishes what fits in
 * deleteInlineMs, and leaves the rest to the reconciler, which finishes each job exactly once.
 * A cleanup that fails in the background brings its job back, in error, to be deleted again.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import type { JobState } from '#shared/domain/job-state.js';
import type { CollectedArtifacts, StageProgress, Worker, WorkerJob } from '#shared/domain/worker-port.js';
import { startTestService, type TestService } from '../helpers/service.js';

const CLEANUP_MS = 300;

/** Never gets past a stage; its cleanup takes CLEANUP_MS, or fails while `failing` names the job. */
class SlowCleanupWorker implements Worker {
  readonly name = 'slow-cleanup';
  readonly cleanups: string[] = [];
  readonly failing = new Set<string>();

  async advance(): Promise<StageProgress> {
    return { state: 'running' };
  }

  async collect(): Promise<CollectedArtifacts> {
    throw new Error('these jobs never get to package');
  }

  async cleanup(job: WorkerJob, outcome: 'success' | 'error' | 'deleted'): Promise<void> {
    if (outcome !== 'deleted') return;
    await new Promise((resolve) => setTimeout(resolve, CLEANUP_MS));
    if (this.failing.has(job.job.id)) throw new Error(`(500) Reason: Internal Server Error deleting job ${job.job.id}`);
    this.cleanups.push(job.job.id);
  }
}

const worker = new SlowCleanupWorker();
let svc: TestService;
let savedWorker: string | undefined;
let body: Record<string, unknown>;

beforeAll(async () => {
  savedWorker = process.env.IMS_JOB_WORKER;
  process.env.IMS_JOB_WORKER = 'slow-cleanup';
  // The reconciler runs only when a test asks for a pass; records in dynalite, queried as DynamoDB is.
  svc = await startTestService({ reconcileMs: 0, recordStore: 'dynalite', workers: { 'slow-cleanup': () => worker } });
  const keyId = (await svc.request('POST', '/v3/public-keys', { name: 'bulk', public_key: 'ssh-ed25519 AAAAC3Nza bulk@test' })).body.id;
  const key = `recipes/${randomUUID()}/recipe.tgz`;
  await svc.putObject('ims', key, 'recipe archive');
  const recipe = (await svc.request('POST', '/v3/recipes', { name: 'bulk', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: `s3://ims/${key}`, type: 's3' } })).body;
  body = { job_type: 'create', artifact_id: recipe.id, public_key_id: keyId, image_root_archive_name: 'bulk' };
});
afterAll(async () => {
  await svc.stop();
  if (savedWorker === undefined) delete process.env.IMS_JOB_WORKER;
  else process.env.IMS_JOB_WORKER = savedWorker;
});

async function createJobs(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await svc.request('POST', '/v3/jobs', body);
    expect(res.status).toBe(201);
    ids.push(res.body.id);
  }
  return ids;
}

async function stateOf(id: string): Promise<'live' | 'deleted' | 'gone'> {
  return (await svc.app.store.get<JobState>('job', id))?.state ?? 'gone';
}

describe('bulk DELETE /jobs', () => {
  test('24 jobs with slow cleanups: 204 once the budget is spent, every job a 404 at once; the reconciler finishes the rest, each job once', async () => {
    const ids = await createJobs(24);
    svc.app.jobs.deleteInlineMs = 500;
    try {
      expect((await svc.request('DELETE', '/v3/jobs')).status).toBe(204);
    } finally {
      svc.app.jobs.deleteInlineMs = 10_000;
    }
    // At most the finishes begun within the budget ran (8 at a time, CLEANUP_MS each): not all 24.
    const inline = worker.cleanups.length;
    expect(inline).toBeLessThan(ids.length);
    for (const id of ids) expect((await svc.request('GET', `/v3/jobs/${id}`)).status).toBe(404);
    expect((await svc.request('GET', '/v3/jobs')).body).toEqual([]);
    const states = await Promise.all(ids.map(stateOf));
    expect(states.filter((s) => s === 'deleted')).toHaveLength(ids.length - inline);
    expect(states.filter((s) => s === 'live')).toHaveLength(0);

    const report = (await svc.reconcile()) as { deleted: number; deletionsFailed: number };
    expect(report).toMatchObject({ deleted: ids.length - inline, deletionsFailed: 0 });
    expect([...worker.cleanups].sort()).toEqual([...ids].sort());
    expect(await Promise.all(ids.map(stateOf))).toEqual(ids.map(() => 'gone'));
    // A second pass finds nothing left to do.
    expect(await svc.reconcile()).toMatchObject({ deleted: 0, deletionsFailed: 0 });
  }, 120_000);

  test('a cleanup that fails in the background brings the job back, in error with the reason; deleting it again works', async () => {
    const [bad, good] = await createJobs(2);
    worker.failing.add(bad);
    svc.app.jobs.deleteInlineMs = 0;
    try {
      expect((await svc.request('DELETE', '/v3/jobs')).status).toBe(204);
    } finally {
      svc.app.jobs.deleteInlineMs = 10_000;
    }
    expect(await stateOf(bad)).toBe('deleted');
    expect(await svc.reconcile()).toMatchObject({ deleted: 1, deletionsFailed: 1 });
    expect(await stateOf(good)).toBe('gone');
    const back = await svc.request('GET', `/v3/jobs/${bad}`);
    expect(back.body.status).toBe('error');
    expect((await svc.request('GET', `/v3/jobs/${bad}/history`)).body.reason).toContain('deleting the job failed, retry the DELETE');
    worker.failing.delete(bad);
    expect((await svc.request('DELETE', `/v3/jobs/${bad}`)).status).toBe(204);
    expect(await stateOf(bad)).toBe('gone');
  }, 60_000);
});
