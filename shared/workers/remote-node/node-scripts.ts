/**
 * What runs inside a job's container on a remote build node, and the per-job image it runs in.
 * Both containers get the job's directory as /mnt/image (as the original's remote containers do)
 * and talk to the worker through marker files there, so the worker needs nothing but SSH to
 * follow a job: it reads the markers and the container's state on every poll.
 *
 *   out/rootfs.sqsh, out/kernel, out/initrd, out/parameters   results, fetched by `package`
 *   out/packages                                              create: the image's package list
 *   build_succeeded | build_failed (reason inside)            create: the build's outcome
 *   ready                                                     customize: sshd is listening
 *   complete | failed                                         customize: the user's verdict
 *   remote_exiting | remote_error (reason inside)             customize: squashed, or why not
 *
 * The scripts are POSIX sh (busybox is enough) and need, besides the images' tools, only what
 * the original's images have: kiwi-ng and mksquashfs (builder; dpkg-query for the package list of
 * a Debian root); sshd, ssh-keygen, unsquashfs and mksquashfs (sshd image).
 */
import { KEY_ONLY_ROOT_LOGIN } from '../job-sshd.js';

/** Finds the boot files in $ROOT/boot as package_and_upload does, plus Debian's versioned names; copies them to $OUT. */
const COPY_BOOT_FILES = `
newest() { found=; for f in "$@"; do [ -e "$f" ] && found=$f; done; [ -n "$found" ] && echo "$found"; }
copy_boot_files() {
  kernel=$ROOT/boot/$KERNEL_FILENAME
  [ -e "$kernel" ] || kernel=$(newest "$ROOT/boot/$KERNEL_FILENAME"-*) || fail "no kernel in the image: /boot/$KERNEL_FILENAME (or $KERNEL_FILENAME-<version>) not found"
  initrd=$ROOT/boot/$INITRD_FILENAME
  [ -e "$initrd" ] || initrd=$(newest "$ROOT/boot/$INITRD_FILENAME"-* "$ROOT"/boot/initrd.img-*) || fail "no initrd in the image: /boot/$INITRD_FILENAME (or $INITRD_FILENAME-<version>, initrd.img-<version>) not found"
  mkdir -p "$OUT"
  cp -L "$kernel" "$OUT/kernel" && cp -L "$initrd" "$OUT/initrd" && chmod 644 "$OUT/kernel" "$OUT/initrd" || fail "copying the kernel and initrd out of the image failed"
  if [ -e "$ROOT/boot/$KERNEL_PARAMETERS_FILENAME" ]; then cp -L "$ROOT/boot/$KERNEL_PARAMETERS_FILENAME" "$OUT/parameters" || fail "copying the kernel parameters failed"; fi
}
# kiwi's excludes: its description (/image), its profile files, and the contents of /run and /tmp
# (where a jailed shell leaves its signal files).
squash() {
  rm -f "$OUT/rootfs.sqsh"
  # shellcheck disable=SC2086
  mksquashfs "$ROOT" "$OUT/rootfs.sqsh" -noappend -no-progress $SQUASHFS_OPTIONS -wildcards -e image .profile .kconfig 'run/*' 'tmp/*' .buildenv var/cache/kiwi >"$M/mksquashfs.log" 2>&1 || fail "mksquashfs exited with status $? ($(tail -n 2 "$M/mksquashfs.log" | tr '\\n' ' '))"
}
`;

/** create: kiwi-ng prepares the image root from the recipe; the root is squashed here, on the node, and only the results travel. */
export const BUILD_SCRIPT = `#!/bin/sh
set -u
M=/mnt/image
ROOT=$M/build/image-root
OUT=$M/out
fail() { echo "$1" > "$M/build_failed"; exit 0; }
${COPY_BOOT_FILES}
rm -rf "$M/build" "$OUT" "$M/build_succeeded" "$M/build_failed"
mkdir -p "$M/build" "$OUT"
export GNUPGHOME=$M/build/gnupg
mkdir -m 700 -p "$GNUPGHOME"
debug=
[ "\${ENABLE_DEBUG:-false}" = true ] && debug=--debug
kiwi-ng $debug --logfile "$M/kiwi.log" system prepare --description "$M/recipe" --root "$ROOT" >"$M/kiwi.out" 2>&1 || fail "kiwi-ng system prepare exited with status $? ($(tail -n 3 "$M/kiwi.out" | tr '\\n' ' '))"
# The package list the local worker registers too (what kiwi system build writes as <image>.packages):
# name|epoch|version|release|arch|disturl|license
if [ -f "$ROOT/var/lib/dpkg/status" ]; then
  dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f '\${Package}|None|\${Version}|None|\${Architecture}|None|None\\n' >"$M/build/packages" || fail "dpkg-query could not list the image's packages"
elif [ -x "$ROOT/usr/bin/rpm" ]; then
  chroot "$ROOT" rpm -qa --qf '%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}|%{DISTURL}|%{LICENSE}\\n' >"$M/build/packages" || fail "rpm could not list the image's packages"
fi
if [ -f "$M/build/packages" ]; then sort "$M/build/packages" >"$OUT/packages" || fail "sorting the package list failed"; fi
copy_boot_files
squash
rm -rf "$ROOT"
touch "$M/build_succeeded"
`;

/**
 * customize: serve SSH in the image root until the user says complete or failed, then squash it.
 * The root is normally the node's copy-on-write view of the image (customize-view.ts), mounted
 * before the container starts; only where the node could not mount it is it unsquashed here.
 * SIGTERM (podman stop) records why the job cannot go on; a killed container leaves no marker,
 * which the worker notices from the container's state.
 */
export const CUSTOMIZE_SCRIPT = `#!/bin/sh
set -u
M=/mnt/image
ROOT=$M/image-root
OUT=$M/out
SSHD=
fail() { [ -n "$SSHD" ] && kill "$SSHD" 2>/dev/null; echo "$1" > "$M/remote_error"; exit 1; }
${COPY_BOOT_FILES}
trap 'fail "the job container was stopped"' TERM INT
if [ ! -d "$ROOT" ]; then
  unsquashfs -no-progress -d "$ROOT" "$M/image.sqsh" >"$M/unsquashfs.log" 2>&1 || fail "unsquashfs exited with status $? ($(tail -n 2 "$M/unsquashfs.log" | tr '\\n' ' '))"
  rm -f "$M/image.sqsh"
fi
# sshd chroots a jailed shell only into a root-owned directory that only root may write.
chown root:root "$ROOT" && chmod 755 "$ROOT"
signals=$M
if [ "$SSH_JAIL" = true ]; then signals=$ROOT/tmp; mkdir -p "$signals"; fi
rm -f "$signals/complete" "$signals/failed"
[ -e /etc/ims/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ims/ssh_host_ed25519_key || fail "ssh-keygen failed"
mkdir -p /run/sshd /var/empty
/usr/sbin/sshd -D -e -f /etc/ims/sshd_config -p "$SSH_PORT" 2>>"$M/sshd.log" &
SSHD=$!
sleep 1
kill -0 "$SSHD" 2>/dev/null || { SSHD=; fail "sshd did not start on port $SSH_PORT: $(tail -n 2 "$M/sshd.log" | tr '\\n' ' ')"; }
touch "$M/ready"
while :; do
  [ -e "$signals/complete" ] && break
  [ -e "$signals/failed" ] && fail "the user marked the customization as failed"
  kill -0 "$SSHD" 2>/dev/null || { SSHD=; fail "sshd exited: $(tail -n 2 "$M/sshd.log" | tr '\\n' ' ')"; }
  sleep 1
done
# As the original: the shell ends with the user's verdict (open sessions close).
kill "$SSHD" 2>/dev/null
SSHD=
rm -f "$signals/complete"
copy_boot_files
squash
touch "$M/remote_exiting"
`;

/** The per-job image: FROM an image already on the node (never pulled), plus the job's script and files. */
export function containerfile(base: string, files: string[], script: string): string {
  return [`FROM ${base}`, `COPY ${files.join(' ')} /etc/ims/`, `ENTRYPOINT ["/bin/sh", "/etc/ims/${script}"]`, ''].join('\n');
}

export interface SshdConfigInput {
  listen: string;
  jail: boolean;
  env: Record<string, string>;
}

/** The job shell's sshd: root by key only, SFTP built in, the job's variables on every session. */
export function sshdConfig(input: SshdConfigInput): string {
  const lines = [
    `ListenAddress ${input.listen}`,
    'HostKey /etc/ims/ssh_host_ed25519_key',
    'AuthorizedKeysFile /etc/ims/authorized_keys',
    'StrictModes no',
    ...KEY_ONLY_ROOT_LOGIN,
    'Subsystem sftp internal-sftp',
    // SetEnv must come before any Match block (CASMTRIAGE-6368).
    `SetEnv ${Object.entries(input.env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  ];
  if (input.jail) lines.push('Match User root', '  ChrootDirectory /mnt/image/image-root');
  return `${lines.join('\n')}\n`;
}
