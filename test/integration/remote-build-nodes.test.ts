/** §8 remote build nodes (v3 only), through the embedded HTTP server. */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { startTestService, type TestService } from '../helpers/service.js';
import {
  URL_NOT_FOUND,
  expectMethodNotAllowed,
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
beforeEach(async () => {
  expectNoContent(await svc.request('DELETE', '/v3/remote-build-nodes'));
});

const NODES = '/v3/remote-build-nodes';
const STATUS_KEYS = ['ableToRunJobs', 'nodeArch', 'numCurrentJobs', 'podmanStatus', 'sshStatus', 'xname'];

async function register(xname: string) {
  const res = await svc.request('POST', NODES, { xname });
  expect(res.status).toBe(201);
  expect(res.body).toEqual({ xname });
  return res.body as { xname: string };
}

const list = async () => (await svc.request('GET', NODES)).body as { xname: string }[];

const initialStatus = (xname: string) => ({
  xname,
  sshStatus: 'Unknown',
  podmanStatus: 'Unknown',
  nodeArch: 'Unknown',
  numCurrentJobs: -1,
  ableToRunJobs: false,
});

describe('POST', () => {
  test('→ 201 {"xname"} and the node is listed', async () => {
    const res = await svc.request('POST', NODES, { xname: 'x3000c0s1b0n0' });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.body).toEqual({ xname: 'x3000c0s1b0n0' });
    expect(await list()).toEqual([{ xname: 'x3000c0s1b0n0' }]);
  });

  test('registering the same xname again → 201 and still one entry', async () => {
    await register('x3000c0s1b0n0');
    await register('x3000c0s2b0n0');
    const again = await svc.request('POST', NODES, { xname: 'x3000c0s1b0n0' });
    expect(again.status).toBe(201);
    expect(again.body).toEqual({ xname: 'x3000c0s1b0n0' });
    expect(await list()).toEqual([{ xname: 'x3000c0s1b0n0' }, { xname: 'x3000c0s2b0n0' }]);
  });

  test('the xname format is not checked', async () => {
    await register('not an xname');
    expect((await svc.request('GET', `${NODES}/${encodeURIComponent('not an xname')}`)).body).toEqual({ xname: 'not an xname' });
  });

  test('blank, missing, null and non-string xname → 422', async () => {
    expectSchemaErrors(await svc.request('POST', NODES, { xname: '' }), { xname: ['name field must not be blank'] });
    expectSchemaErrors(await svc.request('POST', NODES, { name: 'x1' }), {
      xname: ['Missing data for required field.'],
      name: ['Unknown field.'],
    });
    expectSchemaErrors(await svc.request('POST', NODES, { xname: null }), { xname: ['Field may not be null.'] });
    expectSchemaErrors(await svc.request('POST', NODES, { xname: 3000 }), { xname: ['Not a valid string.'] });
    expect(await list()).toEqual([]);
  });

  test('unknown keys → 422 and nothing is registered', async () => {
    expectSchemaErrors(await svc.request('POST', NODES, { xname: 'x1', arch: 'x86_64', sshStatus: 'ok' }), {
      arch: ['Unknown field.'],
      sshStatus: ['Unknown field.'],
    });
    expect(await list()).toEqual([]);
  });

  test('falsy bodies → 400, a non-empty array → 422', async () => {
    for (const body of ['{}', '[]', 'null', '""', '0', 'false']) expectNoInput(await svc.request('POST', NODES, body));
    expectSchemaErrors(await svc.request('POST', NODES, [{ xname: 'x1' }]), { _schema: ['Invalid input type.'] });
    expect(await list()).toEqual([]);
  });
});

describe('GET and DELETE', () => {
  test('GET list in registration order, GET item', async () => {
    await register('x1');
    await register('x2');
    await register('x3');
    const res = await svc.request('GET', NODES);
    expect(res.status).toBe(200);
    expect(res.body).toEqual([{ xname: 'x1' }, { xname: 'x2' }, { xname: 'x3' }]);
    const item = await svc.request('GET', `${NODES}/x2`);
    expect(item.status).toBe(200);
    expect(item.body).toEqual({ xname: 'x2' });
  });

  test('unknown xname → 404; xnames are exact strings', async () => {
    await register('x3000c0s1b0n0');
    expectNotFound(await svc.request('GET', `${NODES}/x9`));
    expectNotFound(await svc.request('GET', `${NODES}/X3000C0S1B0N0`));
    expectNotFound(await svc.request('DELETE', `${NODES}/x9`));
    expectNotFound(await svc.request('GET', `${NODES}/${'x'.repeat(3000)}`));
  });

  test('DELETE item → 204 and gone; a second DELETE → 404', async () => {
    await register('x1');
    await register('x2');
    expectNoContent(await svc.request('DELETE', `${NODES}/x1`));
    expectNotFound(await svc.request('GET', `${NODES}/x1`));
    expect(await list()).toEqual([{ xname: 'x2' }]);
    expectNotFound(await svc.request('DELETE', `${NODES}/x1`));
  });

  test('DELETE collection → 204 and empty, also when already empty', async () => {
    await register('x1');
    await register('x2');
    expectNoContent(await svc.request('DELETE', NODES));
    expect(await list()).toEqual([]);
    expectNoContent(await svc.request('DELETE', NODES));
    // Nodes are removed for good: there is no deleted collection for them.
    expectProblem(await svc.request('GET', '/v3/deleted/remote-build-nodes'), 404, URL_NOT_FOUND);
  });

  test('a deleted node can be registered again', async () => {
    await register('x1');
    expectNoContent(await svc.request('DELETE', `${NODES}/x1`));
    await register('x1');
    expect(await list()).toEqual([{ xname: 'x1' }]);
  });

  test('no PATCH or PUT (405)', async () => {
    await register('x1');
    expectMethodNotAllowed(await svc.request('PATCH', `${NODES}/x1`, { xname: 'x2' }), ['DELETE', 'GET', 'HEAD', 'OPTIONS']);
    expectMethodNotAllowed(await svc.request('PUT', `${NODES}/x1`, { xname: 'x2' }), ['DELETE', 'GET', 'HEAD', 'OPTIONS']);
    expectMethodNotAllowed(await svc.request('PATCH', NODES, { xname: 'x2' }), ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST']);
    expectMethodNotAllowed(await svc.request('POST', `${NODES}/x1`, { xname: 'x2' }), ['DELETE', 'GET', 'HEAD', 'OPTIONS']);
    expect(await list()).toEqual([{ xname: 'x1' }]);
  });

  test('only on /v3', async () => {
    await register('x1');
    for (const path of ['/remote-build-nodes', '/v2/remote-build-nodes', '/remote-build-nodes/x1', '/v2/remote-build-nodes/x1']) {
      expectProblem(await svc.request('GET', path), 404, URL_NOT_FOUND);
    }
    expectProblem(await svc.request('POST', '/v2/remote-build-nodes', { xname: 'x2' }), 404, URL_NOT_FOUND);
    expect(await list()).toEqual([{ xname: 'x1' }]);
  });
});

describe('status', () => {
  test('collection: one object per node with every key and the initial values', async () => {
    await register('x1');
    await register('x2');
    const res = await svc.request('GET', `${NODES}/status`);
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(2);
    for (const status of res.body) expect(Object.keys(status).sort()).toEqual(STATUS_KEYS);
    expect(res.body).toEqual([initialStatus('x1'), initialStatus('x2')]);
  });

  test('collection with no nodes → []', async () => {
    const res = await svc.request('GET', `${NODES}/status`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual([]);
  });

  test('item: one object (not an array) with every key', async () => {
    await register('x3000c0s1b0n0');
    const res = await svc.request('GET', `${NODES}/status/x3000c0s1b0n0`);
    expect(res.status).toBe(200);
    expect(Array.isArray(res.body)).toBe(false);
    expect(Object.keys(res.body).sort()).toEqual(STATUS_KEYS);
    expect(res.body).toEqual(initialStatus('x3000c0s1b0n0'));
    expect(typeof res.body.numCurrentJobs).toBe('number');
    expect(typeof res.body.ableToRunJobs).toBe('boolean');
  });

  test('status of an unknown node → 404', async () => {
    await register('x1');
    expectNotFound(await svc.request('GET', `${NODES}/status/x2`));
  });

  test('status routes are GET only', async () => {
    expectMethodNotAllowed(await svc.request('POST', `${NODES}/status/x1`, { xname: 'x1' }), ['GET', 'HEAD', 'OPTIONS']);
  });

  test('/status wins over a node literally named "status" for GET', async () => {
    await register('status');
    await register('x1');
    const res = await svc.request('GET', `${NODES}/status`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual([initialStatus('status'), initialStatus('x1')]);
    expect((await svc.request('GET', `${NODES}/status/status`)).body).toEqual(initialStatus('status'));
    expect(await list()).toEqual([{ xname: 'status' }, { xname: 'x1' }]);
  });

  test('other methods on /status fall through to the node named "status", as Werkzeug routes them', async () => {
    await register('status');
    await register('x1');
    expectNoContent(await svc.request('DELETE', `${NODES}/status`));
    expect(await list()).toEqual([{ xname: 'x1' }]);
    expectNotFound(await svc.request('DELETE', `${NODES}/status`));
    // A method neither route serves is a 405 listing what both serve.
    expectMethodNotAllowed(await svc.request('POST', `${NODES}/status`, { xname: 'x' }), ['DELETE', 'GET', 'HEAD', 'OPTIONS']);
  });
});
