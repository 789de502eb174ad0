/**
 * The credential a job's work holds to report its own progress (`POST /v3/jobs/{id}/checks`): an
 * HMAC-SHA256 over the job id and an expiry, keyed by a service secret. It names one job, expires
 * with it, and grants nothing but asking for a check of that job's waiting stage, which is
 * idempotent: a stolen token can at most make the service look at a job sooner.
 *
 *   ims-report.v1.<job id, base64url>.<expiry, unix seconds>.<HMAC, base64url>
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const PREFIX = 'ims-report.v1';

export type ReportTokenCheck = { ok: true } | { ok: false; status: 401 | 403; reason: string };

function macOf(key: Uint8Array, jobId: string, expiresAt: number): Buffer {
  return createHmac('sha256', key).update(`${PREFIX}\n${jobId}\n${expiresAt}`).digest();
}

/** A token for `jobId` that stops working at `expiresAt` (unix seconds). */
export function mintReportToken(key: Uint8Array, jobId: string, expiresAt: number): string {
  const exp = Math.floor(expiresAt);
  return `${PREFIX}.${Buffer.from(jobId, 'utf8').toString('base64url')}.${exp}.${macOf(key, jobId, exp).toString('base64url')}`;
}

/**
 * Whether `token` lets its bearer ask for a check of job `jobId` at `now` (unix seconds). The MAC
 * is compared in constant time before anything the token says is believed, so a forged token
 * learns nothing of which job or expiry would pass.
 */
export function checkReportToken(key: Uint8Array, jobId: string, token: string, now: number): ReportTokenCheck {
  const parts = token.split('.');
  if (parts.length !== 5 || `${parts[0]}.${parts[1]}` !== PREFIX || !/^\d{1,12}$/.test(parts[3])) {
    return { ok: false, status: 401, reason: 'the token is not a job report token' };
  }
  const tokenJob = Buffer.from(parts[2], 'base64url').toString('utf8');
  const expiresAt = Number(parts[3]);
  const given = Buffer.from(parts[4], 'base64url');
  const expected = macOf(key, tokenJob, expiresAt);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, status: 401, reason: 'the token does not verify' };
  if (tokenJob !== jobId) return { ok: false, status: 403, reason: 'the token is for another job' };
  if (now >= expiresAt) return { ok: false, status: 401, reason: 'the token has expired' };
  return { ok: true };
}
