#!/usr/bin/env bash
# fleetd dies between "decision written" and "command sent" (issue 10):
# fleetd-test stops itself (FLEETD_FAILPOINTS=rollout-before-send) right
# after it wrote the canary's job and before it sent the command, and is
# killed -9 there.  The production fleetd restarted on the same state
# finds the row commanded and the job written but never sent, sends that
# job's command (same command id) once, creates no second job, and the
# rollout completes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

export FLEETD_FAILPOINTS=rollout-before-send
FLEETD=fleetd-test start_fleetd --with-broker
unset FLEETD_FAILPOINTS
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
check "upload fleet-sample 1.1.0" fleetctl bundle upload "$T/fw/fw-1.1.0.fwb"
TOK=$(fleetctl -o json token create ro --enroll --group g1 --uses 3 --ttl 1h | jq -r .token)
DEVS="dev-a dev-b"
for d in $DEVS; do
	check "enrol $d (simulated, group g1)" sim_agent "$d" "$TOK"
	agent_start_sim "$d"
done
all_online() { for d in $DEVS; do dev_online "$d" || return 1; done; }
wait_until 30 all_online || fail "the devices come online"

check "create rollout cw: a canary, then the other" fleetctl -q rollout create \
	--bundle fleet-sample@1.1.0 --group g1 --waves 1,100% --soak 0s \
	--health-window 1s --id cw
proc_stopped() { [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = T ]; }
check_exit 0 "fleetd-test stops after writing the canary's command" \
	wait_until 30 proc_stopped "$FLEETD_PID"
check_grep 'failpoint rollout-before-send' "... at the failpoint" cat "$T/fleetd.log"
check_exit 0 "kill -9 there: fleetd-test is gone, its broker too" fleetd_kill9
for d in $DEVS; do
	check_exit 1 "$d never heard the command before the kill" \
		grep -q 'command c-[0-9a-f]*: update' "$(agent_dir "$d")/agent.log"
done
check_exit 0 "the production fleetd restarts on the same state and ports" \
	fleetd_restart --with-broker
check_exit 0 "the rollout completes" \
	timeout 200 fleetctl rollout watch cw --interval 1s --timeout 180s
CANARY=$(fleetctl -o json rollout status cw --devices | jq -r '.devices[] | select(.order == 1) | .device')
JOB=$(fleetctl -o json rollout status cw --devices | jq -r '.devices[] | select(.order == 1) | .job')
CMD=$(fleetctl -o json jobs show "$JOB" | jq -r .command)
check "the canary has one job of the rollout: the one written before the kill" sh -c \
	"fleetctl -o json jobs list --device $CANARY | jq -e '[.[] | select(.rollout == \"cw\")] | length == 1 and .[0].id == \"$JOB\"'"
check_grep "^job $JOB, command $CMD\$" "... and command id $CMD, logged when it was written" \
	sh -c "curl -sS --cacert '$FLEET_CA_FILE' -H 'Authorization: Bearer $ADMIN_TOKEN' '$FLEET_URL/api/v1/rollouts/cw?events=1' | jq -r '.events[].detail // empty'"
check_true "the canary's agent ran that command once" \
	test "$(grep -c "command $CMD: update" "$(agent_dir "$CANARY")/agent.log")" -eq 1
check "its row says the command went out once (after the restart)" sh -c \
	"fleetctl -o json rollout status cw --devices | jq -e '.devices[] | select(.order == 1) | .sends == 1'"
for d in $DEVS; do agent_stop "$d"; done
finish
