/**
 * A tiny bootable-looking image for jobs that really run: busybox-static as /bin/sh and every
 * applet, small files as /boot/vmlinuz, /boot/initrd and /boot/kernel-parameters, squashed
 * with mksquashfs. Tests that need it fail (never skip) when the host lacks the tools.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findTool, debianPackageOf, type Tool } from '#shared/workers/local/host-tools.js';

const BUSYBOX = '/bin/busybox';

/** Throws, naming the Debian packages to install, when any of the tools is missing. */
export function requireHostTools(tools: readonly Tool[], extra: { path: string; pkg: string }[] = []): void {
  const missing = tools.filter((t) => !findTool(t)).map((t) => `${t} (Debian package ${debianPackageOf(t)})`);
  for (const { path, pkg } of extra) {
    try {
      readFileSync(path);
    } catch {
      missing.push(`${path} (Debian package ${pkg})`);
    }
  }
  if (missing.length > 0) throw new Error(`this test runs real jobs on this host and needs: ${missing.join(', ')}`);
}

export const BUSYBOX_REQUIREMENT = { path: BUSYBOX, pkg: 'busybox-static' };

export interface TinyImage {
  root: string;
  squashfs: string;
  kernel: string;
  initrd: string;
  parameters: string;
}

/** Builds the image tree in `dir`/root and squashes it to `dir`/rootfs.sqsh. */
export function buildTinyImage(dir: string): TinyImage {
  const root = join(dir, 'root');
  for (const sub of ['bin', 'boot', 'etc', 'root', 'tmp', 'dev/pts', 'proc']) mkdirSync(join(root, sub), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const applet of applets) symlinkSync('busybox', join(root, 'bin', applet));
  // sshd runs commands with root's login shell from the host's passwd (bash), inside a jail too.
  writeFileSync(join(root, 'bin', 'bash'), '#!/bin/sh\nexec /bin/sh "$@"\n', { mode: 0o755 });
  writeFileSync(join(root, 'etc', 'motd'), 'tiny image\n');
  writeFileSync(join(root, 'IMS_TINY_IMAGE'), 'marker\n');
  writeFileSync(join(root, 'boot', 'vmlinuz'), 'not really a kernel\n');
  writeFileSync(join(root, 'boot', 'initrd'), 'not really an initrd\n');
  writeFileSync(join(root, 'boot', 'kernel-parameters'), 'console=ttyS0 root=live:tiny\n');
  const squashfs = join(dir, 'rootfs.sqsh');
  execFileSync('mksquashfs', [root, squashfs, '-noappend', '-no-progress', '-quiet', '-comp', 'zstd', '-all-root'], { stdio: 'ignore' });
  return { root, squashfs, kernel: join(root, 'boot', 'vmlinuz'), initrd: join(root, 'boot', 'initrd'), parameters: join(root, 'boot', 'kernel-parameters') };
}

/** Unsquashes `squashfs` into `dir` (which must not exist) and returns `dir`. */
export function unsquash(squashfs: string, dir: string): string {
  execFileSync('unsquashfs', ['-no-progress', '-quiet', '-dest', dir, squashfs], { stdio: 'ignore' });
  return dir;
}
