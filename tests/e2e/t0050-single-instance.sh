#!/usr/bin/env bash
# One fleetd per state dir, one agent per state dir (issue 8 item 15).
# A second `fleetd serve` on a served state dir used to mark every device
# offline; a second agent on one config kicked the first off the broker
# hundreds of times.  Now the second instance exits 5 naming the holder's
# pid, and the first keeps serving: its device stays online (positive
# control).  The lock dies with its holder: a restart takes it again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
TOK=$(fleetctl -o json token create lock --enroll --group g --uses 2 --ttl 1h | jq -r .token)
agent_enroll dev-a "$TOK" || fail "enroll dev-a"
agent_start dev-a
A=$(agent_dir dev-a)
wait_until 30 dev_online dev-a || fail "dev-a comes online"

# --- a second fleetd on the same state dir ------------------------------
check_exit 5 "a second fleetd serve on the same state exits 5" \
	timeout 20 fleetd serve --state "$FLEETD_STATE" --listen 127.0.0.1:0 \
	--mqtt-listen 127.0.0.1:0 --with-broker
cp "$T/last.out" "$T/second-fleetd.out"
check_grep "locked by another instance \(pid $FLEETD_PID\)" \
	"... naming the running fleetd's pid" cat "$T/second-fleetd.out"
check_true "the first fleetd still runs" kill -0 "$FLEETD_PID"
check "... and still answers" fleetctl devices list
check "... and dev-a is still online (nothing marked it offline)" dev_online dev-a
check_true "the lock file holds the first fleetd's pid" \
	test "$(cat "$FLEETD_STATE/fleetd.lock")" = "$FLEETD_PID"

# --- a second agent on the same config ------------------------------------
APID=${AGENT_PID[dev-a]}
check_exit 5 "a second fleet-agent run on the same config exits 5" \
	timeout 20 fleet-agent run --config "$A/agent.conf"
cp "$T/last.out" "$T/second-agent.out"
check_grep "locked by another instance \(pid $APID\)" \
	"... naming the running agent's pid" cat "$T/second-agent.out"
check_true "the first agent still runs" kill -0 "$APID"
check "... and dev-a is still online" dev_online dev-a
check_exit 0 "the first agent was never kicked off (one connection in its log)" \
	test "$(grep -c 'connected to' "$A/agent.log")" -le 1

# --- the locks are released by their holders ------------------------------
check_exit 0 "dev-a stops cleanly" agent_stop dev-a
agent_start dev-a
check "a new agent on the config runs once the first stopped" \
	wait_until 30 dev_online dev-a
kill -TERM "$FLEETD_PID"
wait_until 10 sh -c "! kill -0 $FLEETD_PID" || fail "fleetd stops on SIGTERM"
wait "$FLEETD_PID" 2>/dev/null
fleetd serve --state "$FLEETD_STATE" --listen 127.0.0.1:0 --mqtt-listen 127.0.0.1:0 \
	--with-broker >"$T/fleetd2.out" 2>"$T/fleetd2.log" &
track $!
check "fleetd serves the state again after the first one stopped" \
	wait_until 30 grep -q '^ready ' "$T/fleetd2.out"
finish
