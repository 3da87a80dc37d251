#!/usr/bin/env bash
# Modbus sources (issue 16, docs/modbus.md) end to end: a real
# fleet-agent polls tests/tools/modbus-sim on 127.0.0.1 and its values
# reach fleetd (`fleetctl telemetry`, table and JSON): the constant
# registers exactly, after type, word order (abcd, cdab, badc, dcba),
# scale and offset; the ramp equal to the simulator's waveform at each
# sample's second; a window aggregate (mean, min, max, count) exactly
# what the raw samples of the same polls give, one point a window.
# The simulator silent: SOURCE.up 0, and meanwhile the agent answers
# `fleetctl diag ID modbus` and applies a shadow change; back: up 1.  An
# exception from the device counts as an error, the source stays up.  A
# bad map through the shadow is refused with its line and the old map
# stays, as does one naming a host outside [modbus] shadow_targets; a
# good one replaces it without a restart.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
sim_device dev-a

CTL=$T/sim.ctl
echo ok >"$CTL"
check "the simulator listens" modbus_sim_start sim --control "$CTL"
PORT=$PORT_sim

cat >"$A/modbus.conf" <<EOF
; the simulator's registers (tests/tools/modbus-sim.c)
[source sim]
host = 127.0.0.1
port = $PORT
unit_id = 1
interval = 500ms
timeout = 300ms

[registers sim]
u16 = holding 0
i16 = holding 1 type=int16 scale=0.5
u32_abcd = holding 2 type=uint32
u32_cdab = holding 4 type=uint32 order=cdab
u32_badc = holding 6 type=uint32 order=badc
u32_dcba = holding 8 type=uint32 order=dcba
f_abcd = holding 10 type=float32
f_cdab = holding 12 type=float32 order=cdab scale=2 offset=1
f_badc = holding 14 type=float32 order=badc
f_dcba = holding 16 type=float32 order=dcba
i32 = holding 18 type=int32 scale=0.001 unit=kW
ramp = input 0
r_mean = input 2 agg=mean window=5s
r_min = input 3 agg=min window=5s
r_max = input 4 agg=max window=5s
r_count = input 5 agg=count window=5s
door = discrete 0
EOF
printf '[modbus]\nmap = modbus.conf\nshadow_targets = 127.0.0.1:%s\n' "$PORT" >>"$A/agent.conf"
agent_start_sim dev-a
check "dev-a comes online" wait_until 30 dev_online dev-a

tele() { fleetctl -o json telemetry dev-a --metric "$1" --limit 1000; }
last_is() { tele "$1" | jq -e --argjson v "$2" '.points[-1].value == $v' >/dev/null; }
npoints() { tele "$1" | jq '.points | length'; }
at_least() { [ "$(npoints "$1")" -ge "$2" ]; }

# --- exact values after type, word order, scale and offset ----------------
check "sim.u16 arrives in fleetd" wait_until 30 at_least sim.u16 1
for want in u16=1234 i16=-617 u32_abcd=305419896 u32_cdab=305419896 \
	u32_badc=305419896 u32_dcba=305419896 f_abcd=21.5 f_cdab=44 \
	f_badc=21.5 f_dcba=21.5 i32=-100 door=1 up=1; do
	check "sim.${want%%=*} is ${want#*=}" last_is "sim.${want%%=*}" "${want#*=}"
done
fleetctl telemetry dev-a --metric sim.f_cdab >"$T/f.txt" 2>&1
check_grep '^TIME +METRIC +VALUE$' "fleetctl telemetry (table): its header" cat "$T/f.txt"
check_grep '^[0-9T:.-]+Z +sim\.f_cdab +44$' "... and sim.f_cdab 44 rows" cat "$T/f.txt"

# --- the ramp: the simulator's second % 100 at each sample --------------
check "ten ramp samples" wait_until 30 at_least sim.ramp 10
tele sim.ramp >"$T/ramp.json"
# a sample is stamped just after the read: allow the second before
check "every ramp value is the waveform at its timestamp" jq -e '
	[.points[] | (.ts | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) as $s
	 | .value == ($s % 100) or .value == (($s - 1) % 100)] | all and length >= 10' "$T/ramp.json"

# --- aggregation: one point a 5 s window, from the same polls -------------
check "three windows of r_mean" wait_until 40 at_least sim.r_mean 3
for m in ramp r_mean r_min r_max r_count; do tele "sim.$m" >"$T/$m.json"; done
# windows of the raw ramp (by the sample's ms), each as {mean,min,max,count}
jq '[.points[] | {w: ((.ts | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) - ((.ts | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) % 5)), v: .value}]
	| group_by(.w) | map({key: (.[0].w | tostring), value: {mean: (map(.v) | add / length), min: (map(.v) | min), max: (map(.v) | max), count: length}}) | from_entries' \
	"$T/ramp.json" >"$T/raw-windows.json"
agg_ok() {
	jq -e --slurpfile raw "$T/raw-windows.json" --arg k "$1" '
		[.points[] | ((.ts | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) | tostring) as $w
		 | select($raw[0][$w] != null) | .value == $raw[0][$w][$k]] | length >= 2 and all' "$T/r_$1.json"
}
for k in mean min max count; do
	check "r_$k of each window is the $k of the raw samples in it" agg_ok "$k"
done
check "the window points are stamped at the window's start" jq -e \
	'[.points[].ts | test(":[0-5][05]\\.000Z$")] | all' "$T/r_mean.json"
check_true "fewer points with aggregation: r_count $(npoints sim.r_count), raw $(npoints sim.ramp)" \
	test $((4 * $(npoints sim.r_count))) -lt "$(npoints sim.ramp)"

# --- diagnostics --------------------------------------------------------
fleetctl -o json diag dev-a modbus >"$T/diag.json"
check "diag modbus -o json: the source, up, values; fewer points sent than values read (windows)" jq -e --arg t "127.0.0.1:$PORT" '
	.ok and .result.map == "agent.conf" and (.result.sources | length) == 1
	and .result.sources[0].name == "sim" and .result.sources[0].target == $t
	and .result.sources[0].up and .result.sources[0].values.u16 == 1234
	and .result.sources[0].values.i32 == -100 and .result.samples_read > .result.points_sent
	and .result.points_sent > 0' "$T/diag.json"
fleetctl diag dev-a modbus >"$T/diag.txt" 2>&1
check_grep '^SOURCE +TARGET +UP +LAST-POLL +POLLS +ERRORS +LAST-ERROR$' "diag modbus (table): the sources' header" cat "$T/diag.txt"
check_grep "^sim +127\.0\.0\.1:$PORT +yes +[0-9T:-]+Z +[0-9]+ +0 " "... sim, up, no errors" cat "$T/diag.txt"
check_grep '^sim\.f_cdab +44$' "... its current values as SOURCE.NAME" cat "$T/diag.txt"

# --- an exception: an error, the source stays up ---------------------------
echo "exception 2" >"$CTL"
errors_seen() {
	fleetctl -o json diag dev-a modbus |
		jq -e '.result.sources[0] | .errors > 0 and (.last_error | test("Illegal data address")) and .up'
}
check "exception 2: counted as an error with its text, still up" wait_until 20 errors_seen
check "... and no sim.up 0 was sent" last_is sim.up 1

# --- silent: down, and the agent goes on -----------------------------------
echo silent >"$CTL"
check "the simulator stops answering: sim.up 0 arrives" wait_until 30 last_is sim.up 0
check_grep '"up": false' "diag modbus still answers meanwhile, the source down" \
	fleetctl -o json diag dev-a modbus
check "a shadow change meanwhile" fleetctl shadow set dev-a telemetry_interval=3600
applied_ti() { fleetctl -o json shadow get dev-a | jq -e '.reported.state.telemetry_interval == 3600' >/dev/null; }
check "... is applied and reported" wait_until 20 applied_ti
check_grep "modbus: source sim down" "the agent logs the source down" cat "$A/agent.log"
echo ok >"$CTL"
check "answering again: sim.up 1 arrives" wait_until 40 last_is sim.up 1

# --- maps through the shadow -------------------------------------------------
BAD=$(printf '[source sim]\nhost = 127.0.0.1\nport = %s\n[registers sim]\na = holding 0\nb = holding 0\n' "$PORT")
check "a map with overlapping registers through the shadow" fleetctl shadow set dev-a "modbus=$BAD"
refused_overlap() {
	fleetctl -o json shadow get dev-a |
		jq -e '.reported.refused.modbus | test("^modbus:6: b overlaps a")' >/dev/null
}
check "... is refused with its line" wait_until 20 refused_overlap
N0=$(npoints sim.u16)
check "... and the old map stays in force (sim.u16 keeps arriving)" wait_until 20 at_least sim.u16 $((N0 + 2))
ELSEWHERE=$(printf '[source sim]\nhost = 127.0.0.2\nport = %s\n[registers sim]\nx_u16 = holding 0\n' "$PORT")
check "a map naming a host outside [modbus] shadow_targets through the shadow" \
	fleetctl shadow set dev-a "modbus=$ELSEWHERE"
refused_target() {
	fleetctl -o json shadow get dev-a | jq -e '.reported.refused.modbus |
		test("^modbus:2: source sim: 127\\.0\\.0\\.2:[0-9]+ is not in .*shadow_targets")' >/dev/null
}
check "... is refused, naming the source and the setting" wait_until 20 refused_target
N0=$(npoints sim.u16)
check "... the old map stays in force" wait_until 20 at_least sim.u16 $((N0 + 2))
check_exit 1 "... and nothing was polled from it" at_least sim.x_u16 1
GOOD=$(printf '[source sim]\nhost = 127.0.0.1\nport = %s\ninterval = 200ms\n[registers sim]\nnew_u16 = holding 0 scale=2\n' "$PORT")
check "a good map through the shadow" fleetctl shadow set dev-a "modbus=$GOOD"
check "... sim.new_u16 arrives, scaled, without a restart" wait_until 30 last_is sim.new_u16 2468
check_grep '"map": "shadow"' "diag modbus names the shadow's map" fleetctl -o json diag dev-a modbus
check_true "the agent was never restarted" kill -0 "${AGENT_PID[dev-a]}"
check_exit 0 "the agent stops cleanly" agent_stop dev-a

finish
