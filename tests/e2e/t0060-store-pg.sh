#!/usr/bin/env bash
# The store on PostgreSQL (issue 14, docs/scale.md): the store's unit
# tests (every test program that opens tests/unit/store_fixture.h's
# store) run again with the store on a real PostgreSQL that lib-pg.sh
# starts here on 127.0.0.1; the fixture empties the database before each
# test.  Skipped, saying so, only where PostgreSQL is not installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pg.sh"

pg_required
pg_start || { cat "$T/postgres.log"; exit 1; }
export FLEET_TEST_PG="postgresql://fleet@127.0.0.1:$PG_PORT/postgres"

for t in $(grep -l store_fixture.h "$FLEET_SRC"/tests/unit/test_*.c); do
	t=$(basename "$t" .c)
	check_exit 0 "$t passes with the store on PostgreSQL" \
		"$FLEET_BUILD/tests/unit/$t"
done
finish
