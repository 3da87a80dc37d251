#!/usr/bin/env bash
# The agent's outbox and telemetry (issue 13, docs/telemetry.md) with a
# real fleet-agent and mosquitto: telemetry flows on fleet/ID/telemetry
# (positive control); local values through the socket and the drop dir,
# malformed lines refused with a log line; the broker stopped while the
# agent samples every second, the agent killed with -9 while offline and
# restarted, then the broker back: every message still queued arrives, in
# seq order, and what is missing is exactly the oldest messages the
# bound (max_messages) dropped, whose points the "dropped" fields add up
# to.  The messages are watched with mosquitto_sub as fleetd's identity,
# so fleetd itself does not run then: the test runs fleetd's broker
# configuration with its own mosquitto, which it stops and starts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

CAP=12
start_fleetd --with-broker
login_admin
TOK=$(fleetctl -o json token create e2e --enroll --uses 1 | jq -r .token)
check "enrol dev-a" agent_enroll dev-a "$TOK"
A=$(agent_dir dev-a)
cat >>"$A/agent.conf" <<EOF
[telemetry]
interval = 1
[outbox]
max_messages = $CAP
EOF
sed -i 's/^\[mqtt\]$/[mqtt]\nreconnect_max = 2s/' "$A/agent.conf"
check "fleetd and its broker stop" fleetd_kill9

check "our mosquitto with fleetd's configuration" broker_start
# fleetd's identity sees every device topic; a persistent session (QoS 1,
# session expiry) keeps what arrives while it reconnects
stdbuf -oL mosquitto_sub -h "$MQTT_HOST" -p "$MQTT_PORT" -V 5 \
	--cafile "$FLEET_CA_FILE" --cert "$FLEETD_STATE/mqtt/fleetd.pem" \
	--key "$FLEETD_STATE/mqtt/fleetd.key" -i fleetd -c -x 3600 -q 1 \
	-t fleet/dev-a/telemetry >"$T/sub.out" 2>"$T/sub.err" &
track $!
# the session is fleetd's, which has fleet/# too: the telemetry messages
# are the lines that start with their seq (jansson keeps the key order)
tlm() { grep '^{"seq":' "$T/sub.out" >"$T/tlm.out"; }

agent_start dev-a
got() { tlm && [ "$(wc -l <"$T/tlm.out")" -ge "$1" ]; }
check_exit 0 "positive control: telemetry arrives on fleet/dev-a/telemetry" \
	wait_until 20 got 3
tlm
check_exit 0 "... with the built-in metrics, seq from 1" jq -e -s \
	'.[0].seq == 1 and ([.[].points[].metric] | index("mem.used_bytes") and
	 index("disk.state_free_bytes") and index("agent.outbox_depth") and
	 index("cpu.percent"))' "$T/tlm.out"
check_exit 0 "... each point with a value and a ts in ms" jq -e -s \
	'[.[].points[] | (.value | type) == "number" and .ts > 1577836800000 and
	 (.metric | test("^[A-Za-z0-9_.:-]{1,64}$"))] | all' "$T/tlm.out"

# --- local values ------------------------------------------------------------
SOCK=$A/state/telemetry.sock
check_true "the local socket is there, mode 660" test "$(stat -c %a "$SOCK")" = 660
send() {
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(sys.argv[2].encode(), sys.argv[1])' "$SOCK" "$1"
}
check "a datagram of good and bad lines" \
	send "$(printf 'room.temp 21.5\ndoor 1\nbad!name 3\nflow notanumber\nx.y 1 1764420000000 3\nold 1 1000\n')"
printf 'pump.rpm 1200\n' >"$A/state/telemetry.d/pump.tmp"
mv "$A/state/telemetry.d/pump.tmp" "$A/state/telemetry.d/pump.tlm"
has_metric() { tlm && jq -e -s --arg m "$1" "[.[].points[] | select(.metric == \$m and .value == $2)] | length > 0" "$T/tlm.out"; }
check_exit 0 "a good line from the socket arrives" wait_until 20 has_metric room.temp 21.5
check_exit 0 "... a name without a dot gets app." has_metric app.door 1
check_exit 0 "a line from the drop dir arrives" wait_until 20 has_metric pump.rpm 1200
check_true "... and the file is removed" test ! -e "$A/state/telemetry.d/pump.tlm"
check_grep "refused from socket: 'bad!name 3': bad name" "a bad name is refused with a log line" cat "$A/agent.log"
check_grep "refused from socket: 'flow notanumber': bad value" "... a bad value" cat "$A/agent.log"
check_grep "refused from socket: 'x.y 1 1764420000000 3': extra fields" "... extra fields" cat "$A/agent.log"
check_grep "refused from socket: 'old 1 1000': bad timestamp" "... a timestamp before 2020" cat "$A/agent.log"
tlm
check_exit 1 "... and none of them arrives" jq -e -s \
	'[.[].points[].metric] | map(select(test("bad|flow|app.x|app.old"))) | length > 0' "$T/tlm.out"
check_true "the agent still runs" kill -0 "${AGENT_PID[dev-a]}"

# --- offline: the bound, kill -9, restart, broker back --------------------------
wait_until 20 got 6
check "the broker stops" broker_stop
S0=$(queued_seq)
tlm
R0=$(jq -s '[.[].seq] | max' "$T/tlm.out")
check_exit 0 "the agent samples on while offline, past the bound" \
	wait_until 60 queued_past $((S0 + CAP + 4))
check "kill -9 the agent while offline" kill -KILL "${AGENT_PID[dev-a]}"
wait "${AGENT_PID[dev-a]}" 2>/dev/null
S1=$(queued_seq)
agent_start dev-a
check_exit 0 "restarted offline, the seq goes on after $S1" \
	wait_until 20 queued_past $((S1 + 2))
check "the broker starts again" broker_start
S2=$(queued_seq)
arrived() { tlm && jq -e -s "[.[].seq] | max >= $1" "$T/tlm.out"; }
check_exit 0 "everything queued up to $S2 arrives" wait_until 60 arrived "$S2"

tlm
# first appearance of each seq, in arrival order (QoS 1 may repeat one)
jq -s '[foreach .[] as $m ({seen: {}, out: null};
	if .seen[$m.seq | tostring] then .out = null
	else .seen[$m.seq | tostring] = true | .out = $m end; .out | values)]' \
	"$T/tlm.out" >"$T/first.json"
check_exit 0 "seq strictly increasing in arrival order" jq -e \
	'[.[].seq] as $s | [range(1; $s | length) | $s[.] > $s[. - 1]] | all' "$T/first.json"
# the points each message was queued with, from the agent's log
sed -n 's/.*telemetry: message \([0-9]*\) queued, \([0-9]*\) points.*/\1 \2/p' \
	"$A/agent.log" | jq -R -s 'split("\n") | map(select(. != "") | split(" ") |
	{key: .[0], value: (.[1] | tonumber)}) | from_entries' >"$T/queued.json"
jq --slurpfile q "$T/queued.json" --argjson top "$S2" '
	([.[].seq] | map(tostring)) as $got |
	[$q[0] | keys[] | select(tonumber <= $top) |
	 select(. as $k | $got | any(. == $k) | not)] |
	map(tonumber) | sort' "$T/first.json" >"$T/missing.json"
log "missing seqs: $(jq -c . "$T/missing.json")"
check_exit 0 "the bound dropped messages" jq -e 'length > 0' "$T/missing.json"
# the oldest not delivered before the stop is $R0 + 1, or one of the 4
# in flight then (kept while the connection lasted)
check_exit 0 "... the oldest ones: one run from right after $R0 (the last seen)" \
	jq -e --argjson r0 "$R0" '.[0] > $r0 and .[0] <= $r0 + 5 and
	(. as $m | [range(1; length) | $m[.] == $m[. - 1] + 1] | all)' "$T/missing.json"
check_exit 0 "... and every newer one arrived (no gap after them)" \
	jq -e --slurpfile m "$T/missing.json" --argjson top "$S2" \
	'[.[].seq] as $s | ($m[0] | max) as $last |
	 [range($last + 1; $top + 1)] - $s == []' "$T/first.json"
LOST=$(jq --slurpfile q "$T/queued.json" '[.[] as $s | $q[0][$s | tostring]] | add' "$T/missing.json")
DROPPED=$(jq '[.[].dropped] | add' "$T/first.json")
check_true "the dropped counts ($DROPPED) are the points of the missing messages ($LOST)" \
	test "$DROPPED" = "$LOST"
check_exit 0 "the outbox depth it reported stayed within the bound" jq -e -s \
	"[.[].points[] | select(.metric == \"agent.outbox_depth\").value] | max <= $CAP" \
	"$T/tlm.out"
finish
