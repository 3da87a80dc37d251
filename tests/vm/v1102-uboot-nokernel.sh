#!/usr/bin/env bash
# An update whose kernel never comes up, through U-Boot (issue 11): 1.3.0's
# slot holds a kernel cut in half.  Streamed into slot b, the environment
# switched, a reboot: U-Boot counts the boot, booti refuses the kernel and
# the script resets; past bootlimit (2) boots altbootcmd puts slot a back
# and clears the trial in one saveenv, slot a boots, and the agent finds
# the fall-back: rolled-back, "bootloader fell back".  Ends with the
# guest's view (fw_printenv, kernel command line, fleet-agent status)
# compared with fleetd's.
VM_BOOT=uboot
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../e2e/lib-agent.sh"
. "$(dirname "$0")/lib-vm.sh"

check "fleetd, trust root, bundles, dev-vm enrolled, disk and flash made" vm_setup
vm_start
vm_up 1 || fail "the guest comes up"
wait_until $((60 * VM_SCALE)) dev_online "$VM_ID" || fail "dev-vm comes online in fleetd"
FW0=$(fleetctl -o json devices show "$VM_ID" | jq -r .firmware)

check "update to 1.3.0 ends" run_update 1.3.0
check "... rolled-back: the bootloader fell back" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.state == \"rolled-back\" and (.reason | test(\"bootloader fell back\"))'"
check_grep 'rolled-back' "fleetctl jobs show (table) says rolled-back" fleetctl jobs show "$JOB"
check_true "slot b's kernel was refused at both counted boots" \
	test "$(grep -ac 'uboot: slot b does not boot' "$VM_DIR/console.log")" -eq 2
check_grep 'uboot: fleet_slot=b upgrade_available=1 bootcount=2 ' \
	"U-Boot counted the second trial boot" cat "$VM_DIR/console.log"
check_grep 'uboot: fleet_slot=a upgrade_available=0 bootcount=0 bootlimit=2' \
	"U-Boot fell back to a by itself" sh -c "grep -a 'uboot: fleet_slot' '$VM_DIR/console.log' | tail -n 1"
check_true "the guest came up twice: before the update, after the fall-back" \
	test "$(vm_boots)" -eq 2
check "guest and fleetd agree: slot a, its firmware ($FW0) as before, trial over" \
	views_agree a "$FW0"
check_grep '^slot: +a$' "fleetctl devices show (table): slot a" fleetctl devices show "$VM_ID"
finish
