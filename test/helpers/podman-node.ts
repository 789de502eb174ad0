/**
 * podman for remote-node tests, set up as kiwi-podman.md §3 found it must be on these machines
 * (runc, explicit ulimits, no CNI bridge), with its own storage under the test's scratch dir so a
 * test sees exactly the images and containers it made. Nothing is ever pulled: the one base
 * image is made here from this host's own binaries and `podman import`ed.
 *
 * The base image serves as both the builder and the sshd image of the tests. Its `kiwi-ng` is
 * a STUB (a real kiwi run takes minutes and needs the Debian mirror, kiwi-podman.md §1): it
 * writes a tiny root (busybox, the recipe's config.xml, a versioned kernel and initrd) where
 * kiwi would prepare one, so the worker's real build script, squash and transfer all run.
 */
import { execFileSync, execSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { hostTool } from '../../shared/host-tools.mjs';

export const TEST_BASE_IMAGE = 'localhost/ims-test-base:1';

const BINARIES = ['/usr/sbin/sshd', '/usr/bin/ssh-keygen', '/usr/bin/mksquashfs', '/usr/bin/unsquashfs'];
const BUSYBOX = '/bin/busybox';

/** Throws, naming what to install (packages from the table `npm test` installs from), when this host cannot run the podman tests. */
export function requirePodman(): void {
  const missing = ['/usr/bin/podman', '/usr/sbin/runc', '/usr/sbin/sshd', '/usr/bin/mksquashfs', BUSYBOX].map(hostTool).filter((t) => !existsSync(t.path));
  if (missing.length > 0) {
    throw new Error(
      `remote-node tests run podman on this host and need: ${missing.map((t) => `${t.path} (Debian package ${t.package})`).join(', ')} (npm test installs them when run as root on Debian)`,
    );
  }
}

export interface PodmanSandbox {
  /** The shell prefix the worker gets as REMOTE_NODE_PODMAN. */
  prefix: string;
  /** Runs `podman <args>` (a shell string) in the sandbox; returns stdout. */
  run(args: string): string;
  /** Removes every container and image of the sandbox. */
  reset(): void;
}

export function podmanSandbox(dir: string): PodmanSandbox {
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'containers.conf');
  writeFileSync(
    conf,
    [
      '[containers]',
      'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]',
      'netns = "none"',
      '[engine]',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      '',
    ].join('\n'),
  );
  const prefix = `CONTAINERS_CONF=${conf} podman --root ${join(dir, 'storage')} --runroot ${join(dir, 'run')}`;
  const run = (args: string) => execSync(`${prefix} ${args}`, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return {
    prefix,
    run,
    reset() {
      run('rm --all --force --time 0');
      run('rmi --all --force');
    },
  };
}

/** What a job may have left on a node: its directory, container and image there, its results on this host. */
export interface NodeLeftovers {
  dir: boolean;
  container: boolean;
  image: boolean;
  local: boolean;
  /** A mount below the job's directory (findmnt), or a loop device backed by a file there (losetup). */
  mounts: boolean;
}

export const NOTHING_ON_NODE: NodeLeftovers = { dir: false, container: false, image: false, local: false, mounts: false };

/**
 * Looks for a job's leftovers with podman and the file system, not with the worker: the node's
 * REMOTE_NODE_WORK_DIR (`workDir`) and this host's REMOTE_NODE_LOCAL_DIR (`localDir`).
 */
export function leftOnNode(sandbox: PodmanSandbox, dirs: { workDir: string; localDir: string }, id: string): NodeLeftovers {
  const exists = (what: string) => {
    try {
      sandbox.run(what);
      return true;
    } catch {
      return false;
    }
  };
  return {
    dir: existsSync(join(dirs.workDir, `ims_${id}`)),
    container: exists(`container exists ims-${id}`),
    image: exists(`image exists localhost/ims-job-${id}:latest`),
    local: existsSync(join(dirs.localDir, id)),
    mounts: [execSync('findmnt -rn -o TARGET', { encoding: 'utf8' }), execSync('losetup -a', { encoding: 'utf8' })].some((out) => out.includes(`ims_${id}`)),
  };
}

/** Loaded with dlopen, so ldd does not list it: glibc needs it for pthread_exit (mksquashfs's threads). */
const DLOPENED = ['libgcc_s.so.1'];

function libraryPath(name: string): string {
  const path = new RegExp(`\\s${name.replace(/\./g, '\\.')} \\(.*\\) => (\\S+)`).exec(execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }))?.[1];
  if (!path) throw new Error(`${name} not found by ldconfig -p`);
  return path;
}

/** Copies a binary and the shared libraries ldd lists for it into `root`, at the same paths. */
function copyWithLibraries(root: string, binary: string): void {
  const targets = [binary];
  for (const line of execFileSync('ldd', [binary], { encoding: 'utf8' }).split('\n')) {
    const path = /(\/\S+)\s+\(0x/.exec(line)?.[1];
    if (path) targets.push(path);
  }
  for (const path of targets) {
    mkdirSync(join(root, dirname(path)), { recursive: true });
    copyFileSync(path, join(root, path));
    chmodSync(join(root, path), 0o755);
  }
}

/** Test stand-in for kiwi-ng (see the file comment): `system prepare --description D --root R`; the local worker tests put it on PATH. */
export const STUB_KIWI = `#!/bin/sh
# STUB kiwi-ng for tests: no packages, no repositories; a tiny root in a second.
root=; desc=; log=/dev/null
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$2; shift ;;
    --description) desc=$2; shift ;;
    --logfile) log=$2; shift ;;
  esac
  shift
done
echo "stub kiwi-ng: prepare $desc into $root" > "$log"
if grep -q FAIL_BUILD "$desc/config.xml"; then echo "KiwiError: the test recipe asks the build to fail" | tee -a "$log" >&2; exit 1; fi
mkdir -p "$root/bin" "$root/boot" "$root/etc" "$root/tmp" "$root/image"
cp /bin/busybox "$root/bin/busybox" && ln -s busybox "$root/bin/sh"
cp "$desc/config.xml" "$root/etc/recipe-config.xml"
cp "$desc/config.xml" "$root/image/config.xml"
echo "kernel 6.1.0-1" > "$root/boot/vmlinuz-6.1.0-1-test"
echo "kernel 6.1.0-2" > "$root/boot/vmlinuz-6.1.0-2-test"
echo "initrd 6.1.0-2" > "$root/boot/initrd.img-6.1.0-2-test"
echo "stub kiwi-ng: done" >> "$log"
`;

/** Builds the base image's root from this host's binaries and imports it into the sandbox. */
export function importTestBaseImage(sandbox: PodmanSandbox, dir: string): void {
  const root = join(dir, 'base-root');
  for (const sub of ['bin', 'etc', 'root', 'tmp', 'run/sshd', 'var/empty', 'mnt', 'usr/bin', 'usr/sbin']) mkdirSync(join(root, sub), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  for (const applet of execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n')) {
    if (applet && applet !== 'busybox') symlinkSync('busybox', join(root, 'bin', applet));
  }
  for (const binary of BINARIES) copyWithLibraries(root, binary);
  for (const name of DLOPENED) copyWithLibraries(root, libraryPath(name));
  writeFileSync(join(root, 'usr', 'bin', 'kiwi-ng'), STUB_KIWI, { mode: 0o755 });
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\n');
  writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(root, 'etc', 'shadow'), 'root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\n', { mode: 0o600 });
  execSync(`tar -C ${root} -c . | ${sandbox.prefix} import - ${TEST_BASE_IMAGE}`, { stdio: 'ignore' });
}
