/**
 * What a job may have left on this host, looked up independently of the worker's own process
 * sweep: any process whose command line or environment names the job, the job's work
 * directory, and any mount (in this namespace) whose path names the job.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Leftovers {
  processes: string[];
  workDir: boolean;
  mounts: string[];
}

function read(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return '';
  }
}

export function leftovers(jobId: string, workRoot: string): Leftovers {
  const processes: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    if (Number(pid) === process.pid) continue;
    const cmdline = read(`/proc/${pid}/cmdline`).replaceAll('\0', ' ').trim();
    if (cmdline.includes(jobId) || read(`/proc/${pid}/environ`).includes(jobId)) processes.push(`${pid} ${cmdline}`);
  }
  const mounts = read('/proc/self/mountinfo')
    .split('\n')
    .filter((line) => line.includes(jobId));
  return { processes, workDir: existsSync(join(workRoot, jobId)), mounts };
}

export const NOTHING_LEFT: Leftovers = { processes: [], workDir: false, mounts: [] };
