#!/usr/bin/env bash
# Diagnostics against their peer and their limits in one run (issue 12):
#
#   one device  `fleetctl diag DEV ping` through fleetd, and `fleetctl
#               diag --direct` with a technician's certificate, RUNS
#               times each, against `mosquitto_rr` (Debian
#               mosquitto-clients) making the same MQTT v5 request with
#               the same certificate, payload and device: the wall time
#               of each whole command (process start, TLS, the answer),
#               median and p99.  The device is a real fleet-agent (sim
#               mode) on loopback, answering at once ([diag]
#               rate_per_min at its maximum, 6000, so that the cap does
#               not answer "busy").
#   fan-out     `fleetctl diag --all ping` to N fleet-sim devices (the
#               enrolled fleet of bench/lib-fleet.sh, shared with
#               bench/rollout.sh): wall time to the summary, and how
#               many answered.
#
# Targets: direct <= 1.5x and through fleetd <= 2x the mosquitto_rr
# round trip (medians); the fan-out to 10,000 devices answered in
# <= 10 s.  Ends with one line per metric: "metric: NAME VALUE UNIT
# (target ...) PASS|MISS".  Never part of make check.  Figures go to
# docs/performance.md.
#
#   nice -n 5 bench/diag.sh       (RUNS=100 BENCH_DEVICES=10000 BENCH_WORKERS=16)
#   BENCH_DEVICES=1000 bench/diag.sh                      a quick try
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
RUNS=${RUNS:-100}
N=${BENCH_DEVICES:-10000}
WORKERS=${BENCH_WORKERS:-16}
CACHE=${BENCH_CACHE:-/dev/shm/fleet-bench-rollout-$N}
export FLEET_BUILD=${FLEET_BUILD:-$top/build}
export FLEET_SRC=$top

scripts/install-deps --bench
make -s BUILD="$FLEET_BUILD" all
ulimit -n "$(ulimit -Hn)"
. bench/lib-fleet.sh

# ms of each run of a command, one per line, into FILE: timed RUNS FILE CMD...
timed() {
	local n=$1 out=$2 t0 i
	shift 2
	: >"$out"
	for ((i = 0; i < n; i++)); do
		t0=$(date +%s%N)
		"$@" >/dev/null 2>&1 || die "run $i of '$*' failed"
		echo $((($(date +%s%N) - t0) / 1000)) | awk '{ printf "%.1f\n", $1 / 1000 }' >>"$out"
	done
}
# the value at percentile P of a file of numbers
pct() { sort -n "$2" | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# --- one device: through fleetd, direct, mosquitto_rr ----------------------
latency() (
	set +eu
	. tests/e2e/lib.sh
	. tests/e2e/lib-agent.sh
	set -u
	start_fleetd --with-broker --log-level warn >/dev/null
	login_admin
	ota_firmware || die "no sample firmware: $(cat "$T/fw.log")"
	tok=$(fleetctl -o json token create one --enroll --uses 1 --ttl 1h | jq -r .token)
	sim_agent dev-bench "$tok" >/dev/null 2>&1 || die "the agent did not enrol"
	# its request rate cap at the maximum: the latency is measured, not the cap
	printf '\n[diag]\nrate_per_min = 6000\n' >>"$(agent_dir dev-bench)/agent.conf"
	agent_start_sim dev-bench
	wait_until 20 dev_online dev-bench || die "the agent is not online"
	fleetctl -q technician issue bench --ttl 1h --out "$T/bench.tgz" || die "no technician"
	mkdir -p "$T/tech" && tar -xzf "$T/bench.tgz" -C "$T/tech"
	d=$T/tech/tech-bench
	rr() {
		mosquitto_rr -h "$MQTT_HOST" -p "$MQTT_PORT" -V 5 --cafile "$FLEET_CA_FILE" \
			--cert "$d/cert.pem" --key "$d/key.pem" -q 1 -W 10 \
			-t fleet/dev-bench/diag/req -e fleet/dev-bench/diag/resp/tech-bench \
			-D publish correlation-data "bench-$RANDOM" -m '{"check":"ping"}' |
			grep -q '"pong"'
	}
	rr || die "mosquitto_rr got no pong"
	echo "# one device: $RUNS runs of each, alternating kinds per batch of 10"
	: >"$T/fleetd.ms"
	: >"$T/direct.ms"
	: >"$T/rr.ms"
	for ((b = 0; b < RUNS / 10; b++)); do
		timed 10 "$T/x" fleetctl diag dev-bench ping && cat "$T/x" >>"$T/fleetd.ms"
		timed 10 "$T/x" fleetctl diag --direct --cert-bundle "$T/bench.tgz" dev-bench ping &&
			cat "$T/x" >>"$T/direct.ms"
		timed 10 "$T/x" rr && cat "$T/x" >>"$T/rr.ms"
	done
	cp "$T/fleetd.ms" "$T/direct.ms" "$T/rr.ms" "$OUT/"
)
OUT=$(mktemp -d)
latency || die "the one-device part failed"
RR=$(pct 50 "$OUT/rr.ms") RR99=$(pct 99 "$OUT/rr.ms")
FD=$(pct 50 "$OUT/fleetd.ms") FD99=$(pct 99 "$OUT/fleetd.ms")
DI=$(pct 50 "$OUT/direct.ms") DI99=$(pct 99 "$OUT/direct.ms")
rm -rf "$OUT"
echo "# ping, ms (median / p99): mosquitto_rr $RR / $RR99, fleetctl diag --direct $DI / $DI99, fleetctl diag through fleetd $FD / $FD99"

# --- fan-out ---------------------------------------------------------------
fleet_cache
set +eu
. tests/e2e/lib.sh
. tests/e2e/lib-agent.sh
set -u
fleet_up
fleet_connect
TECH=$(fleetctl -o json token create tech --role technician | jq -r .token)
F0=$(date +%s%N)
fleetctl --token "$TECH" -o json diag --all ping --timeout 60 >"$T/fan.json" 2>"$T/fan.err"
F1=$(date +%s%N)
ANSWERED=$(jq -r .summary.answered "$T/fan.json")
echo "# fan-out: $(jq -c .summary "$T/fan.json") in $(secs "$F0" "$F1") s"
FAN_S=$(secs "$F0" "$F1")

echo "metric: diag_direct_vs_mosquitto_rr $(ratio "$DI" "$RR") x (target <= 1.5 x; median $DI ms vs $RR ms, p99 $DI99 vs $RR99) $(verdict "$(ratio "$DI" "$RR")" 1.5 le)"
echo "metric: diag_fleetd_vs_mosquitto_rr $(ratio "$FD" "$RR") x (target <= 2 x; median $FD ms vs $RR ms, p99 $FD99 vs $RR99) $(verdict "$(ratio "$FD" "$RR")" 2 le)"
[ "$ANSWERED" = "$N" ] || FAN_S=999
echo "metric: diag_fanout_${N} $FAN_S s (target <= 10 s; $ANSWERED of $N answered) $(verdict "$FAN_S" 10 le)"
