#!/usr/bin/env bash
# The Debian packages install and start cleanly under systemd (issue 15):
# a Debian 12 guest with systemd as PID 1 (tests/vm/mkimage-systemd.sh)
# gets the .debs of make deb and runs tests/vm/pkgtest-guest.sh at boot:
# dpkg -i of the four packages, the user fleet, fleetd.service active
# (Type=notify: READY=1), fleetd and its broker as fleet, a login and
# devices list (table), fleet-agent.service skipped before enrolment and
# then running with an enrolled device, the watchdog restarting a
# SIGSTOPped fleetd, a clean stop, dpkg -r leaving no program or unit.
# Each guest check comes back on the console as "VMCHECK RC WHAT" (after
# journald's "[time] fleet-pkgtest[pid]: " prefix).
. "$(dirname "$0")/../e2e/lib.sh"

: "${FLEET_VM_ACCEL:=tcg}"
cache=${FLEET_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fleet-vm}
C=$T/console.log
trap 'rc=$?; sed "s/^/#   /" "$C" 2>/dev/null | tr -d "\r" | tail -n 200; (exit $rc); cleanup' EXIT

check_exit 0 "make deb" make -s -C "$FLEET_SRC" deb
check_exit 0 "the guest image (debootstrap once, cached)" \
	"$FLEET_SRC/tests/vm/mkimage-systemd.sh" "$cache" "$FLEET_SRC/build-deb" \
	"$FLEET_SRC/tests/vm/pkgtest-guest.sh" "$T/img"
qemu-system-x86_64 -accel "$FLEET_VM_ACCEL" -m 1024 -smp 2 -nodefaults -display none \
	-no-reboot -nic none -serial "file:$C" \
	-kernel "$T/img/vmlinuz" -initrd "$T/img/initrd.img" \
	-append "console=ttyS0 root=/dev/vda rw panic=-1" \
	-drive "file=$T/img/root.img,if=virtio,format=raw" >"$T/qemu.log" 2>&1 &
QEMU=$!
track "$QEMU"
# TCG: systemd's boot, the installs and 45 s of watchdog take minutes
check_exit 0 "the guest ran its checks to the end (VMDONE)" \
	wait_until 1500 grep -q 'fleet-pkgtest\[[0-9]*\]: VMDONE' "$C"
check_exit 0 "... and powered off" wait_until 120 proc_gone "$QEMU"
tr -d '\r' <"$C" | sed -n 's/.*fleet-pkgtest\[[0-9]*\]: \(VMCHECK .*\)/\1/p' >"$T/checks"
check_true "the guest made its checks" test "$(wc -l <"$T/checks")" -ge 20
while read -r _ rc what; do
	if [ "$rc" = 0 ]; then pass "guest: $what"; else fail "guest: $what (exit $rc)"; fi
done <"$T/checks"
finish
