#!/usr/bin/env bash
# TAB latency of the live-id completions (issue 15) with 100,000 device
# ids in the completion cache, against the 100 ms limit:
#
#   complete_prefix  `fleetctl __complete devices dev-0999` (the 100
#                    ids that match, out of a scan of all of them)
#   complete_all     `fleetctl __complete devices ""` (all 100,000)
#   bash_tab         the whole TAB in bash: the generated _fleetctl for
#                    `fleetctl devices show dev-0999<TAB>` (its command
#                    table walk, then __complete)
#
# The cache is written as fleetctl writes it (header, one id a line)
# at the path of a server URL nobody serves, and kept fresh, so every
# run is the cached path a TAB takes; the wall time's p50 (the verdict)
# and p99 of RUNS runs, and the CPU time's p50 (what the machine's load
# cannot inflate).  Ends
# with one line per metric: "metric: NAME VALUE UNIT (target ...)
# PASS|MISS".  Never part of make check; figures go to
# docs/performance.md.
#
#   bench/complete.sh     (RUNS=50 IDS=100000)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
RUNS=${RUNS:-50}
IDS=${IDS:-100000}
build=${FLEET_BUILD:-$top/build}
make -s BUILD="$build" "$build/fleetctl"
export PATH=$build:$PATH

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fleet-bench-complete.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME=$tmp/cache FLEETCTL_CONFIG=$tmp/none
export FLEET_SERVER=https://127.0.0.1:9 # nothing listens: never asked
die() { echo "bench/complete.sh: $*" >&2; exit 1; }

# cli_ccache_path: the first 16 hex digits of the URL's SHA-256
hash=$(printf %s "$FLEET_SERVER" | sha256sum | cut -c1-16)
cache=$XDG_CACHE_HOME/fleet/complete-$hash.devices
mkdir -p "$XDG_CACHE_HOME/fleet"
chmod 0700 "$XDG_CACHE_HOME/fleet"
{ echo fleet-complete-v1; seq -f 'dev-%06.0f' 0 $((IDS - 1)); } >"$cache"
chmod 0600 "$cache"
fresh() { touch "$cache"; } # before each run: within the 60 s TTL

n=$(fleetctl __complete devices "" | wc -l)
[ "$n" = "$IDS" ] || die "the cache answered $n ids, not $IDS"
n=$(fleetctl __complete devices dev-0999 | wc -l)
[ "$n" = 100 ] || die "dev-0999 matched $n ids, not 100"

# wall and CPU (user + system) ms of each run, a line each, into FILE:
# timed FILE CMD...
timed() {
	local out=$1 i t
	shift
	: >"$out"
	for ((i = 0; i < RUNS; i++)); do
		fresh
		t=$( { TIMEFORMAT='%3R %3U %3S'; time "$@" >/dev/null 2>&1 || echo fail; } 2>&1)
		case $t in *fail*) die "run $i of '$*' failed" ;; esac
		echo "$t" | awk '{ printf "%.1f %.1f\n", $1 * 1000, ($2 + $3) * 1000 }' >>"$out"
	done
}
# the value at percentile P of column C of FILE: pct P C FILE
pct() {
	awk -v c="$2" '{ print $c }' "$3" | sort -n |
		awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i] }'
}
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v < t) ? "PASS" : "MISS" }'; }
tab() {
	bash -c '. completions/fleetctl.bash
		COMP_WORDS=(fleetctl devices show dev-0999); COMP_CWORD=3; _fleetctl
		[ ${#COMPREPLY[@]} = 100 ]'
}

timed "$tmp/prefix" fleetctl __complete devices dev-0999
timed "$tmp/all" fleetctl __complete devices ""
timed "$tmp/tab" tab
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
for m in prefix:complete_prefix all:complete_all tab:bash_tab; do
	f=$tmp/${m%%:*}
	p50=$(pct 50 1 "$f") p99=$(pct 99 1 "$f") cpu=$(pct 50 2 "$f")
	echo "metric: ${m#*:} $p50 ms p50 (target < 100 ms; p99 $p99 ms, CPU p50 $cpu ms, $IDS ids cached, $RUNS runs) $(verdict "$p50" 100)"
done
