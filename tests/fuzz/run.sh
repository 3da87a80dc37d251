#!/usr/bin/env bash
# Run the libFuzzer targets of tests/fuzz/ (docs/testing.md, "Fuzzing").
#
#   tests/fuzz/run.sh smoke [SECS [T...]]  every target (or those
#                                      named) on its committed corpus,
#                                      then SECS (default
#                                      $FUZZ_SMOKE_SECS or 30) seconds of
#                                      new inputs; fails on any crash,
#                                      leak or timeout
#   tests/fuzz/run.sh replay           every target on its committed
#                                      corpus only (make check's t1000)
#   tests/fuzz/run.sh long T [SECS [RUNS]]  a campaign on target T for
#                                      SECS (default 3600) seconds or RUNS
#                                      executions, whichever comes first,
#                                      under nice -n 19; new inputs kept
#                                      in build-fuzz/corpus/T
#   tests/fuzz/run.sh cov T            coverage of T's corpus (committed
#                                      and campaign): build-fuzz-cov/T/
#
# Targets are fuzz_*.c in tests/fuzz/, named without the prefix
# ("bundle", "http").  The binaries must be built (make fuzz; make
# fuzz-cov builds its own).  Each run gets a private TMPDIR (under
# /dev/shm when it exists: the fleetd and agent targets write state
# files) that is removed afterwards.  Only one target runs at a time.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
B=${FUZZ_BUILD:-build-fuzz}
BC=${FUZZ_COV_BUILD:-build-fuzz-cov}
case $B in /*) ;; *) B=$top/$B ;; esac
case $BC in /*) ;; *) BC=$top/$BC ;; esac

all_targets() {
	local f
	for f in tests/fuzz/fuzz_*.c; do
		f=${f#tests/fuzz/fuzz_}
		echo "${f%.c}"
	done
}

# libFuzzer flags for target $1.  The fleetd targets (and pki, which
# makes a CA) keep state between inputs, so their heap never balances
# per input and libFuzzer's per-input leak check would scan the whole
# heap every run; LeakSanitizer still checks at exit.
flags() {
	local f=(-timeout=10 -rss_limit_mb=2560 -print_final_stats=1)
	[ -s "$top/tests/fuzz/dict/$1.dict" ] && f+=("-dict=$top/tests/fuzz/dict/$1.dict")
	case $1 in http | mqtt | pki) f+=(-detect_leaks=0) ;; esac
	echo "${f[@]}"
}

scratch() {
	local base=/tmp
	[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
	mktemp -d "$base/fleet-fuzz-run.XXXXXX"
}

# Summarise a libFuzzer log: executions, time, and what went wrong.
summary() {
	local log=$1 execs secs crash leak tmo
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
	# libFuzzer stops at the first finding: each is 0 or 1
	crash=$(grep -c -m1 'ERROR: libFuzzer: deadly signal\|ERROR: AddressSanitizer\|ERROR: UndefinedBehaviorSanitizer\|runtime error:\|^fuzz: ' "$log")
	leak=$(grep -c -m1 'ERROR: LeakSanitizer' "$log")
	tmo=$(grep -c -m1 'ERROR: libFuzzer: timeout\|out-of-memory' "$log")
	echo "executions ${execs:-0}, ${secs:-?} s, crashes $crash, leaks $leak, timeouts/oom $tmo"
}

run_one() { # run_one TARGET LOG ARGS...: 0 when libFuzzer exits cleanly
	local t=$1 log=$2 tmp rc
	shift 2
	tmp=$(scratch)
	# shellcheck disable=SC2046
	(cd "$tmp" && TMPDIR=$tmp "$B/fuzz_$t" $(flags "$t") "$@") \
		>"$log" 2>&1
	rc=$?
	rm -rf "$tmp"
	return $rc
}

need_binaries() {
	local t
	for t in "$@"; do
		[ -x "$B/fuzz_$t" ] || {
			echo "fuzz: $B/fuzz_$t is missing: run make fuzz" >&2
			exit 2
		}
	done
}

cmd_smoke() { # cmd_smoke SECS [T...]: corpus + SECS of new inputs each
	local secs=$1 t log new pass=0 fail=0 logs targets
	shift
	targets=${*:-$(all_targets)}
	logs=$B/logs
	mkdir -p "$logs"
	need_binaries $targets
	for t in $targets; do
		log=$logs/smoke-$t.log
		new=$(scratch)
		if run_one "$t" "$log" -max_total_time="$secs" \
			-artifact_prefix="$logs/smoke-$t-" "$new" \
			"$top/tests/fuzz/corpus/$t" &&
			grep -q '^stat::number_of_executed_units' "$log"; then
			printf 'ok   fuzz_%-10s %s\n' "$t" "$(summary "$log")"
			pass=$((pass + 1))
		else
			printf 'FAIL fuzz_%-10s %s (log %s)\n' "$t" \
				"$(summary "$log")" "$log"
			grep -m1 -A20 'ERROR: \|^fuzz: ' "$log" | sed 's/^/     | /'
			fail=$((fail + 1))
		fi
		rm -rf "$new"
	done
	echo "fuzz-smoke: $pass passed, $fail failed (${secs} s of new inputs each)"
	[ "$fail" -eq 0 ]
}

cmd_replay() { # every committed input once: the regression inputs
	local t log rc=0 logs=$B/logs
	mkdir -p "$logs"
	need_binaries $(all_targets)
	for t in $(all_targets); do
		log=$logs/replay-$t.log
		if run_one "$t" "$log" -runs=0 "$top/tests/fuzz/corpus/$t"; then
			echo "ok   fuzz_$t replays its corpus"
		else
			echo "FAIL fuzz_$t on its corpus (log $log)"
			grep -m1 -A20 'ERROR: \|^fuzz: ' "$log" | sed 's/^/     | /'
			rc=1
		fi
	done
	return $rc
}

cmd_long() { # cmd_long T SECS [RUNS]: a campaign, nice, corpus kept
	local t=$1 secs=$2 runs=${3:--1} log corpus art rc
	need_binaries "$t"
	corpus=$B/corpus/$t
	art=$B/artifacts/$t
	mkdir -p "$corpus" "$art" "$B/logs"
	log=$B/logs/long-$t-$(date -u +%Y%m%dT%H%M%SZ).log
	echo "fuzz-long: fuzz_$t for $secs s or $runs runs (log $log)"
	run_one "$t" "$log" -max_total_time="$secs" -runs="$runs" \
		-artifact_prefix="$art/" "$corpus" \
		"$top/tests/fuzz/corpus/$t"
	rc=$?
	echo "fuzz-long: fuzz_$t: $(summary "$log"), corpus $(ls "$corpus" | wc -l) inputs"
	return $rc
}

cmd_cov() { # cmd_cov T: replay both corpora on the coverage build
	local t=$1 out prof srcs never
	out=$BC/$t
	[ -x "$BC/fuzz_$t" ] || {
		echo "fuzz: $BC/fuzz_$t is missing: run make fuzz-cov" >&2
		exit 2
	}
	rm -rf "$out"
	mkdir -p "$out"
	prof=$out/profraw
	mkdir -p "$prof"
	# one profile per process: libFuzzer may fork
	LLVM_PROFILE_FILE=$prof/%p.profraw run_one_cov "$t" \
		"$out/replay.log" || {
		echo "fuzz-cov: fuzz_$t failed on its corpus (log $out/replay.log)" >&2
		return 1
	}
	llvm-profdata merge -sparse "$prof"/*.profraw -o "$out/fuzz.profdata" ||
		return 1
	srcs=(common signing server-stub agent)
	llvm-cov export -format=text "$BC/fuzz_$t" \
		-instr-profile="$out/fuzz.profdata" "${srcs[@]}" \
		>"$out/export.json" 2>/dev/null || return 1
	llvm-cov report -show-functions "$BC/fuzz_$t" \
		-instr-profile="$out/fuzz.profdata" "${srcs[@]}" \
		>"$out/functions.txt" 2>/dev/null
	llvm-cov show -format=html -output-dir="$out/html" "$BC/fuzz_$t" \
		-instr-profile="$out/fuzz.profdata" "${srcs[@]}" 2>/dev/null
	# the files the target reached, and their functions it never did
	jq -r '.data[0].files[] | select(.summary.lines.covered > 0)
		| "\(.filename | sub("^.*/(?<p>(common|signing|server-stub|agent)/)"; "\(.p)")) lines \(.summary.lines.covered)/\(.summary.lines.count) functions \(.summary.functions.covered)/\(.summary.functions.count)"' \
		"$out/export.json" | sort >"$out/files.txt"
	jq -r '.data[0].functions as $f
		| ($f | map(select(.count > 0) | .filenames[0]) | unique) as $hit
		| $f[] | select(.count == 0)
		| select(.filenames[0] | test("/(common|signing|server-stub|agent)/"))
		| select(.filenames[0] as $n | $hit | index($n))
		| "\(.filenames[0] | sub("^.*/(?<p>(common|signing|server-stub|agent)/)"; "\(.p)")) \(.name | sub("^.*:"; ""))"' \
		"$out/export.json" | sort -u >"$out/never.txt"
	never=$(wc -l <"$out/never.txt")
	{
		echo "fuzz_$t: coverage of tests/fuzz/corpus/$t and $B/corpus/$t"
		echo "files reached (lines and functions covered/total):"
		sed 's/^/  /' "$out/files.txt"
		echo "functions never reached in those files ($never):"
		sed 's/^/  /' "$out/never.txt"
	} >"$out/report.txt"
	cat "$out/report.txt"
	echo "fuzz-cov: $out/report.txt, $out/functions.txt, $out/html/index.html"
}

run_one_cov() { # the coverage build replays the committed and campaign corpora
	local t=$1 log=$2 tmp rc dirs
	dirs=("$top/tests/fuzz/corpus/$t")
	[ -d "$B/corpus/$t" ] && dirs+=("$B/corpus/$t")
	tmp=$(scratch)
	(cd "$tmp" && TMPDIR=$tmp "$BC/fuzz_$t" -runs=0 -timeout=60 \
		"${dirs[@]}") >"$log" 2>&1
	rc=$?
	rm -rf "$tmp"
	return $rc
}

case ${1:-} in
smoke)
	secs=${2:-${FUZZ_SMOKE_SECS:-30}}
	shift $(($# > 1 ? 2 : 1))
	cmd_smoke "$secs" "$@"
	;;
replay) cmd_replay ;;
long)
	[ -n "${2:-}" ] || { echo "usage: run.sh long TARGET [SECS]" >&2; exit 2; }
	exec_nice=${FUZZ_NICE:-19}
	renice -n "$exec_nice" $$ >/dev/null
	cmd_long "$2" "${3:-3600}" "${4:--1}"
	;;
cov)
	[ -n "${2:-}" ] || { echo "usage: run.sh cov TARGET" >&2; exit 2; }
	cmd_cov "$2"
	;;
*)
	sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
