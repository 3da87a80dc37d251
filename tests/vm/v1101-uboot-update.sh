#!/usr/bin/env bash
# A good update through U-Boot on a real kernel (issue 11): the arm64 guest
# (qemu-system-aarch64 -M virt) boots Debian's U-Boot (u-boot-qemu,
# qemu_arm64), whose environment in the CFI flash runs the counting script
# of tests/vm/uboot-env.txt on the boot variables, a redundant environment
# of two raw copies on the disk; the agent's uboot backend reads and
# writes the same two copies through libubootenv.
#   boot: U-Boot boots slot a from the newer copy, fw_printenv in the
#     guest reads the same;
#   1.1.0 good: streamed into slot b, the environment switched, a real
#     reboot, U-Boot reads the copy the agent wrote (the newer flags
#     byte), counts the trial boot into the other copy, the new
#     root's health command passes, marked good: succeeded.
#   a torn copy: the power off, then on the host the newest copy (the
#     mark-good) damaged, as a bad sector would: U-Boot takes the older
#     copy, which still says "b on trial", and counts; the agent finds its
#     job succeeded into b and marks b good again (docs/bootloader.md,
#     "Power loss and kill -9"); a reboot after it stays on b uncounted.
# Ends with the guest's view (fw_printenv, kernel command line,
# fleet-agent status) compared with fleetd's.
export VM_BOOT=uboot
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../e2e/lib-agent.sh"
. "$(dirname "$0")/lib-vm.sh"

check "fleetd, trust root, bundles, dev-vm enrolled, disk and flash made" vm_setup
vm_start
vm_up 1 || fail "the guest comes up"
check_grep 'uboot: fleet_slot=a upgrade_available=0 bootcount=0 bootlimit=2' \
	"U-Boot read the boot variables: slot a, no trial" cat "$VM_DIR/console.log"
check_grep 'uboot: env copy a \(flags 1; a 1, b 1\)' \
	"... from copy a (both copies as made: flags 1)" cat "$VM_DIR/console.log"
check_grep 'fleet-vm: slot=a release=1.0.0' "the guest booted slot a (1.0.0)" \
	cat "$VM_DIR/console.log"
check_grep '^fleet_slot=a$' "guest fw_printenv (libubootenv on both copies): fleet_slot=a" \
	vm_sh "fw_printenv fleet_slot"
wait_until $((60 * VM_SCALE)) dev_online "$VM_ID" || fail "dev-vm comes online in fleetd"
check "guest and fleetd agree: slot a, no trial" sh -c \
	"fleetctl -o json devices show $VM_ID | jq -e '.online == true and .slot == \"a\"'"

check "update to 1.1.0 ends" run_update 1.1.0
check "... succeeded" sh -c "fleetctl -o json jobs show $JOB | jq -e '.state == \"succeeded\" and .to_version == \"1.1.0\"'"
check_grep 'succeeded' "fleetctl jobs show (table) says succeeded" fleetctl jobs show "$JOB"
check_true "the guest rebooted once" test "$(vm_boots)" -eq 2
check_grep 'fleet-vm: slot=b release=1.1.0' "the guest booted slot b holding 1.1.0" \
	cat "$VM_DIR/console.log"
check_grep 'uboot: fleet_slot=b upgrade_available=1 bootcount=1 ' \
	"U-Boot counted the trial boot of b" cat "$VM_DIR/console.log"
# the agent's switch went to the copy not in use, one flags byte on; U-Boot
# took that one and wrote its count to the other, one more again
check_grep 'uboot: env copy b \(flags 2; a 1, b 2\)' \
	"U-Boot read the agent's switch from copy b (flags 2)" cat "$VM_DIR/console.log"
check_grep 'uboot: saved env copy a \(flags 3\)' \
	"... and saved its count to copy a (flags 3)" cat "$VM_DIR/console.log"
check "guest and fleetd agree: slot b, 1.1.0, trial over" views_agree b 1.1.0
check_grep '^slot: +b$' "fleetctl devices show (table): slot b" fleetctl devices show "$VM_ID"

# --- a torn copy ------------------------------------------------------------
# env_flags OFFSET: the flags byte of the copy at byte OFFSET of the disk
env_flags() { od -An -tu1 -j $(($1 + 4)) -N1 "$VM_DIR/disk.img" | tr -d ' '; }
tear_newest() {
	local fa fb off
	fa=$(env_flags $((0x8000))) fb=$(env_flags $((0x10000)))
	if [ $(((fb - fa + 256) % 256)) -lt 128 ]; then off=$((0x10000)) NEWEST=b OLDER=$fa; else
		off=$((0x8000)) NEWEST=a OLDER=$fb; fi
	log "copies' flags: a $fa, b $fb; damaging copy $NEWEST"
	printf '~' | dd of="$VM_DIR/disk.img" bs=1 seek=$((off + 8)) conv=notrunc status=none
}
since() { tail -n +"$1" "$VM_DIR/console.log"; } # the console from line $1 on
# agent_starts N: the agent has logged more than N starts; it looks at
# the boot variables before it says it runs
starts() { vm_sh "grep -c 'running (broker' /data/agent.log" | tr -d '\r'; }
agent_starts() { [ "$(starts)" -gt "$1" ]; }
# the guest's page cache written out first: the cut only turns it off
check "sync in the guest" vm_sh sync
STARTS=$(starts)
check "power off after the job ended" vm_kill9
check "the newest copy damaged on the disk" tear_newest
LINE=$(($(wc -l <"$VM_DIR/console.log") + 1))
check "the guest boots again" vm_restart
check_grep "uboot: env copy [ab] \\(flags $OLDER; " \
	"U-Boot fell over to the older copy (flags $OLDER; copy $NEWEST fails its CRC)" since "$LINE"
check_grep 'uboot: fleet_slot=b upgrade_available=1 bootcount=2 ' \
	"... which says b on trial: counted again (positive control)" since "$LINE"
check "the agent starts" wait_until $((60 * VM_SCALE)) agent_starts "$STARTS"
check_grep '^1' "... and marks b good again (its log)" \
	vm_sh "grep -c 'slot b is on trial again, but job .* passed its health check' /data/agent.log"
check "guest and fleetd agree: slot b, 1.1.0, trial over" views_agree b 1.1.0
LINE=$(($(wc -l <"$VM_DIR/console.log") + 1))
vm_sh "sync; busybox reboot -f" 5 >/dev/null 2>&1
check "the guest comes up again after a reboot" vm_up 4
check_grep 'uboot: fleet_slot=b upgrade_available=0 bootcount=0 ' \
	"U-Boot boots b with no trial (it would have fallen back to a)" since "$LINE"
check "guest and fleetd agree: slot b, 1.1.0" views_agree b 1.1.0
check "... job $JOB still succeeded" sh -c "fleetctl -o json jobs show $JOB | jq -e '.state == \"succeeded\"'"
finish
