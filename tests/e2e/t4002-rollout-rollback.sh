#!/usr/bin/env bash
# Rollouts that go wrong, and fleet-level rollback (issue 10), on real
# simulated devices:
#  - firmware-sample 1.2.0 fails its health check on the canary: the
#    gate trips in wave 1, the rollout ends rolled-back with the reason,
#    `rollout watch` exits 1, and no device outside wave 1 ever gets a
#    job or the bundle;
#  - a completed rollout is rolled back by hand (`fleetctl rollback
#    ROLLOUT --wait`): every device it updated goes back to 1.0.0;
#  - a canary that never answers fails at its device timeout while the
#    other canary updated: the gate trips and the updated one is rolled
#    back by itself, followed to its end.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
for v in 1.1.0 1.2.0; do
	check "upload fleet-sample $v" fleetctl bundle upload "$T/fw/fw-$v.fwb"
done
TOK=$(fleetctl -o json token create ro --enroll --group g1 --uses 6 --ttl 1h | jq -r .token)
DEVS="dev-a dev-b dev-c dev-d"
for d in $DEVS dev-e; do
	check "enrol $d (simulated, group g1)" sim_agent "$d" "$TOK"
done
for d in $DEVS; do agent_start_sim "$d"; done # dev-e stays off
all_online() { for d in $DEVS; do dev_online "$d" || return 1; done; }
wait_until 30 all_online || fail "the four devices come online"
on_fw() { dev_json "$1" | jq -e ".firmware == \"$2\"" >/dev/null; }
all_on() { for d in $DEVS; do on_fw "$d" "$1" || return 1; done; }
wait_until 15 all_on 1.0.0 || fail "fleetd sees 1.0.0 on every device"
rollout_json() { fleetctl -o json rollout status "$1"; }
# holds DEV SLOT VERSION: 0 when the slot's file is that firmware
holds() { [ -f "$(agent_dir "$1")/sim/slot-$2" ] && cmp -s "$(agent_dir "$1")/sim/slot-$2" "$T/fw/fw-$3"; }
jobs_in() { fleetctl -o json jobs list --device "$1" | jq "[.[] | select(.rollout == \"$2\")] | length"; }

# --- 1.2.0: the canary fails its health check, the gate trips in wave 1 --------
check "create rollout bad: 1.2.0, canary dev-c" fleetctl -q rollout create \
	--bundle fleet-sample@1.2.0 --device dev-a --device dev-b --device dev-c \
	--device dev-d --canary dev-c --waves 1,50%,100% --soak 0s \
	--health-window 2s --id bad
check_exit 1 "rollout watch exits 1: rolled back" \
	timeout 200 fleetctl rollout watch bad --interval 1s --timeout 180s
cp "$T/last.out" "$T/watch-bad.out"
check_grep 'rollout bad rolled back: gate tripped: 1 of 1 finished device\(s\) failed \(100% > 10%\)' \
	"... saying why" cat "$T/watch-bad.out"
check_grep '^bad failed: dev-c \(wave 1\): update rolled-back: health check failed' \
	"... and naming the failed device with its reason" cat "$T/watch-bad.out"
bad_ok() {
	rollout_json bad | jq -e '.state == "rolled-back" and .wave == 1
		and .counts.failed == 1 and .counts.skipped == 3
		and .gate.tripped == true
		and (.reason | startswith("gate tripped"))
		and .failures[0].device == "dev-c"'
}
check "status: rolled-back in wave 1, 1 failed, 3 never started" bad_ok
check "dev-c: one job, rolled-back by the device" sh -c \
	"fleetctl -o json jobs list --device dev-c | jq -e '[.[] | select(.rollout == \"bad\")] | length == 1 and .[0].state == \"rolled-back\"'"
for d in dev-a dev-b dev-d; do
	check_true "$d (outside wave 1) got no job of the rollout" test "$(jobs_in "$d" bad)" -eq 0
	check_exit 1 "$d's slot b never held 1.2.0" holds "$d" b 1.2.0
	check_exit 1 "$d's agent never heard of 1.2.0" grep -q '1\.2\.0' "$(agent_dir "$d")/agent.log"
done
check "the rollout made one job in all: dev-c's (jobs list --rollout)" sh -c \
	"fleetctl -o json jobs list --rollout bad | jq -e 'length == 1 and .[0].device == \"dev-c\"'"
check_grep '1\.2\.0' "positive control: dev-c's agent did" cat "$(agent_dir dev-c)/agent.log"
check_exit 0 "positive control: dev-c's slot b holds the rejected 1.2.0" holds dev-c b 1.2.0
if wait_until 15 on_fw dev-c 1.0.0; then pass "dev-c is back on 1.0.0"
else fail "dev-c is back on 1.0.0"; fi
check_true "dev-c boots slot a again" test "$(sim_var dev-c fleet_slot)" = a

# --- a completed rollout, rolled back by hand ------------------------------------
check "create rollout good: 1.1.0 to all four" fleetctl -q rollout create \
	--bundle fleet-sample@1.1.0 --device dev-a --device dev-b --device dev-c \
	--device dev-d --waves 100% --soak 0s --health-window 1s --id good
check_exit 0 "it completes" timeout 200 fleetctl rollout watch good --interval 1s --timeout 180s
wait_until 15 all_on 1.1.0 || fail "every device runs 1.1.0"
check_exit 0 "rollback good --wait: every updated device goes back (exit 0)" \
	timeout 200 fleetctl rollback good --wait --timeout 180s
if wait_until 15 all_on 1.0.0; then pass "every device is back on 1.0.0"
else fail "every device is back on 1.0.0"; fi
good_back() {
	rollout_json good | jq -e '.state == "rolled-back" and .counts["rolled-back"] == 4
		and .reason == "rollback by \(.created_by)"'
}
check "status: rolled-back, 4 devices rolled back, by the operator" good_back
for d in $DEVS; do
	check "$d: one update and one rollback job of the rollout" sh -c \
		"fleetctl -o json jobs list --device $d | jq -e '[.[] | select(.rollout == \"good\") | .type] | sort == [\"rollback\", \"update\"]'"
done
check_exit 5 "a rolled-back rollout cannot be rolled back again (exit 5)" fleetctl rollback good

# --- a canary times out, the other one updated: rolled back by itself ---------
check "create rollout late: canaries dev-a and dev-e (off), timeout 15s" \
	fleetctl -q rollout create --bundle fleet-sample@1.1.0 --device dev-a \
	--device dev-e --device dev-b --canary dev-a --canary dev-e --waves 2,100% \
	--soak 0s --health-window 1s --device-timeout 15s --min-sample 2 --id late
check_exit 1 "rollout watch exits 1: rolled back" \
	timeout 200 fleetctl rollout watch late --interval 1s --timeout 180s
cp "$T/last.out" "$T/watch-late.out"
check_grep 'late failed: dev-e \(wave 1\): update expired' "... dev-e failed at its timeout" cat "$T/watch-late.out"
late_ok() {
	rollout_json late | jq -e '.state == "rolled-back" and .counts["rolled-back"] == 1
		and .counts.failed == 1 and .counts.skipped == 1
		and (.reason | startswith("gate tripped: 1 of 2"))'
}
check "status: dev-a rolled back, dev-e failed, dev-b never started" late_ok
if wait_until 15 on_fw dev-a 1.0.0; then pass "dev-a is back on 1.0.0"
else fail "dev-a is back on 1.0.0"; fi
check_true "dev-b got no job of the rollout" test "$(jobs_in dev-b late)" -eq 0
for d in $DEVS; do agent_stop "$d"; done
finish
