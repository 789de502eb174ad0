/**
 * The job workflow end to end: the ASL synthesized by CDK (shared/workflow/generated) runs in
 * aws-local-stepfunctions with the real stage handlers, records in dynalite, artifacts in s3rver.
 * The worker is scripted (test/helpers/scripted-worker.ts) and uploads real artifacts as job pods
 * would; the kubernetes worker itself is tested in kubernetes-worker.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startTestService, type TestService } from '../helpers/service.js';
import { until } from '../helpers/until.js';
import { ScriptedWorker } from '../helpers/scripted-worker.js';

let svc: TestService;
let worker: ScriptedWorker;
let failRegisterOnce = new Set<string>();
let recipeId: string;
let imageId: string;
let keyId: string;

beforeAll(async () => {
  process.env.IMS_JOB_WORKER = 'scripted';
  process.env.IMS_STAGE_TIMEOUT_BUILD = '2';
  worker = new ScriptedWorker((bucket, key, body, metadata) => svc.putObject(bucket, key, body, metadata));
  svc = await startTestService({
    workers: { scripted: () => worker },
    workflow: {
      wrapTask: (state, handler) => async (input) => {
        const out = await handler(input);
        if (state === 'Register' && failRegisterOnce.delete(input.jobId)) throw new Error('lost the answer of register');
        return out;
      },
    },
  });
  await svc.putObject('ims', 'recipes/r1/recipe.tgz', 'recipe archive', { md5sum: 'abc' });
  recipeId = (await svc.request('POST', '/v3/recipes', { name: 'r1', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: 's3://ims/recipes/r1/recipe.tgz', type: 's3' } })).body.id;
  await svc.putObject('boot-images', 'src/rootfs', 'squashfs');
  await svc.putObject('boot-images', 'src/manifest.json', JSON.stringify({ version: '1.0', artifacts: [{ type: 'application/vnd.cray.image.rootfs.squashfs', md5: 'm', link: { path: 's3://boot-images/src/rootfs', type: 's3' } }] }));
  imageId = (await svc.request('POST', '/v3/images', { name: 'src', link: { path: 's3://boot-images/src/manifest.json', type: 's3' }, metadata: { key: 'team', value: 'hpc' } })).body.id;
  keyId = (await svc.request('POST', '/v3/public-keys', { name: 'k', public_key: 'ssh-ed25519 AAAA' })).body.id;
});

afterAll(async () => {
  await svc.stop();
  delete process.env.IMS_JOB_WORKER;
  delete process.env.IMS_STAGE_TIMEOUT_BUILD;
});

const post = (job_type: string, artifact_id: string, name: string, extra: Record<string, unknown> = {}) =>
  svc.request('POST', '/v3/jobs', { job_type, artifact_id, public_key_id: keyId, image_root_archive_name: name, ...extra });

const job = (id: string): Promise<any> => svc.request("GET", `/v3/jobs/${id}`).then((r) => r.body);
const ended = (j: any) => j?.status === 'success' || j?.status === 'error';

describe('job workflow', () => {
  test('a create job reaches success with a registered image and a history of every stage', async () => {
    const created = await post('create', recipeId, 'ok');
    expect(created.status).toBe(201);
    const done = await until(() => job(created.body.id), ended);
    expect(done.status).toBe('success');
    const image = (await svc.request('GET', `/v3/images/${done.resultant_image_id}`)).body;
    expect(image.name).toBe('ok');
    expect(image.link.path).toBe(`s3://boot-images/${done.resultant_image_id}/manifest.json`);
    const manifest = JSON.parse((await svc.getObjectText('boot-images', `${done.resultant_image_id}/manifest.json`))!);
    expect(manifest.version).toBe('1.0');
    expect(manifest.artifacts.map((a: { type: string }) => a.type)).toEqual([
      'application/vnd.cray.image.rootfs.squashfs',
      'application/vnd.cray.image.kernel',
      'application/vnd.cray.image.initrd',
      'application/vnd.cray.image.parameters.boot',
    ]);
    expect(await svc.exists('boot-images', `${done.resultant_image_id}/rootfs`)).toBe(true);
    const history = (await svc.request('GET', `/v3/jobs/${created.body.id}/history`)).body;
    const started = history.events.filter((e: { event: string }) => e.event === 'stage-started').map((e: { stage: string }) => e.stage);
    expect(started).toEqual(['prepare', 'build', 'ssh', 'package', 'register', 'cleanup']);
    const statuses = history.events.filter((e: { event: string }) => e.event === 'status').map((e: { status: string }) => e.status);
    expect(statuses).toEqual(['fetching_recipe', 'building_image', 'packaging_artifacts', 'success']);
    expect(worker.cleanups).toContainEqual({ jobId: created.body.id, outcome: 'success' });
  });

  test('a customize job reaches success; the new image keeps the source metadata', async () => {
    const created = await post('customize', imageId, 'ok');
    const done = await until(() => job(created.body.id), ended);
    expect(done.status).toBe('success');
    expect(worker.stagesOf(created.body.id)).toContain('ssh');
    const image = (await svc.request('GET', `/v3/images/${done.resultant_image_id}`)).body;
    expect(image.metadata).toEqual({ team: 'hpc' });
    expect((await svc.request('GET', `/v3/images/${imageId}`)).body.link.path).toBe('s3://boot-images/src/manifest.json');
  });

  test('a failing build ends in error with its reason, and the worker cleans up', async () => {
    const created = await post('create', recipeId, 'fail-build');
    const done = await until(() => job(created.body.id), ended);
    expect(done.status).toBe('error');
    expect(done.resultant_image_id).toBeNull();
    const history = (await svc.request('GET', `/v3/jobs/${created.body.id}/history`)).body;
    expect(history.reason).toContain('kiwi-ng exited with status 1');
    // The cleanup stage records the error first, then has the worker clean up.
    const cleanups = await until(async () => worker.cleanups, (c) => c.some((e) => e.jobId === created.body.id));
    expect(cleanups).toContainEqual({ jobId: created.body.id, outcome: 'error' });
  });

  test('a stage that runs past its time limit ends the job in error', async () => {
    const created = await post('create', recipeId, 'hang-build');
    const done = await until(() => job(created.body.id), ended, 15_000);
    expect(done.status).toBe('error');
    const history = (await svc.request('GET', `/v3/jobs/${created.body.id}/history`)).body;
    expect(history.reason).toBe('stage build timed out after 2 s');
  });

  test('a register stage retried after it already created the image leaves exactly one image', async () => {
    const before = (await svc.request('GET', '/v3/images')).body.length;
    failRegisterOnce = new Set();
    const created = await post('create', recipeId, 'ok', {});
    failRegisterOnce.add(created.body.id);
    const done = await until(() => job(created.body.id), ended);
    expect(done.status).toBe('success');
    expect(failRegisterOnce.has(created.body.id)).toBe(false);
    const images = (await svc.request('GET', '/v3/images')).body;
    expect(images.length).toBe(before + 1);
    expect(images.filter((i: { id: string }) => i.id === done.resultant_image_id)).toHaveLength(1);
  });

  test('DELETE during a run stops the workflow, cleans up and removes the record', async () => {
    const created = await post('customize', imageId, 'hang-ssh');
    const id = created.body.id;
    await until(() => job(id), (j) => j.status === 'waiting_on_user');
    expect((await svc.request('DELETE', `/v3/jobs/${id}`)).status).toBe(204);
    expect((await svc.request('GET', `/v3/jobs/${id}`)).status).toBe(404);
    expect(worker.cleanups).toContainEqual({ jobId: id, outcome: 'deleted' });
    const calls = worker.stagesOf(id).length;
    await new Promise((r) => setTimeout(r, 200));
    expect(worker.stagesOf(id).length).toBe(calls);
  });
});
