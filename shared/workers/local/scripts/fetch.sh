#!/bin/sh
# prepare: download the job's artifact from its pre-signed URL, checking its MD5 as it streams
# (no second read), and make it usable.
#   KIND=image   the rootfs squashfs: mounted read-only (loop) as the lower layer of an overlay
#                whose merged view is TARGET (the image root); where the kernel refuses either
#                mount, or OVERLAY is off, unsquashed into TARGET instead. MODE_FILE says which.
#   KIND=recipe  the recipe archive, untarred into TARGET (any compression tar recognises)
# Environment: KIND, URL, MD5 (empty: not checked), DOWNLOAD (file), TARGET (directory);
# for images also OVERLAY (on/off), LOWER, UPPER, OVERLAY_WORK, MODE_FILE.
set -eu
if [ "$KIND" = image ]; then
  # A stage retried after a failed attempt: nothing of that attempt stays mounted.
  umount "$TARGET" 2>/dev/null || true
  umount "$LOWER" 2>/dev/null || true
fi
rm -rf "$TARGET" "$DOWNLOAD" "$DOWNLOAD.md5" "$DOWNLOAD.failed"
echo "downloading the $KIND"
# Transient failures are retried as the original did (20 attempts, 10 s apart); a refused URL is
# not. The bytes go to the file and through md5sum at once; a failure of either end is noted.
{ curl --fail --silent --show-error --location --retry 19 --retry-delay 10 --retry-connrefused "$URL" || echo "curl exit status $?" > "$DOWNLOAD.failed"; } |
  { tee "$DOWNLOAD" || echo "writing $DOWNLOAD failed" >> "$DOWNLOAD.failed"; } | md5sum > "$DOWNLOAD.md5"
if [ -s "$DOWNLOAD.failed" ]; then
  echo "the download failed: $(cat "$DOWNLOAD.failed")" >&2
  exit 2
fi
actual=$(cut -d ' ' -f 1 "$DOWNLOAD.md5")
rm -f "$DOWNLOAD.md5" "$DOWNLOAD.failed"
echo "downloaded $(stat -c %s "$DOWNLOAD") bytes"
if [ -n "$MD5" ]; then
  if [ "$actual" != "$MD5" ]; then
    echo "MD5 mismatch: the downloaded $KIND has MD5 $actual, expected $MD5" >&2
    exit 3
  fi
  echo "MD5 $actual verified"
fi

# The overlay: the squashfs read-only through a loop device (autoclear: unmounting it frees the
# device), the user's changes in UPPER. The merged root takes UPPER's owner and mode, which sshd
# needs root-owned and not group/other-writable to chroot into.
mount_overlay() {
  why=$(
    {
      mkdir -p "$LOWER" "$UPPER" "$OVERLAY_WORK" "$TARGET" &&
        mount -t squashfs -o loop,ro "$DOWNLOAD" "$LOWER" &&
        chown root:root "$UPPER" && chmod "$(stat -c %a "$LOWER")" "$UPPER" && chmod go-w "$UPPER" &&
        { mount -t overlay ims-overlay -o "lowerdir=$LOWER,upperdir=$UPPER,workdir=$OVERLAY_WORK" "$TARGET" || { umount "$LOWER"; false; }; }
    } 2>&1
  ) && return 0
  echo "${why:-mount failed}" | tr '\n' ' '
  return 1
}

case "$KIND" in
  image)
    if [ "$OVERLAY" = on ] && why=$(mount_overlay); then
      echo overlay > "$MODE_FILE"
      echo "mounted the image read-only under an overlay at $TARGET"
      exit 0
    fi
    [ "$OVERLAY" = on ] || why="IMS_LOCAL_OVERLAY is off"
    echo "cannot mount the image ($why); unsquashing it instead"
    rm -rf "$TARGET" "$LOWER" "$(dirname "$UPPER")"
    unsquashfs -no-progress -dest "$TARGET" "$DOWNLOAD"
    # sshd chroots a jailed shell only into a root-owned directory that only root may write.
    chown root:root "$TARGET"
    chmod go-w "$TARGET"
    echo "unsquashfs ($why)" > "$MODE_FILE"
    ;;
  recipe)
    mkdir -p "$TARGET"
    tar -xf "$DOWNLOAD" -C "$TARGET"
    ;;
esac
rm -f "$DOWNLOAD"
echo "unpacked the $KIND into $TARGET"
