#!/usr/bin/env bash
# A job's outcome reaches fleetd even when fleetd loses it after the
# broker acknowledged it (issue 17): fleetd-test's failpoint loses the
# first final event the way a fleetd killed between the broker's PUBACK
# and its commit would; the agent, which keeps a final event until fleetd
# confirms it ("ack" on its command topic), publishes it again and the
# job closes, stored once.  Without the failpoint (positive control of
# the timing) the same update closes at once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

FLEETD=fleetd-test FLEETD_FAILPOINTS=ingest-lose-final start_fleetd --with-broker
export FLEETD_FAILPOINTS=ingest-lose-final
login_admin
ota_fleet_ready
TOK=$(fleetctl -o json token create ota --enroll --uses 2 --ttl 1h | jq -r .token)
check "enrol dev-a as a simulated device" sim_agent dev-a "$TOK"
# resend after 1 s instead of 10 s, so the test is quick
printf '\n[mqtt]\nevent_retry = 1s\n' >>"$(agent_dir dev-a)/agent.conf"
agent_start_sim dev-a
wait_until 15 dev_online dev-a || fail "dev-a comes online"

check "update dev-a to 1.1.0 --wait: it succeeds although fleetd lost the outcome once" \
	fleetctl update dev-a --bundle fleet-sample@1.1.0 --wait --timeout 90s
JOB=$(fleetctl -o json jobs list --device dev-a | jq -r '.[0].id')
check_grep "failpoint: event [0-9]* from dev-a lost" \
	"positive control: fleetd did lose the final event once" cat "$T/fleetd.log"
check_grep "dev-a: event [0-9]* again .not confirmed yet" \
	"the agent published it again" cat "$(agent_dir dev-a)/agent.log"
check "the job is succeeded and final" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.state == \"succeeded\" and .final == true'"
check "its history holds the outcome once" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '[.events[] | select(.state == \"succeeded\")] | length == 1'"
check "fleetctl status counts the confirmation" sh -c \
	"fleetctl -o json status | jq -e '.ingest.acks >= 1 and .ingest.failed == 0'"
check_grep "^acks: *[1-9]" "fleetctl status (table) shows the acks" fleetctl status
agent_done() { agent_json dev-a | jq -e '.unconfirmed_events == 0'; }
if wait_until 15 agent_done; then pass "fleet-agent status: no unconfirmed event any more"
else fail "fleet-agent status: no unconfirmed event any more"; agent_json dev-a; fi
d=$(agent_dir dev-a)
check_grep "^unconfirmed_events  *0$" "fleet-agent status (table) says so too" \
	fleet-agent status --config "$d/agent.conf" --sim "$d/sim"
finish
