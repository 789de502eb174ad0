/**
 * The kernel, initrd and kernel parameters of an image root, found as the original's
 * package_and_upload does (`<root>/boot/<kernel_file_name>` etc.), plus what Debian roots have
 * instead of SUSE's unversioned names: `boot/vmlinuz-<version>` and `boot/initrd.img-<version>`
 * (the newest version wins). Symbolic links are followed inside the image root: an absolute
 * link in an image means the image's file, never the host's.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The path `relPath` names inside `root`, resolved as a chroot would: every component's links
 * are followed inside the root (an absolute link starts again at the root, `..` stops at it),
 * so no component can lead out of the image to the host's files. The answer contains no link;
 * undefined when nothing is there.
 */
export async function resolveInRoot(root: string, relPath: string): Promise<string | undefined> {
  const split = (path: string) => path.split('/').filter((p) => p && p !== '.');
  let pending = split(relPath);
  const resolved: string[] = [];
  for (let hops = 0; pending.length > 0; ) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const path = join(root, ...resolved, part);
    const info = await lstat(path).catch(() => undefined);
    if (!info) return undefined;
    if (info.isSymbolicLink()) {
      if (++hops > 40) return undefined;
      const target = await readlink(path);
      if (target.startsWith('/')) resolved.length = 0;
      pending = [...split(target), ...pending];
      continue;
    }
    if (pending.length > 0 && !info.isDirectory()) return undefined;
    resolved.push(part);
  }
  return join(root, ...resolved);
}

/** The regular file `relPath` names inside `root` (see resolveInRoot); undefined if none. */
export async function fileInRoot(root: string, relPath: string): Promise<string | undefined> {
  const path = await resolveInRoot(root, relPath);
  const info = path ? await lstat(path).catch(() => undefined) : undefined;
  return info?.isFile() ? path : undefined;
}

/** Newest first by version: `vmlinuz-6.1.0-50-amd64` before `vmlinuz-6.1.0-9-amd64`. */
function byVersionDescending(a: string, b: string): number {
  return b.localeCompare(a, 'en', { numeric: true });
}

async function versioned(root: string, prefixes: string[], version?: string): Promise<{ file: string; version: string } | undefined> {
  const boot = await resolveInRoot(root, 'boot');
  const entries = boot ? await readdir(boot).catch(() => [] as string[]) : [];
  for (const prefix of prefixes) {
    const names = entries.filter((n) => n.startsWith(`${prefix}-`) && !n.endsWith('.old')).sort(byVersionDescending);
    // With the kernel's version known, its own initrd comes first.
    if (version) names.sort((a, b) => Number(b === `${prefix}-${version}`) - Number(a === `${prefix}-${version}`));
    for (const name of names) {
      const file = await fileInRoot(root, join('boot', name));
      if (file) return { file, version: name.slice(prefix.length + 1) };
    }
  }
  return undefined;
}

export interface BootFiles {
  kernel?: string;
  initrd?: string;
  parameters?: string;
}

export async function findBootFiles(root: string, names: { kernel: string; initrd: string; parameters: string }): Promise<BootFiles> {
  const fixedKernel = await fileInRoot(root, join('boot', names.kernel));
  const kernel = fixedKernel ? { file: fixedKernel, version: undefined } : await versioned(root, [names.kernel]);
  const initrd = (await fileInRoot(root, join('boot', names.initrd))) ?? (await versioned(root, [names.initrd, 'initrd.img'], kernel?.version))?.file;
  const parameters = await fileInRoot(root, join('boot', names.parameters));
  return { kernel: kernel?.file, initrd, parameters };
}
