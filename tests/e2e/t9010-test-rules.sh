#!/usr/bin/env bash
# The rules of docs/testing.md that a grep can hold (issue 8, "tests
# that can fail"): no check that accepts any failure (check_fail is gone
# from lib.sh; use check_exit N), and no fixed waits of a second or more
# in the e2e tests (wait_until a condition instead); no `sh -c` check
# that calls a function of lib.sh (a child shell does not have it, so the
# check saw "not found" and an empty stdout: with `| jq -e` it passed
# whatever happened); and jq -e fails on empty input (tests/e2e/bin/jq).
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
# the functions of lib.sh and lib-agent.sh (a child shell lacks them)
funcs=$(sed -nE 's/^([a-z_][a-z0-9_]*)\(\) *\{.*/\1/p' "$E"/lib*.sh | sort -u | paste -sd'|')
shell_calls() {
	grep -nE "sh -c [\"']([^\"']*[ ;|&(\$])?($funcs) " "${tests[@]}" |
		grep -v 'declare -f'
}
check_exit 1 "no sh -c check calls a lib.sh function" shell_calls
printf 'check "x" sh -c "api GET /x | jq -e ."\n' >"$T/bad2.sh"
check_exit 0 "positive control: the sh -c pattern finds 'api' in one" \
	grep -qE "sh -c [\"']([^\"']*[ ;|&(\$])?($funcs) " "$T/bad2.sh"
check_exit 4 "jq -e of nothing fails (tests/e2e/bin/jq)" sh -c 'printf "" | jq -e .'
check_exit 0 "and of a true value passes" sh -c 'echo true | jq -e .'

# positive control: the same patterns do find what they forbid
printf '# check_fail in a comment\nx && check_fail "x" false\nsleep 2\n' >"$T/bad.sh"
check_exit 0 "positive control: the check_fail pattern finds a use" \
	grep -qnE '^[^#]*\<check_fail\>' "$T/bad.sh"
check_exit 0 "positive control: the sleep pattern finds 'sleep 2'" \
	grep -qnE '(^|[;&|({[:space:]])sleep +([1-9]|0*[1-9][0-9]*\.)' "$T/bad.sh"
finish
