#!/usr/bin/env bash
# The rules of docs/testing.md that a grep can hold (issue 8, "tests
# that can fail"): no check that accepts any failure (check_fail is gone
# from lib.sh; use check_exit N), and no fixed waits of a second or more
# in the e2e tests (wait_until a condition instead).
. "$(dirname "$0")/lib.sh"

E=$FLEET_SRC/tests/e2e
tests=()
for f in "$E"/t[0-9]*.sh "$E"/lib*.sh; do
	[ "$f" -ef "$0" ] || tests+=("$f") # this file names what it forbids
done
check_exit 1 "lib.sh defines no 'any failure' check" \
	grep -nE '^ *check_fail *\(\)' "$E/lib.sh"
check_exit 1 "no e2e test uses check_fail" \
	grep -nE '^[^#]*\<check_fail\>' "${tests[@]}" # comments aside
long_sleeps() {
	grep -nE '(^|[;&|({[:space:]])sleep +([1-9]|0*[1-9][0-9]*\.)' "${tests[@]}"
}
check_exit 1 "no e2e test sleeps a second or more" long_sleeps
# positive control: the same patterns do find what they forbid
printf '# check_fail in a comment\nx && check_fail "x" false\nsleep 2\n' >"$T/bad.sh"
check_exit 0 "positive control: the check_fail pattern finds a use" \
	grep -qnE '^[^#]*\<check_fail\>' "$T/bad.sh"
check_exit 0 "positive control: the sleep pattern finds 'sleep 2'" \
	grep -qnE '(^|[;&|({[:space:]])sleep +([1-9]|0*[1-9][0-9]*\.)' "$T/bad.sh"
finish
