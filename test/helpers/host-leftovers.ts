/**
 * What a job may have left on this host, looked up independently of the worker's own process
 * sweep: any process whose command line or environment names the job, the job's work
 * directory, any mount (in this namespace: `findmnt`) and any loop device (`losetup -a`) whose
 * path names the job.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Leftovers {
  processes: string[];
  workDir: boolean;
  mounts: string[];
  loops: string[];
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
  const naming = (text: string) => text.split('\n').filter((line) => line.includes(jobId));
  const mounts = naming(execFileSync('findmnt', ['--raw', '--noheadings', '--output', 'TARGET,SOURCE,FSTYPE'], { encoding: 'utf8' }));
  const loops = naming(execFileSync('losetup', ['--all'], { encoding: 'utf8' }));
  return { processes, workDir: existsSync(join(workRoot, jobId)), mounts, loops };
}

export const NOTHING_LEFT: Leftovers = { processes: [], workDir: false, mounts: [], loops: [] };
