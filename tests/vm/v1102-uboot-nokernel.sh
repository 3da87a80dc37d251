#!/usr/bin/env bash
# An update whose kernel never comes up, through U-Boot (issue 11): after
# a good update to 1.1.0 (slot b), 1.3.0, whose slot holds a gzipped kernel
# cut in half, streams into slot a, the boot variables switched, a reboot:
# U-Boot counts the boot, booti fails to unpack the kernel and the script
# resets; past bootlimit (2) boots altbootcmd puts slot b back and clears
# the trial in one write of the boot variables (the copy not in use),
# slot b boots, and the agent finds
# the fall-back: rolled-back, "bootloader fell back".  Ends with the
# guest's view (fw_printenv, kernel command line, fleet-agent status)
# compared with fleetd's.
export VM_BOOT=uboot
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../e2e/lib-agent.sh"
. "$(dirname "$0")/lib-vm.sh"

check "fleetd, trust root, bundles, dev-vm enrolled, disk and flash made" vm_setup
vm_start
vm_up 1 || fail "the guest comes up"
wait_until $((60 * VM_SCALE)) dev_online "$VM_ID" || fail "dev-vm comes online in fleetd"
check "update to 1.1.0 ends" run_update 1.1.0
check "... succeeded: slot b holds 1.1.0" views_agree b 1.1.0

check "update to 1.3.0 ends" run_update 1.3.0
check "... rolled-back: the bootloader fell back" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.state == \"rolled-back\" and (.reason | test(\"bootloader fell back\"))'"
check_grep 'rolled-back' "fleetctl jobs show (table) says rolled-back" fleetctl jobs show "$JOB"
check_true "slot a's kernel was refused at both counted boots" \
	test "$(grep -ac 'uboot: slot a does not boot' "$VM_DIR/console.log")" -eq 2
check_grep 'uboot: fleet_slot=a upgrade_available=1 bootcount=2 ' \
	"U-Boot counted the second trial boot" cat "$VM_DIR/console.log"
check_grep 'uboot: fleet_slot=b upgrade_available=0 bootcount=0 bootlimit=2' \
	"U-Boot fell back to b by itself" sh -c "grep -a 'uboot: fleet_slot' '$VM_DIR/console.log' | tail -n 1"
check_true "the guest came up three times: factory, 1.1.0, after the fall-back" \
	test "$(vm_boots)" -eq 3
check "guest and fleetd agree: slot b, 1.1.0, trial over" views_agree b 1.1.0
check_grep '^slot: +b$' "fleetctl devices show (table): slot b" fleetctl devices show "$VM_ID"
finish
