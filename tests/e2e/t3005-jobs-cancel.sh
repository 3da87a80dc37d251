#!/usr/bin/env bash
# Jobs that cannot finish (issue 8 items 14, 9, 16): a job for an
# offline device can be cancelled (final; the device is free again;
# the device's late events on it are ignored; a device that holds the
# job is told and stops it before the switch) and expires at its
# deadline (update --expire, default [jobs] expire in fleetd.conf);
# update --wait names the offline devices at once and stops when their
# jobs expire; update of an unknown device is "not found" (3); update
# and rollback of a decommissioned device are refused (5).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

FLEETD_CONF='[jobs]
expire = 2h'
start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
check "upload fleet-sample 1.1.0" fleetctl bundle upload "$T/fw/fw-1.1.0.fwb"
check "make a 4 MiB firmware" ota_pad "$T/fw/fw-1.1.0" 4 "$T/fw/big"
check "upload it as 1.1.1" fleetctl bundle upload "$(ota_bundle "$T/fw/big" 1.1.1 1)"
TOK=$(fleetctl -o json token create jobs --enroll --uses 4 --ttl 1h | jq -r .token)
check "enrol dev-a (simulated, online)" sim_agent dev-a "$TOK"
# 2 MiB/s: the 4 MiB download lasts long enough for the cancel to arrive
printf '[download]\nmax_download_rate = 2097152\n' >>"$(agent_dir dev-a)/agent.conf"
check "enrol dev-o (never started: offline)" sim_agent dev-o "$TOK"
check "enrol dev-d (to be decommissioned)" sim_agent dev-d "$TOK"
AGENT_BIN=fleet-agent-test AGENT_ENV=FLEET_AGENT_FAILPOINTS=downloading agent_start_sim dev-a
wait_until 15 dev_online dev-a || fail "dev-a comes online"
B=fleet-sample@1.1.0
jobs_of() { fleetctl -o json jobs list --device "$1"; }
first_job() { jobs_of "$1" | jq -r '.[0].id'; }

# --- unknown and decommissioned devices -------------------------------------
check_exit 3 "update of an unknown device is not found (exit 3)" \
	fleetctl update dev-nope --bundle "$B"
check_exit 3 "rollback of an unknown device is not found (exit 3)" \
	fleetctl rollback --device dev-nope
check_exit 0 "positive control: dev-d (active) accepts an update job" \
	fleetctl -o json update dev-d --bundle "$B"
check_exit 0 "... which is cancelled" fleetctl jobs cancel "$(first_job dev-d)"
check_exit 0 "decommission dev-d" fleetctl devices decommission dev-d
check_exit 5 "update of a decommissioned device is refused (exit 5)" \
	fleetctl -o json update dev-d --bundle "$B"
check_exit 5 "rollback of a decommissioned device is refused (exit 5)" \
	fleetctl rollback --device dev-d
check_true "no job was created for dev-d after its decommission" \
	test "$(jobs_of dev-d | jq length)" = 1

# --- cancel a job for an offline device ---------------------------------------
check "update dev-o (offline): the job is queued" \
	sh -c "fleetctl -o json update dev-o --bundle '$B' >'$T/o.json'"
JO=$(jq -r '.[0].job' "$T/o.json")
check "the job carries its deadline from fleetd.conf ([jobs] expire = 2h)" sh -c \
	"fleetctl -o json jobs show $JO | jq -e '(.expires | fromdateiso8601) - (.created | fromdateiso8601) == 7200'"
check_exit 5 "dev-o is busy: a second update is refused (exit 5)" \
	fleetctl update dev-o --bundle "$B"
check_exit 4 "a viewer cannot cancel (exit 4)" sh -c \
	"VT=\$(fleetctl -o json token create v --role viewer | jq -r .token)
	 fleetctl --token \"\$VT\" jobs cancel $JO"
check_exit 0 "jobs cancel JOB" fleetctl jobs cancel "$JO"
check "the job is cancelled and final" sh -c \
	"fleetctl -o json jobs show $JO | jq -e '.state == \"cancelled\" and .final == true'"
check_exit 5 "cancelling it again is a conflict (exit 5)" fleetctl jobs cancel "$JO"
check_exit 3 "cancelling an unknown job is not found (exit 3)" fleetctl jobs cancel j-0000000000000000
check_grep "/api/v1/jobs/$JO/cancel" "the cancel is audited" \
	api GET /api/v1/audit -H "Authorization: Bearer $ADMIN_TOKEN"
check_exit 0 "dev-o is free again: a new update starts" fleetctl -o json update dev-o --bundle "$B"
check_exit 0 "... and is cancelled too" fleetctl jobs cancel "$(first_job dev-o)"

# --- a device that holds the job is told; what it reports later is ignored -------
check "update dev-a to 1.1.1 (online; it stops itself at downloading)" \
	sh -c "fleetctl -o json update dev-a --bundle fleet-sample@1.1.1 >'$T/a.json'"
JA=$(jq -r '.[0].job' "$T/a.json")
if wait_until 30 proc_stopped "${AGENT_PID[dev-a]}"; then pass "dev-a got the command and stopped"
else fail "dev-a got the command and stopped"; fi
check_exit 0 "cancel dev-a's job while the device holds it" fleetctl jobs cancel "$JA"
kill -CONT "${AGENT_PID[dev-a]}"
agent_cancelled() {
	agent_json dev-a | jq -e --arg j "$JA" '.job.id == $j and .job.state == "failed" and
		.job.reason == "cancelled by fleetd"' >/dev/null
}
if wait_until 30 agent_cancelled; then pass "dev-a was told: it ended the job, cancelled by fleetd"
else fail "dev-a was told: it ended the job, cancelled by fleetd"; agent_json dev-a | jq .job; fi
check_true "... before any switch: slot a, no trial" \
	test "$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)" = a0
reported() { grep -q "event from dev-a.*state=failed reason=cancelled by fleetd" "$T/fleetd.log"; }
if wait_until 15 reported; then pass "positive control: fleetd heard dev-a report it"
else fail "positive control: fleetd heard dev-a report it"; fi
check "the job stays cancelled: the device's report did not move it" sh -c \
	"fleetctl -o json jobs show $JA | jq -e '.state == \"cancelled\" and .final == true and
		([.events[].state] | index(\"failed\")) == null'"
agent_stop dev-a
agent_start_sim dev-a # without the failpoint now
wait_until 15 dev_online dev-a || fail "dev-a comes back online"
check_exit 0 "dev-a is free: it takes the next update" \
	fleetctl -o json update dev-a --bundle "$B" --wait --timeout 60s

# --- expiry -------------------------------------------------------------------
check "update dev-o --expire 2s" \
	sh -c "fleetctl -o json update dev-o --bundle '$B' --expire 2s >'$T/e.json'"
JE=$(jq -r '.[0].job' "$T/e.json")
expired() { fleetctl -o json jobs show "$JE" | jq -e '.state == "expired" and .final == true' >/dev/null; }
if wait_until 15 expired; then pass "fleetd expires the job at its deadline"
else fail "fleetd expires the job at its deadline"; fi
check_exit 2 "--expire 0 is a usage error" fleetctl update dev-o --bundle "$B" --expire 0
check_exit 2 "--expire bogus is a usage error" fleetctl update dev-o --bundle "$B" --expire bogus

# --- update --wait says who is offline, and stops at the expiry --------------
START=$(date +%s)
check_exit 1 "update --wait of an offline device ends when its job expires (exit 1)" \
	fleetctl update dev-o --bundle "$B" --expire 3s --wait
cp "$T/last.out" "$T/wait.out"
check_grep "dev-o.*offline" "... and says at once that dev-o is offline" cat "$T/wait.out"
check_grep "dev-o: expired" "... and that its job expired" cat "$T/wait.out"
check_true "... within seconds, not 30 minutes" test $(($(date +%s) - START)) -lt $((30 * WAIT_SCALE))
check_exit 7 "--wait --timeout 2s of an offline device times out (exit 7)" \
	fleetctl update dev-o --bundle "$B" --expire 1h --wait --timeout 2s
agent_stop dev-a
finish
