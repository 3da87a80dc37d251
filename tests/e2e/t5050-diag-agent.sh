#!/usr/bin/env bash
# A real fleet-agent answers diagnostics over the real wire (issue 12,
# docs/protocol.md "Diagnostics"): requests published with mosquitto_rr
# under fleetd's own MQTT identity (the only one the broker's acl lets
# publish to fleet/ID/diag/req), with a v5 response topic and
# correlation data; every built-in check answers with the device's
# data, compared with what this test reads itself; an operator check
# gets shell metacharacters literally; a check past its time is killed
# with its child; requests without a valid response topic or correlation
# data get no answer; an unknown check a clear error.  fleetd's side of
# diagnostics (its API, fan-out, bundles) is t51xx's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
sim_device dev-a

# operator checks: echo prints its arguments and leaves a marker; hang
# starts a child that waits for ever, and waits for ever
mkdir -p "$A/checks"
cat >"$A/checks/echo" <<EOF
#!/bin/sh
for a in "\$@"; do printf '%s\n' "\$a"; done
touch "$T/echo-ran"
EOF
cat >"$A/checks/hang" <<EOF
#!/bin/sh
tail -f /dev/null &
echo \$! > "$T/hang.child"
exec tail -f /dev/null
EOF
chmod 755 "$A/checks/echo" "$A/checks/hang"
seq -f 'app line %g' 1 20 >"$T/app.log"
cat >>"$A/agent.conf" <<EOF
[diag]
checks_dir = checks
[diag.check.echo]
args = .*
[diag.check.hang]
timeout = 2s
[diag.log.app]
path = $T/app.log
EOF
agent_start_sim dev-a
wait_until 30 dev_online dev-a || fail "dev-a comes online"
check_grep '^dev-a +.*yes' "fleetctl devices list (table) shows dev-a online" \
	fleetctl devices list

# fleetd's MQTT identity: the broker forces client id = CN, so fleetd
# itself is held (SIGSTOP) while the test speaks as it, and resumed after
kill -STOP "$FLEETD_PID"
MQ=(-h "$MQTT_HOST" -p "$MQTT_PORT" -V 5 --cafile "$FLEET_CA_FILE"
	--cert "$FLEETD_STATE/mqtt/fleetd.pem" --key "$FLEETD_STATE/mqtt/fleetd.key")
REQ=fleet/dev-a/diag/req
RESP=fleet/dev-a/diag/resp/fleetd
n=0
# ask NAME JSON: one request, its reply in $T/NAME.json
ask() {
	n=$((n + 1))
	mosquitto_rr "${MQ[@]}" -q 1 -W $((20 * WAIT_SCALE)) -t "$REQ" -e "$RESP" \
		-D publish correlation-data "c-$n" -m "$2" >"$T/$1.json"
}
res() { jq -e "$2" "$T/$1.json"; }

check "ping is answered" ask ping '{"check":"ping"}'
check "... ok, pong" res ping '.ok == true and .result.pong == true and .check == "ping"'
check "sysinfo is answered" ask sysinfo '{"check":"sysinfo"}'
check "... with this machine's kernel" res sysinfo ".result.kernel == \"$(uname -r)\""
check "... and its memory" res sysinfo \
	".result.mem_total_kb == $(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
check "net is answered" ask net '{"check":"net"}'
check "... the broker and fleetd reachable, with times" res net \
	"[.result.reach[] | select(.ok and .ms >= 0) | .what] == [\"fleetd\", \"broker\"]"
check "... the broker's port" res net \
	"(.result.reach[] | select(.what == \"broker\") | .port) == $MQTT_PORT"
check "... loopback's address" res net \
	'[.result.interfaces[] | select(.name == "lo") | .addrs[]] | index("127.0.0.1/8") != null'
check "slots is answered" ask slots '{"check":"slots"}'
check "... the booted slot the bootloader says" res slots \
	".result.booted == \"$(sim_var dev-a fleet_slot)\" and .result.slots.a.version == \"1.0.0\""
check "cert is answered" ask cert '{"check":"cert"}'
check "... the serial of the agent's certificate" res cert \
	".result.serial == \"$(agent_serial dev-a)\" and .result.days_left >= 29"
check "config is answered" ask config '{"check":"config"}'
check "... agent.conf as read" res config \
	'.result.settings.device.id == "dev-a" and .result.settings["diag.check.echo"].args == ".*"'
check "logs is answered" ask logs '{"check":"logs","args":["agent","200"]}'
check "... the agent's own lines" res logs \
	'[.result.lines[] | select(test("dev-a: connected to"))] | length >= 1'
check "logs of a configured file" ask logs-app '{"check":"logs","args":["file:app","2"]}'
check "... its last lines" res logs-app '.result.lines == ["app line 19", "app line 20"]'

# operator checks: metacharacters are data
INJ=$(jq -nc --arg t "$T" '{check: "echo", args: ["; touch \($t)/inj1",
	"$(touch \($t)/inj2)", "`touch \($t)/inj3`", "x\ntouch \($t)/inj4"]}')
check "an operator check with shell metacharacters" ask echo "$INJ"
check "... ran (positive control)" test -e "$T/echo-ran"
check "... with every argument as it was" res echo \
	"(.result.stdout | split(\"\n\")[:-1]) == ($INJ | .args | join(\"\n\") | split(\"\n\"))"
check "... and nothing injected ran" sh -c "! ls '$T'/inj* 2>/dev/null"
check "a check past its time" ask hang '{"check":"hang","timeout_s":30}'
check "... is answered timeout" res hang '.ok == false and .code == "timeout"'
gone() { ! kill -0 "$(cat "$T/hang.child")" 2>/dev/null || grep -q '^[^ ]* ([^)]*) Z' "/proc/$(cat "$T/hang.child")/stat"; }
if wait_until 5 gone; then pass "... and its child is gone"; else fail "... and its child is gone"; fi
check "an unknown check" ask nope '{"check":"nope"}'
check "... is a clear error" res nope '.code == "unknown-check" and .error == "unknown check '"'nope'"'"'
check "too many arguments" ask argc '{"check":"ping","args":["x"]}'
check "... bad-args" res argc '.code == "bad-args"'

# no valid response topic or no correlation data: no answer at all (the
# broker's acl would let dev-a publish on a 65-byte requester's topic;
# the agent's rule does not: 64 at most)
LONG=fleet/dev-a/diag/resp/$(printf 'r%.0s' $(seq 65))
check_exit 27 "a response topic over 64 bytes of requester gets no answer" \
	mosquitto_rr "${MQ[@]}" -q 1 -W 3 -t "$REQ" -e "$LONG" \
	-D publish correlation-data c-x -m '{"check":"ping"}'
check_exit 27 "no correlation data gets no answer" \
	mosquitto_rr "${MQ[@]}" -q 1 -W 3 -t "$REQ" -e "$RESP" -m '{"check":"ping"}'
dropped() { [ "$(grep -c 'dropped a request without a valid response topic' "$A/agent.log")" -eq 2 ]; }
check "... the agent says why it dropped both" dropped
check "positive control: 64 bytes of requester are answered" \
	mosquitto_rr "${MQ[@]}" -q 1 -W $((20 * WAIT_SCALE)) -t "$REQ" -e "${LONG%r}" \
	-D publish correlation-data c-y -m '{"check":"ping"}'
check "positive control: the same channel answers a good request" \
	ask again '{"check":"ping"}'

kill -CONT "$FLEETD_PID"
fleetd_back() { [ "$(grep -c 'connected to the broker' "$T/fleetd.log")" -ge 2 ]; }
if wait_until 30 fleetd_back; then pass "fleetd takes its session back"; else fail "fleetd takes its session back"; fi
check_exit 0 "the agent stops cleanly" agent_stop dev-a
finish
