/**
 * JWT scopes per route class under `npm start` (IMS_AUTH_SCOPES=on): the embedded server checks
 * the bearer token as the API's Lambda authorizer does (any of the trusted issuers, each with its
 * JWKS), and the handlers answer 401 and 403 problems by the route's class (read, write, admin).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { LambdaSandbox } from '#infra/local/lambda-sandbox.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { startJwtIssuer, type JwtIssuer } from '../helpers/jwt-issuer.js';
import { readFileSync } from 'node:fs';
import { mintReportToken } from '#shared/domain/job-report-token.js';

const AUTH_ENV = ['IMS_AUTH_SCOPES', 'IMS_AUTH_ISSUERS', 'IMS_AUTH_AUDIENCE'] as const;

let svc: TestService;
let issuer: JwtIssuer;
/** The cluster-internal Keycloak job pods get their tokens from: another `iss`, other keys. */
let podIssuer: JwtIssuer;
/** An issuer nobody configured. */
let stranger: JwtIssuer;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  issuer = await startJwtIssuer();
  podIssuer = await startJwtIssuer('http://keycloak.services.svc.cluster.local:8080/keycloak/realms/shasta');
  stranger = await startJwtIssuer('https://elsewhere.test/');
  Object.assign(process.env, { IMS_AUTH_SCOPES: 'on', IMS_AUTH_ISSUERS: `${issuer.entry},${podIssuer.entry}`, IMS_AUTH_AUDIENCE: issuer.audience });
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
  await Promise.all([issuer?.stop(), podIssuer?.stop(), stranger?.stop()]);
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

  // Refused tokens are 403s, as API Gateway answers a Lambda authorizer's refusal (with the reason here).
  test('an expired token is refused', async () => {
    expectProblem(await as('expired', 'GET', '/v3/images'), 403, /^The bearer token was refused: the token has expired\.$/);
  });

  test('a token for another audience is refused', async () => {
    expectProblem(await as('otherAudience', 'GET', '/v3/images'), 403, /audience ims/);
  });

  test('a token signed by a key outside the JWKS is refused', async () => {
    expectProblem(await as('forged', 'GET', '/v3/images'), 403, /signature is not valid/);
  });

  test('an Authorization header without a bearer token is refused', async () => {
    const res = await svc.request('GET', '/v3/images', undefined, { authorization: 'Basic dXNlcjpwYXNz' });
    expectProblem(res, 403, /no bearer token/);
  });

  test("the job pods' issuer is trusted beside the operators': its tokens are accepted and their scopes count", async () => {
    const pod = (scope: string) => ({ authorization: `Bearer ${podIssuer.token({ claims: { scope } })}` });
    expect((await svc.request('GET', '/v3/images', undefined, pod('ims:read'))).status).toBe(200);
    expect((await svc.request('POST', '/v3/images', { name: 'from-a-pod' }, pod('ims:write'))).status).toBe(201);
    expectProblem(await svc.request('POST', '/v3/images', { name: 'denied' }, pod('ims:read')), 403, /needs the scope 'ims:write'/);
  });

  test('a token of a third issuer is refused, whatever its scopes; so is one naming a trusted issuer signed by another', async () => {
    const other = stranger.token({ claims: { scope: 'ims:admin' } });
    const res = await svc.request('GET', '/v3/images', undefined, { authorization: `Bearer ${other}` });
    expectProblem(res, 403, /not issued by a trusted issuer/);
    const posing = stranger.token({ claims: { scope: 'ims:admin', iss: podIssuer.issuer } });
    expectProblem(await svc.request('GET', '/v3/images', undefined, { authorization: `Bearer ${posing}` }), 403, /signature is not valid/);
    expect(stranger.fetches()).toBe(0);
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

describe('the Lambda authorizer as deployed', () => {
  test('its entry point, in a fresh Lambda-like process on the deployed Node: either issuer authorized with the claims, a third refused', async () => {
    const sandbox = await LambdaSandbox.create({ tmpMiB: 8 });
    try {
      const env = { IMS_AUTH_ISSUERS: `${issuer.entry},${podIssuer.entry}`, IMS_AUTH_AUDIENCE: 'shasta,ims', POWERTOOLS_LOG_LEVEL: 'SILENT' };
      // The payload-2.0 REQUEST event API Gateway sends (headers lowercased).
      const event = (token: string) => ({
        version: '2.0',
        type: 'REQUEST',
        routeArn: 'arn:aws:execute-api:us-east-1:123456789012:api/$default/GET/v3/images',
        identitySource: [`Bearer ${token}`],
        routeKey: 'ANY /v3/images',
        rawPath: '/v3/images',
        headers: { authorization: `Bearer ${token}` },
        requestContext: { http: { method: 'GET', path: '/v3/images' } },
      });
      const fromPods = (await sandbox.invoke('functions/api/authorizer', event(podIssuer.token({ claims: { scope: 'ims:write' } })), env)) as { isAuthorized: boolean; context: { claims: string } };
      expect(fromPods.isAuthorized).toBe(true);
      expect(JSON.parse(fromPods.context.claims)).toMatchObject({ iss: podIssuer.issuer, scope: 'ims:write' });
      expect(await sandbox.invoke('functions/api/authorizer', event(tokens.read), env)).toMatchObject({ isAuthorized: true });
      expect(await sandbox.invoke('functions/api/authorizer', event(stranger.token()), env)).toEqual({ isAuthorized: false });
      expect(sandbox.invocations.map((i) => i.outcome)).toEqual(['ok', 'ok', 'ok']);
    } finally {
      await sandbox.close();
    }
  }, 60_000);
});
