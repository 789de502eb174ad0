import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

describe('public keys', () => {
  test('POST creates a record with exactly the four keys', async () => {
    const res = await svc.request('POST', '/v3/public-keys', { name: 'admin', public_key: 'ssh-ed25519 AAAA test' });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['created', 'id', 'name', 'public_key']);
    expect(res.body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(res.body.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$/);
    const fetched = await svc.request('GET', `/v2/public-keys/${res.body.id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body).toEqual(res.body);
  });
});
