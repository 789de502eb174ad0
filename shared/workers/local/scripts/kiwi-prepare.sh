#!/bin/sh
# build (create): kiwi-ng prepares the image root from the recipe; the package stage squashes
# it. (kiwi's `system build` would squash with its own settings and run dracut a second time:
# about twice as long for the same root, kernel and initrd.)
# Environment: RECIPE, ROOT, LOGS, GNUPGHOME, KIWI_LOCK, DEBUG (1 or empty), PACKAGES.
set -eu
# kiwi imports the recipe's signing keys with gpg, which needs a writable home; root may have none.
mkdir -p -m 700 "$GNUPGHOME"
rm -rf "$ROOT"
mkdir -p "$(dirname "$ROOT")" "$(dirname "$KIWI_LOCK")"
debug=""
if [ -n "$DEBUG" ]; then debug="--debug"; fi
echo "running kiwi-ng system prepare (waiting for other kiwi builds on this host first)"
# One kiwi at a time on a host: builds share /var/cache/kiwi and its apt lock. The private mount
# namespace takes kiwi's bind mounts (/proc, /dev, /sys into the root) away with it, even when
# it is killed.
flock "$KIWI_LOCK" unshare --mount --propagation private \
  kiwi-ng $debug --logfile "$LOGS/kiwi.log" system prepare --description "$RECIPE" --root "$ROOT"
# The package list kiwi's `system build` writes as <image>.packages:
# name|epoch|version|release|arch|disturl|license
if [ -f "$ROOT/var/lib/dpkg/status" ]; then
  dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f '${Package}|None|${Version}|None|${Architecture}|None|None\n' | sort > "$PACKAGES"
elif [ -x "$ROOT/usr/bin/rpm" ]; then
  chroot "$ROOT" rpm -qa --qf '%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}|%{DISTURL}|%{LICENSE}\n' | sort > "$PACKAGES"
fi
echo "image root prepared in $ROOT"
