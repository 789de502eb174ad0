/**
 * POST /v3/jobs/{job_id}/checks, the route a job's work reports on: with the job's own report
 * token it checks the waiting stage at once (the reconciler is off here); a forged, expired or
 * other job's token is refused with a problem and changes nothing; a repeat changes nothing; an
 * unknown job is a 404. The worker is scripted; the remote-node reporter that calls the route is
 * tested in remote-node-jobs.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mintReportToken } from '#shared/domain/job-report-token.js';
import { getJobState } from '#shared/domain/job-state.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { until } from '../helpers/until.js';
import { ScriptedWorker } from '../helpers/scripted-worker.js';

let svc: TestService;
let worker: ScriptedWorker;
let key: Buffer;
let recipeId: string;
let keyId: string;

const hour = () => Math.floor(Date.now() / 1000) + 3600;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const report = (id: string, headers: Record<string, string> = {}, prefix = '/v3') => svc.request('POST', `${prefix}/jobs/${id}/checks`, undefined, headers);
const callsOf = (id: string) => worker.calls.filter((c) => c.jobId === id).length;

beforeAll(async () => {
  process.env.IMS_JOB_WORKER = 'scripted';
  worker = new ScriptedWorker((bucket, k, body, metadata) => svc.putObject(bucket, k, body, metadata));
  // No reconciler: only the stage entries and the reports check a stage.
  svc = await startTestService({ workers: { scripted: () => worker }, reconcileMs: 0 });
  key = readFileSync(process.env.IMS_JOB_REPORT_KEY_FILE!);
  await svc.putObject('ims', 'recipes/r/recipe.tgz', 'recipe archive', { md5sum: 'abc' });
  keyId = (await svc.request('POST', '/v3/public-keys', { name: 'k', public_key: 'ssh-ed25519 AAAA' })).body.id;
  recipeId = (await svc.request('POST', '/v3/recipes', { name: 'r', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: 's3://ims/recipes/r/recipe.tgz', type: 's3' } })).body.id;
});

afterAll(async () => {
  await svc.stop();
  delete process.env.IMS_JOB_WORKER;
});

/** A create job of the scripted worker whose build is done on its third look: entry, then two reports. */
async function jobInBuild(): Promise<string> {
  const created = await svc.request('POST', '/v3/jobs', { job_type: 'create', artifact_id: recipeId, public_key_id: keyId, image_root_archive_name: 'ok' });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  // The entry's own check is over: the build was looked at once, and no check holds the job's lease.
  const state = await until(() => getJobState(svc.app, id), (s) => s.stage?.name === 'build' && Boolean(s.stage.token) && worker.calls.some((c) => c.jobId === id && c.stage === 'build'));
  await until(() => svc.app.store.claimHolder('job-check', `${id}#${state.stage!.token}`), (holder) => holder === undefined);
  return id;
}

describe('job reports', () => {
  test('the job’s token checks its stage now: two reports finish the build, and the job runs to success without a reconciler', async () => {
    const id = await jobInBuild();
    const token = mintReportToken(key, id, hour());
    const first = await report(id, bearer(token));
    expect(first).toMatchObject({ status: 202, body: { job_id: id } });
    expect((await getJobState(svc.app, id)).stage?.name).toBe('build');
    // Under every version prefix and the gateway's base path.
    expect((await report(id, bearer(token), '/apis/ims')).status).toBe(202);
    const done = await until(() => svc.request('GET', `/v3/jobs/${id}`).then((r) => r.body), (j) => j.status === 'success' || j.status === 'error');
    expect(done.status).toBe('success');
    // A repeat, after the job ended: accepted, and nothing changes.
    const before = JSON.stringify(await getJobState(svc.app, id));
    const calls = callsOf(id);
    expect((await report(id, bearer(token), '/v2')).status).toBe(202);
    expect(callsOf(id)).toBe(calls);
    expect(JSON.stringify(await getJobState(svc.app, id))).toBe(before);
  });

  test('a missing, forged, expired or other job’s token is refused with a problem, and the stage is not checked', async () => {
    const id = await jobInBuild();
    const other = await jobInBuild();
    const before = JSON.stringify(await getJobState(svc.app, id));
    const calls = callsOf(id);
    const refusals = [
      [{}, 401, "A job report needs the job's report token as its bearer token; none was sent."],
      [bearer('not-a-token'), 401, 'The job report was refused: the token is not a job report token.'],
      [bearer(mintReportToken(randomBytes(32), id, hour())), 401, 'The job report was refused: the token does not verify.'],
      [bearer(mintReportToken(key, id, Math.floor(Date.now() / 1000) - 1)), 401, 'The job report was refused: the token has expired.'],
      [bearer(mintReportToken(key, other, hour())), 403, 'The job report was refused: the token is for another job.'],
    ] as const;
    for (const [headers, status, detail] of refusals) {
      const res = await report(id, headers);
      expect({ status: res.status, type: res.headers.get('content-type'), body: res.body }).toEqual({
        status,
        type: 'application/problem+json',
        body: { type: 'about:blank', status, title: status === 401 ? 'Unauthorized' : 'Forbidden', detail },
      });
    }
    expect(callsOf(id)).toBe(calls);
    expect(JSON.stringify(await getJobState(svc.app, id))).toBe(before);
    for (const j of [id, other]) expect((await svc.request('DELETE', `/v3/jobs/${j}`)).status).toBe(204);
  });

  test('a valid token of a job that does not exist (any more) is a 404; a GET of the route a 405', async () => {
    const id = '3f1e2d3c-4b5a-4697-8877-665544332211';
    const res = await report(id, bearer(mintReportToken(key, id, hour())));
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect((await svc.request('GET', `/v3/jobs/${id}/checks`)).status).toBe(405);
  });
});
