/**
 * Event-triggered recipes and builds: archives uploaded with the SDK to the embedded S3, whose
 * events the embedded runtime hands to functions/events/recipe-upload.ts, as S3 does deployed.
 * Re-deliveries are the captured event handed to the handler again. Builds run on the scripted
 * worker of job-workflow.test.ts.
 */
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { CopyObjectCommand } from '@aws-sdk/client-s3';
import type { S3Event } from 'aws-lambda';
import { handleS3Event } from '#functions/events/recipe-upload.js';
import type { RecordStore } from '#shared/domain/ports.js';
import { ScriptedWorker } from '../helpers/scripted-worker.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { untilWith } from '../helpers/until.js';

const until = untilWith({ ms: 10_000, everyMs: 25 });

let svc: TestService;
let keyId: string;

beforeAll(async () => {
  process.env.IMS_JOB_WORKER = 'scripted';
  const worker = new ScriptedWorker((bucket, key, body, metadata) => svc.putObject(bucket, key, body, metadata));
  svc = await startTestService({ workers: { scripted: () => worker } });
  keyId = (await svc.request('POST', '/v3/public-keys', { name: 'builder', public_key: 'ssh-ed25519 AAAA' })).body.id;
});

afterAll(async () => {
  await svc.stop();
  delete process.env.IMS_JOB_WORKER;
});

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

/** Metadata that describes a valid recipe named `name`. */
const described = (name: string, extra: Record<string, string> = {}) => ({
  'ims-name': name,
  'ims-recipe-type': 'kiwi-ng',
  'ims-linux-distribution': 'sles15',
  ...extra,
});

/** The scripted worker ends a 'fail-build' job at once: these tests count jobs, they need not run. */
const buildWith = (image = 'fail-build') => ({ 'ims-build': 'true', 'ims-public-key-id': keyId, 'ims-image-name': image });

/**
 * Resolves with the next event the embedded S3 emits about `key` (the embedded handler gets it
 * too). Running builds upload artifacts meanwhile, so other events come and go.
 */
function nextEvent(bucket: string, key: string): Promise<S3Event> {
  return new Promise((resolve) => {
    const listener = (event: S3Event) => {
      const { s3 } = event.Records[0];
      if (s3.bucket.name !== bucket || s3.object.key !== key) return;
      svc.s3Events!.off('event', listener);
      resolve(event);
    };
    svc.s3Events!.on('event', listener);
  });
}

/** Uploads and waits until the embedded handler is done with the event; returns the event. */
async function upload(key: string, body: string, metadata: Record<string, string> = {}, bucket = 'ims'): Promise<S3Event> {
  const event = nextEvent(bucket, key);
  await svc.putObject(bucket, key, body, metadata);
  await svc.s3EventsSettled();
  return event;
}

const recipesNamed = async (name: string): Promise<any[]> => (await svc.request('GET', '/v3/recipes')).body.filter((r: { name: string }) => r.name === name);
const jobsOf = async (recipeId: string): Promise<any[]> =>
  (await svc.request('GET', '/v3/jobs')).body.filter((j: { artifact_id: string }) => j.artifact_id === recipeId);
const countRecipes = async () => (await svc.request('GET', '/v3/recipes')).body.length;

/** Makes one store method fail once, the way a crashed delivery would stop there. */
function crashOnce<K extends 'create' | 'claim'>(method: K, when: (...args: Parameters<RecordStore[K]>) => boolean): () => boolean {
  const store = svc.app.store;
  const original = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
  let crashed = false;
  (store as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
    if (!crashed && when(...(args as Parameters<RecordStore[K]>))) {
      crashed = true;
      throw new Error('simulated crash');
    }
    return original(...args);
  };
  return () => {
    (store as unknown as Record<string, unknown>)[method] = original;
    return crashed;
  };
}

describe('registering a recipe from an upload', () => {
  test('the fields come from the object metadata; the link is the object with its ETag', async () => {
    const name = `meta-${randomUUID()}`;
    const key = `recipes/${name}/recipe.tgz`;
    const dictionary = [{ key: 'CSM_RELEASE', value: '1.6' }];
    await upload(key, 'archive v1', described(name, { 'ims-arch': 'aarch64', 'ims-require-dkms': 'false', 'ims-template-dictionary': JSON.stringify(dictionary) }));
    const [recipe, ...others] = await recipesNamed(name);
    expect(others).toEqual([]);
    expect(recipe).toMatchObject({
      recipe_type: 'kiwi-ng',
      linux_distribution: 'sles15',
      arch: 'aarch64',
      require_dkms: false,
      template_dictionary: dictionary,
      link: { path: `s3://ims/${key}`, etag: md5('archive v1'), type: 's3' },
    });
    expect(await jobsOf(recipe.id)).toEqual([]);
  });

  test('the fields come from the sidecar <key>.json; metadata overrides it field by field', async () => {
    const name = `sidecar-${randomUUID()}`;
    const key = `recipes/${name}/recipe.tar.gz`;
    await svc.putObject('ims', `${key}.json`, JSON.stringify({ name, recipe_type: 'packer', linux_distribution: 'centos7', arch: 'x86_64', template_dictionary: [{ key: 'A', value: 'B' }] }));
    await upload(key, 'sidecar archive', { 'ims-arch': 'aarch64' });
    const [recipe, ...others] = await recipesNamed(name);
    expect(others).toEqual([]);
    expect(recipe).toMatchObject({ recipe_type: 'packer', linux_distribution: 'centos7', arch: 'aarch64', require_dkms: true, template_dictionary: [{ key: 'A', value: 'B' }] });
  });

  test('an archive with neither ims-* metadata nor a sidecar is left for POST /recipes', async () => {
    const key = `recipes/${randomUUID()}/recipe.tgz`;
    const before = await countRecipes();
    await upload(key, 'plain archive', { md5sum: md5('plain archive') });
    expect(await countRecipes()).toBe(before);
    const posted = await svc.request('POST', '/v3/recipes', { name: 'by-post', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: `s3://ims/${key}`, type: 's3' } });
    expect(posted.status).toBe(201);
  });

  test('uploads outside the prefix, with another suffix, to another bucket or by copy register nothing', async () => {
    const name = `ignored-${randomUUID()}`;
    const before = await countRecipes();
    const events = [
      await upload(`other/${name}/recipe.tgz`, 'x', described(name)),
      await upload(`recipes/${name}/recipe.zip`, 'x', described(name)),
      await upload(`recipes/${name}/recipe.tgz.bak`, 'x', described(name)),
      await upload(`recipes/${name}/recipe.tgz`, 'x', described(name), 'boot-images'),
    ];
    const copied = nextEvent('ims', `recipes/${name}/copy.tgz`);
    await svc.s3.send(new CopyObjectCommand({ Bucket: 'ims', Key: `recipes/${name}/copy.tgz`, CopySource: `ims/other/${name}/recipe.tgz` }));
    await svc.s3EventsSettled();
    events.push(await copied);
    for (const event of events) expect(await handleS3Event(event, svc.app)).toEqual([{ result: 'ignored' }]);
    expect(await countRecipes()).toBe(before);
  });

  test('invalid metadata is rejected with the reasons of POST /recipes; nothing is written and nothing throws', async () => {
    const before = await countRecipes();
    const cases: [Record<string, string>, Record<string, string[]>][] = [
      [{ 'ims-name': 'bad', 'ims-recipe-type': 'docker' }, { recipe_type: ['Recipe type must be one of: kiwi-ng, packer.'], linux_distribution: ['Missing data for required field.'] }],
      [described('bad', { 'ims-arch': 'sparc', 'ims-recipetype': 'packer' }), { arch: ['Must be one of: aarch64, x86_64.'], recipetype: ['Unknown field.'] }],
      [described('bad', { 'ims-template-dictionary': '[{"key": "A"' }), { template_dictionary: ['Not valid JSON.'] }],
      [described('bad', { 'ims-build': 'true' }), { public_key_id: ['Missing data for required field.'] }],
      [described('bad', { 'ims-build': 'true', 'ims-public-key-id': randomUUID() }), { public_key_id: [expect.stringContaining('No IMS public-key record found') as unknown as string] }],
      [described('bad', { 'ims-build': 'maybe' }), { build: ['Not a valid boolean.'] }],
    ];
    for (const [metadata, errors] of cases) {
      const event = await upload(`recipes/${randomUUID()}/recipe.tgz`, 'bad archive', metadata);
      expect(await handleS3Event(event, svc.app)).toEqual([{ result: 'rejected', errors }]);
    }
    expect(await countRecipes()).toBe(before);
  });
});

describe('builds and exactly-once handling', () => {
  test('an upload that asks for a build starts exactly one create job, which runs to success', async () => {
    const name = `build-${randomUUID()}`;
    await upload(`recipes/${name}/recipe.tgz`, 'buildable', described(name, buildWith('ok')));
    const [recipe] = await recipesNamed(name);
    const jobs = await jobsOf(recipe.id);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ job_type: 'create', public_key_id: keyId, image_root_archive_name: 'ok', enable_debug: false });
    const done = await until(() => svc.request('GET', `/v3/jobs/${jobs[0].id}`).then((r) => r.body), (j) => j.status === 'success' || j.status === 'error');
    expect(done.status).toBe('success');
  });

  test('the same event delivered again, also while the first delivery runs, yields one recipe and one job', async () => {
    const name = `twice-${randomUUID()}`;
    const key = `recipes/${name}/recipe.tgz`;
    const event = nextEvent('ims', key);
    await svc.putObject('ims', key, 'delivered twice', described(name, buildWith()));
    // The embedded handler is still at work on the first delivery.
    const concurrent = await Promise.all([handleS3Event(await event, svc.app), handleS3Event(await event, svc.app)]);
    await svc.s3EventsSettled();
    const [recipe, ...others] = await recipesNamed(name);
    expect(others).toEqual([]);
    expect(await jobsOf(recipe.id)).toHaveLength(1);
    for (const [outcome] of concurrent) expect(['registered', 'repeat']).toContain(outcome.result);
    expect(await handleS3Event(await event, svc.app)).toEqual([{ result: 'repeat' }]);
    expect(await recipesNamed(name)).toHaveLength(1);
    expect(await jobsOf(recipe.id)).toHaveLength(1);
  });

  test('a delivery that crashed before its job is finished by the re-delivery: the same recipe, one job', async () => {
    const name = `crash-job-${randomUUID()}`;
    const restore = crashOnce('create', (kind) => kind === 'job');
    const event = await upload(`recipes/${name}/recipe.tgz`, 'crashes once', described(name, buildWith()));
    expect(restore()).toBe(true);
    const [recipe] = await recipesNamed(name);
    expect(await jobsOf(recipe.id)).toEqual([]);
    const [outcome] = await handleS3Event(event, svc.app);
    expect(outcome).toMatchObject({ result: 'registered', recipeId: recipe.id });
    expect(await recipesNamed(name)).toHaveLength(1);
    expect(await jobsOf(recipe.id)).toHaveLength(1);
  });

  test('a delivery that crashed after its job is finished by the re-delivery without a second job', async () => {
    const name = `crash-done-${randomUUID()}`;
    const restore = crashOnce('claim', (scope) => scope === 'recipe-upload-done');
    const event = await upload(`recipes/${name}/recipe.tgz`, 'crashes at the end', described(name, buildWith()));
    expect(restore()).toBe(true);
    const [recipe] = await recipesNamed(name);
    const [job] = await jobsOf(recipe.id);
    expect(await handleS3Event(event, svc.app)).toEqual([{ result: 'registered', recipeId: recipe.id, jobId: job.id }]);
    expect(await jobsOf(recipe.id)).toHaveLength(1);
    expect(await handleS3Event(event, svc.app)).toEqual([{ result: 'repeat' }]);
  });

  test('overwriting the archive updates the existing recipe and may start a new build', async () => {
    const name = `over-${randomUUID()}`;
    const key = `recipes/${name}/recipe.tgz`;
    const first = await upload(key, 'version 1', described(name));
    const [v1] = await recipesNamed(name);
    await upload(key, 'version 2', described(name, { 'ims-arch': 'aarch64', ...buildWith() }));
    const [v2, ...others] = await recipesNamed(name);
    expect(others).toEqual([]);
    expect(v2).toMatchObject({ id: v1.id, created: v1.created, arch: 'aarch64', link: { path: `s3://ims/${key}`, etag: md5('version 2') } });
    expect(await jobsOf(v1.id)).toHaveLength(1);
    // The first upload's event, delivered late, is about content that is gone.
    expect(await handleS3Event(first, svc.app)).toEqual([{ result: 'superseded' }]);
    await upload(key, 'version 3', described(name, buildWith()));
    expect(await jobsOf(v1.id)).toHaveLength(2);
    expect(await recipesNamed(name)).toHaveLength(1);
  });

  test('undeleting a built recipe copies its archive back without a new recipe or build', async () => {
    const name = `undelete-${randomUUID()}`;
    await upload(`recipes/${name}/recipe.tgz`, 'undeleted', described(name, buildWith()));
    const [recipe] = await recipesNamed(name);
    expect((await svc.request('DELETE', `/v3/recipes/${recipe.id}`)).status).toBe(204);
    expect((await svc.request('PATCH', `/v3/deleted/recipes/${recipe.id}`, { operation: 'undelete' })).status).toBe(204);
    await svc.s3EventsSettled();
    expect(await recipesNamed(name)).toHaveLength(1);
    expect(await jobsOf(recipe.id)).toHaveLength(1);
  });
});
