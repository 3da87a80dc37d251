#!/usr/bin/env bash
# Memory footprint of the device-side programs (issue 9), optionally
# before and after a change, on the same machine in one run:
#
#   verify     peak RSS of `fleetctl bundle verify` (GNU time's maximum
#              resident set size, median of RUNS) on a real signed
#              bundle: the sample firmware padded with BENCH_MIB MiB of
#              random bytes, signed with the sample's test key, checked
#              against its root (streaming keeps this flat; buffering
#              would show the bundle's size)
#   agent      fleet-agent's RSS and PSS (/proc/PID/smaps_rollup) after
#              SETTLE seconds idle: sim mode, enrolled, connected to a
#              real fleetd and its broker on loopback; and the shared
#              objects it maps (/proc/PID/maps)
#
# With REV (a git revision), REV is built in a temporary git worktree
# (make -j all, its own BUILD inside it; the worktree is removed on
# exit) and measured the same way with its own tests/e2e helpers and
# firmware-sample: both sides are printed, and the ratio after/before.
# Issue 9's "before" is 12e5b98 (main just before its first merge).
#
# Ends with one line per metric: "metric: NAME VALUE UNIT (target ...)
# PASS|MISS" (for this tree).  Needs GNU time: scripts/install-deps
# --bench (run here).  Never part of make check.  Figures go to
# docs/performance.md.  PSS divides shared pages among every process
# that maps them: other programs running on the machine lower it, so
# compare before and after from one run on an otherwise idle machine.
#
#   bench/footprint.sh [REV]      (BENCH_MIB=32 RUNS=3 SETTLE=10)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
REV=${1:-}
MIB=${BENCH_MIB:-32}
RUNS=${RUNS:-3}
SETTLE=${SETTLE:-10}
export BENCH_MIB=$MIB RUNS SETTLE

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "PASS" : "MISS" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# measure SRC BUILD OUT: the figures of one tree into the file OUT
# (lines "KEY VALUE"), in a subshell so that lib.sh's temp dir, fleetd,
# broker and agent are cleaned up by its own trap before the next side
measure() (
	export FLEET_SRC=$1 FLEET_BUILD=$2
	out=$3
	set +eu
	. "$FLEET_SRC/tests/e2e/lib.sh"
	. "$FLEET_SRC/tests/e2e/lib-agent.sh"
	set -u
	echo "# $FLEET_SRC: work dir $T"
	ota_firmware || { cat "$T/fw.log"; exit 1; }

	# --- verify: a real signed bundle of a few tens of MiB
	ota_pad "$T/fw/fw-1.1.0" "$MIB" "$T/img"
	b=$(ota_bundle "$T/img" 9.0.0 1) || exit 1
	rm -f "$T/img"
	echo "verify_bytes $(stat -c %s "$b")" >>"$out"
	for _ in $(seq "$RUNS"); do
		/usr/bin/time -o "$T/time" -f %M "$FLEET_BUILD/fleetctl" -q \
			bundle verify "$b" --root "$T/fw/root.json" --hardware sim \
			>/dev/null || { echo "verify failed"; exit 1; }
		tail -n 1 "$T/time" >>"$T/verify.kb"
	done
	echo "verify_kb $(median <"$T/verify.kb")" >>"$out"
	echo "verify_runs $(tr '\n' ' ' <"$T/verify.kb")" >>"$out"
	rm -f "$b"

	# --- the agent, idle
	start_fleetd --with-broker >/dev/null
	login_admin
	fleetctl -q root push "$T/fw/root.json"
	tok=$(fleetctl -o json token create bench --enroll --uses 1 --ttl 1h 2>/dev/null | jq -r .token)
	sim_agent dev-bench "$tok" || { cat "$(agent_dir dev-bench)/enroll.out"; exit 1; }
	agent_start_sim dev-bench
	pid=${AGENT_PID[dev-bench]}
	wait_until 15 dev_online dev-bench || { echo "agent not online"; exit 1; }
	sleep "$SETTLE" # idle is the point: nothing to wait for
	kill -0 "$pid" || { echo "agent died"; exit 1; }
	{
		awk '/^(Rss|Pss|Pss_Anon|Pss_File):/ { sub(":", "", $1); print "agent_" $1 " " $2 }' \
			"/proc/$pid/smaps_rollup"
		echo "agent_libs $(awk '$6 ~ /\.so/ { n = split($6, p, "/"); print p[n] }' \
			"/proc/$pid/maps" | sort -u | tr '\n' ' ')"
		echo "agent_needed $(readelf -d "$FLEET_BUILD/fleet-agent" |
			sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
		costs "$pid" "$FLEET_BUILD/fleet-agent"
		echo "agent_top $(sort -k3,3nr "$T/objs" | head -n 10 |
			awk '{ printf "%s %d/%d, ", $1, $2, $3 }')"
	} >>"$out"
	agent_stop dev-bench >/dev/null
)

# costs PID EXE: for each NEEDED library of EXE, the RSS and PSS (kB) of
# the mapped objects that only it brings in (it, and what ldd lists for
# it that neither the program nor any other NEEDED entry needs): what
# dropping that one dependency would save.  Lines "cost LIB RSS PSS".
costs() {
	local pid=$1 exe=$2 n path
	awk '/^[0-9a-f]+-[0-9a-f]+ / { n = split($6, p, "/"); cur = (NF >= 6) ? p[n] : "[anon]"; next }
	     /^Rss:/ { r[cur] += $2 } /^Pss:/ { q[cur] += $2 }
	     END { for (k in r) print k, r[k], q[k] }' "/proc/$pid/smaps" >"$T/objs"
	ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' >"$T/needs"
	for n in $(readelf -d "$exe" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		path=$(awk -v n="$n" '$1 == n { print $2 }' "$T/needs")
		{ basename "$(readlink -f "$path")"
		  ldd "$path" | awk '$3 ~ /^\// { print $3 }' | xargs -r readlink -f |
			xargs -r -n1 basename; } | sort -u | sed "s|^|$n |"
	done >"$T/closure"
	awk 'FNR == NR { o[$1] = $2 " " $3; next }
	     { by[$2] = by[$2] " " $1; cnt[$2]++; lib[$1] = 1; if (!($2 in seen)) { seen[$2]; objs[++m] = $2 } }
	     END { for (i = 1; i <= m; i++) { x = objs[i]
	             if (cnt[x] == 1 && x != "libc.so.6" && x !~ /^ld-linux/ && x != "libm.so.6") {
	               split(o[x], v, " "); l = substr(by[x], 2); rs[l] += v[1]; ps[l] += v[2] } }
	           for (l in lib) print "cost", l, rs[l] + 0, ps[l] + 0 }' "$T/objs" "$T/closure" |
		sort -k3,3nr
}

get() { sed -n "s/^$2 //p" "$1"; }

# report FILE LABEL: the figures of one side
report() {
	echo "# $2: verify of $(get "$1" verify_bytes) bytes, peak RSS kB per run: $(get "$1" verify_runs)"
	echo "# $2: verify peak RSS $(mb "$(get "$1" verify_kb)") MB (median)"
	echo "# $2: agent idle RSS $(mb "$(get "$1" agent_Rss)") MB, PSS $(mb "$(get "$1" agent_Pss)") MB" \
		"(anon $(mb "$(get "$1" agent_Pss_Anon)") MB, file $(mb "$(get "$1" agent_Pss_File)") MB)"
	echo "# $2: agent NEEDED: $(get "$1" agent_needed)"
	echo "# $2: agent maps: $(get "$1" agent_libs)"
	echo "# $2: what each NEEDED library alone brings into the agent (RSS kB, PSS kB):"
	get "$1" cost | awk -v s="$2" '{ printf "#   %-22s %6d %6d\n", $1, $2, $3 }'
	echo "# $2: agent's largest mappings (RSS/PSS kB): $(get "$1" agent_top)"
}

W=$(mktemp -d "${TMPDIR:-/tmp}/fleet-footprint.XXXXXX")
WT=
cleanup_top() {
	local rc=$?
	set +e
	if [ -n "$WT" ]; then
		git -C "$top" worktree remove --force "$WT" 2>/dev/null
		rm -rf "$WT"
		git -C "$top" worktree prune
	fi
	rm -rf "$W"
	exit "$rc"
}
trap cleanup_top EXIT
trap 'exit 130' INT TERM

scripts/install-deps --bench
make -s BUILD="$top/build" all
if [ -n "$REV" ]; then
	WT=$W/rev
	git worktree add --detach "$WT" "$REV" >/dev/null 2>&1 ||
		{ echo "bench: cannot check out $REV" >&2; exit 1; }
	echo "# building $REV ($(git -C "$WT" log -1 --format='%h %s'))"
	make -s -C "$WT" -j"$(nproc)" BUILD="$WT/build" all >"$W/rev-build.log" 2>&1 ||
		{ tail -n 30 "$W/rev-build.log"; exit 1; }
	measure "$WT" "$WT/build" "$W/before"
fi
measure "$top" "$top/build" "$W/after"

echo "# bundle of the sample firmware + $MIB MiB, $RUNS verify runs, agent idle ${SETTLE}s"
[ -n "$REV" ] && report "$W/before" "before ($REV)"
report "$W/after" "after ($(git -C "$top" log -1 --format=%h))"

V=$(mb "$(get "$W/after" verify_kb)")
R=$(mb "$(get "$W/after" agent_Rss)")
P=$(mb "$(get "$W/after" agent_Pss)")
if [ -n "$REV" ]; then
	vb=$(mb "$(get "$W/before" verify_kb)")
	rb=$(mb "$(get "$W/before" agent_Rss)")
	pb=$(mb "$(get "$W/before" agent_Pss)")
	echo "# after/before: verify $(ratio "$V" "$vb") x, agent RSS $(ratio "$R" "$rb") x, agent PSS $(ratio "$P" "$pb") x"
	was() { echo "; before $1 MB, $(ratio "$2" "$1") x"; }
fi
echo "metric: verify_peak_rss_${MIB}MiB $V MB (target <= 8 MB${REV:+$(was "$vb" "$V")}) $(verdict "$V" 8)"
echo "metric: agent_idle_pss $P MB (target <= 3 MB${REV:+$(was "$pb" "$P")}) $(verdict "$P" 3)"
echo "metric: agent_idle_rss $R MB (target <= 8 MB${REV:+$(was "$rb" "$R")}) $(verdict "$R" 8)"
