/**
 * Concurrent requests against one record or one link, through the embedded server: optimistic
 * writes lose no update, link claims admit exactly one holder, soft delete and undelete never
 * leave a record in both lists, and a soft delete interrupted half-way can be repeated.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { startTestService, type TestService } from '../helpers/service.js';
import { BOOT, duplicateImageLink, duplicateRecipeLink, md5, removeObject, uploadImage } from '../helpers/image-fixtures.js';
import { CopyObjectCommand } from '@aws-sdk/client-s3';
import { buildContext } from '#shared/wiring.js';
import { readSettings } from '#shared/config.js';
import { patchImage } from '#shared/domain/images.js';

let svc: TestService;
beforeAll(async () => {
  // Records in a database other processes reach (dynalite here, DynamoDB Local in CI): the races
  // below include writers with store clients of their own, as Lambda instances have.
  svc = await startTestService({ recordStore: 'dynalite' });
});
afterAll(async () => {
  await svc.stop();
});

const UNDELETE = { operation: 'undelete' };

async function ids(path: string): Promise<string[]> {
  const res = await svc.request('GET', path);
  expect(res.status).toBe(200);
  return res.body.map((r: { id: string }) => r.id);
}

function recipeBody(path: string) {
  return { name: 'recipe', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path, etag: '', type: 's3' } };
}

async function copyObject(bucket: string, from: string, to: string) {
  await svc.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: `${bucket}/${from}` }));
}

describe('no lost updates', () => {
  test('20 concurrent PATCH metadata set operations with different keys all land', async () => {
    const created = await svc.request('POST', '/v3/images', { name: 'busy', metadata: { base: 'kept' } });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`);
    const responses = await Promise.all(
      keys.map((key, i) => svc.request('PATCH', `/${i % 2 ? 'v2' : 'v3'}/images/${id}`, { metadata: { operation: 'set', key, value: `value-${key}` } })),
    );
    expect(responses.map((r) => r.status)).toEqual(keys.map(() => 200));
    // Each response already contains its own key.
    responses.forEach((r, i) => expect(r.body.metadata[keys[i]]).toBe(`value-${keys[i]}`));
    const final = await svc.request('GET', `/v3/images/${id}`);
    expect(final.body.metadata).toEqual(Object.fromEntries([['base', 'kept'], ...keys.map((k) => [k, `value-${k}`])]));
    expect(final.body).toEqual({ ...created.body, metadata: final.body.metadata });
  });

  test('concurrent set and remove of different keys, and arch changes, all land', async () => {
    const metadata = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`old-${i}`, 'x']));
    const created = await svc.request('POST', '/v3/images', { name: 'mixed', metadata });
    const id = created.body.id;
    const requests = [
      ...Array.from({ length: 6 }, (_, i) => ({ metadata: { operation: 'remove', key: `old-${i}` } })),
      ...Array.from({ length: 6 }, (_, i) => ({ metadata: { operation: 'set', key: `new-${i}`, value: String(i) } })),
      { arch: 'aarch64' },
    ];
    const responses = await Promise.all(requests.map((body) => svc.request('PATCH', `/v3/images/${id}`, body)));
    expect(responses.map((r) => r.status)).toEqual(requests.map(() => 200));
    const final = (await svc.request('GET', `/v3/images/${id}`)).body;
    expect(final.metadata).toEqual(Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`new-${i}`, String(i)])));
    expect(final.arch).toBe('aarch64');
  });
});

describe('records under contention: every change kept, no 5xx', () => {
  const WRITERS = 16;
  const KEYS = 20;

  test('16 writers each setting 20 distinct metadata keys on one image, one after another', async () => {
    const created = await svc.request('POST', '/v3/images', { name: 'contended', metadata: { base: 'kept' } });
    const id = created.body.id;
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        for (let k = 0; k < KEYS; k++) {
          const key = `writer-${w}-key-${k}`;
          const res = await svc.request('PATCH', `/${w % 2 ? 'v2' : 'v3'}/images/${id}`, { metadata: { operation: 'set', key, value: `v${w}.${k}` } });
          statuses.push(res.status);
          expect(res.body.metadata[key]).toBe(`v${w}.${k}`);
        }
      }),
    );
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const final = (await svc.request('GET', `/v3/images/${id}`)).body;
    const expected: Record<string, string> = { base: 'kept' };
    for (let w = 0; w < WRITERS; w++) for (let k = 0; k < KEYS; k++) expected[`writer-${w}-key-${k}`] = `v${w}.${k}`;
    expect(final.metadata).toEqual(expected);
  });

  test('a race from four separate processes (one store client and turn queue each, as Lambda instances have)', async () => {
    const created = await svc.request('POST', '/v3/images', { name: 'contended-across', metadata: {} });
    const id = created.body.id;
    const instances = Array.from({ length: 4 }, () => buildContext(readSettings()));
    const WRITERS = 8;
    const KEYS = 10;
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        const ctx = instances[w % instances.length];
        for (let k = 0; k < KEYS; k++) {
          await patchImage(ctx, id, { metadata: { operation: 'set', key: `p${w}-${k}`, value: String(k) } });
        }
      }),
    );
    const final = (await svc.request('GET', `/v3/images/${id}`)).body;
    expect(Object.keys(final.metadata)).toHaveLength(WRITERS * KEYS);
    // Set and remove racing across processes: every removal lands too.
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        const ctx = instances[w % instances.length];
        for (let k = 0; k < KEYS; k += 2) await patchImage(ctx, id, { metadata: { operation: 'remove', key: `p${w}-${k}`, value: '' } });
      }),
    );
    const after = (await svc.request('GET', `/v3/images/${id}`)).body;
    expect(Object.keys(after.metadata).sort()).toEqual(
      Array.from({ length: WRITERS }, (_, w) => Array.from({ length: KEYS / 2 }, (_, j) => `p${w}-${2 * j + 1}`)).flat().sort(),
    );
  }, 60_000);
});

describe('one link, one holder', () => {
  test('concurrent image POSTs with the same link: exactly one 201, the rest 422', async () => {
    const uploaded = await uploadImage(svc);
    const n = 10;
    const responses = await Promise.all(
      Array.from({ length: n }, (_, i) => svc.request('POST', i % 2 ? '/v2/images' : '/v3/images', { name: `racer-${i}`, link: uploaded.link })),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([201, ...Array(n - 1).fill(422)]);
    const winner = responses.find((r) => r.status === 201)!.body;
    for (const r of responses.filter((x) => x.status === 422)) expect(r.body.detail).toBe(duplicateImageLink(uploaded.manifestPath, winner.id));
    const holders = (await svc.request('GET', '/v3/images')).body.filter((i: { link: { path: string } | null }) => i.link?.path === uploaded.manifestPath);
    expect(holders.map((i: { id: string }) => i.id)).toEqual([winner.id]);
  });

  test('concurrent recipe POSTs with the same link: exactly one 201, the rest 422', async () => {
    const key = `recipes/${randomUUID()}.tgz`;
    await svc.putObject('ims', key, 'recipe archive');
    const path = `s3://ims/${key}`;
    const n = 10;
    const responses = await Promise.all(Array.from({ length: n }, () => svc.request('POST', '/v3/recipes', recipeBody(path))));
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([201, ...Array(n - 1).fill(422)]);
    const winner = responses.find((r) => r.status === 201)!.body;
    for (const r of responses.filter((x) => x.status === 422)) expect(r.body.detail).toBe(duplicateRecipeLink(path, winner.id));
    const holders = (await svc.request('GET', '/v3/recipes')).body.filter((r: { link: { path: string } | null }) => r.link?.path === path);
    expect(holders.map((r: { id: string }) => r.id)).toEqual([winner.id]);
  });

  test('concurrent PATCHes setting the same link on different images: exactly one wins', async () => {
    const uploaded = await uploadImage(svc);
    const images = await Promise.all(Array.from({ length: 6 }, (_, i) => svc.request('POST', '/v3/images', { name: `bare-${i}` })));
    const responses = await Promise.all(images.map((img) => svc.request('PATCH', `/v3/images/${img.body.id}`, { link: uploaded.link })));
    expect(responses.map((r) => r.status).sort()).toEqual([200, 422, 422, 422, 422, 422]);
    const holders = (await svc.request('GET', '/v3/images')).body.filter((i: { link: { path: string } | null }) => i.link?.path === uploaded.manifestPath);
    expect(holders).toHaveLength(1);
  });

  test('concurrent POST and PATCH of the same link: one holder', async () => {
    const uploaded = await uploadImage(svc);
    const bare = (await svc.request('POST', '/v3/images', { name: 'bare' })).body;
    const [posted, patched] = await Promise.all([
      svc.request('POST', '/v3/images', { name: 'poster', link: uploaded.link }),
      svc.request('PATCH', `/v3/images/${bare.id}`, { link: uploaded.link }),
    ]);
    expect([posted.status, patched.status].sort()).toEqual(posted.status === 201 ? [201, 422] : [200, 422]);
    const holders = (await svc.request('GET', '/v3/images')).body.filter((i: { link: { path: string } | null }) => i.link?.path === uploaded.manifestPath);
    expect(holders).toHaveLength(1);
  });
});

describe('soft delete and undelete racing', () => {
  test('concurrent v3 DELETE and undelete of one image never leave it in both lists, and lose no artifact', async () => {
    const uploaded = await uploadImage(svc);
    const created = await svc.request('POST', '/v3/images', { name: 'flapper', link: uploaded.link });
    const id = created.body.id;
    const originals = [...uploaded.artifacts.map((a) => ({ key: a.key, content: a.content })), { key: uploaded.manifestKey, content: uploaded.manifestText }];

    for (let round = 0; round < 6; round++) {
      const requests = [
        svc.request('DELETE', `/v3/images/${id}`),
        svc.request('PATCH', `/v3/deleted/images/${id}`, UNDELETE),
        svc.request('DELETE', `/v3/images/${id}`),
        svc.request('PATCH', `/v3/deleted/images/${id}`, UNDELETE),
      ];
      const responses = await Promise.all(requests);
      for (const r of responses) expect([204, 404]).toContain(r.status);

      const live = (await ids('/v3/images')).filter((x) => x === id);
      const deleted = (await ids('/v3/deleted/images')).filter((x) => x === id);
      expect(live.length + deleted.length).toBe(1);

      // Whichever state it ended in, every artifact is where that state says it is.
      if (live.length) {
        const record = (await svc.request('GET', `/v3/images/${id}`)).body;
        expect(record.link.path).toBe(uploaded.manifestPath);
        for (const o of originals) expect(await svc.getObjectText(BOOT, o.key)).toBe(o.content);
      } else {
        const record = (await svc.request('GET', `/v3/deleted/images/${id}`)).body;
        expect(record.link.path).toBe(`s3://${BOOT}/deleted/${id}/deleted_manifest.json`);
        const listed = JSON.parse((await svc.getObjectText(BOOT, `deleted/${id}/deleted_manifest.json`)) ?? 'null');
        expect(listed.artifacts.map((a: { link: { path: string } }) => a.link.path).sort()).toEqual(
          originals.map((o) => `s3://${BOOT}/${o.key}`).sort(),
        );
        for (const o of originals) expect(await svc.getObjectText(BOOT, o.key)).toBe(o.content);
      }
      // Soft delete moves nothing: no copy exists under deleted/, whichever state it is in.
      expect(await svc.listKeys(BOOT, `deleted/${uploaded.prefix}/`)).toEqual([]);
    }
  });
});

describe('recipe soft delete and undelete racing', () => {
  test('concurrent v3 DELETE and undelete of one recipe keep it in one list with its archive', async () => {
    const key = `recipes/${randomUUID()}/recipe.tgz`;
    await svc.putObject('ims', key, 'racing archive');
    const recipe = (await svc.request('POST', '/v3/recipes', recipeBody(`s3://ims/${key}`))).body;
    for (let round = 0; round < 6; round++) {
      const responses = await Promise.all([
        svc.request('DELETE', `/v3/recipes/${recipe.id}`),
        svc.request('PATCH', `/v3/deleted/recipes/${recipe.id}`, UNDELETE),
        svc.request('DELETE', `/v3/recipes/${recipe.id}`),
        svc.request('PATCH', `/v3/deleted/recipes/${recipe.id}`, UNDELETE),
      ]);
      for (const r of responses) expect([204, 404]).toContain(r.status);
      const live = (await ids('/v3/recipes')).includes(recipe.id);
      const deleted = (await ids('/v3/deleted/recipes')).includes(recipe.id);
      expect(Number(live) + Number(deleted)).toBe(1);
      const record = (await svc.request('GET', `/v3/${live ? '' : 'deleted/'}recipes/${recipe.id}`)).body;
      const at = live ? key : `deleted/${key}`;
      expect(record.link.path).toBe(`s3://ims/${at}`);
      expect(await svc.getObjectText('ims', at)).toBe('racing archive');
    }
  });
});

describe('soft delete repeated after a crash', () => {
  test('recipe: the copy under deleted/ already exists (crash after the copy) → DELETE completes, nothing lost', async () => {
    const key = `recipes/${randomUUID()}/recipe.tgz`;
    await svc.putObject('ims', key, 'the archive');
    const recipe = (await svc.request('POST', '/v3/recipes', recipeBody(`s3://ims/${key}`))).body;
    await copyObject('ims', key, `deleted/${key}`);

    const res = await svc.request('DELETE', `/v3/recipes/${recipe.id}`);
    expect(res.status).toBe(204);
    expect(await svc.exists('ims', key)).toBe(false);
    expect(await svc.getObjectText('ims', `deleted/${key}`)).toBe('the archive');
    const deleted = (await svc.request('GET', `/v3/deleted/recipes/${recipe.id}`)).body;
    expect(deleted.link).toEqual({ etag: md5('the archive'), path: `s3://ims/deleted/${key}`, type: 's3' });
    expect((await ids('/v3/recipes')).includes(recipe.id)).toBe(false);

    expect((await svc.request('PATCH', `/v3/deleted/recipes/${recipe.id}`, UNDELETE)).status).toBe(204);
    expect(await svc.getObjectText('ims', key)).toBe('the archive');
    expect(await svc.exists('ims', `deleted/${key}`)).toBe(false);
    expect((await svc.request('GET', `/v3/recipes/${recipe.id}`)).body.link.path).toBe(`s3://ims/${key}`);
  });

  test('recipe: the move finished but the record was not updated (original already gone) → DELETE completes', async () => {
    const key = `recipes/${randomUUID()}/recipe.tgz`;
    await svc.putObject('ims', key, 'moved archive');
    const recipe = (await svc.request('POST', '/v3/recipes', recipeBody(`s3://ims/${key}`))).body;
    await copyObject('ims', key, `deleted/${key}`);
    await removeObject(svc, 'ims', key);

    expect((await svc.request('DELETE', `/v3/recipes/${recipe.id}`)).status).toBe(204);
    const deleted = (await svc.request('GET', `/v3/deleted/recipes/${recipe.id}`)).body;
    expect(deleted.link.path).toBe(`s3://ims/deleted/${key}`);
    expect(await svc.getObjectText('ims', `deleted/${key}`)).toBe('moved archive');
    expect((await svc.request('PATCH', `/v3/deleted/recipes/${recipe.id}`, UNDELETE)).status).toBe(204);
    expect(await svc.getObjectText('ims', key)).toBe('moved archive');
  });

  test('image soft-deleted by an earlier version (artifacts moved under deleted/) → undelete copies them back, once', async () => {
    const uploaded = await uploadImage(svc);
    const image = (await svc.request('POST', '/v3/images', { name: 'moved', link: uploaded.link })).body;
    expect((await svc.request('DELETE', `/v3/images/${image.id}`)).status).toBe(204);
    // What the earlier soft delete left: copies under deleted/, the originals gone, a deleted manifest naming the copies.
    const keys = [...uploaded.artifacts.map((a) => a.key), uploaded.manifestKey];
    for (const key of keys) {
      await copyObject(BOOT, key, `deleted/${key}`);
      await removeObject(svc, BOOT, key);
    }
    const listed = JSON.parse((await svc.getObjectText(BOOT, `deleted/${image.id}/deleted_manifest.json`))!);
    delete listed.in_place;
    for (const a of listed.artifacts) a.link.path = a.link.path.replace(`s3://${BOOT}/`, `s3://${BOOT}/deleted/`);
    await svc.putObject(BOOT, `deleted/${image.id}/deleted_manifest.json`, JSON.stringify(listed));

    expect((await svc.request('PATCH', `/v3/deleted/images/${image.id}`, UNDELETE)).status).toBe(204);
    for (const a of uploaded.artifacts) expect(await svc.getObjectText(BOOT, a.key)).toBe(a.content);
    expect(await svc.getObjectText(BOOT, uploaded.manifestKey)).toBe(uploaded.manifestText);
    expect(await svc.listKeys(BOOT, `deleted/${uploaded.prefix}/`)).toEqual([]);
    expect((await svc.request('GET', `/v3/images/${image.id}`)).body.link.path).toBe(uploaded.manifestPath);
  });
});
