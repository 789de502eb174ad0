/** §5 recipes (with §3 links and §7.2 deleted recipes), through the embedded HTTP server and s3rver. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { startTestService, type TestService } from '../helpers/service.js';
import {
  CONFLICT,
  RETRY,
  TIMESTAMP_RE,
  UUID_RE,
  expectNoContent,
  expectNoInput,
  expectNotFound,
  expectProblem,
  expectSchemaErrors,
} from '../helpers/problems.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

const BUCKET = 'ims';
const REQUIRED = 'Missing data for required field.';
const RECIPE_KEYS = ['arch', 'created', 'id', 'link', 'linux_distribution', 'name', 'recipe_type', 'require_dkms', 'template_dictionary'];

interface Link {
  path: string;
  etag: string;
  type: 's3';
}
interface Recipe {
  id: string;
  created: string;
  name: string;
  recipe_type: string;
  linux_distribution: string;
  link: Link | null;
  template_dictionary: { key: string; value: string }[] | null;
  require_dkms: boolean;
  arch: string;
}

const base = { name: 'sles15-barebones', recipe_type: 'kiwi-ng', linux_distribution: 'sles15' };

/** A fresh key in the ims bucket, with an object behind it unless `put` is false. */
async function archive(put = true, content = `recipe archive ${randomUUID()}`): Promise<{ key: string; path: string }> {
  const key = `recipes/${randomUUID()}/recipe.tgz`;
  if (put) await svc.putObject(BUCKET, key, content);
  return { key, path: `s3://${BUCKET}/${key}` };
}

/** Removes an object behind IMS's back. */
async function removeObject(key: string): Promise<void> {
  await svc.s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
  expect(await svc.exists(BUCKET, key)).toBe(false);
}

async function etagOf(key: string): Promise<string> {
  const out = await svc.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  return (out.ETag ?? '').replaceAll('"', '');
}

async function createRecipe(extra: Record<string, unknown> = {}, prefix = '/v3'): Promise<Recipe> {
  const res = await svc.request('POST', `${prefix}/recipes`, { ...base, ...extra });
  expect(res.status).toBe(201);
  return res.body as Recipe;
}

async function linkedRecipe(extra: Record<string, unknown> = {}) {
  const a = await archive();
  const recipe = await createRecipe({ link: { path: a.path, type: 's3' }, ...extra });
  return { recipe, ...a };
}

const get = (path: string) => svc.request('GET', path);
const cannotValidate = (repr: string) => `The s3 artifact ${repr} cannot be validated. ${RETRY}`;
const duplicate = (path: string, owner: string) =>
  `The link path ${path} matches the link path for the IMS recipe record ${owner}. The link value must be unique and cannot be ` +
  'duplicated. Determine the specific information that is missing or invalid and then re-run the request with valid information.';

async function liveIds(): Promise<string[]> {
  return ((await get('/v3/recipes')).body as Recipe[]).map((r) => r.id);
}
async function deletedIds(): Promise<string[]> {
  return ((await get('/v3/deleted/recipes')).body as Recipe[]).map((r) => r.id);
}

describe('POST', () => {
  test('defaults: require_dkms true, arch x86_64, template_dictionary [], link null; exactly nine keys', async () => {
    const res = await svc.request('POST', '/v3/recipes', base);
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(RECIPE_KEYS);
    expect(res.body).toEqual({
      ...base,
      id: expect.stringMatching(UUID_RE),
      created: expect.stringMatching(TIMESTAMP_RE),
      link: null,
      template_dictionary: [],
      require_dkms: true,
      arch: 'x86_64',
    });
    expect((await get(`/v3/recipes/${res.body.id}`)).body).toEqual(res.body);
  });

  test('every field given is stored as sent; a link keeps its etag', async () => {
    const a = await archive();
    const body = {
      name: 'centos',
      recipe_type: 'packer',
      linux_distribution: 'centos7',
      link: { path: a.path, etag: 'not-the-real-etag', type: 's3' },
      template_dictionary: [
        { key: 'CSM_RELEASE_VERSION', value: '1.5.0' },
        { key: 'empty', value: '' },
      ],
      require_dkms: false,
      arch: 'aarch64',
    };
    const res = await svc.request('POST', '/v2/recipes', body);
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ ...body, id: expect.stringMatching(UUID_RE), created: expect.any(String) });
    expect((await get(`/recipes/${res.body.id}`)).body).toEqual(res.body);
  });

  test('a link given without etag is stored with etag ""', async () => {
    const a = await archive();
    const recipe = await createRecipe({ link: { type: 's3', path: a.path } }, '');
    expect(recipe.link).toEqual({ path: a.path, etag: '', type: 's3' });
    expect(Object.keys(recipe.link!).sort()).toEqual(['etag', 'path', 'type']);
  });

  test('explicit null link and null template_dictionary are kept as null', async () => {
    const recipe = await createRecipe({ link: null, template_dictionary: null });
    expect(recipe.link).toBeNull();
    expect(recipe.template_dictionary).toBeNull();
  });

  test('required fields', async () => {
    expectSchemaErrors(await svc.request('POST', '/v3/recipes', { arch: 'x86_64' }), {
      name: [REQUIRED],
      recipe_type: [REQUIRED],
      linux_distribution: [REQUIRED],
    });
    expectSchemaErrors(await svc.request('POST', '/v3/recipes', { ...base, name: '' }), { name: ['name field must not be blank'] });
    expectSchemaErrors(await svc.request('POST', '/v3/recipes', { ...base, name: 42 }), { name: ['Not a valid string.'] });
    expectSchemaErrors(await svc.request('POST', '/v3/recipes', { ...base, name: null }), { name: ['Field may not be null.'] });
  });

  test('enum messages, case-sensitive', async () => {
    const cases: [Record<string, unknown>, Record<string, string[]>][] = [
      [{ recipe_type: 'KIWI-NG' }, { recipe_type: ['Recipe type must be one of: kiwi-ng, packer.'] }],
      [{ recipe_type: 'docker' }, { recipe_type: ['Recipe type must be one of: kiwi-ng, packer.'] }],
      [{ linux_distribution: 'SLES15' }, { linux_distribution: ['Recipe type must be one of: sles12, sles15, centos7.'] }],
      [{ linux_distribution: 'rhel8' }, { linux_distribution: ['Recipe type must be one of: sles12, sles15, centos7.'] }],
      [{ arch: 'X86_64' }, { arch: ['Must be one of: aarch64, x86_64.'] }],
      [{ arch: 'arm64' }, { arch: ['Must be one of: aarch64, x86_64.'] }],
      [{ arch: null }, { arch: ['Field may not be null.'] }],
      [{ recipe_type: 1 }, { recipe_type: ['Not a valid string.'] }],
    ];
    for (const [extra, errors] of cases) expectSchemaErrors(await svc.request('POST', '/v3/recipes', { ...base, ...extra }), errors);
  });

  test('all field errors are reported together', async () => {
    const res = await svc.request('POST', '/v3/recipes', { name: '', recipe_type: 'x', linux_distribution: 'y', arch: 'z', require_dkms: 'maybe' });
    expectSchemaErrors(res, {
      name: ['name field must not be blank'],
      recipe_type: ['Recipe type must be one of: kiwi-ng, packer.'],
      linux_distribution: ['Recipe type must be one of: sles12, sles15, centos7.'],
      arch: ['Must be one of: aarch64, x86_64.'],
      require_dkms: ['Not a valid boolean.'],
    });
  });

  test.each([
    ['yes', true],
    [1, true],
    ['True', true],
    ['on', true],
    ['off', false],
    [0, false],
    ['n', false],
    ['FALSE', false],
  ])('require_dkms %j is read as %s', async (value, expected) => {
    const recipe = await createRecipe({ require_dkms: value });
    expect(recipe.require_dkms).toBe(expected);
  });

  test.each(['maybe', 2, 'tRuE', '', [true], { a: 1 }])('require_dkms %j is not a valid boolean', async (value) => {
    expectSchemaErrors(await svc.request('POST', '/v3/recipes', { ...base, require_dkms: value }), { require_dkms: ['Not a valid boolean.'] });
  });

  test('unknown and read-only fields are rejected', async () => {
    expectSchemaErrors(
      await svc.request('POST', '/v3/recipes', { ...base, id: '5a1b1a3e-3b8f-4c43-a2a4-1c1b9f3f7a10', created: 'now', deleted: 'x', color: 'red' }),
      { id: ['Unknown field.'], created: ['Unknown field.'], deleted: ['Unknown field.'], color: ['Unknown field.'] },
    );
  });

  test('template_dictionary item errors are keyed by index', async () => {
    expectSchemaErrors(
      await svc.request('POST', '/v3/recipes', {
        ...base,
        template_dictionary: [{ key: 'ok', value: 'ok' }, { key: 'a' }, { key: 1, value: 'b', extra: true }, 'x', null],
      }),
      {
        template_dictionary: {
          '1': { value: [REQUIRED] },
          '2': { key: ['Not a valid string.'], extra: ['Unknown field.'] },
          '3': { _schema: ['Invalid input type.'] },
          '4': ['Field may not be null.'],
        },
      },
    );
    expectSchemaErrors(await svc.request('POST', '/v3/recipes', { ...base, template_dictionary: { key: 'a', value: 'b' } }), {
      template_dictionary: ['Not a valid list.'],
    });
    expectSchemaErrors(await svc.request('POST', '/v3/recipes', { ...base, template_dictionary: [{ value: null }] }), {
      template_dictionary: { '0': { key: [REQUIRED], value: ['Field may not be null.'] } },
    });
  });

  test('link schema errors nest under link', async () => {
    const cases: [unknown, unknown][] = [
      [{ path: 's3://ims/a', type: 'S3' }, { type: ['Type must be one of: s3.'] }],
      [{ path: 's3://ims/a', type: 'http' }, { type: ['Type must be one of: s3.'] }],
      [{ path: '', type: 's3' }, { path: ['name field must not be blank'] }],
      [{ type: 's3' }, { path: [REQUIRED] }],
      [{ path: 's3://ims/a' }, { type: [REQUIRED] }],
      [{ path: 's3://ims/a', type: null }, { type: ['Field may not be null.'] }],
      [{ path: 's3://ims/a', type: 's3', etag: null }, { etag: ['Field may not be null.'] }],
      [{ path: 's3://ims/a', type: 's3', etag: 5 }, { etag: ['Not a valid string.'] }],
      [{ path: 5, type: 's3' }, { path: ['Not a valid string.'] }],
      [{ path: 's3://ims/a', type: 's3', md5: 'x' }, { md5: ['Unknown field.'] }],
      ['s3://ims/a', { _schema: ['Invalid input type.'] }],
      [['s3://ims/a'], { _schema: ['Invalid input type.'] }],
    ];
    for (const [link, errors] of cases) {
      expectSchemaErrors(await svc.request('POST', '/v3/recipes', { ...base, link }), { link: errors });
    }
  });

  test('a link to a missing S3 object → 422 with the repr of the link; nothing is created', async () => {
    const before = await liveIds();
    const res = await svc.request('POST', '/v3/recipes', { ...base, link: { path: 's3://ims/missing.tgz', type: 's3' } });
    expectProblem(
      res,
      422,
      "The s3 artifact {'etag': '', 'type': 's3', 'path': 's3://ims/missing.tgz'} cannot be validated. Please determine the specific " +
        'information that is missing or invalid and then re-run the request with valid information.',
    );
    const withEtag = await svc.request('POST', '/v2/recipes', { ...base, link: { path: 's3://ims/missing.tgz', etag: 'abc', type: 's3' } });
    expectProblem(withEtag, 422, cannotValidate("{'etag': 'abc', 'type': 's3', 'path': 's3://ims/missing.tgz'}"));
    expect(await liveIds()).toEqual(before);
  });

  test.each(['foo', 's3://', 's3://ims', 's3://ims/', 's3:///key', 'http://ims/a.tgz', 's3://no_such!bucket/a', 's3://no-such-bucket/a.tgz'])(
    'link path %j → 422 (not 500)',
    async (path) => {
      const res = await svc.request('POST', '/v3/recipes', { ...base, link: { path, type: 's3' } });
      expectProblem(res, 422, cannotValidate(`{'etag': '', 'type': 's3', 'path': '${path}'}`));
    },
  );

  test('a stored etag that differs from the object is accepted', async () => {
    const a = await archive();
    const recipe = await createRecipe({ link: { path: a.path, etag: 'deadbeef', type: 's3' } });
    expect(recipe.link).toEqual({ path: a.path, etag: 'deadbeef', type: 's3' });
    expect(await etagOf(a.key)).not.toBe('deadbeef');
  });

  test('a ?query in the path is part of the key', async () => {
    const key = `recipes/${randomUUID()}.tgz?version=2`;
    await svc.putObject(BUCKET, key, 'q');
    const recipe = await createRecipe({ link: { path: `s3://${BUCKET}/${key}`, type: 's3' } });
    expect(recipe.link!.path).toBe(`s3://${BUCKET}/${key}`);
    const missing = await svc.request('POST', '/v3/recipes', { ...base, link: { path: `s3://${BUCKET}/${key.replace('2', '3')}`, type: 's3' } });
    expect(missing.status).toBe(422);
  });

  test('a duplicate link among live recipes → 422 naming the owner (the reference answered 500)', async () => {
    const { recipe, path } = await linkedRecipe();
    const before = await liveIds();
    for (const link of [
      { path, type: 's3' },
      { path, etag: 'other', type: 's3' },
    ]) {
      expectProblem(await svc.request('POST', '/v3/recipes', { ...base, link }), 422, duplicate(path, recipe.id));
    }
    expect(await liveIds()).toEqual(before);
  });

  test('uniqueness is checked before existence', async () => {
    const { recipe, key, path } = await linkedRecipe();
    // The object disappears behind IMS's back: the duplicate is still what is reported.
    await removeObject(key);
    expectProblem(await svc.request('POST', '/v3/recipes', { ...base, link: { path, type: 's3' } }), 422, duplicate(path, recipe.id));
  });

  test('a path refused because its object was missing can be used once the object exists', async () => {
    const a = await archive(false);
    expect((await svc.request('POST', '/v3/recipes', { ...base, link: { path: a.path, type: 's3' } })).status).toBe(422);
    await svc.putObject(BUCKET, a.key, 'now here');
    const recipe = await createRecipe({ link: { path: a.path, type: 's3' } });
    expect(recipe.link!.path).toBe(a.path);
  });

  test('body checks come before the link checks', async () => {
    expectNoInput(await svc.request('POST', '/v3/recipes', {}));
    expectSchemaErrors(await svc.request('POST', '/v3/recipes', { ...base, arch: 'ppc', link: { path: 's3://ims/missing', type: 's3' } }), {
      arch: ['Must be one of: aarch64, x86_64.'],
    });
  });
});

describe('links outside the locations the signing key may read (IMS_RECIPE_LINK_PREFIXES, as deployed)', () => {
  const prefixes = [`s3://${BUCKET}/recipes/`];
  const outside = (path: string) =>
    `The link path ${path} is outside the locations this service can give download URLs for (s3://${BUCKET}/recipes/), so no job could fetch the recipe. Store the archive under one of them and re-run the request with valid information.`;
  const fieldError = { link: { path: [`Must start with one of: s3://${BUCKET}/recipes/.`] } };

  async function withPrefixes(run: () => Promise<void>) {
    svc.app.settings.recipeLinkPrefixes = prefixes;
    try {
      await run();
    } finally {
      svc.app.settings.recipeLinkPrefixes = undefined;
    }
  }

  test('POST and PATCH refuse them with a 422 naming the field, before anything is claimed; links under the prefix are taken', () =>
    withPrefixes(async () => {
      const key = `elsewhere/${randomUUID()}/recipe.tgz`;
      await svc.putObject(BUCKET, key, 'an archive the signing key may not read');
      const path = `s3://${BUCKET}/${key}`;
      expectProblem(await svc.request('POST', '/v3/recipes', { ...base, link: { path, type: 's3' } }), 422, outside(path), fieldError);
      const bare = await createRecipe();
      expectProblem(await svc.request('PATCH', `/v3/recipes/${bare.id}`, { link: { path, type: 's3' } }), 422, outside(path), fieldError);
      expect((await get(`/v3/recipes/${bare.id}`)).body.link).toBeNull();
      // Nothing was claimed: with the check off (embedded), the same link is taken.
      const inside = await linkedRecipe();
      expect(inside.recipe.link?.path).toBe(inside.path);
      svc.app.settings.recipeLinkPrefixes = undefined;
      expect((await svc.request('POST', '/v3/recipes', { ...base, link: { path, type: 's3' } })).status).toBe(201);
    }));
});

describe('GET', () => {
  test('collection in insertion order across versions; item or 404', async () => {
    const a = await createRecipe({ name: 'a' }, '/v2');
    const b = await createRecipe({ name: 'b' }, '');
    for (const prefix of ['/v3', '/v2', '']) {
      const list = (await get(`${prefix}/recipes`)).body as Recipe[];
      const ids = list.map((r) => r.id);
      expect(ids.indexOf(a.id)).toBeLessThan(ids.indexOf(b.id));
      expect(list.find((r) => r.id === a.id)).toEqual(a);
      expect((await get(`${prefix}/recipes/${b.id}`)).body).toEqual(b);
      for (const id of ['00000000-0000-4000-8000-000000000000', a.id.toUpperCase(), a.id.replaceAll('-', ''), 'recipe']) {
        expectNotFound(await get(`${prefix}/recipes/${id}`));
      }
    }
  });
});

describe('PATCH', () => {
  test('404 before 400 before 422', async () => {
    const recipe = await createRecipe();
    const unknown = '/v3/recipes/00000000-0000-4000-8000-000000000000';
    expectNotFound(await svc.request('PATCH', unknown, {}));
    expectNotFound(await svc.request('PATCH', unknown, { name: 'x' }));
    expectNotFound(await svc.request('PATCH', `/v3/recipes/${recipe.id.toUpperCase()}`, { arch: 'aarch64' }));
    expectNoInput(await svc.request('PATCH', `/v3/recipes/${recipe.id}`, {}));
    expectSchemaErrors(await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { name: 'x' }), { name: ['Unknown field.'] });
  });

  test('only link, arch, require_dkms and template_dictionary may be patched', async () => {
    const recipe = await createRecipe();
    const res = await svc.request('PATCH', `/v2/recipes/${recipe.id}`, {
      name: 'x',
      recipe_type: 'packer',
      linux_distribution: 'centos7',
      id: recipe.id,
      created: recipe.created,
      arch: 'aarch64',
    });
    expectSchemaErrors(res, {
      name: ['Unknown field.'],
      recipe_type: ['Unknown field.'],
      linux_distribution: ['Unknown field.'],
      id: ['Unknown field.'],
      created: ['Unknown field.'],
    });
    expect((await get(`/v3/recipes/${recipe.id}`)).body).toEqual(recipe);
  });

  test('arch, require_dkms and template_dictionary → 200 with the full record, persisted', async () => {
    const recipe = await createRecipe({ template_dictionary: [{ key: 'a', value: '1' }] });
    const res = await svc.request('PATCH', `/v3/recipes/${recipe.id}`, {
      arch: 'aarch64',
      require_dkms: 'no',
      template_dictionary: [
        { key: 'b', value: '2' },
        { key: 'c', value: '3' },
      ],
    });
    expect(res.status).toBe(200);
    const expected = {
      ...recipe,
      arch: 'aarch64',
      require_dkms: false,
      template_dictionary: [
        { key: 'b', value: '2' },
        { key: 'c', value: '3' },
      ],
    };
    expect(res.body).toEqual(expected);
    expect((await get(`/v2/recipes/${recipe.id}`)).body).toEqual(expected);

    const cleared = await svc.request('PATCH', `/recipes/${recipe.id}`, { template_dictionary: [], require_dkms: 1 });
    expect(cleared.status).toBe(200);
    expect(cleared.body).toEqual({ ...expected, template_dictionary: [], require_dkms: true });
  });

  test('template_dictionary null is stored as null (the reference answered 500)', async () => {
    const recipe = await createRecipe();
    const res = await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { template_dictionary: null });
    expect(res.status).toBe(200);
    expect(res.body.template_dictionary).toBeNull();
  });

  test('value errors', async () => {
    const recipe = await createRecipe();
    expectSchemaErrors(
      await svc.request('PATCH', `/v3/recipes/${recipe.id}`, {
        arch: 'ARM',
        require_dkms: 'maybe',
        template_dictionary: [{ key: 'k' }],
        link: null,
      }),
      {
        arch: ['Must be one of: aarch64, x86_64.'],
        require_dkms: ['Not a valid boolean.'],
        template_dictionary: { '0': { value: [REQUIRED] } },
        link: ['Field may not be null.'],
      },
    );
    expectSchemaErrors(await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { link: { path: 's3://ims/x', type: 'S3' } }), {
      link: { type: ['Type must be one of: s3.'] },
    });
    expect((await get(`/v3/recipes/${recipe.id}`)).body).toEqual(recipe);
  });

  test('the same link (dict equality) → 200 no-op', async () => {
    const { recipe, path } = await linkedRecipe();
    const res = await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { link: { path, etag: '', type: 's3' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(recipe);
    const reordered = await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { link: { type: 's3', etag: '', path }, arch: 'aarch64' });
    expect(reordered.status).toBe(200);
    expect(reordered.body).toEqual({ ...recipe, arch: 'aarch64' });
  });

  test('the same path sent without etag differs from a stored etag "" → 409, as the reference', async () => {
    const { recipe, path } = await linkedRecipe();
    expectProblem(await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { link: { path, type: 's3' } }), 409, CONFLICT);
    expectProblem(await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { link: { path, etag: 'x', type: 's3' } }), 409, CONFLICT);
    expect((await get(`/v3/recipes/${recipe.id}`)).body).toEqual(recipe);
  });

  test('a stored etag must be matched exactly for the no-op', async () => {
    const a = await archive();
    const recipe = await createRecipe({ link: { path: a.path, etag: 'abc', type: 's3' } });
    expect((await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { link: { path: a.path, etag: 'abc', type: 's3' } })).status).toBe(200);
    expect((await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { link: { path: a.path, etag: '', type: 's3' } })).status).toBe(409);
  });

  test('a different link → 409 and nothing changes', async () => {
    const { recipe } = await linkedRecipe();
    const other = await archive();
    expectProblem(await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { link: { path: other.path, etag: '', type: 's3' } }), 409, CONFLICT);
    expect((await get(`/v3/recipes/${recipe.id}`)).body).toEqual(recipe);
  });

  test('setting a link when there is none: checked for existence, stored with etag ""', async () => {
    const recipe = await createRecipe();
    const missing = await archive(false);
    expectProblem(
      await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { link: { path: missing.path, type: 's3' } }),
      422,
      cannotValidate(`{'etag': '', 'type': 's3', 'path': '${missing.path}'}`),
    );
    expectProblem(
      await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { link: { path: 'foo', type: 's3' } }),
      422,
      cannotValidate("{'etag': '', 'type': 's3', 'path': 'foo'}"),
    );
    expect((await get(`/v3/recipes/${recipe.id}`)).body).toEqual(recipe);

    const a = await archive();
    const res = await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { link: { path: a.path, type: 's3' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ...recipe, link: { path: a.path, etag: '', type: 's3' } });
    expect((await get(`/v3/recipes/${recipe.id}`)).body).toEqual(res.body);
  });

  test("setting a link that another live recipe holds → 422 duplicate", async () => {
    const { recipe: owner, path } = await linkedRecipe();
    const recipe = await createRecipe();
    expectProblem(await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { link: { path, type: 's3' } }), 422, duplicate(path, owner.id));
    expect((await get(`/v3/recipes/${recipe.id}`)).body).toEqual(recipe);
  });

  test('PATCH is atomic: a valid arch with a conflicting link changes nothing', async () => {
    const { recipe } = await linkedRecipe();
    const other = await archive();
    const res = await svc.request('PATCH', `/v3/recipes/${recipe.id}`, {
      arch: 'aarch64',
      require_dkms: false,
      link: { path: other.path, type: 's3' },
    });
    expectProblem(res, 409, CONFLICT);
    expect((await get(`/v3/recipes/${recipe.id}`)).body).toEqual(recipe);
  });

  test('PATCH is atomic: a failed link check changes nothing and leaves the path free', async () => {
    const recipe = await createRecipe();
    const a = await archive(false);
    const res = await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { arch: 'aarch64', link: { path: a.path, type: 's3' } });
    expect(res.status).toBe(422);
    expect((await get(`/v3/recipes/${recipe.id}`)).body).toEqual(recipe);
    await svc.putObject(BUCKET, a.key, 'late');
    const other = await createRecipe({ link: { path: a.path, type: 's3' } });
    expect(other.link!.path).toBe(a.path);
  });

  test('a soft-deleted recipe cannot be patched', async () => {
    const recipe = await createRecipe();
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    expectNotFound(await svc.request('PATCH', `/v3/recipes/${recipe.id}`, { arch: 'aarch64' }));
  });
});

describe('DELETE, v2 and unversioned (hard)', () => {
  test.each([
    ['/v2', ''],
    ['', ''],
    ['/v2', '?cascade=true'],
    ['/v2', '?cascade=True'],
    ['/v2', '?cascade=YES'],
    ['/v2', '?cascade=t'],
    ['', '?cascade=1'],
  ])('DELETE %s/recipes/{id}%s removes the record for good and the S3 object', async (prefix, query) => {
    const { recipe, key } = await linkedRecipe();
    expectNoContent(await svc.request('DELETE', `${prefix}/recipes/${recipe.id}${query}`));
    expect(await svc.exists(BUCKET, key)).toBe(false);
    expect(await svc.exists(BUCKET, `deleted/${key}`)).toBe(false);
    expectNotFound(await get(`/v3/recipes/${recipe.id}`));
    expectNotFound(await get(`/v3/deleted/recipes/${recipe.id}`));
    expect(await deletedIds()).not.toContain(recipe.id);
  });

  test.each(['?cascade=false', '?cascade=False', '?cascade=no', '?cascade=0', '?cascade=', '?cascade=maybe', '?cascade=%00'])(
    'DELETE /v2/recipes/{id}%s keeps the S3 object (never a 500)',
    async (query) => {
      const { recipe, key } = await linkedRecipe();
      expectNoContent(await svc.request('DELETE', `/v2/recipes/${recipe.id}${query}`));
      expect(await svc.exists(BUCKET, key)).toBe(true);
      expectNotFound(await get(`/v2/recipes/${recipe.id}`));
    },
  );

  test('a missing S3 object or no link does not stop the delete', async () => {
    const { recipe, key } = await linkedRecipe();
    await removeObject(key);
    expectNoContent(await svc.request('DELETE', `/v2/recipes/${recipe.id}`));
    const bare = await createRecipe();
    expectNoContent(await svc.request('DELETE', `/recipes/${bare.id}`));
    expectNotFound(await get(`/v3/recipes/${bare.id}`));
  });

  test('unknown ids → 404', async () => {
    expectNotFound(await svc.request('DELETE', '/v2/recipes/00000000-0000-4000-8000-000000000000'));
    expectNotFound(await svc.request('DELETE', '/recipes/not-a-uuid'));
  });

  test('a hard-deleted link path can be used again', async () => {
    const { recipe, key, path } = await linkedRecipe();
    expectNoContent(await svc.request('DELETE', `/v2/recipes/${recipe.id}?cascade=false`));
    expect(await svc.exists(BUCKET, key)).toBe(true);
    const again = await createRecipe({ link: { path, type: 's3' } });
    expect(again.link!.path).toBe(path);
  });

  test('collection DELETE: every recipe, with and without cascade', async () => {
    const one = await linkedRecipe();
    const two = await linkedRecipe();
    expectNoContent(await svc.request('DELETE', '/v2/recipes?cascade=false'));
    expect(await liveIds()).toEqual([]);
    expect(await svc.exists(BUCKET, one.key)).toBe(true);
    expect(await svc.exists(BUCKET, two.key)).toBe(true);

    const three = await linkedRecipe();
    const four = await createRecipe();
    expectNoContent(await svc.request('DELETE', '/recipes'));
    expect(await liveIds()).toEqual([]);
    expect(await svc.exists(BUCKET, three.key)).toBe(false);
    expect(await deletedIds()).not.toContain(three.recipe.id);
    expect(await deletedIds()).not.toContain(four.id);
  });
});

describe('DELETE, v3 (soft)', () => {
  test('the object moves to deleted/<key> in the same bucket; the deleted record links there with all ten keys', async () => {
    const content = `payload ${randomUUID()}`;
    const a = await archive(true, content);
    const recipe = await createRecipe({
      link: { path: a.path, type: 's3' },
      template_dictionary: [{ key: 'k', value: 'v' }],
      require_dkms: false,
      arch: 'aarch64',
    });
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}?cascade=false`));
    expect(await svc.exists(BUCKET, a.key)).toBe(false);
    expect(await svc.getObjectText(BUCKET, `deleted/${a.key}`)).toBe(content);

    expectNotFound(await get(`/v3/recipes/${recipe.id}`));
    const deleted = await get(`/v3/deleted/recipes/${recipe.id}`);
    expect(deleted.status).toBe(200);
    expect(Object.keys(deleted.body).sort()).toEqual([...RECIPE_KEYS, 'deleted'].sort());
    expect(deleted.body).toEqual({
      ...recipe,
      link: { path: `s3://${BUCKET}/deleted/${a.key}`, etag: await etagOf(`deleted/${a.key}`), type: 's3' },
      deleted: expect.stringMatching(TIMESTAMP_RE),
    });
    expect(deleted.body.link.etag).not.toBe('');
    expect((await get('/v3/deleted/recipes')).body).toContainEqual(deleted.body);
  });

  test('a recipe without a link is soft-deleted too', async () => {
    const recipe = await createRecipe();
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    expect((await get(`/v3/deleted/recipes/${recipe.id}`)).body).toEqual({ ...recipe, deleted: expect.stringMatching(TIMESTAMP_RE) });
  });

  test('when the object is missing the delete still succeeds and the link is left unchanged', async () => {
    const { recipe, key } = await linkedRecipe();
    await removeObject(key);
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    expect((await get(`/v3/deleted/recipes/${recipe.id}`)).body).toEqual({ ...recipe, deleted: expect.any(String) });
  });

  test('deleting again through the live route → 404; unknown → 404', async () => {
    const recipe = await createRecipe();
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    expectNotFound(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    expectNotFound(await svc.request('DELETE', `/v2/recipes/${recipe.id}`));
    expectNotFound(await svc.request('DELETE', '/v3/recipes/00000000-0000-4000-8000-000000000000'));
  });

  test('collection DELETE soft-deletes every live recipe and moves every object', async () => {
    const one = await linkedRecipe();
    const two = await linkedRecipe();
    const bare = await createRecipe();
    expectNoContent(await svc.request('DELETE', '/v3/recipes'));
    expect(await liveIds()).toEqual([]);
    const deleted = await deletedIds();
    for (const id of [one.recipe.id, two.recipe.id, bare.id]) expect(deleted).toContain(id);
    for (const { key, recipe } of [one, two]) {
      expect(await svc.exists(BUCKET, key)).toBe(false);
      expect(await svc.exists(BUCKET, `deleted/${key}`)).toBe(true);
      expect((await get(`/v3/deleted/recipes/${recipe.id}`)).body.link.path).toBe(`s3://${BUCKET}/deleted/${key}`);
    }
  });

  test("a soft-deleted recipe's link path can be reused by a new recipe", async () => {
    const { recipe, key, path } = await linkedRecipe();
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    await svc.putObject(BUCKET, key, 'a new archive');
    const again = await createRecipe({ link: { path, type: 's3' } });
    expect(again.link!.path).toBe(path);
  });

  test('even when the deleted record still names that path (its object could not be moved)', async () => {
    const { recipe, key, path } = await linkedRecipe();
    await removeObject(key);
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    expect((await get(`/v3/deleted/recipes/${recipe.id}`)).body.link.path).toBe(path);
    await svc.putObject(BUCKET, key, 'a new archive');
    const again = await createRecipe({ link: { path, type: 's3' } });
    expect(again.link!.path).toBe(path);
  });
});

describe('undelete', () => {
  test('moves the object back and restores the original path; same id, created and fields', async () => {
    const content = `payload ${randomUUID()}`;
    const a = await archive(true, content);
    const recipe = await createRecipe({ link: { path: a.path, type: 's3' }, arch: 'aarch64', template_dictionary: [{ key: 'k', value: 'v' }] });
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    expectNoContent(await svc.request('PATCH', `/v3/deleted/recipes/${recipe.id}`, { operation: 'undelete' }));

    expect(await svc.exists(BUCKET, `deleted/${a.key}`)).toBe(false);
    expect(await svc.getObjectText(BUCKET, a.key)).toBe(content);
    const live = await get(`/v3/recipes/${recipe.id}`);
    expect(live.status).toBe(200);
    expect(live.body).toEqual({ ...recipe, link: { path: a.path, etag: await etagOf(a.key), type: 's3' } });
    expect(Object.keys(live.body).sort()).toEqual(RECIPE_KEYS);
    expectNotFound(await get(`/v3/deleted/recipes/${recipe.id}`));
  });

  test('with the deleted object missing → 422 and the record stays deleted', async () => {
    const { recipe, key } = await linkedRecipe();
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    const deleted = (await get(`/v3/deleted/recipes/${recipe.id}`)).body;
    await removeObject(`deleted/${key}`);

    const res = await svc.request('PATCH', `/v3/deleted/recipes/${recipe.id}`, { operation: 'undelete' });
    expectProblem(res, 422);
    expect(res.body.detail).toMatch(/^The s3 artifact \{.*\} cannot be validated\. Please determine the specific information/);
    expect(res.body.detail).toContain(`'path': 's3://${BUCKET}/deleted/${key}'`);
    expect(res.body.detail).toContain(`'etag': '${deleted.link.etag}'`);
    expectNotFound(await get(`/v3/recipes/${recipe.id}`));
    expect((await get(`/v3/deleted/recipes/${recipe.id}`)).body).toEqual(deleted);
  });

  test('a link that was never moved (object missing at delete) is restored as it is', async () => {
    const { recipe, key } = await linkedRecipe();
    await removeObject(key);
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    expectNoContent(await svc.request('PATCH', `/v3/deleted/recipes/${recipe.id}`, { operation: 'undelete' }));
    expect((await get(`/v3/recipes/${recipe.id}`)).body).toEqual(recipe);
  });

  test('a recipe whose original path was taken meanwhile stays deleted (the reference would overwrite the archive)', async () => {
    const { recipe, key, path } = await linkedRecipe();
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    await svc.putObject(BUCKET, key, 'the newcomer');
    const newcomer = await createRecipe({ link: { path, type: 's3' } });
    const res = await svc.request('PATCH', `/v3/deleted/recipes/${recipe.id}`, { operation: 'undelete' });
    expectProblem(res, 422, duplicate(path, newcomer.id));
    expect(await svc.getObjectText(BUCKET, key)).toBe('the newcomer');
    expect(await svc.exists(BUCKET, `deleted/${key}`)).toBe(true);
    expect(await deletedIds()).toContain(recipe.id);
    expectNotFound(await get(`/v3/recipes/${recipe.id}`));
  });

  test('bulk undelete restores every deleted recipe and its object', async () => {
    expectNoContent(await svc.request('DELETE', '/v3/deleted/recipes'));
    const one = await linkedRecipe();
    const two = await linkedRecipe();
    const bare = await createRecipe();
    for (const id of [one.recipe.id, two.recipe.id, bare.id]) expectNoContent(await svc.request('DELETE', `/v3/recipes/${id}`));
    expectNoContent(await svc.request('PATCH', '/v3/deleted/recipes', { operation: 'undelete' }));
    expect(await deletedIds()).toEqual([]);
    for (const { recipe, key, path } of [one, two]) {
      expect(await svc.exists(BUCKET, key)).toBe(true);
      expect(await svc.exists(BUCKET, `deleted/${key}`)).toBe(false);
      expect((await get(`/v3/recipes/${recipe.id}`)).body.link).toEqual({ path, etag: await etagOf(key), type: 's3' });
    }
    expect((await get(`/v3/recipes/${bare.id}`)).body).toEqual(bare);
  });

  test('a bulk undelete that fails for one recipe restores the others and reports the failure by id', async () => {
    expectNoContent(await svc.request('DELETE', '/v3/deleted/recipes'));
    const good = await linkedRecipe();
    const bad = await linkedRecipe();
    for (const { recipe } of [good, bad]) expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    await removeObject(`deleted/${bad.key}`);
    const res = await svc.request('PATCH', '/v3/deleted/recipes', { operation: 'undelete' });
    expectProblem(res, 422, undefined, {
      [bad.recipe.id]: [expect.stringMatching(new RegExp(`^The s3 artifact .*'s3://${BUCKET}/deleted/${bad.key}'.* cannot be validated`))],
    });
    expect((await get(`/v3/recipes/${good.recipe.id}`)).status).toBe(200);
    expect(await svc.exists(BUCKET, good.key)).toBe(true);
    expect(await deletedIds()).toEqual([bad.recipe.id]);
    expectNotFound(await get(`/v3/recipes/${bad.recipe.id}`));
  });

  test('undelete body errors change nothing', async () => {
    const recipe = await createRecipe();
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    for (const path of [`/v3/deleted/recipes/${recipe.id}`, '/v3/deleted/recipes']) {
      expectNoInput(await svc.request('PATCH', path, {}));
      expectSchemaErrors(await svc.request('PATCH', path, { operation: 'UNDELETE' }), { operation: ['Recipe type must be one of: undelete.'] });
      expectSchemaErrors(await svc.request('PATCH', path, { operation: 'undelete', name: 'x' }), { name: ['Unknown field.'] });
    }
    expect(await deletedIds()).toContain(recipe.id);
    expectNotFound(await svc.request('PATCH', '/v3/deleted/recipes/00000000-0000-4000-8000-000000000000', { operation: 'undelete' }));
    expectNotFound(await svc.request('PATCH', `/v3/deleted/recipes/${recipe.id.toUpperCase()}`, { operation: 'undelete' }));
  });
});

describe('purge', () => {
  test('DELETE deleted item removes the record and its S3 object', async () => {
    const { recipe, key } = await linkedRecipe();
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    expect(await svc.exists(BUCKET, `deleted/${key}`)).toBe(true);
    expectNoContent(await svc.request('DELETE', `/v3/deleted/recipes/${recipe.id}`));
    expect(await svc.exists(BUCKET, `deleted/${key}`)).toBe(false);
    expect(await svc.exists(BUCKET, key)).toBe(false);
    expectNotFound(await get(`/v3/deleted/recipes/${recipe.id}`));
    expectNotFound(await get(`/v3/recipes/${recipe.id}`));
    expectNotFound(await svc.request('DELETE', `/v3/deleted/recipes/${recipe.id}`));
  });

  test('purge with the object already gone still succeeds', async () => {
    const { recipe, key } = await linkedRecipe();
    expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    await removeObject(`deleted/${key}`);
    expectNoContent(await svc.request('DELETE', `/v3/deleted/recipes/${recipe.id}`));
    expectNotFound(await get(`/v3/deleted/recipes/${recipe.id}`));
  });

  test('a live recipe cannot be purged; unknown ids → 404', async () => {
    const { recipe, key } = await linkedRecipe();
    expectNotFound(await svc.request('DELETE', `/v3/deleted/recipes/${recipe.id}`));
    expect(await svc.exists(BUCKET, key)).toBe(true);
    expectNotFound(await get(`/v3/deleted/recipes/${recipe.id}`));
    expectNotFound(await svc.request('DELETE', '/v3/deleted/recipes/not-a-uuid'));
  });

  test('DELETE deleted collection purges every deleted recipe and its objects; live ones stay', async () => {
    const one = await linkedRecipe();
    const two = await linkedRecipe();
    const live = await linkedRecipe();
    for (const { recipe } of [one, two]) expectNoContent(await svc.request('DELETE', `/v3/recipes/${recipe.id}`));
    expectNoContent(await svc.request('DELETE', '/v3/deleted/recipes'));
    expect(await deletedIds()).toEqual([]);
    for (const { key } of [one, two]) expect(await svc.exists(BUCKET, `deleted/${key}`)).toBe(false);
    expect(await liveIds()).toContain(live.recipe.id);
    expect(await svc.exists(BUCKET, live.key)).toBe(true);
  });
});
