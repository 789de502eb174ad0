#!/bin/sh
# ssh: the job's own sshd, in a private mount namespace where the job's work directory is
# /mnt/image (as in the original job pod, so `touch /mnt/image/complete` works) and, for a jail,
# /dev/pts is inside the image root (for tty). The work directory comes with what is mounted in
# it (recursive bind): a customize job's image root is an overlay mounted on the host, which the
# namespace's copy shows. The namespace's own mounts vanish with it: nothing more is mounted on the
# host, and nothing is left when the job's processes end.
# Environment: WORK, CONFIG, JAIL_ROOT (empty: no jail).
set -eu
mkdir -p /run/sshd
exec unshare --mount --propagation private /bin/sh -eu -c '
  if [ ! -d /mnt/image ]; then
    mount -t tmpfs -o mode=755,size=1m ims-job /mnt
    mkdir /mnt/image
  fi
  mount --rbind "$WORK" /mnt/image
  if [ -n "$JAIL_ROOT" ] && [ -d "$JAIL_ROOT/dev/pts" ]; then
    mount --bind /dev/pts "$JAIL_ROOT/dev/pts"
  fi
  exec /usr/sbin/sshd -D -e -f "$CONFIG"
'
