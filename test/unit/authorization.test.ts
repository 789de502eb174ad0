/** Reading scopes from claims, the IMS_AUTH_* settings, and the scope check inside a Lambda event as API Gateway sends it. */
import { describe, expect, test } from '@jest/globals';
import type { Context } from 'aws-lambda';
import { parseTrustedIssuers, readAuthSettings } from '#shared/config.js';
import { scopesOf } from '#shared/http/middleware/authorize.js';
import type { HttpEvent } from '#shared/http/types.js';
import { contextFrom } from '#shared/wiring.js';
import { handlerWith } from '#functions/api/public-keys.js';
import { authorizerWith } from '#functions/api/authorizer.js';
import { authorizerResponse, bearerChecker, tokenVerifier } from '#shared/http/jwt.js';
import { startJwtIssuer } from '../helpers/jwt-issuer.js';

describe('scopesOf', () => {
  test('a space-separated string claim', () => {
    expect(scopesOf({ scope: 'openid ims:read  ims:write' }, 'scope')).toEqual(['openid', 'ims:read', 'ims:write']);
  });

  test('an array claim', () => {
    expect(scopesOf({ scp: ['ims:read', 'ims:admin'] }, 'scp')).toEqual(['ims:read', 'ims:admin']);
  });

  test("an array claim as API Gateway renders it ('[a b]'), or as JSON text", () => {
    expect(scopesOf({ groups: '[ims:read ims:write]' }, 'groups')).toEqual(['ims:read', 'ims:write']);
    expect(scopesOf({ groups: '["ims:admin"]' }, 'groups')).toEqual(['ims:admin']);
  });

  test('a dotted path into an object claim, given as an object or as JSON text', () => {
    expect(scopesOf({ realm_access: { roles: ['ims:admin', 'offline'] } }, 'realm_access.roles')).toEqual(['ims:admin', 'offline']);
    expect(scopesOf({ realm_access: '{"roles":["ims:write"]}' }, 'realm_access.roles')).toEqual(['ims:write']);
    expect(scopesOf({ realm_access: { other: ['ims:admin'] } }, 'realm_access.roles')).toEqual([]);
  });

  test('a claim named with a dot wins over the path', () => {
    expect(scopesOf({ 'a.b': 'flat', a: { b: 'nested' } }, 'a.b')).toEqual(['flat']);
  });

  test('a missing or non-text claim holds no scopes', () => {
    expect(scopesOf({}, 'scope')).toEqual([]);
    expect(scopesOf({ scope: 42 }, 'scope')).toEqual([]);
  });
});

describe('IMS_AUTH_* settings', () => {
  test('off by default, with the default scope names and claim', () => {
    expect(readAuthSettings({})).toMatchObject({ scopes: false, claim: 'scope', readScope: 'ims:read', writeScope: 'ims:write', adminScope: 'ims:admin' });
  });

  test('names are configurable', () => {
    const auth = readAuthSettings({ IMS_AUTH_SCOPES: 'on', IMS_AUTH_CLAIM: 'realm_access.roles', IMS_AUTH_ADMIN_SCOPE: 'ims-admin' });
    expect(auth).toMatchObject({ scopes: true, claim: 'realm_access.roles', adminScope: 'ims-admin' });
  });

  test('a bad value stops the start with a message naming the variable', () => {
    expect(() => readAuthSettings({ IMS_AUTH_SCOPES: 'maybe' })).toThrow("IMS_AUTH_SCOPES='maybe' is not valid: use 'on' or 'off'");
    expect(() => readAuthSettings({ IMS_AUTH_WRITE_SCOPE: 'a b' })).toThrow(/IMS_AUTH_WRITE_SCOPE/);
    expect(() => readAuthSettings({ IMS_AUTH_CLAIM: 'a..b' })).toThrow(/IMS_AUTH_CLAIM/);
  });
});

describe('inside a Lambda event', () => {
  // The entry point as deployed, its context built from the function's environment with scopes on.
  const publicKeys = handlerWith(contextFrom({ ...process.env, IMS_AUTH_SCOPES: 'on' }));

  const event = (method: string, path: string, claims?: Record<string, unknown>, body?: unknown): HttpEvent =>
    ({
      version: '2.0',
      routeKey: `${method} ${path}`,
      rawPath: path,
      rawQueryString: '',
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      isBase64Encoded: false,
      requestContext: {
        accountId: '123456789012',
        apiId: 'api',
        domainName: 'api.example',
        domainPrefix: 'api',
        http: { method, path, protocol: 'HTTP/1.1', sourceIp: '10.0.0.1', userAgent: 'test' },
        requestId: 'r1',
        routeKey: `${method} ${path}`,
        stage: '$default',
        time: '',
        timeEpoch: 0,
        ...(claims ? { authorizer: { lambda: authorizerResponse({ claims }).context } } : {}),
      },
    }) as HttpEvent;
  const context = { functionName: 'ims-public-keys', awsRequestId: 'r1', getRemainingTimeInMillis: () => 30_000 } as Context;

  test('the scopes of the authorizer claims decide: 403 with read only, past the check with write', async () => {
    const denied = await publicKeys(event('POST', '/v3/public-keys', { scope: 'ims:read' }, {}), context);
    expect(denied.statusCode).toBe(403);
    expect(JSON.parse(denied.body!)).toEqual({
      type: 'about:blank',
      status: 403,
      title: 'Forbidden',
      detail: "This request needs the scope 'ims:write'; the token has: ims:read.",
    });
    // With write the request reaches body validation (an empty body is "no input"), no record store needed.
    const allowed = await publicKeys(event('POST', '/v3/public-keys', { scope: 'ims:write' }, {}), context);
    expect(allowed.statusCode).toBe(400);
  });

  test('no claims at all is a 401', async () => {
    const res = await publicKeys(event('DELETE', '/v3/public-keys/abc'), context);
    expect(res.statusCode).toBe(401);
    expect(JSON.parse(res.body!)).toMatchObject({ type: 'about:blank', title: 'Unauthorized' });
  });
});

describe('the JWKS', () => {
  test('keys are fetched once, and again for an unknown kid once the last fetch is not recent', async () => {
    const issuer = await startJwtIssuer();
    try {
      let now = Date.now();
      const verify = tokenVerifier({ issuers: [{ issuer: issuer.issuer, jwks: issuer.jwksUrl }], audiences: [issuer.audience] }, () => now);
      await verify(issuer.token());
      await verify(issuer.token());
      expect(issuer.fetches()).toBe(1);
      await expect(verify(issuer.token({ kid: 'rotated' }))).rejects.toThrow("not in its issuer's JWKS");
      expect(issuer.fetches()).toBe(1);
      now += 60_000;
      await expect(verify(issuer.token({ kid: 'rotated' }))).rejects.toThrow("not in its issuer's JWKS");
      expect(issuer.fetches()).toBe(2);
      now += 11 * 60_000;
      await verify(issuer.token());
      expect(issuer.fetches()).toBe(3);
    } finally {
      await issuer.stop();
    }
  });
});

describe('IMS_AUTH_ISSUERS', () => {
  test('issuer[=jwks] entries, comma-separated; anything else is refused by name', () => {
    expect(parseTrustedIssuers(' https://a.example/realms/shasta , http://keycloak.services:8080/realms/shasta=https://a.example/certs,')).toEqual([
      { issuer: 'https://a.example/realms/shasta' },
      { issuer: 'http://keycloak.services:8080/realms/shasta', jwks: 'https://a.example/certs' },
    ]);
    expect(() => parseTrustedIssuers('issuer.example')).toThrow("IMS_AUTH_ISSUERS: 'issuer.example' is not an issuer URL");
    expect(() => parseTrustedIssuers('https://a.example/=')).toThrow(/not an issuer URL/);
    expect(() => parseTrustedIssuers('https://a.example/,https://a.example/')).toThrow('listed twice');
    expect(readAuthSettings({ IMS_AUTH_ISSUERS: 'https://a.example/', IMS_AUTH_AUDIENCE: 'ims, shasta' })).toMatchObject({ issuers: [{ issuer: 'https://a.example/' }], audiences: ['ims', 'shasta'] });
  });
});

describe('the Lambda authorizer', () => {
  test("tokens of either trusted issuer are authorized with their claims, a third issuer's are refused", async () => {
    // The operators' issuer is found by discovery (its OpenID configuration); the pods' is given with its JWKS.
    const operators = await startJwtIssuer((url) => `${url}/realms/shasta`);
    const pods = await startJwtIssuer('http://keycloak.services.svc.cluster.local:8080/keycloak/realms/shasta');
    const stranger = await startJwtIssuer('https://stranger.example/realms/shasta');
    try {
      const env = { IMS_AUTH_ISSUERS: `${operators.issuer},${pods.entry}`, IMS_AUTH_AUDIENCE: 'ims' };
      const authorize = authorizerWith(bearerChecker(readAuthSettings(env)));
      const request = (token?: string) => authorize({ headers: token ? { authorization: `Bearer ${token}` } : {}, routeKey: 'ANY /v3/images' } as never);

      const fromOperators = await request(operators.token({ claims: { scope: 'ims:admin' } }));
      expect(fromOperators.isAuthorized).toBe(true);
      expect(JSON.parse(fromOperators.context!.claims)).toMatchObject({ iss: operators.issuer, scope: 'ims:admin' });
      const fromPods = await request(pods.token({ claims: { scope: 'ims:write' } }));
      expect(fromPods.isAuthorized).toBe(true);
      expect(JSON.parse(fromPods.context!.claims)).toMatchObject({ iss: pods.issuer });

      expect(await request(stranger.token())).toEqual({ isAuthorized: false });
      // A token naming a trusted issuer but signed by another's key, an expired one, none at all.
      expect(await request(stranger.token({ claims: { iss: pods.issuer } }))).toEqual({ isAuthorized: false });
      expect(await request(pods.token({ expiresIn: -3600 }))).toEqual({ isAuthorized: false });
      expect(await request()).toEqual({ isAuthorized: false });
      expect(operators.fetches()).toBe(1);
      expect(stranger.fetches()).toBe(0);
    } finally {
      await Promise.all([operators.stop(), pods.stop(), stranger.stop()]);
    }
  });

  test('a token for another audience is refused; a token without aud is read by its client_id', async () => {
    const issuer = await startJwtIssuer();
    try {
      const check = bearerChecker({ issuers: [{ issuer: issuer.issuer, jwks: issuer.jwksUrl }], audiences: ['ims'] });
      expect(await check(`Bearer ${issuer.token({ claims: { aud: 'someone-else' } })}`)).toEqual({ refused: 'the token is not meant for the audience ims' });
      expect(await check(`Bearer ${issuer.token({ claims: { aud: undefined, client_id: 'ims' } })}`)).toMatchObject({ claims: { client_id: 'ims' } });
    } finally {
      await issuer.stop();
    }
  });
});
