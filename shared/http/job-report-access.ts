/**
 * The access check of the job report routes (`POST /v3/jobs/{job_id}/checks`): no OAuth token and
 * no scope, but the job's own report token (shared/domain/job-report-token.ts), which only the
 * service can mint and which is good for that one job until it expires. A missing, forged or
 * expired token is a 401, another job's a 403; the token is never logged.
 */
import { checkReportToken } from '../domain/job-report-token.js';
import { jobReportKey } from '../job-report-key.js';
import type { AppContext } from '../wiring.js';
import { AuthorizationError } from './middleware/authorize.js';

export async function requireJobReportToken(app: AppContext, jobId: string, authorization: string | undefined): Promise<void> {
  const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
  if (!token) throw new AuthorizationError(401, "A job report needs the job's report token as its bearer token; none was sent.");
  const key = await jobReportKey(app.config);
  if (!key) throw new AuthorizationError(401, 'This service accepts no job reports: no report key is configured (IMS_JOB_REPORT_SECRET_ARN or IMS_JOB_REPORT_KEY_FILE).');
  const nowSeconds = Number(app.clock.nowMicros() / 1_000_000n);
  const check = checkReportToken(key, jobId, token, nowSeconds);
  if (!check.ok) throw new AuthorizationError(check.status, `The job report was refused: ${check.reason}.`);
}
