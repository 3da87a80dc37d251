#!/usr/bin/env bash
# Build the U-Boot board in a box (docs/bootloader.md, "The VM harness"):
# an arm64 Debian 12 guest for qemu-system-aarch64 -M virt with Debian's
# U-Boot (u-boot-qemu, qemu_arm64) as firmware, from Debian packages only.
#
#   tests/vm/mkimage-uboot.sh AGENT CACHE    prints the image directory
#
# AGENT is an arm64 fleet-agent (tests/vm/cross-agent.sh).  Cached under
# CACHE like mkimage.sh:
#   ubase-HASH/  debootstrap --arch=arm64 --foreign of Debian 12 (minbase,
#                Debian's arm64 kernel, the agent's libraries,
#                fw_printenv); every downloaded package unpacked with
#                dpkg-deb (no qemu-user or binfmt on the host: maintainer
#                scripts never run; the guest needs none of their output
#                but /etc/passwd); /boot/vmlinuz (gzipped) and /boot/initrd:
#                a busybox initramfs with the kernel's virtio, ext4 and
#                vfat modules.
#   uimg-HASH/   slot-V.ext4 per release (1.0.0, 1.1.0 good, 1.2.0
#                unhealthy, 1.3.0 unbootable: its gzipped kernel is cut
#                short, so U-Boot's booti fails to unpack it and the
#                script resets); disk.img: MBR, the boot variables in a
#                redundant environment of two raw copies before p1 (at
#                0x8000 and 0x10000, 16 KiB each), p1 FAT (mounted, kept
#                empty), p2 slot a = 1.0.0, p3 slot b empty (the test
#                appends p4);
#                flash1.img: QEMU's second flash bank (64 MiB) with
#                U-Boot's own environment (uboot-env.txt: the boot script)
#                at its start; layout.
# Needs root (debootstrap) and Debian's mirror for the base only.
set -euo pipefail

SUITE=bookworm
MIRROR=http://deb.debian.org/debian
BASE_PKGS=linux-image-arm64,busybox-static,libssl3,libjansson4,libinih1,libmosquitto1,libcurl4,libarchive13,libzstd1,libubootenv0.1,libubootenv-tool,libsqlite3-0,ca-certificates
INITRD_MODULES="virtio_pci virtio_blk virtio_net virtio_console ext4 crc32c_generic
vfat nls_cp437 nls_ascii nls_utf8"
SLOT_MIB=256
BOOT_MIB=15
FLASH_MIB=64
ENV_SIZE=0x40000
FLEET_ENV_SIZE=0x4000
# the two copies of the boot variables (uboot-env.txt reads sectors 0x40
# and 0x80, 0x20 each); make_disk starts p1 at 1 MiB
FLEET_ENV_OFFSETS="0x8000 0x10000"

agent=${1:?usage: mkimage-uboot.sh AGENT [CACHE]}
cache=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/fleet-vm}
self=$(readlink -f "$0")
here=$(dirname "$self")
mkdir -p "$cache"

say() { echo "mkimage-uboot: $*" >&2; }
hash_of() { sha256sum | cut -c1-16; }

# make_initrd ROOT KVER: ROOT/boot/initrd, a busybox initramfs that loads
# INITRD_MODULES (and what they depend on) and starts ROOT's
# /sbin/fleet-init from the root= of the kernel command line
make_initrd() {
	local r=$1 kver=$2 i=$1/tmp/initrd m p
	mkdir -p "$i"/{bin,dev,proc,sys,newroot,mod}
	cp "$r/usr/bin/busybox" "$i/bin/busybox"
	: >"$i/modules"
	for m in $INITRD_MODULES; do
		modprobe -d "$r" -S "$kver" --show-depends "$m" | sed -n 's/^insmod \([^ ]*\).*/\1/p'
	done | awk '!seen[$0]++' | while read -r p; do
		cp "$p" "$i/mod/"
		basename "$p" >>"$i/modules"
	done
	cat >"$i/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules); do insmod "/mod/$m" || echo "initrd: insmod $m failed"; done
root=$(sed -n 's/.*root=\([^ ]*\).*/\1/p' /proc/cmdline)
n=0
while [ ! -b "$root" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
mount -t ext4 -o ro "$root" /newroot || { echo "initrd: cannot mount $root"; exit 1; }
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/fleet-init
EOF
	chmod 755 "$i/init"
	(cd "$i" && find . | cpio -o -H newc --quiet | gzip -9) >"$r/boot/initrd"
	rm -rf "$i"
}

make_base() {
	local dir=$1 f kver
	debootstrap --arch=arm64 --foreign --variant=minbase --include="$BASE_PKGS" \
		"$SUITE" "$dir" "$MIRROR" >&2
	# (keeping merged /usr: /bin, /lib and /sbin stay links into /usr)
	for f in "$dir"/var/cache/apt/archives/*.deb; do
		dpkg-deb --fsys-tarfile "$f" | tar -x --keep-directory-symlink -C "$dir"
	done
	cp "$dir/usr/share/base-passwd/passwd.master" "$dir/etc/passwd"
	cp "$dir/usr/share/base-passwd/group.master" "$dir/etc/group"
	kver=$(basename "$dir"/boot/vmlinuz-*)
	kver=${kver#vmlinuz-}
	depmod -b "$dir" "$kver"
	# Debian's arm64 vmlinuz is a plain Image: gzipped, booti unpacks it
	gzip -9 -c "$dir/boot/vmlinuz-$kver" >"$dir/boot/vmlinuz"
	make_initrd "$dir" "$kver"
	# debootstrap --foreign leaves /proc a link to the host's
	rm "$dir/proc"
	mkdir "$dir/proc"
	# no device trees: QEMU passes its own
	rm -rf "$dir"/usr/share/{doc,man,info,locale} "$dir"/var/cache/apt/* \
		"$dir"/var/lib/apt/lists/* "$dir"/lib/modules "$dir"/usr/lib/firmware \
		"$dir"/debootstrap "$dir"/tmp/* "$dir"/boot/*-"$kver" "$dir"/usr/lib/linux-image-*
}

base_key=$( (declare -f make_base make_initrd; echo "$SUITE $BASE_PKGS $INITRD_MODULES") | hash_of)
base=$cache/ubase-$base_key
if [ ! -e "$base/.done" ]; then
	say "debootstrap $SUITE (arm64) into $base (once; a few minutes)"
	for old in "$cache"/ubase-*; do [ -e "$old" ] && rm -rf "$old"; done
	make_base "$base.tmp"
	touch "$base.tmp/.done"
	mv "$base.tmp" "$base"
fi

key=$( (cat "$self" "$here/mkimage.sh" "$here/uboot-env.txt" "$agent"; echo "$base_key") | hash_of)
out=$cache/uimg-$key
# shellcheck source=tests/vm/mkimage.sh
MKIMAGE_LIB=1 . "$here/mkimage.sh"
if [ -e "$out/.done" ]; then
	use_image "$out" 'uimg-*'
	echo "$out"
	exit 0
fi
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
# shellcheck disable=SC2034 # mkimage.sh's make_slot works there
work=$out.tmp/root
trap 'rm -rf "$out.tmp"' EXIT

# the guest's init and the slots: mkimage.sh's, on this base, with
# libubootenv's configuration: the boot variables' two copies on the disk
# (two lines: a redundant environment), where U-Boot's script keeps them
slot_hook() {
	local off
	for off in $FLEET_ENV_OFFSETS; do
		echo "/dev/vda $off $FLEET_ENV_SIZE"
	done >"$1/etc/fw_env.config"
}
say "slot images in $out"
make_slot 1.0.0
make_slot 1.1.0
make_slot 1.2.0 unhealthy
make_slot 1.3.0 nokernel
cp "$base/boot/vmlinuz" "$out.tmp/vmlinuz"

# p1 (FAT, the guest mounts it at /boot/part); the boot variables go in
# both copies, each with the flags byte 1 (mkenvimage -r), before p1
truncate -s "${BOOT_MIB}M" "$out.tmp/boot.img"
mkfs.vfat -n FLEETBOOT "$out.tmp/boot.img" >&2
make_disk "$out.tmp/disk.img" "$out.tmp/boot.img" c "$out.tmp/slot-1.0.0.ext4"
disk=$out.tmp/disk.img
rm "$out.tmp/boot.img"
printf '%s\n' fleet_slot=a upgrade_available=0 bootcount=0 bootlimit=2 |
	mkenvimage -r -s $FLEET_ENV_SIZE -o "$out.tmp/uboot.env" -
for off in $FLEET_ENV_OFFSETS; do
	dd if="$out.tmp/uboot.env" of="$disk" bs=512 seek=$((off / 512)) \
		conv=notrunc status=none
done
rm "$out.tmp/uboot.env"

# The second flash bank: U-Boot's environment at its start (Debian's
# qemu_arm64: CONFIG_ENV_IS_IN_FLASH, one copy of ENV_SIZE bytes), the
# rest erased.  Read only: U-Boot's saveenv cannot write this flash under
# Debian 12's QEMU 7.2 (docs/bootloader.md)
dd if=/dev/zero bs=1M count=$FLASH_MIB status=none | tr '\0' '\377' >"$out.tmp/flash1.img"
grep -v '^#' "$here/uboot-env.txt" | mkenvimage -s $ENV_SIZE -o "$out.tmp/env.bin" -
dd if="$out.tmp/env.bin" of="$out.tmp/flash1.img" conv=notrunc status=none
rm "$out.tmp/env.bin"
echo "boot=$boot_s slot_a=$slot_a slot_b=$slot_b slot_sectors=$((SLOT_MIB * 2048)) data=$data data_sectors=$data_n" >"$out.tmp/layout"
touch "$out.tmp/.done"
trap - EXIT
mv "$out.tmp" "$out"
use_image "$out" 'uimg-*'
echo "$out"
