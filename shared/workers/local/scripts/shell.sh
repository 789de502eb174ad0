#!/bin/sh
# ForceCommand of a job's non-jailed shell: a root shell on the host whose working directory is
# the image root (IMS_SHELL_DIR, set by sshd's SetEnv); the job's work directory is /mnt/image.
# sftp and scp arrive here too (sshd puts the subsystem in SSH_ORIGINAL_COMMAND).
cd "${IMS_SHELL_DIR:-/mnt/image}" || exit 1
case "${SSH_ORIGINAL_COMMAND:-}" in
  "") exec "${SHELL:-/bin/sh}" -l ;;
  internal-sftp* | /usr/lib/openssh/sftp-server*) exec /usr/lib/openssh/sftp-server -d "$PWD" ;;
  *) exec "${SHELL:-/bin/sh}" -c "$SSH_ORIGINAL_COMMAND" ;;
esac
