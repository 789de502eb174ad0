#!/bin/sh
# package: squash the image root. kiwi's excludes: its description (/image), its profile files,
# and the contents of /run and /tmp (where a jailed shell leaves its signal files).
# Environment: ROOT, OUT, SQUASHFS_OPTIONS (word-split: the compression options).
# A customize job on an overlay also gets its change listing (LISTING_SCRIPT with SOURCE, UPPER,
# LISTING: shared/workers/change-report.ts), made beside mksquashfs at the lowest CPU priority;
# when it fails the image is still packaged, without a change report.
set -euf
rm -f "$OUT"
listing=
if [ -n "${LISTING:-}" ]; then
  rm -rf "$LISTING"
  nice -n 19 bash -c "$LISTING_SCRIPT" listing "$SOURCE" "$UPPER" "$LISTING.part" >"$LISTING.log" 2>&1 &
  listing=$!
fi
# shellcheck disable=SC2086
mksquashfs "$ROOT" "$OUT" -noappend -no-progress $SQUASHFS_OPTIONS -wildcards -e image .profile .kconfig 'run/*' 'tmp/*' .buildenv var/cache/kiwi
echo "squashed $ROOT into $OUT ($(stat -c %s "$OUT") bytes)"
if [ -n "$listing" ]; then
  if wait "$listing"; then
    mv "$LISTING.part" "$LISTING"
    echo "listed the changes of the overlay's upper layer"
  else
    echo "the change listing failed, the image gets no change report: $(tail -n 3 "$LISTING.log" | tr '\n' ' ')"
  fi
fi
