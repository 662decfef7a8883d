#!/bin/bash
# Builds the Xen test bed's boot files from Debian packages, cached by input versions.
#   usage: setup.sh CACHE_DIR        (CACHE_DIR is <root>/.cache/testbed normally)
# Prints progress on stderr and, as its last stdout line, "BOOT_DIR <dir>" holding
# xen.elf, vmlinuz and initrd.cpio.gz. Nothing is installed system-wide: packages are
# fetched with `apt-get download` and unpacked with `dpkg -x`.
set -euo pipefail
CACHE=${1:?usage: setup.sh CACHE_DIR}
mkdir -p "$CACHE"; CACHE=$(cd "$CACHE" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
XB=/usr/lib/xen-4.17/bin
say() { echo "[testbed setup] $*" >&2; }
die() { echo "[testbed setup] ERROR: $*" >&2; exit 1; }

for t in apt-get apt-cache dpkg cpio gzip zcat busybox flock losetup stat readlink bash sha256sum ldd gcc; do
  command -v $t >/dev/null || die "missing host tool '$t' (run: bash tools/setup, or apt-get install busybox-static cpio util-linux)"
done
busybox sh -c true || die "busybox cannot run its sh applet"
{ ldd "$(command -v busybox)" 2>&1 || true; } | grep -qE 'not a dynamic|statically linked' ||
  die "busybox is not static (install busybox-static): the initramfs has no host libc for it"

# The kernel is whatever linux-image-amd64 points at in Debian 12 (a 6.1 kernel).
# (no early-exiting readers in pipes: with pipefail a SIGPIPE'd writer fails the script)
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ && !k {k=$2} END{print k}')
[ -n "$KPKG" ] || die "apt-cache knows no linux-image-amd64: run apt-get update (Debian 12 repositories needed)"
PKGS="xen-hypervisor-4.17-amd64 xen-utils-4.17 xenstore-utils xen-utils-common $KPKG libxencall1 libxenevtchn1
      libxenforeignmemory1 libxengnttab1 libxenmisc4.17 libxenstore4 libxentoollog1 libxentoolcore1
      libxendevicemodel1 libxenhypfs1 libyajl2"
# pkg=version for every package: the first half of the cache key.
PINS=$(apt-cache policy $PKGS | awk '/^[^ ]/{p=$1; sub(":$","",p)} /Candidate:/{print p "=" $2}' | sort)
[ "$(echo "$PINS" | grep -c '=')" -eq "$(echo $PKGS | wc -w)" ] && ! echo "$PINS" | grep -q '=(none)' ||
  die "apt cannot resolve all packages (got: $(echo $PINS)); run apt-get update"
PKEY=$(echo "$PINS" | sha256sum | cut -c1-16)
# Everything that goes into the initramfs besides the packages: the second half.
IKEY=$( (echo "$PKEY"; cat "$HERE/setup.sh" "$HERE"/dom0/*; for b in busybox bash flock losetup stat readlink; do
          sha256sum "$(readlink -f "$(command -v $b)")"; done) | sha256sum | cut -c1-16)
BOOT=$CACHE/boot/$IKEY
if [ -f "$BOOT/.done" ]; then say "cached: $BOOT"; echo "BOOT_DIR $BOOT"; exit 0; fi

DEBS=$CACHE/debs/$PKEY
ROOT=$CACHE/root/$PKEY
mkdir -p "$CACHE"
exec 9>"$CACHE/.setup.lock"; flock 9   # two test processes must not build at once
if [ -f "$BOOT/.done" ]; then echo "BOOT_DIR $BOOT"; exit 0; fi
T0=$(date +%s.%N)
if [ ! -f "$DEBS/.done" ]; then
  say "downloading $(echo $PKGS | wc -w) packages into $DEBS"
  rm -rf "$DEBS"; mkdir -p "$DEBS"
  (cd "$DEBS" && apt-get download $PINS 2>&1 | grep -v 'Download is performed unsandboxed' >&2) ||
    { [ "$(ls "$DEBS"/*.deb 2>/dev/null | wc -l)" -eq "$(echo $PKGS | wc -w)" ] || die "apt-get download failed"; }
  [ "$(ls "$DEBS"/*.deb | wc -l)" -eq "$(echo $PKGS | wc -w)" ] || die "apt-get download fetched $(ls "$DEBS"/*.deb | wc -l) of $(echo $PKGS | wc -w) packages"
  echo "$PINS" > "$DEBS/PINS"; touch "$DEBS/.done"
fi
if [ ! -f "$ROOT/.done" ]; then
  say "extracting packages into $ROOT"
  rm -rf "$ROOT"; mkdir -p "$ROOT"
  for f in "$DEBS"/*.deb; do dpkg -x "$f" "$ROOT"; done
  touch "$ROOT/.done"
fi
R=$ROOT
KV=$(basename "$(ls -d "$R"/lib/modules/*/kernel | sed 's|/kernel$||' | sort | tail -n 1)")
OUT=$CACHE/initramfs.tmp
say "building initramfs (kernel $KV)"
rm -rf "$OUT" "$BOOT.tmp"; mkdir -p "$BOOT.tmp"
mkdir -p $OUT/{bin,sbin,dev,proc,sys,run,tmp,etc,root,host,lib64,usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib/morgana,$XB,var/lib/xen,var/log,var/lib/xenstored}
ln -s usr/lib $OUT/lib
ln -s ../run $OUT/var/run
ln -s ../run/lock $OUT/var/lock

# busybox applets, real bash, and the util-linux tools Xen's hotplug scripts need (flock!)
cp "$(command -v busybox)" $OUT/bin/busybox
for a in $(busybox --list); do [ -e $OUT/bin/$a ] || ln -s busybox $OUT/bin/$a; done
cp -L "$(command -v bash)" $OUT/bin/bash
for t in flock losetup stat readlink; do cp -L "$(command -v $t)" $OUT/usr/bin/; done

# Xen toolstack (called by full path: /usr/sbin/xl is a wrapper script in Debian)
for b in xl xenstored xenconsoled xenconsole xen-init-dom0 libxl-save-helper xenstore-control; do cp $R$XB/$b $OUT$XB/; done
ln -s $XB/xl $OUT/usr/sbin/xl
cp -a $R/usr/bin/xenstore* $OUT/usr/bin/ && rm -f $OUT/usr/bin/xenstore-control
ln -s $XB/xenstore-control $OUT/usr/bin/xenstore-control
cp -a $R/etc/xen $OUT/etc/
cp -a $R/usr/lib/x86_64-linux-gnu/. $OUT/usr/lib/x86_64-linux-gnu/

# shared-library closure: host libc & co + the Xen libraries from the packages
BINS="$OUT/bin/bash $OUT/usr/bin/* $OUT$XB/*"
lddall() { LD_LIBRARY_PATH=$R/usr/lib/x86_64-linux-gnu ldd $BINS 2>/dev/null || true; }
lddall | awk '/=> \//{print $3} /^\t\/lib64/{print $1}' | sort -u | while read -r lib; do
  case "$lib" in
    /lib64/*) cp -L "$lib" $OUT/lib64/ ;;
    $R/*) ;;
    *) cp -L "$lib" $OUT/usr/lib/x86_64-linux-gnu/ ;;
  esac
done
MISSING=$(lddall | grep 'not found' | sort -u | tr '\n' ' ' || true)
[ -z "$MISSING" ] || die "libraries missing from the initramfs: $MISSING"
# glibc dlopen()s libgcc_s for pthread_cancel: xl aborts without it
LIBGCC=""
for f in /lib/x86_64-linux-gnu/libgcc_s.so.1 /usr/lib/x86_64-linux-gnu/libgcc_s.so.1 /lib64/libgcc_s.so.1; do
  [ -e "$f" ] && { LIBGCC=$f; break; }
done
[ -n "$LIBGCC" ] || die "libgcc_s.so.1 not found on the host (apt-get install libgcc-s1)"
cp -L "$LIBGCC" $OUT/usr/lib/x86_64-linux-gnu/libgcc_s.so.1

# kernel modules + dependencies, in load order (no depmod on the host: read .modinfo)
MODDIR=$R/lib/modules/$KV/kernel
declare -A SEEN=()
ORDER=()
modpath() { find "$MODDIR" -name "$1.ko" -print -quit; }
addmod() {
  local m=$1 f d
  [ -n "${SEEN[$m]:-}" ] && return 0
  SEEN[$m]=1
  f=$(modpath "$m"); [ -n "$f" ] || f=$(modpath "${m//_/-}"); [ -n "$f" ] || die "kernel module $m not found in $KPKG"
  for d in $(tr '\0' '\n' < "$f" | grep -a -m1 '^depends=' | cut -d= -f2 | tr ',' ' '); do addmod "$d"; done
  mkdir -p "$OUT/lib/modules/$KV/$(dirname "${f#$R/lib/modules/$KV/}")"
  cp "$f" "$OUT/lib/modules/$KV/${f#$R/lib/modules/$KV/}"
  ORDER+=("/lib/modules/$KV/${f#$R/lib/modules/$KV/}")
}
for m in xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc xen-blkback xen-netback loop bridge tun \
         virtio_pci 9pnet_virtio 9p virtio_console; do addmod $m; done
printf '%s\n' "${ORDER[@]}" > $OUT/etc/modules.order

cp "$HERE/dom0/init" $OUT/init
cp "$HERE/dom0/ctl-server" "$HERE/dom0/run-guest" "$HERE/dom0/diag" $OUT/usr/lib/morgana/
# dom0's peer for the network tests (raw frames, UDP/TCP clients): static, no libc in the way
gcc -static -O2 -Wall -o $OUT/usr/lib/morgana/net-peer "$HERE/dom0/net-peer.c" || die "cannot build dom0/net-peer.c (gcc -static: apt-get install gcc libc6-dev)"
chmod +x $OUT/init $OUT/usr/lib/morgana/*
echo "root:x:0:0:root:/root:/bin/sh" > $OUT/etc/passwd
echo "root:x:0:" > $OUT/etc/group

zcat $R/boot/xen-4.17-amd64.gz > "$BOOT.tmp/xen.elf"   # QEMU's multiboot loader wants the plain ELF
cp $R/boot/vmlinuz-$KV "$BOOT.tmp/vmlinuz"
(cd $OUT && find . | cpio -o -H newc --quiet | gzip -1 > "$BOOT.tmp/initrd.cpio.gz")
{ echo "$PINS"; echo "initramfs-inputs $IKEY"; } > "$BOOT.tmp/KEY"
rm -rf "$OUT" "$BOOT"; mv "$BOOT.tmp" "$BOOT"; touch "$BOOT/.done"
# Keep only this key's outputs: stale boot dirs are 40+ MB each.
for d in "$CACHE"/boot/*; do [ "$d" = "$BOOT" ] || rm -rf "$d"; done
for d in "$CACHE"/root/* "$CACHE"/debs/*; do [ "$(basename "$d")" = "$PKEY" ] || rm -rf "$d"; done
say "built $BOOT ($(du -sh "$BOOT" | cut -f1)) in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $T0}") s"
echo "BOOT_DIR $BOOT"
