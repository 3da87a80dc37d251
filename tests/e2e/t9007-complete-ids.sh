#!/usr/bin/env bash
# Live ids in shell completion (issue 15): `fleetctl __complete KIND
# PREFIX` answers the ids of a real fleetd from a local cache
# ($XDG_CACHE_HOME/fleet/complete-<server hash>.KIND, 0600), keeps
# answering from it while fleetd is down, refreshes it once it is older
# than its TTL (60 s; the test ages it with touch), and never writes to
# stderr nor fails.  The generated bash and fish completions call it
# where a command takes a device id, and for --group.
. "$(dirname "$0")/lib.sh"
cd "$FLEET_SRC" || exit 1

start_fleetd --with-broker
login_admin

for d in gw-1:north gw-12:north pump-1:south; do
	check_exit 0 "provision ${d%:*}" \
		fleetctl provision "${d%:*}" --group "${d#*:}" --out "$T/${d%:*}.tar.gz"
done
check_exit 0 "label gw-1 env=prod" fleetctl devices label gw-1 env=prod
check_grep '^gw-12 +north' "devices list (table) shows gw-12 in north" fleetctl devices list

# complete KIND PREFIX: stdout and stderr apart, exit code kept in $T/c.rc
complete_ids() {
	fleetctl __complete "$@" >"$T/c.out" 2>"$T/c.err"
	echo $? >"$T/c.rc"
}
# the last answer was exactly the lines given, with exit 0 and no stderr
answered() {
	[ "$(cat "$T/c.rc")" = 0 ] && [ ! -s "$T/c.err" ] &&
		[ "$(cat "$T/c.out")" = "$(printf '%s\n' "$@")" ]
}

complete_ids devices gw-1
check_true "__complete devices gw-1 lists gw-1 and gw-12 from fleetd" answered gw-1 gw-12
cache=$(ls "$XDG_CACHE_HOME"/fleet/complete-*.devices)
check_true "the cache file is 0600" test "$(stat -c %a "$cache")" = 600
check_true "its directory is 0700" test "$(stat -c %a "$XDG_CACHE_HOME/fleet")" = 700
complete_ids groups ""
check_true "__complete groups lists north and south" answered north south
complete_ids labels e
check_true "__complete labels lists env=prod" answered env=prod

# a device added now is not seen while the cache is fresh (no request
# per TAB), and is once the cache is older than the TTL
check_exit 0 "provision gw-13" fleetctl provision gw-13 --group north --out "$T/gw-13.tar.gz"
complete_ids devices gw-1
check_true "a fresh cache answers without asking fleetd (no gw-13)" answered gw-1 gw-12
touch -d '-61 seconds' "$cache"
complete_ids devices gw-1
check_true "a cache older than 60 s is refreshed (gw-13 appears)" answered gw-1 gw-12 gw-13

# bash: the generated function asks __complete where an id goes
bash_complete() { # WORDS...: the line, the cursor on its last word
	bash -c '. completions/fleetctl.bash
		complete -p fleetctl >/dev/null || exit 9
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _fleetctl
		printf "%s\n" "${COMPREPLY[@]}" | sort' bash "$@"
}
check_grep '^gw-12$' "bash: 'fleetctl devices show <TAB>' lists fleetd's ids" \
	bash_complete fleetctl devices show ""
check_true "bash: 'devices show <TAB>' offers exactly the four devices" \
	test "$(bash_complete fleetctl devices show "" | tr '\n' ' ')" = "gw-1 gw-12 gw-13 pump-1 "
check_true "bash: 'rotate gw-1 g<TAB>' (ids after ids) offers gw-*" \
	test "$(bash_complete fleetctl rotate gw-1 g | tr '\n' ' ')" = "gw-1 gw-12 gw-13 "
check_true "bash: 'devices list --group <TAB>' offers the groups" \
	test "$(bash_complete fleetctl devices list --group "" | tr '\n' ' ')" = "north south "
check_true "bash: 'ro<TAB>' offers rollback, rollout, root and rotate" \
	test "$(bash_complete fleetctl ro | tr '\n' ' ')" = "rollback rollout root rotate "
check_true "bash: 'devices list <TAB>' offers no ids" \
	test -z "$(bash_complete fleetctl devices list "")"
check_grep '^gw-13' "fish: 'fleetctl devices show gw-1' completes ids" \
	fish -c 'source completions/fleetctl.fish; complete -C "fleetctl devices show gw-1"'
# zsh: compadd and compdef stood in for by functions that print
check_grep '^gw-12$' "zsh: 'fleetctl devices show gw<TAB>' offers fleetd's ids" \
	zsh -fc 'compdef() { :; }; compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }
		source completions/_fleetctl
		words=(fleetctl devices show gw); CURRENT=4; _fleetctl'

# fleetd gone: the cache still answers, stale or not; errors are silent
kill "$FLEETD_PID"
check_true "fleetd stopped" wait_until 20 proc_gone "$FLEETD_PID"
touch -d '-5 minutes' "$cache"
complete_ids devices gw
check_true "fleetd down: the stale cache answers, exit 0, no stderr" answered gw-1 gw-12 gw-13
printf 'garbage\ngw-1\n' >"$cache"
complete_ids devices gw
check_true "fleetd down, corrupt cache: nothing, exit 0, no stderr" answered
rm -f "$cache"
complete_ids devices ""
check_true "fleetd down, no cache: nothing, exit 0, no stderr" answered
complete_ids tokens ""
check_true "an unknown kind: nothing, exit 0, no stderr" answered
FLEETCTL_CONFIG=$T/none complete_ids devices ""
check_true "no server configured: nothing, exit 0, no stderr" answered
check_true "bash: 'devices show <TAB>' with fleetd down offers nothing, quietly" \
	test -z "$(bash_complete fleetctl devices show "" 2>&1)"

finish
