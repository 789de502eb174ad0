/**
 * Mounts below a job's work directory in this (the host's) mount namespace, and the loop devices
 * backed by its files: a customize job's overlay and the loop-mounted rootfs under it, and what a
 * killed tool may have left (kiwi bind-mounts /proc, /dev and /sys into the root it builds). The
 * job's sshd keeps its own mounts in a private namespace, which vanish with its processes. The
 * work directory is removed only when none is left, so that a recursive delete never walks into
 * a bind-mounted /dev or /proc, or through an overlay into its layers.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { TOOL_PATH } from './host-tools.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescape(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

const below = (dir: string) => (path: string) => path === dir || path.startsWith(`${dir}/`);

/** Mount points below `dir`, in the order they were mounted (mountinfo's). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .filter(Boolean)
    .map((line) => unescape(line.split(' ')[4]))
    .filter(below(dir));
}

/** Loop devices whose backing file is below `dir`: the device (`/dev/loopN`) and the file. */
export async function loopDevicesUnder(dir: string): Promise<{ device: string; backing: string }[]> {
  const devices = (await readdir('/sys/block').catch(() => [] as string[])).filter((d) => /^loop\d+$/.test(d));
  const found: { device: string; backing: string }[] = [];
  for (const device of devices) {
    const backing = (await readFile(`/sys/block/${device}/loop/backing_file`, 'utf8').catch(() => '')).trim().replace(/ \(deleted\)$/, '');
    if (backing && below(dir)(backing)) found.push({ device: `/dev/${device}`, backing });
  }
  return found;
}

/**
 * Detaches every mount below `dir`, the last mounted first (an overlay before the squashfs under
 * it), then every loop device backed by a file there; returns what is still there. A mount that
 * is busy is detached lazily, and its loop device then frees itself when the last user goes
 * (autoclear, which `losetup -d` sets on a busy device).
 */
export async function unmountUnder(dir: string): Promise<string[]> {
  const env = { PATH: TOOL_PATH };
  for (const point of (await mountsUnder(dir)).reverse()) {
    await run('umount', [point], { env }).catch(() => run('umount', ['--lazy', point], { env }).catch(() => undefined));
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    const loops = await loopDevicesUnder(dir);
    if (loops.length === 0) break;
    for (const { device } of loops) await run('losetup', ['-d', device], { env }).catch(() => undefined);
    await sleep(50);
  }
  const loops = await loopDevicesUnder(dir);
  return [...(await mountsUnder(dir)), ...loops.map((l) => `${l.device} (loop device of ${l.backing})`)];
}
