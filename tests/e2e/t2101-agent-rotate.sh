#!/usr/bin/env bash
# Certificate rotation with real agents (issue 3): `fleetctl rotate --all
# --wait` on 20 running agents, each ending on a new key and certificate
# with the old one revoked; a forced bad certificate (fleetd failpoint)
# leaves the device on its old one; the agent state after a rotation.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

# 20 agents; under the sanitizers 8, which is the same code path without
# drowning 2 cores in ASan-instrumented processes.
if [ "${FLEET_SAN:-0}" = 1 ]; then N=8; else N=20; fi
not() { ! "$@"; }
# the failpoint exists only in the test build of fleetd
export FLEETD_FAILPOINTS=reenroll-bad-cert=dev-bad
FLEETD=fleetd-test start_fleetd --with-broker
login_admin
TOK=$(fleetctl -o json token create fleet20 --enroll --group many --uses $((N + 5)) --ttl 1h | jq -r .token)

ok=0
for i in $(seq -f %02g 1 $N); do
	agent_enroll "dev-$i" "$TOK" && ok=$((ok + 1))
done
check_true "$N agents enrolled ($ok)" test "$ok" -eq "$N"
declare -A OLD=() OLDKEY=()
for i in $(seq -f %02g 1 $N); do
	OLD[dev-$i]=$(agent_serial "dev-$i")
	OLDKEY[dev-$i]=$(sha256sum <"$(agent_dir "dev-$i")/state/key.pem")
	agent_start "dev-$i"
done
all_online() {
	[ "$(fleetctl -o json devices list --group many --online | jq length)" -eq "$N" ]
}
if wait_until 30 all_online; then pass "all $N agents online"; else fail "all $N agents online"; fi

# --- rotate --all --wait --------------------------------------------------
cp "$(agent_dir dev-01)/state/cert.pem" "$T/old-01.pem"
cp "$(agent_dir dev-01)/state/key.pem" "$T/old-01.key"
check "rotate --all --wait" fleetctl -o json rotate --all --wait --timeout $((90 * WAIT_SCALE))s
cp "$T/last.out" "$T/rotate.json"
check "every device reports done" sh -c \
	"sed -n '/^\[/,\$p' '$T/rotate.json' | jq -e 'length == $N and all(.[]; .result == \"done\")'"
changed=0 revoked=0 keys=0 agree=0
for i in $(seq -f %02g 1 $N); do
	id=dev-$i
	new=$(agent_serial "$id")
	[ -n "$new" ] && [ "$new" != "${OLD[$id]}" ] && changed=$((changed + 1))
	[ "$new" = "$(dev_serial "$id")" ] && agree=$((agree + 1))
	dev_json "$id" | jq -e --arg old "${OLD[$id]}" \
		'(.active_certs | length) == 1 and (.active_certs | index($old)) == null' \
		>/dev/null && revoked=$((revoked + 1))
	[ "$(sha256sum <"$(agent_dir "$id")/state/key.pem")" != "${OLDKEY[$id]}" ] && keys=$((keys + 1))
done
check_true "all $N agents use a new certificate ($changed)" test "$changed" -eq "$N"
check_true "... the one fleetd recorded ($agree)" test "$agree" -eq "$N"
check_true "... with a new key ($keys)" test "$keys" -eq "$N"
check_true "... and every old certificate is revoked ($revoked)" test "$revoked" -eq "$N"
# the event follows the confirm that ends 'rotate --wait': wait for it
check "the events reached fleetd: rotate succeeded with the new serial" \
	wait_until $((10 * WAIT_SCALE)) sh -c \
	"fleetctl -o json devices show dev-01 | jq -e '.last_event | .type == \"rotate\" and .state == \"succeeded\" and .serial == \"$(agent_serial dev-01)\"'"
if wait_until 30 all_online; then pass "all $N agents online after the rotation"; else fail "all $N agents online after the rotation"; fi
D1=$(agent_dir dev-01)
check_true "nothing staged is left" sh -c "! ls '$D1/state' | grep -q '\.new\$\|identity.commit\|confirm.json'"
check_true "the new key is 0600" test "$(stat -c %a "$D1/state/key.pem")" = 600
check_true "the old certificate no longer opens the broker" \
	not mosquitto_pub -h "$MQTT_HOST" -p "$MQTT_PORT" -V 5 --cafile "$FLEET_CA_FILE" \
	--cert "$T/old-01.pem" --key "$T/old-01.key" -t fleet/dev-01/status -m '{}'
check_grep '^401$' "... nor the HTTPS API" \
	api POST /api/v1/reenroll --cert "$T/old-01.pem" --key "$T/old-01.key" \
	-d '{}' -o /dev/null -w '%{http_code}\n'

# --- a second rotation of one device ------------------------------------------
S1=$(agent_serial dev-02)
check "rotate dev-02 again" fleetctl rotate dev-02 --wait --timeout $((60 * WAIT_SCALE))s
check_true "dev-02 moved on again" test "$(agent_serial dev-02)" != "$S1"
# the event follows the confirm that ends 'rotate --wait': wait for it
check "its event has seq 2" wait_until $((10 * WAIT_SCALE)) sh -c \
	"fleetctl -o json devices show dev-02 | jq -e '.last_event.seq == 2'"

# --- a bad new certificate keeps the old one ------------------------------------
check "enroll dev-bad" agent_enroll dev-bad "$TOK"
BAD_OLD=$(agent_serial dev-bad)
agent_start dev-bad
wait_until 15 dev_online dev-bad || fail "dev-bad online"
check_exit 1 "rotating dev-bad fails (fleetd hands out a rogue certificate)" \
	fleetctl rotate dev-bad --wait --timeout $((60 * WAIT_SCALE))s
check_true "dev-bad keeps its certificate" test "$(agent_serial dev-bad)" = "$BAD_OLD"
check "fleetd did not revoke the old certificate" sh -c \
	"fleetctl -o json devices show dev-bad | jq -e '.active_certs | index(\"$BAD_OLD\") != null'"
check "the failure event names the stage" sh -c \
	"fleetctl -o json devices show dev-bad | jq -e '.last_event | .state == \"failed\" and .stage == \"reenroll\" and (.reason | length) > 0'"
check_true "no staged files are left" sh -c "! ls '$(agent_dir dev-bad)/state' | grep -q '\.new\$'"
check_true "dev-bad is still running" kill -0 "${AGENT_PID[dev-bad]}"
if wait_until 10 dev_online dev-bad; then pass "dev-bad is still online"; else fail "dev-bad is still online"; fi
check_grep 'certificate rejected|rejected' "the agent says why" cat "$(agent_dir dev-bad)/agent.log"

# --- rotation is a job (issue 9 item 2) ---------------------------------------
check "dev-01's rotation is a succeeded rotate job" sh -c \
	"fleetctl -o json jobs list --device dev-01 | jq -e '[.[] | select(.type == \"rotate\")] | length == 1 and .[0].state == \"succeeded\" and .[0].final == true'"
check "dev-bad's is a failed one, at the stage the agent named" sh -c \
	"fleetctl -o json jobs list --device dev-bad | jq -e '.[0].type == \"rotate\" and .[0].state == \"failed\" and .[0].stage == \"reenroll\"'"
# a device's events the rotate job's state machine refuses are counted,
# not recorded (an illegal state); an event older than the job's last is
# counted as stale and recorded in the history without moving the job
agent_stop dev-03 >/dev/null 2>&1
J3A=$(fleetctl -o json rotate dev-03 2>/dev/null | jq -r '.[0].job')
check_true "rotate dev-03 (stopped) started job $J3A" test "${J3A#j-}" != "$J3A"
fleetctl -o json rotate dev-03 2>/dev/null >"$T/r3.json"
J3=$(jq -r '.[0].job' "$T/r3.json")
C3=$(jq -r '.[0].command' "$T/r3.json")
check_true "rotating it again starts a new job ($J3)" sh -c "test '${J3#j-}' != '$J3' && test '$J3' != '$J3A'"
check "... and cancels the one it supersedes" sh -c \
	"fleetctl -o json jobs show $J3A | jq -e '.state == \"cancelled\" and .final == true'"
D3=$(agent_dir dev-03)
dev03_pub() {
	mosquitto_pub -h "$MQTT_HOST" -p "$MQTT_PORT" -V 5 -q 1 --cafile "$FLEET_CA_FILE" \
		--cert "$D3/state/cert.pem" --key "$D3/state/key.pem" -t fleet/dev-03/events -m "$1"
}
pub_refused_then_legal() {
	dev03_pub "{\"seq\": 1000, \"cmd\": \"$C3\", \"type\": \"rotate\", \"state\": \"rolled-back\"}" &&
		dev03_pub "{\"seq\": 1002, \"cmd\": \"$C3\", \"type\": \"rotate\", \"state\": \"queued\"}" &&
		dev03_pub "{\"seq\": 1001, \"cmd\": \"$C3\", \"type\": \"rotate\", \"state\": \"queued\"}"
}
check "dev-03 publishes rolled-back (no rotate state), queued, an older queued" \
	pub_refused_then_legal
counted() {
	fleetctl -o json status | jq -e '.jobs.illegal_transitions == 1 and .jobs.stale_events == 1' >/dev/null
}
if wait_until 10 counted; then pass "status counts one illegal transition and one stale event"; else fail "status counts one illegal transition and one stale event"; fi
check "the job recorded the legal event and the older one, not the illegal one, and is still open" sh -c \
	"fleetctl -o json jobs show $J3 | jq -e '.state == \"queued\" and .final == false and ([.events[].seq] | sort) == [1001, 1002]'"
check_grep '^illegal-transitions: +1$' "fleetctl status shows the counter" fleetctl status

for i in $(seq -f %02g 1 $N) bad; do agent_stop "dev-$i" >/dev/null 2>&1; done
finish
