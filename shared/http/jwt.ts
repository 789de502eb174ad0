/**
 * Bearer tokens, checked the same way deployed (the API's Lambda authorizer,
 * functions/api/authorizer.ts) and under `npm start` (the embedded server): an RS256 JWT, not
 * expired, already valid, for one of the audiences when any are set (`aud`, or `client_id` when
 * the token has no `aud`, as API Gateway's JWT authorizer reads them), and from one of the
 * trusted issuers (IMS_AUTH_ISSUERS), signed by a key of that issuer's JWKS. More than one
 * issuer is the point: job pods get their tokens from the cluster-internal Keycloak, whose `iss`
 * names its internal host, while operators' tokens name the public one.
 *
 * Each issuer's JWKS is a URL (fetched and cached, fetched again for an unknown `kid` and once
 * older than JWKS_MAX_AGE_MS), a file, or, when none is given, the `jwks_uri` of the issuer's
 * `/.well-known/openid-configuration`. node:crypto only.
 */
import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { TrustedIssuer } from '../config.js';

/** Keys are fetched again once this old. */
export const JWKS_MAX_AGE_MS = 10 * 60 * 1000;
/** An unknown `kid` fetches the keys again at most this often (a flood of forged kids costs one fetch). */
const REFETCH_MIN_MS = 30 * 1000;
/** Bound of one fetch of keys or discovery: two fit in API Gateway's 10 s for an authorizer. */
const FETCH_TIMEOUT_MS = 4000;
/** Leeway for the clocks of the issuer and this host. */
const CLOCK_SKEW_SECONDS = 60;

/** A token's claims. */
export type Claims = Record<string, unknown>;

/** What a token must satisfy. */
export interface TokenPolicy {
  issuers: readonly TrustedIssuer[];
  /** Empty: any audience. */
  audiences: readonly string[];
}

export class TokenError extends Error {
  override name = 'TokenError';
}

interface Jwk extends JsonWebKey {
  kid?: string;
  kty?: string;
  use?: string;
  alg?: string;
}

export type KeyLookup = (kid: string | undefined) => Promise<KeyObject | undefined>;

function keysOf(text: string, where: string): Map<string | undefined, KeyObject> {
  let parsed: { keys?: Jwk[] };
  try {
    parsed = JSON.parse(text) as { keys?: Jwk[] };
  } catch {
    throw new Error(`the JWKS at ${where} is not JSON`);
  }
  if (!Array.isArray(parsed.keys)) throw new Error(`the JWKS at ${where} has no "keys" array`);
  const keys = new Map<string | undefined, KeyObject>();
  for (const jwk of parsed.keys) {
    if (jwk.kty !== 'RSA' || (jwk.use && jwk.use !== 'sig') || (jwk.alg && jwk.alg !== 'RS256')) continue;
    keys.set(jwk.kid, createPublicKey({ key: jwk, format: 'jwk' }));
  }
  return keys;
}

async function fetchText(url: string, what: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`the ${what} at ${url} answered ${response.status}`);
  return response.text();
}

/** Where an issuer's keys are: its own JWKS, or the one its OpenID configuration names. */
async function jwksText(issuer: TrustedIssuer): Promise<[text: string, where: string]> {
  if (issuer.jwks && !/^https?:\/\//.test(issuer.jwks)) return [await readFile(issuer.jwks, 'utf8'), issuer.jwks];
  let url = issuer.jwks;
  if (!url) {
    const discovery = `${issuer.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const config = JSON.parse(await fetchText(discovery, 'OpenID configuration')) as { jwks_uri?: unknown };
    if (typeof config.jwks_uri !== 'string') throw new Error(`the OpenID configuration at ${discovery} names no jwks_uri`);
    url = config.jwks_uri;
  }
  return [await fetchText(url, 'JWKS'), url];
}

/** The key for a `kid`: from the issuer's JWKS, fetched again when the `kid` is unknown or the keys are old. */
export function jwksKeys(issuer: TrustedIssuer, now: () => number = Date.now): KeyLookup {
  const load = async () => keysOf(...(await jwksText(issuer)));
  let cached: { keys: Promise<Map<string | undefined, KeyObject>>; at: number } | undefined;
  const fetchKeys = () => {
    const entry = { keys: load(), at: now() };
    entry.keys.catch(() => {
      if (cached === entry) cached = undefined;
    });
    cached = entry;
    return entry.keys;
  };
  const find = (keys: Map<string | undefined, KeyObject>, kid: string | undefined) =>
    kid === undefined && keys.size === 1 ? [...keys.values()][0] : keys.get(kid);
  return async (kid) => {
    if (!cached || now() - cached.at > JWKS_MAX_AGE_MS) await fetchKeys();
    const key = find(await cached!.keys, kid);
    if (key || now() - cached!.at < REFETCH_MIN_MS) return key;
    return find(await fetchKeys(), kid);
  };
}

function decodePart(part: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // Reported below.
  }
  throw new TokenError(`the token's ${what} is not a JSON object`);
}

/** The message of a check without any issuer: a configuration error, never a refusal. */
export const NO_ISSUERS = 'no trusted token issuer is configured (IMS_AUTH_ISSUERS)';

/** Checks tokens against a policy; each issuer's keys are cached for the life of the checker. */
export type TokenVerifier = (token: string, nowMs?: number) => Promise<Claims>;

/** The claims of a valid token; a TokenError saying what is wrong otherwise. */
export function tokenVerifier(policy: TokenPolicy, now: () => number = Date.now): TokenVerifier {
  const keysByIssuer = new Map(policy.issuers.map((issuer) => [issuer.issuer, jwksKeys(issuer, now)]));
  return async (token, nowMs = now()) => {
    if (keysByIssuer.size === 0) throw new Error(NO_ISSUERS);
    const parts = token.split('.');
    if (parts.length !== 3) throw new TokenError('the token is not a JWT');
    const header = decodePart(parts[0], 'header');
    if (header.alg !== 'RS256') throw new TokenError(`the token is signed with ${String(header.alg)}, not RS256`);
    const claims = decodePart(parts[1], 'payload');
    // The issuer picks the keys; the signature below proves the claim.
    const keys = typeof claims.iss === 'string' ? keysByIssuer.get(claims.iss) : undefined;
    if (!keys) throw new TokenError(`the token is not issued by a trusted issuer (${[...keysByIssuer.keys()].join(', ')})`);
    const key = await keys(typeof header.kid === 'string' ? header.kid : undefined);
    if (!key) throw new TokenError('the token is signed with a key that is not in its issuer\'s JWKS');
    const signed = verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2], 'base64url'));
    if (!signed) throw new TokenError('the token signature is not valid');
    const seconds = nowMs / 1000;
    if (typeof claims.exp !== 'number') throw new TokenError('the token has no expiry (exp)');
    if (claims.exp + CLOCK_SKEW_SECONDS <= seconds) throw new TokenError('the token has expired');
    if (typeof claims.nbf === 'number' && claims.nbf - CLOCK_SKEW_SECONDS > seconds) throw new TokenError('the token is not valid yet (nbf)');
    if (policy.audiences.length > 0) {
      const held = claims.aud !== undefined ? (Array.isArray(claims.aud) ? claims.aud : [claims.aud]) : [claims.client_id];
      if (!policy.audiences.some((audience) => held.includes(audience))) throw new TokenError(`the token is not meant for the audience ${policy.audiences.join(' or ')}`);
    }
    return claims;
  };
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/** A request's `Authorization` header checked: the token's claims, or why it is refused. */
export type BearerCheck = { claims: Claims } | { refused: string };

/**
 * Checks `Authorization` headers against the policy. A header without a valid bearer token is
 * refused; keys that cannot be fetched (an issuer down) throw, as an outage and not a refusal.
 */
export function bearerChecker(policy: TokenPolicy, now: () => number = Date.now): (authorization: string | undefined) => Promise<BearerCheck> {
  const verifyToken = tokenVerifier(policy, now);
  return async (authorization) => {
    const token = bearerToken(authorization);
    if (!token) return { refused: 'the request has no bearer token' };
    try {
      return { claims: await verifyToken(token) };
    } catch (error) {
      if (error instanceof TokenError) return { refused: error.message };
      throw error;
    }
  };
}

/** The key of the Lambda authorizer's context that carries the token's claims, as JSON text. */
export const CLAIMS_CONTEXT_KEY = 'claims';

/** The authorizer's simple response (payload 2.0): API Gateway answers 403 for a refused token. */
export interface AuthorizerResponse {
  isAuthorized: boolean;
  context?: Record<string, string>;
}

export function authorizerResponse(check: BearerCheck): AuthorizerResponse {
  return 'claims' in check ? { isAuthorized: true, context: { [CLAIMS_CONTEXT_KEY]: JSON.stringify(check.claims) } } : { isAuthorized: false };
}
