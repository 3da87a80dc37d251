#!/usr/bin/env bash
# fleet-sim (issue 10): 20 simulated devices in one process, each with
# its own key, certificate and MQTT session, enrol with one claim token
# and come online in fleetd; an update of 3 of them goes through the
# agent's real core (download, signature, slot, reboot, health check);
# SIGTERM ends the process at once with exit 0 and every device offline
# in fleetd; a restart reuses every identity (no enrolment, same keys
# and serials); with --fail-rate 100 the health check really fails and
# the update ends rolled back.  The command line refuses what it must.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

N=20
S=$T/sim

# --- the command line -------------------------------------------------------
check_exit 0 "fleet-sim --help" fleet-sim --help
check_exit 0 "fleet-sim run --help" fleet-sim run --help
check_exit 2 "run needs --count and --dir" fleet-sim run --dir "$T/x"
check_exit 2 "a --count of 0 is refused" fleet-sim run --count 0 --dir "$T/x"
check_exit 2 "a --fail-rate over 100 is refused" \
	fleet-sim run --count 1 --dir "$T/x" --fail-rate 101
check_exit 2 "a bad --install-delay is refused" \
	fleet-sim run --count 1 --dir "$T/x" --install-delay 5y
check_exit 2 "a bad --prefix is refused" \
	fleet-sim run --count 1 --dir "$T/x" --prefix 'A/B' --server x --ca x --token x --image x
check_grep 'not enrolled yet: that needs --server, --ca, a token and --image' \
	"devices to enrol need the enrolment options (exit 2)" \
	fleet-sim run --count 2 --dir "$T/x"
check_exit 2 "... with exit 2" fleet-sim run --count 2 --dir "$T/x"
check_exit 2 "--token and --token-file together are refused" \
	fleet-sim run --count 1 --dir "$T/x" --token a --token-file "$T/tok"
printf 'one two\n' >"$T/two-tokens"
check_grep "holds more than one token" "a token file with two tokens is refused, saying why" \
	fleet-sim run --count 1 --dir "$T/x" --token-file "$T/two-tokens"
check_exit 2 "... with exit 2" \
	fleet-sim run --count 1 --dir "$T/x" --token-file "$T/two-tokens"
check_exit 3 "status where fleet-sim never ran is not found (exit 3)" \
	fleet-sim status --dir "$T/x"
# more devices than file descriptors: refused with the numbers
nofile() { (ulimit -n 500 && exec fleet-sim run --count 2000 --dir "$T/x" --server x --ca x --token x --image x); }
check_exit 1 "more devices than the descriptor limit is refused (exit 1)" nofile
check_grep 'need about [0-9]+ file descriptors .* the hard limit is 500' \
	"... saying how many it needs and what the limit is" nofile
check_true "... before touching any device" test ! -e "$T/x/sim-0001"

start_fleetd --with-broker
login_admin
ota_fleet_ready
TOK=$(fleetctl -o json token create sims --enroll --uses $N --ttl 1h | jq -r .token)

# sim_start [ARGS]: fleet-sim on $S in the background (SIM_PID)
sim_start() {
	(exec fleet-sim run --count $N --dir "$S" --log-level info "$@" \
		>>"$T/sim.out" 2>>"$T/sim.log") &
	SIM_PID=$!
	track "$SIM_PID"
}
# sim_stop: SIGTERM, wait up to 10 s; the exit status and the seconds
sim_stop() {
	local t0 i
	t0=$(date +%s%N)
	kill -TERM "$SIM_PID"
	for ((i = 0; i < 100 * WAIT_SCALE; i++)); do
		kill -0 "$SIM_PID" 2>/dev/null || break
		sleep 0.1
	done
	wait "$SIM_PID"
	SIM_RC=$?
	SIM_SECS=$((($(date +%s%N) - t0) / 1000000000))
}
online_count() { fleetctl -o json devices list | jq '[.[] | select(.online)] | length'; }
all_online() { [ "$(online_count)" = "$N" ]; }
none_online() { [ "$(online_count)" = 0 ]; }
stat_is() { fleet-sim status --dir "$S" -o json | jq -e "$1" >/dev/null; }
sim_env() { fw_printenv -n -c "$S/$1/sim/fw_env.config" "$2" 2>/dev/null; }

# --- enrolment by token, online -----------------------------------------------
printf '%s\n' "$TOK" >"$T/token"
sim_start --server "$FLEET_URL" --ca "$FLEET_CA_FILE" --token-file "$T/token" \
	--image "$T/fw/fw-1.0.0"
if wait_until 90 all_online; then pass "$N simulated devices enrol and come online in fleetd"
else fail "$N simulated devices enrol and come online in fleetd"; fi
check "fleetctl devices list names sim-0001 to sim-$(printf %04d $N)" sh -c \
	"fleetctl -o json devices list | jq -e '([.[].id] | sort) == [range(1; $N + 1) | \"sim-\" + (tostring | (\"000\" + .)[-4:])]'"
check "each has its own certificate" sh -c \
	"fleetctl -o json devices list | jq -e '[.[].cert_serial] | unique | length == $N'"
check_true "each has its own key" test "$(cat "$S"/sim-*/state/key.pem | grep -c BEGIN)" = $N -a \
	"$(for f in "$S"/sim-*/state/key.pem; do sha256sum <"$f"; done | sort -u | wc -l)" = $N
check "the keys never left the devices: 0600 each" sh -c \
	"[ \"\$(stat -c %a '$S'/sim-*/state/key.pem | sort -u)\" = 600 ]"
if wait_until 10 stat_is '.online == 20 and .enrolled_now == 20 and .firmware["1.0.0"] == 20'; then
	pass "fleet-sim status: 20 online, 20 enrolled now, all on 1.0.0"
else fail "fleet-sim status: 20 online, 20 enrolled now, all on 1.0.0"; fi
check_true "one process, a bounded number of threads (1 + 3 x 8 workers at most)" \
	test "$(awk '/^Threads:/ {print $2}' "/proc/$SIM_PID/status")" -le 25
check_true "about one descriptor per device (no socket pair per client)" \
	test "$(ls "/proc/$SIM_PID/fd" | wc -l)" -le $((N + 20))
check "fleetd sees firmware 1.0.0 in slot a" sh -c \
	"fleetctl -o json devices show sim-0007 | jq -e '.firmware == \"1.0.0\" and .slot == \"a\"'"

# --- an update of three, through the real core --------------------------------
check "update sim-0001..3 to 1.1.0 --wait" \
	fleetctl update sim-0001 sim-0002 sim-0003 --bundle fleet-sample@1.1.0 --wait --timeout 120s
JOB=$(fleetctl -o json jobs list --device sim-0002 | jq -r '.[0].id')
check "the job went through every state in protocol order" sh -c "fleetctl -o json jobs show $JOB | jq -e '
	[.events[].state] as \$s |
	[\"queued\",\"downloading\",\"verifying\",\"installing\",\"installed\",\"rebooting\",\"health-check\",\"succeeded\"] as \$o |
	(\$o - \$s) == [] and ([\$s[] | . as \$x | \$o | index(\$x)] | . == sort)'"
for d in sim-0001 sim-0002 sim-0003; do
	check "$d: slot b holds the signed 1.1.0" cmp "$S/$d/sim/slot-b" "$T/fw/fw-1.1.0"
done
check_true "sim-0002 booted slot b, trial over" test "$(sim_env sim-0002 fleet_slot)/$(sim_env sim-0002 upgrade_available)" = b/0
check_true "sim-0004 was not touched" test ! -e "$S/sim-0004/sim/slot-b" -a "$(sim_env sim-0004 fleet_slot)" = a
fw_is() { fleetctl -o json devices show "$1" | jq -e ".firmware == \"$2\"" >/dev/null; }
if wait_until 10 fw_is sim-0003 1.1.0; then pass "fleetd sees sim-0003 on 1.1.0"
else fail "fleetd sees sim-0003 on 1.1.0"; fi
check_grep 'sim-0002: sim: power-on 2: booted slot b' "the reboot was a power cycle inside the process" cat "$T/sim.log"
if wait_until 10 stat_is '.jobs.succeeded == 3 and .firmware["1.1.0"] == 3 and .power_ons == 23'; then
	pass "fleet-sim status counts 3 succeeded updates and 23 power-ons"
else fail "fleet-sim status counts 3 succeeded updates and 23 power-ons"; fi

# --- SIGTERM ------------------------------------------------------------------------
fleetctl -o json devices list | jq -r '.[] | .id + " " + .cert_serial' | sort >"$T/serials.1"
for f in "$S"/sim-*/state/key.pem; do sha256sum <"$f"; done >"$T/keys.1"
sim_stop
check_true "SIGTERM: exit 0" test "$SIM_RC" = 0
check_true "... within 5 s ($SIM_SECS s)" test "$SIM_SECS" -le 5
if wait_until 10 none_online; then pass "... and fleetd shows every device offline"
else fail "... and fleetd shows every device offline"; fi
check_grep 'stopping 20 devices' "... a clean stop of all of them" cat "$T/sim.log"
check "status after the stop: not running, none online" stat_is '.running == false and .online == 0'

# --- restart: same identities; --fail-rate 100 --------------------------------
: >"$T/sim.log"
sim_start --fail-rate 100
if wait_until 60 all_online; then pass "restart: all $N online again"
else fail "restart: all $N online again"; fi
check "... no enrolment (no token given, none needed)" stat_is '.enrolled_now == 0 and .enrol_failed == 0'
fleetctl -o json devices list | jq -r '.[] | .id + " " + .cert_serial' | sort >"$T/serials.2"
check "... the same certificates" cmp "$T/serials.1" "$T/serials.2"
for f in "$S"/sim-*/state/key.pem; do sha256sum <"$f"; done >"$T/keys.2"
check "... the same keys" cmp "$T/keys.1" "$T/keys.2"
check "... the updated ones still on 1.1.0" fw_is sim-0001 1.1.0
check_true "--fail-rate 100: the fault is on every device" \
	test "$(ls "$S"/sim-*/sim/fault-sensor-bus | wc -l)" = $N
check_exit 1 "an update of sim-0004 does not succeed (exit 1)" \
	fleetctl update sim-0004 --bundle fleet-sample@1.1.0 --wait --timeout 120s
JOB=$(fleetctl -o json jobs list --device sim-0004 | jq -r '.[0].id')
check "... it ended rolled-back, the firmware's self test saying why" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.state == \"rolled-back\" and (.reason | test(\"sensor bus does not answer\"))'"
check_true "... back on slot a, trial over" test "$(sim_env sim-0004 fleet_slot)/$(sim_env sim-0004 upgrade_available)" = a/0
if wait_until 10 fw_is sim-0004 1.0.0; then pass "... fleetd sees it on 1.0.0 again"
else fail "... fleetd sees it on 1.0.0 again"; fi
if wait_until 10 stat_is '.jobs["rolled-back"] == 1 and .jobs.succeeded == 0'; then
	pass "fleet-sim status counts the rollback"
else fail "fleet-sim status counts the rollback"; fi
sim_stop
check_true "SIGTERM again: exit 0" test "$SIM_RC" = 0
# without the fault, the same device updates fine: the failure was the knob
: >"$T/sim.log"
sim_start
wait_until 60 all_online || fail "third start: all online"
check_true "--fail-rate 0: the fault files are gone" test -z "$(ls "$S"/sim-*/sim/fault-sensor-bus 2>/dev/null)"
check "positive control: the same update of sim-0004 now succeeds" \
	fleetctl update sim-0004 --bundle fleet-sample@1.1.0 --wait --timeout 120s
sim_stop
check_true "SIGTERM: exit 0" test "$SIM_RC" = 0
finish
