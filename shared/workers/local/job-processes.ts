/**
 * Finds and ends every process of a job. Processes are recognised by what they cannot shed
 * easily: the job marker in their environment (`IMS_LOCAL_JOB=<id>`, set on every task and,
 * through sshd's SetEnv, on every user session), the work directory in their command line
 * (sshd overwrites its environment with its process title, but keeps `-f <work dir>/...`), a
 * root or working directory inside the work directory (chrooted builds), or membership of a
 * mount namespace that one of those created (sshd's per-connection processes and jailed
 * shells). The parent chain is useless here: sshd's sessions outlive their parent when it is
 * killed.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { processAlive } from './background-task.js';

export const JOB_MARKER = 'IMS_LOCAL_JOB';

interface ProcessInfo {
  pid: number;
  marked: boolean;
  inWorkDir: boolean;
  mountNs?: string;
}

async function inspect(pid: number, jobId: string, workDir: string): Promise<ProcessInfo | undefined> {
  const base = `/proc/${pid}`;
  try {
    const environ = await readFile(`${base}/environ`, 'latin1').catch(() => '');
    const cmdline = await readFile(`${base}/cmdline`, 'latin1').catch(() => '');
    const marked = environ.split('\0').includes(`${JOB_MARKER}=${jobId}`) || cmdline.replaceAll('\0', ' ').includes(`${workDir}/`);
    const inside = (path: string | undefined) => path !== undefined && (path === workDir || path.startsWith(`${workDir}/`));
    const root = await readlink(`${base}/root`).catch(() => undefined);
    const cwd = await readlink(`${base}/cwd`).catch(() => undefined);
    const mountNs = await readlink(`${base}/ns/mnt`).catch(() => undefined);
    return { pid, marked, inWorkDir: inside(root) || inside(cwd), mountNs };
  } catch {
    return undefined;
  }
}

/** The pids of the job's processes, this process excluded. */
export async function jobProcesses(jobId: string, workDir: string): Promise<number[]> {
  const own = await readlink('/proc/self/ns/mnt').catch(() => undefined);
  const pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number).filter((p) => p !== process.pid);
  const infos = (await Promise.all(pids.map((pid) => inspect(pid, jobId, workDir)))).filter((i): i is ProcessInfo => i !== undefined);
  const jobNamespaces = new Set(infos.filter((i) => i.marked && i.mountNs && i.mountNs !== own).map((i) => i.mountNs));
  return infos.filter((i) => i.marked || i.inWorkDir || (i.mountNs !== undefined && jobNamespaces.has(i.mountNs))).map((i) => i.pid);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * SIGTERM to every process of the job, SIGKILL to those still there after `graceMs`. Returns
 * the pids that survived even that (normally none).
 */
export async function killJobProcesses(jobId: string, workDir: string, graceMs = 5000): Promise<number[]> {
  let pids = await jobProcesses(jobId, workDir);
  if (pids.length === 0) return [];
  pids.forEach((pid) => signal(pid, 'SIGTERM'));
  for (const deadline = Date.now() + graceMs; Date.now() < deadline; await sleep(100)) {
    pids = await jobProcesses(jobId, workDir);
    if (pids.length === 0) return [];
  }
  // New ones may have appeared meanwhile (a task forking): the second sweep takes them too.
  pids.forEach((pid) => signal(pid, 'SIGKILL'));
  for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(100)) {
    const alive = [];
    for (const pid of await jobProcesses(jobId, workDir)) if (await processAlive(pid)) alive.push(pid);
    if (alive.length === 0) return [];
    alive.forEach((pid) => signal(pid, 'SIGKILL'));
  }
  return jobProcesses(jobId, workDir);
}
