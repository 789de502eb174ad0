/**
 * The key that signs and verifies job report tokens (shared/domain/job-report-token.ts).
 * Deployed: a Secrets Manager secret the stack generates (IMS_JOB_REPORT_SECRET_ARN), read through
 * the secrets cache, so a rotated value reaches running containers within SECRETS_MAX_AGE_SECONDS
 * (tokens signed with the old value then stop verifying and the reconciler carries their jobs).
 * Embedded: a file of random bytes in the data directory (IMS_JOB_REPORT_KEY_FILE), made on
 * first start. Without either, jobs get no token and every report is refused.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Settings } from './config.js';
import { loadSecret } from './secrets.js';

/** The key, or undefined when none is configured. */
export async function jobReportKey(settings: Pick<Settings, 'jobReportSecretArn' | 'jobReportKeyFile'>): Promise<Buffer | undefined> {
  if (settings.jobReportSecretArn) {
    const value = (await loadSecret(settings.jobReportSecretArn)).trim();
    if (value.length < 16) throw new Error(`the job report secret ${settings.jobReportSecretArn} is too short to sign with`);
    return Buffer.from(value, 'utf8');
  }
  if (settings.jobReportKeyFile) return readFileSync(settings.jobReportKeyFile);
  return undefined;
}

/** Makes the embedded key file unless it exists (owner-only, 32 random bytes). */
export function ensureJobReportKeyFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  try {
    writeFileSync(path, randomBytes(32), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}
