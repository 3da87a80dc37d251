#!/usr/bin/env bash
# The libFuzzer targets (tests/fuzz/, docs/testing.md "Fuzzing") build
# with clang and replay their committed corpora (seeds and the
# regression input of every bug fuzzing found) without a crash, leak or
# broken invariant.  New inputs are fuzz-smoke's job (make fuzz-smoke,
# in CI); this keeps the regression inputs in every make check.  Skips,
# saying why, only when clang or libFuzzer is missing.
. "$(dirname "$0")/lib.sh"
cd "$FLEET_SRC" || exit 1

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
for f in tests/fuzz/fuzz_*.c; do
	t=${f#tests/fuzz/fuzz_}
	t=${t%.c}
	check_true "fuzz_$t has a seed corpus" \
		test -n "$(ls -A "tests/fuzz/corpus/$t" 2>/dev/null)"
done
check "every target replays its corpus cleanly" \
	env FUZZ_BUILD="$out" tests/fuzz/run.sh replay
grep -q '^ok   fuzz_http replays' "$T/last.out" ||
	fail "the replay did not reach fuzz_http"
finish
