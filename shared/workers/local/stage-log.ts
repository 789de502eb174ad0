/**
 * The worker's own log of a job (`logs/worker.log`): what each stage started, found and
 * decided, with times. It is kept and uploaded with the build and sshd logs, so that a failed
 * job can be understood after its work directory is gone.
 */
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { logger } from '../../logger.js';

export const STAGE_LOG = 'worker.log';

export async function stageLog(logsDir: string, jobId: string, message: string): Promise<void> {
  logger.info(message, { jobId, worker: 'local' });
  await appendFile(join(logsDir, STAGE_LOG), `${new Date().toISOString()} ${message}\n`).catch(() => undefined);
}
