#!/usr/bin/env bash
# Updates end to end (issue 5): a real fleetd with its broker, a real
# agent in sim mode.  A good bundle ends on the new slot and version
# with "succeeded" after a reboot (the agent restarts itself, same pid)
# and a passed health check; fw_printenv reads the same variables; the
# trust root came from fleetd at enrolment; a rollback command goes back
# to the previous slot; the command line of sim mode.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

check_exit 0 "sim-init --help" fleet-agent sim-init --help
check_exit 2 "sim-init needs a directory" fleet-agent sim-init --image x
check_exit 2 "sim-init needs --image" fleet-agent sim-init "$T/nosim"
check_exit 3 "sim-init of a missing image (exit 3)" \
	fleet-agent sim-init "$T/nosim" --image "$T/missing"
check_exit 2 "a bad --bootlimit" fleet-agent sim-init "$T/nosim" --image x --bootlimit 0

start_fleetd --with-broker
login_admin
ota_fleet_ready
SIZE=$(stat -c %s "$T/fw/fw-1.1.0.fwb")
TOK=$(fleetctl -o json token create ota --enroll --uses 4 --ttl 1h | jq -r .token)

A=$(agent_dir dev-a)
check "enrol dev-a and make it a simulated device" sim_agent dev-a "$TOK"
check "the trust root was fetched at enrolment" cmp "$A/state/root.json" "$T/fw/root.json"
check_exit 5 "sim-init of a device twice is a conflict (exit 5)" \
	fleet-agent sim-init "$A/sim" --image "$T/fw/fw-1.0.0"
check_true "fw_printenv: slot a" test "$(sim_var dev-a fleet_slot)" = a
check_true "fw_printenv: bootlimit 3" test "$(sim_var dev-a bootlimit)" = 3
check_true "fw_printenv: no trial" test "$(sim_var dev-a upgrade_available)" = 0

AGENT_ENV="LD_DEBUG=files LD_DEBUG_OUTPUT=$T/agent-ld" agent_start_sim dev-a
PID=${AGENT_PID[dev-a]}
wait_until 15 dev_online dev-a || fail "dev-a comes online"
dev_fw() { dev_json dev-a | jq -e ".firmware == \"$1\" and .slot == \"$2\"" >/dev/null; }
if wait_until 10 dev_fw 1.0.0 a; then pass "fleetd sees firmware 1.0.0 in slot a"
else fail "fleetd sees firmware 1.0.0 in slot a"; fi

# Libraries load on first use (common/lazylib.h): libcurl with the first
# download, libzstd with a compressed payload; libubootenv (and its zlib)
# only while the boot environment is read or written, as at start.
check_exit 1 "the idle agent maps none of the libraries loaded on first use" \
	grep -E 'libcurl\.so|libarchive\.so|libgit2\.so|libzstd\.so|libubootenv\.so|libz\.so' \
	"/proc/$PID/maps"
check_grep 'libmosquitto\.so' "positive control: its maps list libmosquitto" \
	cat "/proc/$PID/maps"
check_grep 'file=/.*/libubootenv\.so\.0 \[0\]; +destroying link map' \
	"positive control: the agent opened libubootenv at start, then closed it" \
	cat "$T"/agent-ld.*

# --- a good update ------------------------------------------------------------
check "update dev-a to 1.1.0 --wait" \
	fleetctl update dev-a --bundle fleet-sample@1.1.0 --wait --timeout 90s
JOB=$(fleetctl -o json jobs list --device dev-a | jq -r '.[0].id')
check "the job succeeded" sh -c "fleetctl -o json jobs show $JOB | jq -e '.state == \"succeeded\" and .from_version == \"1.0.0\" and .to_version == \"1.1.0\"'"
job_json "$JOB" | jq -r '[.events[].state] | unique | join(" ")' >"$T/states"
for s in queued downloading verifying installing installed rebooting health-check succeeded; do
	check_grep "\\b$s\\b" "fleetd saw the state $s" cat "$T/states"
done
check "states came in protocol order" sh -c "fleetctl -o json jobs show $JOB | jq -e '
	[.events[].state] as \$s |
	[\"queued\",\"downloading\",\"verifying\",\"installing\",\"installed\",\"rebooting\",\"health-check\",\"succeeded\"] as \$o |
	[\$s[] | . as \$x | \$o | index(\$x)] as \$i | \$i == (\$i | sort)'"
check_true "fw_printenv: slot b" test "$(sim_var dev-a fleet_slot)" = b
check_true "fw_printenv: trial over" test "$(sim_var dev-a upgrade_available)" = 0
check_true "fw_printenv: bootcount reset" test "$(sim_var dev-a bootcount)" = 0
check_true "fw_printenv: no fleet_try left" test -z "$(sim_var dev-a fleet_try)"
check "slot b holds 1.1.0" cmp "$A/sim/slot-b" "$T/fw/fw-1.1.0"
check "slot a still holds 1.0.0" cmp "$A/sim/slot-a" "$T/fw/fw-1.0.0"
check "the new slot runs" sh -c "'$A/sim/slot-b' --version | grep -qx 1.1.0"
check_true "the agent restarted itself: same pid, still running" kill -0 "$PID"
check_true "... under its own name" test "$(cat "/proc/$PID/comm")" = fleet-agent
check_grep 'sim: power-on 2: booted slot b' "the reboot was a simulated power cycle" cat "$A/agent.log"
if wait_until 10 dev_fw 1.1.0 b; then pass "fleetd sees firmware 1.1.0 in slot b"
else fail "fleetd sees firmware 1.1.0 in slot b"; fi
status_ok() {
	agent_json dev-a | jq -e --argjson size "$SIZE" '
	.firmware == "1.1.0" and .slot == "b" and .security_floor == 1 and
	.boot.phase == "stable" and .slots.b.version == "1.1.0" and
	.job.state == "succeeded" and .job.fetched == $size and .trust_root == 1'
}
check "agent status: firmware, slot, floor, job" status_ok
check_true "no bundle head is left in the state dir" test ! -e "$A/state/bundle.head"
check "status as text names the slots" sh -c \
	"fleet-agent status --config '$A/agent.conf' --sim '$A/sim' | grep -q '^slots '"

# --- the same command again is answered, not acted on ---------------------------
SEQ=$(agent_json dev-a | jq .seq)
CMD=$(job_json "$JOB" | jq -r .command)
mosquitto_pub -h "$MQTT_HOST" -p "$MQTT_PORT" -V 5 --cafile "$FLEET_CA_FILE" \
	--cert "$FLEETD_STATE/mqtt/fleetd.pem" --key "$FLEETD_STATE/mqtt/fleetd.key" \
	-t fleet/dev-a/cmd -q 2 -m "{\"id\":\"$CMD\",\"type\":\"update\",\"args\":{}}"
if wait_until 10 grep -q "$CMD seen before" "$A/agent.log"; then pass "a repeated update command is recognised"
else fail "a repeated update command is recognised"; fi
# publishing as fleetd took over fleetd's MQTT session: let it come back
fleetd_back() { [ "$(grep -c 'connected to the broker' "$T/fleetd.log")" -ge 2 ]; }
wait_until 30 fleetd_back || fail "fleetd reconnects to the broker"
check_true "... and not run again (no new event)" test "$(agent_json dev-a | jq .seq)" = "$SEQ"

# --- rollback on request ----------------------------------------------------------
check "rollback --device dev-a --wait" fleetctl rollback --device dev-a --wait --timeout 60s
RJOB=$(fleetctl -o json jobs list --device dev-a | jq -r '.[0].id')
check "the rollback job succeeded" sh -c "fleetctl -o json jobs show $RJOB | jq -e '.type == \"rollback\" and .state == \"succeeded\"'"
check_true "fw_printenv: back on slot a" test "$(sim_var dev-a fleet_slot)" = a
check_true "fw_printenv: rollback trial over" test "$(sim_var dev-a upgrade_available)" = 0
if wait_until 10 dev_fw 1.0.0 a; then pass "fleetd sees firmware 1.0.0 in slot a again"
else fail "fleetd sees firmware 1.0.0 in slot a again"; fi

# --- and forward again: slot b is rewritten from the bundle ---------------------
check "update to 1.1.0 again" \
	fleetctl update dev-a --bundle fleet-sample@1.1.0 --wait --timeout 90s
check_true "fw_printenv: slot b again" test "$(sim_var dev-a fleet_slot)" = b

# --- nothing to start: a clear error, nothing half-done --------------------------
check_exit 3 "an update of unknown devices only is not found (exit 3, issue 8)" \
	fleetctl update nosuch --bundle fleet-sample@1.1.0
check_grep 'no device could start: .*nosuch' "... saying which device and why" \
	fleetctl update nosuch --bundle fleet-sample@1.1.0
check_exit 3 "an unknown bundle is not found (exit 3)" \
	fleetctl update dev-a --bundle fleet-sample@9.9.9

# --- factory provisioning carries the trust root ---------------------------------
check "provision dev-p" fleetctl provision dev-p --out "$T/dev-p.tar.gz"
mkdir -p "$T/unpack" && tar -xzf "$T/dev-p.tar.gz" -C "$T/unpack"
check "the archive holds fleetd's root 1 as root.json" \
	cmp <(jq -S . "$T/unpack/dev-p/root.json") <(jq -S . "$T/fw/root.json")
check "... which the agent takes as its trust root" sh -c \
	"fleet-agent status -o json --config '$T/unpack/dev-p/agent.conf' | jq -e '.trust_root == 1'"

# --- a device without updates configured refuses, and says why ----------------
B=$(agent_dir dev-b)
check "enrol dev-b (no [boot], no --sim)" agent_enroll dev-b "$TOK"
agent_start dev-b
wait_until 15 dev_online dev-b || fail "dev-b comes online"
check_exit 1 "an update of dev-b fails" \
	fleetctl update dev-b --bundle fleet-sample@1.1.0 --wait --timeout 30s
BJOB=$(fleetctl -o json jobs list --device dev-b | jq -r '.[0].id')
check "... at stage queued, saying updates are not configured" sh -c \
	"fleetctl -o json jobs show $BJOB | jq -e '.state == \"failed\" and .stage == \"queued\" and (.reason | test(\"not configured\"))'"

agent_stop dev-a
check_true "dev-a stops cleanly" test $? -eq 0
finish
