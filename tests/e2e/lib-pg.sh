# A real PostgreSQL for the end-to-end tests, sourced after lib.sh
# (issue 13's forwarding tests; issue 14's store reuses it).
#
#   pg_start            initdb (first call) and postgres on a free
#                       127.0.0.1 port; true once it accepts connections.
#                       Sets PG_DIR, PG_PORT, PG_CONNINFO (superuser
#                       "fleet", database "postgres", trust auth on
#                       127.0.0.1 only), PG_PID
#   pg_stop             fast shutdown; true once postgres is gone
#   pg_restart          pg_start again on the same data dir and port
#   pg_psql ARGS...     psql -X -A -t -q against it (ON_ERROR_STOP)
#   pg_rows             fleetd's telemetry table as sorted
#                       "DEVICE<TAB>METRIC<TAB>TS_MS<TAB>VALUE" lines (%.17g)
#
# postgres refuses to run as root: when the tests run as root the
# server runs as "nobody" (setpriv, no fork, so PG_PID is postgres
# itself) in a directory it owns outside $T (root's 0700 $T is closed to
# it), removed by the cleanup trap.  The unix socket stays in that
# directory; nothing listens anywhere but 127.0.0.1:PG_PORT.

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

# The prefix that runs a program as the server's user.
_pg_user=()
[ "$(id -u)" = 0 ] && _pg_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)

# Run a PostgreSQL program as the server's user, from its directory.
_pg_as() { (cd "$PG_DIR" && exec "${_pg_user[@]}" "$@"); }

_pg_init() {
	PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fleet-pg.XXXXXX")
	at_exit rm -rf "$PG_DIR"
	[ "$(id -u)" = 0 ] && chown nobody:nogroup "$PG_DIR"
	_pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U fleet --auth=trust \
		-E UTF8 --locale=C >"$T/pg-initdb.log" 2>&1 || {
		cat "$T/pg-initdb.log" >&2
		echo "initdb failed" >&2
		return 1
	}
	PG_PORT=$(free_port)
	PG_CONNINFO="host=127.0.0.1 port=$PG_PORT user=fleet dbname=postgres"
}

pg_start() {
	[ -n "${PG_DIR:-}" ] || _pg_init || return 1
	(cd "$PG_DIR" && exec "${_pg_user[@]}" "$PG_BIN/postgres" \
		-D "$PG_DIR/data" -p "$PG_PORT" -c listen_addresses=127.0.0.1 \
		-c unix_socket_directories="$PG_DIR" -c fsync=off \
		-c full_page_writes=off >>"$T/postgres.log" 2>&1) &
	PG_PID=$!
	track "$PG_PID"
	wait_until 30 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
}

pg_restart() { pg_start; }

# SIGINT is postgres' fast shutdown: clients cut, a clean checkpoint.
pg_stop() {
	kill -INT "$PG_PID" || return 1
	wait_until 30 proc_gone "$PG_PID" || return 1
	wait "$PG_PID" 2>/dev/null
	return 0
}

pg_psql() {
	psql -X -A -t -q -v ON_ERROR_STOP=1 "$PG_CONNINFO" "$@"
}

pg_rows() {
	pg_psql -F $'\t' -c "SELECT device, metric, (extract(epoch FROM ts) * 1000)::bigint, value FROM telemetry" |
		awk -F'\t' -v OFS='\t' '{ $4 = sprintf("%.17g", $4); print }' | LC_ALL=C sort
}

# pg_required: end the test as skipped, saying so, where PostgreSQL is
# not installed (scripts/install-deps installs it).
pg_required() {
	if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/postgres" ]; then
		echo "# SKIP: PostgreSQL is not installed (scripts/install-deps)"
		exit 0
	fi
}
