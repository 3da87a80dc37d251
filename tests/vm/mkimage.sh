#!/usr/bin/env bash
# Build the board-in-a-box disk images for make check-vm (docs/bootloader.md,
# "The VM harness") from Debian packages only.
#
#   tests/vm/mkimage.sh AGENT CACHE     prints the image directory
#
# Two stages, each cached under CACHE (default ~/.cache/fleet-vm):
#   base-HASH/   debootstrap of Debian 12 (minbase, Debian's kernel, the
#                agent's libraries, grub-editenv, fw_printenv) with a small
#                initramfs; HASH covers make_base and the package list,
#                so editing the rest of this script does not download again.
#   img-HASH/    HASH covers this script, grub.cfg, the base and AGENT:
#                slot-V.ext4  one root filesystem per firmware release
#                             (1.0.0 factory, 1.1.0 good, 1.2.0 unhealthy,
#                             1.3.0 unbootable: its init exits, the kernel
#                             panics)
#                disk.img     MBR + GRUB core image, p1 /boot (grub.cfg,
#                             grubenv), p2 slot a = 1.0.0, p3 slot b empty;
#                             the test appends p4 (the agent's data)
#                layout       the partitions' offsets and sizes (sectors)
# Needs root for debootstrap's chroot only; the filesystems are made from
# directories (mkfs.ext4 -d), the partition table with sfdisk on a file and
# GRUB's boot code is written into the file directly (no loop devices).
set -euo pipefail

SUITE=bookworm
MIRROR=http://deb.debian.org/debian
BASE_PKGS=linux-image-amd64,busybox,kmod,e2fsprogs,libssl3,libjansson4,libinih1,libmosquitto1,libcurl4,libarchive13,libzstd1,libubootenv0.1,libubootenv-tool,libsqlite3-0,grub-common,ca-certificates
INITRD_MODULES="virtio_pci virtio_blk virtio_net ext4 crc32c_generic"
SLOT_MIB=256
BOOT_MIB=15
GRUB_MODULES="biosdisk part_msdos ext2 normal linux loadenv test echo configfile serial terminal"

# The guest's init: mounts, network (QEMU user mode: the host is
# 10.0.2.2), a command channel on the second serial port for the test
# (tests/vm/lib-vm.sh vm_sh), and the agent, started again when it exits.
# BROKEN=1 makes the unbootable release: init exits, the kernel panics
# (panic=3 on the command line reboots it, and GRUB counts the boot).
write_init() {
	cat >"$1" <<'EOF'
#!/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
# the initramfs has moved /proc, /sys and /dev here already
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
mkdir -p /run/lock
slot=$(sed -n 's/.*fleet\.slot=\([ab]\).*/\1/p' /proc/cmdline)
echo "fleet-vm: slot=$slot release=$(cat /etc/fleet-release)"
EOF
	if [ "${BROKEN:-0}" = 1 ]; then
		echo 'echo "fleet-vm: this release cannot start (init exits)"; exit 1' >>"$1"
	else
		cat >>"$1" <<'EOF'
mount -o rw /dev/vda1 /boot/part
mount -o rw /dev/vda4 /data
busybox ip link set lo up
busybox ip link set eth0 up
busybox ip addr add 10.0.2.15/24 dev eth0
busybox ip route add default via 10.0.2.2
echo "fleet-vm: up"
# the test's command channel (the second serial port on x86, a virtio
# console on arm64): one line in, its output and "@@rc=N" out
n=0
while [ ! -e /dev/hvc0 ] && [ ! -e /dev/ttyS1 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
chan=/dev/ttyS1
[ -e /dev/hvc0 ] && chan=/dev/hvc0
# (stty on the open channel: a virtio console forgets its settings at
# the last close)
(stty raw -echo 115200
while read -r cmd; do
	sh -c "$cmd" </dev/null 2>&1
	echo "@@rc=$?"
done) <$chan >$chan 2>&1 &
while :; do
	fleet-agent run --config /data/agent.conf --log-level debug >>/data/agent.log 2>&1
	echo "fleet-vm: fleet-agent exited $?"
	sleep 1
done
EOF
	fi
	chmod 755 "$1"
}

# make_slot VERSION [unhealthy|broken|nokernel]: slot-VERSION.ext4
# (nokernel: /boot/vmlinuz cut in half, for the U-Boot image)
make_slot() {
	local v=$1 kind=${2:-good} img=$out.tmp/slot-$1.ext4 mib
	rm -rf "$work"
	cp -a "$base" "$work"
	rm -f "$work/.done"
	mkdir -p "$work/data" "$work/boot/part" "$work/usr/local/sbin" "$work/usr/local/bin"
	install -m 755 "$agent" "$work/usr/local/bin/fleet-agent"
	echo "$v" >"$work/etc/fleet-release"
	echo "fleet-vm" >"$work/etc/hostname"
	BROKEN=$([ "$kind" = broken ] && echo 1 || echo 0) write_init "$work/sbin/fleet-init"
	if [ "$kind" = unhealthy ]; then
		printf '#!/bin/sh\necho "release %s: service self-test failed"\nexit 1\n' "$v"
	else
		printf '#!/bin/sh\necho "release %s: healthy"\n' "$v"
	fi >"$work/usr/local/sbin/fleet-health"
	chmod 755 "$work/usr/local/sbin/fleet-health"
	if [ "$(type -t slot_hook)" = function ]; then slot_hook "$work"; fi
	if [ "$kind" = nokernel ]; then
		truncate -s $(($(stat -c %s "$work/boot/vmlinuz") / 2)) "$work/boot/vmlinuz"
	fi
	mib=$(($(du -sm "$work" | cut -f1) * 11 / 10 + 24))
	[ "$mib" -le "$SLOT_MIB" ] || { say "root filesystem of $mib MiB > $SLOT_MIB"; exit 1; }
	mkfs.ext4 -q -F -L "fleet-$v" -d "$work" "$img" "${mib}M" >&2
	rm -rf "$work"
}

# make_disk DISK BOOT_IMG BOOT_TYPE SLOT_IMG: an MBR disk of the boot
# partition (BOOT_MIB, sfdisk type BOOT_TYPE) holding BOOT_IMG, slots a
# (holding SLOT_IMG) and b (SLOT_MIB each) and 32 MiB for the data
# partition; the layout (sectors) in boot_s slot_a slot_b data data_n.
make_disk() {
	local disk=$1 boot_img=$2 boot_type=$3 slot_img=$4
	boot_s=2048
	slot_a=$((boot_s + BOOT_MIB * 2048))
	slot_b=$((slot_a + SLOT_MIB * 2048))
	data=$((slot_b + SLOT_MIB * 2048))
	data_n=$((32 * 2048))
	truncate -s $(((data + data_n) * 512)) "$disk"
	sfdisk -q "$disk" <<EOF
label: dos
$boot_s,$((BOOT_MIB * 2048)),$boot_type
$slot_a,$((SLOT_MIB * 2048)),83
$slot_b,$((SLOT_MIB * 2048)),83
$data,$data_n,83
EOF
	dd if="$boot_img" of="$disk" bs=512 seek=$boot_s conv=notrunc,sparse status=none
	dd if="$slot_img" of="$disk" bs=512 seek=$slot_a conv=notrunc,sparse status=none
}

# use_image DIR PATTERN: DIR is in use (its time is now); the other
# images of PATTERN next to it that no run has used for 6 hours go (an
# agent build makes a new image each time; a run in progress, at most
# an hour, keeps its own).
use_image() {
	touch "$1"
	find "$(dirname "$1")" -mindepth 1 -maxdepth 1 -name "$2" \
		! -path "$1" ! -name '*.tmp' -mmin +360 -exec rm -rf {} +
}

# mkimage-uboot.sh takes the functions above
[ "${MKIMAGE_LIB:-}" = 1 ] && return 0

agent=${1:?usage: mkimage.sh AGENT [CACHE]}
cache=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/fleet-vm}
self=$(readlink -f "$0")
mkdir -p "$cache"

say() { echo "mkimage: $*" >&2; }
hash_of() { sha256sum | cut -c1-16; }

# make_base DIR: Debian 12 with the kernel; the initramfs loads the
# virtio and ext4 modules itself, so the root filesystem needs no modules.
make_base() {
	local dir=$1
	debootstrap --variant=minbase --include="$BASE_PKGS" "$SUITE" "$dir" "$MIRROR" >&2
	echo "MODULES=list" >"$dir/etc/initramfs-tools/conf.d/fleet-vm"
	# shellcheck disable=SC2086 # a list
	printf '%s\n' $INITRD_MODULES >"$dir/etc/initramfs-tools/modules"
	chroot "$dir" update-initramfs -u -k all >&2
	rm -rf "$dir"/usr/share/{doc,man,info,locale} "$dir"/var/cache/apt/* \
		"$dir"/var/lib/apt/lists/* "$dir"/lib/modules "$dir"/usr/lib/firmware \
		"$dir"/usr/lib/udev/hwdb.*
}

base_key=$( (declare -f make_base; echo "$SUITE $BASE_PKGS $INITRD_MODULES") | hash_of)
base=$cache/base-$base_key
if [ ! -e "$base/.done" ]; then
	say "debootstrap $SUITE into $base (once; a few minutes)"
	rm -rf "$base" "$base.tmp"
	make_base "$base.tmp"
	touch "$base.tmp/.done"
	mv "$base.tmp" "$base"
fi

key=$( (cat "$self" "$(dirname "$self")/grub.cfg" "$agent"; echo "$base_key") | hash_of)
out=$cache/img-$key
if [ -e "$out/.done" ]; then
	use_image "$out" 'img-*'
	echo "$out"
	exit 0
fi
rm -rf "$out" "$out.tmp"
mkdir -p "$out.tmp"
work=$out.tmp/root
trap 'rm -rf "$out.tmp"' EXIT

say "slot images in $out"
make_slot 1.0.0
make_slot 1.1.0
make_slot 1.2.0 unhealthy
make_slot 1.3.0 broken
# the kernel alone, for tests/vm/run's KVM probe
cp "$(readlink -f "$base/vmlinuz")" "$out.tmp/vmlinuz"

# /boot (p1): grub.cfg, an empty grubenv.  The kernel and initramfs come
# from the slot GRUB picks, so an update carries its own kernel.
mkdir -p "$work/grub"
cp "$(dirname "$self")/grub.cfg" "$work/grub/grub.cfg"
grub-editenv "$work/grub/grubenv" create
grub-editenv "$work/grub/grubenv" set fleet_slot=a upgrade_available=0 bootcount=0 bootlimit=2
mkfs.ext4 -q -F -L fleet-boot -d "$work" "$out.tmp/boot.ext4" "${BOOT_MIB}M" >&2
rm -rf "$work"

# Partition table: 1 MiB for MBR + GRUB core, boot, slot a, slot b; the
# data partition (p4) is the rest, appended per test run.
make_disk "$out.tmp/disk.img" "$out.tmp/boot.ext4" '83,*' "$out.tmp/slot-1.0.0.ext4"
disk=$out.tmp/disk.img
rm "$out.tmp/boot.ext4"
# GRUB for BIOS: boot.img's code in the MBR (the partition table kept),
# core.img right after it (boot.img reads sector 1; grub-mkimage wrote
# core.img's own length into its first sector).
# shellcheck disable=SC2086 # a list
grub-mkimage -O i386-pc -p '(hd0,msdos1)/grub' -o "$out.tmp/core.img" $GRUB_MODULES
[ "$(stat -c %s "$out.tmp/core.img")" -lt $(((boot_s - 1) * 512)) ]
dd if=/usr/lib/grub/i386-pc/boot.img of="$disk" bs=440 count=1 conv=notrunc status=none
dd if="$out.tmp/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none
rm "$out.tmp/core.img"
echo "boot=$boot_s slot_a=$slot_a slot_b=$slot_b slot_sectors=$((SLOT_MIB * 2048)) data=$data data_sectors=$data_n" >"$out.tmp/layout"
touch "$out.tmp/.done"
trap - EXIT
mv "$out.tmp" "$out"
use_image "$out" 'img-*'
echo "$out"
