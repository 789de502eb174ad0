/**
 * A token issuer for tests: an RSA key pair, its JWKS and OpenID configuration served on
 * 127.0.0.1, and RS256 tokens signed with it (or with a key the JWKS does not hold).
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenOptions {
  claims?: Record<string, unknown>;
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  /** Sign with a key the JWKS does not list. */
  foreignKey?: boolean;
  kid?: string;
}

export interface JwtIssuer {
  /** Where it serves: `<url>/.well-known/openid-configuration` names the JWKS. */
  url: string;
  jwksUrl: string;
  jwks: { keys: Record<string, unknown>[] };
  issuer: string;
  audience: string;
  token(options?: TokenOptions): string;
  /** The IMS_AUTH_ISSUERS entry of this issuer: `issuer=jwks`. */
  entry: string;
  /** How many times the JWKS was fetched. */
  fetches(): number;
  stop(): Promise<void>;
}

function rsaKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

/** `issuer`: the `iss` of its tokens, or made from the URL it serves at (an issuer found by discovery). */
export async function startJwtIssuer(issuerOf: string | ((url: string) => string) = 'https://issuer.test/', audience = 'ims'): Promise<JwtIssuer> {
  const own = rsaKey();
  const foreign = rsaKey();
  const kid = 'test-key-1';
  const jwks = { keys: [{ ...own.publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }] };
  let fetches = 0;
  let url = '';
  const server: Server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    if (req.url?.endsWith('/.well-known/openid-configuration')) {
      res.end(JSON.stringify({ issuer, jwks_uri: `${url}/.well-known/jwks.json` }));
      return;
    }
    fetches += 1;
    res.end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = typeof issuerOf === 'string' ? issuerOf : issuerOf(url);
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return {
    url,
    jwksUrl: `${url}/.well-known/jwks.json`,
    jwks,
    issuer,
    entry: `${issuer}=${url}/.well-known/jwks.json`,
    audience,
    token: (options = {}) => {
      const now = Math.floor(Date.now() / 1000);
      const header = b64({ alg: 'RS256', typ: 'JWT', kid: options.kid ?? kid });
      const payload = b64({ iss: issuer, aud: audience, sub: 'tester', iat: now, exp: now + (options.expiresIn ?? 3600), ...options.claims });
      const signature = sign('RSA-SHA256', Buffer.from(`${header}.${payload}`), options.foreignKey ? foreign.privateKey : own.privateKey);
      return `${header}.${payload}.${signature.toString('base64url')}`;
    },
    fetches: () => fetches,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
