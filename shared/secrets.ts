/**
 * Secret values from AWS Secrets Manager. The stack passes only ARNs in the environment
 * (KUBECONFIG_SECRET_ARN, REMOTE_NODE_KEY_SECRET_ARN, S3_SIGNING_SECRET_ARN,
 * REMOTE_NODE_KNOWN_HOSTS_SECRET_ARN); the value is fetched when first needed, so it never sits in
 * a function's configuration, and fetched again once older than SECRETS_MAX_AGE_SECONDS (default
 * 300), so a rotated value reaches running containers within minutes.
 *
 * The cache (`createCachedReader`) also serves SSM parameters (shared/parameters.ts):
 * - concurrent reads of one value share one fetch;
 * - a failed first read is not cached: the next call asks again;
 * - a failed re-read after expiry keeps serving the last good value, with a warning, until it is
 *   twice the maximum age old (a grace of one more maximum age); after that the failure is the
 *   caller's, so a value never outlives a lasting outage by more than that.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DEFAULT_SECRETS_MAX_AGE_SECONDS, readSettings } from './config.js';
import { logger } from './logger.js';
import { traced } from './observability.js';

/** The part of the client the loader uses (tests hand in a fake). */
export interface SecretsClient {
  send(command: GetSecretValueCommand): Promise<{ SecretString?: string; SecretBinary?: Uint8Array }>;
}

export interface SecretReadOptions {
  /**
   * Read the value again once the cached one is older than this (ms), when that is shorter than
   * the loader's own maximum age (SECRETS_MAX_AGE_SECONDS).
   */
  maxAgeMs?: number;
}

export type SecretLoader = (secretId: string, options?: SecretReadOptions) => Promise<string>;

export interface CacheOptions {
  /** SECRETS_MAX_AGE_SECONDS in ms. */
  maxAgeMs?: number;
  /** How long past its age a last good value is served while re-reads fail (default: maxAgeMs). */
  graceMs?: number;
  now?: () => number;
  /** What the values are, for the warning of a failed re-read ("secret", "parameter"). */
  what?: string;
}

interface Entry {
  value?: string;
  readAt: number;
  pending?: Promise<string>;
  /** After a failed re-read, the last value is served without asking again until then. */
  retryAt?: number;
}

/** Pause between two re-reads while they fail (each may cost the SDK's retries). */
const RETRY_PAUSE_MS = 10_000;

/** A cache of values by id in front of `read`, with the rules above. */
export function createCachedReader(read: (id: string) => Promise<string>, options: CacheOptions = {}): SecretLoader {
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_SECRETS_MAX_AGE_SECONDS * 1000;
  const graceMs = options.graceMs ?? maxAgeMs;
  const now = options.now ?? Date.now;
  const what = options.what ?? 'secret';
  const cache = new Map<string, Entry>();
  return (id, readOptions = {}) => {
    const ageLimit = Math.min(maxAgeMs, readOptions.maxAgeMs ?? maxAgeMs);
    const entry = cache.get(id) ?? { readAt: 0 };
    cache.set(id, entry);
    if (entry.value !== undefined && now() - entry.readAt <= ageLimit) return Promise.resolve(entry.value);
    if (entry.value !== undefined && entry.retryAt !== undefined && now() < entry.retryAt && now() - entry.readAt <= ageLimit + graceMs) {
      return Promise.resolve(entry.value);
    }
    entry.pending ??= read(id).then(
      (value) => {
        entry.value = value;
        entry.readAt = now();
        entry.pending = undefined;
        entry.retryAt = undefined;
        return value;
      },
      (error: unknown) => {
        entry.pending = undefined;
        if (entry.value === undefined || now() - entry.readAt > ageLimit + graceMs) throw error;
        entry.retryAt = now() + RETRY_PAUSE_MS;
        logger.warn(`${what} could not be read again; the last value read is used meanwhile`, {
          id,
          ageSeconds: Math.round((now() - entry.readAt) / 1000),
          error: (error as Error).message,
        });
        return entry.value;
      },
    );
    return entry.pending;
  };
}

/** A loader of Secrets Manager values (ARN or name). */
export function createSecretLoader(client: SecretsClient, options: CacheOptions = {}): SecretLoader {
  return createCachedReader(async (secretId) => {
    const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    if (out.SecretString !== undefined) return out.SecretString;
    if (out.SecretBinary !== undefined) return Buffer.from(out.SecretBinary).toString('utf8');
    throw new Error(`secret ${secretId} has no value`);
  }, options);
}

let defaultLoader: SecretLoader | undefined;

/** The value of a secret (ARN or name), from the process-wide cache. */
export function loadSecret(secretId: string, options?: SecretReadOptions): Promise<string> {
  if (!defaultLoader) {
    const settings = readSettings();
    defaultLoader = createSecretLoader(traced(new SecretsManagerClient({ region: settings.region })), { maxAgeMs: settings.secretsMaxAgeSeconds * 1000 });
  }
  return defaultLoader(secretId, options);
}

/** The value of the secret whose ARN the variable holds; undefined when the variable is unset. */
export async function secretFromEnv(variable: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const secretId = env[variable];
  return secretId ? loadSecret(secretId) : undefined;
}
