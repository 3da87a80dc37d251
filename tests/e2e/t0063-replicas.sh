#!/usr/bin/env bash
# Two fleetd replicas on one PostgreSQL and one mosquitto (issue 14,
# docs/scale.md): A and B serve copies of one state dir (the same CA,
# the bundle store shared) with --replica a / b, behind a TCP balancer
# that sends the devices to A while it lives, then to B.  200 fleet-sim
# devices; a rollout started through A; A killed -9 after wave 1
# started.  Shown:
#  - both replicas took events in before the kill (each one's ingest
#    counter > 0: the shared subscription split them), and the kill
#    came mid-rollout;
#  - B takes the engine's lease over within 20 s and finishes: every
#    device updated, one job per device in the rollout, one update
#    command id per device, run once (the device's own record);
#  - no event lost: every event a device published (its own log) is
#    stored, and nothing it did not publish (progress events in A's
#    queue at the kill come back through the final's "missing"; those
#    overtaken through the other replica are recorded late, as stale);
#    none handled twice: the
#    duplicates fleetd saw are no more than the re-publications the
#    devices logged (with plain subscriptions every replica stores
#    every event, and this fails);
#  - /readyz, fleetctl status and fleetd_engine_holder say which
#    replica holds the engine, before and after;
#  - A restarted answers as B does (table and JSON); a dashboard cookie
#    made on A works on B, and a logout on B ends it on A; B paused
#    (SIGSTOP) past its lease loses the engine to A and, continued,
#    knows it; A stopped cleanly hands the lease back and B takes it at
#    once.  (That a paused holder's decisions are refused once it lost
#    the lease: test_store_rollouts, test_fence.)
# Skipped, saying so, only where PostgreSQL is not installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"
. "$(dirname "$0")/lib-pg.sh"
. "$(dirname "$0")/lib-replicas.sh"

pg_required
unset FLEET_STORE_URL
N=${N:-200}
pg_start || { cat "$T/postgres.log"; exit 1; }
URL="postgresql://fleet@127.0.0.1:$PG_PORT/postgres"
S=$T/sim LBPORT=$(free_port) APORT=$(free_port) BAPORT=$(free_port)
LB=https://127.0.0.1:$LBPORT
check "fleetd init on PostgreSQL, one mosquitto from its broker-config, B's state dir a copy of A's, the bundles shared" \
	replicas_init "$LB"
check "replica a serves" replica_serve a "$SA" "$APORT"
check "replica b serves (the same database, broker and CA)" replica_serve b "$SB" "$BAPORT"
A_URL=https://127.0.0.1:$APORT B_URL=https://127.0.0.1:$BAPORT
(exec python3 "$FLEET_SRC/tests/e2e/tcp_failover.py" "$LBPORT" \
	"127.0.0.1:$APORT" "127.0.0.1:$BAPORT" >"$T/lb.out" 2>&1) &
track $!
check "the balancer listens" wait_until 10 grep -q listening "$T/lb.out"
fa() { fleetctl --server "$A_URL" --ca "$FLEET_CA_FILE" --token "$ADMIN_TOKEN" "$@"; }
fb() { fleetctl --server "$B_URL" --ca "$FLEET_CA_FILE" --token "$ADMIN_TOKEN" "$@"; }
FLEET_URL=$A_URL
login_admin
check_grep 'fleetd\.a .*fleetd\.b|fleetd\.b .*fleetd\.a' \
	"the broker sees both replicas, each with its own client id" \
	sh -c "grep -o 'as fleetd\.[ab]' '$T/broker.log' | sort -u | tr '\n' ' '"

check "build the sample firmware and its bundles" ota_firmware
check "push the trust root (through A)" fa root push "$T/fw/root.json"
check "upload fleet-sample 1.1.0 through A" fa bundle upload "$T/fw/fw-1.1.0.fwb"
check_grep 'fleet-sample +1\.1\.0' "B lists it (bundles list, table)" fb bundles list

fa -o json token create sim --enroll --group g --uses "$N" --ttl 1h |
	jq -r .token >"$T/sim.token"
(exec fleet-sim run --count "$N" --prefix r --dir "$S" --server "$LB" \
	--ca "$FLEET_CA_FILE" --token-file "$T/sim.token" --image "$T/fw/fw-1.0.0" \
	--install-delay 1s --log-level debug >"$T/sim.out" 2>"$T/sim.log") &
track $!
online() { fb -o json devices list --group g | jq -e "[.[] | select(.online and .firmware == \"1.0.0\")] | length == $N"; }
if wait_until 240 online; then pass "$N devices enrolled through the balancer, online (B's view)"
else fail "$N devices enrolled through the balancer, online (B's view)"; fi

# ingest NAME URL: that replica's ingest counter NAME
ingest() { fleetctl --server "$2" --ca "$FLEET_CA_FILE" --token "$ADMIN_TOKEN" -o json status | jq -r ".ingest.$1"; }
holder() { store_pg "SELECT holder FROM leases WHERE name = 'rollout-engine'"; }
store_pg() { psql -X -A -t -q "$URL" -c "$1"; }

check "create rollout r1 through A: 1.1.0 in three waves" fa -q rollout create \
	--bundle fleet-sample@1.1.0 --group g --waves 10%,50%,100% --soak 2s \
	--health-window 2s --id r1
check_grep ":$SA\$" "A holds the engine's lease" holder
ready() { curl -sS --max-time 10 --cacert "$FLEET_CA_FILE" -o "$T/ready.json" -w '%{http_code}' "$1/readyz"; }
check_grep '^200$' "GET /readyz on A without a token: 200" ready "$A_URL"
check "... ready, store and broker up, A holds the engine" jq -e \
	'.ready and .store and .broker and .engine and .replica == "a"' "$T/ready.json"
check_grep '^200$' "GET /readyz on B: 200 (ready on standby)" ready "$B_URL"
check "... B does not hold the engine" jq -e '.ready and (.engine | not) and .replica == "b"' "$T/ready.json"
check_grep '^engine: +no$' "fleetctl status (table) on B: engine no" fb status
check_grep '^replica: +b$' "... and its replica name" fb status
# the kill moment: wave 1 done and wave 2 at work
midway() { fa -o json rollout status r1 | jq -e '.state == "running" and .wave >= 2 and .counts.commanded > 0'; }
check "the rollout reaches wave 2, devices at work" wait_until 200 midway
fa -o json rollout status r1 >"$T/before-kill.json"
RA=$(ingest received "$A_URL") RB=$(ingest received "$B_URL")
check_true "positive control: A took messages in ($RA)" test "$RA" -gt 0
check_true "positive control: B took messages in ($RB)" test "$RB" -gt 0
check "positive control: the kill comes mid-rollout (running, not all healthy)" \
	jq -e ".state == \"running\" and .counts.healthy < $N" "$T/before-kill.json"
kill -KILL "$PID_a"
KILLED=$(date +%s)
check "replica a is killed -9" wait_until 10 proc_gone "$PID_a"
holder_is() { [ "$(holder)" = "$(hostname):$1" ]; }
check "B takes the engine's lease over within 20 s" wait_until 20 holder_is "$SB"
log "takeover after $(($(date +%s) - KILLED)) s"
check "GET /readyz on B: it holds the engine now" sh -c \
	"curl -sS --cacert '$FLEET_CA_FILE' '$B_URL/readyz' | jq -e '.engine'"
check_grep '^fleetd_engine_holder 1$' "B's metrics: fleetd_engine_holder 1" \
	curl -sS --cacert "$FLEET_CA_FILE" -H "Authorization: Bearer $ADMIN_TOKEN" "$B_URL/metrics"
check_exit 0 "B finishes the rollout (watch through B exits 0)" \
	timeout 400 fleetctl --server "$B_URL" --ca "$FLEET_CA_FILE" \
	--token "$ADMIN_TOKEN" rollout watch r1 --interval 1s --timeout 380s
fb -o json rollout status r1 >"$T/r1.json"
log "r1: $(jq -c '{state, counts: (.counts | with_entries(select(.value > 0))), failures: [.failures[] | {device, reason}]}' "$T/r1.json")"
check "r1: completed, all $N healthy" \
	jq -e ".state == \"completed\" and .counts.healthy == $N" "$T/r1.json"

# --- every device updated exactly once ----------------------------------------
fb -o json jobs list --rollout r1 --limit 1000 >"$T/jobs.json"
log "jobs not succeeded: $(jq -c '[.[] | select(.state != "succeeded") | {device, state}]' "$T/jobs.json")"
check "one job per device in r1, $N in all, every one succeeded" jq -e \
	"length == $N and ([.[].device] | unique | length) == $N and all(.state == \"succeeded\")" "$T/jobs.json"
once() {
	local d cmd ids runs bad=0
	while read -r d cmd; do
		ids=$(awk '$2 == "update" {print $1}' "$S/$d/state/commands.received" | sort -u | paste -sd' ')
		runs=$(grep -c "^.*$d: command $cmd: update\$" "$T/sim.log")
		if [ "$ids" != "$cmd" ] || [ "$runs" != 1 ]; then
			echo "$d: received [$ids], want $cmd; ran it $runs time(s)"
			bad=1
		fi
	done < <(jq -r '.[] | .device + " " + .command' "$T/jobs.json")
	return $bad
}
check "each device received one update command id (its job's) and ran it once" once
fw() { fb -o json devices list --group g | jq -e "[.[] | select(.firmware == \"1.1.0\")] | length == $N"; }
check "fleetd: every device reports 1.1.0" wait_until 30 fw

# --- no event lost, none handled twice ----------------------------------------
# the devices' own record: "ID: event SEQ: TYPE STATE" once per event
grep -oE '[a-z0-9-]+: event [0-9]+: update [a-z-]+$' "$T/sim.log" |
	awk '{sub(":", "", $1); sub(":", "", $3); print $1, $3, $5}' | sort -u >"$T/published"
# fleetd's: the same for the rollout's job events
stored() {
	store_pg "SELECT j.device || ' ' || e.seq || ' ' || e.state FROM job_events e JOIN jobs j ON j.id = e.job WHERE j.rollout = 'r1'" |
		sort -u >"$T/stored"
	comm -23 "$T/published" "$T/stored" >"$T/lost"
}
# the last repairs (a final's ack naming what is missing) may still run
none_lost() { stored && ! grep -q . "$T/lost"; }
wait_until 20 none_lost
check_true "the devices published events ($(wc -l <"$T/published"))" test -s "$T/published"
check_exit 1 "fleetd stored nothing the devices did not publish" \
	grep -q . <(comm -13 "$T/published" "$T/stored")
check_exit 1 "no final event is lost (every 'succeeded' published is stored)" \
	grep -q ' succeeded$' "$T/lost"
check "replica a restarts on its state dir" replica_serve a "$SA" "$APORT"
STALE=$(fb -o json status | jq .jobs.stale_events)
log "stale events recorded late by B: $STALE (overtaken through A, or published again)"
check_exit 1 "no progress event is lost either: every event published is in the history ($(wc -l <"$T/lost") missing)" \
	grep -q . "$T/lost"
DUPS=$(($(ingest duplicates "$B_URL") + $(ingest duplicates "$A_URL")))
AGAIN=$(grep -c ': event [0-9]* again' "$T/sim.log")
check_true "none handled twice: duplicates at fleetd ($DUPS) <= re-publications ($AGAIN)" \
	test "$DUPS" -le "$AGAIN"

# --- the same answers from A (restarted) and B ----------------------------------
same() {
	fa "$@" >"$T/a.ans" 2>&1
	fb "$@" >"$T/b.ans" 2>&1
	diff "$T/a.ans" "$T/b.ans"
}
check "rollout status r1 (table): A and B answer the same" same rollout status r1
check "rollout status r1 -o json: the same" same -o json rollout status r1
check "devices list (table): the same" same devices list --group g
check "jobs list --rollout r1 -o json: the same" same -o json jobs list --rollout r1 --limit 1000
check_grep ":$SB\$" "B keeps the engine (A waits for the lease)" holder

# --- a dashboard cookie from A works on B ------------------------------------
jq -n --arg t "$ADMIN_TOKEN" '{token: $t}' >"$T/login.json"
curl -sS --cacert "$FLEET_CA_FILE" -D "$T/login.h" -o /dev/null -H 'Content-Type: application/json' \
	--data-binary @"$T/login.json" "$A_URL/dash/login"
COOKIE=$(tr -d '\r' <"$T/login.h" | sed -n 's/^Set-Cookie: __Host-fleet_session=\([^;]*\);.*/\1/p')
check_true "a dashboard login on A sets a session cookie" test -n "$COOKIE"
session() { curl -sS --cacert "$FLEET_CA_FILE" -H "Cookie: __Host-fleet_session=$COOKIE" "$@"; }
check_grep '"logged_in": *true' "... which B accepts (its sessions are in the store)" session "$B_URL/dash/session"
check_grep '"id": *"r-0001"' "... and B answers the dashboard's reads with it" \
	session "$B_URL/api/v1/devices/r-0001"
session -o /dev/null -X POST "$B_URL/dash/logout"
check_grep '"logged_in": *false' "a logout on B ends the session on A too" session "$A_URL/dash/session"
# --- the holder paused past its lease, then a clean stop ------------------------
kill -STOP "$PID_b"
check "B paused (SIGSTOP): A takes the engine's lease once B's ran out" \
	wait_until 40 holder_is "$SA"
kill -CONT "$PID_b"
b_standby() { curl -sS --cacert "$FLEET_CA_FILE" "$B_URL/readyz" | jq -e '.engine == false'; }
check "B continued: it sees it lost the engine (/readyz)" wait_until 10 b_standby
check "... and A keeps it" holder_is "$SA"
kill -TERM "$PID_a"
check "A stops (SIGTERM) and hands the lease back: B takes the engine at once" \
	wait_until 5 holder_is "$SB"
finish
