/**
 * Image deletion through the embedded server with real artifacts in the embedded S3: v2 hard
 * delete with cascade (§6.5), v3 soft delete (§6.6, in place: nothing is moved), undelete and
 * purge (§7.3), the bulk operations (§7.4), and the link a soft-deleted image keeps.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { startTestService, type TestService, type TestResponse } from '../helpers/service.js';
import { BOOT, MANIFEST, RETRY, duplicateImageLink, md5, pyRepr, removeObject, uploadImage, type UploadedImage } from '../helpers/image-fixtures.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$/;
const NOT_FOUND = 'Requested resource does not exist. Re-run request with valid ID.';
const UNDELETE = { operation: 'undelete' };

function expectNoContent(res: TestResponse) {
  expect(res.status).toBe(204);
  expect(res.text).toBe('');
}

async function post(body: Record<string, unknown>) {
  const res = await svc.request('POST', '/v3/images', body);
  expect(res.status).toBe(201);
  return res.body;
}

async function newImage(options: Parameters<typeof uploadImage>[1] = {}, extra: Record<string, unknown> = {}) {
  const uploaded = await uploadImage(svc, options);
  const record = await post({ name: `image ${uploaded.prefix}`, link: uploaded.link, arch: 'aarch64', metadata: { owner: 'me' }, ...extra });
  return { uploaded, record };
}

async function ids(path: string): Promise<string[]> {
  const res = await svc.request('GET', path);
  expect(res.status).toBe(200);
  return res.body.map((r: { id: string }) => r.id);
}

/** Where the record is: 'live', 'deleted' or 'gone' — and never both. */
async function whereIs(id: string): Promise<'live' | 'deleted' | 'gone'> {
  const live = (await ids('/v3/images')).includes(id);
  const deleted = (await ids('/v3/deleted/images')).includes(id);
  expect(live && deleted).toBe(false);
  const item = await svc.request('GET', `/v3/images/${id}`);
  const deletedItem = await svc.request('GET', `/v3/deleted/images/${id}`);
  expect([item.status, deletedItem.status].sort()).toEqual(live || deleted ? [200, 404] : [404, 404]);
  return live ? 'live' : deleted ? 'deleted' : 'gone';
}

async function allExist(bucket: string, keys: string[]): Promise<boolean[]> {
  return Promise.all(keys.map((k) => svc.exists(bucket, k)));
}

const keysOf = (u: UploadedImage) => [...u.artifacts.map((a) => a.key), u.manifestKey];
const deletedManifestKey = (id: string) => `deleted/${id}/deleted_manifest.json`;

/** The deleted_manifest.json of an uploaded image soft-deleted in place: artifacts then the manifest, where they are. */
function expectedDeletedManifestArtifacts(u: UploadedImage) {
  return [
    ...u.artifacts.map((a) => ({
      type: a.type,
      ...(a.md5 ? { md5: a.md5 } : {}),
      link: { etag: md5(a.content), path: `s3://${u.bucket}/${a.key}`, type: 's3' },
    })),
    { type: MANIFEST, link: { etag: md5(u.manifestText), path: `s3://${u.bucket}/${u.manifestKey}`, type: 's3' } },
  ];
}

describe('v2 / unversioned DELETE (hard)', () => {
  test('cascade by default removes every linked artifact and the manifest, and nothing else', async () => {
    const { uploaded, record } = await newImage();
    await svc.putObject(BOOT, `${uploaded.prefix}/unrelated`, 'keep me');
    expect(await allExist(BOOT, keysOf(uploaded))).toEqual([true, true, true, true]);
    expectNoContent(await svc.request('DELETE', `/v2/images/${record.id}`));
    expect(await allExist(BOOT, keysOf(uploaded))).toEqual([false, false, false, false]);
    expect(await svc.listKeys(BOOT, `${uploaded.prefix}/`)).toEqual([`${uploaded.prefix}/unrelated`]);
    expect(await svc.listKeys(BOOT, `deleted/${uploaded.prefix}/`)).toEqual([]);
    expect(await whereIs(record.id)).toBe('gone');
    expect((await svc.request('DELETE', `/v2/images/${record.id}`)).status).toBe(404);
  });

  test.each(['TRUE', 'yes', 't', '1'])('unversioned DELETE with cascade=%s removes the artifacts', async (cascade) => {
    const { uploaded, record } = await newImage();
    expectNoContent(await svc.request('DELETE', `/images/${record.id}?cascade=${cascade}`));
    expect(await allExist(BOOT, keysOf(uploaded))).toEqual([false, false, false, false]);
    expect(await whereIs(record.id)).toBe('gone');
  });

  test.each(['False', 'no', '0', 'nonsense', ''])('cascade=%s keeps the artifacts and removes the record for good', async (cascade) => {
    const { uploaded, record } = await newImage();
    expectNoContent(await svc.request('DELETE', `/v2/images/${record.id}?cascade=${cascade}`));
    expect(await allExist(BOOT, keysOf(uploaded))).toEqual([true, true, true, true]);
    expect(await whereIs(record.id)).toBe('gone');
    // The link is free again.
    expect((await svc.request('POST', '/v2/images', { name: 'again', link: uploaded.link })).status).toBe(201);
  });

  test('manifest missing with cascade → still 204 and the record is gone (the original answered 500)', async () => {
    const { uploaded, record } = await newImage();
    await removeObject(svc, BOOT, uploaded.manifestKey);
    expectNoContent(await svc.request('DELETE', `/v2/images/${record.id}`));
    expect(await whereIs(record.id)).toBe('gone');
    // Nothing the manifest could not name was touched.
    expect(await allExist(BOOT, uploaded.artifacts.map((a) => a.key))).toEqual([true, true, true]);
  });

  test('manifest that is not JSON with cascade → 204, record gone, the unreadable manifest removed', async () => {
    const { uploaded, record } = await newImage();
    await svc.putObject(BOOT, uploaded.manifestKey, 'garbage');
    expectNoContent(await svc.request('DELETE', `/images/${record.id}`));
    expect(await whereIs(record.id)).toBe('gone');
    expect(await svc.exists(BOOT, uploaded.manifestKey)).toBe(false);
  });

  test('image without a link: hard delete works', async () => {
    const record = await post({ name: 'no link' });
    expectNoContent(await svc.request('DELETE', `/v2/images/${record.id}`));
    expect(await whereIs(record.id)).toBe('gone');
  });

  test('collection DELETE removes every live image and its artifacts, and leaves soft-deleted images and theirs alone', async () => {
    const softly = await newImage();
    expectNoContent(await svc.request('DELETE', `/v3/images/${softly.record.id}`));
    const a = await newImage();
    const b = await newImage();
    const c = await post({ name: 'no link' });
    expectNoContent(await svc.request('DELETE', '/v2/images'));
    expect(await ids('/v3/images')).toEqual([]);
    for (const { uploaded } of [a, b]) expect(await allExist(BOOT, keysOf(uploaded))).toEqual([false, false, false, false]);
    expect(await whereIs(c.id)).toBe('gone');
    expect(await whereIs(softly.record.id)).toBe('deleted');
    expect(await svc.exists(BOOT, deletedManifestKey(softly.record.id))).toBe(true);
    expect(await allExist(BOOT, keysOf(softly.uploaded))).toEqual([true, true, true, true]);
    // cascade=false on the collection keeps the artifacts.
    const d = await newImage();
    expectNoContent(await svc.request('DELETE', '/images?cascade=false'));
    expect(await whereIs(d.record.id)).toBe('gone');
    expect(await allExist(BOOT, keysOf(d.uploaded))).toEqual([true, true, true, true]);
    // Clean up the soft-deleted one for the later tests.
    expectNoContent(await svc.request('DELETE', `/v3/deleted/images/${softly.record.id}`));
  });
});

describe('v3 DELETE (soft) — §6.6', () => {
  test('every artifact and the manifest stay where they are; deleted_manifest.json lists them there (md5 or not)', async () => {
    const { uploaded, record } = await newImage();
    // cascade is ignored by v3.
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}?cascade=false`));

    expect(await allExist(BOOT, keysOf(uploaded))).toEqual([true, true, true, true]);
    expect(await svc.listKeys(BOOT, `deleted/${uploaded.prefix}/`)).toEqual([]);
    for (const a of uploaded.artifacts) expect(await svc.getObjectText(BOOT, a.key)).toBe(a.content);
    expect(await svc.getObjectText(BOOT, uploaded.manifestKey)).toBe(uploaded.manifestText);

    const text = await svc.getObjectText(BOOT, deletedManifestKey(record.id));
    expect(text).toBeDefined();
    const deletedManifest = JSON.parse(text!);
    expect(Object.keys(deletedManifest).sort()).toEqual(['artifacts', 'created', 'in_place', 'version']);
    expect(deletedManifest.in_place).toBe(true);
    expect(deletedManifest.version).toBe('1.0');
    expect(deletedManifest.created).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(deletedManifest.artifacts).toEqual(expectedDeletedManifestArtifacts(uploaded));
    // The initrd has no md5 and is listed all the same (the original orphaned it).
    expect(deletedManifest.artifacts.filter((a: { md5?: string }) => a.md5 === undefined).map((a: { type: string }) => a.type)).toEqual([
      'application/vnd.cray.image.initrd',
      MANIFEST,
    ]);

    const deleted = await svc.request('GET', `/v3/deleted/images/${record.id}`);
    expect(deleted.status).toBe(200);
    expect(Object.keys(deleted.body).sort()).toEqual(['arch', 'created', 'deleted', 'id', 'link', 'metadata', 'name']);
    expect(deleted.body).toEqual({
      ...record,
      link: { path: `s3://${BOOT}/${deletedManifestKey(record.id)}`, type: 's3', etag: '' },
      deleted: expect.stringMatching(TIMESTAMP),
    });
    expect(deleted.body.deleted >= record.created).toBe(true);
    expect(deletedManifest.created.replace(' ', 'T')).toBe(deleted.body.deleted.slice(0, 19));
    expect((await svc.request('GET', '/v3/deleted/images')).body).toContainEqual(deleted.body);
    expect(await whereIs(record.id)).toBe('deleted');
    // Deleting it again through the live route: 404.
    expect((await svc.request('DELETE', `/v3/images/${record.id}`)).status).toBe(404);
  });

  test('artifacts in another bucket stay in that bucket; deleted_manifest.json still goes to boot-images', async () => {
    const { uploaded, record } = await newImage({ bucket: 'ims' });
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}`));
    expect(await allExist('ims', keysOf(uploaded))).toEqual([true, true, true, true]);
    expect(await svc.listKeys('ims', `deleted/${uploaded.prefix}/`)).toEqual([]);
    expect(await svc.listKeys(BOOT, `deleted/${uploaded.prefix}/`)).toEqual([]);
    const deletedManifest = JSON.parse((await svc.getObjectText(BOOT, deletedManifestKey(record.id)))!);
    expect(deletedManifest.artifacts).toEqual(expectedDeletedManifestArtifacts(uploaded));
    // Undelete links the record to them again.
    expectNoContent(await svc.request('PATCH', `/v3/deleted/images/${record.id}`, UNDELETE));
    expect(await allExist('ims', keysOf(uploaded))).toEqual([true, true, true, true]);
    expect(await svc.listKeys('ims', `deleted/${uploaded.prefix}/`)).toEqual([]);
    expect((await svc.request('GET', `/v3/images/${record.id}`)).body.link.path).toBe(uploaded.manifestPath);
  });

  test('a listed artifact missing from S3 is left out, and does not stop the others', async () => {
    const { uploaded, record } = await newImage();
    const [rootfs, kernel, initrd] = uploaded.artifacts;
    await removeObject(svc, BOOT, kernel.key);
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}`));
    const deletedManifest = JSON.parse((await svc.getObjectText(BOOT, deletedManifestKey(record.id)))!);
    expect(deletedManifest.artifacts.map((a: { link: { path: string } }) => a.link.path)).toEqual([
      `s3://${BOOT}/${rootfs.key}`,
      `s3://${BOOT}/${initrd.key}`,
      `s3://${BOOT}/${uploaded.manifestKey}`,
    ]);
    expectNoContent(await svc.request('PATCH', `/v3/deleted/images/${record.id}`, UNDELETE));
    expect(await allExist(BOOT, keysOf(uploaded))).toEqual([true, false, true, true]);
  });

  test('manifest missing: the record is soft-deleted with its original link, and undelete restores it as it was', async () => {
    const { uploaded, record } = await newImage();
    await removeObject(svc, BOOT, uploaded.manifestKey);
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}`));
    const deleted = (await svc.request('GET', `/v3/deleted/images/${record.id}`)).body;
    expect(deleted).toEqual({ ...record, deleted: expect.stringMatching(TIMESTAMP) });
    expect(await svc.exists(BOOT, deletedManifestKey(record.id))).toBe(false);
    // The artifacts the manifest would have named were not touched.
    expect(await allExist(BOOT, uploaded.artifacts.map((a) => a.key))).toEqual([true, true, true]);
    expectNoContent(await svc.request('PATCH', `/v3/deleted/images/${record.id}`, UNDELETE));
    expect((await svc.request('GET', `/v3/images/${record.id}`)).body).toEqual(record);
  });

  test('unknown id → 404; a deleted id is not served by the live routes, a live id not by deleted/', async () => {
    expect((await svc.request('DELETE', `/v3/images/${randomUUID()}`)).status).toBe(404);
    const record = await post({ name: 'x' });
    for (const method of ['GET', 'DELETE']) expect((await svc.request(method, `/v3/deleted/images/${record.id}`)).status).toBe(404);
    expect((await svc.request('PATCH', `/v3/deleted/images/${record.id}`, UNDELETE)).status).toBe(404);
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}`));
    for (const prefix of ['/v3', '/v2', '']) expect((await svc.request('GET', `${prefix}/images/${record.id}`)).status).toBe(404);
    expect((await svc.request('DELETE', `/v2/images/${record.id}`)).status).toBe(404);
  });
});

describe('undelete — §7.3', () => {
  test('the record links to its manifest again, at its exact key; deleted_manifest.json removed; nothing copied', async () => {
    const { uploaded, record } = await newImage();
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}`));
    const res = await svc.request('PATCH', `/v3/deleted/images/${record.id}`, UNDELETE);
    expectNoContent(res);

    for (const a of uploaded.artifacts) expect(await svc.getObjectText(BOOT, a.key)).toBe(a.content);
    expect(await svc.getObjectText(BOOT, uploaded.manifestKey)).toBe(uploaded.manifestText);
    expect(await svc.listKeys(BOOT, `${uploaded.prefix}/`)).toEqual(keysOf(uploaded).sort());
    expect(await svc.listKeys(BOOT, `deleted/${uploaded.prefix}/`)).toEqual([]);
    expect(await svc.listKeys(BOOT, `deleted/${record.id}/`)).toEqual([]);

    const live = await svc.request('GET', `/v3/images/${record.id}`);
    expect(live.status).toBe(200);
    expect(Object.keys(live.body).sort()).toEqual(['arch', 'created', 'id', 'link', 'metadata', 'name']);
    expect(live.body).toEqual({ ...record, link: { etag: md5(uploaded.manifestText), path: uploaded.manifestPath, type: 's3' } });
    expect(await whereIs(record.id)).toBe('live');
    // The restored image holds its link again.
    const dup = await svc.request('POST', '/v3/images', { name: 'dup', link: uploaded.link });
    expect(dup.status).toBe(422);
    expect(dup.body.detail).toBe(duplicateImageLink(uploaded.manifestPath, record.id));
    // And can go round again.
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}`));
    expect(await allExist(BOOT, keysOf(uploaded))).toEqual([true, true, true, true]);
    expectNoContent(await svc.request('PATCH', `/v3/deleted/images/${record.id}`, UNDELETE));
    expect(await allExist(BOOT, keysOf(uploaded))).toEqual([true, true, true, true]);
  });

  test('unreadable deleted manifest → 422 and the record stays deleted, its artifacts untouched', async () => {
    const { uploaded, record } = await newImage();
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}`));
    const deletedLink = { etag: '', type: 's3', path: `s3://${BOOT}/${deletedManifestKey(record.id)}` };
    await removeObject(svc, BOOT, deletedManifestKey(record.id));
    const res = await svc.request('PATCH', `/v3/deleted/images/${record.id}`, UNDELETE);
    expect(res.status).toBe(422);
    expect(res.body).toEqual({
      status: 422,
      title: 'Unprocessable Entity',
      detail: `Unable to read manifest file for the s3 artifact ${pyRepr(deletedLink)}. ${RETRY}`,
    });
    expect(await whereIs(record.id)).toBe('deleted');
    expect(await allExist(BOOT, keysOf(uploaded))).toEqual([true, true, true, true]);
    // The bulk undelete fails the same way for it and changes nothing.
    const bulk = await svc.request('PATCH', '/v3/deleted/images', UNDELETE);
    expect(bulk.status).toBe(422);
    expect(await whereIs(record.id)).toBe('deleted');
    // Purge still works: 204 and the record is gone.
    expectNoContent(await svc.request('DELETE', `/v3/deleted/images/${record.id}`));
    expect(await whereIs(record.id)).toBe('gone');
  });

  test('deleted manifest that is not JSON, or has no artifacts section → 422, record stays deleted', async () => {
    const { record } = await newImage();
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}`));
    const deletedLink = { etag: '', type: 's3', path: `s3://${BOOT}/${deletedManifestKey(record.id)}` };
    const original = (await svc.getObjectText(BOOT, deletedManifestKey(record.id)))!;

    await svc.putObject(BOOT, deletedManifestKey(record.id), 'not json');
    let res = await svc.request('PATCH', `/v3/deleted/images/${record.id}`, UNDELETE);
    expect(res.status).toBe(422);
    expect(res.body.detail).toBe(`Manifest file is not valid Json for the s3 artifact ${pyRepr(deletedLink)}. ${RETRY}`);
    expect(await whereIs(record.id)).toBe('deleted');

    await svc.putObject(BOOT, deletedManifestKey(record.id), JSON.stringify({ version: '1.0' }));
    res = await svc.request('PATCH', `/v3/deleted/images/${record.id}`, UNDELETE);
    expect(res.status).toBe(422);
    expect(res.body.detail).toBe("The image's manifest.json is malformed. The manifest does not contain an artifacts section.");
    expect(await whereIs(record.id)).toBe('deleted');

    // Put back, the undelete goes through.
    await svc.putObject(BOOT, deletedManifestKey(record.id), original);
    expectNoContent(await svc.request('PATCH', `/v3/deleted/images/${record.id}`, UNDELETE));
    expect(await whereIs(record.id)).toBe('live');
  });

  test('undelete body validation: 404 → 400 → 422, nothing changes', async () => {
    const { record } = await newImage();
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}`));
    expect((await svc.request('PATCH', `/v3/deleted/images/${randomUUID()}`, {})).status).toBe(404);
    expect((await svc.request('PATCH', `/v3/deleted/images/${record.id}`, {})).status).toBe(400);
    const bad = await svc.request('PATCH', `/v3/deleted/images/${record.id}`, { operation: 'Undelete' });
    expect(bad.status).toBe(422);
    expect(bad.body.errors).toEqual({ operation: ['Recipe type must be one of: undelete.'] });
    expect((await svc.request('PATCH', '/v3/deleted/images', { operation: 'undelete', extra: 1 })).status).toBe(422);
    expect(await whereIs(record.id)).toBe('deleted');
    expectNoContent(await svc.request('DELETE', `/v3/deleted/images/${record.id}`));
  });
});

describe('purge — DELETE /v3/deleted/images/{id}', () => {
  test('removes every listed artifact and the deleted manifest, and lets go of the link', async () => {
    const { uploaded, record } = await newImage();
    await svc.putObject(BOOT, `deleted/${uploaded.prefix}/unrelated`, 'keep');
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}`));
    expect(await svc.listKeys(BOOT, `${uploaded.prefix}/`)).toHaveLength(4);
    expectNoContent(await svc.request('DELETE', `/v3/deleted/images/${record.id}`));
    expect(await svc.listKeys(BOOT, `deleted/${uploaded.prefix}/`)).toEqual([`deleted/${uploaded.prefix}/unrelated`]);
    expect(await svc.listKeys(BOOT, `deleted/${record.id}/`)).toEqual([]);
    expect(await svc.listKeys(BOOT, `${uploaded.prefix}/`)).toEqual([]);
    expect(await whereIs(record.id)).toBe('gone');
    expect((await svc.request('DELETE', `/v3/deleted/images/${record.id}`)).status).toBe(404);
    expect((await svc.request('PATCH', `/v3/deleted/images/${record.id}`, UNDELETE)).status).toBe(404);
    // The manifest's path is free again.
    const again = await uploadImage(svc, { prefix: uploaded.prefix });
    expect((await svc.request('POST', '/v3/images', { name: 'again', link: again.link })).status).toBe(201);
  });

  test('unreadable deleted manifest → still 204 and the record is purged', async () => {
    const { uploaded, record } = await newImage();
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}`));
    await svc.putObject(BOOT, deletedManifestKey(record.id), '{{{');
    expectNoContent(await svc.request('DELETE', `/v3/deleted/images/${record.id}`));
    expect(await whereIs(record.id)).toBe('gone');
    expect(await svc.exists(BOOT, deletedManifestKey(record.id))).toBe(false);
    // The artifacts it could not name are left where they are.
    expect(await allExist(BOOT, keysOf(uploaded))).toEqual([true, true, true, true]);
  });
});

describe('image without a link', () => {
  test('soft delete, undelete and purge work', async () => {
    const record = await post({ name: 'bare', metadata: { a: 'b' } });
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}`));
    const deleted = (await svc.request('GET', `/v3/deleted/images/${record.id}`)).body;
    expect(deleted).toEqual({ ...record, deleted: expect.stringMatching(TIMESTAMP) });
    expect(await svc.exists(BOOT, deletedManifestKey(record.id))).toBe(false);
    expectNoContent(await svc.request('PATCH', `/v3/deleted/images/${record.id}`, UNDELETE));
    expect((await svc.request('GET', `/v3/images/${record.id}`)).body).toEqual(record);
    expectNoContent(await svc.request('DELETE', `/v3/images/${record.id}`));
    expectNoContent(await svc.request('DELETE', `/v3/deleted/images/${record.id}`));
    expect(await whereIs(record.id)).toBe('gone');
  });
});

describe('bulk operations — §7.4', () => {
  test('DELETE /v3/images, PATCH /v3/deleted/images, DELETE /v3/deleted/images', async () => {
    // Start from an empty service state for images.
    expectNoContent(await svc.request('DELETE', '/v2/images'));
    expectNoContent(await svc.request('DELETE', '/v3/deleted/images'));
    const a = await newImage();
    const b = await newImage({ bucket: 'ims' });
    const c = await post({ name: 'bare' });
    const all = [a.record.id, b.record.id, c.id];

    expectNoContent(await svc.request('DELETE', '/v3/images'));
    expect(await ids('/v3/images')).toEqual([]);
    expect((await ids('/v3/deleted/images')).sort()).toEqual([...all].sort());
    expect(await allExist(BOOT, keysOf(a.uploaded))).toEqual([true, true, true, true]);
    expect(await allExist('ims', keysOf(b.uploaded))).toEqual([true, true, true, true]);
    expect(await allExist(BOOT, [deletedManifestKey(a.record.id), deletedManifestKey(b.record.id)])).toEqual([true, true]);

    expectNoContent(await svc.request('PATCH', '/v3/deleted/images', UNDELETE));
    expect(await ids('/v3/deleted/images')).toEqual([]);
    expect((await ids('/v3/images')).sort()).toEqual([...all].sort());
    expect(await allExist(BOOT, keysOf(a.uploaded))).toEqual([true, true, true, true]);
    expect(await allExist('ims', keysOf(b.uploaded))).toEqual([true, true, true, true]);
    expect((await svc.request('GET', `/v3/images/${a.record.id}`)).body.link.path).toBe(a.uploaded.manifestPath);
    expect((await svc.request('GET', `/v3/images/${c.id}`)).body).toEqual(c);

    expectNoContent(await svc.request('DELETE', '/v3/images'));
    expectNoContent(await svc.request('DELETE', '/v3/deleted/images'));
    expect(await ids('/v3/images')).toEqual([]);
    expect(await ids('/v3/deleted/images')).toEqual([]);
    for (const [bucket, u] of [[BOOT, a.uploaded], ['ims', b.uploaded]] as const) {
      expect(await svc.listKeys(bucket, `${u.prefix}/`)).toEqual([]);
      expect(await svc.listKeys(bucket, `deleted/${u.prefix}/`)).toEqual([]);
    }
    expect(await allExist(BOOT, [deletedManifestKey(a.record.id), deletedManifestKey(b.record.id)])).toEqual([false, false]);
  });
});

describe('link reuse after soft delete', () => {
  test('a soft-deleted image keeps its link: a new image may not take the path (422 naming it) until the old one is purged', async () => {
    const old = await newImage();
    expectNoContent(await svc.request('DELETE', `/v3/images/${old.record.id}`));
    const deletedBefore = (await svc.request('GET', `/v3/deleted/images/${old.record.id}`)).body;
    const res = await svc.request('POST', '/v3/images', { name: 'newer', link: old.uploaded.link });
    expect(res.status).toBe(422);
    expect(res.body.detail).toBe(duplicateImageLink(old.uploaded.manifestPath, old.record.id));
    const bare = await post({ name: 'bare' });
    const patched = await svc.request('PATCH', `/v3/images/${bare.id}`, { link: old.uploaded.link });
    expect(patched.status).toBe(422);
    expect((await svc.request('GET', `/v3/deleted/images/${old.record.id}`)).body).toEqual(deletedBefore);
    for (const a of old.uploaded.artifacts) expect(await svc.getObjectText(BOOT, a.key)).toBe(a.content);
    // Undeleted, it is the holder as before; purged, the path is free.
    expectNoContent(await svc.request('PATCH', `/v3/deleted/images/${old.record.id}`, UNDELETE));
    expect((await svc.request('GET', `/v3/images/${old.record.id}`)).body.link.path).toBe(old.uploaded.manifestPath);
    expectNoContent(await svc.request('DELETE', `/v3/images/${old.record.id}`));
    expectNoContent(await svc.request('DELETE', `/v3/deleted/images/${old.record.id}`));
    const replacement = await uploadImage(svc, { prefix: old.uploaded.prefix });
    expect((await svc.request('POST', '/v3/images', { name: 'newer', link: replacement.link })).status).toBe(201);
  });

  test('a link kept by a soft-deleted image whose manifest was missing can still be reused, and blocks its undelete', async () => {
    const old = await newImage();
    await removeObject(svc, BOOT, old.uploaded.manifestKey);
    expectNoContent(await svc.request('DELETE', `/v3/images/${old.record.id}`));
    const again = await uploadImage(svc, { prefix: old.uploaded.prefix });
    const newer = await post({ name: 'newer', link: again.link });
    const res = await svc.request('PATCH', `/v3/deleted/images/${old.record.id}`, UNDELETE);
    expect(res.status).toBe(422);
    expect(res.body.detail).toBe(duplicateImageLink(old.uploaded.manifestPath, newer.id));
    expect(await whereIs(old.record.id)).toBe('deleted');
    expect(await whereIs(newer.id)).toBe('live');
  });
});
