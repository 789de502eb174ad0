/**
 * Work left on this host by jobs the record store does not know: a job whose record was lost
 * (data directory removed, another table) keeps its work directory and may keep processes
 * (a build, the job's sshd, user sessions) that nothing would ever end. At start the embedded
 * service ends them and removes the directories, and says so in its log. Only work under this
 * service's IMS_WORK_ROOT is considered: a directory there, a mount or a loop device's backing
 * file there (a customize job's overlay and rootfs), or a process carrying a job marker that names
 * a directory there (by its command line, root or working directory).
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { logger } from '../../logger.js';
import { removeWorkOf } from './cleanup.js';
import { jobProcesses, JOB_MARKER } from './job-processes.js';
import { loopDevicesUnder, mountsUnder } from './mounts.js';
import type { LocalWorkerSettings } from './settings.js';
import { SAFE_ID } from './work-dir.js';

export interface OrphanedJob {
  jobId: string;
  workDir: string;
  /** The processes that were ended. */
  processes: number[];
  /** Why its work could not be removed (it is tried again at the next start). */
  error?: string;
}

/** Job ids of the work directories under the root. */
async function workDirIds(workRoot: string): Promise<string[]> {
  const entries = await readdir(workRoot, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory() && SAFE_ID.test(e.name)).map((e) => e.name);
}

/** Job ids of the mounts below the root and of the loop devices backed by files there. */
async function mountedIds(workRoot: string): Promise<string[]> {
  const backing = (await loopDevicesUnder(workRoot)).map((l) => l.backing);
  const ids = [...(await mountsUnder(workRoot)), ...backing].map((path) => path.slice(workRoot.length + 1).split('/')[0]);
  return ids.filter((id) => SAFE_ID.test(id));
}

/** Job ids of processes whose marker names a job and that point into that job's directory under the root. */
async function markedProcessIds(workRoot: string): Promise<string[]> {
  const ids = new Set<string>();
  const pids = (await readdir('/proc').catch(() => [])).filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid);
  await Promise.all(
    pids.map(async (pid) => {
      const environ = await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '');
      const marker = environ.split('\0').find((v) => v.startsWith(`${JOB_MARKER}=`));
      const id = marker?.slice(JOB_MARKER.length + 1);
      if (!id || !SAFE_ID.test(id)) return;
      const dir = join(workRoot, id);
      const inside = (path: string | undefined) => path !== undefined && (path === dir || path.startsWith(`${dir}/`));
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '')).replaceAll('\0', ' ');
      const root = await readlink(`/proc/${pid}/root`).catch(() => undefined);
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
      if (cmdline.includes(`${dir}/`) || inside(root) || inside(cwd)) ids.add(id);
    }),
  );
  return [...ids];
}

/**
 * Ends the processes and removes the work directories of the jobs under the root that
 * `isKnown` denies. A job whose look-up fails is left alone. Returns what was found.
 */
export async function sweepOrphanedJobs(settings: LocalWorkerSettings, isKnown: (jobId: string) => Promise<boolean>): Promise<OrphanedJob[]> {
  const ids = [...new Set([...(await workDirIds(settings.workRoot)), ...(await mountedIds(settings.workRoot)), ...(await markedProcessIds(settings.workRoot))])].sort();
  const orphans: OrphanedJob[] = [];
  for (const jobId of ids) {
    let known: boolean;
    try {
      known = await isKnown(jobId);
    } catch (error) {
      logger.warn('could not tell whether the local work of a job is orphaned; left alone', { jobId, error: (error as Error).message });
      continue;
    }
    if (known) continue;
    const workDir = join(settings.workRoot, jobId);
    const orphan: OrphanedJob = { jobId, workDir, processes: await jobProcesses(jobId, workDir) };
    try {
      await removeWorkOf(jobId, workDir);
      logger.warn('ended the processes and removed the work directory of a job the store does not know', { ...orphan });
    } catch (error) {
      orphan.error = (error as Error).message;
      logger.error('could not remove the local work of a job the store does not know', { ...orphan });
    }
    orphans.push(orphan);
  }
  if (ids.length > 0) logger.info('local work of unknown jobs swept', { workRoot: settings.workRoot, jobs: ids.length, orphaned: orphans.length });
  return orphans;
}
