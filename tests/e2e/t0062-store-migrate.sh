#!/usr/bin/env bash
# fleetd migrate (issue 14, docs/scale.md): an installation on SQLite
# with tokens, enrolled devices with labels and an audit log is copied
# into a new PostgreSQL database (a real one that lib-pg.sh starts here);
# fleetd served on it gives the same fleetctl answers, in the table and
# as JSON, and carries on writing (the audit's ids go on after the
# copied ones).  A database that already holds data is refused.  Skipped,
# saying so, only where PostgreSQL is not installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pg.sh"

if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/postgres" ]; then
	echo "# SKIP: PostgreSQL is not installed (scripts/install-deps)"
	exit 0
fi
unset FLEET_STORE FLEET_STORE_URL # the installation is on SQLite
pg_start || { cat "$T/postgres.log"; exit 1; }
URL="postgresql://fleet@127.0.0.1:$PG_PORT/postgres"

start_fleetd
login_admin
fleetctl -q token create ro --role viewer >/dev/null
TOK=$(fleetctl -o json token create fleet --enroll --group g1 --uses 5 --ttl 1h | jq -r .token)
for d in dev-a dev-b; do
	check_grep '^201$' "$d enrols" enroll_curl "$d" "$TOK"
done
check "dev-a gets labels" fleetctl -q devices label dev-a site=berlin rack=7
fleetctl devices list >"$T/devices.before"
fleetctl -o json devices show dev-a >"$T/dev-a.before"
fleetctl -o json token list | jq 'map(del(.last_used))' >"$T/tokens.before"
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
serve_fleetd --store "$URL"
login_admin
check_true "the device table is the same on PostgreSQL" \
	cmp "$T/devices.before" <(fleetctl devices list)
check_grep 'dev-a +g1' "... and lists dev-a in group g1" fleetctl devices list
check_true "a device's JSON is the same, labels too" \
	cmp "$T/dev-a.before" <(fleetctl -o json devices show dev-a)
check_true "the tokens are the same" \
	cmp "$T/tokens.before" <(fleetctl -o json token list | jq 'map(del(.last_used))')
check "a new token after the move" fleetctl token create after --role viewer
check_grep '"name": "after"' "... is listed" fleetctl -o json token list
check_grep "^${AUDIT% *}\$" "the audit entries are copied (${AUDIT% *})" \
	pg_psql -c "SELECT count(*) FROM audit WHERE id <= ${AUDIT#* }"
check_grep '^1$' "... and new ones go on after them" \
	pg_psql -c "SELECT count(*) FROM audit WHERE id > ${AUDIT#* } AND path = '/api/v1/tokens'"
finish
