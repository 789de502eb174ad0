/**
 * Authorization by JWT scopes (IMS_AUTH_SCOPES=on): each route's class (shared/http/routes.ts)
 * needs a scope, read from the token's claims as the API's Lambda authorizer hands them in
 * `requestContext.authorizer.lambda.claims` (JSON text; under `npm start` the embedded server
 * puts them there after the same check, shared/http/jwt.ts). The token itself is checked before
 * the handler runs; here only its scopes are. Off, nothing is checked.
 *
 * The original leaves authorization to the system's API gateway and has no wording of its own
 * for 401 and 403; these are RFC 7807 problems like every other failure.
 */
import type { MiddlewareObj } from '@middy/core';
import type { AuthSettings } from '../../config.js';
import { problemResponse } from '../problem.js';
import { ProblemError } from '../problem.js';
import { accessRule, withoutJwt, type AccessClass, type AccessRule } from '../routes.js';
import { CLAIMS_CONTEXT_KEY, type Claims } from '../jwt.js';
import type { HttpEvent, HttpResult } from '../types.js';
import { imsState } from './route-request.js';

export type { Claims } from '../jwt.js';

/** A 401 or 403 problem, with `type: about:blank` as RFC 7807 has it for a status's own meaning. */
export class AuthorizationError extends ProblemError {
  constructor(status: 401 | 403, detail: string) {
    super(status, detail, {
      title: status === 401 ? 'Unauthorized' : 'Forbidden',
      headers: status === 401 ? { 'www-authenticate': 'Bearer' } : {},
    });
  }
}

/** The response of an AuthorizationError. */
export function authorizationProblem(error: AuthorizationError): HttpResult {
  return problemResponse(error, error.headers, { type: 'about:blank' });
}

/** The claims the Lambda authorizer passed, or undefined when the request carries none. */
export function claimsOf(event: HttpEvent): Claims | undefined {
  const context = event.requestContext as HttpEvent['requestContext'] & { authorizer?: { lambda?: Record<string, unknown> } };
  const claims = objectOf(context.authorizer?.lambda?.[CLAIMS_CONTEXT_KEY]);
  return claims && Object.keys(claims).length > 0 ? claims : undefined;
}

/**
 * The words of a claim value: a space-separated string, an array, or API Gateway's rendering of
 * an array claim (`[a b c]`).
 */
function wordsOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap((item) => (typeof item === 'string' ? item.split(/\s+/) : [])).filter(Boolean);
  if (typeof value !== 'string') return [];
  const text = value.trim();
  const inner = /^\[(.*)\]$/s.exec(text)?.[1];
  if (inner !== undefined) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (Array.isArray(parsed)) return wordsOf(parsed);
    } catch {
      // Not JSON: API Gateway's `[a b c]`.
    }
    return inner.split(/[\s,]+/).filter(Boolean);
  }
  return text.split(/\s+/).filter(Boolean);
}

/** An object claim, or one API Gateway passed as JSON text. */
function objectOf(value: unknown): Claims | undefined {
  if (value && typeof value === 'object' && !Array.isArray(value)) return value as Claims;
  if (typeof value === 'string' && value.trim().startsWith('{')) {
    try {
      return objectOf(JSON.parse(value));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The scopes a token holds in `claim`: a claim name, or a dotted path into an object claim
 * (`realm_access.roles`). A claim named with the dots itself wins over the path.
 */
export function scopesOf(claims: Claims, claim: string): string[] {
  if (claim in claims) return wordsOf(claims[claim]);
  let value: unknown = claims;
  for (const part of claim.split('.')) {
    const object = objectOf(value);
    if (!object || !(part in object)) return [];
    value = object[part];
  }
  return wordsOf(value);
}

/** The scopes that grant a class: admin implies write implies read. */
function grantingScopes(auth: AuthSettings, access: Exclude<AccessClass, 'public' | 'job-report'>): string[] {
  if (access === 'admin') return [auth.adminScope];
  if (access === 'write') return [auth.writeScope, auth.adminScope];
  return [auth.readScope, auth.writeScope, auth.adminScope];
}

function neededScope(auth: AuthSettings, access: Exclude<AccessClass, 'public' | 'job-report'>): string {
  return access === 'admin' ? auth.adminScope : access === 'write' ? auth.writeScope : auth.readScope;
}

/** Throws the 401 or 403 problem unless the claims grant `access`. */
export function requireAccess(auth: AuthSettings, claims: Claims | undefined, access: AccessClass): void {
  if (withoutJwt(access)) return;
  if (!claims) throw new AuthorizationError(401, 'This request needs a bearer token; none was accepted.');
  const held = scopesOf(claims, auth.claim);
  if (grantingScopes(auth, access).some((scope) => held.includes(scope))) return;
  const has = held.length > 0 ? `the token has: ${held.join(' ')}` : `the token has none in its '${auth.claim}' claim`;
  throw new AuthorizationError(403, `This request needs the scope '${neededScope(auth, access)}'; ${has}.`);
}

/** The class of a rule once the body is known (a body field absent or unlisted: `otherwise`). */
export function classOf(rule: AccessRule, body?: unknown): AccessClass {
  if (typeof rule === 'string') return rule;
  const value = body && typeof body === 'object' ? (body as Record<string, unknown>)[rule.field] : undefined;
  return (typeof value === 'string' ? rule.values[value] : undefined) ?? rule.otherwise;
}

/** The least class a rule can end up as: what is checked before the body is read. */
function leastClassOf(rule: AccessRule): AccessClass {
  if (typeof rule === 'string') return rule;
  const order: AccessClass[] = ['public', 'job-report', 'read', 'write', 'admin'];
  return [...Object.values(rule.values), rule.otherwise].reduce((a, b) => (order.indexOf(a) <= order.indexOf(b) ? a : b));
}

/**
 * `route`: after routing, before the precheck and the body, the route's class. A class that
 * depends on the body (job creation) is checked at its least there, and in full at `body`, once
 * the body is validated.
 */
function check(stage: 'route' | 'body', settings?: () => AuthSettings): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    before: async (request) => {
      const state = imsState(request);
      const auth = settings ? settings() : state.request?.app.config.auth;
      if (!auth?.scopes || !state.route) return;
      const rule = accessRule(state.route, request.event.requestContext.http.method.toUpperCase());
      if (stage === 'body' && typeof rule === 'string') return;
      requireAccess(auth, claimsOf(request.event), stage === 'route' ? leastClassOf(rule) : classOf(rule, state.request?.body));
    },
  };
}

/** After routing: the scope of the route's class. */
export const authorize = (settings?: () => AuthSettings) => check('route', settings);

/** After validation: a class decided by the body (a customize job needs the admin scope). */
export const authorizeBody = (settings?: () => AuthSettings) => check('body', settings);
