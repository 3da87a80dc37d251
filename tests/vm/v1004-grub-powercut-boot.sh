#!/usr/bin/env bash
# Power cuts during updates on a real kernel and GRUB (issue 11), part 2:
# the plug pulled in the boots around an update (v1003 has the download
# and the switch), then the power back on.  Each job ends in the state its
# bundle deserves, and the guest (grubenv, kernel command line,
# fleet-agent status) and fleetd agree on the slot and the version, with no
# trial pending:
#   6. 2.0.0 into b, cut while the new slot's health command runs
#   7. 1.1.0 into a, cut right after fleetd says succeeded
#   8. 1.2.0 (its health command fails) into b, cut as GRUB boots back to a
#   9. 1.3.0 (never boots) into b, cut after its first kernel panic
#  10. 2.0.0 into b, cut as soon as the job started, before any byte
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../e2e/lib-agent.sh"
. "$(dirname "$0")/lib-vm.sh"

check "fleetd, trust root, bundles, dev-vm enrolled, disk made" vm_setup
check "2.0.0 (1.1.0's image) signed and uploaded" vm_bundle_as 2.0.0 1.1.0
vm_start
vm_up 1 || fail "the guest comes up"
wait_until $((60 * VM_SCALE)) dev_online "$VM_ID" || fail "dev-vm comes online"

# --- 6: the health check of the new slot --------------------------------------------
JOB=$(vm_update 2.0.0)
cut_when "6 (2.0.0, health-check)" job_in health-check
after_cut succeeded b 2.0.0

# --- 7: just after success --------------------------------------------------------------
JOB=$(vm_update 1.1.0)
cut_when "7 (1.1.0, succeeded)" job_in succeeded
after_cut succeeded a 1.1.0

# --- 8: an unhealthy release, rebooting back ----------------------------------------
# its health command failed, the agent put a on trial again (b as the
# fall-back) and rebooted: cut once GRUB boots a, before the agent reports
BACK='grub: fleet_slot=a upgrade_available=1 bootcount=1 '
N=$(grep -ac "$BACK" "$VM_DIR/console.log")
JOB=$(vm_update 1.2.0)
cut_when "8 (1.2.0, booting back to a after its failed health check)" \
	console_n $((N + 1)) "$BACK"
after_cut rolled-back a 1.1.0
check "... with the health command's output as reason" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.reason | test(\"service self-test failed\")'"

# --- 9: a release that never boots ------------------------------------------------------
N=$(grep -ac 'Kernel panic' "$VM_DIR/console.log")
JOB=$(vm_update 1.3.0)
cut_when "9 (1.3.0, after its first kernel panic)" console_n $((N + 1)) 'Kernel panic'
after_cut rolled-back a 1.1.0
check "... the bootloader fell back" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.reason | test(\"bootloader fell back\")'"

# --- 10: the job just started -----------------------------------------------------------
JOB=$(vm_update 2.0.0)
cut_when "10 (2.0.0, just started)" job_in queued downloading
after_cut succeeded b 2.0.0
check_grep 'fleet-vm: slot=b release=1.1.0' "slot b runs 2.0.0's image" \
	sh -c "grep -a 'fleet-vm: slot=' '$VM_DIR/console.log' | tail -n 1"
finish
