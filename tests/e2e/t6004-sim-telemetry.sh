#!/usr/bin/env bash
# fleet-sim --telemetry-rate (issue 13, docs/sim.md): every simulated
# device publishes synthetic points at the rate on fleet/ID/telemetry,
# through its in-memory outbox, with its own seq from 1 and no gaps.  The
# messages are watched as fleetd's identity, so, as in t6003, fleetd
# stops once the devices are enrolled and the test runs its broker
# configuration with its own mosquitto.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

N=4
RATE=5
start_fleetd --with-broker
login_admin
check "build the sample firmware" ota_firmware
sim_start sims $N tl line --telemetry-rate $RATE
online() { [ "$(fleetctl -o json devices list | jq '[.[] | select(.online)] | length')" = "$N" ]; }
check_exit 0 "$N simulated devices come online" wait_until 60 online
check_exit 0 "... each in the table of devices list" sh -c \
	"fleetctl devices list | grep -c '^tl-000[1-$N] ' | grep -qx $N"
check "fleetd and its broker stop" fleetd_kill9
check_exit 0 "our mosquitto with fleetd's configuration" broker_start
stdbuf -oL mosquitto_sub -h "$MQTT_HOST" -p "$MQTT_PORT" -V 5 \
	--cafile "$FLEET_CA_FILE" --cert "$FLEETD_STATE/mqtt/fleetd.pem" \
	--key "$FLEETD_STATE/mqtt/fleetd.key" -q 1 -v -t 'fleet/+/telemetry' \
	>"$T/sub.out" 2>"$T/sub.err" &
track $!
# the messages as JSON lines {"id", "seq", "n", "dropped"}
msgs() {
	sed -n 's|^fleet/\([^/ ]*\)/telemetry \(.*\)$|{"id": "\1", "m": \2}|p' "$T/sub.out" |
		jq -c '{id, seq: .m.seq, n: (.m.points | length), dropped: .m.dropped}' >"$T/msgs.json"
}
points_each() { msgs && jq -e -s --argjson n "$N" --argjson min "$1" \
	'group_by(.id) | length == $n and all(map(.n) | add >= $min)' "$T/msgs.json"; }
check_exit 0 "every device publishes sim.value points again" wait_until 60 points_each $((RATE * 4))
check_exit 0 "... only sim.value points" sh -c \
	"sed 's/^[^ ]* //' '$T/sub.out' | jq -e -s '[.[].points[].metric] | unique == [\"sim.value\"]'"
# (a QoS-1 resend after the reconnect may repeat a seq: first ones count)
check_exit 0 "... each device's seq one up from the last, in arrival order; nothing dropped" \
	jq -e -s 'all(.[]; .dropped == 0) and (group_by(.id) | all(
	 reduce (.[].seq) as $x ([]; if index([$x]) then . else . + [$x] end) |
	 . as $s | [range(1; length) | $s[.] == $s[. - 1] + 1] | all))' \
	"$T/msgs.json"
check_exit 0 "... at most 64 points a message" jq -e -s 'all(.n >= 1 and .n <= 64)' "$T/msgs.json"
# (a database keeps one point per device, metric and millisecond)
check_exit 0 "... each device's sample times all different" sh -c \
	"sed -n 's|^fleet/\([^/ ]*\)/telemetry \(.*\)\$|{\"id\": \"\1\", \"m\": \2}|p' '$T/sub.out' |
	 jq -e -s 'unique_by([.id, .m.seq]) | group_by(.id) | all([.[].m.points[].ts] | length == (unique | length))'"
check_exit 0 "fleet-sim stops cleanly" sim_stop "$SIM_PID"
finish
