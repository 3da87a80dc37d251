#!/usr/bin/env bash
# fleetd killed with -9 at random moments during rollouts (issue 10):
# 30 fleet-sim devices; a rollout of 1.1.0 in five waves runs while
# fleetd is killed -9 ten times and restarted on the same state dir each
# time.  It completes as without kills: every device on 1.1.0 (its
# slots and fleetd say so), one job per device in the rollout (fleetd),
# one update command id per device, run once (the device's own record of
# what it received).  The whole rollout rolled back by hand through 4
# kills: the same for its rollback jobs, every device on 1.0.0 again.  A
# bad bundle (1.2.0, its health check fails) ends rolled-back with the
# same counts with and without 4 kills.
# The kill moments come from $RANDOM seeded by FLEET_KILL_SEED (logged):
#   FLEET_KILL_SEED=1234 make check T=t4007   replays them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

N=30
S=$T/sim
SEED=${FLEET_KILL_SEED:-$(((RANDOM << 15 | RANDOM) % 100000))}
RANDOM=$SEED
log "FLEET_KILL_SEED=$SEED (set it to replay these kill moments)"

start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
for v in 1.1.0 1.2.0; do
	check "upload fleet-sample $v" fleetctl bundle upload "$T/fw/fw-$v.fwb"
done
fleetctl -o json token create k9 --enroll --group k9 --uses $N --ttl 1h |
	jq -r .token >"$T/token"
(exec fleet-sim run --count $N --dir "$S" --prefix k9 --install-delay 3s \
	--server "$FLEET_URL" --ca "$FLEET_CA_FILE" --token-file "$T/token" \
	--image "$T/fw/fw-1.0.0" --log-level info >"$T/sim.out" 2>"$T/sim.log") &
track $!
DEVS=$(seq -f 'k9-%04g' 1 $N)
online_count() { fleetctl -o json devices list --group k9 | jq '[.[] | select(.online)] | length'; }
all_online() { [ "$(online_count)" = $N ]; }
if wait_until 120 all_online; then pass "$N fleet-sim devices enrol into group k9, online"
else fail "$N fleet-sim devices enrol into group k9, online"; fi

# kill_rounds ROLLOUT K MIN_MS SPAN_MS: K times, after a random MIN to
# MIN+SPAN ms (the kill moment; not a wait for anything), note the
# rollout's state, kill -9 fleetd and restart it; MIDWAY counts the
# rounds that found the rollout at work (running or rolling back).
MIDWAY=0
kill_rounds() {
	local r=$1 k=$2 min=$3 span=$4 i ms st old
	for ((i = 1; i <= k; i++)); do
		ms=$((min + RANDOM % span))
		sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
		st=$(fleetctl -o json rollout status "$r" |
			jq -r '"\(.state) in wave \(.wave)/\(.waves_total) \(.counts | with_entries(select(.value > 0)) | tostring)"')
		old=$FLEETD_PID
		log "$r kill #$i: ${ms} ms after the last start, rollout $st"
		[[ $st == running* || $st == rolling-back* ]] && MIDWAY=$((MIDWAY + 1))
		check "$r kill -9 #$i (rollout $st): fleetd $old is gone" fleetd_kill9
		check_exit 1 "... no process $old any more" kill -0 "$old"
		check "... restarts on the same state dir and ports" fleetd_restart --with-broker
		check_true "... as a new process ($FLEETD_PID), alive" \
			test "$FLEETD_PID" != "$old" -a -d "/proc/$FLEETD_PID"
	done
}
# rollout_json R [ARGS]
rollout_json() { fleetctl -o json rollout status "$@"; }
# jobs_of R TYPE: "DEVICE JOB COMMAND" for each TYPE job of rollout R
jobs_of() {
	fleetctl -o json jobs list --rollout "$1" --limit 1000 |
		jq -r --arg t "$2" '.[] | select(.type == $t) | .device + " " + .id + " " + .command' | sort
}
# mark: how many commands each device received so far (its own record,
# commands.received: "ID TYPE JOB" a delivery)
mark() {
	local d
	for d in $DEVS; do
		printf '%s %s\n' "$d" "$(cat "$S/$d/state/commands.received" 2>/dev/null | wc -l)"
	done >"$T/mark"
}
# got D TYPE: "ID JOB" of each TYPE command D received since the mark
got() {
	local n
	n=$(awk -v d="$1" '$1 == d {print $2}' "$T/mark")
	tail -n +$((n + 1)) "$S/$1/state/commands.received" 2>/dev/null |
		awk -v t="$2" '$2 == t {print $1, $3}'
}
# once R TYPE: fleetd has at most one TYPE job per device in rollout R;
# the device received, since the mark, that job's command id and no
# other TYPE command (the same id again is a resend after a crash:
# REPEATS counts those), and ran it once
once() {
	local d n job cmd ids runs bad=0 f=$T/jobs-$1-$2
	jobs_of "$1" "$2" >"$f" || return 1
	for d in $DEVS; do
		n=$(grep -c "^$d " "$f")
		read -r _ job cmd <<<"$(grep "^$d " "$f" | head -n 1)"
		ids=$(got "$d" "$2" | sort -u | paste -sd' ')
		runs=0
		[ -z "$cmd" ] || runs=$(grep -c "$d: command $cmd: $2\$" "$T/sim.log")
		if [ "$n" -gt 1 ] || [ "$ids" != "${cmd:+$cmd $job}" ] || [ "$runs" != "$n" ]; then
			echo "$d: $n $2 job(s) in $1, received [$ids], ran $cmd $runs time(s)"
			bad=1
		fi
		REPEATS=$((REPEATS + $(got "$d" "$2" | wc -l) - $(got "$d" "$2" | sort -u | wc -l)))
	done
	return $bad
}

# --- 1.1.0 in five waves, ten kills -----------------------------------------------
mark
check "create rollout ok: 1.1.0 to group k9 in five waves" fleetctl -q rollout create \
	--bundle fleet-sample@1.1.0 --group k9 --waves 1,10%,30%,60%,100% \
	--soak 2s --health-window 2s --id ok
kill_rounds ok 10 1000 6000
check_true "positive control: most kills ($MIDWAY of 10) found the rollout running" \
	test "$MIDWAY" -ge 7
check_exit 0 "the rollout completes after the kills (watch exits 0)" \
	timeout 300 fleetctl rollout watch ok --interval 1s --timeout 280s
check "ok: completed, all $N healthy, none failed, 5 waves" sh -c \
	"fleetctl -o json rollout status ok | jq -e '.state == \"completed\" and .wave == 5 and .counts.healthy == $N and .counts.failed == 0 and .counts.skipped == 0'"
check_grep "completed" "rollout status (table) says completed" fleetctl rollout status ok
REPEATS=0
check "fleetd: one job per device in the rollout, $N in all" sh -c \
	"fleetctl -o json jobs list --rollout ok --limit 1000 | jq -e 'length == $N and ([.[].device] | unique | length) == $N and all(.state == \"succeeded\")'"
check_true "jobs list --rollout ok (table): $N succeeded jobs" \
	test "$(fleetctl jobs list --rollout ok --limit 1000 | grep -c succeeded)" -eq $N
check "devices: each received one update command id in the rollout (its job's) and ran it once" once ok update
log "ok: $REPEATS repeated delivery(s) of a command id already received"
fw_all() { fleetctl -o json devices list --group k9 | jq -e "[.[] | select(.firmware == \"$1\")] | length == $N"; }
if wait_until 30 fw_all 1.1.0; then pass "fleetd: every device reports 1.1.0"
else fail "fleetd: every device reports 1.1.0"; fi
check_true "devices list (table): $N devices on 1.1.0" \
	test "$(fleetctl devices list --group k9 | grep -c ' 1\.1\.0 ')" -eq $N
sim_on() { fleet-sim status --dir "$S" -o json | jq -e ".firmware == {\"$1\": $N}"; }
check "fleet-sim status: all $N devices run 1.1.0" sim_on 1.1.0
slots_on_b() {
	local d
	for d in $DEVS; do
		[ "$(fw_printenv -n -c "$S/$d/sim/fw_env.config" fleet_slot 2>/dev/null)" = b ] &&
			cmp -s "$S/$d/sim/slot-b" "$T/fw/fw-1.1.0" || { echo "$d"; return 1; }
	done
}
check "every device boots slot b, which holds the signed 1.1.0" slots_on_b

# --- the whole rollout rolled back by hand, four kills ----------------------------
MIDWAY=0
mark
check "rollback ok: every device it updated goes back" fleetctl -q rollback ok
# rolling 30 devices back takes 1-3 s (a SAN run on 182cea2 had it done
# in under 1.5 s, before the second kill): kills 0.1-0.5 s apart, and
# the control asks that at least the first found it at work
kill_rounds ok 4 100 400
check_true "positive control: kills found ok rolling back ($MIDWAY of 4)" test "$MIDWAY" -ge 1
check_exit 1 "ok ends rolled back after the kills (watch exits 1)" \
	timeout 200 fleetctl rollout watch ok --interval 1s --timeout 180s
check "ok: rolled-back, all $N devices" sh -c \
	"fleetctl -o json rollout status ok | jq -e '.state == \"rolled-back\" and .counts[\"rolled-back\"] == $N'"
REPEATS=0
check "devices: each received one rollback command id in the rollout and ran it once" once ok rollback
log "ok rollback: $REPEATS repeated delivery(s) of a command id already received"
if wait_until 30 fw_all 1.0.0; then pass "fleetd: every device reports 1.0.0 again"
else fail "fleetd: every device reports 1.0.0 again"; fi
check "fleet-sim status: all $N devices run 1.0.0" sim_on 1.0.0

# --- 1.2.0 (bad): without kills, then with four ---------------------------------
bad_create() {
	fleetctl -q rollout create --bundle fleet-sample@1.2.0 --group k9 \
		--waves 5,100% --soak 0s --health-window 2s --id "$1"
}
check "create rollout b0: 1.2.0, no kills" bad_create b0
check_exit 1 "b0 ends rolled back (watch exits 1)" \
	timeout 200 fleetctl rollout watch b0 --interval 1s --timeout 180s
MIDWAY=0
mark
check "create rollout b1: 1.2.0, the same spec" bad_create b1
kill_rounds b1 4 300 2000
check_true "positive control: kills found b1 running ($MIDWAY of 4)" test "$MIDWAY" -ge 2
check_exit 1 "b1 ends rolled back too (watch exits 1)" \
	timeout 200 fleetctl rollout watch b1 --interval 1s --timeout 180s
outcome() { rollout_json "$1" | jq -c '{state, wave, counts, gate: (.gate | del(.percent)), reason}'; }
outcome b0 >"$T/b0.json"
check "b0: rolled-back in wave 1, 5 failed, 25 never started" \
	jq -e '.state == "rolled-back" and .wave == 1 and .counts.failed == 5 and .counts.skipped == 25' "$T/b0.json"
outcome b1 >"$T/b1.json"
check "b1 (4 kills) ends with the same state, counts, gate and reason as b0" \
	diff "$T/b0.json" "$T/b1.json"
REPEATS=0
check "b1: one job per device, one update command id each, run once" once b1 update
log "b1: $REPEATS repeated delivery(s) of a command id already received"
if wait_until 30 fw_all 1.0.0; then pass "fleetd: every device is back on (or still on) 1.0.0"
else fail "fleetd: every device is back on (or still on) 1.0.0"; fi
check "fleet-sim status: all $N devices run 1.0.0" sim_on 1.0.0
finish
