#!/usr/bin/env bash
# fleet-agent against its peer and its limit, side by side in one run
# (issues 5 and 11):
#
#   idle RSS      fleet-agent (sim mode, connected, enrolled) vs the
#                 mender client daemon (Debian mender-client) started
#                 beside it, both after a settling time
#   install       a 256 MiB bundle from fleetd over loopback HTTPS with
#                 mTLS: the agent's job from "queued" to "installed"
#                 (download, signature, hash, write into the inactive
#                 slot, fsync) vs `curl -o /dev/null` of the same URL with
#                 the same client certificate (the limit: one TLS read)
#   RSS during    the agent's peak RSS (VmHWM) from the command to
#   the install   "installed" minus its RSS before, for a 16 MiB and a
#                 1 GiB bundle: the difference is what grows with the
#                 size (flat memory: nothing)
#   state dir     its peak size (du, sampled every 0.1 s) during the
#                 16 MiB and 1 GiB installs: the bundle streams into the
#                 slot, the state dir keeps only small state
#
# Ends with one line per metric: "metric: NAME VALUE UNIT (target ...)
# PASS|MISS".  Needs the peers: scripts/install-deps --bench (run here).
# Never part of make check.  Figures go to docs/performance.md.
#
#   bench/agent.sh     (BENCH_MIB=256 RUNS=3 SETTLE=10 BIG_MIB=1024)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
MIB=${BENCH_MIB:-256}
RUNS=${RUNS:-3}
SETTLE=${SETTLE:-10}
BIG_MIB=${BIG_MIB:-1024}
export FLEET_BUILD=${FLEET_BUILD:-$top/build}
export FLEET_SRC=$top

scripts/install-deps --bench
make -s BUILD="$FLEET_BUILD" all "$FLEET_BUILD/tests/tools/fsig-tool" \
	"$FLEET_BUILD/tests/tools/fleet-agent-test"

# lib.sh: fleetd with its broker on loopback ports, a temp dir, cleanup
set +eu
. tests/e2e/lib.sh
. tests/e2e/lib-agent.sh
set -u
echo "# work dir $T, bundle ${MIB} MiB, $RUNS runs, settle ${SETTLE}s"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "PASS" : "MISS" }'; }
# ms since the epoch of a log line's timestamp
log_ms() { date -d "$(echo "$1" | cut -d' ' -f1)" +%s%3N; }

start_fleetd --with-broker >/dev/null
login_admin
ota_firmware || { cat "$T/fw.log"; exit 1; }
fleetctl -q root push "$T/fw/root.json"
TOK=$(fleetctl -o json token create bench --enroll --uses 1 --ttl 1h | jq -r .token)
sim_agent dev-bench "$TOK"
A=$(agent_dir dev-bench)
agent_start_sim dev-bench
PID=${AGENT_PID[dev-bench]}
wait_until 15 dev_online dev-bench || { echo "agent not online"; exit 1; }

# ------------------------------------------------------------------
# Idle RSS, side by side with the mender client daemon
M=$T/mender
mkdir -p "$M/data"
printf 'device_type=sim\n' >"$M/data/device_type"
cat >"$M/mender.conf" <<EOF
{"ServerURL": "https://127.0.0.1:9", "UpdatePollIntervalSeconds": 1800,
 "InventoryPollIntervalSeconds": 1800, "RetryPollIntervalSeconds": 300,
 "DeviceTypeFile": "$M/data/device_type"}
EOF
mender --config "$M/mender.conf" --fallback-config "$M/none.conf" \
	--data "$M/data" --no-syslog --log-file "$M/mender.log" daemon &
MPID=$!
track $MPID
sleep "$SETTLE"
OURS_IDLE=$(rss_kb "$PID")
MENDER_IDLE=$(rss_kb "$MPID")
# where it goes: private (anonymous) memory and the proportional share
# of the shared library pages
mem() { awk '/^(Rss|Pss|Pss_Anon|Pss_File):/ { printf "%s %.1f MB  ", $1, $2 / 1024 }' "/proc/$1/smaps_rollup"; }
echo "# idle: fleet-agent $(mem "$PID")"
echo "# idle: mender      $(mem "$MPID")"
kill "$MPID" 2>/dev/null

# ------------------------------------------------------------------
# Installs.  The agent is the test build (fleet-agent-test: the same
# code, plus the failpoints) run with FLEET_AGENT_FAILPOINTS=installed:
# it stops itself (SIGSTOP) right after "installed", so its peak RSS of
# the install (VmHWM) can be read before it reboots (the sim reboot
# re-executes it, which resets VmHWM).  Nothing samples it during the
# timed installs, so nothing competes for the CPU; the state dir is
# sampled during the other two.
agent_stop dev-bench
AGENT_BIN=fleet-agent-test AGENT_ENV=FLEET_AGENT_FAILPOINTS=installed \
	agent_start_sim dev-bench
PID=${AGENT_PID[dev-bench]}
wait_until 15 dev_online dev-bench || { echo "agent not online"; exit 1; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
: >"$T/ours.s"
: >"$T/curl.s"
: >"$T/growth.kb"
: >"$T/state.kb"
: >"$T/ours.cpu"
: >"$T/curl.cpu"

# CPU time (user + system, clock ticks) a process used so far
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# the state dir's size every 0.1 s, until killed
sample_state() {
	while :; do
		du -sk "$A/state" | cut -f1 >>"$T/state.kb"
		sleep 0.1
	done
}

# install VERSION MIB [sampled]: a bundle of the sample firmware
# followed by MIB MiB of random bytes; curl it, then install it;
# appends seconds to $T/curl.s and $T/ours.s and the RSS growth (kB) to
# $T/growth.kb; "sampled": no curl, and the state dir is sampled
install() {
	local version=$1 mib=$2 b url lines before job q d spid= cpu0
	ota_pad "$T/fw/fw-1.1.0" "$mib" "$T/img"
	b=$(ota_bundle "$T/img" "$version" 1)
	fleetctl -q bundle upload "$b" >/dev/null 2>&1
	SIZE=$(stat -c %s "$b")
	rm -f "$T/img" "$b"
	url="$FLEET_URL/api/v1/bundles/$(fleetctl -o json bundles show \
		"fleet-sample@$version" | jq -r .id)/download"
	# the page cache is clean (sync) before each side
	if [ -z "${3:-}" ]; then
		sync
		sleep 1
		/usr/bin/time -f '%U %S' -a -o "$T/curl.cpu" \
			curl -sS -o /dev/null --cacert "$FLEET_CA_FILE" --cert "$A/state/cert.pem" \
			--key "$A/state/key.pem" -w '%{time_total}\n' "$url" >>"$T/curl.s"
	fi
	sync
	sleep 1
	lines=$(wc -l <"$A/agent.log")
	before=$(rss_kb "$PID")
	if [ -n "${3:-}" ]; then
		nice -n 19 bash -c "$(declare -f sample_state); A='$A' T='$T' sample_state" &
		spid=$!
	fi
	cpu0=$(cpu_ticks "$PID")
	job=$(update_job dev-bench "fleet-sample@$version")
	wait_until 600 proc_stopped "$PID" || { echo "no install"; exit 1; }
	[ -z "${3:-}" ] && echo $(($(cpu_ticks "$PID") - cpu0)) >>"$T/ours.cpu"
	[ -n "$spid" ] && kill "$spid" && wait "$spid" 2>/dev/null
	echo $(($(hwm_kb "$PID") - before)) >>"$T/growth.kb"
	kill -CONT "$PID"
	q=$(tail -n +"$lines" "$A/agent.log" | grep -m1 'update queued')
	d=$(tail -n +"$lines" "$A/agent.log" | grep -m1 'update installed')
	[ -z "${3:-}" ] && echo "$(($(log_ms "$d") - $(log_ms "$q")))" |
		awk '{ printf "%.3f\n", $1 / 1000 }' >>"$T/ours.s"
	wait_until 60 job_final "$job" || { echo "job $job did not end"; exit 1; }
	wait_until 15 dev_online dev-bench
}

install 1.4.0 16 sampled # 16 MiB: the base line of the RSS growth
SMALL_GROWTH=$(cat "$T/growth.kb")
: >"$T/growth.kb"
for i in $(seq "$RUNS"); do
	install "1.5.$i" "$MIB" # every run installs, into the other slot
done
MIB_GROWTH=$(tr '\n' ' ' <"$T/growth.kb")
: >"$T/growth.kb"
install 1.6.0 "$BIG_MIB" sampled
BIG_SIZE=$SIZE
BIG_GROWTH=$(cat "$T/growth.kb")
OURS_S=$(median <"$T/ours.s")
CURL_S=$(median <"$T/curl.s")
FLAT=$((BIG_GROWTH - SMALL_GROWTH))
[ "$FLAT" -lt 0 ] && FLAT=0
STATE_KB=$(sort -n "$T/state.kb" | tail -n 1)

echo "# install of $((MIB << 20)) bytes + the sample firmware, seconds per run: ours $(tr '\n' ' ' <"$T/ours.s")curl $(tr '\n' ' ' <"$T/curl.s")"
# CPU seconds per run (user + system): on a loaded machine the wall
# times move with the neighbours, the work does not
echo "# CPU seconds per run: ours $(awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f ", $1 / t }' "$T/ours.cpu")curl $(awk '{ printf "%.2f ", $1 + $2 }' "$T/curl.cpu")"
echo "# agent RSS growth during an install (VmHWM - VmRSS before): 16 MiB ${SMALL_GROWTH} kB, ${MIB} MiB ${MIB_GROWTH}kB, ${BIG_MIB} MiB ($BIG_SIZE bytes) ${BIG_GROWTH} kB"
echo "# state dir during the 16 MiB and ${BIG_MIB} MiB installs: $(wc -l <"$T/state.kb") samples, largest ${STATE_KB} kB"
RATIO=$(awk -v a="$OURS_S" -v b="$CURL_S" 'BEGIN { printf "%.2f", a / b }')
echo "metric: idle_rss $(mb "$OURS_IDLE") MB (target <= 4 MB; mender $(mb "${MENDER_IDLE:-0}") MB) $(verdict "$(mb "$OURS_IDLE")" 4)"
echo "metric: install_${MIB}MiB_vs_curl $RATIO x (target <= 1.2 x; ours ${OURS_S} s, curl ${CURL_S} s) $(verdict "$RATIO" 1.2)"
echo "metric: rss_growth_16MiB_to_${BIG_MIB}MiB $(mb "$FLAT") MB (target <= 1 MB, flat) $(verdict "$(mb "$FLAT")" 1)"
echo "metric: state_dir_peak $STATE_KB kB (target <= 1024 kB) $(verdict "$STATE_KB" 1024)"
