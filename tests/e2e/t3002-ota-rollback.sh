#!/usr/bin/env bash
# Updates that must not stick (issue 5): firmware-sample 1.2.0 fails its
# self test after the reboot, so the agent goes back to the old slot and
# reports rolled-back with the reason; a new slot that never gets to its
# health check (the device dies at every boot) is given up by the
# bootloader itself after bootlimit boots, and the agent reports that
# fall-back truthfully; a rollback with nothing to go back to fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
for v in 1.1.0 1.2.0; do
	check "upload fleet-sample $v" fleetctl bundle upload "$T/fw/fw-$v.fwb"
done
TOK=$(fleetctl -o json token create ota --enroll --uses 4 --ttl 1h | jq -r .token)
A=$(agent_dir dev-a)
check "enrol dev-a as a simulated device" sim_agent dev-a "$TOK"
agent_start_sim dev-a
wait_until 15 dev_online dev-a || fail "dev-a comes online"

# --- nothing to roll back to yet -------------------------------------------------
check_exit 1 "a rollback with an empty slot b fails" \
	fleetctl rollback --device dev-a --wait --timeout 30s
RJOB=$(fleetctl -o json jobs list --device dev-a | jq -r '.[0].id')
check "... at stage queued: no known firmware in slot b" sh -c \
	"fleetctl -o json jobs show $RJOB | jq -e '.state == \"failed\" and .stage == \"queued\" and (.reason | test(\"no known firmware\"))'"
check_true "... and the bootloader was not touched" test "$(sim_var dev-a fleet_slot)" = a

# --- 1.2.0 fails its health check -------------------------------------------------
check_exit 1 "update to 1.2.0 does not succeed (exit 1)" \
	fleetctl update dev-a --bundle fleet-sample@1.2.0 --wait --timeout 90s
JOB=$(fleetctl -o json jobs list --device dev-a | jq -r '.[0].id')
check "the job is rolled-back, with the failed self test as reason" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.state == \"rolled-back\" and (.reason | test(\"health check failed.*sensor bus\"))'"
check "it got as far as the health check" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '[.events[].state] | index(\"health-check\") != null'"
check_true "fw_printenv: back on slot a" test "$(sim_var dev-a fleet_slot)" = a
check_true "fw_printenv: no trial running" test "$(sim_var dev-a upgrade_available)" = 0
check_true "fw_printenv: fleet_try cleared" test -z "$(sim_var dev-a fleet_try)"
check "slot a still holds 1.0.0" cmp "$A/sim/slot-a" "$T/fw/fw-1.0.0"
check "slot b holds the rejected 1.2.0" cmp "$A/sim/slot-b" "$T/fw/fw-1.2.0"
check_grep 'power-on 3: booted slot a' "two reboots: into 1.2.0 and back" cat "$A/agent.log"
dev_fw() { dev_json dev-a | jq -e ".firmware == \"$1\" and .slot == \"$2\"" >/dev/null; }
if wait_until 10 dev_fw 1.0.0 a; then pass "fleetd sees 1.0.0 in slot a"
else fail "fleetd sees 1.0.0 in slot a"; fi
status_ok() {
	agent_json dev-a | jq -e '.firmware == "1.0.0" and .security_floor == 0 and
		.job.state == "rolled-back" and .boot.phase == "stable"' >/dev/null
}
check "the security floor did not move (1.2.0 never succeeded)" status_ok

# --- rollback goes only to the last known good slot (issue 8 item 16) -----------
# Slot b holds 1.2.0, which failed its health check: not a rollback target.
POWERON=$(grep -c 'power-on' "$A/agent.log")
check_exit 1 "a rollback to the slot that failed its health check is refused (exit 1)" \
	fleetctl rollback --device dev-a --wait --timeout 30s
RJOB=$(fleetctl -o json jobs list --device dev-a | jq -r '.[0].id')
check "... by the device, at stage queued: slot b is not known good" sh -c \
	"fleetctl -o json jobs show $RJOB | jq -e '.type == \"rollback\" and .state == \"failed\" and .stage == \"queued\" and (.reason | test(\"not known good\"))'"
check_true "... no reboot, still slot a without a trial" \
	test "$(grep -c 'power-on' "$A/agent.log")$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)" = "${POWERON}a0"

# --- a slot that never comes up: the bootloader falls back ----------------------
# The agent stops itself at the health check of the new slot, and is
# killed there; every restart is a power-on that the bootloader counts.
agent_stop dev-a
AGENT_BIN=fleet-agent-test AGENT_ENV=FLEET_AGENT_FAILPOINTS=health-check agent_start_sim dev-a
wait_until 15 dev_online dev-a || fail "dev-a comes online with the failpoint"
check "start the update to 1.1.0" sh -c "fleetctl -o json update dev-a --bundle fleet-sample@1.1.0 >'$T/up.json'"
JOB=$(jq -r '.[0].job' "$T/up.json")
crashed=0
if wait_until 60 proc_stopped "${AGENT_PID[dev-a]}"; then
	crashed=1
	kill -9 "${AGENT_PID[dev-a]}"
	wait "${AGENT_PID[dev-a]}" 2>/dev/null
fi
while [ "$crashed" -gt 0 ] && [ "$crashed" -lt 5 ] && [ "$(sim_var dev-a bootcount)" -lt 3 ]; do
	crash_at dev-a health-check || break
	crashed=$((crashed + 1))
done
check_true "killed at the health check $crashed times (bootlimit 3)" test "$crashed" -ge 3
check_true "fw_printenv: slot b on trial, 3 boots counted" \
	test "$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)$(sim_var dev-a bootcount)" = b13
agent_start_sim dev-a
if wait_until 15 grep -q 'booted slot a after falling back' "$A/agent.log"; then
	pass "the next power-on falls back to slot a"
else fail "the next power-on falls back to slot a"; fi
if wait_until 30 job_final "$JOB"; then pass "the job ends"; else fail "the job ends"; fi
check "... rolled-back: the bootloader fell back" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.state == \"rolled-back\" and (.reason | test(\"bootloader fell back\"))'"
check_true "fw_printenv: fall-back acknowledged (fleet_try cleared)" test -z "$(sim_var dev-a fleet_try)"
check_true "fw_printenv: slot a, no trial" test "$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)" = a0
check "slot a still holds 1.0.0" cmp "$A/sim/slot-a" "$T/fw/fw-1.0.0"

# --- and the device still updates fine afterwards -------------------------------
check "update to 1.1.0 succeeds" \
	fleetctl update dev-a --bundle fleet-sample@1.1.0 --wait --timeout 90s
check_true "fw_printenv: slot b" test "$(sim_var dev-a fleet_slot)" = b
# positive control for the rule: slot a (1.0.0) ran confirmed, so it is known good
check "rollback now goes back to slot a, known good" \
	fleetctl -o json rollback --device dev-a --wait --timeout 90s
check_true "fw_printenv: slot a, no trial" \
	test "$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)" = a0
agent_stop dev-a
finish
