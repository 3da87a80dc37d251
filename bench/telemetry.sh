#!/usr/bin/env bash
# Telemetry ingestion and forwarding against its peer in one run (issue
# 13): N fleet-sim devices (the enrolled fleet of bench/lib-fleet.sh,
# shared with bench/rollout.sh and bench/diag.sh) publish RATE points a
# second each (`fleet-sim --telemetry-rate`, docs/sim.md) while
#
#   fleetd         stores them and forwards them to a real InfluxDB and a
#                  real PostgreSQL (fleetd.conf [influx], [postgres];
#                  tests/e2e/lib-influx.sh, lib-pg.sh start the servers)
#   mosquitto_sub  (Debian mosquitto-clients) receives the same traffic
#                  from the same broker: fleet/+/telemetry at QoS 1 as
#                  the identity "bench-observer" (read access added to
#                  the broker's acl file), points counted inside the
#                  messages, distinct (device, seq).
#
# Rates are taken over a fixed window (BENCH_WINDOW s, after every device
# is online and BENCH_WARMUP s more): points fleetd stored
# (`fleetctl status` .telemetry.points), points each forwarder sent
# (.forward.*.sent), points mosquitto_sub received (its per-message
# timestamps inside the window).  fleetd's CPU is the sum of its threads'
# run time (/proc/PID/task/*/schedstat, as bench/ingest.sh; its mosquitto
# child not counted) over the window, per 1,000 points stored.
#
# Then fleet-sim is stopped and, after a bounded drain, the points
# published (fleet-sim keeps no telemetry count: the distinct points
# mosquitto_sub received over the whole run stand for them) are compared
# with what fleetd stored and with count(*) in each database.
#
# Ends with one line per metric: "metric: NAME VALUE UNIT (target ...)
# PASS|MISS".  Needs mosquitto-clients, influxd and PostgreSQL:
# scripts/install-deps --bench.  Never part of make check.  Figures go to
# docs/performance.md.
#
#   nice -n 5 bench/telemetry.sh    (BENCH_DEVICES=1000 BENCH_RATE=1
#                                    BENCH_WINDOW=60 BENCH_WORKERS=8)
#   BENCH_DEVICES=100 bench/telemetry.sh                    a quick try
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
N=${BENCH_DEVICES:-1000}
RATE=${BENCH_RATE:-1}
WINDOW=${BENCH_WINDOW:-60}
WARMUP=${BENCH_WARMUP:-5}
WORKERS=${BENCH_WORKERS:-8}
CACHE=${BENCH_CACHE:-/dev/shm/fleet-bench-rollout-$N}
export FLEET_BUILD=${FLEET_BUILD:-$top/build}
export FLEET_SRC=$top

scripts/install-deps --bench
make -s BUILD="$FLEET_BUILD" all
# one socket per device in fleet-sim, and in the broker (fleetd's child)
ulimit -n "$(ulimit -Hn)"

. bench/lib-fleet.sh
fleet_cache

set +eu
. tests/e2e/lib.sh
. tests/e2e/lib-agent.sh
. tests/e2e/lib-pg.sh
. tests/e2e/lib-influx.sh
set -u
unset PGPASSWORD
export PGPASSFILE=$T/no-passfile

# --- the databases, fleetd forwarding to both ------------------------------
pg_start || die "postgres: $(tail -n 5 "$T/postgres.log")"
influx_start || die "influxd: $(tail -n 5 "$T/influxd.log")"
influx_admin "CREATE DATABASE fleet" | grep -q '"statement_id":0' || die "no influx database"
FLEETD_CONF="[influx]
url = $INFLUX_URL
database = fleet
[postgres]
conninfo = $PG_CONNINFO"
fleet_up

# --- the observer may read every device's telemetry -------------------------
# a probe that fleetd refuses (no seq, no points): it stores nothing of it
fleet_observe telemetry '{"probe":1}'
# the devices' messages as "time device seq points" (a resend repeats a
# message: the same device and seq)
sub_msgs() {
	grep -v ' fleet/bench-probe/' "$T/sub.ts" | awk '{
		split($2, tp, "/")
		s = match($0, /"seq": *[0-9]+/) ? substr($0, RSTART, RLENGTH) : "-"
		gsub(/[^0-9]/, "", s)
		print $1, tp[2], s, gsub(/"metric"/, "") }'
}
# distinct points received with a time in [A, B] (s since the epoch)
sub_points() {
	sub_msgs | awk -v a="$1" -v b="$2" '!seen[$2 " " $3]++ && $1 >= a && $1 <= b { n += $4 }
		END { print n + 0 }'
}
# distinct (device, metric, ts) received: a database keeps one point per
# key (InfluxDB's series and time, PostgreSQL's primary key); fleet-sim
# gives each of a device's points its own ms, so this equals the points
sub_keys() {
	grep -v ' fleet/bench-probe/' "$T/sub.ts" | awk '{
		split($2, tp, "/"); rest = $0
		while (match(rest, /\{[^{}]*"ts": *[0-9]+[^{}]*\}/)) {
			o = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH)
			match(o, /"metric": *"[^"]*"/); m = substr(o, RSTART, RLENGTH)
			match(o, /"ts": *[0-9]+/); t = substr(o, RSTART, RLENGTH)
			if (!seen[tp[2] " " m " " t]++) n++
		} } END { print n + 0 }'
}

# --- the devices, then the window ---------------------------------------------
fleet_connect --telemetry-rate "$RATE"
status() { fleetctl -o json status; }
# stored, influx sent, postgres sent, fleetd's CPU ns, the time
sample() {
	status | jq -r '"\(.telemetry.points) \(.forward.influx.sent) \(.forward.postgres.sent)"' |
		tr '\n' ' '
	cat /proc/"$FLEETD_PID"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f ", s }'
	date +%s.%N
}
sleep "$WARMUP"
read -r P0 I0 G0 CPU0 W0 < <(sample)
sleep "$WINDOW"
read -r P1 I1 G1 CPU1 W1 < <(sample)
HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$FLEETD_PID/status")
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# --- drain: fleet-sim stopped, every side catches up ------------------------------
stop "$SIM_PID" 60
stored() { status | jq .telemetry.points; }
in_influx() { influx_query fleet 'SELECT count(value) FROM telemetry' | jq '.results[0].series[0].values[0][1] // 0'; }
in_pg() { pg_psql -c 'SELECT count(*) FROM telemetry'; }
# (wait_until counts tries, not seconds: 100 tries here, 0.2-0.5 s each)
PUBLISHED=$(sub_points 0 9e9) KEYS=$(sub_keys)
all_in() { [ "$(stored)" -ge "$PUBLISHED" ] && [ "$(in_influx)" -ge "$KEYS" ] &&
	[ "$(in_pg)" -ge "$KEYS" ]; }
D0=$(date +%s%N)
wait_until 10 all_in || echo "# not every side has all $PUBLISHED points after $(secs "$D0" "$(date +%s%N)") s"
D1=$(date +%s%N)
# what mosquitto_sub received late counts too
PUBLISHED=$(sub_points 0 9e9) KEYS=$(sub_keys)
STORED=$(stored) INFLUX=$(in_influx) PG=$(in_pg)
status >"$T/status.json"

# --- figures --------------------------------------------------------------------
SECS=$(awk -v a="$W0" -v b="$W1" 'BEGIN { printf "%.2f", b - a }')
per_s() { awk -v n="$1" -v d="$SECS" 'BEGIN { printf "%.0f", n / d }'; }
SUB_W=$(sub_points "$W0" "$W1")
OURS_RATE=$(per_s $((P1 - P0))) SUB_RATE=$(per_s "$SUB_W")
INFLUX_RATE=$(per_s $((I1 - I0))) PG_RATE=$(per_s $((G1 - G0)))
RATIO=$(awk -v a="$OURS_RATE" -v b="$SUB_RATE" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
FWD=$((INFLUX_RATE < PG_RATE ? INFLUX_RATE : PG_RATE))
FWD_RATIO=$(awk -v a="$FWD" -v b="$SUB_RATE" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
CPU_MS=$(awk -v a="$CPU0" -v b="$CPU1" -v n=$((P1 - P0)) \
	'BEGIN { printf "%.1f", (n > 0 ? (b - a) / 1e6 / n * 1000 : 0) }')
CPU_PCT=$(awk -v a="$CPU0" -v b="$CPU1" -v d="$SECS" 'BEGIN { printf "%.1f", (b - a) / 1e7 / d }')
# lost: what fleetd did not store of the points, what a database lacks
# of the keys; PASS only when every count is exactly the one expected
lost() { echo $(($1 > $2 ? $1 - $2 : 0)); }
LOST=$(($(lost "$PUBLISHED" "$STORED") + $(lost "$KEYS" "$INFLUX") + $(lost "$KEYS" "$PG")))
SAME=$([ "$STORED" = "$PUBLISHED" ] && [ "$INFLUX" = "$KEYS" ] && [ "$PG" = "$KEYS" ] && echo 0 || echo 1)

echo "# $N devices x $RATE points/s; window $SECS s after all online + $WARMUP s;" \
	"load average $LOAD ($(nproc) CPUs)"
echo "# window: mosquitto_sub received $SUB_W points ($SUB_RATE/s), fleetd stored" \
	"$((P1 - P0)) ($OURS_RATE/s), forwarded to InfluxDB $((I1 - I0)) ($INFLUX_RATE/s)" \
	"and PostgreSQL $((G1 - G0)) ($PG_RATE/s)"
echo "# fleetd CPU $(awk -v a="$CPU0" -v b="$CPU1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }') s" \
	"in the window ($CPU_PCT% of a core), peak RSS (VmHWM) $((HWM / 1024)) MB"
echo "# whole run: published (distinct points mosquitto_sub received) $PUBLISHED, fleetd" \
	"stored $STORED; $KEYS distinct (device, metric, ts), InfluxDB holds $INFLUX," \
	"PostgreSQL $PG (drain $(secs "$D0" "$D1") s)"
jq -r '"# status: telemetry \(.telemetry | tostring)", "# status: forward \(.forward | tostring)"' "$T/status.json"
echo "metric: telemetry_ingest_vs_mosquitto_sub $RATIO x (target >= 0.8 x, forwarding on; fleetd $OURS_RATE/s, mosquitto_sub $SUB_RATE/s) $(verdict "$RATIO" 0.8 ge)"
echo "metric: telemetry_points_lost $LOST points (target 0; published $PUBLISHED = stored $STORED, keys $KEYS = influx $INFLUX = postgres $PG) $([ "$SAME" = 0 ] && echo PASS || echo MISS)"
echo "metric: telemetry_forward_vs_mosquitto_sub $FWD_RATIO x (info; influx $INFLUX_RATE/s, postgres $PG_RATE/s)"
echo "metric: fleetd_cpu_per_1000_points $CPU_MS ms (info; $CPU_PCT% of a core at $OURS_RATE points/s)"
echo "metric: fleetd_peak_rss $((HWM / 1024)) MB (info; $N devices)"
