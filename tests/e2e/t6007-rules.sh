#!/usr/bin/env bash
# Local rules (issue 16, docs/rules.md) with a real fleet-agent, a real
# mosquitto and fleetd: values pushed through telemetry.sock cross a
# threshold up, down and up with wiggles inside the hysteresis band ->
# exactly two events in fleetd (points rule.hot, `fleetctl telemetry`
# table and -o json) and the rule's program ran exactly twice; with the
# broker stopped the rule still runs its program, and its events reach
# fleetd once the broker is back, in the order they were queued; a bad
# rule text through the shadow is refused with its line in the reported
# shadow and the rules before it keep firing, and so is a write outside
# its declared limits; a good one replaces them without a restart.  fleetd runs on an external mosquitto the test stops and
# starts (as t6006: the broker of `serve --with-broker` is restarted by
# fleetd within a second).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
TOK=$(fleetctl -o json token create e2e --enroll --uses 1 | jq -r .token)
check "enrol dev-a" agent_enroll dev-a "$TOK"
A=$(agent_dir dev-a)
mkdir -p "$T/rulebin"
cat >"$T/rulebin/on-rule" <<EOF
#!/bin/sh
printf '%s %s %s %s\n' "\$1" "\$FLEET_RULE" "\$FLEET_METRIC" "\$FLEET_VALUE" >>"$T/exec.out"
EOF
chmod 755 "$T/rulebin/on-rule"
cat >"$A/rules.conf" <<EOF
; tank too hot: once per crossing of 50, re-armed below 45
[rule "hot"]
kind = threshold
metric = tank.temp
above = 50
hysteresis = 5
event = yes
exec = $T/rulebin/on-rule file
EOF
cat >>"$A/agent.conf" <<EOF
[telemetry]
interval = 1
[rules]
file = rules.conf
exec_dir = $T/rulebin
EOF
sed -i 's/^\[mqtt\]$/[mqtt]\nreconnect_max = 2s/' "$A/agent.conf"

# --- fleetd on an external broker it does not restart ------------------------
fleetd_external_broker

agent_start dev-a
check_exit 0 "dev-a comes online" wait_until 20 dev_online dev-a
check_true "the agent runs the rules of agent.conf" \
	grep -qF "rules: 1 rules in force ($A/rules.conf)" "$A/agent.log"

SOCK=$A/state/telemetry.sock
check_exit 0 "the telemetry socket is there" wait_until 20 test -S "$SOCK"
# one datagram of "tank.temp VALUE TS" lines, 10 ms apart from now
send_temps() {
	local now i=0 v lines=
	now=$(($(date +%s%N) / 1000000))
	for v in "$@"; do
		lines+="tank.temp $v $((now + 10 * i++))"$'\n'
	done
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(sys.argv[2].encode(), sys.argv[1])' "$SOCK" "$lines"
}
send_line() {
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(sys.argv[2].encode(), sys.argv[1])' "$SOCK" "$1"
}
# the rule.NAME points fleetd holds for dev-a, oldest first: "VALUE" lines
events() {
	fleetctl -o json telemetry dev-a --metric "rule.$1" |
		jq -r '.points | sort_by(.ts) | .[].value'
}
n_events() { events "$1" | wc -l; }
events_are() { [ "$(n_events "$1")" -eq "$2" ]; }
has_point() {
	fleetctl -o json telemetry dev-a --metric "$1" | jq -e '.points | length > 0' >/dev/null
}
execs() { if [ -e "$T/exec.out" ]; then wc -l <"$T/exec.out"; else echo 0; fi; }
execs_are() { [ "$(execs)" -eq "$1" ]; }

# --- 1. up, wiggles inside the band, down past it, up again -------------------
# above 50 fires; 48 52 47 51 46 53 stay inside 45..50+ (no re-arm);
# 44 re-arms; 56 fires; 45.5 is inside the band again, so 57 does not
check "values crossing 50 up, down past 45, up; wiggles inside the band" \
	send_temps 40 55 48 52 47 51 46 53 44 49 56 50.5 45.5 57
check "then a marker value, queued after every event of those" send_line "probe.one 1"
check_exit 0 "the marker reaches fleetd" wait_until 30 has_point probe.one
check_true "exactly two events of rule hot in fleetd" events_are hot 2
check_true "... for the two crossings: 55 then 56" \
	test "$(events hot | paste -sd' ')" = "55 56"
fleetctl telemetry dev-a --metric rule.hot >"$T/ev1.txt"
check_exit 0 "fleetctl telemetry (table): a header and the two rule.hot rows" awk \
	'NR == 1 && !($1 == "TIME" && $2 == "METRIC" && $3 == "VALUE") { exit 1 }
	 NR > 1 && $2 != "rule.hot" { exit 1 } END { exit NR != 3 }' "$T/ev1.txt"
check_exit 0 "the rule's program ran twice" wait_until 20 execs_are 2
check_true "... with the rule, the metric and the value in its environment" \
	test "$(sort "$T/exec.out")" = "file hot tank.temp 55
file hot tank.temp 56"
check_true "the agent fired the rule exactly twice" \
	test "$(grep -c "rules: 'hot' fired" "$A/agent.log")" -eq 2

# --- 2. the broker stops: the rule still acts ---------------------------------
OFF=$(wc -l <"$A/agent.log")
since_stop() { tail -n +"$((OFF + 1))" "$A/agent.log"; }
lost() { since_stop | grep -q "connection lost"; }
check "the broker stops" broker_stop
check_exit 0 "positive control: the agent lost the broker" wait_until 30 lost
check "crossings while offline: 40 re-arms, 60 fires, 44, 61 fires" send_temps 40 60 44 61
check_exit 0 "the rule's program runs offline: 4 runs now" wait_until 20 execs_are 4
check_true "... its events are queued in the outbox" \
	test "$(since_stop | grep -c "rules: event of 'hot' queued as message")" -eq 2
check_exit 1 "... all while the agent was not connected" sh -c \
	"tail -n +$((OFF + 1)) '$A/agent.log' | grep -q 'connected to'"
check_exit 1 "... and nothing listens on the broker's port" broker_up
check_true "fleetd still has two events" events_are hot 2

# --- 3. the broker back: the events arrive, in order ---------------------------
check "the broker starts again" broker_start
check_exit 0 "fleetd gets the offline events: four in all" wait_until 60 events_are hot 4
check_true "... the values in the order they crossed: 55 56 60 61" \
	test "$(events hot | paste -sd' ')" = "55 56 60 61"
sed -n "s/.*rules: event of 'hot' queued as message \([0-9]*\)$/\1/p" "$A/agent.log" >"$T/agent.seq"
store_sql "SELECT seq FROM telemetry WHERE device = 'dev-a' AND metric = 'rule.hot'
	ORDER BY ts" >"$T/fleetd.seq"
log "agent queued $(paste -sd, "$T/agent.seq"); fleetd stored $(paste -sd, "$T/fleetd.seq")"
check "fleetd stored the outbox messages the agent queued, each once" \
	diff "$T/agent.seq" "$T/fleetd.seq"
check "... in queue order (seqs increase with time)" sort -n -C "$T/fleetd.seq"

# --- 4. a good rule text through the shadow: applied without a restart -------
reported_rules() {
	fleetctl -o json shadow get dev-a | jq -e "$1" >/dev/null
}
cat >"$T/cold.rules" <<EOF
[rule "cold"]
kind = threshold
metric = tank.temp
below = 10
event = yes
exec = $T/rulebin/on-rule shadow
EOF
jq -Rs '{rules: .}' "$T/cold.rules" >"$T/good.json"
check_exit 0 "an operator sets a good rule text" fleetctl shadow set dev-a --file "$T/good.json"
check_exit 0 "the agent applies it" wait_until 20 reported_rules \
	'.reported.refused == {} and (.reported.state.rules | startswith("[rule \"cold\"]"))'
check_exit 0 "... at once, without a restart" wait_until 20 grep -q \
	"rules: 1 rules in force (the shadow)" "$A/agent.log"
check "values that cross both rules: 40 70 5" send_temps 40 70 5
check_exit 0 "the new rule fires: its event in fleetd" wait_until 30 events_are cold 1
check_exit 0 "... and its program ran (from exec_dir)" wait_until 20 execs_are 5
check_true "... as the shadow's rule" test "$(tail -n 1 "$T/exec.out")" = "shadow cold tank.temp 5"
check_true "the file's rule is gone: still 4 events of hot" events_are hot 4
check_true "the agent never restarted (one start in its log)" \
	test "$(grep -c 'rules in force (.*rules.conf)' "$A/agent.log")" -eq 1

# --- 5. a bad rule text through the shadow: refused, the rules before stay -----
printf '[rule "hot"]\nkind = threshold\ncolour = red\n' | jq -Rs '{rules: .}' >"$T/bad.json"
check_exit 0 "an operator sets a rule text with an unknown key" \
	fleetctl shadow set dev-a --file "$T/bad.json"
check_exit 0 "the agent refuses it, naming the line" wait_until 20 reported_rules \
	'.reported.refused.rules == "shadow rules:3: unknown key '"'colour'"'"'
check_grep "^rules .* refused: shadow rules:3: unknown key 'colour'$" \
	"shadow get (table): rules refused, why" fleetctl shadow get dev-a
check "crossings after the refusal: 20 re-arms cold, 70, 4" send_temps 20 70 4
check_exit 0 "the shadow's rule before it still fires: its program ran a 6th time" \
	wait_until 20 execs_are 6
check_true "... as rule cold" test "$(tail -n 1 "$T/exec.out")" = "shadow cold tank.temp 4"
check_exit 0 "... and fleetd has its 2nd event" wait_until 30 events_are cold 2
check "a marker value after them" send_line "probe.two 1"
check_exit 0 "the marker reaches fleetd" wait_until 30 has_point probe.two
check_true "neither the file's rule nor the refused text came back: 4 events of hot" \
	events_are hot 4

# --- 6. a write outside its declared limits: refused at load ------------------
printf '[write "plc.fan"]\nmin = 0\nmax = 1\n[rule "w"]\nkind = threshold\nmetric = tank.temp\nabove = 90\nwrite = plc.fan 2\n' |
	jq -Rs '{rules: .}' >"$T/limits.json"
check_exit 0 "an operator sets a rule that writes 2 to a target of 0..1" \
	fleetctl shadow set dev-a --file "$T/limits.json"
check_exit 0 "the agent refuses it at load, naming the line and the limits" \
	wait_until 20 reported_rules \
	'.reported.refused.rules == "shadow rules:8: 2 is outside plc.fan'"'"'s limits 0..1"'
check "crossings after it: 20 re-arms cold, 3" send_temps 20 3
check_exit 0 "the rules before it still run: cold fires a 3rd time" \
	wait_until 30 events_are cold 3
finish
