#!/usr/bin/env bash
# A staged rollout that completes (issue 10): four real simulated devices
# on fleetd with its broker, firmware-sample 1.1.0 in two waves (a canary,
# then the rest).  `rollout plan` with the same --id names exactly the
# devices, order and waves the engine then runs; `rollout watch` follows
# it to "completed" (exit 0) in plain lines; every device ends on 1.1.0
# with exactly one job of the rollout; status, list and the device rows
# in table mode and with -o json.  While the rollout runs its devices
# take no manual update or rollback (exit 5, naming the rollout); once it
# completed they do.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
check "upload fleet-sample 1.1.0" fleetctl bundle upload "$T/fw/fw-1.1.0.fwb"
TOK=$(fleetctl -o json token create ro --enroll --group g1 --uses 5 --ttl 1h | jq -r .token)
DEVS="dev-a dev-b dev-c dev-d"
for d in $DEVS; do
	check "enrol $d (simulated, group g1)" sim_agent "$d" "$TOK"
	agent_start_sim "$d"
done
all_online() { for d in $DEVS; do dev_online "$d" || return 1; done; }
wait_until 30 all_online || fail "the four devices come online"
on_fw() { dev_json "$1" | jq -e ".firmware == \"$2\"" >/dev/null; }
all_on() { for d in $DEVS; do on_fw "$d" "$1" || return 1; done; }
wait_until 15 all_on 1.0.0 || fail "fleetd sees 1.0.0 on every device"

FLAGS=(--bundle fleet-sample@1.1.0 --group g1 --waves 1,100% --soak 1s
	--health-window 2s --max-failures 10 --min-sample 2 --id spring)

# --- plan -------------------------------------------------------------------------
check "rollout plan (table)" sh -c "fleetctl rollout plan ${FLAGS[*]} >'$T/plan.txt' 2>'$T/plan.err'"
check_grep '^WAVE +STOP +ORDER +DEVICE' "... prints a table of waves and devices" cat "$T/plan.txt"
check_true "... one line per device" test "$(grep -c '^[12] ' "$T/plan.txt")" -eq 4
check_grep 'plan spring: fleet-sample 1.1.0 to 4 device' "... and a summary on stderr" cat "$T/plan.err"
check "rollout plan -o json" sh -c "fleetctl -o json rollout plan ${FLAGS[*]} >'$T/plan.json'"
check "... waves of 1 and 3 devices, nothing excluded, nobody busy" jq -e \
	'(.waves | map(.devices | length)) == [1, 3] and .excluded == [] and .busy == []
	 and .id == "spring" and .id_generated == false and .total == 4' "$T/plan.json"
jq -r '.waves[] | .wave as $w | .devices[] | "\($w) \(.)"' "$T/plan.json" >"$T/plan.order"
check "a plan without --id picks an id and says how to run it" sh -c \
	"fleetctl rollout plan --bundle fleet-sample@1.1.0 --group g1 2>&1 >/dev/null | grep -q 'pass --id r-[0-9a-f]* to .rollout create.'"
check_exit 0 "planning wrote nothing" sh -c \
	"fleetctl -o json rollout list | jq -e 'length == 0'"

# --- run ----------------------------------------------------------------------------
check "rollout create (table)" sh -c "fleetctl rollout create ${FLAGS[*]} >'$T/create.txt'"
check_grep '^state: +running' "... prints the rollout, running" cat "$T/create.txt"
fleetctl -o json rollout status spring --devices >"$T/run0.json"
jq -r '.devices | sort_by(.order)[] | "\(.wave) \(.device)"' "$T/run0.json" >"$T/run.order"
check "plan == run: same devices, same order, same waves" cmp "$T/plan.order" "$T/run.order"
# its devices take update and rollback jobs from the rollout only: one
# still pending in wave 2 has no job yet, and still gets none by hand
W2=$(awk '$1 == 2 {print $2}' "$T/plan.order" | tail -n 1)
check_exit 5 "a manual update of $W2 (pending in the rollout) is refused (exit 5)" \
	fleetctl update "$W2" --bundle fleet-sample@1.1.0
check_grep "device $W2 is in rollout spring \\(running\\) until it ends" \
	"... saying which rollout holds it" fleetctl update "$W2" --bundle fleet-sample@1.1.0
check_exit 5 "... so is a manual rollback (exit 5)" fleetctl rollback --device "$W2"
check_exit 0 "rollout watch follows it to completed (exit 0)" \
	timeout 120 fleetctl rollout watch spring --interval 1s --timeout 100s
cp "$T/last.out" "$T/watch.out"
check_grep '^spring running wave 1/2' "... plain lines when not on a TTY" cat "$T/watch.out"
check_grep '^spring completed wave 2/2: 4/4 done \(4 healthy, 0 failed' "... ending with completed" cat "$T/watch.out"
check_true "... one line per change, not per poll" test "$(wc -l <"$T/watch.out")" -lt 40
if wait_until 10 all_on 1.1.0; then pass "every device runs 1.1.0"
else fail "every device runs 1.1.0"; fi
check "status -o json: completed, 4 healthy, gate untouched" sh -c \
	"fleetctl -o json rollout status spring | jq -e '.state == \"completed\" and .counts.healthy == 4 and .counts.failed == 0 and .gate.tripped == false and .gate.finished == 4 and .wave == 2 and .waves_total == 2 and .finished != null and (.waves | map(.done != null) | all)'"
for d in $DEVS; do
	check "$d has exactly one job of the rollout, succeeded" sh -c \
		"fleetctl -o json jobs list --device $d | jq -e '[.[] | select(.rollout == \"spring\")] | length == 1 and .[0].state == \"succeeded\" and .[0].created_by == \"rollout:spring\"'"
done
check "status --devices (table)" sh -c "fleetctl rollout status spring --devices >'$T/status.txt'"
check_grep '^state: +completed' "... the summary" cat "$T/status.txt"
check_grep '^gate: +0 failed of 4 finished' "... the gate's values" cat "$T/status.txt"
check_grep '^WAVE +STOP +DEVICES +PENDING' "... the waves" cat "$T/status.txt"
check_grep '^dev-[abcd] +[12] +[1-4] +healthy +j-' "... the device rows" cat "$T/status.txt"
check "rollout list (table)" sh -c "fleetctl rollout list | grep -q '^spring  *completed  *2/2  *1.1.0  *4  *4  *0 '"
check "rollout list -o json" sh -c "fleetctl -o json rollout list --state completed | jq -e 'length == 1 and .[0].id == \"spring\"'"
check_exit 0 "list --state running is empty" sh -c "fleetctl -o json rollout list --state running | jq -e 'length == 0'"
as_json() { api GET "$1" -H "Authorization: Bearer $ADMIN_TOKEN"; }
log_ok() {
	as_json '/api/v1/rollouts/spring?events=1' | jq -e '[.events[].kind] |
		(index("completed") and index("wave-started") and
		 index("wave-finished") and index("healthy") and index("commanded"))'
}
check "the decision log names each step" log_ok
audited() {
	as_json '/api/v1/audit?limit=200' | jq -e '[.[] | select(.method == "ENGINE"
		and .path == "/api/v1/rollouts/spring/completed")] | length == 1'
}
check "engine decisions are audited (method ENGINE)" audited
# on a terminal (script gives it one): the live view, redrawn
tty_watch() { script -qec "fleetctl rollout watch spring --interval 1s" /dev/null; }
check_exit 0 "watch on a TTY exits 0 for the completed rollout" tty_watch
check_grep 'rollout spring  \[#{30}\] 4/4  completed' "... drawing a progress bar" tty_watch
check_grep $'\033\\[H\033\\[2J' "... over a cleared screen" tty_watch
check_grep '^WAVE +STOP +DEVICES +PENDING' "... with the waves' counts" tty_watch
check_exit 1 "positive control: plain lines draw no bar" grep -q '\[####' "$T/watch.out"
check_exit 5 "a completed rollout cannot be paused (exit 5)" fleetctl rollout pause spring
check "its devices are free again: a manual rollback of $W2 succeeds" \
	fleetctl rollback --device "$W2" --wait --timeout 60s
check_exit 3 "an unknown rollout is not found (exit 3)" fleetctl rollout status nosuch
for d in $DEVS; do agent_stop "$d"; done
finish
