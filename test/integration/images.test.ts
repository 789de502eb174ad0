/**
 * Images through the embedded server (§6, §3.3): POST defaults and metadata conversion, the
 * manifest validation table of §6.3 row by row against real objects in the embedded S3, and
 * PATCH (order of checks, metadata operations, link rules, atomicity).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { startTestService, type TestService, type TestResponse } from '../helpers/service.js';
import {
  BOOT,
  INITRD,
  KERNEL,
  RETRY,
  ROOTFS,
  cannotValidate,
  duplicateImageLink,
  putArtifact,
  putManifest,
  pyRepr,
  uploadImage,
} from '../helpers/image-fixtures.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

const SCHEMA_DETAIL =
  'Input data was understood, but failed validation. Re-run request with valid input values for the fields indicated in the response.';
const NO_INPUT =
  'No input provided. Determine the specific information that is missing or invalid and then re-run the request with valid information.';
const NOT_FOUND = 'Requested resource does not exist. Re-run request with valid ID.';
const CONFLICT = 'Requested resource exists, but cannot be patched due to a patch conflict. Re-run request with valid input values.';
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MALFORMED = "The image's manifest.json is malformed.";
const DETERMINE = 'Determine the specific information that is missing or invalid and then re-run the request with valid information.';
const TITLES: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict', 422: 'Unprocessable Entity' };

/** A problem without `errors`: exactly status, title and detail. */
function expectProblem(res: TestResponse, status: number, detail: string) {
  expect({ status: res.status, body: res.body }).toEqual({ status, body: { status, title: TITLES[status], detail } });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
}

function expectSchemaError(res: TestResponse, errors: unknown) {
  expect(res.status).toBe(422);
  expect(res.body).toEqual({ status: 422, title: 'Unprocessable Entity', detail: SCHEMA_DETAIL, errors });
}

async function liveImages(): Promise<any[]> {
  const res = await svc.request('GET', '/v3/images');
  expect(res.status).toBe(200);
  return res.body;
}

async function createImage(body: Record<string, unknown>, version = 'v3') {
  const res = await svc.request('POST', `/${version}/images`.replace('//', '/'), body);
  expect(res.status).toBe(201);
  return res.body;
}

const linkRepr = (link: { path: string; etag?: string; type?: string }) => pyRepr({ etag: link.etag ?? '', type: link.type ?? 's3', path: link.path });

describe('POST /images', () => {
  test('defaults: arch x86_64, metadata {}, link null; exactly the six keys; readable on every version', async () => {
    const res = await svc.request('POST', '/v3/images', { name: 'plain' });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['arch', 'created', 'id', 'link', 'metadata', 'name']);
    expect(res.body).toEqual({ id: expect.stringMatching(UUID), created: expect.stringMatching(TIMESTAMP), name: 'plain', link: null, arch: 'x86_64', metadata: {} });
    for (const prefix of ['/v3', '/v2', '']) {
      const got = await svc.request('GET', `${prefix}/images/${res.body.id}`);
      expect(got.status).toBe(200);
      expect(got.body).toEqual(res.body);
    }
    expect((await liveImages()).map((i) => i.id)).toContain(res.body.id);
  });

  test('v2 and unversioned POST create the same kind of record; arch aarch64 accepted', async () => {
    const a = await svc.request('POST', '/v2/images', { name: 'v2', arch: 'aarch64' });
    const b = await svc.request('POST', '/images', { name: 'plain-alias', link: null });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.body.arch).toBe('aarch64');
    expect(b.body).toMatchObject({ link: null, arch: 'x86_64', metadata: {} });
    expect((await svc.request('GET', `/v3/images/${a.body.id}`)).body).toEqual(a.body);
  });

  test.each([
    [{ key: 'a', value: 'b' }, { a: 'b' }],
    [{ key: 'a' }, { a: '' }],
    [{ key: 'a', value: 'b', other: 'dropped' }, { a: 'b' }],
    [{ a: 'b', c: 'd' }, { a: 'b', c: 'd' }],
    [{}, {}],
  ])('metadata %j is stored as %j', async (metadata, expected) => {
    const res = await svc.request('POST', '/v3/images', { name: 'md', metadata });
    expect(res.status).toBe(201);
    expect(res.body.metadata).toEqual(expected);
    expect((await svc.request('GET', `/v3/images/${res.body.id}`)).body.metadata).toEqual(expected);
  });

  test.each([
    [{ a: 1 }, { metadata: { a: { value: ['Not a valid string.'] } } }],
    [{ key: 'a', value: 5 }, { metadata: { a: { value: ['Not a valid string.'] } } }],
    [{ a: 'ok', b: null }, { metadata: { b: { value: ['Field may not be null.'] } } }],
    [null, { metadata: ['Field may not be null.'] }],
    ['text', { metadata: ['Not a valid mapping type.'] }],
    [[{ key: 'a', value: 'b' }], { metadata: ['Not a valid mapping type.'] }],
    [7, { metadata: ['Not a valid mapping type.'] }],
  ])('metadata %j → 422 %j and no record', async (metadata, errors) => {
    const before = (await liveImages()).length;
    expectSchemaError(await svc.request('POST', '/v3/images', { name: 'bad-md', metadata }), errors);
    expect((await liveImages()).length).toBe(before);
  });

  test('schema errors: name required/blank, arch enum, unknown and read-only fields, link shape', async () => {
    expectSchemaError(await svc.request('POST', '/v3/images', { arch: 'x86_64' }), { name: ['Missing data for required field.'] });
    expectSchemaError(await svc.request('POST', '/v3/images', { name: '' }), { name: ['name field must not be blank'] });
    expectSchemaError(await svc.request('POST', '/v3/images', { name: 'x', arch: 'X86_64' }), { arch: ['Must be one of: aarch64, x86_64.'] });
    expectSchemaError(await svc.request('POST', '/v3/images', { name: 'x', id: randomUUID(), created: 'now', deleted: 'no' }), {
      id: ['Unknown field.'],
      created: ['Unknown field.'],
      deleted: ['Unknown field.'],
    });
    expectSchemaError(await svc.request('POST', '/v3/images', { name: 'x', link: { path: '', type: 'S3', extra: 1 } }), {
      link: { path: ['name field must not be blank'], type: ['Type must be one of: s3.'], extra: ['Unknown field.'] },
    });
    expectSchemaError(await svc.request('POST', '/v3/images', { name: 'x', link: { type: 's3' } }), { link: { path: ['Missing data for required field.'] } });
  });

  test('non-empty array body → 422 _schema (the original answered 500); empty array → 400', async () => {
    expectSchemaError(await svc.request('POST', '/v3/images', [{ name: 'x' }]), { _schema: ['Invalid input type.'] });
    expectSchemaError(await svc.request('POST', '/v2/images', [1, 2]), { _schema: ['Invalid input type.'] });
    expectProblem(await svc.request('POST', '/v3/images', []), 400, NO_INPUT);
    expectProblem(await svc.request('POST', '/v3/images', {}), 400, NO_INPUT);
  });

  test('a valid manifest link is stored as sent, with etag defaulting to ""', async () => {
    const image = await uploadImage(svc);
    const res = await svc.request('POST', '/v3/images', { name: 'linked', link: { path: image.manifestPath, type: 's3' } });
    expect(res.status).toBe(201);
    expect(res.body.link).toEqual({ path: image.manifestPath, etag: '', type: 's3' });
    const withEtag = await uploadImage(svc);
    const res2 = await svc.request('POST', '/v2/images', { name: 'linked2', link: { path: withEtag.manifestPath, etag: 'abc', type: 's3' } });
    expect(res2.status).toBe(201);
    expect(res2.body.link).toEqual({ path: withEtag.manifestPath, etag: 'abc', type: 's3' });
  });
});

describe('§6.3 manifest validation, row by row (POST)', () => {
  interface Row {
    name: string;
    /** Returns the link to POST (after putting whatever it needs in S3). */
    link: () => Promise<{ path: string; etag: string; type: 's3' }>;
    status: number;
    detail: (link: { path: string; etag: string; type: 's3' }) => string;
  }

  const missingKey = randomUUID();
  const holders = new Map<string, string>();
  const rootfs = () => putArtifact(svc, ROOTFS, 'rootfs');
  const kernel = () => putArtifact(svc, KERNEL, 'kernel');

  const rows: Row[] = [
    {
      name: '#1 link path already used by a live image (checked before existence: the manifest is gone)',
      link: async () => {
        const image = await uploadImage(svc);
        await createImage({ name: 'holder', link: image.link });
        await svc.s3.send(new DeleteObjectCommand({ Bucket: BOOT, Key: image.manifestKey }));
        return { ...image.link, etag: 'other-etag-ignored' };
      },
      status: 422,
      detail: (link) => {
        const holder = holders.get(link.path)!;
        return duplicateImageLink(link.path, holder);
      },
    },
    {
      name: '#2 manifest object missing',
      link: async () => ({ path: `s3://${BOOT}/nowhere/${randomUUID()}/manifest.json`, etag: '', type: 's3' }),
      status: 422,
      detail: (link) => cannotValidate(link),
    },
    {
      name: '#2 manifest in a bucket that does not exist',
      link: async () => ({ path: `s3://no-such-bucket-${randomUUID().slice(0, 8)}/manifest.json`, etag: '', type: 's3' }),
      status: 422,
      detail: (link) => cannotValidate(link),
    },
    {
      name: '#3 manifest not JSON → 422 (the original answered 500)',
      link: () => putManifest(svc, '{"version": "1.0", ', true),
      status: 422,
      detail: (link) => `Manifest file is not valid Json for the s3 artifact ${linkRepr(link)}. ${RETRY}`,
    },
    {
      name: '#3 manifest JSON but not an object ([1]) → 422 (the original answered 500)',
      link: () => putManifest(svc, [1]),
      status: 422,
      detail: () => `${MALFORMED} It is not a json object.`,
    },
    {
      name: '#3 falsy JSON manifest [] is not accepted silently',
      link: () => putManifest(svc, []),
      status: 422,
      detail: () => `${MALFORMED} It is not a json object.`,
    },
    {
      name: '#4 {} manifest (accepted by the original) → missing version',
      link: () => putManifest(svc, {}),
      status: 422,
      detail: () => "The image's manifest.json does not contain a version field.",
    },
    {
      name: '#4 version missing',
      link: async () => putManifest(svc, { artifacts: [await rootfs()] }),
      status: 422,
      detail: () => "The image's manifest.json does not contain a version field.",
    },
    {
      name: '#5 version "2.0"',
      link: async () => putManifest(svc, { version: '2.0', artifacts: [await rootfs()] }),
      status: 422,
      detail: () => "The image's manifest.json has a version that is not supported. Supported image manifest versions are: 1.0",
    },
    {
      name: '#5 version number 1.0 (not the string)',
      link: async () => putManifest(svc, '{"version": 1.0, "artifacts": []}', true),
      status: 422,
      detail: () => "The image's manifest.json has a version that is not supported. Supported image manifest versions are: 1.0",
    },
    {
      name: '#5 version null',
      link: async () => putManifest(svc, { version: null, artifacts: [] }),
      status: 422,
      detail: () => "The image's manifest.json has a version that is not supported. Supported image manifest versions are: 1.0",
    },
    {
      name: '#6 no artifacts member',
      link: () => putManifest(svc, { version: '1.0' }),
      status: 422,
      detail: () => `${MALFORMED} It does not contain an artifacts map.`,
    },
    {
      name: '#7 artifacts is an object',
      link: async () => putManifest(svc, { version: '1.0', artifacts: { rootfs: await rootfs() } }),
      status: 422,
      detail: () => `${MALFORMED} The artifacts property is not a json list.`,
    },
    {
      name: '#8 a listed artifact is not an object (after a valid one)',
      link: async () => putManifest(svc, { version: '1.0', artifacts: [await rootfs(), 'kernel'] }),
      status: 422,
      detail: () => `${MALFORMED} A listed artifact is not a json dictionary.`,
    },
    {
      name: '#9 an artifact without link',
      link: async () => putManifest(svc, { version: '1.0', artifacts: [await rootfs(), { type: KERNEL, md5: 'x' }] }),
      status: 422,
      detail: () => `${MALFORMED} An artifact does not have a link value`,
    },
    {
      name: '#10 an artifact link without type',
      link: async () => putManifest(svc, { version: '1.0', artifacts: [{ type: ROOTFS, link: { path: (await rootfs()).link.path } }] }),
      status: 422,
      detail: () => `${MALFORMED} An artifact does not have a link type field`,
    },
    {
      name: '#11 an artifact link type that is not s3 (case-sensitive)',
      link: async () => putManifest(svc, { version: '1.0', artifacts: [{ type: ROOTFS, link: { path: (await rootfs()).link.path, type: 'S3' } }] }),
      status: 422,
      detail: () => `${MALFORMED} An artifact link type 'S3' not supported`,
    },
    {
      name: '#12 an artifact link without path',
      link: async () => putManifest(svc, { version: '1.0', artifacts: [await rootfs(), { type: KERNEL, link: { type: 's3', etag: '' } }] }),
      status: 422,
      detail: () => `${MALFORMED} An artifact does not have a link path field`,
    },
    {
      name: '#13 a listed artifact object is missing (repr in the manifest key order)',
      link: async () =>
        putManifest(svc, {
          version: '1.0',
          artifacts: [await rootfs(), { link: { path: `s3://${BOOT}/gone/${missingKey}`, etag: 'abc', type: 's3' }, type: KERNEL }],
        }),
      status: 422,
      detail: () => `The s3 artifact {'path': 's3://${BOOT}/gone/${missingKey}', 'etag': 'abc', 'type': 's3'} cannot be validated. ${RETRY}`,
    },
    {
      name: '#13 before #14: a missing object is reported before another artifact lacks a type',
      link: async () => {
        const untyped = await rootfs();
        return putManifest(svc, {
          version: '1.0',
          artifacts: [{ link: untyped.link }, { link: { path: `s3://${BOOT}/gone/${missingKey}`, etag: 'abc', type: 's3' }, type: KERNEL }],
        });
      },
      status: 422,
      detail: () => `The s3 artifact {'path': 's3://${BOOT}/gone/${missingKey}', 'etag': 'abc', 'type': 's3'} cannot be validated. ${RETRY}`,
    },
    {
      name: '#14 an artifact without type',
      link: async () => putManifest(svc, { version: '1.0', artifacts: [await rootfs(), { link: (await kernel()).link }] }),
      status: 422,
      detail: () => `${MALFORMED} An artifact does not have a type field`,
    },
    {
      name: '#14 before #15: missing type wins over "no rootfs"',
      link: async () => putManifest(svc, { version: '1.0', artifacts: [{ link: (await kernel()).link }] }),
      status: 422,
      detail: () => `${MALFORMED} An artifact does not have a type field`,
    },
    {
      name: '#15 no rootfs artifact',
      link: async () => putManifest(svc, { version: '1.0', artifacts: [await kernel(), await putArtifact(svc, INITRD)] }),
      status: 400,
      detail: (link) => `Error reading the manifest.json for IMS ${linkRepr(link)}. The manifest does not include any rootfs artifacts. ${DETERMINE}`,
    },
    {
      name: '#15 empty artifacts list',
      link: () => putManifest(svc, { version: '1.0', artifacts: [] }),
      status: 400,
      detail: (link) => `Error reading the manifest.json for IMS ${linkRepr(link)}. The manifest does not include any rootfs artifacts. ${DETERMINE}`,
    },
    {
      name: '#15 two rootfs artifacts (type prefix match)',
      link: async () => putManifest(svc, { version: '1.0', artifacts: [await rootfs(), await putArtifact(svc, `${ROOTFS}.v2`)] }),
      status: 400,
      detail: (link) => `Error reading the manifest.json for ${linkRepr(link)}. The manifest includes multiple rootfs artifacts. ${DETERMINE}`,
    },
  ];

  for (const row of rows) {
    test(row.name, async () => {
      const link = await row.link();
      if (row.name.startsWith('#1 ')) holders.set(link.path, (await liveImages()).find((i) => i.link?.path === link.path).id);
      const before = await liveImages();
      for (const version of ['v3', 'v2']) {
        const res = await svc.request('POST', `/${version}/images`, { name: 'row', link });
        expectProblem(res, row.status, row.detail(link));
      }
      // Failed validation creates no record.
      expect(await liveImages()).toEqual(before);
    });
  }

  test('a manifest of exactly MAX_IMAGE_MANIFEST_SIZE_BYTES → 400; one byte less is read', async () => {
    const max = svc.app.settings.maxManifestBytes;
    expect(max).toBe(1024 * 1024);
    const base = { version: '1.0', artifacts: [await rootfs()], pad: '' };
    const overhead = JSON.stringify(base).length;
    const big = await putManifest(svc, JSON.stringify({ ...base, pad: 'x'.repeat(max - overhead) }), true);
    expectProblem(
      await svc.request('POST', '/v3/images', { name: 'big', link: big }),
      400,
      `Image manifest file is larger than the expected maximum size for the s3 artifact ${linkRepr(big)}. ${RETRY}`,
    );
    const fits = await putManifest(svc, JSON.stringify({ ...base, pad: 'x'.repeat(max - overhead - 1) }), true);
    const res = await svc.request('POST', '/v3/images', { name: 'fits', link: fits });
    expect(res.status).toBe(201);
  });

  test('a failed validation releases the link: the same path succeeds once the manifest is fixed', async () => {
    const image = await uploadImage(svc);
    await svc.putObject(BOOT, image.manifestKey, JSON.stringify({ version: '1.0', artifacts: [] }));
    expect((await svc.request('POST', '/v3/images', { name: 'first', link: image.link })).status).toBe(400);
    await svc.putObject(BOOT, image.manifestKey, image.manifestText);
    const res = await svc.request('POST', '/v3/images', { name: 'second', link: image.link });
    expect(res.status).toBe(201);
    expect(res.body.link.path).toBe(image.manifestPath);
  });

  test('duplicate of an image link → 422 naming the holder, soft-deleted too (its artifacts stay where they are); free again once it is purged', async () => {
    const image = await uploadImage(svc);
    const holder = await createImage({ name: 'holder', link: image.link });
    expectProblem(await svc.request('POST', '/images', { name: 'dup', link: image.link }), 422, duplicateImageLink(image.manifestPath, holder.id));
    expect((await svc.request('DELETE', `/v3/images/${holder.id}`)).status).toBe(204);
    // Soft-deleted in place: the manifest and artifacts are still the holder's, to undelete.
    expectProblem(await svc.request('POST', '/v3/images', { name: 'dup', link: image.link }), 422, duplicateImageLink(image.manifestPath, holder.id));
    expect((await svc.request('DELETE', `/v3/deleted/images/${holder.id}`)).status).toBe(204);
    // Purged: upload a new one at the original path and reuse it.
    const again = await uploadImage(svc, { prefix: image.prefix });
    const res = await svc.request('POST', '/v3/images', { name: 'reuse', link: again.link });
    expect(res.status).toBe(201);
  });

  test('images and recipes have separate link namespaces', async () => {
    const image = await uploadImage(svc, { bucket: 'ims' });
    const recipe = await svc.request('POST', '/v3/recipes', {
      name: 'r',
      recipe_type: 'kiwi-ng',
      linux_distribution: 'sles15',
      link: image.link,
    });
    expect(recipe.status).toBe(201);
    expect((await svc.request('POST', '/v3/images', { name: 'i', link: image.link })).status).toBe(201);
  });
});

describe('PATCH /images/{id}', () => {
  test('order of checks: unknown id 404 → no input 400 → schema 422', async () => {
    const unknown = randomUUID();
    expectProblem(await svc.request('PATCH', `/v3/images/${unknown}`, {}), 404, NOT_FOUND);
    expectProblem(await svc.request('PATCH', `/v2/images/${unknown}`, { name: 'x' }), 404, NOT_FOUND);
    expectProblem(await svc.request('PATCH', `/v3/images/${unknown.toUpperCase()}`, { arch: 'aarch64' }), 404, NOT_FOUND);
    const image = await createImage({ name: 'p' });
    expectProblem(await svc.request('PATCH', `/v3/images/${image.id}`, {}), 400, NO_INPUT);
    expectProblem(await svc.request('PATCH', `/images/${image.id}`, null), 400, NO_INPUT);
    expectSchemaError(await svc.request('PATCH', `/v3/images/${image.id}`, { name: 'x' }), { name: ['Unknown field.'] });
    // A soft-deleted image is not patchable through the live route.
    expect((await svc.request('DELETE', `/v3/images/${image.id}`)).status).toBe(204);
    expectProblem(await svc.request('PATCH', `/v3/images/${image.id}`, { arch: 'aarch64' }), 404, NOT_FOUND);
  });

  test('only link, arch and metadata are accepted', async () => {
    const image = await createImage({ name: 'keys' });
    expectSchemaError(await svc.request('PATCH', `/v3/images/${image.id}`, { id: image.id, created: image.created, name: 'n', arch: 'aarch64' }), {
      id: ['Unknown field.'],
      created: ['Unknown field.'],
      name: ['Unknown field.'],
    });
    expectSchemaError(await svc.request('PATCH', `/v3/images/${image.id}`, { arch: 'arm' }), { arch: ['Must be one of: aarch64, x86_64.'] });
    expectSchemaError(await svc.request('PATCH', `/v3/images/${image.id}`, { link: null }), { link: ['Field may not be null.'] });
    expectSchemaError(await svc.request('PATCH', `/v3/images/${image.id}`, { arch: null }), { arch: ['Field may not be null.'] });
    // Nothing was applied by the rejected requests.
    expect((await svc.request('GET', `/v3/images/${image.id}`)).body).toEqual(image);
    const res = await svc.request('PATCH', `/v2/images/${image.id}`, { arch: 'aarch64' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ...image, arch: 'aarch64' });
    expect((await svc.request('GET', `/v3/images/${image.id}`)).body).toEqual({ ...image, arch: 'aarch64' });
  });

  test('metadata operation schema errors', async () => {
    const image = await createImage({ name: 'md-errors' });
    const patch = (metadata: unknown) => svc.request('PATCH', `/v3/images/${image.id}`, { metadata });
    expectSchemaError(await patch({ operation: 'add', key: 'a' }), { metadata: { operation: ['Must be one of: set, remove.'] } });
    expectSchemaError(await patch({ operation: 'SET', key: 'a' }), { metadata: { operation: ['Must be one of: set, remove.'] } });
    expectSchemaError(await patch({ key: 'a', value: 'b' }), { metadata: { operation: ['Missing data for required field.'] } });
    expectSchemaError(await patch({ operation: 'set', value: 'b' }), { metadata: { key: ['Missing data for required field.'] } });
    expectSchemaError(await patch({ operation: 'set', key: 'a', value: 1 }), { metadata: { value: ['Not a valid string.'] } });
    expectSchemaError(await patch({ operation: 'set', key: 'a', extra: 'x' }), { metadata: { extra: ['Unknown field.'] } });
    expectSchemaError(await patch([{ operation: 'set', key: 'a' }]), { metadata: { _schema: ['Invalid input type.'] } });
    expectSchemaError(await patch({ a: 'b' }), { metadata: { operation: ['Missing data for required field.'], key: ['Missing data for required field.'], a: ['Unknown field.'] } });
    expectSchemaError(await patch(null), { metadata: ['Field may not be null.'] });
    expect((await svc.request('GET', `/v3/images/${image.id}`)).body.metadata).toEqual({});
  });

  test('metadata set adds and overwrites, value defaults to "", remove deletes, remove of an absent key is a no-op', async () => {
    const image = await createImage({ name: 'md', metadata: { keep: 'me' } });
    const patch = async (metadata: unknown, version = 'v3') => {
      const res = await svc.request('PATCH', `/${version}/images/${image.id}`, { metadata });
      expect(res.status).toBe(200);
      return res.body;
    };
    expect((await patch({ operation: 'set', key: 'a', value: '1' })).metadata).toEqual({ keep: 'me', a: '1' });
    expect((await patch({ operation: 'set', key: 'a', value: '2' }, 'v2')).metadata).toEqual({ keep: 'me', a: '2' });
    expect((await patch({ operation: 'set', key: 'empty' })).metadata).toEqual({ keep: 'me', a: '2', empty: '' });
    expect((await patch({ operation: 'remove', key: 'a' })).metadata).toEqual({ keep: 'me', empty: '' });
    const noop = await patch({ operation: 'remove', key: 'never-there' });
    expect(noop).toEqual({ ...image, metadata: { keep: 'me', empty: '' } });
    expect((await patch({ operation: 'remove', key: 'empty', value: 'ignored' })).metadata).toEqual({ keep: 'me' });
    expect((await svc.request('GET', `/images/${image.id}`)).body).toEqual({ ...image, metadata: { keep: 'me' } });
  });

  test('link equal to the stored one → 200 no-op; any difference → 409', async () => {
    const image = await uploadImage(svc);
    const record = await createImage({ name: 'linked', link: image.link });
    const same = await svc.request('PATCH', `/v3/images/${record.id}`, { link: { path: image.manifestPath, etag: '', type: 's3' } });
    expect(same.status).toBe(200);
    expect(same.body).toEqual(record);
    const sameV2 = await svc.request('PATCH', `/v2/images/${record.id}`, { link: { type: 's3', etag: '', path: image.manifestPath }, arch: 'aarch64' });
    expect(sameV2.status).toBe(200);
    expect(sameV2.body).toEqual({ ...record, arch: 'aarch64' });
    // Dict equality: an omitted etag differs from the stored "".
    expectProblem(await svc.request('PATCH', `/v3/images/${record.id}`, { link: { path: image.manifestPath, type: 's3' } }), 409, CONFLICT);
    expectProblem(await svc.request('PATCH', `/v3/images/${record.id}`, { link: { path: image.manifestPath, etag: 'x', type: 's3' } }), 409, CONFLICT);
    const other = await uploadImage(svc);
    expectProblem(await svc.request('PATCH', `/v2/images/${record.id}`, { link: other.link }), 409, CONFLICT);
    expect((await svc.request('GET', `/v3/images/${record.id}`)).body).toEqual({ ...record, arch: 'aarch64' });
  });

  test('PATCH is atomic: {"arch", "link": <conflicting>} → 409 and arch unchanged', async () => {
    const image = await uploadImage(svc);
    const record = await createImage({ name: 'atomic', link: image.link, metadata: { k: 'v' } });
    const other = await uploadImage(svc);
    expectProblem(
      await svc.request('PATCH', `/v3/images/${record.id}`, { arch: 'aarch64', metadata: { operation: 'remove', key: 'k' }, link: other.link }),
      409,
      CONFLICT,
    );
    expect((await svc.request('GET', `/v3/images/${record.id}`)).body).toEqual(record);
    // The link given in the conflicting request was not claimed either.
    expect((await svc.request('POST', '/v3/images', { name: 'free', link: other.link })).status).toBe(201);
  });

  for (const version of ['v3', 'v2', '']) {
    const prefix = version ? `/${version}` : '';
    test(`setting a link on a record without one runs the full manifest validation (${version || 'unversioned'})`, async () => {
      const record = await createImage({ name: `late-${version}`, metadata: { k: 'v' } });
      const url = `${prefix}/images/${record.id}`;
      const notJson = await putManifest(svc, 'not json at all', true);
      const patchLink = (link: unknown, extra: Record<string, unknown> = {}) => svc.request('PATCH', url, { ...extra, link });
      // The original's v3 accepted this silently (v2 answered 500).
      expectProblem(await patchLink(notJson, { arch: 'aarch64' }), 422, `Manifest file is not valid Json for the s3 artifact ${linkRepr(notJson)}. ${RETRY}`);
      expectProblem(await patchLink(await putManifest(svc, {})), 422, "The image's manifest.json does not contain a version field.");
      const missing = { path: `s3://${BOOT}/missing/${randomUUID()}`, etag: '', type: 's3' };
      expectProblem(await patchLink(missing), 422, cannotValidate(missing));
      const noRootfs = await putManifest(svc, { version: '1.0', artifacts: [await putArtifact(svc, KERNEL)] });
      expectProblem(
        await patchLink(noRootfs, { metadata: { operation: 'set', key: 'x', value: 'y' } }),
        400,
        `Error reading the manifest.json for IMS ${linkRepr(noRootfs)}. The manifest does not include any rootfs artifacts. ${DETERMINE}`,
      );
      const taken = await uploadImage(svc);
      const holder = await createImage({ name: 'holder', link: taken.link });
      expectProblem(await patchLink(taken.link), 422, duplicateImageLink(taken.manifestPath, holder.id));
      // None of the failures changed the record.
      expect((await svc.request('GET', url)).body).toEqual(record);

      const good = await uploadImage(svc);
      const res = await patchLink(good.link, { arch: 'aarch64' });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ...record, arch: 'aarch64', link: good.link });
      // The link is now held: another image cannot take it, and patching it again is idempotent.
      const dup = await svc.request('POST', '/v3/images', { name: 'dup', link: good.link });
      expectProblem(dup, 422, duplicateImageLink(good.manifestPath, record.id));
      expect((await patchLink(good.link)).status).toBe(200);
    });
  }

  test('a rejected PATCH link releases the path for others', async () => {
    const record = await createImage({ name: 'releaser' });
    const image = await uploadImage(svc);
    await svc.putObject(BOOT, image.manifestKey, JSON.stringify({ version: '1.0', artifacts: [] }));
    expect((await svc.request('PATCH', `/v3/images/${record.id}`, { link: image.link })).status).toBe(400);
    await svc.putObject(BOOT, image.manifestKey, image.manifestText);
    expect((await svc.request('POST', '/v3/images', { name: 'taker', link: image.link })).status).toBe(201);
  });
});
