/**
 * Values from SSM Parameter Store (String or SecureString, decrypted), cached as secrets are
 * (shared/secrets.ts: SECRETS_MAX_AGE_SECONDS, shared fetches, a bounded grace on failure).
 * A parameter holds up to 8 KB (advanced tier), where an environment variable is part of a
 * function's 4 KB.
 */
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { readSettings } from './config.js';
import { traced } from './observability.js';
import { createCachedReader, type CacheOptions, type SecretLoader } from './secrets.js';

/** The part of the client the loader uses (tests hand in a fake). */
export interface ParametersClient {
  send(command: GetParameterCommand): Promise<{ Parameter?: { Value?: string } }>;
}

export type ParameterLoader = SecretLoader;

export function createParameterLoader(client: ParametersClient, options: CacheOptions = {}): ParameterLoader {
  return createCachedReader(
    async (name) => {
      const out = await client.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      const value = out.Parameter?.Value;
      if (value === undefined) throw new Error(`parameter ${name} has no value`);
      return value;
    },
    { what: 'parameter', ...options },
  );
}

let defaultLoader: ParameterLoader | undefined;

/** The value of a parameter (name or ARN), from the process-wide cache. */
export function loadParameter(name: string): Promise<string> {
  if (!defaultLoader) {
    const settings = readSettings();
    defaultLoader = createParameterLoader(traced(new SSMClient({ region: settings.region })), { maxAgeMs: settings.secretsMaxAgeSeconds * 1000 });
  }
  return defaultLoader(name);
}
