#!/usr/bin/env bash
# Updates through GRUB on a real kernel (issue 11, stage 2), one guest:
#   1.1.0 good: streamed into slot b, grubenv switched, a real reboot into
#     b, the health command of the new root filesystem passes, marked good;
#   1.2.0 unhealthy: into slot a, reboot, its health command fails, the
#     agent switches back, reboot into b, rolled-back with the reason;
#   1.3.0 unbootable: into slot a, its init exits and the kernel panics
#     (panic=3 reboots), GRUB counts the boots and falls back to b past
#     bootlimit (2): rolled-back, "bootloader fell back";
#   a bundle changed on the server after signing (one payload byte):
#     streamed into slot a, refused at verifying when the hash fails at
#     the end, grubenv untouched, no reboot.
# Each ends with the guest's view (grub-editenv, kernel command line,
# fleet-agent status) compared with fleetd's.
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../e2e/lib-agent.sh"
. "$(dirname "$0")/lib-vm.sh"

check "fleetd, trust root, bundles, dev-vm enrolled, disk made" vm_setup
vm_start
vm_up 1 || fail "the guest comes up"
wait_until $((60 * VM_SCALE)) dev_online "$VM_ID" || fail "dev-vm comes online"

# --- good --------------------------------------------------------------------------
check "update to 1.1.0 ends" run_update 1.1.0
check "... succeeded" sh -c "fleetctl -o json jobs show $JOB | jq -e '.state == \"succeeded\" and .to_version == \"1.1.0\"'"
check_grep 'succeeded' "fleetctl jobs show (table) says succeeded" fleetctl jobs show "$JOB"
check_true "the guest rebooted once" test "$(vm_boots)" -eq 2
check_grep 'fleet-vm: slot=b release=1.1.0' "the guest booted slot b holding 1.1.0" \
	cat "$VM_DIR/console.log"
check_grep 'grub: fleet_slot=b upgrade_available=1 bootcount=1' \
	"GRUB counted the trial boot of b" cat "$VM_DIR/console.log"
check "guest and fleetd agree: slot b, 1.1.0, trial over" views_agree b 1.1.0
check_grep '^slot: +b$' "fleetctl devices show (table): slot b" fleetctl devices show "$VM_ID"

# --- unhealthy ---------------------------------------------------------------------
check "update to 1.2.0 ends" run_update 1.2.0
check "... rolled-back with the health command's output as reason" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.state == \"rolled-back\" and (.reason | test(\"service self-test failed\"))'"
check_grep 'rolled-back' "fleetctl jobs show (table) says rolled-back" fleetctl jobs show "$JOB"
check_true "two more boots: into a, back to b" test "$(vm_boots)" -eq 4
check_grep 'fleet-vm: slot=a release=1.2.0' "the guest ran 1.2.0 in slot a" \
	cat "$VM_DIR/console.log"
check "guest and fleetd agree: slot b, 1.1.0" views_agree b 1.1.0

# --- unbootable --------------------------------------------------------------------
check "update to 1.3.0 ends" run_update 1.3.0
check "... rolled-back: the bootloader fell back" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.state == \"rolled-back\" and (.reason | test(\"bootloader fell back\"))'"
check_grep 'Kernel panic' "1.3.0's kernel panicked" cat "$VM_DIR/console.log"
check_grep 'grub: fleet_slot=b upgrade_available=0 bootcount=0 bootlimit=2' \
	"GRUB fell back to b by itself" sh -c "grep -a 'grub:' '$VM_DIR/console.log' | tail -n 1"
check_true "after the fall-back the guest came up once more" test "$(vm_boots)" -eq 5
check "guest and fleetd agree: slot b, 1.1.0" views_agree b 1.1.0

# --- tampered ----------------------------------------------------------------------
# 1.1.0's image signed as 1.4.0, uploaded, then one byte in the middle of
# the payload changed in fleetd's store: the signature still verifies, the
# whole payload streams into slot a, and only its hash at the end fails.
tampered() {
	local id f
	fleetctl -q bundle create --image "$FLEET_VM_IMG/slot-1.1.0.ext4" --name fleet-vm \
		--version 1.4.0 --security-version 1 --hardware "$VM_HW" \
		--key "$T/fw/keys/targets" --out "$T/fw/fleet-vm-1.4.0.fwb" >/dev/null &&
		id=$(fleetctl bundle upload "$T/fw/fleet-vm-1.4.0.fwb" | tail -n 1) &&
		f=$FLEETD_STATE/bundles/$id.fwb && test -f "$f" &&
		printf 'X' | dd of="$f" bs=1 seek=$(($(stat -c %s "$f") / 2)) conv=notrunc 2>/dev/null
}
check "1.4.0 uploaded, then a payload byte changed on the server" tampered
ENV_BEFORE=$(vm_sh "grub-editenv $VM_GRUBENV list")
check "update to 1.4.0 ends" run_update 1.4.0
check "... failed at verifying: the payload's hash" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.state == \"failed\" and .stage == \"verifying\"'"
check_grep 'failed' "fleetctl jobs show (table) says failed" fleetctl jobs show "$JOB"
check_true "grubenv untouched: slot a never made bootable" \
	test "$(vm_sh "grub-editenv $VM_GRUBENV list")" = "$ENV_BEFORE"
check_true "no reboot" test "$(vm_boots)" -eq 5
check "guest and fleetd agree: slot b, 1.1.0" views_agree b 1.1.0
finish
