/**
 * JWT scopes per route class under `npm start` (IMS_AUTH_SCOPES=on): the embedded server checks
 * the bearer token against the JWKS as API Gateway's JWT authorizer would, and the handlers
 * answer 401 and 403 problems by the route's class (read, write, admin).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { startTestService, type TestService } from '../helpers/service.js';
import { startJwtIssuer, type JwtIssuer } from '../helpers/jwt-issuer.js';
import { readFileSync } from 'node:fs';
import { mintReportToken } from '#shared/domain/job-report-token.js';

const AUTH_ENV = ['IMS_AUTH_SCOPES', 'IMS_AUTH_JWKS_URL', 'IMS_AUTH_ISSUER', 'IMS_AUTH_AUDIENCE'] as const;

let svc: TestService;
let issuer: JwtIssuer;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  issuer = await startJwtIssuer();
  Object.assign(process.env, { IMS_AUTH_SCOPES: 'on', IMS_AUTH_JWKS_URL: issuer.jwksUrl, IMS_AUTH_ISSUER: issuer.issuer, IMS_AUTH_AUDIENCE: issuer.audience });
  svc = await startTestService();
  tokens.read = issuer.token({ claims: { scope: 'openid ims:read' } });
  tokens.write = issuer.token({ claims: { scope: 'ims:read ims:write' } });
  tokens.admin = issuer.token({ claims: { scope: 'ims:admin' } });
  tokens.none = issuer.token({ claims: { scope: 'openid profile' } });
  tokens.expired = issuer.token({ claims: { scope: 'ims:admin' }, expiresIn: -3600 });
  tokens.otherAudience = issuer.token({ claims: { scope: 'ims:admin', aud: 'someone-else' } });
  tokens.forged = issuer.token({ claims: { scope: 'ims:admin' }, foreignKey: true });
});
afterAll(async () => {
  await svc?.stop();
  await issuer?.stop();
  for (const name of AUTH_ENV) delete process.env[name];
});

const as = (who: keyof typeof tokens | 'anonymous', method: string, path: string, body?: unknown) =>
  svc.request(method, path, body, who === 'anonymous' ? {} : { authorization: `Bearer ${tokens[who]}` });

function expectProblem(res: { status: number; headers: Headers; body: any }, status: number, detail: RegExp): void {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ type: 'about:blank', status, title: status === 401 ? 'Unauthorized' : 'Forbidden' });
  expect(res.body.detail).toMatch(detail);
}

describe('the probes', () => {
  test.each(['/healthz/live', '/healthz/ready', '/version'])('%s answers without a token, and with a bad one', async (path) => {
    expect((await as('anonymous', 'GET', path)).status).toBe(200);
    expect((await as('forged', 'GET', path)).status).toBe(200);
  });
});

describe('the job report route', () => {
  test('takes no OAuth token: the job’s report token is checked instead, and an OAuth token is no report token', async () => {
    const id = randomUUID();
    const report = mintReportToken(readFileSync(process.env.IMS_JOB_REPORT_KEY_FILE!), id, Math.floor(Date.now() / 1000) + 60);
    // No such job: the report token passes, the job is looked up.
    expect((await svc.request('POST', `/v3/jobs/${id}/checks`, undefined, { authorization: `Bearer ${report}` })).status).toBe(404);
    expectProblem(await as('anonymous', 'POST', `/apis/ims/v3/jobs/${id}/checks`), 401, /report token/);
    expectProblem(await as('admin', 'POST', `/v3/jobs/${id}/checks`), 401, /not a job report token/);
  });
});

describe('tokens', () => {
  test('no token is a 401 problem with a Bearer challenge', async () => {
    const res = await as('anonymous', 'GET', '/v3/images');
    expectProblem(res, 401, /needs a bearer token/);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  test('an expired token is a 401', async () => {
    expectProblem(await as('expired', 'GET', '/v3/images'), 401, /expired/);
  });

  test('a token for another audience is a 401', async () => {
    expectProblem(await as('otherAudience', 'GET', '/v3/images'), 401, /audience ims/);
  });

  test('a token signed by a key outside the JWKS is a 401', async () => {
    expectProblem(await as('forged', 'GET', '/v3/images'), 401, /signature is not valid/);
  });

  test('a token of another issuer is a 401', async () => {
    const other = issuer.token({ claims: { scope: 'ims:admin', iss: 'https://elsewhere.test/' } });
    const res = await svc.request('GET', '/v3/images', undefined, { authorization: `Bearer ${other}` });
    expectProblem(res, 401, /not issued by/);
  });

  test('a valid token without any IMS scope is a 403 naming the scope needed and the ones held', async () => {
    expectProblem(await as('none', 'GET', '/v3/images'), 403, /^This request needs the scope 'ims:read'; the token has: openid profile\.$/);
  });
});

describe('route classes', () => {
  test('GET needs read: the read, write and admin scopes all grant it', async () => {
    for (const who of ['read', 'write', 'admin'] as const) expect((await as(who, 'GET', '/v3/images')).status).toBe(200);
    expect((await as('read', 'GET', '/apis/ims/v2/recipes')).status).toBe(200);
  });

  test('POST of a record needs write: 403 with read only, 201 with write', async () => {
    expectProblem(await as('read', 'POST', '/v3/images', { name: 'denied' }), 403, /^This request needs the scope 'ims:write'; the token has: openid ims:read\.$/);
    const res = await as('write', 'POST', '/v3/images', { name: 'allowed' });
    expect(res.status).toBe(201);
  });

  test('DELETE needs admin: 403 with write, 204 with admin', async () => {
    const created = await as('write', 'POST', '/v3/public-keys', { name: 'k', public_key: 'ssh-ed25519 AAAA test' });
    expect(created.status).toBe(201);
    expectProblem(await as('write', 'DELETE', `/v3/public-keys/${created.body.id}`), 403, /needs the scope 'ims:admin'; the token has: ims:read ims:write\./);
    expect((await as('admin', 'DELETE', `/v3/public-keys/${created.body.id}`)).status).toBe(204);
  });

  test('purging and restoring deleted records need admin', async () => {
    expectProblem(await as('write', 'DELETE', '/v3/deleted/images'), 403, /ims:admin/);
    expectProblem(await as('write', 'PATCH', '/v3/deleted/images', { operation: 'undelete' }), 403, /ims:admin/);
    expect((await as('admin', 'DELETE', '/v3/deleted/images')).status).toBe(204);
  });

  test('a customize job (a root shell) needs admin; a create job needs only write', async () => {
    const job = { artifact_id: randomUUID(), public_key_id: randomUUID(), image_root_archive_name: 'img' };
    expectProblem(await as('write', 'POST', '/v3/jobs', { ...job, job_type: 'customize' }), 403, /needs the scope 'ims:admin'/);
    // Past the scope check the made-up artifact is refused: anything but a 401 or 403 shows the token was enough.
    const created = await as('write', 'POST', '/v3/jobs', { ...job, job_type: 'create' });
    expect([401, 403]).not.toContain(created.status);
    const customized = await as('admin', 'POST', '/v3/jobs', { ...job, job_type: 'customize' });
    expect([401, 403]).not.toContain(customized.status);
    expectProblem(await as('read', 'POST', '/v3/jobs', { ...job, job_type: 'create' }), 403, /needs the scope 'ims:write'/);
  });

  test('the JWKS is fetched once for many requests', async () => {
    const before = issuer.fetches();
    for (let i = 0; i < 5; i += 1) expect((await as('read', 'GET', '/v3/recipes')).status).toBe(200);
    expect(issuer.fetches()).toBe(before);
    expect(before).toBeGreaterThanOrEqual(1);
  });
});
