/**
 * Secret values from AWS Secrets Manager, read once per process (per Lambda container). The
 * stack passes only ARNs in the environment (KUBECONFIG_SECRET_ARN, REMOTE_NODE_KEY_SECRET_ARN,
 * S3_SIGNING_SECRET_ARN);
 * the value is fetched when first needed, so it never sits in a function's configuration.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readSettings } from './config.js';

/** The part of the client the loader uses (tests hand in a fake). */
export interface SecretsClient {
  send(command: GetSecretValueCommand): Promise<{ SecretString?: string; SecretBinary?: Uint8Array }>;
}

export interface SecretReadOptions {
  /**
   * Read the secret again once the cached value is older than this (ms): for a value that is
   * rotated while containers live, such as the S3 signing key. Unset, a value is kept for the
   * life of the process.
   */
  maxAgeMs?: number;
}

export type SecretLoader = (secretId: string, options?: SecretReadOptions) => Promise<string>;

/** A loader that asks once per secret (or per maxAgeMs); a failed read is not cached, so the next call retries. */
export function createSecretLoader(client: SecretsClient, now: () => number = Date.now): SecretLoader {
  const cache = new Map<string, { value: Promise<string>; readAt: number }>();
  return (secretId, options = {}) => {
    const cached = cache.get(secretId);
    if (cached && (options.maxAgeMs === undefined || now() - cached.readAt <= options.maxAgeMs)) return cached.value;
    const value = client.send(new GetSecretValueCommand({ SecretId: secretId })).then((out) => {
      if (out.SecretString !== undefined) return out.SecretString;
      if (out.SecretBinary !== undefined) return Buffer.from(out.SecretBinary).toString('utf8');
      throw new Error(`secret ${secretId} has no value`);
    });
    const entry = { value, readAt: now() };
    value.catch(() => {
      if (cache.get(secretId) === entry) cache.delete(secretId);
    });
    cache.set(secretId, entry);
    return value;
  };
}

let defaultLoader: SecretLoader | undefined;

/** The value of a secret (ARN or name), from the process-wide cache. */
export function loadSecret(secretId: string, options?: SecretReadOptions): Promise<string> {
  defaultLoader ??= createSecretLoader(new SecretsManagerClient({ region: readSettings().region }));
  return defaultLoader(secretId, options);
}

/** The value of the secret whose ARN the variable holds; undefined when the variable is unset. */
export async function secretFromEnv(variable: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const secretId = env[variable];
  return secretId ? loadSecret(secretId) : undefined;
}
