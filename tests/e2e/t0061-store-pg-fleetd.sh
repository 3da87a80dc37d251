#!/usr/bin/env bash
# fleetd on PostgreSQL (issue 14, docs/scale.md): a real PostgreSQL that
# lib-pg.sh starts here on 127.0.0.1 is fleetd's store, selected by
#  - fleetd init --store URL, which writes [store] url into fleetd.conf
#    and makes no fleetd.db, so a plain serve finds it;
#  - what fleetctl writes is in PostgreSQL and reads back, in the table
#    and as JSON, after a restart of fleetd and of PostgreSQL (the lost
#    connection is opened again);
#  - a database newer than the program is refused (exit 5), an
#    unreachable one is exit 8 naming host, port and database but never
#    the password.
# Skipped, saying so, only where PostgreSQL is not installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pg.sh"

pg_required
unset FLEET_STORE_URL
pg_start || { cat "$T/postgres.log"; exit 1; }
URL="postgresql://fleet@127.0.0.1:$PG_PORT/postgres"
BAD="postgresql://fleet:pw-s3cret@127.0.0.1:1/nodb"

check_exit 0 "fleetd init --store puts the state dir's database in PostgreSQL" \
	fleetd init --state "$T/state" --store "$URL"
fleetd init --state "$T/state2" --store "$URL" >/dev/null 2>&1 # the same database
ADMIN_TOKEN=$(fleetd init --state "$T/state" --store "$URL" 2>&1 | sed -n 's/^admin token: //p')
check_true "an initialised state dir is refused again, with no new token" test -z "$ADMIN_TOKEN"
rm -rf "$T/state"
fleetd init --state "$T/state" --store "$URL" >"$T/init.out" 2>&1
ADMIN_TOKEN=$(sed -n 's/^admin token: //p' "$T/init.out")
check_grep "^url = $URL\$" "init kept the URL as [store] url" cat "$T/state/fleetd.conf"
check_true "... and made no fleetd.db" test ! -e "$T/state/fleetd.db"
check_grep '^17$' "the schema is at the newest version" \
	pg_psql -c "SELECT version FROM schema_version"

serve_fleetd
login_admin
check "an operator token is created" fleetctl token create pg-viewer --role viewer
check_grep 'pg-viewer +operator +viewer' "token list's table shows it" fleetctl token list
check_grep '^1$' "... and it is a row in PostgreSQL" \
	pg_psql -c "SELECT count(*) FROM tokens WHERE name = 'pg-viewer'"

kill -TERM "$FLEETD_PID" && wait "$FLEETD_PID"
check "fleetd restarts on the same database" fleetd_restart
check_grep 'pg-viewer +operator +viewer' "the token is still listed after the restart" \
	fleetctl token list
check_grep '"name": "pg-viewer"' "... and in JSON" fleetctl -o json token list

check "PostgreSQL stops" pg_stop
check_exit 1 "a request while the database is down fails (503)" \
	fleetctl token list
check_grep 'unavailable|database' "... saying it is the database" fleetctl token list
check "PostgreSQL starts again" pg_restart
check "fleetd opens the connection again on a later call" \
	wait_until 20 fleetctl token list
check_grep 'pg-viewer +operator +viewer' "... and answers from it" fleetctl token list

kill -TERM "$FLEETD_PID" && wait "$FLEETD_PID"
pg_psql -c "UPDATE schema_version SET version = 999"
check_exit 5 "a database newer than fleetd is refused" \
	fleetd serve --state "$T/state" --listen 127.0.0.1:0
check_grep 'schema 999 is newer than this fleetd' "... saying so" \
	fleetd serve --state "$T/state" --listen 127.0.0.1:0
check_grep '^999$' "... and left as it was" \
	pg_psql -c "SELECT version FROM schema_version"
pg_psql -c "UPDATE schema_version SET version = 17"

check_exit 8 "an unreachable database: exit 8" \
	fleetd serve --state "$T/state" --listen 127.0.0.1:0 --store "$BAD"
fleetd serve --state "$T/state" --listen 127.0.0.1:0 --store "$BAD" 2>"$T/bad.err"
check_grep '127\.0\.0\.1:1/nodb' "... naming host, port and database" cat "$T/bad.err"
check_exit 1 "... and never the password" grep -q 'pw-s3cret' "$T/bad.err"
check_exit 8 "init on an unreachable database: exit 8" \
	fleetd init --state "$T/state3" --store "$BAD"
finish
