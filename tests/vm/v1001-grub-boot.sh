#!/usr/bin/env bash
# The board in a box boots (issue 11, stage 1): SeaBIOS, GRUB from the
# MBR, its grub.cfg reading grubenv and booting slot a's kernel and root
# filesystem; the host's fleet-agent in the guest enrolled and online in
# fleetd through QEMU's user network.  The guest's own view (kernel
# command line, grub-editenv, fleet-agent status) equals fleetd's.
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../e2e/lib-agent.sh"
. "$(dirname "$0")/lib-vm.sh"

check "fleetd, trust root, bundles, dev-vm enrolled, disk made" vm_setup
vm_start
vm_up 1 || fail "the guest comes up"
check_grep 'grub: fleet_slot=a upgrade_available=0 bootcount=0 bootlimit=2' \
	"GRUB read grubenv: slot a, no trial" cat "$VM_DIR/console.log"
check_grep 'fleet-vm: slot=a release=1.0.0' "the guest booted slot a (1.0.0)" \
	cat "$VM_DIR/console.log"
check_grep 'root=/dev/vda2 .*fleet\.slot=a' "its kernel runs with slot a's root" \
	vm_sh "cat /proc/cmdline"
check_grep '^fleet_slot=a' "guest grub-editenv: fleet_slot=a" \
	vm_sh "grub-editenv $VM_GRUBENV list"
wait_until $((60 * VM_SCALE)) dev_online "$VM_ID" || fail "dev-vm comes online in fleetd"
check "fleetd: dev-vm online on slot a" sh -c \
	"fleetctl -o json devices show $VM_ID | jq -e '.online == true and .slot == \"a\"'"
check_grep '^slot: +a$' "fleetctl devices show (table): slot a" fleetctl devices show "$VM_ID"
check "guest fleet-agent status: slot a, grub, stable" sh -c \
	"$(declare -f vm_sh); VM_DIR=$VM_DIR FLEET_SRC=$FLEET_SRC VM_SCALE=$VM_SCALE; \
	vm_sh 'fleet-agent status -o json --config /data/agent.conf' |
	jq -e '.slot == \"a\" and .boot.phase == \"stable\"'"
check_grep '^[0-9a-f-]{36}' "the guest has a kernel boot id" \
	vm_sh "cat /proc/sys/kernel/random/boot_id"
finish
