#!/usr/bin/env bash
# fleetd migrate (issue 14, docs/scale.md): an installation on SQLite
# with tokens, enrolled devices with labels, a bundle, two simulated
# devices updated by a finished rollout (their jobs and job events) and an
# audit log is copied into a new PostgreSQL database (a real one that
# lib-pg.sh starts here); fleetd served on it gives the same fleetctl
# answers, in the table and as JSON, and carries on writing (the audit's
# ids go on after the copied ones; the devices come back online on it).
# A database that already holds data is refused.  Skipped, saying so,
# only where PostgreSQL is not installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"
. "$(dirname "$0")/lib-pg.sh"

pg_required
unset FLEET_STORE FLEET_STORE_URL # the installation is on SQLite
pg_start || { cat "$T/postgres.log"; exit 1; }
URL="postgresql://fleet@127.0.0.1:$PG_PORT/postgres"

start_fleetd --with-broker
login_admin
fleetctl -q token create ro --role viewer >/dev/null
TOK=$(fleetctl -o json token create fleet --enroll --group g1 --uses 5 --ttl 1h | jq -r .token)
for d in dev-a dev-b; do
	check_grep '^201$' "$d enrols" enroll_curl "$d" "$TOK"
done
check "dev-a gets labels" fleetctl -q devices label dev-a site=berlin rack=7

# a bundle, and a rollout of it that completed on two simulated devices
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
check "upload fleet-sample 1.1.0" fleetctl bundle upload "$T/fw/fw-1.1.0.fwb"
TOK2=$(fleetctl -o json token create sims --enroll --group g2 --uses 2 --ttl 1h | jq -r .token)
SIMS="sim-a sim-b"
for d in $SIMS; do
	check "enrol $d (simulated, group g2)" sim_agent "$d" "$TOK2"
	agent_start_sim "$d"
done
sims() { for d in $SIMS; do "$1" "$d" || return 1; done; }
wait_until 30 sims dev_online || fail "the simulated devices come online"
check "a rollout of 1.1.0 to g2" fleetctl -q rollout create --bundle fleet-sample@1.1.0 \
	--group g2 --waves 1,100% --soak 0s --health-window 1s --id r-move
check_exit 0 "... completes" timeout 120 fleetctl rollout watch r-move --interval 1s --timeout 100s
for d in $SIMS; do agent_stop "$d"; done
wait_until 30 sims dev_offline || fail "the simulated devices go offline when stopped"

# what fleetctl answers before the move; a device's last_seen is left out
# where the simulated ones are shown (fleetd reads their retained offline
# presence again when it starts, and that is a sighting)
seen_out() { awk '{ $5 = ""; print }'; }
seen_del() { jq 'del(.last_seen)'; }
before() { # NAME FILTER fleetctl-args...: $T/NAME.before
	local name=$1 filter=$2
	shift 2
	fleetctl "$@" | $filter >"$T/$name.before"
}
before devices seen_out devices list
before dev-a cat -o json devices show dev-a
before sim-a seen_del -o json devices show sim-a
before bundles cat -o json bundle list
before rollouts cat -o json rollout list
before r-move cat -o json rollout status r-move --devices
before r-move-table cat rollout status r-move --devices
before jobs cat -o json jobs list --device sim-a
JOB=$(jq -r '.[0].id' "$T/jobs.before")
before job cat -o json jobs show "$JOB"
fleetctl -o json token list | jq 'map(del(.last_used))' >"$T/tokens.before"
check_true "the rollout's job of sim-a succeeded, with its events" \
	jq -e '.state == "succeeded" and (.events | length) > 3' "$T/job.before"
kill -TERM "$FLEETD_PID" && wait "$FLEETD_PID"
AUDIT=$(store_sql "SELECT count(*) || ' ' || max(id) FROM audit")

check_grep '^copied [0-9]+ rows$' "fleetd migrate copies the installation" \
	fleetd migrate --from "sqlite:$FLEETD_STATE/fleetd.db" --to "$URL"
check_exit 5 "a database that holds data is refused" \
	fleetd migrate --from "sqlite:$FLEETD_STATE/fleetd.db" --to "$URL"
check_grep 'not empty' "... saying so" \
	fleetd migrate --from "sqlite:$FLEETD_STATE/fleetd.db" --to "$URL"
check_exit 2 "--to is required" fleetd migrate --from "$FLEETD_STATE/fleetd.db"

mv "$FLEETD_STATE/fleetd.db" "$T/old.db" # fleetd cannot fall back to it
fleetd_restart --with-broker --store "$URL" || fail "fleetd serves the PostgreSQL store"
login_admin
same() { # NAME FILTER WHAT fleetctl-args...: the answer before the move
	local name=$1 filter=$2 what=$3
	shift 3
	check_true "$what is the same on PostgreSQL" cmp "$T/$name.before" <(fleetctl "$@" | $filter)
}
same devices seen_out "the device table" devices list
check_grep 'dev-a +g1' "... and lists dev-a in group g1" fleetctl devices list
same dev-a cat "a device's JSON, labels too," -o json devices show dev-a
same sim-a seen_del "a simulated device's JSON (firmware 1.1.0, its slot)" -o json devices show sim-a
same bundles cat "the bundle list" -o json bundle list
same rollouts cat "the rollout list" -o json rollout list
same r-move cat "the finished rollout's status with its devices" -o json rollout status r-move --devices
same r-move-table cat "... and its table" rollout status r-move --devices
same jobs cat "sim-a's jobs" -o json jobs list --device sim-a
same job cat "the rollout's job with its events" -o json jobs show "$JOB"
check_true "the tokens are the same" \
	cmp "$T/tokens.before" <(fleetctl -o json token list | jq 'map(del(.last_used))')
check_grep '"firmware": "1.1.0"' "sim-a was on 1.1.0 before the move" cat "$T/sim-a.before"
agent_start_sim sim-a
wait_until 30 dev_online sim-a && pass "sim-a comes back online on PostgreSQL" ||
	fail "sim-a comes back online on PostgreSQL"
check "a new token after the move" fleetctl token create after --role viewer
check_grep '"name": "after"' "... is listed" fleetctl -o json token list
check_grep "^${AUDIT% *}\$" "the audit entries are copied (${AUDIT% *})" \
	pg_psql -c "SELECT count(*) FROM audit WHERE id <= ${AUDIT#* }"
check_grep '^1$' "... and new ones go on after them" \
	pg_psql -c "SELECT count(*) FROM audit WHERE id > ${AUDIT#* } AND path = '/api/v1/tokens'"
finish
