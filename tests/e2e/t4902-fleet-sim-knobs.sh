#!/usr/bin/env bash
# fleet-sim's failure knobs against a real fleetd (issue 10):
#  --install-delay: an update waits "installed" that long before the
#    switch (the job shows it);
#  --crash-in-soak: the trial boot of an update loses power before its
#    health check, every time, until the bootloader's boot counter falls
#    back: the update ends rolled-back, "did not confirm within 3 boots",
#    and the device is on its old slot and version;
#  --flap-every: connections drop as a network would (the broker
#    publishes the will) and come back by themselves.
# A device the knob does not pick (a positive control) updates fine, and
# a rollback (no trial of an update) of a picked one is not cut.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

N=6
S=$T/sim

start_fleetd --with-broker
login_admin
ota_fleet_ready
TOK=$(fleetctl -o json token create sims --enroll --uses $N --ttl 1h | jq -r .token)

sim_start() {
	(exec fleet-sim run --count $N --dir "$S" --server "$FLEET_URL" \
		--ca "$FLEET_CA_FILE" --token "$TOK" --image "$T/fw/fw-1.0.0" \
		--log-level info "$@" >>"$T/sim.out" 2>>"$T/sim.log") &
	SIM_PID=$!
	track "$SIM_PID"
}
sim_stop() {
	local i
	kill -TERM "$SIM_PID"
	for ((i = 0; i < 100 * WAIT_SCALE; i++)); do
		kill -0 "$SIM_PID" 2>/dev/null || break
		sleep 0.1
	done
	wait "$SIM_PID"
}
online_count() { fleetctl -o json devices list | jq '[.[] | select(.online)] | length'; }
all_online() { [ "$(online_count)" = "$N" ]; }
stat_is() { fleet-sim status --dir "$S" -o json | jq -e "$1" >/dev/null; }
sim_env() { fw_printenv -n -c "$S/$1/sim/fw_env.config" "$2" 2>/dev/null; }
job_of() { fleetctl -o json jobs list --device "$1" | jq -r '.[0].id'; }
epoch() { date -d "$1" +%s; }

# --- network flaps ---------------------------------------------------------------
sim_start --flap-every 1s
if wait_until 90 all_online; then pass "$N devices online"
else fail "$N devices online"; fi
if wait_until 30 stat_is '.flaps >= 12'; then pass "--flap-every 1s: connections drop"
else fail "--flap-every 1s: connections drop"; fi
check_grep 'dropping the connection \(sim: network flap\)' "... as the log says" cat "$T/sim.log"
check_grep 'connected to .* \(session resumed\)' "... and come back on their session" cat "$T/sim.log"
if wait_until 10 stat_is '.online >= 4'; then pass "... while most stay online at any time"
else fail "... while most stay online at any time"; fi
check "updates still go through the flapping" \
	fleetctl update sim-0003 sim-0006 --bundle fleet-sample@1.1.0 --wait --timeout 120s
sim_stop
check_true "SIGTERM: exit 0" test $? = 0

# --- install delay and crashes in the trial boot ------------------------------
# with seed 0, --crash-in-soak 50 picks sim-0001 and sim-0006 of
# sim-0001..6 (sim_knobs.c; pinned by test_sim_knobs)
: >"$T/sim.log"
sim_start --crash-in-soak 50 --install-delay 3s
wait_until 60 all_online || fail "all online for the crashes"
check "positive control: sim-0002 (not picked) updates fine" \
	fleetctl update sim-0002 --bundle fleet-sample@1.1.0 --wait --timeout 120s
J=$(job_of sim-0002)
installed=$(fleetctl -o json jobs show "$J" | jq -r '[.events[] | select(.state == "installed")][0].ts')
rebooting=$(fleetctl -o json jobs show "$J" | jq -r '[.events[] | select(.state == "rebooting")][0].ts')
check_true "--install-delay 3s: it stayed installed for about 3 s ($installed .. $rebooting)" \
	test $(($(epoch "$rebooting") - $(epoch "$installed"))) -ge 2
check_exit 1 "sim-0001 (picked) does not succeed (exit 1)" \
	fleetctl update sim-0001 --bundle fleet-sample@1.1.0 --wait --timeout 120s
J=$(job_of sim-0001)
check "... rolled-back: the bootloader fell back after 3 boots" sh -c \
	"fleetctl -o json jobs show $J | jq -e '.state == \"rolled-back\" and (.reason | test(\"did not confirm within 3 boots\"))'"
check_true "... on slot a again, no trial" \
	test "$(sim_env sim-0001 fleet_slot)/$(sim_env sim-0001 upgrade_available)" = a/0
check_true "... slot b holds the new build, never confirmed" cmp -s "$S/sim-0001/sim/slot-b" "$T/fw/fw-1.1.0"
check_true "... three power cuts of the trial boot" \
	test "$(grep -c 'sim-0001: sim: power cut during the trial boot' "$T/sim.log")" = 3
check_grep 'sim-0001: sim: power-on [0-9]+: booted slot a after falling back' \
	"... then the bootloader fell back" cat "$T/sim.log"
fw_is() { fleetctl -o json devices show "$1" | jq -e ".firmware == \"$2\"" >/dev/null; }
if wait_until 10 fw_is sim-0001 1.0.0; then pass "... fleetd sees 1.0.0 again"
else fail "... fleetd sees 1.0.0 again"; fi
check "a rollback is no trial of an update: picked sim-0006 goes back to 1.0.0 uncut" \
	fleetctl rollback --device sim-0006 --wait --timeout 60s
check_exit 1 "... no power cut for it" grep -q 'sim-0006: sim: power cut' "$T/sim.log"
if wait_until 10 stat_is '.crashes == 3 and .jobs.succeeded == 2 and .jobs["rolled-back"] == 1'; then
	pass "fleet-sim status: 3 crashes, 2 succeeded, 1 rolled back"
else fail "fleet-sim status: 3 crashes, 2 succeeded, 1 rolled back"; fi
sim_stop
check_true "SIGTERM: exit 0" test $? = 0
finish
