#!/usr/bin/env bash
# Staged rollouts on 50 simulated devices (issue 10), waves 2% / 10% /
# 50% / 100%, on fleet-sim against fleetd and its broker:
#  - `rollout plan` names exactly the devices, order and waves the engine
#    then runs, for both rollouts below;
#  - firmware-sample 1.2.0 fails its health check: the gate trips in
#    wave 1 (one device), the rollout ends rolled-back, no device outside
#    wave 1 receives the bundle (fleetd made no job for it, and its own
#    command log, OTA journal and slots never saw it), and the device that
#    took it is back on 1.0.0 by its own account;
#  - firmware-sample 1.1.0 then completes over all four waves: every
#    device on 1.1.0, one job each.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

N=50
S=$T/sim
start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
for v in 1.1.0 1.2.0; do
	check "upload fleet-sample $v" fleetctl bundle upload "$T/fw/fw-$v.fwb"
done
sim_start sim $N w g50
DEVS=$(seq -f 'w-%04g' 1 $N)
on_fw_count() {
	fleetctl -o json devices list |
		jq -e "[.[] | select(.online and .firmware == \"$1\")] | length == $N" >/dev/null
}
if wait_until 120 on_fw_count 1.0.0; then pass "$N simulated devices online in fleetd, all on 1.0.0"
else fail "$N simulated devices online in fleetd, all on 1.0.0"; fi

WAVES=(--waves 2%,10%,50%,100% --soak 0s --health-window 2s)
# plan_order ID ARGS...: "WAVE DEVICE" lines of `rollout plan`, in order
plan_order() {
	local id=$1
	shift
	fleetctl -o json rollout plan --group g50 "${WAVES[@]}" --id "$id" "$@" |
		jq -r '.waves[] | .wave as $w | .devices[] | "\($w) \(.)"'
}
# run_order ID: the same lines from the rollout's device rows
run_order() {
	fleetctl -o json rollout status "$1" --devices |
		jq -r '.devices | sort_by(.order)[] | "\(.wave) \(.device)"'
}
rollout_json() { fleetctl -o json rollout status "$1"; }
dev_dir() { printf '%s/%s' "$S" "$1"; }
# cmds DEV: the command log's entries, "ID TYPE" per line (the agent
# writes the log at its first command: none yet, no file)
cmds() {
	local f
	f=$(dev_dir "$1")/state/commands.json
	[ ! -e "$f" ] || jq -r '.commands[] | "\(.id) \(.type)"' "$f"
}

# --- 1.2.0: the gate trips in wave 1 ------------------------------------------
plan_order bad --bundle fleet-sample@1.2.0 >"$T/plan-bad.order"
check "rollout plan bad (table)" sh -c "fleetctl rollout plan --group g50 ${WAVES[*]} \
	--id bad --bundle fleet-sample@1.2.0 >'$T/plan-bad.txt'"
check "... names the same devices in the same waves and order as -o json" sh -c \
	"awk '\$1 ~ /^[1-4]\$/ {print \$1, \$4}' '$T/plan-bad.txt' | cmp - '$T/plan-bad.order'"
check_true "plan bad: 50 devices in waves of 1, 4, 20 and 25" test \
	"$(cut -d' ' -f1 "$T/plan-bad.order" | uniq -c | awk '{printf "%s ", $1}')" = "1 4 20 25 "
check "create rollout bad: 1.2.0 to group g50" fleetctl -q rollout create \
	--bundle fleet-sample@1.2.0 --group g50 "${WAVES[@]}" --id bad
run_order bad >"$T/run-bad.order"
check "plan == run (bad): same devices, same order, same waves" \
	cmp "$T/plan-bad.order" "$T/run-bad.order"
CANARY=$(awk '$1 == 1 {print $2}' "$T/plan-bad.order")
check_exit 1 "rollout watch bad exits 1: rolled back" \
	timeout 300 fleetctl rollout watch bad --interval 1s --timeout 280s
cp "$T/last.out" "$T/watch-bad.out"
check_grep "^bad failed: $CANARY \\(wave 1\\): update rolled-back: health check failed" \
	"... naming the wave-1 device and its reason" cat "$T/watch-bad.out"
bad_ok() {
	rollout_json bad | jq -e '.state == "rolled-back" and .wave == 1
		and .gate.tripped == true and .counts.failed == 1
		and .counts.skipped == 49 and (.reason | startswith("gate tripped"))
		and ([.waves[] | select(.started != null)] | length) == 1'
}
check "status -o json: rolled-back in wave 1, 1 failed, 49 never started" bad_ok
check "status (table)" sh -c "fleetctl rollout status bad --devices >'$T/status-bad.txt'"
check_grep '^state: +rolled-back' "... the state" cat "$T/status-bad.txt"
check_grep '^gate: +1 failed of 1 finished' "... the gate's values" cat "$T/status-bad.txt"
check_grep "^$CANARY +1 +1 +failed +j-" "... the wave-1 device's row" cat "$T/status-bad.txt"
check_true "... 49 device rows skipped" test \
	"$(grep -cE '^w-[0-9]{4} +[234] +[0-9]+ +skipped' "$T/status-bad.txt")" -eq 49

# fleetd's side: one job, the wave-1 device's
fleetctl -o json jobs list --rollout bad >"$T/jobs-bad.json"
check "jobs list --rollout bad: one job, $CANARY's, rolled-back" jq -e \
	"length == 1 and .[0].device == \"$CANARY\" and .[0].state == \"rolled-back\"" "$T/jobs-bad.json"
BADCMD=$(fleetctl -o json jobs show "$(jq -r '.[0].id' "$T/jobs-bad.json")" | jq -r .command)
check "jobs list --rollout bad (table): one row" sh -c \
	"fleetctl jobs list --rollout bad | grep -cE '^j-[0-9a-f]+ ' | grep -qx 1"
fleetctl -o json jobs list --limit 1000 >"$T/jobs-all.json"
check "no job of any kind for a device outside wave 1" jq -e \
	"[.[] | select(.device != \"$CANARY\")] | length == 0" "$T/jobs-all.json"

# the devices' side: the command log, the OTA journal and the slots
# untouched DEV: nothing of an update reached DEV: no command in its
# command log, no job in its OTA journal, slot b never written, and
# 1.2.0 nowhere in its state
untouched() {
	local dd
	dd=$(dev_dir "$1")
	[ -z "$(cmds "$1")" ] && [ ! -e "$dd/sim/slot-b" ] &&
		jq -e '.job == null and .slots.b.version == null' "$dd/state/ota.json" &&
		! grep -rq '1\.2\.0' "$dd/state"
}
touched=
for d in $DEVS; do
	[ "$d" = "$CANARY" ] || untouched "$d" >/dev/null 2>&1 || touched="$touched $d"
done
check_true "the 49 devices outside wave 1 logged no command, journaled no job, never wrote slot b (touched:${touched:- none})" \
	test -z "$touched"
check_true "positive control: $CANARY logged the rollout's command $BADCMD" \
	test "$(cmds "$CANARY")" = "$BADCMD update"
check "positive control: $CANARY's slot b holds the rejected 1.2.0" \
	cmp "$(dev_dir "$CANARY")/sim/slot-b" "$T/fw/fw-1.2.0"
check "... its OTA journal: the job rolled-back, slot b 1.2.0" jq -e \
	'.job.state == "rolled-back" and .slots.b.version == "1.2.0"' "$(dev_dir "$CANARY")/state/ota.json"
sim_env() { fw_printenv -n -c "$(dev_dir "$1")/sim/fw_env.config" "$2" 2>/dev/null; }
check_true "$CANARY is back on slot a (1.0.0), trial over (its bootloader)" \
	test "$(sim_env "$CANARY" fleet_slot)/$(sim_env "$CANARY" upgrade_available)" = a/0
check "... slot a still holds 1.0.0" cmp "$(dev_dir "$CANARY")/sim/slot-a" "$T/fw/fw-1.0.0"
stat_is() { fleet-sim status --dir "$S" -o json | jq -e "$1" >/dev/null; }
if wait_until 15 stat_is '.firmware == {"1.0.0": 50} and .jobs["rolled-back"] == 1'; then
	pass "fleet-sim: all 50 run 1.0.0, one update rolled back"
else fail "fleet-sim: all 50 run 1.0.0, one update rolled back"; fi
if wait_until 15 on_fw_count 1.0.0; then pass "fleetd sees all 50 on 1.0.0"
else fail "fleetd sees all 50 on 1.0.0"; fi

# --- 1.1.0: completes over four waves -------------------------------------------
plan_order good --bundle fleet-sample@1.1.0 >"$T/plan-good.order"
check "create rollout good: 1.1.0 to group g50" fleetctl -q rollout create \
	--bundle fleet-sample@1.1.0 --group g50 "${WAVES[@]}" --id good
run_order good >"$T/run-good.order"
check "plan == run (good): same devices, same order, same waves" \
	cmp "$T/plan-good.order" "$T/run-good.order"
check_true "... another id, another order" test "$(cut -d' ' -f2 "$T/plan-good.order")" != \
	"$(cut -d' ' -f2 "$T/plan-bad.order")"
check_exit 0 "rollout watch good exits 0: completed" \
	timeout 400 fleetctl rollout watch good --interval 1s --timeout 380s
cp "$T/last.out" "$T/watch-good.out"
check_grep '^good completed wave 4/4: 50/50 done \(50 healthy, 0 failed' \
	"... ending with completed, 50 healthy" cat "$T/watch-good.out"
# each wave started only after the one before it was done
waves_ok() {
	rollout_json good | jq -e '[.waves[] | .devices] == [1, 4, 20, 25]
		and ([.waves[] | .counts.healthy] == [1, 4, 20, 25])
		and ([range(1; 4) as $i | .waves[$i].started >= .waves[$i - 1].done] | all)'
}
check "status -o json: waves of 1, 4, 20, 25, all healthy, in order" waves_ok
# watch's lines: wave K runs only once the devices of the waves before
# it (1, 5, 25 in all) are done
waves_waited() {
	awk '/^good running wave/ { split($4, w, "/"); split($5, d, "/")
		need = w[1] == 2 ? 1 : w[1] == 3 ? 5 : w[1] == 4 ? 25 : 0
		if (d[1] + 0 < need) bad = 1 } END { exit bad }' "$T/watch-good.out"
}
check "... no wave started before the waves before it were done (watch)" waves_waited
check "status (table)" sh -c "fleetctl rollout status good >'$T/status-good.txt'"
check_grep '^state: +completed' "... completed" cat "$T/status-good.txt"
check_grep '^wave: +4 of 4' "... in wave 4 of 4" cat "$T/status-good.txt"
check_true "... four wave lines" test "$(grep -cE '^[1-4] +(2|10|50|100)% ' "$T/status-good.txt")" -eq 4
fleetctl -o json jobs list --rollout good --limit 1000 >"$T/jobs-good.json"
check "one succeeded job per device" jq -e \
	"length == $N and ([.[].device] | unique | length) == $N and ([.[].state] | unique) == [\"succeeded\"]" \
	"$T/jobs-good.json"
if wait_until 15 stat_is '.firmware == {"1.1.0": 50} and .jobs.succeeded == 50'; then
	pass "fleet-sim: all 50 run 1.1.0, 50 updates succeeded"
else fail "fleet-sim: all 50 run 1.1.0, 50 updates succeeded"; fi
if wait_until 15 on_fw_count 1.1.0; then pass "fleetd sees all 50 on 1.1.0"
else fail "fleetd sees all 50 on 1.1.0"; fi
kill -TERM "$SIM_PID"
wait_until 10 sh -c "! kill -0 $SIM_PID" || fail "fleet-sim stops on SIGTERM"
wait "$SIM_PID"
check_true "fleet-sim stops with exit 0" test $? -eq 0
finish
