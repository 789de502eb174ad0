/**
 * Mounts below a job's work directory in this (the host's) mount namespace. The worker's own
 * mounts live in private namespaces and vanish with their processes; these are what a killed
 * tool may have left (kiwi bind-mounts /proc, /dev and /sys into the root it builds). The work
 * directory is removed only when none is left, so that a recursive delete never walks into a
 * bind-mounted /dev or /proc.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { TOOL_PATH } from './host-tools.js';

const run = promisify(execFile);

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescape(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .filter(Boolean)
    .map((line) => unescape(line.split(' ')[4]))
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/** Detaches every mount below `dir`, deepest first; returns those still there. */
export async function unmountUnder(dir: string): Promise<string[]> {
  const points = [...new Set(await mountsUnder(dir))].sort((a, b) => b.length - a.length);
  for (const point of points) {
    await run('umount', ['--lazy', point], { env: { PATH: TOOL_PATH } }).catch(() => undefined);
  }
  return mountsUnder(dir);
}
