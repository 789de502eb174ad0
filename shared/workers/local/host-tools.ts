/**
 * The host programs the local worker runs: a job that needs a missing one fails with a reason
 * that says what to install, instead of with a shell's "not found" deep in a log. Which package
 * provides each comes from the project's one table of host tools (../../host-tools.mjs), which
 * the setup script installs from.
 */
import { aptGetInstallLine, findHostTool, hostTool, missingHostTools, packagesOf, searchPath, type HostTool } from '../../host-tools.mjs';

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

/** The job kinds the local worker runs, as the table names them. */
export type LocalJobKind = 'customize' | 'create';

/** The PATH of the worker's processes; sbin directories included, so a service started without them still finds sshd. */
export const TOOL_PATH = searchPath();

export function findTool(tool: Tool, path = TOOL_PATH): string | undefined {
  return findHostTool(hostTool(tool), path);
}

export function debianPackageOf(tool: Tool): string {
  return hostTool(tool).package;
}

function describeMissing(missing: readonly HostTool[]): string {
  const packages = packagesOf(missing);
  return `${missing.map((t) => t.tool).join(', ')} ${missing.length === 1 ? 'is' : 'are'} not installed on this host: install the Debian package${packages.length === 1 ? '' : 's'} ${packages.join(' ')} (${aptGetInstallLine(packages)})`;
}

/** undefined when every tool is there, else a reason naming what is missing and the packages to install. */
export function missingTools(tools: readonly Tool[], path = TOOL_PATH): string | undefined {
  const missing = tools.map(hostTool).filter((t) => !findHostTool(t, path));
  return missing.length === 0 ? undefined : describeMissing(missing);
}

/** undefined when this host has every tool of the job kind, else why it cannot run it. */
export function missingForJobKind(kind: LocalJobKind, path = TOOL_PATH): string | undefined {
  const missing = missingHostTools([kind], path);
  return missing.length === 0 ? undefined : describeMissing(missing);
}
