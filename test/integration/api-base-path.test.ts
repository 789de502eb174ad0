/**
 * The API under `/apis/ims`, the base path ims-python-helper and the `cray` CLI use by default:
 * every route answers there as it does at the root, through the embedded HTTP server.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startTestService, type TestService } from '../helpers/service.js';
import { URL_NOT_FOUND, expectMethodNotAllowed, expectProblem } from '../helpers/problems.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

describe('/apis/ims', () => {
  test('unversioned, /v2 and /v3 routes answer as at the root, on the same records', async () => {
    const created = await svc.request('POST', '/apis/ims/public-keys', { name: 'k', public_key: 'ssh-ed25519 AAAA k' });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    for (const path of [`/apis/ims/public-keys/${id}`, `/apis/ims/v2/public-keys/${id}`, `/apis/ims/v3/public-keys/${id}`, `/v3/public-keys/${id}`]) {
      const res = await svc.request('GET', path);
      expect({ path, status: res.status, body: res.body }).toEqual({ path, status: 200, body: created.body });
    }
    const v3 = await svc.request('GET', '/apis/ims/v3/public-keys');
    expect(v3.body.map((k: { id: string }) => k.id)).toContain(id);
    expect((await svc.request('DELETE', `/apis/ims/v3/public-keys/${id}`)).status).toBe(204);
    expect((await svc.request('GET', `/v3/deleted/public-keys/${id}`)).status).toBe(200);
    expect((await svc.request('GET', `/apis/ims/v3/deleted/public-keys/${id}`)).status).toBe(200);
  });

  test('the calls of a job pod: PATCH /jobs/{id} and POST /images, as ims-python-helper sends them', async () => {
    const image = await svc.request('POST', '/apis/ims/images', { name: 'pod-image', arch: 'x86_64' });
    expect(image.status).toBe(201);
    expect((await svc.request('GET', `/apis/ims/images/${image.body.id}`)).body.name).toBe('pod-image');
    // An unknown job: the same 404 problem as at the root.
    const missing = await svc.request('PATCH', '/apis/ims/jobs/00000000-0000-4000-8000-000000000000', { status: 'fetching_recipe' });
    const atRoot = await svc.request('PATCH', '/jobs/00000000-0000-4000-8000-000000000000', { status: 'fetching_recipe' });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual(atRoot.body);
  });

  test('service routes, 404 and 405 problems, and paging links keep the base path', async () => {
    expect((await svc.request('GET', '/apis/ims/healthz/live')).status).toBe(200);
    expect((await svc.request('GET', '/apis/ims/version')).body).toEqual((await svc.request('GET', '/version')).body);
    for (const path of ['/apis/ims', '/apis/ims/', '/apis/ims/nope', '/apis/imsx/images', '/apis/ims/apis/ims/images']) {
      const res = await svc.request('GET', path);
      expectProblem(res, 404, URL_NOT_FOUND);
    }
    expectMethodNotAllowed(await svc.request('PUT', '/apis/ims/v3/images'), ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST']);
    await svc.request('POST', '/v3/public-keys', { name: 'a', public_key: 'ssh-ed25519 AAAA a' });
    await svc.request('POST', '/v3/public-keys', { name: 'b', public_key: 'ssh-ed25519 AAAA b' });
    const page = await svc.request('GET', '/apis/ims/v3/public-keys?limit=1');
    expect(page.status).toBe(200);
    expect(page.headers.get('link')).toMatch(/^<\/apis\/ims\/v3\/public-keys\?/);
  });
});
