#!/usr/bin/env bash
# A rollout to 10,000 simulated devices over mTLS on this machine (issue
# 10), against its targets and its peer in one run:
#
#   connect    fleet-sim (docs/sim.md) started on N devices it enrolled
#              before: seconds until fleetd has every one online
#   rollout    a small bundle (the sample firmware, fleet-sample 1.1.0)
#              to the group of the N devices in 4 waves (1%,10%,50%,100%),
#              --soak 0s --health-window 0s: wall time from `fleetctl
#              rollout create` to the rollout completed (the database
#              polled every 0.1 s), device updates per minute
#   fleetd     CPU (utime+stime of /proc/PID/stat, every thread; not its
#              mosquitto) over the rollout per device update, and its
#              peak RSS (VmHWM) at the end
#   ingest     job events fleetd stored (job_events) against what
#              `mosquitto_sub` (Debian mosquitto-clients, identity
#              "bench-observer", read access to fleet/+/events added to
#              the broker's acl file) received from the same broker in
#              the same run; both rates from mosquitto_sub's first event
#              to each side's last
#   lost       devices whose update fleet-sim finished but whose final
#              state fleetd lacks
#   mirror     BENCH_MIRROR=1: fleetd's [bundles] mirror_url names an
#              nginx (Debian nginx-light, tests/e2e/lib-nginx.sh) on a
#              free 127.0.0.1 port, TLS with a certificate of the fleet
#              CA, ssl_verify_client on against it, serving fleetd's
#              bundle directory read-only: the devices download from it
#              (docs/ota.md "Mirrors"), and its CPU (master and worker)
#              over the rollout per update is printed on its own line
#              (the work moved, it did not vanish), with how many
#              downloads nginx answered and where the devices'
#              downloading events say their bytes came from
#
# The enrolled fleet is kept in BENCH_CACHE (default
# /dev/shm/fleet-bench-rollout-N) and every run works on a copy of it
# (bench/lib-fleet.sh), so "connect" is a started fleet-sim process
# reusing its identities (no enrolment) until all are online, and every
# device starts on 1.0.0.
#
# Ends with one line per metric: "metric: NAME VALUE UNIT (target ...)
# PASS|MISS".  Needs mosquitto-clients: scripts/install-deps --bench
# (run here).  Never part of make check.  Figures go to
# docs/performance.md.  Takes the machine: run it alone, with nice.
#
#   nice -n 5 bench/rollout.sh     (BENCH_DEVICES=10000 BENCH_WORKERS=16)
#   BENCH_DEVICES=1000 bench/rollout.sh                   a quick try
#   BENCH_PERF=/tmp/p.data bench/rollout.sh     also perf record fleetd
#   BENCH_MIRROR=1 nice -n 5 bench/rollout.sh   bundles from the mirror
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
N=${BENCH_DEVICES:-10000}
WORKERS=${BENCH_WORKERS:-16}
CACHE=${BENCH_CACHE:-/dev/shm/fleet-bench-rollout-$N}
export FLEET_BUILD=${FLEET_BUILD:-$top/build}
export FLEET_SRC=$top

scripts/install-deps --bench
make -s BUILD="$FLEET_BUILD" all
# one socket per device in fleet-sim, and in the broker (fleetd's child)
ulimit -n "$(ulimit -Hn)"

. bench/lib-fleet.sh
fleet_cache

# lib.sh: a temp dir, cleanup of every tracked process
set +eu
. tests/e2e/lib.sh
. tests/e2e/lib-agent.sh
. tests/e2e/lib-nginx.sh
set -u
MIRROR=${BENCH_MIRROR:-0}
if [ "$MIRROR" = 1 ]; then
	mirror_port
	FLEETD_CONF=$(printf '[bundles]\nmirror_url = %s' "$MIRROR_URL")
fi
fleet_up
if [ "$MIRROR" = 1 ]; then
	mirror_start "$FLEETD_STATE/bundles" || die "the mirror (nginx) did not start: $(cat "$T/nginx/error.log")"
	echo "# mirror: nginx $(nginx -v 2>&1 | sed 's|.*/||') on $MIRROR_URL, 1 worker, mTLS"
fi

# --- the observer may read every device's events -------------------------
# a probe from another identity (the broker takes the identity as the
# client id) with no job: fleetd stores nothing for it
fleet_observe events '{"seq":1,"type":"probe"}'
BROKER=$(broker_pid)
# the devices' events: every line but the probes', as "time job seq"
# (a device sends an event again when it missed fleetd's PUBACK)
sub_events() {
	grep -v ' fleet/bench-probe/' "$T/sub.ts" | awk '{
		j = match($0, /"job": *"[^"]*"/) ? substr($0, RSTART, RLENGTH) : "-"
		s = match($0, /"seq": *[0-9]+/) ? substr($0, RSTART, RLENGTH) : "-"
		gsub(/[^0-9]/, "", s); gsub(/^"job": *"|"$/, "", j)
		print $1, j, s }'
}
sub_distinct() { sub_events | awk '!seen[$2 " " $3]++' | wc -l; }

# --- connect: a started fleet-sim until every device is online -------------
fleet_connect

# --- the rollout -----------------------------------------------------------
# CPU ticks (utime + stime, every thread) of a process
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
HZ=$(getconf CLK_TCK)
# ns a process's threads were runnable but waited for a CPU (schedstat's
# second field; threads that end in between are not counted): how much
# the machine held them back
waited() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $2 } END { printf "%.0f", s }'; }
# nginx's master and its workers
nginx_ticks() {
	local p t=0
	[ "$MIRROR" = 1 ] || { echo 0; return; }
	for p in "$MIRROR_PID" $(pgrep -P "$MIRROR_PID"); do
		t=$((t + $(ticks "$p")))
	done
	echo "$t"
}
F0=$(ticks "$FLEETD_PID") B0=$(ticks "$BROKER") S0=$(ticks "$SIM_PID") N0=$(nginx_ticks)
W0=$(($(waited "$FLEETD_PID") + $(waited "$BROKER") + $(waited "$SIM_PID")))
# poll the database: "epoch-ns events state" whenever they changed,
# until the rollout is in one of the states it ends or stops in
ENDS='^(completed|rolled-back|paused|aborted)$'
(last=
 while :; do
	l=$(q "SELECT (SELECT count(*) FROM job_events), coalesce((SELECT state FROM rollouts WHERE id = 'bench'), '-')" 2>/dev/null) ||
		{ sleep 0.1; continue; }
	[ "$l" != "$last" ] && echo "$(date +%s%N) ${l/|/ }" >>"$T/poll" && last=$l
	[[ ${l#*|} =~ $ENDS ]] && break
	sleep 0.1
 done) &
POLL=$!
track $POLL
if [ -n "${BENCH_PERF:-}" ]; then
	perf record --call-graph dwarf,16384 -F 499 -o "$BENCH_PERF" -p "$FLEETD_PID" 2>"$T/perf.err" &
	PERF=$!
fi
R0=$(date +%s%N)
fleetctl -q rollout create --bundle fleet-sample@1.1.0 --group bench \
	--waves 1%,10%,50%,100% --soak 0s --health-window 0s --id bench \
	>"$T/create.out" || die "rollout create failed"
wait_until $((N / 10 + 300)) sh -c "! kill -0 $POLL" || echo "# the rollout did not end in time"
kill "$POLL" 2>/dev/null
F1=$(ticks "$FLEETD_PID") B1=$(ticks "$BROKER") S1=$(ticks "$SIM_PID") N1=$(nginx_ticks)
W1=$(($(waited "$FLEETD_PID") + $(waited "$BROKER") + $(waited "$SIM_PID")))
[ -n "${PERF:-}" ] && kill -INT "$PERF" && wait "$PERF" 2>/dev/null
R1=$(awk -v e="$ENDS" '$3 ~ e { print $1; exit }' "$T/poll")
R1=${R1:-$(date +%s%N)}
STATE=$(q "SELECT state FROM rollouts WHERE id = 'bench'")
HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$FLEETD_PID/status")

# --- what each side saw ------------------------------------------------------
final() { q "SELECT count(*) FROM jobs WHERE rollout = 'bench' AND final = 1"; }
sim_done() { sim_stat '.jobs.succeeded + .jobs.failed + .jobs["rolled-back"]' "$SIM"; }
# fleet-sim writes its counts every second; fleetd's side may still land
fleetd_has_all() { local n; n=$(sim_done); [ "${n:-0}" -gt 0 ] && [ "$n" -le "$(final)" ]; }
wait_until 30 fleetd_has_all || echo "# fleetd lacks final states fleet-sim has"
STORED=$(q "SELECT count(*) FROM job_events")
sub_has_all() { [ "$(sub_distinct)" -ge "$STORED" ]; }
wait_until 30 sub_has_all || echo "# mosquitto_sub received fewer events than fleetd stored"
sub_events >"$T/sub.events"
SIM_DONE=$(sim_done)
FINAL=$(final)
SUCCEEDED=$(q "SELECT count(*) FROM jobs WHERE rollout = 'bench' AND type = 'update' AND state = 'succeeded'")
ROLLBACKS=$(q "SELECT count(*) FROM jobs WHERE rollout = 'bench' AND type = 'rollback'")
REASON=$(q "SELECT reason FROM rollouts WHERE id = 'bench'")
LOST=$((SIM_DONE > FINAL ? SIM_DONE - FINAL : 0))
SUB_N=$(wc -l <"$T/sub.events")
# distinct (job, seq), and when the last new one came
read -r SUB_D SUB_LAST < <(awk '!seen[$2 " " $3]++ { n++; t = $1 } END { print n + 0, t }' "$T/sub.events")

echo "# fleetctl rollout status bench:"
fleetctl rollout status bench | sed 's/^/#   /'
q "SELECT wave + 1, devices, started, done FROM rollout_waves WHERE rollout = 'bench' ORDER BY wave" |
	awk -F'|' -v t0="$R0" '{ t = int(t0 / 1e9)
		printf "# wave %d: %d devices, started %+d s, %s (s after create)\n", $1, $2, $3 - t,
			$4 ? sprintf("done %+d s", $4 - t) : "not done" }'
echo "# rollout $STATE in $(secs "$R0" "$R1") s: $SUCCEEDED of $N updates succeeded," \
	"$ROLLBACKS rollback jobs${REASON:+ ($REASON)};" \
	"fleet-sim finished $SIM_DONE jobs ($(sim_stat '.jobs | tostring' "$SIM")," \
	"firmware $(sim_stat '.firmware | tostring' "$SIM")); fleetd has $FINAL final"
cpu_s() { awk -v t="$1" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }'; }
echo "# CPU over the rollout: fleetd $(cpu_s $((F1 - F0))) s, its mosquitto" \
	"$(cpu_s $((B1 - B0))) s, fleet-sim $(cpu_s $((S1 - S0))) s; their threads waited" \
	"$(secs "$W0" "$W1") s for a CPU ($(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "# fleetd peak RSS (VmHWM) $((HWM / 1024)) MB for $N devices online and the rollout"
if [ "$MIRROR" = 1 ]; then
	# the devices' downloading events say where their bytes came from
	echo "# mirror: nginx answered $(grep -c ' 200 "GET /bundles/' "$T/nginx/access.log") downloads" \
		"($(grep -c ' 206 "GET /bundles/' "$T/nginx/access.log") resumed); downloading events" \
		"from the mirror $(grep -c '"source": *"mirror"' "$T/sub.ts"), from fleetd" \
		"$(grep -c '"source": *"fleetd"' "$T/sub.ts") (fall-backs $(grep -c '"detail": *"mirror failed' "$T/sub.ts"))"
	echo "# nginx CPU per update: $(awk -v t=$((N1 - N0)) -v hz="$HZ" -v n="$SUCCEEDED" \
		'BEGIN { printf "%.3f", (n > 0 ? t * 1000 / hz / n : 0) }') ms ($(cpu_s $((N1 - N0))) s over the rollout)"
fi

# ingestion: both from mosquitto_sub's first device event to each side's last
T0=$(awk 'NR == 1 { print $1 }' "$T/sub.events")
OURS_LAST=$(awk -v n="$STORED" '$2 >= n { printf "%.3f", $1 / 1e9; exit }' "$T/poll")
OURS_LAST=${OURS_LAST:-$(date +%s.%N)}
OURS_RATE=$(awk -v n="$STORED" -v a="$T0" -v b="$OURS_LAST" 'BEGIN { printf "%.0f", (b > a ? n / (b - a) : 0) }')
SUB_RATE=$(awk -v n="$SUB_D" -v a="$T0" -v b="$SUB_LAST" 'BEGIN { printf "%.0f", (b > a ? n / (b - a) : 0) }')
echo "# events: fleetd stored $STORED at $OURS_RATE/s (last seen $(awk -v a="$T0" -v b="$OURS_LAST" 'BEGIN { printf "%.1f", b - a }') s" \
	"after mosquitto_sub's first); mosquitto_sub received $SUB_N, $SUB_D distinct (job, seq) at $SUB_RATE/s" \
	"(last new $(awk -v a="$T0" -v b="$SUB_LAST" 'BEGIN { printf "%.1f", b - a }') s); distinct ones fleetd did not store: $((SUB_D > STORED ? SUB_D - STORED : 0))"
fleetctl -o json status >"$T/status.json" &&
	jq -r '"# fleetd ingest: \(.ingest.batches) batches (\(.ingest.stored) stored, queue high" +
		" water \(.ingest.queue_high_water)); refused: \(.ingest.duplicates) duplicates," +
		" \(.ingest.rejected) rejected, \(.jobs.illegal_transitions) illegal transitions," +
		" \(.jobs.stale_events) stale events; over budget \(.mqtt.over_budget)"' "$T/status.json"

RATE=$(per_min "$SUCCEEDED" $((R1 - R0)))
CPU_MS=$(awk -v t=$((F1 - F0)) -v hz="$HZ" -v n="$SUCCEEDED" \
	'BEGIN { printf "%.3f", (n > 0 ? t * 1000 / hz / n : 0) }')
RATIO=$(awk -v a="$OURS_RATE" -v b="$SUB_RATE" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
echo "metric: rollout_lost_reports $LOST devices (target 0; fleet-sim finished $SIM_DONE, fleetd has $FINAL final) $(verdict "$LOST" 0 le)"
echo "metric: rollout_updates_per_min $RATE /min (target >= 10000 /min, AWS IoT Jobs 1000 /min; $SUCCEEDED updates in $(secs "$R0" "$R1") s) $(verdict "$RATE" 10000 ge)"
echo "metric: rollout_ingest_vs_mosquitto_sub $RATIO x (target >= 0.8 x; fleetd $OURS_RATE/s, mosquitto_sub $SUB_RATE/s) $(verdict "$RATIO" 0.8 ge)"
WHERE=fleetd
[ "$MIRROR" = 1 ] && WHERE="the mirror (nginx), not fleetd"
echo "metric: fleetd_cpu_per_update $CPU_MS ms (target <= 1 ms; bundles served by $WHERE) $(verdict "$CPU_MS" 1 le)"
