#!/usr/bin/env bash
# The README's "A short tour" works when followed literally (issue 8,
# item 17): every "$ command" line of its sh blocks runs in order and
# succeeds.  Only what a test must change is changed: the paths under
# /var/lib and /var/tmp move into the temp dir, port 8443 becomes a free
# one (and the broker gets a free port), the tokens the tour prints are
# pasted where it says flt_... and fle_..., the firmware comes from the
# sample firmware's build, and `--git .` reads a clean throwaway repo.
# `make` and `export PATH` are left to the test runner.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

check "build the sample firmware" ota_firmware
W=$T/work
mkdir -p "$W" "$T/var/lib" "$T/var/tmp" "$T/repo"
git -C "$T/repo" init -q && git -C "$T/repo" -c user.name=t -c user.email=t@t \
	commit -q --allow-empty -m tour || fail "a clean git repository"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The tour's commands, one per line (continuations joined, comments cut).
awk '/^## A short tour/ {t = 1; next} /^## / {t = 0}
	t && /^```sh/ {b = 1; next} t && /^```/ {b = 0; next}
	t && b {print}' "$FLEET_SRC/README.md" >"$T/tour.txt"
awk '/^\$ / {cmd = substr($0, 3); while (cmd ~ /\\$/ && (getline l) > 0) {
		sub(/\\$/, "", cmd); sub(/^ +/, " ", l); cmd = cmd l }
	sub(/  +# .*$/, "", cmd); print cmd }' "$T/tour.txt" >"$T/tour.cmds"
check_true "the tour has commands" test "$(wc -l <"$T/tour.cmds")" -ge 20
check_grep '^make .*make firmware' "the tour builds the programs and the firmware" cat "$T/tour.cmds"
check_grep '^export PATH=.*build' "the tour puts build/ on PATH" cat "$T/tour.cmds"

ADMIN=none ENROLL=none
subst() {
	sed -e "s|/var/lib/|$T/var/lib/|g; s|/var/tmp|$T/var/tmp|g" \
		-e "s|127\.0\.0\.1:8443|127.0.0.1:$PORT|g" \
		-e "s|flt_\.\.\.|$ADMIN|g; s|fle_\.\.\.|$ENROLL|g" \
		-e "s|build/firmware/|$T/fw/|g; s|--git \. |--git $T/repo |g" \
		-e "s|--with-broker &|--with-broker --mqtt-listen 127.0.0.1:0 >$T/serve.out 2>$T/fleetd.log \& track \$!|" \
		-e "s|^\(fleet-agent run .*\) &$|\1 >>$T/agents.log 2>\&1 \& track \$!|"
}
all_online() {
	[ "$(fleetctl -o json devices list --group line-3 --online | jq length)" -eq \
		"$(fleetctl -o json devices list --group line-3 | jq length)" ]
}
cd "$W" || exit 1
n=0
while IFS= read -r line; do
	case $line in make* | "export PATH"*) continue ;; esac
	cmd=$(printf '%s\n' "$line" | subst)
	case $line in
	"fleetctl rotate"* | "fleetctl update"*)
		wait_until 30 all_online || fail "every device of line-3 is online before: $line" ;;
	esac
	n=$((n + 1))
	# never let the tour write the machine's /etc/fleet or /var/lib/fleet-agent
	case $line in
	"fleet-agent enroll"* | "fleet-agent run"* | "fleet-agent status"*)
		case $line in *--config*) ;; *)
		fail "README $n: $line (no --config: would use /etc/fleet/agent.conf)"
		continue ;; esac ;;
	esac
	case $line in "fleet-agent enroll"*) case $line in *--state*) ;; *)
		fail "README $n: $line (no --state: would use /var/lib/fleet-agent)"
		continue ;; esac ;;
	esac
	check "README $n: $line" eval "$cmd"
	case $line in
	"fleetd init"*) ADMIN=$(sed -n 's/^admin token: //p' "$T/last.out") ;;
	"fleetctl token create"*"--enroll"*) ENROLL=$(sed -n 's/^token: *//p' "$T/last.out") ;;
	"fleetd serve"*)
		wait_until 30 grep -q '^ready ' "$T/serve.out" || fail "fleetd serve is ready" ;;
	esac
done <"$T/tour.cmds"
log "$n tour commands"
check_true "the admin token was pasted" test "$ADMIN" != none
check_true "the enrolment token was pasted" test "$ENROLL" != none
finish
