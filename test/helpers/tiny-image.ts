/**
 * A tiny bootable-looking image for jobs that really run: busybox-static as /bin/sh and every
 * applet, small files as /boot/vmlinuz, /boot/initrd and /boot/kernel-parameters, squashed
 * with mksquashfs. Tests that need it fail (never skip) when the host lacks the tools.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findTool, debianPackageOf, type Tool } from '#shared/workers/local/host-tools.js';
import { hostTool } from '../../shared/host-tools.mjs';

const BUSYBOX = '/bin/busybox';

/**
 * Throws, naming the Debian packages to install, when any of the tools is missing. Every
 * requirement must be in the table of host tools that `npm test` installs from, with the same
 * package, so a test cannot need what the setup does not install.
 */
export function requireHostTools(tools: readonly Tool[], extra: { path: string; pkg: string }[] = []): void {
  const missing = tools.filter((t) => !findTool(t)).map((t) => `${t} (Debian package ${debianPackageOf(t)})`);
  for (const { path, pkg } of extra) {
    const listed = hostTool(path).package;
    if (listed !== pkg) throw new Error(`${path} is provided by ${pkg}, but shared/host-tools.mjs says ${listed}`);
    try {
      readFileSync(path);
    } catch {
      missing.push(`${path} (Debian package ${pkg})`);
    }
  }
  if (missing.length > 0) {
    throw new Error(`this test runs real jobs on this host and needs: ${missing.join(', ')} (npm test installs them when run as root on Debian)`);
  }
}

export const BUSYBOX_REQUIREMENT = { path: BUSYBOX, pkg: 'busybox-static' };

export interface TinyImage {
  root: string;
  squashfs: string;
  kernel: string;
  initrd: string;
  parameters: string;
}

/** Builds the image tree in `dir`/root (`extend` may add to it) and squashes it to `dir`/rootfs.sqsh. */
export function buildTinyImage(dir: string, extend?: (root: string) => void): TinyImage {
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
  extend?.(root);
  const squashfs = join(dir, 'rootfs.sqsh');
  execFileSync('mksquashfs', [root, squashfs, '-noappend', '-no-progress', '-quiet', '-comp', 'zstd', '-all-root'], { stdio: 'ignore' });
  return { root, squashfs, kernel: join(root, 'boot', 'vmlinuz'), initrd: join(root, 'boot', 'initrd'), parameters: join(root, 'boot', 'kernel-parameters') };
}

/** Unsquashes `squashfs` into `dir` (which must not exist) and returns `dir`. */
export function unsquash(squashfs: string, dir: string): string {
  execFileSync('unsquashfs', ['-no-progress', '-quiet', '-dest', dir, squashfs], { stdio: 'ignore' });
  return dir;
}

export interface ImageApi {
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  putObject(bucket: string, key: string, body: Buffer, metadata?: Record<string, string>): Promise<void>;
}

const md5 = (path: string) => createHash('md5').update(readFileSync(path)).digest('hex');

/** Uploads rootfs, kernel, initrd (with md5sum metadata) and manifest.json under `prefix`, registers the image; returns its id. */
export async function registerTinyImage(api: ImageApi, image: TinyImage, prefix: string, name = 'tiny'): Promise<string> {
  const files = { rootfs: image.squashfs, kernel: image.kernel, initrd: image.initrd };
  for (const [key, path] of Object.entries(files)) await api.putObject('boot-images', `${prefix}/${key}`, readFileSync(path), { md5sum: md5(path) });
  const artifact = (key: keyof typeof files, type: string) => ({ link: { path: `s3://boot-images/${prefix}/${key}`, etag: '', type: 's3' }, md5: md5(files[key]), type });
  const manifest = {
    version: '1.0',
    created: '2024-01-02 03:04:05',
    artifacts: [
      artifact('rootfs', 'application/vnd.cray.image.rootfs.squashfs'),
      artifact('kernel', 'application/vnd.cray.image.kernel'),
      artifact('initrd', 'application/vnd.cray.image.initrd'),
    ],
  };
  await api.putObject('boot-images', `${prefix}/manifest.json`, Buffer.from(JSON.stringify(manifest)));
  const created = await api.request('POST', '/v3/images', { name, link: { path: `s3://boot-images/${prefix}/manifest.json`, type: 's3' }, metadata: { key: 'origin', value: 'test' } });
  if (created.status !== 201) throw new Error(`registering the tiny image answered ${created.status}`);
  return created.body.id as string;
}
