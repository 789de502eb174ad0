/**
 * Soft delete and undelete of a large image cost a few small calls, whatever the artifacts'
 * sizes: nothing is copied. The artifact store here reports the rootfs at 50 GiB (more than one
 * CopyObject moves) and holds every copy forever, as a throttled S3 would, so a request that
 * copied would never answer. Every write step, in S3 and in the record store, can be made to
 * fail with everything after it (a crash there); the retry then finishes with no artifact lost,
 * moved or duplicated, and the record always says where its artifacts are.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { DependencyUnavailableError } from '#shared/domain/errors.js';
import type { ArtifactStore, RecordStore } from '#shared/domain/ports.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { BOOT, duplicateImageLink, md5, uploadImage, type UploadedImage } from '../helpers/image-fixtures.js';

const UNDELETE = { operation: 'undelete' };
const LARGE = 50 * 1024 ** 3;
const STORE_WRITES = new Set(['create', 'update', 'remove']);

let svc: TestService;
/** Names of the artifact-store and record-store writes the requests made, in order. */
const steps: string[] = [];
/** Steps from this index on fail (undefined: none does). */
let failFrom: number | undefined;

function faulty<T extends object>(target: T, counts: (name: string) => boolean, wrap?: (name: string, args: unknown[], result: unknown) => unknown): T {
  return new Proxy(target, {
    get(object, property) {
      const value = Reflect.get(object, property) as unknown;
      if (typeof value !== 'function') return value;
      const name = String(property);
      return async (...args: unknown[]) => {
        if (counts(name)) {
          if (failFrom !== undefined && steps.length >= failFrom) {
            steps.push(`${name} (failed)`);
            throw new DependencyUnavailableError('The artifact store (S3)');
          }
          steps.push(name);
        }
        if (name === 'copy') return new Promise(() => undefined); // throttled for ever
        const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(object, args);
        return wrap ? wrap(name, args, result) : result;
      };
    },
  });
}

beforeAll(async () => {
  svc = await startTestService();
  const artifacts: ArtifactStore = svc.app.artifacts;
  const store: RecordStore = svc.app.store;
  svc.app.artifacts = faulty(artifacts, () => true, (name, args, result) =>
    name === 'head' && result && (args[0] as { key: string }).key.endsWith('rootfs') ? { ...(result as object), size: LARGE } : result,
  );
  svc.app.store = faulty(store, (name) => STORE_WRITES.has(name));
});
afterAll(async () => {
  await svc.stop();
});

const keysOf = (u: UploadedImage) => [...u.artifacts.map((a) => a.key), u.manifestKey];
const deletedManifestKey = (id: string) => `deleted/${id}/deleted_manifest.json`;

/** Every artifact at its own key with its own content, and no copy of any under deleted/. */
async function expectArtifactsInPlace(u: UploadedImage) {
  for (const a of u.artifacts) expect(await svc.getObjectText(BOOT, a.key)).toBe(a.content);
  expect(await svc.getObjectText(BOOT, u.manifestKey)).toBe(u.manifestText);
  expect(await svc.listKeys(BOOT, `deleted/${u.prefix}/`)).toEqual([]);
  expect(await svc.listKeys(BOOT, `${u.prefix}/`)).toEqual(keysOf(u).sort());
}

async function expectDeleted(id: string, u: UploadedImage) {
  const deleted = await svc.request('GET', `/v3/deleted/images/${id}`);
  expect(deleted.status).toBe(200);
  expect(deleted.body.link).toEqual({ path: `s3://${BOOT}/${deletedManifestKey(id)}`, type: 's3', etag: '' });
  expect((await svc.request('GET', `/v3/images/${id}`)).status).toBe(404);
  const listed = JSON.parse((await svc.getObjectText(BOOT, deletedManifestKey(id)))!);
  expect(listed.in_place).toBe(true);
  expect(listed.artifacts.map((a: { link: { path: string } }) => a.link.path)).toEqual(keysOf(u).map((k) => `s3://${BOOT}/${k}`));
  await expectArtifactsInPlace(u);
  // The deleted image still owns the objects: nobody else may link to them.
  const dup = await svc.request('POST', '/v3/images', { name: 'dup', link: u.link });
  expect(dup.body.detail).toBe(duplicateImageLink(u.manifestPath, id));
}

async function expectLive(id: string, u: UploadedImage) {
  const live = await svc.request('GET', `/v3/images/${id}`);
  expect(live.status).toBe(200);
  expect(live.body.link).toEqual({ etag: md5(u.manifestText), path: u.manifestPath, type: 's3' });
  expect((await svc.request('GET', `/v3/deleted/images/${id}`)).status).toBe(404);
  await expectArtifactsInPlace(u);
}

async function newImage() {
  const uploaded = await uploadImage(svc);
  const res = await svc.request('POST', '/v3/images', { name: 'large', link: uploaded.link });
  expect(res.status).toBe(201);
  return { uploaded, id: res.body.id as string };
}

/** Runs `request` with every step from `at` on failing; returns whether it got that far. */
async function crashAt(at: number, request: () => Promise<{ status: number }>) {
  steps.length = 0;
  failFrom = at;
  try {
    const res = await request();
    const crashed = steps.some((s) => s.endsWith('(failed)'));
    expect(crashed ? [500, 503] : [204]).toContain(res.status);
    return crashed;
  } finally {
    failFrom = undefined;
  }
}

describe('soft delete of a 50 GiB image', () => {
  test('copies nothing: a few calls, none of them a copy, and the artifacts stay where they are', async () => {
    const { uploaded, id } = await newImage();
    steps.length = 0;
    expect((await svc.request('DELETE', `/v3/images/${id}`)).status).toBe(204);
    expect(steps).toEqual(['readText', 'head', 'head', 'head', 'head', 'putJson', 'update']);
    await expectDeleted(id, uploaded);
    steps.length = 0;
    expect((await svc.request('PATCH', `/v3/deleted/images/${id}`, UNDELETE)).status).toBe(204);
    expect(steps).toEqual(['readText', 'head', 'update', 'remove']);
    await expectLive(id, uploaded);
    expect(await svc.exists(BOOT, deletedManifestKey(id))).toBe(false);
  });

  test('a crash at any step, then the request repeated: deleted, nothing lost or duplicated', async () => {
    for (let at = 0; ; at++) {
      const { uploaded, id } = await newImage();
      const crashed = await crashAt(at, () => svc.request('DELETE', `/v3/images/${id}`));
      // Whatever the crash left, the record says where the artifacts are: they never moved.
      await expectArtifactsInPlace(uploaded);
      const stillLive = (await svc.request('GET', `/v3/images/${id}`)).status === 200;
      expect((await svc.request('DELETE', `/v3/images/${id}`)).status).toBe(stillLive ? 204 : 404);
      await expectDeleted(id, uploaded);
      if (!crashed) break;
    }
  });

  test('a crash at any step of the undelete, then the request repeated: live, nothing lost or duplicated', async () => {
    for (let at = 0; ; at++) {
      const { uploaded, id } = await newImage();
      expect((await svc.request('DELETE', `/v3/images/${id}`)).status).toBe(204);
      const crashed = await crashAt(at, () => svc.request('PATCH', `/v3/deleted/images/${id}`, UNDELETE));
      await expectArtifactsInPlace(uploaded);
      const stillDeleted = (await svc.request('GET', `/v3/deleted/images/${id}`)).status === 200;
      expect((await svc.request('PATCH', `/v3/deleted/images/${id}`, UNDELETE)).status).toBe(stillDeleted ? 204 : 404);
      await expectLive(id, uploaded);
      // A deleted manifest a crash left behind is rewritten by the next soft delete, which round-trips cleanly.
      expect((await svc.request('DELETE', `/v3/images/${id}`)).status).toBe(204);
      await expectDeleted(id, uploaded);
      expect((await svc.request('PATCH', `/v3/deleted/images/${id}`, UNDELETE)).status).toBe(204);
      await expectLive(id, uploaded);
      expect(await svc.exists(BOOT, deletedManifestKey(id))).toBe(false);
      if (!crashed) break;
    }
  });

  test('concurrent soft deletes and undeletes of the large image leave it in one state, its artifacts in place', async () => {
    const { uploaded, id } = await newImage();
    for (let round = 0; round < 4; round++) {
      const responses = await Promise.all([
        svc.request('DELETE', `/v3/images/${id}`),
        svc.request('PATCH', `/v3/deleted/images/${id}`, UNDELETE),
        svc.request('DELETE', `/v3/images/${id}`),
        svc.request('PATCH', `/v3/deleted/images/${id}`, UNDELETE),
      ]);
      for (const r of responses) expect([204, 404]).toContain(r.status);
      if ((await svc.request('GET', `/v3/images/${id}`)).status === 200) await expectLive(id, uploaded);
      else await expectDeleted(id, uploaded);
    }
    expect(steps).not.toContain('copy');
  });
});
