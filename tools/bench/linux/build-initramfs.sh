#!/bin/bash
# Builds the Linux baseline guest's initramfs (tools/bench/linux.ts calls it; the
# output goes to the cache, never into git):
#   build-initramfs.sh OUT.cpio.gz MODULES_DIR INIT BIN...
# MODULES_DIR is lib/modules/<release> of the kernel the guest boots (the test bed's
# Debian kernel, unpacked by tools/testbed/setup.sh). The image holds: static busybox
# and its applets, mke2fs (the host's dynamic binary + its ldd closure + mke2fs.conf),
# xen-blkfront and ext4 with their dependencies (load order in /etc/modules.order),
# each BIN as /bin/<name>, and INIT as /init.
set -euo pipefail
OUT=${1:?usage: build-initramfs.sh OUT MODULES_DIR INIT BIN...}
MODDIR=${2:?}
INIT=${3:?}
shift 3
die() { echo "build-initramfs: $*" >&2; exit 1; }
[ -d "$MODDIR/kernel" ] || die "no kernel modules in $MODDIR"
BB=$(command -v busybox) || die "busybox is not installed (apt-get install busybox-static)"
{ ldd "$BB" 2>&1 || true; } | grep -qE 'not a dynamic|statically linked' || die "busybox is not static (install busybox-static)"
MKE2FS=$(command -v mke2fs || echo /usr/sbin/mke2fs)
[ -x "$MKE2FS" ] || die "mke2fs not found (apt-get install e2fsprogs)"

T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir -p "$T"/{bin,sbin,dev,proc,sys,mnt,etc,lib64,lib/x86_64-linux-gnu,lib/modules}
cp "$BB" "$T/bin/busybox"
for a in $("$BB" --list); do [ -e "$T/bin/$a" ] || ln -s busybox "$T/bin/$a"; done
# mke2fs, dynamically linked: its libraries and the loader
cp -L "$MKE2FS" "$T/sbin/mke2fs"
ldd "$MKE2FS" | awk '/=> \//{print $3} /^\t\/lib64/{print $1}' | sort -u | while read -r lib; do
  case "$lib" in
    /lib64/*) cp -L "$lib" "$T/lib64/" ;;
    *) cp -L "$lib" "$T/lib/x86_64-linux-gnu/" ;;
  esac
done
[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$T/etc/"
ln -s /proc/mounts "$T/etc/mtab"   # mke2fs checks whether the disk is mounted
rm -f "$T/bin/mke2fs" "$T/bin/mkfs.ext2"   # busybox's mke2fs makes ext2 only: /sbin/mke2fs is e2fsprogs'
# modules + dependencies in load order (read from each .ko's .modinfo: no depmod here)
declare -A SEEN=()
ORDER=()
addmod() {
  local m=$1 f d
  [ -n "${SEEN[$m]:-}" ] && return 0
  SEEN[$m]=1
  f=$(find "$MODDIR/kernel" -name "$m.ko" -print -quit)
  [ -n "$f" ] || f=$(find "$MODDIR/kernel" -name "${m//_/-}.ko" -print -quit)
  [ -n "$f" ] || die "kernel module $m not found under $MODDIR"
  for d in $(tr '\0' '\n' < "$f" | grep -a -m1 '^depends=' | cut -d= -f2 | tr ',' ' '); do addmod "$d"; done
  cp "$f" "$T/lib/modules/"
  ORDER+=("/lib/modules/$(basename "$f")")
}
# crc32c first: ext4 and jbd2 only soft-depend on it (metadata_csum needs it)
for m in xen-blkfront crc32c_generic ext4; do addmod $m; done
printf '%s\n' "${ORDER[@]}" > "$T/etc/modules.order"
for b in "$@"; do
  [ -x "$b" ] || die "not an executable: $b"
  cp "$b" "$T/bin/$(basename "$b")"
done
cp "$INIT" "$T/init"; chmod +x "$T/init"
echo "root:x:0:0:root:/:/bin/sh" > "$T/etc/passwd"
mkdir -p "$(dirname "$OUT")"
(cd "$T" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -6) > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
