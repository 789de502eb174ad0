/**
 * Bearer tokens under `npm start`, where no API Gateway checks them: what its JWT authorizer does
 * deployed. A token is an RS256 JWT signed by a key of the JWKS (IMS_AUTH_JWKS_URL, fetched and
 * cached, fetched again for an unknown `kid` and once older than JWKS_MAX_AGE_MS; or
 * IMS_AUTH_JWKS_FILE), not expired, already valid, and from IMS_AUTH_ISSUER for
 * IMS_AUTH_AUDIENCE when those are set. node:crypto only.
 */
import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { AuthSettings } from '#shared/config.js';
import type { Claims } from '#shared/http/middleware/authorize.js';

/** Keys are fetched again once this old. */
export const JWKS_MAX_AGE_MS = 10 * 60 * 1000;
/** An unknown `kid` fetches the keys again at most this often (a flood of forged kids costs one fetch). */
const REFETCH_MIN_MS = 30 * 1000;
/** Leeway for the clocks of the issuer and this host. */
const CLOCK_SKEW_SECONDS = 60;

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

/** The key for a `kid`: from the JWKS, fetched again when the `kid` is unknown or the keys are old. */
export function jwksKeys(auth: Pick<AuthSettings, 'jwksUrl' | 'jwksFile'>, now: () => number = Date.now): KeyLookup {
  const source = auth.jwksUrl ?? auth.jwksFile;
  if (!source) throw new Error('IMS_AUTH_SCOPES=on under npm start needs IMS_AUTH_JWKS_URL or IMS_AUTH_JWKS_FILE: the keys that sign the bearer tokens');
  const load = async (): Promise<Map<string | undefined, KeyObject>> => {
    if (auth.jwksUrl) {
      const response = await fetch(auth.jwksUrl, { signal: AbortSignal.timeout(10_000) });
      if (!response.ok) throw new Error(`the JWKS at ${auth.jwksUrl} answered ${response.status}`);
      return keysOf(await response.text(), auth.jwksUrl);
    }
    return keysOf(await readFile(auth.jwksFile!, 'utf8'), auth.jwksFile!);
  };
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

/** The claims of a valid token; a TokenError saying what is wrong otherwise. */
export async function verifyToken(token: string, keys: KeyLookup, auth: Pick<AuthSettings, 'issuer' | 'audience'>, nowMs = Date.now()): Promise<Claims> {
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenError('the token is not a JWT');
  const header = decodePart(parts[0], 'header');
  if (header.alg !== 'RS256') throw new TokenError(`the token is signed with ${String(header.alg)}, not RS256`);
  const key = await keys(typeof header.kid === 'string' ? header.kid : undefined);
  if (!key) throw new TokenError('the token is signed with a key that is not in the JWKS');
  const signed = verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2], 'base64url'));
  if (!signed) throw new TokenError('the token signature is not valid');
  const claims = decodePart(parts[1], 'payload');
  const now = nowMs / 1000;
  if (typeof claims.exp !== 'number') throw new TokenError('the token has no expiry (exp)');
  if (claims.exp + CLOCK_SKEW_SECONDS <= now) throw new TokenError('the token has expired');
  if (typeof claims.nbf === 'number' && claims.nbf - CLOCK_SKEW_SECONDS > now) throw new TokenError('the token is not valid yet (nbf)');
  if (auth.issuer && claims.iss !== auth.issuer) throw new TokenError(`the token is not issued by ${auth.issuer}`);
  if (auth.audience) {
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(auth.audience)) throw new TokenError(`the token is not meant for the audience ${auth.audience}`);
  }
  return claims;
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}
