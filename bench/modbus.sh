#!/usr/bin/env bash
# Modbus polling and forwarding by one agent (issue 16, docs/modbus.md):
# one fleet-agent polls BENCH_MB_DEVICES (50) simulated Modbus TCP devices
# (one tests/tools/modbus-sim process serving consecutive ports) of
# BENCH_MB_REGS (100) holding registers each, every second, and forwards
# the values to a real fleetd through a real mosquitto.  Two phases of
# BENCH_WINDOW (30) s each on the same agent:
#
#   raw  every value sent as read
#   agg  the same map with agg=mean window=10s on every register (the
#        agent restarted on it: the map, some 200 KB, is over the
#        shadow's 64 KiB)
#
# Per phase: values the agent read a second (diag modbus samples_read),
# points it queued a second (points_sent), points fleetd stored a second
# (fleetctl status .telemetry.points), the agent's CPU (utime + stime of
# /proc/PID/stat over the window, % of one core) and RSS (VmRSS at the
# end, VmHWM), and the bytes the agent sent to the broker (bytes_acked
# of its MQTT connection, `ss -tin`: TLS records, MQTT framing and
# telemetry JSON included).
#
# Ends with one line per metric: "metric: NAME VALUE UNIT (target ...)
# PASS|MISS".  Never part of make check.  Figures go to
# docs/performance.md.
#
#   nice -n 5 bench/modbus.sh      (BENCH_MB_DEVICES=50 BENCH_MB_REGS=100
#                                   BENCH_WINDOW=30)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
DEVICES=${BENCH_MB_DEVICES:-50}
REGS=${BENCH_MB_REGS:-100}
WINDOW=${BENCH_WINDOW:-30}
export FLEET_BUILD=${FLEET_BUILD:-$top/build}
export FLEET_SRC=$top

[ "$REGS" -le 100 ] || { echo "bench: at most 100 registers a device (holding 100..199)" >&2; exit 2; }
make -s BUILD="$FLEET_BUILD" all "$FLEET_BUILD/tests/tools/modbus-sim"

set +eu
. tests/e2e/lib.sh
. tests/e2e/lib-agent.sh
set -u
verdict() { awk -v v="$1" -v t="$2" -v op="$3" \
	'BEGIN { print ((op == "le" ? v <= t : v >= t) ? "PASS" : "MISS") }'; }
die() { echo "bench: $*" >&2; exit 1; }

FLEETD_CONF=$'[telemetry]\nkeep_points = 100000\n[mqtt]\ndevice_burst = 1000000\ndevice_rate = 1000000'
start_fleetd --with-broker
login_admin
TOK=$(fleetctl -o json token create bench --enroll --uses 1 | jq -r .token)
agent_enroll gw "$TOK" || die "enrolment: $(cat "$(agent_dir gw)/enroll.out")"
A=$(agent_dir gw)
printf '#!/bin/sh\nexit 0\n' >"$T/fw"
chmod 755 "$T/fw"
fleet-agent sim-init "$A/sim" --image "$T/fw" >/dev/null

# --- the simulator on DEVICES consecutive free ports -----------------------
for try in 1 2 3 4 5; do
	BASE=$(free_port)
	modbus-sim --port "$BASE" --devices "$DEVICES" >"$T/sim.log" 2>&1 &
	SIM=$!
	wait_until 5 grep -q "devices on" "$T/sim.log" && break
	kill "$SIM" 2>/dev/null
	wait "$SIM" 2>/dev/null
	SIM=
done
[ -n "${SIM:-}" ] || die "modbus-sim: $(cat "$T/sim.log")"
track "$SIM"

# map AGG: the whole map, every register with AGG appended
map() {
	local d r
	for ((d = 0; d < DEVICES; d++)); do
		printf '[source d%d]\nhost = 127.0.0.1\nport = %d\ninterval = 1s\ntimeout = 500ms\n[registers d%d]\n' \
			"$d" $((BASE + d)) "$d"
		for ((r = 0; r < REGS; r++)); do
			printf 'r%d = holding %d%s\n' "$r" $((100 + r)) "$1"
		done
	done
}
map "" >"$A/modbus.conf"
printf '[modbus]\nmap = modbus.conf\n[telemetry]\ninterval = 0\n' >>"$A/agent.conf"
# start: the agent on the map in modbus.conf, all its sources up
start() {
	agent_start_sim gw
	APID=${AGENT_PID[gw]}
	wait_until 30 dev_online gw || die "the agent did not come online"
	wait_until 30 sh -c "[ \"\$(fleetctl -o json diag gw modbus | jq '[.result.sources[] | select(.up)] | length')\" = $DEVICES ]" ||
		die "not every source is up: $(fleetctl -o json diag gw modbus | jq -c '[.result.sources[] | select(.up | not) | .last_error]')"
	sleep 3 # settle: the first polls and the outbox's first burst
}

diag() { fleetctl -o json diag gw modbus | jq -r ".result.$1"; }
stored() { fleetctl -o json status | jq -r .telemetry.points; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$APID/stat"; }
# bytes the agent's MQTT connection had acknowledged by the broker
sent_bytes() {
	ss -tinpH "sport != :$MQTT_PORT" "dport = :$MQTT_PORT" 2>/dev/null |
		awk -v pid="pid=$APID," 'index($0, pid) { on = 1; next }
			on { if (match($0, /bytes_acked:[0-9]+/)) print substr($0, RSTART + 12, RLENGTH - 12); on = 0 }' |
		head -n 1
}
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$APID/status"; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }

# phase NAME: measure WINDOW seconds; sets NAME_* globals
phase() {
	local s0 p0 st0 c0 b0 t0 t1 secs
	s0=$(diag samples_read) p0=$(diag points_sent) st0=$(stored)
	c0=$(cpu_ticks) b0=$(sent_bytes) t0=$(date +%s.%N)
	sleep "$WINDOW"
	t1=$(date +%s.%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
	eval "${1}_READ=$(rate $(($(diag samples_read) - s0)) "$secs")"
	eval "${1}_QUEUED=$(rate $(($(diag points_sent) - p0)) "$secs")"
	eval "${1}_STORED=$(rate $(($(stored) - st0)) "$secs")"
	eval "${1}_CPU=$(awk -v c="$(($(cpu_ticks) - c0))" -v hz="$(getconf CLK_TCK)" -v s="$secs" 'BEGIN { printf "%.1f", 100 * c / hz / s }')"
	eval "${1}_BYTES=$(rate $(($(sent_bytes) - b0)) "$secs")"
	eval "${1}_RSS=$(($(status_kb VmRSS) / 1024))"
}

start
phase raw
RAW_HWM=$(($(status_kb VmHWM) / 1024))
agent_stop gw || die "the agent did not stop"
map ' agg=mean window=10s' >"$A/modbus.conf"
start
sleep 10 # a whole window before measuring
phase agg
HWM=$(($(status_kb VmHWM) / 1024))
[ "$RAW_HWM" -gt "$HWM" ] && HWM=$RAW_HWM
WANT=$((DEVICES * REGS))

echo "metric: modbus_values_read $raw_READ values/s (target >= $((WANT * 95 / 100)): $DEVICES devices x $REGS registers at 1 s) $(verdict "$raw_READ" $((WANT * 95 / 100)) ge)"
echo "metric: modbus_points_forwarded $raw_STORED points/s (target >= $((WANT * 95 / 100)), stored by fleetd; queued $raw_QUEUED/s) $(verdict "$raw_STORED" $((WANT * 95 / 100)) ge)"
echo "metric: modbus_agent_cpu $raw_CPU % (info; one core, raw; agg $agg_CPU %)"
echo "metric: modbus_agent_rss $raw_RSS MB (info; agg $agg_RSS MB, peak $HWM MB)"
echo "metric: modbus_bytes_sent_raw $raw_BYTES B/s (info; to the broker, TLS)"
echo "metric: modbus_bytes_sent_agg $agg_BYTES B/s (info; mean over 10 s windows: read $agg_READ/s, queued $agg_QUEUED/s, stored $agg_STORED/s)"
echo "metric: modbus_agg_bytes_ratio $(awk -v a="$agg_BYTES" -v r="$raw_BYTES" 'BEGIN { printf "%.3f", (r > 0 ? a / r : 0) }') x (target <= 0.2 x) $(verdict "$(awk -v a="$agg_BYTES" -v r="$raw_BYTES" 'BEGIN { printf "%.3f", (r > 0 ? a / r : 1) }')" 0.2 le)"
