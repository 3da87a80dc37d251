#!/usr/bin/env bash
# A job's whole history reaches fleetd even when a progress event is lost
# after the broker acknowledged it (issue 10: a broker killed before
# delivering it, or a fleetd killed before storing it): fleetd-test's
# failpoint loses the first progress event.  The agent keeps each
# progress event it sent and names them in the final event's "history";
# fleetd's ack lists the one it lacks in "missing"; the agent publishes
# that one again, then the final, and fleetd records it late without
# moving the finished job.  Every event the agent published is then in
# fleetd under its seq and state.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

FLEETD=fleetd-test FLEETD_FAILPOINTS=ingest-lose-progress start_fleetd --with-broker
export FLEETD_FAILPOINTS=ingest-lose-progress
login_admin
ota_fleet_ready
TOK=$(fleetctl -o json token create ota --enroll --uses 2 --ttl 1h | jq -r .token)
check "enrol dev-a as a simulated device" sim_agent dev-a "$TOK"
agent_start_sim dev-a
wait_until 15 dev_online dev-a || fail "dev-a comes online"
LOG=$(agent_dir dev-a)/agent.log

check "update dev-a to 1.1.0 --wait: it succeeds" \
	fleetctl update dev-a --bundle fleet-sample@1.1.0 --wait --timeout 90s
JOB=$(fleetctl -o json jobs list --device dev-a | jq -r '.[0].id')
LOST=$(sed -n 's/.*failpoint: event \([0-9]*\) from dev-a lost.*/\1/p' "$T/fleetd.log" | head -n 1)
check_true "positive control: fleetd lost progress event ${LOST:-?} of dev-a" test -n "$LOST"
# the agent's record: "SEQ STATE" of each update event it published
agent_events() { sed -n 's/.*dev-a: event \([0-9]*\): update \([a-z-]*\)$/\1 \2/p' "$LOG" | sort -un; }
fleetd_events() { fleetctl -o json jobs show "$JOB" | jq -r '.events[] | "\(.seq) \(.state)"' | sort -n; }
repaired() { fleetd_events | grep -q "^$LOST "; }
if wait_until 20 repaired; then pass "fleetd's history of $JOB has event $LOST now"
else fail "fleetd's history of $JOB has event $LOST now"; fleetd_events; fi
check_grep "fleetd misses 1 event\\(s\\) of $JOB: publishing them again" \
	"the agent was told which one and published it again" cat "$LOG"
check_true "the agent published several events for the job ($(agent_events | wc -l))" \
	test "$(agent_events | wc -l)" -ge 4
check "every event the agent published is in fleetd with its seq and state" \
	diff <(agent_events) <(fleetd_events)
check "the job stays succeeded and final (the late event did not move it)" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.state == \"succeeded\" and .final == true'"
STATE=$(agent_events | sed -n "s/^$LOST //p")
check_grep "Z +$STATE\$" "jobs show (table) lists the event's state ($STATE)" fleetctl jobs show "$JOB"
check "fleetctl status counts it as a late (stale) event" sh -c \
	"fleetctl -o json status | jq -e '.jobs.stale_events >= 1'"
agent_done() { agent_json dev-a | jq -e '.unconfirmed_events == 0' >/dev/null; }
if wait_until 15 agent_done; then pass "fleet-agent status: nothing left unconfirmed"
else fail "fleet-agent status: nothing left unconfirmed"; agent_json dev-a; fi
check_true "the agent's kept events file holds nothing of the job" sh -c \
	"! grep -q '$JOB' '$(agent_dir dev-a)/state/unconfirmed.json'"
finish
