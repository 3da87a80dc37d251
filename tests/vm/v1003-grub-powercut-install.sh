#!/usr/bin/env bash
# Power cuts during updates on a real kernel and GRUB (issue 11), part 1:
# the plug pulled (SIGKILL to QEMU: whatever the guest had not written out
# is lost) while the agent streams a bundle into the inactive slot,
# verifies it and switches GRUB over, then the power back on.  Every
# update must still end succeeded, the download resumed rather than begun
# again, with the guest (grubenv, kernel command line, fleet-agent status)
# and fleetd agreeing on the slot and the version, no trial pending:
#   1. 1.1.0 into b, cut while downloading, a third fetched
#   2. 2.0.0 into a, cut at half the download, and again past three quarters
#   3. 1.1.0 into b, cut in the last 5 % of the download
#   4. 2.0.0 into a, cut once fleetd sees rebooting (GRUB switched over)
#   5. 1.1.0 into b, cut in the trial boot: GRUB counted it, the kernel starts
# (2.0.0 is 1.1.0's image signed as 2.0.0: each good update is to another
# version.)  Part 2 (v1004) cuts in the boots that follow an update.
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../e2e/lib-agent.sh"
. "$(dirname "$0")/lib-vm.sh"

# the byte the agent's newest download pass resumed at (its own log;
# -a: a power cut leaves NUL bytes where its last lines were)
resumed_at() {
	vm_sh "grep -ao 'download resumes at byte [0-9]*' /data/agent.log | tail -n 1" |
		tr -d '\r' | grep -o '[0-9]*$'
}
resumed_past_zero() { r=$(resumed_at) && [ "${r:-0}" -gt 0 ]; }

check "fleetd, trust root, bundles, dev-vm enrolled, disk made" vm_setup
check "2.0.0 (1.1.0's image) signed and uploaded" vm_bundle_as 2.0.0 1.1.0
vm_start
vm_up 1 || fail "the guest comes up"
wait_until $((60 * VM_SCALE)) dev_online "$VM_ID" || fail "dev-vm comes online"

# --- 1: downloading -------------------------------------------------------------------
JOB=$(vm_update 1.1.0)
cut_when "1 (1.1.0, a third downloaded)" job_pct 33
check "... after the cut the download resumed past byte 0" wait_until "$BOUND" resumed_past_zero
log "resumed at byte $(resumed_at)"
after_cut succeeded b 1.1.0

# --- 2: downloading, twice ------------------------------------------------------------
JOB=$(vm_update 2.0.0)
cut_when "2a (2.0.0, half downloaded)" job_pct 50
cut_when "2b (2.0.0, again past three quarters)" job_pct 75
check "... the second pass resumed past byte 0" wait_until "$BOUND" resumed_past_zero
after_cut succeeded a 2.0.0

# --- 3: the end of the download -------------------------------------------------------
# (verifying, installing and installed pass in a quarter of a second here,
# between two polls; the sim tests cut in each of them: t3003)
JOB=$(vm_update 1.1.0)
cut_when "3 (1.1.0, the last 5 % downloading)" job_pct 95
after_cut succeeded b 1.1.0

# --- 4: GRUB switched over, reboot pending ----------------------------------------------
JOB=$(vm_update 2.0.0)
cut_when "4 (2.0.0, rebooting)" job_in rebooting
after_cut succeeded a 2.0.0

# --- 5: the trial boot ----------------------------------------------------------------
TRIAL='grub: fleet_slot=b upgrade_available=1 bootcount=1 '
N=$(grep -ac "$TRIAL" "$VM_DIR/console.log")
JOB=$(vm_update 1.1.0)
cut_when "5 (1.1.0, GRUB counted the trial boot of b)" console_n $((N + 1)) "$TRIAL"
after_cut succeeded b 1.1.0
check_grep 'grub: fleet_slot=b upgrade_available=1 bootcount=2 ' \
	"the boot after the cut was the second trial of b" cat "$VM_DIR/console.log"
finish
