/**
 * cleanup: ends every process of the job (tasks, sshd, user sessions, chrooted build
 * processes), unmounts the job's overlay and rootfs (and what a killed tool may have left
 * mounted below the work directory), detaches their loop devices, and only then removes the
 * directory, without crossing into any file system still mounted there.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TOOL_PATH } from './host-tools.js';
import { killJobProcesses } from './job-processes.js';
import { exists, type LocalJob } from './local-job.js';
import { unmountUnder } from './mounts.js';

const run = promisify(execFile);

export async function removeJobWork(job: LocalJob): Promise<void> {
  await removeWorkOf(job.job.job.id, job.paths.dir);
}

/** Ends the job's processes and removes its work directory `dir`; both may already be gone. */
export async function removeWorkOf(jobId: string, dir: string): Promise<void> {
  const survivors = await killJobProcesses(jobId, dir);
  if (survivors.length > 0) throw new Error(`processes ${survivors.join(', ')} of IMS job ${jobId} did not end`);
  if (!(await exists(dir))) return;
  const mounted = await unmountUnder(dir);
  if (mounted.length > 0) throw new Error(`still mounted below ${dir}: ${mounted.join(', ')}`);
  await run('rm', ['-rf', '--one-file-system', dir], { env: { PATH: TOOL_PATH } });
  if (await exists(dir)) throw new Error(`${dir} could not be removed`);
}
