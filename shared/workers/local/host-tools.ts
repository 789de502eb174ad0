/**
 * The host programs the local worker runs, and the Debian package that provides each: a job
 * that needs a missing one fails with a reason that says what to install, instead of with a
 * shell's "not found" deep in a log.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export type Tool =
  | 'curl'
  | 'tar'
  | 'md5sum'
  | 'unsquashfs'
  | 'mksquashfs'
  | 'sshd'
  | 'ssh-keygen'
  | 'sftp-server'
  | 'unshare'
  | 'mount'
  | 'umount'
  | 'flock'
  | 'kiwi-ng'
  | 'gpg'
  | 'rsync'
  | 'dpkg-query';

const PACKAGES: Record<Tool, string> = {
  curl: 'curl',
  tar: 'tar',
  md5sum: 'coreutils',
  unsquashfs: 'squashfs-tools',
  mksquashfs: 'squashfs-tools',
  sshd: 'openssh-server',
  'ssh-keygen': 'openssh-client',
  'sftp-server': 'openssh-sftp-server',
  unshare: 'util-linux',
  mount: 'mount',
  umount: 'mount',
  flock: 'util-linux',
  'kiwi-ng': 'kiwi',
  // kiwi imports signing keys with gpg and copies trees with rsync: both come with kiwi-systemdeps-core.
  gpg: 'kiwi-systemdeps-core',
  rsync: 'kiwi-systemdeps-core',
  'dpkg-query': 'dpkg',
};

/** Programs that are not on PATH where Debian installs them. */
const FIXED_PATHS: Partial<Record<Tool, string>> = { 'sftp-server': '/usr/lib/openssh/sftp-server' };

/** sbin directories are searched too: a service started without them on PATH still finds sshd. */
export const TOOL_PATH = [...new Set([...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])]
  .filter(Boolean)
  .join(delimiter);

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function findTool(tool: Tool, searchPath = TOOL_PATH): string | undefined {
  const fixed = FIXED_PATHS[tool];
  if (fixed) return executable(fixed) ? fixed : undefined;
  return searchPath.split(delimiter)
    .map((dir) => join(dir, tool))
    .find(executable);
}

export function debianPackageOf(tool: Tool): string {
  return PACKAGES[tool];
}

/** undefined when every tool is there, else a reason naming what is missing and the packages to install. */
export function missingTools(tools: readonly Tool[], searchPath = TOOL_PATH): string | undefined {
  const missing = tools.filter((t) => !findTool(t, searchPath));
  if (missing.length === 0) return undefined;
  const packages = [...new Set(missing.map(debianPackageOf))];
  return `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not installed on this host: install the Debian package${packages.length === 1 ? '' : 's'} ${packages.join(' ')} (apt-get install ${packages.join(' ')})`;
}
