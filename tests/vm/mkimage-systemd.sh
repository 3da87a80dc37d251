#!/usr/bin/env bash
# The guest of v1005 (the Debian packages under systemd): Debian 12 with
# systemd as PID 1, booted by QEMU straight into Debian's kernel (no
# bootloader: this scenario is about the packages, not the slots).
#
#   tests/vm/mkimage-systemd.sh CACHE DEBS SCRIPT OUT
#
# CACHE/sdbase-HASH: debootstrap (minbase, systemd-sysv, the kernel, the
# runtime dependencies the .debs name, so dpkg -i needs no network),
# cached; HASH covers make_base and the package list.  OUT: vmlinuz, initrd.img
# and root.img (ext4, made from a directory: no loop device) holding the
# .debs of DEBS in /root/debs and SCRIPT as the unit fleet-pkgtest.service,
# which runs once at boot and powers off.
set -euo pipefail

SUITE=bookworm
MIRROR=http://deb.debian.org/debian
SYSTEM_PKGS=systemd,systemd-sysv,dbus,linux-image-amd64,kmod,procps
INITRD_MODULES="virtio_pci virtio_blk ext4 crc32c_generic"

cache=${1:?usage: mkimage-systemd.sh CACHE DEBS SCRIPT OUT}
debs=${2:?} script=${3:?} out=${4:?}
say() { echo "mkimage-systemd: $*" >&2; }

# What the .debs depend on (the first of each "a | b", no versions), but
# themselves: read from the packages, so a new library dependency (as
# libmodbus5 for the agent was) cannot leave dpkg -i without it.
debs_depends() {
	local d
	for d in "$debs"/*.deb; do
		case $d in *-dbgsym_*) continue ;; esac
		dpkg-deb -f "$d" Pre-Depends Depends | sed 's/^[A-Za-z-]*: //'
	done | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g' |
		grep -v -x -e '' -e fleetctl -e fleetd -e fleet-agent -e fleet-sim | sort -u | paste -sd, -
}
deps=$(debs_depends)
[ -n "$deps" ] || { say "no .deb in $debs, or none with dependencies"; exit 1; }
BASE_PKGS=$SYSTEM_PKGS,$deps

make_base() {
	local dir=$1
	debootstrap --variant=minbase --include="$BASE_PKGS" "$SUITE" "$dir" "$MIRROR" >&2
	echo "MODULES=list" >"$dir/etc/initramfs-tools/conf.d/fleet-vm"
	# shellcheck disable=SC2086 # a list
	printf '%s\n' $INITRD_MODULES >"$dir/etc/initramfs-tools/modules"
	chroot "$dir" update-initramfs -u -k all >&2
	rm -rf "$dir"/usr/share/{doc,info,locale} "$dir"/var/cache/apt/* \
		"$dir"/var/lib/apt/lists/* "$dir"/lib/modules "$dir"/usr/lib/firmware \
		"$dir"/usr/lib/udev/hwdb.*
}

key=$( (declare -f make_base; echo "$SUITE $BASE_PKGS $INITRD_MODULES") | sha256sum | cut -c1-16)
base=$cache/sdbase-$key
if [ ! -e "$base/.done" ]; then
	say "debootstrap $SUITE with systemd into $base (once; a few minutes)"
	rm -rf "$base" "$base.tmp"
	mkdir -p "$cache"
	make_base "$base.tmp"
	touch "$base.tmp/.done"
	mv "$base.tmp" "$base"
fi

mkdir -p "$out"
root=$out/root
cp -a "$base" "$root"
rm -f "$root/.done"
echo "fleet-pkg" >"$root/etc/hostname"
echo "/dev/vda / ext4 rw 0 1" >"$root/etc/fstab"
mkdir -p "$root/root/debs"
cp "$debs"/*.deb "$root/root/debs/"
rm -f "$root"/root/debs/*-dbgsym_*.deb
install -m 755 "$script" "$root/usr/local/sbin/fleet-pkgtest"
cat >"$root/etc/systemd/system/fleet-pkgtest.service" <<'UNIT'
[Unit]
Description=v1005: install Fleet's packages and check them
After=multi-user.target

[Service]
Type=oneshot
Environment=HOME=/root
ExecStart=/usr/local/sbin/fleet-pkgtest
ExecStopPost=/bin/systemctl --no-block poweroff
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
UNIT
ln -s /etc/systemd/system/fleet-pkgtest.service \
	"$root/etc/systemd/system/multi-user.target.wants/fleet-pkgtest.service"
# no getty on the console: only the kernel, systemd and the test write there
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
cp "$(readlink -f "$root/vmlinuz")" "$out/vmlinuz"
cp "$(readlink -f "$root/initrd.img")" "$out/initrd.img"
mib=$(($(du -sm "$root" | cut -f1) * 12 / 10 + 200))
mkfs.ext4 -q -F -L fleet-pkg -d "$root" "$out/root.img" "${mib}M" >&2
rm -rf "$root"
