/** §4 public keys and §7.0/§7.1 their soft-deleted records, through the embedded HTTP server. */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { startTestService, type TestService } from '../helpers/service.js';
import {
  TIMESTAMP_RE,
  UUID_RE,
  expectMethodNotAllowed,
  expectNoContent,
  expectNoInput,
  expectNotFound,
  expectSchemaErrors,
} from '../helpers/problems.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

/** Every test starts with no live and no deleted keys. */
beforeEach(async () => {
  expect((await svc.request('DELETE', '/v2/public-keys')).status).toBe(204);
  expect((await svc.request('DELETE', '/v3/deleted/public-keys')).status).toBe(204);
});

const PREFIXES = ['/v3', '/v2', ''] as const;
const HARD_PREFIXES = [
  { label: '/v2', prefix: '/v2' },
  { label: 'unversioned', prefix: '' },
];
const REQUIRED = 'Missing data for required field.';

async function createKey(prefix = '/v3', name = 'admin', publicKey = 'ssh-ed25519 AAAAC3Nza test@host') {
  const res = await svc.request('POST', `${prefix}/public-keys`, { name, public_key: publicKey });
  expect(res.status).toBe(201);
  return res.body as { id: string; created: string; name: string; public_key: string };
}

const liveIds = async (prefix = '/v3') => ((await svc.request('GET', `${prefix}/public-keys`)).body as { id: string }[]).map((k) => k.id);
const deletedIds = async () => ((await svc.request('GET', '/v3/deleted/public-keys')).body as { id: string }[]).map((k) => k.id);

describe('POST', () => {
  test.each(PREFIXES)('POST %s/public-keys creates a record with exactly the four keys', async (prefix) => {
    const res = await svc.request('POST', `${prefix}/public-keys`, { name: 'admin', public_key: 'ssh-ed25519 AAAA test' });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Object.keys(res.body).sort()).toEqual(['created', 'id', 'name', 'public_key']);
    expect(res.body).toMatchObject({ name: 'admin', public_key: 'ssh-ed25519 AAAA test' });
    expect(res.body.id).toMatch(UUID_RE);
    expect(res.body.created).toMatch(TIMESTAMP_RE);
  });

  test('names and key texts need not be unique, and the key text is not parsed', async () => {
    const a = await createKey('/v3', 'same', 'not really a key');
    const b = await createKey('/v3', 'same', 'not really a key');
    expect(a.id).not.toBe(b.id);
    expect(await liveIds()).toEqual([a.id, b.id]);
  });

  test('blank name and public_key get their own messages', async () => {
    const res = await svc.request('POST', '/v3/public-keys', { name: '', public_key: '' });
    expectSchemaErrors(res, { name: ['name field must not be blank'], public_key: ['public_key field must not be blank'] });
  });

  test('missing fields are required', async () => {
    expectSchemaErrors(await svc.request('POST', '/v3/public-keys', { name: 'a' }), { public_key: [REQUIRED] });
    expectSchemaErrors(await svc.request('POST', '/v2/public-keys', { public_key: 'k' }), { name: [REQUIRED] });
    expectSchemaErrors(await svc.request('POST', '/public-keys', { other: 1 }), {
      name: [REQUIRED],
      public_key: [REQUIRED],
      other: ['Unknown field.'],
    });
  });

  test('non-string and null values are rejected', async () => {
    expectSchemaErrors(await svc.request('POST', '/v3/public-keys', { name: 7, public_key: ['k'] }), {
      name: ['Not a valid string.'],
      public_key: ['Not a valid string.'],
    });
    expectSchemaErrors(await svc.request('POST', '/v3/public-keys', { name: true, public_key: { k: 1 } }), {
      name: ['Not a valid string.'],
      public_key: ['Not a valid string.'],
    });
    expectSchemaErrors(await svc.request('POST', '/v3/public-keys', { name: null, public_key: 'k' }), { name: ['Field may not be null.'] });
  });

  test('unknown fields, including the read-only id and created, are rejected', async () => {
    const res = await svc.request('POST', '/v3/public-keys', {
      name: 'a',
      public_key: 'k',
      id: '5a1b1a3e-3b8f-4c43-a2a4-1c1b9f3f7a10',
      created: '2024-01-01T00:00:00',
    });
    expectSchemaErrors(res, { id: ['Unknown field.'], created: ['Unknown field.'] });
    expect(await liveIds()).toEqual([]);
  });

  test.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])('an unknown field named %s is rejected too', async (key) => {
    const res = await svc.request('POST', '/v3/public-keys', `{"name": "a", "public_key": "k", "${key}": "x"}`);
    expectSchemaErrors(res, JSON.parse(`{"${key}": ["Unknown field."]}`));
    expect(await liveIds()).toEqual([]);
  });

  test('falsy bodies are "no input", a non-empty array is an invalid input type', async () => {
    for (const body of ['{}', '[]', 'null', '""', '0', 'false']) expectNoInput(await svc.request('POST', '/v3/public-keys', body));
    expectSchemaErrors(await svc.request('POST', '/v3/public-keys', [{ name: 'a', public_key: 'k' }]), { _schema: ['Invalid input type.'] });
    expect(await liveIds()).toEqual([]);
  });
});

describe('GET', () => {
  test('one store shared by /v3, /v2 and the unversioned alias, in insertion order', async () => {
    const a = await createKey('/v2', 'a');
    const b = await createKey('', 'b');
    const c = await createKey('/v3', 'c');
    for (const prefix of PREFIXES) {
      const list = await svc.request('GET', `${prefix}/public-keys`);
      expect(list.status).toBe(200);
      expect(list.body).toEqual([a, b, c]);
      for (const key of [a, b, c]) {
        const item = await svc.request('GET', `${prefix}/public-keys/${key.id}`);
        expect(item.status).toBe(200);
        expect(item.body).toEqual(key);
      }
    }
  });

  test('unknown query parameters are ignored', async () => {
    const a = await createKey('/v3', 'a');
    const b = await createKey('/v3', 'b');
    const res = await svc.request('GET', '/v3/public-keys?sort=desc&id=nope&public_key=x');
    expect(res.status).toBe(200);
    expect(res.body).toEqual([a, b]);
  });

  test('empty collection is an empty array', async () => {
    const res = await svc.request('GET', '/v2/public-keys');
    expect(res.status).toBe(200);
    expect(res.body).toEqual([]);
  });

  test('unknown, upper-case, non-canonical and non-UUID ids are 404 (never 400)', async () => {
    const key = await createKey();
    const compact = key.id.replaceAll('-', '');
    const ids = [
      '00000000-0000-4000-8000-000000000000',
      key.id.toUpperCase(),
      compact,
      `{${key.id}}`,
      `urn:uuid:${key.id}`,
      'not-a-uuid',
      '12345',
      'x'.repeat(3000),
    ];
    for (const prefix of PREFIXES) {
      for (const id of ids) {
        expectNotFound(await svc.request('GET', `${prefix}/public-keys/${encodeURIComponent(id)}`));
        expectNotFound(await svc.request('DELETE', `${prefix}/public-keys/${encodeURIComponent(id)}`));
      }
    }
    expect(await liveIds()).toEqual([key.id]);
  });
});

describe('no PATCH on live keys', () => {
  test('item PATCH and PUT are 405 with the allowed methods', async () => {
    const key = await createKey();
    for (const prefix of PREFIXES) {
      expectMethodNotAllowed(await svc.request('PATCH', `${prefix}/public-keys/${key.id}`, { name: 'x' }), ['DELETE', 'GET', 'HEAD', 'OPTIONS']);
      expectMethodNotAllowed(await svc.request('PUT', `${prefix}/public-keys/${key.id}`, { name: 'x' }), ['DELETE', 'GET', 'HEAD', 'OPTIONS']);
    }
    expect((await svc.request('GET', `/v3/public-keys/${key.id}`)).body).toEqual(key);
  });

  test('collection PATCH is 405; POST on an item is 405', async () => {
    const key = await createKey();
    expectMethodNotAllowed(await svc.request('PATCH', '/v3/public-keys', { name: 'x' }), ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST']);
    expectMethodNotAllowed(await svc.request('POST', `/v2/public-keys/${key.id}`, { name: 'x', public_key: 'k' }), ['DELETE', 'GET', 'HEAD', 'OPTIONS']);
  });

  test('the method is checked before the id: PATCH of an unknown id is still 405', async () => {
    expectMethodNotAllowed(await svc.request('PATCH', '/v3/public-keys/nope', { name: 'x' }), ['DELETE', 'GET', 'HEAD', 'OPTIONS']);
  });
});

describe('DELETE item', () => {
  test.each(HARD_PREFIXES)('$label DELETE is hard: gone everywhere, nothing in deleted', async ({ prefix }) => {
    const key = await createKey();
    const other = await createKey('/v3', 'other');
    expectNoContent(await svc.request('DELETE', `${prefix}/public-keys/${key.id}`));
    for (const p of PREFIXES) expectNotFound(await svc.request('GET', `${p}/public-keys/${key.id}`));
    expectNotFound(await svc.request('GET', `/v3/deleted/public-keys/${key.id}`));
    expect(await deletedIds()).toEqual([]);
    expect(await liveIds()).toEqual([other.id]);
    expectNotFound(await svc.request('DELETE', `${prefix}/public-keys/${key.id}`));
  });

  test('/v3 DELETE is soft: the record appears in deleted with all fields and a deleted time', async () => {
    const key = await createKey('/v2');
    expectNoContent(await svc.request('DELETE', `/v3/public-keys/${key.id}`));
    for (const p of PREFIXES) expectNotFound(await svc.request('GET', `${p}/public-keys/${key.id}`));
    const item = await svc.request('GET', `/v3/deleted/public-keys/${key.id}`);
    expect(item.status).toBe(200);
    expect(Object.keys(item.body).sort()).toEqual(['created', 'deleted', 'id', 'name', 'public_key']);
    expect(item.body).toMatchObject(key);
    expect(item.body.deleted).toMatch(TIMESTAMP_RE);
    expect(item.body.deleted >= key.created).toBe(true);
    const list = await svc.request('GET', '/v3/deleted/public-keys');
    expect(list.status).toBe(200);
    expect(list.body).toEqual([item.body]);
  });

  test('a soft-deleted id is 404 on the live routes, including a second delete', async () => {
    const key = await createKey();
    expectNoContent(await svc.request('DELETE', `/v3/public-keys/${key.id}`));
    expectNotFound(await svc.request('DELETE', `/v3/public-keys/${key.id}`));
    expectNotFound(await svc.request('DELETE', `/v2/public-keys/${key.id}`));
    expectNotFound(await svc.request('GET', `/public-keys/${key.id}`));
    expect(await deletedIds()).toEqual([key.id]);
  });

  test('a live id is 404 on the deleted routes', async () => {
    const key = await createKey();
    expectNotFound(await svc.request('GET', `/v3/deleted/public-keys/${key.id}`));
    expectNotFound(await svc.request('PATCH', `/v3/deleted/public-keys/${key.id}`, { operation: 'undelete' }));
    expectNotFound(await svc.request('DELETE', `/v3/deleted/public-keys/${key.id}`));
    expect(await liveIds()).toEqual([key.id]);
  });
});

describe('DELETE collection', () => {
  test.each(HARD_PREFIXES)('$label removes every live key for good', async ({ prefix }) => {
    await createKey('/v3', 'a');
    await createKey('/v3', 'b');
    const parked = await createKey('/v3', 'parked');
    expectNoContent(await svc.request('DELETE', `/v3/public-keys/${parked.id}`));
    expectNoContent(await svc.request('DELETE', `${prefix}/public-keys`));
    expect(await liveIds()).toEqual([]);
    expect(await deletedIds()).toEqual([parked.id]);
  });

  test('/v3 soft-deletes every live key', async () => {
    const a = await createKey('/v3', 'a');
    const b = await createKey('/v3', 'b');
    expectNoContent(await svc.request('DELETE', '/v3/public-keys'));
    expect(await liveIds()).toEqual([]);
    const deleted = (await svc.request('GET', '/v3/deleted/public-keys')).body as Record<string, string>[];
    expect(deleted.map((d) => d.id)).toEqual([a.id, b.id]);
    expect(deleted[0]).toMatchObject(a);
    expect(deleted[1]).toMatchObject(b);
    for (const d of deleted) expect(d.deleted).toMatch(TIMESTAMP_RE);
  });

  test('on an empty collection it is still 204', async () => {
    expectNoContent(await svc.request('DELETE', '/v3/public-keys'));
    expectNoContent(await svc.request('DELETE', '/v2/public-keys'));
  });
});

describe('undelete', () => {
  test('PATCH item → 204, live again with the same id, created and fields, gone from deleted', async () => {
    const key = await createKey('/v3', 'restore-me');
    const other = await createKey('/v3', 'other');
    expectNoContent(await svc.request('DELETE', `/v3/public-keys/${key.id}`));
    expectNoContent(await svc.request('DELETE', `/v3/public-keys/${other.id}`));
    const res = await svc.request('PATCH', `/v3/deleted/public-keys/${key.id}`, { operation: 'undelete' });
    expectNoContent(res);
    for (const p of PREFIXES) expect((await svc.request('GET', `${p}/public-keys/${key.id}`)).body).toEqual(key);
    expectNotFound(await svc.request('GET', `/v3/deleted/public-keys/${key.id}`));
    expect(await deletedIds()).toEqual([other.id]);
    expectNotFound(await svc.request('PATCH', `/v3/deleted/public-keys/${key.id}`, { operation: 'undelete' }));
  });

  test('an undeleted key keeps its place in creation order', async () => {
    const a = await createKey('/v3', 'a');
    const b = await createKey('/v3', 'b');
    const c = await createKey('/v3', 'c');
    expectNoContent(await svc.request('DELETE', `/v3/public-keys/${a.id}`));
    expectNoContent(await svc.request('PATCH', `/v3/deleted/public-keys/${a.id}`, { operation: 'undelete' }));
    expect(await liveIds()).toEqual([a.id, b.id, c.id]);
  });

  test('bulk undelete restores every deleted key', async () => {
    const a = await createKey('/v3', 'a');
    const b = await createKey('/v3', 'b');
    const live = await createKey('/v3', 'live');
    expectNoContent(await svc.request('DELETE', `/v3/public-keys/${a.id}`));
    expectNoContent(await svc.request('DELETE', `/v3/public-keys/${b.id}`));
    expectNoContent(await svc.request('PATCH', '/v3/deleted/public-keys', { operation: 'undelete' }));
    expect(await deletedIds()).toEqual([]);
    expect((await svc.request('GET', '/v3/public-keys')).body).toEqual([a, b, live]);
  });

  test('bulk undelete with nothing deleted is 204', async () => {
    expectNoContent(await svc.request('PATCH', '/v3/deleted/public-keys', { operation: 'undelete' }));
  });

  test('body errors: {} → 400, wrong case → 422 with the (sic) message, unknown keys → 422; nothing changes', async () => {
    const key = await createKey();
    expectNoContent(await svc.request('DELETE', `/v3/public-keys/${key.id}`));
    for (const path of [`/v3/deleted/public-keys/${key.id}`, '/v3/deleted/public-keys']) {
      expectNoInput(await svc.request('PATCH', path, {}));
      expectNoInput(await svc.request('PATCH', path, 'null'));
      expectSchemaErrors(await svc.request('PATCH', path, { operation: 'UNDELETE' }), {
        operation: ['Recipe type must be one of: undelete.'],
      });
      expectSchemaErrors(await svc.request('PATCH', path, { operation: 'undelete', force: true }), { force: ['Unknown field.'] });
      expectSchemaErrors(await svc.request('PATCH', path, { op: 'undelete' }), { op: ['Unknown field.'], operation: [REQUIRED] });
      expectSchemaErrors(await svc.request('PATCH', path, { operation: null }), { operation: ['Field may not be null.'] });
      expectSchemaErrors(await svc.request('PATCH', path, ['undelete']), { _schema: ['Invalid input type.'] });
    }
    expect(await deletedIds()).toEqual([key.id]);
    expect(await liveIds()).toEqual([]);
  });

  test('undelete of an unknown id is 404 before the body is looked at', async () => {
    expectNotFound(await svc.request('PATCH', '/v3/deleted/public-keys/00000000-0000-4000-8000-000000000000', {}));
    expectNotFound(await svc.request('PATCH', '/v3/deleted/public-keys/not-a-uuid', { operation: 'bogus' }));
  });

  test('a deleted id in upper case is 404', async () => {
    const key = await createKey();
    expectNoContent(await svc.request('DELETE', `/v3/public-keys/${key.id}`));
    expectNotFound(await svc.request('GET', `/v3/deleted/public-keys/${key.id.toUpperCase()}`));
    expectNotFound(await svc.request('PATCH', `/v3/deleted/public-keys/${key.id.toUpperCase()}`, { operation: 'undelete' }));
    expectNotFound(await svc.request('DELETE', `/v3/deleted/public-keys/${key.id.toUpperCase()}`));
    expect(await deletedIds()).toEqual([key.id]);
  });
});

describe('purge', () => {
  test('DELETE deleted item is permanent', async () => {
    const a = await createKey('/v3', 'a');
    const b = await createKey('/v3', 'b');
    expectNoContent(await svc.request('DELETE', '/v3/public-keys'));
    expectNoContent(await svc.request('DELETE', `/v3/deleted/public-keys/${a.id}`));
    expectNotFound(await svc.request('GET', `/v3/deleted/public-keys/${a.id}`));
    expectNotFound(await svc.request('DELETE', `/v3/deleted/public-keys/${a.id}`));
    expectNotFound(await svc.request('PATCH', `/v3/deleted/public-keys/${a.id}`, { operation: 'undelete' }));
    expect(await deletedIds()).toEqual([b.id]);
    expect(await liveIds()).toEqual([]);
  });

  test('DELETE deleted collection purges every deleted key and leaves live ones', async () => {
    const a = await createKey('/v3', 'a');
    const b = await createKey('/v3', 'b');
    const live = await createKey('/v3', 'live');
    expectNoContent(await svc.request('DELETE', `/v3/public-keys/${a.id}`));
    expectNoContent(await svc.request('DELETE', `/v3/public-keys/${b.id}`));
    expectNoContent(await svc.request('DELETE', '/v3/deleted/public-keys'));
    expect(await deletedIds()).toEqual([]);
    expect(await liveIds()).toEqual([live.id]);
    expectNoContent(await svc.request('PATCH', '/v3/deleted/public-keys', { operation: 'undelete' }));
    expect(await liveIds()).toEqual([live.id]);
  });

  test('unknown deleted ids are 404', async () => {
    expectNotFound(await svc.request('GET', '/v3/deleted/public-keys/00000000-0000-4000-8000-000000000000'));
    expectNotFound(await svc.request('DELETE', '/v3/deleted/public-keys/not-a-uuid'));
  });

  test('deleted routes refuse methods they do not have', async () => {
    expectMethodNotAllowed(await svc.request('POST', '/v3/deleted/public-keys', { name: 'a', public_key: 'k' }), [
      'DELETE',
      'GET',
      'HEAD',
      'OPTIONS',
      'PATCH',
    ]);
  });
});
