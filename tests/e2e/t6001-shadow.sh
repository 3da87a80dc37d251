#!/usr/bin/env bash
# The device shadow (issue 13, docs/shadow.md) with a real fleet-agent,
# mosquitto and fleetd: desired keys applied and reported (refused ones
# with their reason), the delta, the table of `fleetctl shadow get`;
# desired set while the device is offline applied when it returns, and
# the agent running on its last known document while the broker is
# gone; the log level and diagnostics switch really taking effect; two
# concurrent --if-version writes (one wins, the other exits 5); an
# oversize document and malformed JSON refused, changing nothing; null
# deleting a key; a group write; desired retained for a new session.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
TOK=$(fleetctl -o json token create e2e --enroll --group line --uses 2 | jq -r .token)
printf '#!/bin/sh\ncase "$1" in --version) echo 1.0.0;; esac\nexit 0\n' >"$T/fw"
chmod 755 "$T/fw"
for d in dev-a dev-b; do
	check "enrol $d in group line" agent_enroll "$d" "$TOK"
	check "$d is a simulated device" fleet-agent sim-init "$(agent_dir "$d")/sim" --image "$T/fw"
done
A=$(agent_dir dev-a)
agent_start_sim dev-a
check "dev-a comes online" wait_until 30 dev_online dev-a

sh_json() { fleetctl -o json shadow get "$1"; }
# reported_at ID N: the device reported desired version N
reported_at() { sh_json "$1" | jq -e ".reported.version == $2" >/dev/null; }
desired_version() { sh_json dev-a | jq -r .desired.version; }

# --- applied, refused, delta ----------------------------------------------
check_exit 0 "a fresh device has an empty shadow at version 0" \
	sh -c "fleetctl -o json shadow get dev-a | jq -e '.desired.version == 0 and .desired.state == {} and .delta == {}'"
check_exit 0 "set known keys, a bad value and an unknown key" \
	fleetctl shadow set dev-a log_level=info diagnostics=true \
	telemetry_interval=30 maintenance_window=02:00-04:00 download_rate=100000 \
	gadget=1 download_rate_x=2
check_exit 0 "a bad value of a known key" fleetctl shadow set dev-a telemetry_interval=0
check_exit 0 "the agent reports version 2" wait_until 20 reported_at dev-a 2
sh_json dev-a >"$T/s2.json"
check_exit 0 "... applied: the known keys with good values" jq -e \
	'.reported.state == {log_level: "info", diagnostics: true, maintenance_window: "02:00-04:00", download_rate: 100000}' "$T/s2.json"
check_exit 0 "... refused: unknown keys and the bad value, each with why" jq -e \
	'.reported.refused == {gadget: "unknown key", download_rate_x: "unknown key", telemetry_interval: "not a whole number of seconds, 1..86400"}' "$T/s2.json"
check_exit 0 "... delta: the desired keys the device does not run" jq -e \
	'.delta == {gadget: 1, download_rate_x: 2, telemetry_interval: 0}' "$T/s2.json"
check_exit 0 "... reported has a time" jq -e '.reported.updated | test("^20[0-9-]+T")' "$T/s2.json"
check_grep '^desired: +version 2, updated 20' "shadow get (table): the desired version" \
	fleetctl shadow get dev-a
check_grep '^log_level +info +info +in sync$' "... a key in sync" fleetctl shadow get dev-a
check_grep '^gadget +1 +- +refused: unknown key$' "... a refused key and why" \
	fleetctl shadow get dev-a
check_grep '^KEY +DESIRED +REPORTED +STATE$' "... under a header" fleetctl shadow get dev-a
check_exit 0 "the agent keeps the document in its state dir" \
	jq -e '.version == 2 and .state.log_level == "info"' "$A/state/shadow.json"
check_true "... 0600" test "$(stat -c %a "$A/state/shadow.json")" = 600

# --- merge rule: null deletes, other keys stay -----------------------------
check_exit 0 "null deletes keys" fleetctl shadow set dev-a gadget=null download_rate_x=null telemetry_interval=60
check_exit 0 "... only the named keys changed" sh -c "fleetctl -o json shadow get dev-a |
	jq -e '.desired.version == 3 and (.desired.state | keys) == [\"diagnostics\", \"download_rate\", \"log_level\", \"maintenance_window\", \"telemetry_interval\"]'"
check_exit 0 "... and the device runs it all: no delta" wait_until 20 \
	sh -c "fleetctl -o json shadow get dev-a | jq -e '.reported.version == 3 and .delta == {} and .reported.refused == {}'"

# --- log level and diagnostics take effect --------------------------------
check_exit 0 "diag works while diagnostics are on" fleetctl diag dev-a ping
check_exit 0 "log_level=error" fleetctl shadow set dev-a log_level=error
check_exit 0 "... reported" wait_until 20 reported_at dev-a 4
check_exit 0 "a later version while at error level" fleetctl shadow set dev-a telemetry_interval=61
check_exit 0 "... reported" wait_until 20 reported_at dev-a 5
check_exit 1 "... the agent logged no info line for it" grep -q 'desired version 5 applied' "$A/agent.log"
check_exit 0 "log_level deleted: back to the start level" fleetctl shadow set dev-a log_level=null
check_exit 0 "... its info line is logged again" wait_until 20 grep -q 'desired version 6 applied' "$A/agent.log"

# --- offline: desired set meanwhile is applied on return -------------------
check_exit 0 "dev-a stops" agent_stop dev-a
check "... fleetd sees it offline" wait_until 20 dev_offline dev-a
check_exit 0 "set diagnostics=false while dev-a is offline" fleetctl shadow set dev-a diagnostics=false
check_exit 0 "... the device's copy is still the old one" jq -e '.version == 6' "$A/state/shadow.json"
agent_start_sim dev-a
check_exit 0 "back online, dev-a reports version 7" wait_until 30 reported_at dev-a 7
check_exit 0 "... and keeps it" jq -e '.version == 7 and .state.diagnostics == false' "$A/state/shadow.json"
check_grep 'diagnostics are off' "diag is refused with diagnostics off" fleetctl diag dev-a ping
check_exit 1 "... exit 1" fleetctl diag dev-a ping

# --- the last known document while the broker is gone -----------------------
check_exit 0 "dev-a stops again" agent_stop dev-a
check "fleetd and its broker are killed" fleetd_kill9
: >"$A/agent.log"
agent_start_sim dev-a
check_exit 0 "restarted without a broker, dev-a runs on version 7" \
	wait_until 20 grep -q 'shadow: desired version 7 applied' "$A/agent.log"
check "fleetd comes back" fleetd_restart --with-broker
check_exit 0 "dev-a comes online" wait_until 30 dev_online dev-a
check_grep 'diagnostics are off' "... diagnostics still off" fleetctl diag dev-a ping

# --- optimistic concurrency -------------------------------------------------
V=$(desired_version)
check_exit 5 "a stale --if-version is a conflict (exit 5)" \
	fleetctl shadow set dev-a --if-version $((V - 1)) telemetry_interval=90
fleetctl shadow set dev-a --if-version "$V" log_level=warn >"$T/c1.out" 2>&1 &
P1=$!
fleetctl shadow set dev-a --if-version "$V" log_level=debug >"$T/c2.out" 2>&1 &
P2=$!
wait $P1; R1=$?
wait $P2; R2=$?
check_true "two concurrent --if-version $V writes: one wins, one exits 5 ($R1 $R2)" \
	test "$(printf '%s\n' "$R1" "$R2" | sort | tr '\n' ' ')" = "0 5 "
check_grep "desired is at version $((V + 1)), not $V" "... the loser says why" cat "$T/c1.out" "$T/c2.out"
check_exit 0 "... desired moved on by exactly one version" test "$(desired_version)" = $((V + 1))

# --- refusals change nothing -----------------------------------------------
V=$(desired_version)
sh_json dev-a | jq -S .desired >"$T/before.json"
printf '{"log_level": "info",' >"$T/bad.json"
check_exit 1 "malformed JSON in --file is refused" fleetctl shadow set dev-a --file "$T/bad.json"
check_grep 'bad.json' "... naming the file" fleetctl shadow set dev-a --file "$T/bad.json"
post_bad() {
	test "$(api POST /api/v1/devices/dev-a/shadow -H "Authorization: Bearer $ADMIN_TOKEN" \
		--data-binary '{"desired": {' -o "$T/bad.resp" -w '%{http_code}')" = 400
}
check_exit 0 "malformed JSON sent to fleetd is refused with 400" post_bad
check_exit 0 "... with an error saying so" jq -e '.error.code == "bad_request"' "$T/bad.resp"
jq -n --arg v "$(head -c 66000 /dev/zero | tr '\0' x)" '{blob: $v}' >"$T/big.json"
check_exit 1 "an oversize document is refused" fleetctl shadow set dev-a --file "$T/big.json"
check_grep 'over the cap of 65536 bytes' "... saying the cap" fleetctl shadow set dev-a --file "$T/big.json"
check_exit 1 "a bad key is refused" fleetctl shadow set dev-a 'a/b=1'
check_exit 0 "nothing changed" sh -c "fleetctl -o json shadow get dev-a | jq -S .desired | cmp - '$T/before.json'"

# --- a group; desired is retained for a new session -------------------------
check_grep '^dev-b +1$' "shadow set --group (table): every device of the group" \
	fleetctl shadow set --group line log_level=info
check_exit 0 "... dev-a at its next version" test "$(desired_version)" = $((V + 1))
B=$(agent_dir dev-b)
check_exit 0 "dev-b (never run) gets its desired document, retained" sh -c \
	"mosquitto_sub -h $MQTT_HOST -p $MQTT_PORT -V 5 --cafile '$FLEET_CA_FILE' \
	--cert '$B/state/cert.pem' --key '$B/state/key.pem' -t fleet/dev-b/shadow/desired \
	-C 1 -W $((20 * WAIT_SCALE)) | jq -e '.version == 1 and .state == {log_level: \"info\"}'"
check_exit 3 "an unknown device is not found" fleetctl shadow get nosuch
check_exit 2 "--if-version with --group is a usage error" \
	fleetctl shadow set --group line --if-version 1 a=1
finish
