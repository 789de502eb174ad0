/** §1 and §2: routing, request bodies, error bodies and the service endpoints, through the embedded HTTP server. */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startTestService, type TestService } from '../helpers/service.js';
import {
  CONFLICT,
  METHOD_NOT_ALLOWED,
  NOT_FOUND,
  URL_NOT_FOUND,
  expectMethodNotAllowed,
  expectNoInput,
  expectProblem,
  expectSchemaErrors,
} from '../helpers/problems.js';

let svc: TestService;
let recipeId: string;
beforeAll(async () => {
  svc = await startTestService();
  const recipe = await svc.request('POST', '/v3/recipes', { name: 'r', recipe_type: 'kiwi-ng', linux_distribution: 'sles15' });
  expect(recipe.status).toBe(201);
  recipeId = recipe.body.id;
});
afterAll(async () => {
  await svc.stop();
});

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

function expectUrlNotFound(res: Awaited<ReturnType<TestService['request']>>) {
  expectProblem(res, 404, URL_NOT_FOUND);
  expect(res.body).toEqual({ status: 404, title: 'Not Found', detail: URL_NOT_FOUND });
}

describe('routing', () => {
  test.each([
    '/',
    '/nope',
    '/v3',
    '/v3/nope',
    '/v4/public-keys',
    '/v3/images/',
    '/v3/public-keys/',
    '/v2/recipes/',
    '/public-keys/',
    '/v3/deleted/public-keys/',
    '/v3/remote-build-nodes/',
    '/healthz',
    '/healthz/ready/',
    '/version/',
    `/v3/public-keys/${UNKNOWN_ID}/extra`,
    '/V3/public-keys',
    '/v3/Public-Keys',
  ])('unknown URL %s → 404 problem with the exact detail', async (path) => {
    expectUrlNotFound(await svc.request('GET', path));
  });

  test('an unknown URL is 404 whatever the method (never 405)', async () => {
    for (const method of ['POST', 'PATCH', 'DELETE', 'PUT']) {
      expectUrlNotFound(await svc.request(method, '/v3/images/', method === 'DELETE' ? undefined : { name: 'x' }));
      expectUrlNotFound(await svc.request(method, '/v3/nothing-here', method === 'DELETE' ? undefined : { name: 'x' }));
    }
  });

  test.each([
    '/remote-build-nodes',
    '/remote-build-nodes/x3000c0s1b0n0',
    '/v2/remote-build-nodes',
    '/v2/remote-build-nodes/x3000c0s1b0n0',
    '/remote-build-nodes/status',
    '/v2/remote-build-nodes/status',
    '/v2/deleted/public-keys',
    '/v2/deleted/recipes',
    `/v2/deleted/images/${UNKNOWN_ID}`,
    '/deleted/public-keys',
    '/deleted/recipes',
    '/deleted/images',
  ])('%s does not exist (404)', async (path) => {
    expectUrlNotFound(await svc.request('GET', path));
    expectUrlNotFound(await svc.request('DELETE', path));
  });

  test.each(['/v3/remote-build-nodes', '/v3/deleted/public-keys', '/v3/deleted/recipes', '/v3/deleted/images'])('%s exists on v3', async (path) => {
    const res = await svc.request('GET', path);
    expect(res.status).toBe(200);
    expect(Array.isArray(res.body)).toBe(true);
  });
});

describe('405', () => {
  test.each([
    ['PUT', '/v3/public-keys', ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST']],
    ['PATCH', '/v2/public-keys', ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST']],
    ['PATCH', `/public-keys/${UNKNOWN_ID}`, ['DELETE', 'GET', 'HEAD', 'OPTIONS']],
    ['PATCH', '/v3/recipes', ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST']],
    ['POST', `/v3/recipes/${UNKNOWN_ID}`, ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH']],
    ['PUT', `/v2/images/${UNKNOWN_ID}`, ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH']],
    ['POST', '/v3/deleted/recipes', ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH']],
    ['POST', `/v3/deleted/images/${UNKNOWN_ID}`, ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH']],
    ['PATCH', '/v3/remote-build-nodes', ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST']],
    ['PATCH', '/v3/remote-build-nodes/x1', ['DELETE', 'GET', 'HEAD', 'OPTIONS']],
    ['DELETE', '/v3/remote-build-nodes/status/x1', ['GET', 'HEAD', 'OPTIONS']],
  ] as const)('%s %s → 405 with message, status, title, detail and Allow', async (method, path, allow) => {
    expectMethodNotAllowed(await svc.request(method, path, method === 'DELETE' ? undefined : { name: 'x' }), [...allow]);
  });

  test('the method is checked before the content type and the body', async () => {
    const res = await svc.request('PATCH', '/v3/public-keys', 'not json', { 'content-type': 'text/plain' });
    expectMethodNotAllowed(res, ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST']);
  });

  test.each([
    ['POST', '/healthz/ready'],
    ['DELETE', '/healthz/live'],
    ['PATCH', '/version'],
  ])('%s %s → 405 with a message', async (method, path) => {
    const res = await svc.request(method, path, method === 'DELETE' ? undefined : { a: 1 });
    expect(res.status).toBe(405);
    expect(res.body.message).toBe(METHOD_NOT_ALLOWED);
    expect((res.headers.get('allow') ?? '').split(',').map((m) => m.trim())).toContain('GET');
  });
});

describe('request bodies', () => {
  const posts = [
    ['/v3/public-keys', { name: 'a', public_key: 'k' }],
    ['/v2/recipes', { name: 'r', recipe_type: 'kiwi-ng', linux_distribution: 'sles15' }],
    ['/v3/remote-build-nodes', { xname: 'x3000c0s1b0n0' }],
  ] as const;

  test('malformed JSON → 400 with a message', async () => {
    for (const [path] of posts) {
      const res = await svc.request('POST', path, '{"name": "a",');
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/^Failed to decode JSON object/);
      expect(res.body).not.toHaveProperty('errors');
    }
    const patch = await svc.request('PATCH', `/v3/recipes/${recipeId}`, '{arch: x86_64}');
    expect(patch.status).toBe(400);
    expect(patch.body.message).toMatch(/^Failed to decode JSON object/);
  });

  test('an empty body with a JSON content type → 400', async () => {
    const res = await svc.request('POST', '/v3/public-keys', '');
    expect(res.status).toBe(400);
    expect(typeof res.body.message).toBe('string');
  });

  test('a non-JSON content type → 400 or 415 with a message, and nothing is created', async () => {
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'text/json']) {
      const res = await svc.request('POST', '/v3/public-keys', JSON.stringify({ name: 'a', public_key: 'k' }), { 'content-type': contentType });
      expect([400, 415]).toContain(res.status);
      expect(typeof res.body.message).toBe('string');
    }
    expect((await svc.request('GET', '/v3/public-keys')).body).toEqual([]);
  });

  test('JSON media types with parameters or a +json suffix are JSON', async () => {
    const a = await svc.request('POST', '/v3/public-keys', JSON.stringify({ name: 'a', public_key: 'k' }), {
      'content-type': 'application/json; charset=utf-8',
    });
    expect(a.status).toBe(201);
    const b = await svc.request('POST', '/v3/public-keys', JSON.stringify({ name: 'b', public_key: 'k' }), {
      'content-type': 'Application/JSON',
    });
    expect(b.status).toBe(201);
    const c = await svc.request('POST', '/v3/public-keys', JSON.stringify({ name: 'c', public_key: 'k' }), {
      'content-type': 'application/merge-patch+json',
    });
    expect(c.status).toBe(201);
    expect((await svc.request('DELETE', '/v2/public-keys')).status).toBe(204);
  });

  test.each(['{}', '[]', 'null', '""', '0', 'false'])('falsy body %s → 400 "No input provided" without errors', async (body) => {
    for (const [path] of posts) expectNoInput(await svc.request('POST', path, body));
    expectNoInput(await svc.request('PATCH', `/v3/recipes/${recipeId}`, body));
    expectNoInput(await svc.request('PATCH', `/v3/deleted/recipes`, body));
  });

  test('a non-empty array → 422 {"_schema": ["Invalid input type."]}', async () => {
    for (const [path, body] of posts) expectSchemaErrors(await svc.request('POST', path, [body]), { _schema: ['Invalid input type.'] });
    expectSchemaErrors(await svc.request('PATCH', `/v3/recipes/${recipeId}`, [{ arch: 'aarch64' }]), { _schema: ['Invalid input type.'] });
    expectSchemaErrors(await svc.request('PATCH', '/v3/deleted/public-keys', [{ operation: 'undelete' }]), { _schema: ['Invalid input type.'] });
  });

  test('truthy scalars → 422 {"_schema": ["Invalid input type."]}', async () => {
    for (const body of ['"text"', '7', 'true']) {
      expectSchemaErrors(await svc.request('POST', '/v3/public-keys', body), { _schema: ['Invalid input type.'] });
    }
  });

  test('bodies are ignored where no body is read (GET, DELETE)', async () => {
    const res = await svc.request('GET', '/v3/remote-build-nodes', undefined, { 'content-type': 'text/plain' });
    expect(res.status).toBe(200);
  });

  test('order on item PATCH: unknown id 404 before no-input 400, schema 422, media type or JSON errors', async () => {
    const path = `/v3/recipes/${UNKNOWN_ID}`;
    expectProblem(await svc.request('PATCH', path, {}), 404, NOT_FOUND);
    expectProblem(await svc.request('PATCH', path, { name: 'x' }), 404, NOT_FOUND);
    expectProblem(await svc.request('PATCH', path, '{broken'), 404, NOT_FOUND);
    expectProblem(await svc.request('PATCH', path, 'arch=x', { 'content-type': 'text/plain' }), 404, NOT_FOUND);
  });
});

describe('error bodies', () => {
  test('problems are application/problem+json with status, title, detail and nothing else', async () => {
    const notFound = await svc.request('GET', `/v3/recipes/${UNKNOWN_ID}`);
    expectProblem(notFound, 404, NOT_FOUND);
    expect(notFound.body).toEqual({ status: 404, title: 'Not Found', detail: NOT_FOUND });

    const noInput = await svc.request('POST', '/v3/recipes', {});
    expectNoInput(noInput);
    expect(Object.keys(noInput.body).sort()).toEqual(['detail', 'status', 'title']);

    const schema = await svc.request('POST', '/v3/recipes', { name: 'x' });
    expect(Object.keys(schema.body).sort()).toEqual(['detail', 'errors', 'status', 'title']);
    expectSchemaErrors(schema, { recipe_type: ['Missing data for required field.'], linux_distribution: ['Missing data for required field.'] });
  });

  test('409 problem', async () => {
    await svc.putObject('ims', 'conventions/a.tgz', 'a');
    const recipe = await svc.request('POST', '/v3/recipes', {
      name: 'linked',
      recipe_type: 'kiwi-ng',
      linux_distribution: 'sles15',
      link: { path: 's3://ims/conventions/a.tgz', type: 's3' },
    });
    expect(recipe.status).toBe(201);
    const res = await svc.request('PATCH', `/v3/recipes/${recipe.body.id}`, { link: { path: 's3://ims/conventions/b.tgz', type: 's3' } });
    expectProblem(res, 409, CONFLICT);
    expect(res.body).toEqual({ status: 409, title: 'Conflict', detail: CONFLICT });
  });

  test('success bodies are application/json; DELETE is 204 with an empty body', async () => {
    const created = await svc.request('POST', '/v3/public-keys', { name: 'a', public_key: 'k' });
    expect(created.headers.get('content-type')).toMatch(/^application\/json/);
    const deleted = await svc.request('DELETE', `/v2/public-keys/${created.body.id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
  });
});

describe('key order: records serialised as Flask does (sort_keys), so CLI text output matches line for line', () => {
  test('an image, its metadata, lists (whole and paged) and a problem, as exact texts', async () => {
    const posted = await svc.request('POST', '/v3/images', { name: 'ordered', arch: 'aarch64', metadata: { zeta: '1', alpha: '2', Mid: '3', '\u{1F600}': '4', '\uFFFD': '5' } });
    expect(posted.status).toBe(201);
    const { id, created } = posted.body;
    const expected =
      `{"arch":"aarch64","created":"${created}","id":"${id}","link":null,` +
      `"metadata":{"Mid":"3","alpha":"2","zeta":"1","\uFFFD":"5","\u{1F600}":"4"},"name":"ordered"}`;
    expect(posted.text).toBe(expected);
    expect((await svc.request('GET', `/v3/images/${id}`)).text).toBe(expected);
    const whole = await svc.request('GET', '/v3/images?name=ordered');
    expect(whole.text).toBe(`[${expected}]`);
    const paged = await svc.request('GET', '/v3/images?name=ordered&limit=5');
    expect(paged.text).toBe(`[${expected}]`);
    const recipe = (await svc.request('GET', `/v3/recipes/${recipeId}`)).body;
    expect(Object.keys(JSON.parse((await svc.request('GET', `/v3/recipes/${recipeId}`)).text))).toEqual(Object.keys(recipe).sort());
    const problem = await svc.request('GET', '/v3/images/00000000-0000-4000-8000-000000000000');
    expect(problem.text).toBe(`{"detail":"${NOT_FOUND}","status":404,"title":"Not Found"}`);
  });
});

describe('service endpoints', () => {
  test.each(['/healthz/ready', '/healthz/live'])('GET %s → 200 {}', async (path) => {
    const res = await svc.request('GET', path);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.body).toEqual({});
  });

  test('GET /version → 200 {"version": ...}', async () => {
    const res = await svc.request('GET', '/version');
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['version']);
    expect(typeof res.body.version).toBe('string');
    expect(res.body.version.length).toBeGreaterThan(0);
    expect(res.body.version).toBe(process.env.IMS_VERSION || 'Unknown');
  });

  test('service endpoints are not versioned', async () => {
    expectUrlNotFound(await svc.request('GET', '/v3/healthz/ready'));
    expectUrlNotFound(await svc.request('GET', '/v2/version'));
  });
});

describe('HEAD and OPTIONS, as Flask answers them', () => {
  test('HEAD of a GET route is its GET without a body; OPTIONS lists the methods', async () => {
    const head = await fetch(`${svc.url}/v3/images`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const options = await fetch(`${svc.url}/v3/images`, { method: 'OPTIONS' });
    expect(options.status).toBe(200);
    expect(options.headers.get('allow')).toBe('DELETE, GET, HEAD, OPTIONS, POST');
    const unknown = await fetch(`${svc.url}/v3/nothing-here`, { method: 'OPTIONS' });
    expect(unknown.status).toBe(404);
  });
});
