#!/usr/bin/env bash
# The libFuzzer targets of libfleetsign build with clang and survive a
# short run on their committed seed corpus (tests/fuzz/corpus/): the
# bundle reader, the manifest parser and the trust root parser.  Skips,
# saying why, only when clang or libFuzzer is missing.
. "$(dirname "$0")/lib.sh"
cd "$FLEET_SRC" || exit 1
secs=${FLEET_FUZZ_SECS:-5}

if ! command -v "${CLANG:-clang}" >/dev/null ||
	! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)
		{ return 0; }' |
	"${CLANG:-clang}" -fsanitize=fuzzer -x c - -o "$T/probe" 2>/dev/null; then
	echo "# SKIP: clang with libFuzzer (-fsanitize=fuzzer) is not available"
	exit 0
fi

out=$FLEET_BUILD/fuzz
# its own flags: nothing from an outer make (SAN=1, B=...) leaks in
check "fuzz targets build with clang" \
	env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS \
	make -s -f tests/fuzz/Makefile B="$out"
for t in bundle manifest root; do
	seeds=tests/fuzz/corpus/$t
	check_true "seed corpus for $t is not empty" \
		test -n "$(ls -A "$seeds" 2>/dev/null)"
	mkdir -p "$T/new-$t"
	# new finds go to a temp dir; the committed seeds are only read
	check "fuzz_$t runs ${secs}s on its seeds without a crash" \
		"$out/fuzz_$t" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 "$T/new-$t" "$seeds"
	grep -q 'stat::number_of_executed_units' "$T/last.out" ||
		fail "fuzz_$t printed no statistics"
done
finish
