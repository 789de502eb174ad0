/**
 * The private key IMS uses to reach remote build nodes. It comes from configuration only: a file
 * on this host (re-read for every connection, so a rotated key is picked up, as the original
 * re-checks its key before each job, CASMCMS-8977) or a Secrets Manager secret (read again once
 * older than SECRETS_MAX_AGE_SECONDS). It is never stored in a record and never logged.
 */
import { readFile } from 'node:fs/promises';
import { loadSecret } from '../../secrets.js';
import type { RemoteNodeSettings } from './settings.js';

export type KeySource = () => Promise<string>;

export function keySourceFor(settings: RemoteNodeSettings, secrets: (id: string) => Promise<string> = loadSecret): KeySource {
  if (settings.keyFile) {
    const file = settings.keyFile;
    return () => readFile(file, 'utf8');
  }
  if (settings.keySecretArn) {
    const arn = settings.keySecretArn;
    return () => secrets(arn);
  }
  return async () => {
    throw new Error('no remote build node key is configured (REMOTE_NODE_SSH_KEY_FILE or REMOTE_NODE_KEY_SECRET_ARN)');
  };
}
