#!/usr/bin/env bash
# fleet-agent against a real fleetd and mosquitto: the command line,
# claim-token enrolment (the key is made on the device and never sent),
# refusals, presence and the will, a clean SIGTERM, commands through
# MQTT (unknown type, repeats), factory provisioning run unchanged, and
# agent.conf typos (issue 3).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

# --- command line -------------------------------------------------------
check_exit 0 "fleet-agent --help" fleet-agent --help
check_exit 2 "no command is a usage error" fleet-agent
check_exit 2 "unknown command" fleet-agent frobnicate
for c in enroll run status version; do
	check_exit 0 "fleet-agent $c --help" fleet-agent "$c" --help
done
check_grep '^fleet-agent [0-9]' "version" fleet-agent version
check_exit 2 "unknown option" fleet-agent run --bogus
check_exit 2 "option of another command" fleet-agent run --token x
check_exit 2 "bad --log-level" fleet-agent run --log-level loud
check_exit 2 "enroll needs a server, CA and token" fleet-agent enroll --id x

start_fleetd --with-broker
login_admin
fleetctl -o json token create line3 --enroll --group line-3 --uses 4 --ttl 1h >"$T/tok.json"
TOK=$(jq -r .token "$T/tok.json")

# --- enrolment ------------------------------------------------------------
A=$(agent_dir dev-a)
check "enroll dev-a with a claim token" agent_enroll dev-a "$TOK"
check_grep 'enrolled dev-a in group line-3' "enroll reports the device and group" cat "$A/enroll.out"
check_true "state dir is 0700" test "$(stat -c %a "$A/state")" = 700
check_true "key.pem is 0600" test "$(stat -c %a "$A/state/key.pem")" = 600
for f in cert.pem chain.pem ca.pem; do
	check_true "state holds $f" test -s "$A/state/$f"
done
check_true "nothing staged is left" sh -c "! ls '$A/state' | grep -q '\.new\$'"
# token mode: the private key never left the device dir
KEYLINE=$(sed -n 2p "$A/state/key.pem")
check_true "the device key appears nowhere on the server side" \
	sh -c "! grep -rqF -- '$KEYLINE' '$FLEETD_STATE' '$T/fleetd.log' '$T/fleetd.out'"
check "certificate verifies against the pinned root" \
	openssl verify -CAfile "$A/state/ca.pem" -untrusted "$A/state/chain.pem" "$A/state/cert.pem"
check "the key on the device belongs to the certificate" sh -c \
	"[ \"\$(openssl pkey -in '$A/state/key.pem' -pubout)\" = \"\$(openssl x509 -in '$A/state/cert.pem' -noout -pubkey)\" ]"
check_grep "url = $MQTT_URL" "agent.conf names the broker fleetd advertised" cat "$A/agent.conf"
check "status -o json" sh -c "fleet-agent status -o json --config '$A/agent.conf' |
	jq -e '.id == \"dev-a\" and .seq == 0 and .confirm_pending == null'"
check_true "agent and fleetd agree on the serial" test "$(agent_serial dev-a)" = "$(dev_serial dev-a)"
check_grep '^id +dev-a' "status as text" fleet-agent status --config "$A/agent.conf"
check_exit 5 "enrolling an enrolled state dir again is a conflict" \
	fleet-agent enroll --server "$FLEET_URL" --ca "$FLEET_CA_FILE" --token "$TOK" \
	--id dev-a --state "$A/state" --config "$T/other.conf"

# refusals leave nothing behind
B=$(agent_dir dev-b)
check_exit 4 "a bad token is refused (exit 4)" agent_enroll dev-b fle_bogus
check_true "... and leaves no key" test ! -e "$B/state/key.pem" -a ! -e "$B/state/key.pem.new"
check_true "... and no agent.conf" test ! -e "$B/agent.conf"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-keyout "$T/other.key" -out "$T/other-ca.pem" -subj /CN=other 2>/dev/null
check_exit 4 "a server not signed by the pinned CA is refused (exit 4)" \
	fleet-agent enroll --server "$FLEET_URL" --ca "$T/other-ca.pem" --token "$TOK" \
	--id dev-b --state "$B/state" --config "$B/agent.conf"
check_exit 8 "an unreachable server (exit 8)" \
	fleet-agent enroll --server "https://127.0.0.1:1" --ca "$FLEET_CA_FILE" --token "$TOK" \
	--id dev-b --state "$B/state" --config "$B/agent.conf"
check_exit 2 "an invalid id is a usage error" \
	fleet-agent enroll --server "$FLEET_URL" --ca "$FLEET_CA_FILE" --token "$TOK" \
	--id 'Dev/B' --state "$B/state" --config "$B/agent.conf"
check_exit 5 "an id fleetd already knows is a conflict (exit 5)" \
	fleet-agent enroll --server "$FLEET_URL" --ca "$FLEET_CA_FILE" --token "$TOK" \
	--id dev-a --state "$B/state" --config "$B/agent.conf"
check_true "... and leaves no key" test ! -e "$B/state/key.pem"
printf '%s\n' "$TOK" >"$T/tok.txt"
check "enroll with --token-file and -o json" sh -c \
	"fleet-agent enroll -o json --server '$FLEET_URL' --ca '$FLEET_CA_FILE' \
	--token-file '$T/tok.txt' --id dev-b --state '$B/state' --config '$B/agent.conf' |
	jq -e '.id == \"dev-b\" and .group == \"line-3\" and (.serial | length) == 32'"

# --- running: presence, will, SIGTERM ---------------------------------------
agent_start dev-a
if wait_until 15 dev_online dev-a; then pass "dev-a comes online"; else fail "dev-a comes online"; fi
check "fleetd got the agent version" sh -c "fleetctl -o json devices show dev-a | jq -e '.agent == \"0.1.0\"'"
START=$(date +%s%N)
agent_stop dev-a
RC=$?
MS=$((($(date +%s%N) - START) / 1000000))
check_true "SIGTERM: exit 0 (was $RC)" test "$RC" -eq 0
check_true "SIGTERM: exit within 3 s (took ${MS} ms)" test "$MS" -lt $((3000 * WAIT_SCALE))
if wait_until 5 dev_offline dev-a; then pass "clean stop publishes offline"; else fail "clean stop publishes offline"; fi
agent_start dev-a
wait_until 15 dev_online dev-a || fail "dev-a back online"
kill -KILL "${AGENT_PID[dev-a]}"
if wait_until 10 dev_offline dev-a; then pass "after kill -9 the will says offline"; else fail "after kill -9 the will says offline"; fi
agent_start dev-a
wait_until 15 dev_online dev-a || fail "dev-a online after the crash"

# --- commands over MQTT -----------------------------------------------------
# Only fleetd may publish to fleet/ID/cmd, so the test publishes with
# fleetd's certificate; the broker forces the client id "fleetd", which
# briefly takes over fleetd's own session.  The agent's answers are
# therefore checked on the agent (log, persisted seq), and fleetd's view
# of events is checked by t2101's rotations.
# Publish as fleetd.  The broker forces client id = CN, so this takes
# fleetd's own session over for a moment and fleetd's reconnect may take it
# back mid-publish: retry (a repeat is harmless, commands are idempotent).
fleetd_pub() {
	local i
	for i in 1 2 3 4 5; do
		mosquitto_pub -h "$MQTT_HOST" -p "$MQTT_PORT" -V 5 --cafile "$FLEET_CA_FILE" \
			--cert "$FLEETD_STATE/mqtt/fleetd.pem" --key "$FLEETD_STATE/mqtt/fleetd.key" \
			-t fleet/dev-a/cmd -q 2 -m "$1" && return 0
		sleep 0.5
	done
	return 1
}
agent_seq() { fleet-agent status -o json --config "$A/agent.conf" | jq -e ".seq == $1"; }
check "send an unknown command" fleetd_pub '{"id":"c-x1","type":"self-destruct","args":{}}'
if wait_until 10 agent_seq 1; then pass "the agent answers an unknown command (seq 1)"
else fail "the agent answers an unknown command (seq 1)"; fi
check_grep 'event 1: self-destruct failed' "... with a failed event" cat "$A/agent.log"
check "garbage on the command topic" fleetd_pub 'not json'
check "a repeated command id" fleetd_pub '{"id":"c-x1","type":"self-destruct"}'
check "another unknown command" fleetd_pub '{"id":"c-x2","type":"nope"}'
if wait_until 10 grep -q 'event 2: nope failed' "$A/agent.log"; then
	pass "later commands still work"
else fail "later commands still work"; fi
check "the repeat did not act again: seq is 2" agent_seq 2
check_grep 'c-x1 seen before: repeating its outcome' "the agent answered the repeat from its log" cat "$A/agent.log"
check_grep 'dropped a bad command' "the agent dropped the garbage" cat "$A/agent.log"
check_true "the agent is still running" kill -0 "${AGENT_PID[dev-a]}"
agent_stop dev-a
agent_start dev-a
wait_until 15 dev_online dev-a || fail "dev-a online after a restart"
check "a repeat after a restart is still recognised" fleetd_pub '{"id":"c-x2","type":"nope"}'
if wait_until 10 grep -q 'c-x2 seen before' "$A/agent.log"; then pass "the command log survives restarts"
else fail "the command log survives restarts"; fi
check "and the seq too" agent_seq 2
agent_stop dev-a

# --- factory provisioning: the archive runs unchanged -----------------------
check "provision dev-p" fleetctl provision dev-p --group line-3 --out "$T/dev-p.tar.gz"
mkdir -p "$T/unpack" && tar -xzf "$T/dev-p.tar.gz" -C "$T/unpack"
mkdir -p "$(agent_dir dev-p)"
AGENT_CWD=/ agent_start dev-p "$T/unpack/dev-p/agent.conf"
if wait_until 15 dev_online dev-p; then pass "provisioned dev-p runs from the archive, from another cwd"
else fail "provisioned dev-p runs from the archive"; cat "$(agent_dir dev-p)/agent.log"; fi
check "status of the unpacked archive" sh -c \
	"cd / && fleet-agent status -o json --config '$T/unpack/dev-p/agent.conf' | jq -e '.id == \"dev-p\"'"
agent_stop dev-p

# --- agent.conf mistakes -----------------------------------------------------
cp "$A/agent.conf" "$T/typo.conf"
printf '[mqtt]\nkeeplive = 60\n' >>"$T/typo.conf"
check_exit 1 "an unknown agent.conf key stops the agent" fleet-agent run --config "$T/typo.conf"
check_grep 'unknown setting \[mqtt\] keeplive' "... naming the key" fleet-agent run --config "$T/typo.conf"
check_exit 3 "a missing agent.conf (exit 3)" fleet-agent run --config "$T/nope.conf"
sed 's|^state_dir = .*|state_dir = '"$T"'/empty|' "$A/agent.conf" >"$T/empty.conf"
check_exit 3 "not enrolled (exit 3)" fleet-agent run --config "$T/empty.conf"
check_grep "fleet-agent enroll" "... says to enrol first" fleet-agent run --config "$T/empty.conf"

finish
