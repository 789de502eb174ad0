/**
 * The kernel, initrd and kernel parameters of an image root, found as the original's
 * package_and_upload does (`<root>/boot/<kernel_file_name>` etc.), plus what Debian roots have
 * instead of SUSE's unversioned names: `boot/vmlinuz-<version>` and `boot/initrd.img-<version>`
 * (the newest version wins). Symbolic links are followed inside the image root: an absolute
 * link in an image means the image's file, never the host's.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { dirname, join, normalize, relative, isAbsolute } from 'node:path';

/** The regular file `relPath` names inside `root`, following links within the root; undefined if none. */
export async function fileInRoot(root: string, relPath: string): Promise<string | undefined> {
  let path = join(root, relPath);
  for (let hops = 0; hops < 40; hops++) {
    const inside = relative(root, path);
    if (inside.startsWith('..') || isAbsolute(inside)) return undefined;
    const info = await lstat(path).catch(() => undefined);
    if (!info) return undefined;
    if (info.isFile()) return path;
    if (!info.isSymbolicLink()) return undefined;
    const target = await readlink(path);
    path = isAbsolute(target) ? join(root, normalize(target)) : join(dirname(path), target);
  }
  return undefined;
}

/** Newest first by version: `vmlinuz-6.1.0-50-amd64` before `vmlinuz-6.1.0-9-amd64`. */
function byVersionDescending(a: string, b: string): number {
  return b.localeCompare(a, 'en', { numeric: true });
}

async function versioned(root: string, prefixes: string[], version?: string): Promise<{ file: string; version: string } | undefined> {
  const entries = await readdir(join(root, 'boot')).catch(() => [] as string[]);
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
