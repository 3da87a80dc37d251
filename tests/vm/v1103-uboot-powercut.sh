#!/usr/bin/env bash
# Power cuts during updates through U-Boot (issue 11): the plug pulled
# (SIGKILL to QEMU: whatever the guest had not written out is lost) around
# the writes of the boot variables, which here are a redundant environment
# of two raw copies on the disk, written by the agent (libubootenv) to
# switch and to mark good and by U-Boot's script to count a trial boot and
# to fall back (tests/vm/uboot-env.txt); then the power back on.  Each job
# ends in the state its bundle deserves, and the guest (fw_printenv,
# kernel command line, fleet-agent status) and fleetd agree on the slot
# and the version, with no trial pending:
#   1. 1.1.0 into b, cut while downloading, a third fetched
#   2. 2.0.0 into a, cut once fleetd sees rebooting (the switch written)
#   3. 1.1.0 into b, cut as U-Boot has read the trial (its count is being
#      written to the other copy)
#   4. 2.0.0 into a, cut while the new slot's health command runs (the
#      agent's mark-good write next)
#   5. 1.3.0 (never boots) into b, cut after its first failed boot
#   6. 1.2.0 (its health command fails) into b, cut as U-Boot boots back
#      to a
#   7. 1.1.0 into b, cut as soon as the job started
#   8. 2.0.0 into a, cut in the last 5 % of the download (verifying and
#      installing follow within a poll)
#   9. the same job, cut again right after fleetd says succeeded (the
#      mark-good written just before)
#  10. 1.2.0 into b, cut while its health command runs (the agent's
#      switch back next)
# (2.0.0 is 1.1.0's image signed as 2.0.0: each good update is to another
# version.)
export VM_BOOT=uboot
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../e2e/lib-agent.sh"
. "$(dirname "$0")/lib-vm.sh"

check "fleetd, trust root, bundles, dev-vm enrolled, disk and flash made" vm_setup
check "2.0.0 (1.1.0's image) signed and uploaded" vm_bundle_as 2.0.0 1.1.0
vm_start
vm_up 1 || fail "the guest comes up"
wait_until $((60 * VM_SCALE)) dev_online "$VM_ID" || fail "dev-vm comes online"
# console lines so far matching $1
seen() { grep -ac "$1" "$VM_DIR/console.log"; }

# --- 1: downloading -----------------------------------------------------------
JOB=$(vm_update 1.1.0)
cut_when "1 (1.1.0, a third downloaded)" job_pct 33
after_cut succeeded b 1.1.0

# --- 2: the switch written, rebooting ------------------------------------------
JOB=$(vm_update 2.0.0)
cut_when "2 (2.0.0, rebooting)" job_in rebooting
after_cut succeeded a 2.0.0

# --- 3: U-Boot counting the trial ----------------------------------------------
N=$(seen 'uboot: env copy')
JOB=$(vm_update 1.1.0)
cut_when "3 (1.1.0, U-Boot read the trial)" console_n $((N + 1)) 'uboot: env copy'
after_cut succeeded b 1.1.0

# --- 4: the health check, the mark-good write next ------------------------------
JOB=$(vm_update 2.0.0)
cut_when "4 (2.0.0, health-check)" job_in health-check
after_cut succeeded a 2.0.0

# --- 5: a release that never boots ----------------------------------------------
N=$(seen 'uboot: slot b does not boot')
JOB=$(vm_update 1.3.0)
cut_when "5 (1.3.0, after its first failed boot)" \
	console_n $((N + 1)) 'uboot: slot b does not boot'
after_cut rolled-back a 2.0.0
check "... the bootloader fell back" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.reason | test(\"bootloader fell back\")'"

# --- 6: an unhealthy release, booting back ---------------------------------------
# its health command failed, the agent put a on trial again (b as the
# fall-back) and rebooted: cut once U-Boot boots a, before the agent reports
BACK='uboot: fleet_slot=a upgrade_available=1 bootcount=1 '
N=$(seen "$BACK")
JOB=$(vm_update 1.2.0)
cut_when "6 (1.2.0, booting back to a after its failed health check)" \
	console_n $((N + 1)) "$BACK"
after_cut rolled-back a 2.0.0

# --- 7: the job just started ------------------------------------------------------
JOB=$(vm_update 1.1.0)
cut_when "7 (1.1.0, just started)" job_in queued downloading
after_cut succeeded b 1.1.0

# --- 8, 9: the end of a download; right after succeeded ---------------------------
JOB=$(vm_update 2.0.0)
cut_when "8 (2.0.0, the last 5 % downloading)" job_pct 95
cut_when "9 (2.0.0, succeeded)" job_in succeeded
after_cut succeeded a 2.0.0

# --- 10: an unhealthy release's health check ---------------------------------------
JOB=$(vm_update 1.2.0)
cut_when "10 (1.2.0, health-check)" job_in health-check
after_cut rolled-back a 2.0.0
check "... with its health command's output" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.reason | test(\"self-test failed\")'"

check_true "positive control: U-Boot wrote the boot variables itself, into both copies" sh -c \
	"grep -aq 'uboot: saved env copy a' '$VM_DIR/console.log' && grep -aq 'uboot: saved env copy b' '$VM_DIR/console.log'"
check_grep '^fleet_slot=a$' "guest fw_printenv (both copies) after all the cuts: fleet_slot=a" \
	vm_sh "fw_printenv fleet_slot"
finish
