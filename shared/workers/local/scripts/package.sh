#!/bin/sh
# package: squash the image root. kiwi's excludes: its description (/image), its profile files,
# and the contents of /run and /tmp (where a jailed shell leaves its signal files).
# Environment: ROOT, OUT, SQUASHFS_OPTIONS (word-split: the compression options).
set -euf
rm -f "$OUT"
# shellcheck disable=SC2086
mksquashfs "$ROOT" "$OUT" -noappend -no-progress $SQUASHFS_OPTIONS -wildcards -e image .profile .kconfig 'run/*' 'tmp/*' .buildenv var/cache/kiwi
echo "squashed $ROOT into $OUT ($(stat -c %s "$OUT") bytes)"
