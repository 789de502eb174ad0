/**
 * The one table of what this host must have installed: every program (or file) that the local
 * worker's jobs, the test suites and the CI passes use, the Debian package that provides it, and
 * who needs it. scripts/host-setup.mjs installs from it (npm test, npm start and .ci/run call
 * it), the local worker names the package when a job lacks a tool, and `npm start` reports from
 * it which job kinds this host can run. Plain JavaScript, so the setup script runs before any
 * build; host-tools.d.mts gives its types.
 */
import { accessSync, constants } from 'node:fs';
import { basename, delimiter, join } from 'node:path';

/** Who needs a host tool. */
export const USES = {
  customize: 'customize jobs on the local worker',
  create: 'create jobs on the local worker',
  test: 'npm test',
  'test:build': 'npm run test:build',
  ci: 'the CI passes on DynamoDB Local and radosgw (.ci/run)',
};

const LOCAL = ['customize', 'create'];
const SHELL = ['customize', 'create']; // create: the debug shell after a failed build (enable_debug)
const TESTS = ['test', 'test:build'];

/**
 * A tool is found by its name on the search path (which holds the Debian directories), so one
 * installed elsewhere also does; with `exact` only `path` counts (the tests, the remote-node probe
 * and sshd name those paths literally). `file` marks data that must be readable, not executable.
 */
export const HOST_TOOLS = [
  { tool: 'curl', path: '/usr/bin/curl', package: 'curl', for: [...LOCAL, ...TESTS, 'ci'], why: 'downloads the image or recipe of a job' },
  { tool: 'md5sum', path: '/usr/bin/md5sum', package: 'coreutils', for: [...LOCAL, ...TESTS], why: 'checks the MD5 of a downloaded image or recipe' },
  { tool: 'tar', path: '/usr/bin/tar', package: 'tar', for: [...LOCAL, ...TESTS], why: 'unpacks recipe archives' },
  { tool: 'unsquashfs', path: '/usr/bin/unsquashfs', package: 'squashfs-tools', for: [...LOCAL, ...TESTS], why: 'unpacks the rootfs of the image a customize job starts from' },
  { tool: 'mksquashfs', path: '/usr/bin/mksquashfs', package: 'squashfs-tools', for: [...LOCAL, ...TESTS], why: 'squashes the image root into the rootfs a job registers' },
  { tool: 'sshd', path: '/usr/sbin/sshd', package: 'openssh-server', for: [...SHELL, ...TESTS], why: "serves a job's SSH shell, and plays the remote build node in tests" },
  { tool: 'ssh-keygen', path: '/usr/bin/ssh-keygen', package: 'openssh-client', for: [...SHELL, ...TESTS], why: "makes the host keys of a job's sshd" },
  { tool: 'ssh', path: '/usr/bin/ssh', package: 'openssh-client', for: TESTS, why: "tests log in to jobs' shells with it" },
  { tool: 'sftp-server', path: '/usr/lib/openssh/sftp-server', package: 'openssh-sftp-server', exact: true, for: [...SHELL, ...TESTS], why: "serves sftp and scp in a job's shell" },
  { tool: 'unshare', path: '/usr/bin/unshare', package: 'util-linux', for: [...LOCAL, ...TESTS, 'ci'], why: 'gives kiwi and sshd private mounts (and the CI passes a private network)' },
  { tool: 'flock', path: '/usr/bin/flock', package: 'util-linux', for: ['create', ...TESTS], why: 'runs one kiwi build at a time on this host' },
  { tool: 'mount', path: '/usr/bin/mount', package: 'mount', for: [...SHELL, ...TESTS], why: "mounts the image into a job's shell" },
  { tool: 'umount', path: '/usr/bin/umount', package: 'mount', for: [...LOCAL, ...TESTS], why: "removes a finished job's mounts" },
  { tool: 'kiwi-ng', path: '/usr/bin/kiwi-ng', package: 'kiwi', for: ['create', ...TESTS], why: 'builds the image root of a create job' },
  { tool: 'gpg', path: '/usr/bin/gpg', package: 'kiwi-systemdeps-core', for: ['create', ...TESTS], why: "kiwi imports the recipe's signing keys with it" },
  { tool: 'rsync', path: '/usr/bin/rsync', package: 'kiwi-systemdeps-core', for: ['create', ...TESTS], why: 'kiwi copies trees with it' },
  { tool: 'getfattr', path: '/usr/bin/getfattr', package: 'attr', for: ['customize', ...TESTS], why: "finds the directories a customize shell replaced (overlay's opaque directories) for the change report" },
  { tool: 'dpkg-query', path: '/usr/bin/dpkg-query', package: 'dpkg', for: ['create', ...TESTS], why: "lists the packages of a Debian image root for the image record" },
  { tool: 'busybox', path: '/bin/busybox', package: 'busybox-static', exact: true, for: TESTS, why: 'the shell and tools of the tiny images the tests build' },
  { tool: 'podman', path: '/usr/bin/podman', package: 'podman', exact: true, for: TESTS, why: 'runs the job containers on the remote build node of the tests, which is this host' },
  { tool: 'runc', path: '/usr/sbin/runc', package: 'runc', exact: true, for: TESTS, why: "podman's runtime in the tests, which do not use crun" },
  { tool: 'debootstrap', path: '/usr/sbin/debootstrap', package: 'debootstrap', for: ['test:build'], why: "makes the remote node's builder image from the Debian mirror" },
  { tool: 'debian-archive-keyring', path: '/usr/share/keyrings/debian-archive-keyring.gpg', package: 'debian-archive-keyring', exact: true, file: true, for: ['test:build'], why: 'debootstrap checks the mirror with it' },
  { tool: 'java', path: '/usr/bin/java', package: 'openjdk-17-jre-headless', for: ['ci'], why: 'runs DynamoDB Local' },
  { tool: 'ip', path: '/usr/bin/ip', package: 'iproute2', for: ['ci'], why: 'brings up loopback in the private network namespace' },
  { tool: 'ceph-mon', path: '/usr/bin/ceph-mon', package: 'ceph-mon', for: ['ci'], why: 'the monitor of the one-node Ceph behind radosgw' },
  { tool: 'ceph-osd', path: '/usr/bin/ceph-osd', package: 'ceph-osd', for: ['ci'], why: 'the storage daemon of the one-node Ceph behind radosgw' },
  { tool: 'ceph', path: '/usr/bin/ceph', package: 'ceph-common', for: ['ci'], why: 'configures the one-node Ceph behind radosgw' },
  { tool: 'radosgw', path: '/usr/bin/radosgw', package: 'radosgw', for: ['ci'], why: 'the S3 gateway whose bucket notifications the radosgw tests receive' },
];

/** sbin directories are searched too: a service or a sudo started without them on PATH still finds sshd. */
export function searchPath(env = process.env) {
  return [...new Set([...(env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])]
    .filter(Boolean)
    .join(delimiter);
}

function accessible(path, file) {
  try {
    accessSync(path, file ? constants.R_OK : constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The entry of a tool name or of a path in the table; throws for anything not in it, so a new need is added here. */
export function hostTool(nameOrPath) {
  const entry = HOST_TOOLS.find((t) => t.tool === nameOrPath || t.path === nameOrPath);
  if (!entry) throw new Error(`${nameOrPath} is not in the table of host tools (shared/host-tools.mjs)`);
  return entry;
}

/** Where the tool is on this host, or undefined. */
export function findHostTool(entry, path = searchPath(), isThere = accessible) {
  if (entry.exact) return isThere(entry.path, entry.file) ? entry.path : undefined;
  const name = basename(entry.path);
  return path.split(delimiter).filter(Boolean).map((dir) => join(dir, name)).find((p) => isThere(p, entry.file));
}

/** The entries needed by any of `uses`, in table order. */
export function toolsFor(uses) {
  for (const use of uses) if (!(use in USES)) throw new Error(`unknown use '${use}' (one of: ${Object.keys(USES).join(', ')})`);
  return HOST_TOOLS.filter((t) => t.for.some((use) => uses.includes(use)));
}

/** The entries of `uses` that this host lacks. */
export function missingHostTools(uses, path = searchPath(), isThere = accessible) {
  return toolsFor(uses).filter((t) => !findHostTool(t, path, isThere));
}

/** The Debian packages of the entries, each once, in table order. */
export function packagesOf(entries) {
  return [...new Set(entries.map((t) => t.package))];
}

/** The command that installs the packages, as a user should type it. */
export function aptGetInstallLine(packages) {
  return `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
}

/**
 * What the setup script does for `uses` on this host: nothing (all present), install (root on
 * Debian), or report (anywhere else, or when asked only to check), with one line per missing
 * package saying what it provides and why, and the apt-get line that installs them all.
 */
export function setupPlan(uses, { isRoot, isDebian, check = false, path = searchPath(), isThere = accessible }) {
  const missing = missingHostTools(uses, path, isThere);
  const packages = packagesOf(missing);
  const lines = packages.map((pkg) => {
    const tools = missing.filter((t) => t.package === pkg);
    const needers = [...new Set(tools.flatMap((t) => t.for.filter((u) => uses.includes(u))))].map((u) => USES[u]);
    return `${pkg}: ${tools.map((t) => `${t.tool} (${t.why})`).join('; ')}; for ${needers.join(', ')}`;
  });
  const command = aptGetInstallLine(packages);
  if (missing.length === 0) return { action: 'nothing', missing, packages, lines, command };
  if (check) return { action: 'report', why: 'not installing (--check); to install, as root', missing, packages, lines, command };
  if (!isDebian) return { action: 'report', why: 'this host is not Debian: install the equivalents of these Debian packages', missing, packages, lines, command };
  if (!isRoot) return { action: 'report', why: 'not root: as root, run', missing, packages, lines, command };
  return { action: 'install', missing, packages, lines, command };
}
