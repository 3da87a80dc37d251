# shellcheck shell=bash
# Helpers of the VM scenarios (tests/vm/vNNNN-*.sh), sourced after
# tests/e2e/lib.sh and lib-agent.sh.  tests/vm/run sets FLEET_VM_IMG (the
# GRUB image directory, tests/vm/mkimage.sh), FLEET_VM_IMG_UBOOT (the
# U-Boot one, tests/vm/mkimage-uboot.sh) and FLEET_VM_ACCEL (kvm or tcg).
# A scenario sets VM_BOOT=uboot before sourcing this for the arm64 guest
# with U-Boot (v11xx); the default is the x86-64 guest with GRUB (v10xx).
#
# One guest per test, in $T/vm: disk.img (a copy of the image with the
# device's data partition p4), console.log (the first serial port, every
# boot appended; printed into the test log at exit), cmd.sock (the second
# serial port: the guest runs one shell line at a time from it).  The
# guest reaches fleetd and its broker on 127.0.0.1 through QEMU's user
# network, where the host is 10.0.2.2; nothing else is reachable.
#
#   vm_setup               fleetd (--san 10.0.2.2) with broker, a trust root,
#                          bundles fleet-vm 1.1.0 (good), 1.2.0 (health check
#                          fails), 1.3.0 (never boots) uploaded; dev-vm
#                          enrolled and its state on the data partition
#   vm_start / vm_kill9    power on (QEMU in the background) / pull the plug
#   vm_up N                wait until the guest came up N times since the
#                          test began (its init printed "fleet-vm: up")
#   vm_sh CMD [SECS]       run CMD in the guest; its output, its status
#   vm_env NAME            a variable of the guest's bootloader environment
#                          (grub-editenv or fw_printenv)
#   vm_update VER          start an update of dev-vm to VER; prints the job
#   vm_job_done JOB        fleetd's job is final

VM_ID=dev-vm
VM_DIR=$T/vm
VM_GRUBENV=/boot/part/grub/grubenv
: "${FLEET_VM_ACCEL:=tcg}"
# bounds: a TCG boot of Debian's kernel takes 30-60 s here, KVM a few
if [ "$FLEET_VM_ACCEL" = kvm ]; then VM_SCALE=1; else VM_SCALE=6; fi
if [ "${VM_BOOT:=grub}" = uboot ]; then
	: "${FLEET_VM_IMG_UBOOT:?run through make check-vm}"
	FLEET_VM_IMG=$FLEET_VM_IMG_UBOOT
	VM_HW=qemu-arm64
	VM_ENV_LIST="fw_printenv fleet_slot fleet_try upgrade_available bootcount bootlimit"
	FLEET_VM_ACCEL=tcg # an arm64 guest on this x86-64 host: emulated
	VM_SCALE=10
else
	: "${FLEET_VM_IMG:?run through make check-vm}"
	VM_HW=qemu-x86_64
	VM_ENV_LIST="grub-editenv $VM_GRUBENV list"
fi
mkdir -p "$VM_DIR"

# Show the guest's console and the agent's log (read from the data
# partition of the disk, so it works after a kill -9 too) in the test log.
vm_dump() {
	local data
	[ -f "$VM_DIR/disk.img" ] || return 0
	echo "# ---- guest console ($VM_DIR/console.log) ----"
	sed 's/^/#   /' "$VM_DIR/console.log" 2>/dev/null | tr -d '\r' | tail -n 400
	echo "# ---- guest /data/agent.log ----"
	data=$(sed -n 's/.* data=\([0-9]*\) .*/\1/p' "$FLEET_VM_IMG/layout")
	debugfs -R "cat /agent.log" "$VM_DIR/disk.img?offset=$((data * 512))" 2>/dev/null |
		tail -n 300 | sed 's/^/#   /'
}
# shellcheck disable=SC2154 # rc is the trap's own
trap 'rc=$?; vm_dump; (exit $rc); cleanup' EXIT

vm_keys() {
	local k
	mkdir -p "$T/fw/keys"
	for k in root targets; do
		fleetctl -q keys generate --alg ed25519 --out "$T/fw/keys/$k" >/dev/null || return 1
	done
	fleetctl -q root init --root-key "$T/fw/keys/root" \
		--targets-key "$T/fw/keys/targets.pub" --expires 3650d --out "$T/fw/root.json"
}

# vm_bundle VER [KEY]: the slot image of release VER signed as fleet-vm VER
vm_bundle() {
	fleetctl -q bundle create --image "$FLEET_VM_IMG/slot-$1.ext4" --name fleet-vm \
		--version "$1" --security-version 1 --hardware "$VM_HW" \
		--key "${2:-$T/fw/keys/targets}" --out "$T/fw/fleet-vm-$1.fwb" >/dev/null
}

# The agent's configuration in the guest: enrolled on the host, then
# pointed at 10.0.2.2 and the guest's paths.
vm_agent_conf() {
	local d=$1
	sed -e 's/127\.0\.0\.1/10.0.2.2/g' -e "s#$d/state#/data/state#g" "$d/agent.conf"
	if [ "$VM_BOOT" = uboot ]; then
		printf '[boot]\nbackend = uboot\npath = /etc/fw_env.config\n'
	else
		printf '[boot]\nbackend = grub\npath = %s\n' "$VM_GRUBENV"
	fi
	cat <<EOF
bootlimit = 2

[slots]
a = /dev/vda2
b = /dev/vda3

[health]
command = /usr/local/sbin/fleet-health
timeout = 5m
EOF
}

# The device's data partition (p4): agent.conf and the state dir.
vm_disk() {
	local d=$1 data n
	mkdir -p "$VM_DIR/data"
	cp -a "$d/state" "$VM_DIR/data/state"
	vm_agent_conf "$d" >"$VM_DIR/data/agent.conf" || return 1
	data=$(sed -n 's/.* data=\([0-9]*\) .*/\1/p' "$FLEET_VM_IMG/layout")
	n=$(sed -n 's/.* data_sectors=\([0-9]*\).*/\1/p' "$FLEET_VM_IMG/layout")
	if [ "$VM_BOOT" = uboot ]; then cp "$FLEET_VM_IMG/flash1.img" "$VM_DIR/" || return 1; fi
	cp --sparse=always "$FLEET_VM_IMG/disk.img" "$VM_DIR/disk.img" &&
		mkfs.ext4 -q -F -L fleet-data -d "$VM_DIR/data" "$VM_DIR/data.ext4" $((n / 2))k &&
		dd if="$VM_DIR/data.ext4" of="$VM_DIR/disk.img" bs=512 seek="$data" \
			conv=notrunc,sparse status=none
}

vm_setup() {
	local tok v
	FLEETD_INIT_ARGS="--san 10.0.2.2" start_fleetd --with-broker
	login_admin
	vm_keys || return 1
	fleetctl -q root push "$T/fw/root.json" >/dev/null || return 1
	for v in 1.1.0 1.2.0 1.3.0; do
		vm_bundle "$v" && fleetctl -q bundle upload "$T/fw/fleet-vm-$v.fwb" >/dev/null ||
			return 1
	done
	tok=$(fleetctl -o json token create vm --enroll --uses 1 --ttl 1h | jq -r .token)
	agent_enroll "$VM_ID" "$tok" || return 1
	vm_disk "$(agent_dir "$VM_ID")"
}

# The machine: x86-64 PC with SeaBIOS, GRUB in the MBR, the command channel
# on the second serial port; or arm64 "virt" with Debian's U-Boot as
# firmware in the first flash bank, its environment in the second (the
# device's copy, $VM_DIR/flash1.img) and the command channel on a virtio
# console.
vm_machine() {
	if [ "$VM_BOOT" = uboot ]; then
		echo qemu-system-aarch64 -accel tcg -machine virt -cpu cortex-a57 -m 768
	else
		echo qemu-system-x86_64 -accel "$FLEET_VM_ACCEL" -machine pc -m 512
	fi
}
vm_board() {
	if [ "$VM_BOOT" = uboot ]; then
		echo -bios /usr/lib/u-boot/qemu_arm64/u-boot.bin \
			-drive "if=pflash,format=raw,index=1,file=$VM_DIR/flash1.img" \
			-device virtio-serial-pci -device virtconsole,chardev=cmd
	else
		echo -serial chardev:cmd
	fi
}

VM_PID=
vm_start() {
	rm -f "$VM_DIR/cmd.sock"
	# shellcheck disable=SC2046 # words (no blanks in $VM_DIR)
	$(vm_machine) -smp 1 -no-user-config -nodefaults -display none \
		-chardev file,id=con,path="$VM_DIR/console.log",append=on -serial chardev:con \
		-chardev socket,id=cmd,path="$VM_DIR/cmd.sock",server=on,wait=off $(vm_board) \
		-drive file="$VM_DIR/disk.img",format=raw,if=virtio \
		-netdev user,id=net0,net=10.0.2.0/24,host=10.0.2.2 \
		-device virtio-net-pci,netdev=net0 >>"$VM_DIR/qemu.log" 2>&1 &
	VM_PID=$!
	track "$VM_PID"
	log "power on: qemu pid $VM_PID ($FLEET_VM_ACCEL)"
}

# Pull the plug: SIGKILL to QEMU, so what the guest had not written out
# is lost; true once QEMU is gone.
vm_kill9() {
	kill -KILL "$VM_PID" 2>/dev/null
	wait "$VM_PID" 2>/dev/null
	! kill -0 "$VM_PID" 2>/dev/null
}

vm_boots() { grep -c 'fleet-vm: up' "$VM_DIR/console.log" 2>/dev/null; }
vm_up_n() { [ "$(vm_boots)" -ge "$1" ]; }
vm_up() { wait_until $((60 * VM_SCALE)) vm_up_n "$1"; }

vm_sh() {
	python3 "$FLEET_SRC/tests/vm/vmsh.py" "$VM_DIR/cmd.sock" "${2:-$((10 * VM_SCALE))}" "$1"
}

vm_env() { vm_sh "$VM_ENV_LIST" | tr -d '\r' | sed -n "s/^$1=//p"; }

vm_update() {
	fleetctl -o json update "$VM_ID" --bundle "fleet-vm@$1" | jq -r '.[0].job'
}

vm_job_done() { job_final "$1"; }

# bound of one update, reboots included
BOUND=$((100 * VM_SCALE))

# views_agree SLOT FW: the guest runs SLOT, its bootloader environment has
# no trial on SLOT, its agent says firmware FW on SLOT, and fleetd says the
# same.
views_agree() {
	local slot=$1 fw=$2 env st
	env=$(vm_sh "$VM_ENV_LIST" | tr -d '\r')
	printf '%s\n' "$env"
	grep -qx "fleet_slot=$slot" <<<"$env" && grep -qx upgrade_available=0 <<<"$env" &&
		grep -qx bootcount=0 <<<"$env" && ! grep -q '^fleet_try=.' <<<"$env" || return 1
	vm_sh "cat /proc/cmdline" | grep -Eq "fleet\.slot=$slot( |\$)" || return 1
	st=$(vm_sh "fleet-agent status -o json --config /data/agent.conf") || return 1
	jq -e --arg s "$slot" --arg f "$fw" \
		'.slot == $s and .firmware == $f and .boot.phase == "stable"' <<<"$st" || return 1
	fleetctl -o json devices show "$VM_ID" |
		jq -e --arg s "$slot" --arg f "$fw" '.slot == $s and .firmware == $f'
}

# run_update VER: start it, wait for fleetd's final state; the job id in JOB
run_update() {
	JOB=$(vm_update "$1")
	[ -n "$JOB" ] && [ "$JOB" != null ] && wait_until "$BOUND" vm_job_done "$JOB"
}

# --- power cuts (v1003, v1004) ------------------------------------------------------
# Good releases to go back and forth between: 1.1.0's image, also signed
# as 2.0.0, so that every good update is to another version.
vm_bundle_as() { # vm_bundle_as VER IMAGE_VER: IMAGE_VER's slot image signed as VER
	fleetctl -q bundle create --image "$FLEET_VM_IMG/slot-$2.ext4" --name fleet-vm \
		--version "$1" --security-version 1 --hardware "$VM_HW" \
		--key "$T/fw/keys/targets" --out "$T/fw/fleet-vm-$1.fwb" >/dev/null &&
		fleetctl -q bundle upload "$T/fw/fleet-vm-$1.fwb" >/dev/null
}

# The moments to cut at, each a condition on what fleetd or the console
# says about job $JOB (polled by wait_until, so the cut comes within a
# poll of the moment; the log says where it really fell).
job_in() { # job_in STATE...: fleetd's state of $JOB is one of them
	local s
	s=$(job_state "$JOB") || return 1
	for w in "$@"; do [ "$s" = "$w" ] && return 0; done
	return 1
}
job_pct() { # job_pct N: downloading, at least N % of the bundle fetched
	job_json "$JOB" | jq -e --argjson n "$1" \
		'.state == "downloading" and .total > 0 and .bytes * 100 >= .total * $n' >/dev/null
}
console_n() { # console_n N PATTERN: the console has at least N lines matching
	[ "$(grep -ac "$2" "$VM_DIR/console.log")" -ge "$1" ]
}

vm_restart() { # power on again and wait until the guest is up once more
	local n
	n=$(vm_boots)
	vm_start
	vm_up $((n + 1))
}

# cut_when WHAT COND...: wait (bounded) for COND, pull the plug, power on
# again; the log records fleetd's view of $JOB at the cut.  A COND that
# never holds fails the test (the moment was missed).
cut_when() {
	local what=$1
	shift
	if ! wait_until "$BOUND" "$@"; then
		fail "the moment to cut at ($what) came"
		return 1
	fi
	log "power cut $what: fleetd says $(job_json "$JOB" | jq -c '{state, bytes, total}')"
	check "power cut $what" vm_kill9
	check "the guest boots again after the cut $what" vm_restart
}

# after_cut STATE SLOT FW: $JOB ends STATE, and guest and fleetd agree that
# SLOT runs FW with no trial pending.
after_cut() {
	check "... the job ends" wait_until "$BOUND" vm_job_done "$JOB"
	check "... $JOB $1" sh -c "fleetctl -o json jobs show $JOB | jq -e '.state == \"$1\"'"
	check "... guest and fleetd agree: slot $2, $3, trial over" views_agree "$2" "$3"
}
