#!/bin/sh
# prepare: download the job's artifact from its pre-signed URL, check its MD5, unpack it.
#   KIND=image   the rootfs squashfs, unsquashed into TARGET (the image root)
#   KIND=recipe  the recipe archive, untarred into TARGET (any compression tar recognises)
# Environment: KIND, URL, MD5 (empty: not checked), DOWNLOAD (file), TARGET (directory).
set -eu
rm -rf "$TARGET" "$DOWNLOAD"
echo "downloading the $KIND"
# Transient failures are retried as the original did (20 attempts, 10 s apart); a refused URL is not.
curl --fail --silent --show-error --location --retry 19 --retry-delay 10 --retry-connrefused --output "$DOWNLOAD" "$URL"
echo "downloaded $(stat -c %s "$DOWNLOAD") bytes"
if [ -n "$MD5" ]; then
  actual=$(md5sum "$DOWNLOAD" | cut -d ' ' -f 1)
  if [ "$actual" != "$MD5" ]; then
    echo "MD5 mismatch: the downloaded $KIND has MD5 $actual, expected $MD5" >&2
    exit 3
  fi
  echo "MD5 $actual verified"
fi
case "$KIND" in
  image)
    unsquashfs -no-progress -dest "$TARGET" "$DOWNLOAD"
    # sshd chroots a jailed shell only into a root-owned directory that only root may write.
    chown root:root "$TARGET"
    chmod go-w "$TARGET"
    ;;
  recipe)
    mkdir -p "$TARGET"
    tar -xf "$DOWNLOAD" -C "$TARGET"
    ;;
esac
rm -f "$DOWNLOAD"
echo "unpacked the $KIND into $TARGET"
