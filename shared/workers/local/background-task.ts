/**
 * Long work (downloads, unsquashfs, kiwi, mksquashfs, sshd) runs as a detached process group
 * whose state lives in the job's `tasks/` directory, not in this process: `<name>.started`
 * (when it was launched), `<name>.pid` (pid and boot id, written by the process itself) and
 * `<name>.exit` (its exit status). A stage's poll only reads these files, so it is quick and
 * idempotent, and a restarted service finds running work still running, finished work
 * finished, and work that died with the host as `lost` (the boot id changed) instead of
 * waiting for it forever.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readIfPresent } from '../files.js';

export type TaskStatus =
  | { state: 'absent' }
  | { state: 'running'; pid?: number }
  | { state: 'exited'; code: number }
  /** Launched, but it ended without writing its exit status (killed, or the host restarted). */
  | { state: 'lost' };

export interface TaskSpec {
  name: string;
  /** The shell script to run (`/bin/sh script args...`). */
  script: string;
  args?: string[];
  /** The whole environment of the task: nothing of this process's environment leaks into it. */
  env: Record<string, string>;
  /** stdout and stderr are appended here. */
  log: string;
  cwd?: string;
}

/** How long a launched task may take to write its pid file before it counts as lost. */
const LAUNCH_GRACE_MS = 30_000;

// $1 pid file, $2 exit file, then the script and its arguments. The pid file carries the boot id,
// so a pid read after a reboot is never mistaken for the task; the exit file is written
// atomically (rename), so a poll never reads half of it.
const LAUNCHER = [
  'echo "$$ $(cat /proc/sys/kernel/random/boot_id)" > "$1.tmp" && mv "$1.tmp" "$1"',
  'exit_file=$2; shift 2',
  '/bin/sh "$@"; code=$?',
  'echo "$code" > "$exit_file.tmp" && mv "$exit_file.tmp" "$exit_file"',
].join('\n');

const file = (dir: string, name: string, suffix: string) => join(dir, `${name}.${suffix}`);


export async function bootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
}

/** True for a live process (zombies are dead: they only wait to be reaped). */
export async function processAlive(pid: number): Promise<boolean> {
  const stat = await readIfPresent(`/proc/${pid}/stat`).catch(() => undefined);
  if (!stat) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

export async function taskStatus(dir: string, name: string): Promise<TaskStatus> {
  const exit = await readIfPresent(file(dir, name, 'exit'));
  if (exit !== undefined) return { state: 'exited', code: Number.parseInt(exit.trim(), 10) };
  const pidText = await readIfPresent(file(dir, name, 'pid'));
  if (pidText !== undefined) {
    const [pidPart, boot] = pidText.trim().split(/\s+/);
    const pid = Number.parseInt(pidPart, 10);
    if (boot === (await bootId()) && (await processAlive(pid))) return { state: 'running', pid };
    // It may have finished between the two reads.
    const late = await readIfPresent(file(dir, name, 'exit'));
    return late !== undefined ? { state: 'exited', code: Number.parseInt(late.trim(), 10) } : { state: 'lost' };
  }
  const started = await readIfPresent(file(dir, name, 'started'));
  if (started === undefined) return { state: 'absent' };
  return Date.now() - Number(started) < LAUNCH_GRACE_MS ? { state: 'running' } : { state: 'lost' };
}

/** Launches the task detached (its own session and process group): it outlives this process. */
export async function startTask(dir: string, spec: TaskSpec): Promise<void> {
  await writeFile(file(dir, spec.name, 'started'), String(Date.now()));
  const log = openSync(spec.log, 'a', 0o600);
  try {
    const child = spawn('/bin/sh', ['-c', LAUNCHER, 'ims-task', file(dir, spec.name, 'pid'), file(dir, spec.name, 'exit'), spec.script, ...(spec.args ?? [])], {
      detached: true,
      stdio: ['ignore', log, log],
      env: spec.env,
      cwd: spec.cwd ?? dir,
    });
    child.on('error', () => undefined);
    child.unref();
  } finally {
    closeSync(log);
  }
}

/** Forgets a finished task so that it can be started again (e.g. sshd on another port). */
export async function clearTask(dir: string, name: string): Promise<void> {
  for (const suffix of ['exit', 'pid', 'started', 'exit.tmp', 'pid.tmp']) await rm(file(dir, name, suffix), { force: true });
}
