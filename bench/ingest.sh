#!/usr/bin/env bash
# fleetd's MQTT event ingestion against its peer in one run (issue 17):
# 1,000 devices over mTLS (tests/tools/mqtt-burst, one MQTT v5 client
# each, QoS 1, full speed) publish N job events each (the last one
# final) while
#
#   fleetd         stores them (job_events in its SQLite database), and
#   mosquitto_sub  (Debian mosquitto-clients) receives the same traffic
#                  from the same broker: it subscribes to fleet/+/events
#                  at QoS 1 as the identity "bench-observer", which the
#                  bench enrols and adds to the broker's acl file.
#
# Both rates run from mosquitto_sub's first event to each side's last:
# fleetd's by polling the database every 0.1 s (so up to 0.1 s late),
# mosquitto_sub's from its per-message timestamps.  fleetd's CPU is the
# sum of its threads' run time (/proc/PID/task/*/schedstat) before and
# after (its mosquitto child is a separate process, not counted).
#
# Ends with one line per metric: "metric: NAME VALUE UNIT (target ...)
# PASS|MISS".  Needs mosquitto-clients: scripts/install-deps --bench.
# Never part of make check.  Figures go to docs/performance.md.
#
#   bench/ingest.sh           (BENCH_DEVICES=1000 BENCH_EVENTS=20)
#   BENCH_PERF=/tmp/p.data bench/ingest.sh    also perf record fleetd
#   FLEET_STORE=pg bench/ingest.sh            fleetd on a PostgreSQL
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
NDEV=${BENCH_DEVICES:-1000}
NEV=${BENCH_EVENTS:-20}
export FLEET_BUILD=${FLEET_BUILD:-$top/build}
export FLEET_SRC=$top

scripts/install-deps --bench
make -s BUILD="$FLEET_BUILD" all "$FLEET_BUILD/tests/tools/mqtt-burst"

# lib.sh: fleetd with its broker on loopback ports, a temp dir, cleanup
# 1,000 clients: the broker (fleetd's child) and mqtt-burst need the fds
ulimit -n "$(ulimit -Hn)"
set +eu
. tests/e2e/lib.sh
. tests/e2e/lib-agent.sh
set -u
echo "# work dir $T, $NDEV devices x $NEV events, store ${FLEET_STORE:-sqlite}"
verdict() { awk -v v="$1" -v t="$2" -v op="$3" \
	'BEGIN { print ((op == "le" ? v <= t : v >= t) ? "PASS" : "MISS") }'; }
die() { echo "bench: $*" >&2; exit 1; }

# a device sends its N events in one burst: the budget must hold them
if [ $((NEV + 100)) -gt 500 ]; then
	FLEETD_CONF=$(printf '[mqtt]\ndevice_burst = %d' $((NEV + 100)))
fi
# info, as in production: a debug line per event would be measured too
start_fleetd --with-broker --log-level info >/dev/null
login_admin
# FLEET_STORE=pg: fleetd's store on a PostgreSQL (lib.sh); its server's
# CPU is reported beside fleetd's
stored() { store_sql 'SELECT count(*) FROM job_events'; }
db_pids() {
	local port pm
	[ -n "${FLEET_STORE_URL:-}" ] || return 0
	port=${FLEET_STORE_URL##*:}
	pm=$(pgrep -f -- "postgres -D .* -p ${port%%/*} ") || return 0
	echo "$pm" $(pgrep -P "$pm")
}

# --- devices, the observer, one job each -----------------------------------
TOK=$(fleetctl -o json token create bench --enroll --uses $((NDEV + 1)) --ttl 1h | jq -r .token)
enrol_some() {
	local id p=()
	for id in "$@"; do
		enroll_curl "$id" "$TOK" >"$T/enrol-$id.status" 2>&1 &
		p+=($!)
	done
	wait "${p[@]}"
}
for ((k = 1; k <= NDEV; k += 20)); do
	enrol_some $(seq -f 'd%g' "$k" $((k + 19 > NDEV ? NDEV : k + 19)))
done
enrol_some bench-observer
[ "$(cat "$T"/enrol-*.status | grep -c '^201$')" -eq $((NDEV + 1)) ] ||
	die "enrolment failed"
ota_firmware || { cat "$T/fw.log"; exit 1; }
fleetctl -q root push "$T/fw/root.json"
fleetctl -q bundle upload "$T/fw/fw-1.1.0.fwb" >/dev/null
# shellcheck disable=SC2046
fleetctl -o json update $(seq -f 'd%g' 1 "$NDEV") --bundle fleet-sample@1.1.0 2>"$T/update.err" |
	jq -r '.[] | "\(.device) \(.job)"' >"$T/spec"
[ "$(wc -l <"$T/spec")" -eq "$NDEV" ] || die "jobs were not created"

# --- the observer may read every device's events -------------------------
printf '\nuser bench-observer\ntopic read fleet/+/events\n' >>"$FLEETD_STATE/broker/acl"
BROKER=$(sed -n 's/.*mosquitto (pid \([0-9]*\)) listening.*/\1/p' "$T/fleetd.log" | tail -n 1)
[ -n "$BROKER" ] || die "no broker pid in fleetd's log"
kill -HUP "$BROKER"
(mq_sub bench-observer -t 'fleet/+/events' -q 1 -F '%U' >"$T/sub.ts" 2>"$T/sub.err") &
track $!
probe() {
	mq_pub d1 -t fleet/d1/events -q 1 -m '{"seq":1,"type":"probe","state":"running"}'
	[ -s "$T/sub.ts" ]
}
wait_until 20 probe || die "mosquitto_sub receives nothing (acl reload?)"
BASE_SUB=$(wc -l <"$T/sub.ts")

# --- the burst ----------------------------------------------------------------
TOTAL=$((NDEV * NEV))
# fleetd's CPU time in ns: the sum over its threads (schedstat's first
# field; /proc/PID/stat's utime+stime count 10 ms ticks, half a
# microsecond per event at 20,000 events)
cpu_ns() { for p in "$@"; do cat /proc/"$p"/task/*/schedstat; done 2>/dev/null |
	awk '{ s += $1 } END { printf "%.0f", s }'; }
DB_PIDS=$(db_pids)
CPU0=$(cpu_ns "$FLEETD_PID")
DB0=$(cpu_ns $DB_PIDS)
: >"$T/stored.ts"
# poll the database: "epoch-ns count" whenever the count changed
(last=-1
 while :; do
	n=$(stored 2>/dev/null) || { sleep 0.1; continue; }
	[ "$n" != "$last" ] && echo "$(date +%s%N) $n" >>"$T/stored.ts" && last=$n
	[ "$n" -ge "$TOTAL" ] && break
	sleep 0.1
 done) &
POLL=$!
track $POLL
# BENCH_PERF=FILE: perf record fleetd during the burst (where its CPU goes)
if [ -n "${BENCH_PERF:-}" ]; then
	perf record -g -o "$BENCH_PERF" -p "$FLEETD_PID" 2>"$T/perf.err" &
	PERF=$!
fi
mqtt-burst --host "$MQTT_HOST" --port "$MQTT_PORT" --cafile "$FLEET_CA_FILE" \
	--dir "$T/dev" --spec "$T/spec" --events "$NEV" --start-seq 2 \
	--resend-ms 0 --timeout 300 >"$T/burst.out" || echo "# mqtt-burst: exit $?"
echo "# mqtt-burst: $(cat "$T/burst.out")"
wait_until 120 sh -c "! kill -0 $POLL" || echo "# fleetd did not store all in time"
kill "$POLL" 2>/dev/null
CPU1=$(cpu_ns "$FLEETD_PID")
DB1=$(cpu_ns $DB_PIDS)
[ -n "${PERF:-}" ] && kill -INT "$PERF" && wait "$PERF" 2>/dev/null
wait_until 30 sh -c "[ \$(wc -l <'$T/sub.ts') -ge $((BASE_SUB + TOTAL)) ]" ||
	echo "# mosquitto_sub did not receive all in time"

# --- figures --------------------------------------------------------------------
STORED=$(stored)
SUB_N=$(($(wc -l <"$T/sub.ts") - BASE_SUB))
LOST=$((TOTAL - STORED))
# Both rates run from the same start, mosquitto_sub's first event (the
# burst reaching the broker's subscribers), to each side's last: for
# fleetd the first poll that found every event stored (up to 0.1 s late:
# the bias is against fleetd).  The first line of stored.ts is the count
# before the burst.
T0=$(tail -n +"$((BASE_SUB + 1))" "$T/sub.ts" | head -n 1)
OURS_RATE=$(awk -v t0="$T0" 'NR == 1 { base = $2 } { t = $1 / 1e9; n = $2 }
	END { d = t - t0; printf "%.0f", (d > 0 ? (n - base) / d : 0) }' "$T/stored.ts")
SUB_RATE=$(tail -n +"$((BASE_SUB + 1))" "$T/sub.ts" | awk 'NR == 1 { t0 = $1 } { t = $1 }
	END { d = t - t0; printf "%.0f", (d > 0 ? (NR - 1) / d : 0) }')
CPU_US=$(awk -v a="$CPU0" -v b="$CPU1" -v n="$STORED" \
	'BEGIN { printf "%.1f", (n > 0 ? (b - a) / 1e3 / n : 0) }')
RATIO=$(awk -v a="$OURS_RATE" -v b="$SUB_RATE" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
# when each side saw its first and last event (s since the sub's first)
echo "# timeline (s after mosquitto_sub's first event): mosquitto_sub last" \
	"$(tail -n 1 "$T/sub.ts" | awk -v t="$T0" '{ printf "%.2f", $1 - t }');" \
	"fleetd first/last stored seen $(awk -v t="$T0" 'NR == 2 { f = $1 } { l = $1 }
	END { printf "%.2f/%.2f", f / 1e9 - t, l / 1e9 - t }' "$T/stored.ts")"
echo "# fleetd stored $STORED of $TOTAL events at $OURS_RATE/s; mosquitto_sub received $SUB_N at $SUB_RATE/s"
fleetctl -o json status >"$T/status.json" &&
	jq -r '.ingest | "# fleetd: \(.batches) batches (\(.stored) stored, queue high water \(.queue_high_water))"' "$T/status.json"
echo "# fleetd CPU $(awk -v a="$CPU0" -v b="$CPU1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') s for $STORED events"
[ -n "$DB_PIDS" ] &&
	echo "# PostgreSQL CPU $(awk -v a="$DB0" -v b="$DB1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') s (its server processes; fsync off, as in the tests)"
echo "metric: ingest_lost $LOST events (target 0) $(verdict "$LOST" 0 le)"
echo "metric: ingest_rate_vs_mosquitto_sub $RATIO x (target >= 0.8 x; fleetd $OURS_RATE/s, mosquitto_sub $SUB_RATE/s) $(verdict "$RATIO" 0.8 ge)"
echo "metric: fleetd_cpu_per_event $CPU_US us (target <= 20 us) $(verdict "$CPU_US" 20 le)"
