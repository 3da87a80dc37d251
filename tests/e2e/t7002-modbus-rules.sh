#!/usr/bin/env bash
# Local rules meet Modbus (issue 16, docs/rules.md, docs/modbus.md): a
# real fleet-agent polls tests/tools/modbus-sim; a threshold rule on a
# local value (telemetry.sock) writes a holding register of the
# simulator through the rule's write action, within the limits the rule
# file declares; the poller reads the register back, so fleetd sees
# sim.sp go from 0 to 42; and a rule on that Modbus value (sim.sp above
# 40) fires once, its event in fleetd as rule.sp-high.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
sim_device dev-a

check "the simulator listens" modbus_sim_start sim
PORT=$PORT_sim
cat >"$A/modbus.conf" <<EOF
[source sim]
host = 127.0.0.1
port = $PORT
unit_id = 1
interval = 500ms
timeout = 300ms

[registers sim]
sp = holding 300 min=0 max=100
EOF
cat >"$A/rules.conf" <<EOF
[write "sim.sp"]
min = 0
max = 100

; a hot tank sets the setpoint
[rule "hot"]
kind = threshold
metric = tank.temp
above = 50
hysteresis = 5
write = sim.sp 42

; a rule on the Modbus value itself
[rule "sp-high"]
kind = threshold
metric = sim.sp
above = 40
hysteresis = 1
event = yes
EOF
cat >>"$A/agent.conf" <<EOF
[modbus]
map = modbus.conf
[telemetry]
interval = 1
[rules]
file = rules.conf
EOF
agent_start_sim dev-a
check "dev-a comes online" wait_until 30 dev_online dev-a
check_true "the agent runs both rules" \
	grep -qF "rules: 2 rules in force ($A/rules.conf)" "$A/agent.log"

tele() { fleetctl -o json telemetry dev-a --metric "$1" --limit 1000; }
last_is() { tele "$1" | jq -e --argjson v "$2" '.points[-1].value == $v' >/dev/null; }
npoints() { tele "$1" | jq '.points | length'; }
check "sim.sp is read: 0 at the start (fleetd)" wait_until 30 last_is sim.sp 0
check_true "... and rule sp-high has not fired" test "$(npoints rule.sp-high)" -eq 0

SOCK=$A/state/telemetry.sock
check_exit 0 "the telemetry socket is there" wait_until 20 test -S "$SOCK"
send() {
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(sys.argv[2].encode(), sys.argv[1])' "$SOCK" "$1"
}
check "tank.temp 40 then 55 (crossing 50)" send $'tank.temp 40\ntank.temp 55'
check_exit 0 "the rule's write reaches the simulator: fleetd sees sim.sp 42" \
	wait_until 30 last_is sim.sp 42
check_grep "rules: 'hot' fired" "... the agent logged the rule" cat "$A/agent.log"
one_event() { [ "$(npoints rule.sp-high)" -eq 1 ]; }
check_exit 0 "the rule on the Modbus value fired once (rule.sp-high in fleetd)" \
	wait_until 30 one_event
check "... its value is the register's, 42" last_is rule.sp-high 42
fleetctl telemetry dev-a --metric sim.sp >"$T/sp.txt" 2>&1
check_grep '^[0-9T:.-]+Z +sim\.sp +42$' "fleetctl telemetry (table) shows sim.sp 42" cat "$T/sp.txt"
finish
