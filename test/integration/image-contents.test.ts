/**
 * Package lists, change reports and lineage over HTTP: jobs through the real workflow (the ASL in
 * aws-local-stepfunctions, the real stage handlers, s3rver) with a scripted worker that hands in
 * a package list (every job) and a change report (customize jobs) as its extras, as the local
 * and remote-node workers do; images uploaded by hand with such artifacts; the errors. The
 * reports' contents from real overlays are tested in change-report.test.ts and the worker tests.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createHash, randomUUID } from 'node:crypto';
import { startTestService, type TestService } from '../helpers/service.js';
import { until } from '../helpers/until.js';
import { ScriptedWorker } from '../helpers/scripted-worker.js';
import { BOOT, ROOTFS, uploadImage } from '../helpers/image-fixtures.js';
import type { CollectedArtifacts, StageProgress, WorkerJob } from '#shared/domain/worker-port.js';

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

/** Each job's image gets these packages: the name says which generation it is. */
const PACKAGES: Record<string, string> = {
  gen1: 'base-files|None|12.4|None|amd64|None|None\ncurl|None|7.88.1-10|None|amd64|None|None\nvim|2|9.0.1378|2|amd64|None|None\n',
  gen2: 'base-files|None|12.4|None|amd64|None|None\ncurl|None|7.88.1-10+deb12u5|None|amd64|None|None\nhtop|None|3.2.2-2|None|amd64|None|None\n',
  gen3: 'base-files|None|12.4|None|amd64|None|None\ncurl|None|7.88.1-10+deb12u5|None|amd64|None|None\n',
};

class ContentsWorker extends ScriptedWorker {
  override async advance(stage: 'prepare' | 'build' | 'ssh' | 'package', job: WorkerJob): Promise<StageProgress> {
    if (stage === 'package') {
      const id = job.job.id;
      const packages = PACKAGES[job.job.image_root_archive_name] ?? '';
      await svc.putObject(BOOT, `staging/${id}/packages`, packages, { md5sum: md5(packages) });
      if (job.job.job_type === 'customize') {
        const report = JSON.stringify({
          parent_id: job.job.artifact_id,
          job_id: id,
          files: { added: [{ path: 'etc/new.conf', type: 'file', size: 3 }], modified: [], deleted: [{ path: 'etc/hosts', type: 'file', size: 0 }] },
          packages: { added: [], removed: [], changed: [] },
        });
        await svc.putObject(BOOT, `staging/${id}/changes`, report, { md5sum: md5(report) });
      }
    }
    return super.advance(stage, job);
  }

  override async collect(job: WorkerJob): Promise<CollectedArtifacts> {
    const collected = (await super.collect(job)) as Extract<CollectedArtifacts, { kind: 'objects' }>;
    const base = `s3://${BOOT}/staging/${job.job.id}`;
    return { ...collected, extras: { packages: `${base}/packages`, ...(job.job.job_type === 'customize' ? { changes: `${base}/changes` } : {}) } };
  }
}

let svc: TestService;
let keyId: string;
let recipeId: string;
const images: Record<string, string> = {};
const jobs: Record<string, string> = {};

const job = (id: string): Promise<any> => svc.request('GET', `/v3/jobs/${id}`).then((r) => r.body);

async function runJob(jobType: 'create' | 'customize', artifactId: string, name: string): Promise<void> {
  const created = await svc.request('POST', '/v3/jobs', { job_type: jobType, artifact_id: artifactId, public_key_id: keyId, image_root_archive_name: name });
  expect(created.status).toBe(201);
  const done = await until(() => job(created.body.id), (j) => j?.status === 'success' || j?.status === 'error');
  expect(done.status).toBe('success');
  images[name] = done.resultant_image_id;
  jobs[name] = created.body.id;
}

beforeAll(async () => {
  process.env.IMS_JOB_WORKER = 'scripted';
  const worker = new ContentsWorker((bucket, key, body, metadata) => svc.putObject(bucket, key, body, metadata));
  svc = await startTestService({ workers: { scripted: () => worker } });
  keyId = (await svc.request('POST', '/v3/public-keys', { name: 'k', public_key: 'ssh-ed25519 AAAA' })).body.id;
  await svc.putObject('ims', 'recipes/contents/recipe.tgz', 'recipe archive', { md5sum: 'abc' });
  recipeId = (await svc.request('POST', '/v3/recipes', { name: 'contents-recipe', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: 's3://ims/recipes/contents/recipe.tgz', type: 's3' } })).body.id;
  // recipe → gen1 (create) → gen2 (customize) → gen3 (customize again)
  await runJob('create', recipeId, 'gen1');
  await runJob('customize', images.gen1, 'gen2');
  await runJob('customize', images.gen2, 'gen3');
}, 120_000);

afterAll(async () => {
  await svc.stop();
  delete process.env.IMS_JOB_WORKER;
});

const NOT_FOUND = 'Requested resource does not exist. Re-run request with valid ID.';

describe('package lists', () => {
  test.each(['/v3', '/v2', '', '/apis/ims/v3'])('every job image has its packages, sorted by name (%s)', async (prefix) => {
    const res = await svc.request('GET', `${prefix}/images/${images.gen1}/packages`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual([
      { arch: 'amd64', name: 'base-files', version: '12.4' },
      { arch: 'amd64', name: 'curl', version: '7.88.1-10' },
      { arch: 'amd64', name: 'vim', version: '2:9.0.1378-2' },
    ]);
  });

  test('compare_to gives the difference between two images', async () => {
    const res = await svc.request('GET', `/v3/images/${images.gen2}/packages?compare_to=${images.gen1}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      added: [{ name: 'htop', version: '3.2.2-2', arch: 'amd64' }],
      removed: [{ name: 'vim', version: '2:9.0.1378-2', arch: 'amd64' }],
      changed: [{ name: 'curl', arch: 'amd64', from: '7.88.1-10', to: '7.88.1-10+deb12u5' }],
    });
    const across = await svc.request('GET', `/v3/images/${images.gen3}/packages?compare_to=${images.gen1}`);
    expect(across.body).toEqual({
      added: [],
      removed: [{ name: 'vim', version: '2:9.0.1378-2', arch: 'amd64' }],
      changed: [{ name: 'curl', arch: 'amd64', from: '7.88.1-10', to: '7.88.1-10+deb12u5' }],
    });
  });

  test('an image uploaded by hand may carry a package list, as a JSON array too', async () => {
    const uploaded = await uploadImage(svc, { artifacts: [{ name: 'rootfs', type: ROOTFS }] });
    const list = JSON.stringify([{ name: 'zsh', version: '5.9', arch: 'amd64' }, { name: 'bash', version: '5.2', arch: 'amd64' }]);
    await svc.putObject(BOOT, `${uploaded.prefix}/packages`, list);
    const manifest = JSON.parse(uploaded.manifestText);
    manifest.artifacts.push({ link: { path: `s3://${BOOT}/${uploaded.prefix}/packages`, etag: md5(list), type: 's3' }, type: 'application/vnd.ims.image.packages', md5: md5(list) });
    await svc.putObject(BOOT, uploaded.manifestKey, JSON.stringify(manifest));
    const id = (await svc.request('POST', '/v3/images', { name: 'by-hand', link: uploaded.link })).body.id;
    expect((await svc.request('GET', `/v3/images/${id}/packages`)).body.map((p: any) => p.name)).toEqual(['bash', 'zsh']);
    // Made by hand: no change report, no lineage above it.
    const changes = await svc.request('GET', `/v3/images/${id}/changes`);
    expect(changes.status).toBe(404);
    expect(changes.body.detail).toMatch(/has no change report/);
    expect((await svc.request('GET', `/v3/images/${id}/lineage`)).body).toEqual({ id, ancestors: [], descendants: [] });
  });

  test('an image without a package list, an unknown image, a bad compare_to: clear problems', async () => {
    const uploaded = await uploadImage(svc, { artifacts: [{ name: 'rootfs', type: ROOTFS }] });
    const plain = (await svc.request('POST', '/v3/images', { name: 'plain', link: uploaded.link })).body.id;
    const none = await svc.request('GET', `/v3/images/${plain}/packages`);
    expect(none.status).toBe(404);
    expect(none.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(none.body.detail).toMatch(/has no package list/);
    const compared = await svc.request('GET', `/v3/images/${images.gen1}/packages?compare_to=${plain}`);
    expect(compared.status).toBe(404);
    const unknown = await svc.request('GET', `/v3/images/${randomUUID()}/packages`);
    expect(unknown.body).toEqual({ status: 404, title: 'Not Found', detail: NOT_FOUND });
    const bad = await svc.request('GET', `/v3/images/${images.gen1}/packages?compare_to=not-a-uuid`);
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/compare_to must be the id of one image/);
    expect((await svc.request('GET', `/v3/images/not-an-id/lineage`)).status).toBe(404);
  });
});

describe('change reports', () => {
  test('a customize job\'s image has its report, naming the image it came from and the job', async () => {
    const res = await svc.request('GET', `/v3/images/${images.gen2}/changes`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ parent_id: images.gen1, job_id: jobs.gen2, files: { added: [{ path: 'etc/new.conf' }], deleted: [{ path: 'etc/hosts' }] } });
  });

  test('a created image has no change report: 404', async () => {
    const res = await svc.request('GET', `/v3/images/${images.gen1}/changes`);
    expect(res.status).toBe(404);
    expect(res.body.detail).toMatch(/has no change report/);
  });

  test('both are artifacts in the manifest, with their types and MD5s', async () => {
    const image = (await svc.request('GET', `/v3/images/${images.gen2}`)).body;
    const key = image.link.path.replace(`s3://${BOOT}/`, '');
    const manifest = JSON.parse((await svc.getObjectText(BOOT, key))!);
    const types = manifest.artifacts.map((a: any) => a.type);
    expect(types).toEqual(expect.arrayContaining(['application/vnd.ims.image.packages', 'application/vnd.ims.image.changes+json']));
    for (const a of manifest.artifacts) expect(a.md5).toMatch(/^[0-9a-f]{32}$/);
    // The image record keeps exactly the original's fields.
    expect(Object.keys(image)).toEqual(['arch', 'created', 'id', 'link', 'metadata', 'name']);
  });
});

describe('lineage', () => {
  test('three generations, both ways: the recipe at the root', async () => {
    const res = await svc.request('GET', `/v3/images/${images.gen3}/lineage`);
    expect(res.status).toBe(200);
    expect(res.body.ancestors).toEqual([
      { id: images.gen2, name: 'gen2', kind: 'image', job_id: jobs.gen2, created: expect.any(String), deleted: false },
      { id: images.gen1, name: 'gen1', kind: 'image', job_id: jobs.gen1, created: expect.any(String), deleted: false },
      { id: recipeId, name: 'contents-recipe', kind: 'recipe', job_id: null, created: expect.any(String), deleted: false },
    ]);
    expect(res.body.descendants).toEqual([]);
    const top = (await svc.request('GET', `/v3/images/${images.gen1}/lineage`)).body;
    expect(top.ancestors.map((a: any) => a.kind)).toEqual(['recipe']);
    expect(top.descendants).toEqual([
      { id: images.gen2, name: 'gen2', kind: 'image', job_id: jobs.gen2, created: expect.any(String), deleted: false, parent_id: images.gen1 },
      { id: images.gen3, name: 'gen3', kind: 'image', job_id: jobs.gen3, created: expect.any(String), deleted: false, parent_id: images.gen2 },
    ]);
  });

  test('soft delete marks an image in the lineage of others; after undelete its report and list read again', async () => {
    expect((await svc.request('DELETE', `/v3/images/${images.gen2}`)).status).toBe(204);
    expect((await svc.request('GET', `/v3/images/${images.gen2}/changes`)).status).toBe(404);
    const lineage = (await svc.request('GET', `/v3/images/${images.gen3}/lineage`)).body;
    expect(lineage.ancestors[0]).toMatchObject({ id: images.gen2, deleted: true });
    expect((await svc.request('PATCH', `/v3/deleted/images/${images.gen2}`, { operation: 'undelete' })).status).toBe(204);
    expect((await svc.request('GET', `/v3/images/${images.gen2}/changes`)).body.parent_id).toBe(images.gen1);
    expect((await svc.request('GET', `/v3/images/${images.gen2}/packages`)).body.map((p: any) => p.name)).toEqual(['base-files', 'curl', 'htop']);
    expect((await svc.request('GET', `/v3/images/${images.gen3}/lineage`)).body.ancestors[0]).toMatchObject({ id: images.gen2, deleted: false });
  });
});
