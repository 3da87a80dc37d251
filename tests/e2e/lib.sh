# Shared helpers for the end-to-end tests (sourced by tests/e2e/tNNNN-*.sh).
#
# Everything runs on 127.0.0.1 in a private temp dir that is removed on
# exit; every process started here is killed by the trap; every wait is
# bounded.  The build's programs are on PATH (tests/run puts them there).
#
#   check "what"  CMD...     CMD must succeed
#   check_exit N "what" CMD  CMD must exit with N (refusals too: there is
#                            deliberately no "any failure" check)
#   check_grep RE "what" CMD CMD's stdout+stderr must match RE
#   start_fleetd [serve args] a fresh state dir, served; sets FLEET_URL,
#                            FLEET_CA_FILE, ADMIN_TOKEN, FLEETD_PID and,
#                            with --with-broker, MQTT_URL MQTT_HOST MQTT_PORT
#                            (FLEETD_INIT_ARGS: extra init arguments;
#                            FLEETD_CONF: text of STATE/fleetd.conf;
#                            FLEETD=fleetd-test: the build with the
#                            FLEETD_FAILPOINTS test hooks).  With
#                            FLEET_STORE=pg (make check STORE=pg) the
#                            store is a PostgreSQL of its own, started
#                            here (lib-pg.sh): FLEET_STORE_URL, passed
#                            as --store to init, serve and restarts
#   fleetd_kill9             kill -9 fleetd; true once it and its broker
#                            are gone
#   fleetd_restart [args]    serve $FLEETD_STATE again on the same ports
#                            (FLEETD_PID; the old log is appended to
#                            $T/fleetd-old.log); true once it is ready
#   serve_fleetd [serve args] the same on the state dir $T/state holds
#                            already (a copy), with ADMIN_TOKEN set
#   store_sql SQL            run SQL on fleetd's store (STATE/fleetd.db or,
#                            FLEET_STORE=pg, its PostgreSQL): rows as
#                            "a|b" lines either way
#   finish                   print the summary; exit 1 on any failure
#   free_port                print a TCP port free on 127.0.0.1 now
#   proc_gone PID            true once PID is gone or a zombie
#   at_exit CMD...           run CMD in the cleanup trap, after the
#                            tracked processes are gone (removing what a
#                            test made outside $T)

set -u
: "${FLEET_BUILD:?run through 'make check'}"
: "${FLEET_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export PATH="$FLEET_SRC/tests/e2e/bin:$FLEET_BUILD:$FLEET_BUILD/tests/tools:$PATH"

T=$(mktemp -d "${TMPDIR:-/tmp}/fleet-e2e.XXXXXX")
export FLEETCTL_CONFIG=$T/fleetctl.conf
export XDG_CACHE_HOME=$T/cache # fleetctl's completion cache
unset FLEET_SERVER FLEET_TOKEN FLEET_CA FLEET_CONTEXT
_pids=()
_at_exit=()
_fails=0
_checks=0
# Timeouts are longer under the sanitizers, which slow everything down.
if [ "${FLEET_SAN:-0}" = 1 ]; then WAIT_SCALE=4; else WAIT_SCALE=1; fi

# Print sanitizer reports found in daemon logs under $T; false if any.
san_clean() {
	local hits
	hits=$(grep -rl --include='*.log' 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$T" 2>/dev/null)
	[ -z "$hits" ] && return 0
	echo "# sanitizer report in: $hits"
	grep -h -A30 'ERROR: \|runtime error:' $hits | head -80 | sed 's/^/#   /'
	return 1
}

cleanup() {
	local p rc=$? dirty=0
	for p in "${_pids[@]+"${_pids[@]}"}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${_pids[@]+"${_pids[@]}"}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	for p in "${_at_exit[@]+"${_at_exit[@]}"}"; do
		eval "$p"
	done
	# a sanitizer report in a daemon's log (written at its exit) fails the test
	[ "${FLEET_SAN:-0}" = 1 ] && ! san_clean && dirty=1
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
	[ "$dirty" = 1 ] && exit 1
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Remember a background process for the cleanup trap.
track() { _pids+=("$1"); }

at_exit() { _at_exit+=("$(printf '%q ' "$@")"); }

# proc_gone PID: true once process $1 is gone or a zombie (a child not yet reaped).
proc_gone() {
	local s
	s=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
	[[ $s == Z* ]]
}

# The kernel may hand the same free port out twice in a row (the first
# asker has not bound it yet); in a CI run t0063's replica B never served
# and another fleetd answered on its port.  Ports given out in this test
# ($T/ports) are not given again.
free_port() {
	local p
	for _ in 1 2 3 4 5 6 7 8; do
		p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		if ! grep -qx "$p" "$T/ports" 2>/dev/null; then
			echo "$p" >>"$T/ports"
			echo "$p"
			return 0
		fi
	done
	return 1
}

log() { printf '# %s\n' "$*"; }

_result() {
	_checks=$((_checks + 1))
	if [ "$1" = ok ]; then
		printf 'ok %d - %s\n' "$_checks" "$2"
	else
		_fails=$((_fails + 1))
		printf 'not ok %d - %s\n' "$_checks" "$2"
		[ -s "$T/last.out" ] && sed 's/^/#   | /' "$T/last.out" | tail -n 20
	fi
}

check() {
	local what=$1
	shift
	if "$@" >"$T/last.out" 2>&1; then _result ok "$what"; else _result fail "$what (exit $?)"; fi
}

check_exit() {
	local want=$1 what=$2 rc
	shift 2
	"$@" >"$T/last.out" 2>&1
	rc=$?
	if [ "$rc" -eq "$want" ]; then _result ok "$what"; else _result fail "$what (exit $rc, want $want)"; fi
}

check_grep() {
	local re=$1 what=$2
	shift 2
	"$@" >"$T/last.out" 2>&1
	if grep -Eq -- "$re" "$T/last.out"; then _result ok "$what"; else _result fail "$what (no match for /$re/)"; fi
}

# Assert a shell condition: check_true "what" test -f x
check_true() { check "$@"; }

fail() { _result fail "$*"; }
pass() { _result ok "$*"; }

# wait_until SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_until() {
	local limit=$(($1 * WAIT_SCALE * 10)) i
	shift
	for ((i = 0; i < limit; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# FLEET_STORE=pg: a PostgreSQL for fleetd's store (FLEET_STORE_URL),
# apart from any the test starts itself with lib-pg.sh's globals.
store_pg_start() {
	local PG_DIR='' PG_PORT='' PG_PID='' PG_CONNINFO=''
	. "$FLEET_SRC/tests/e2e/lib-pg.sh"
	pg_start || {
		cat "$T/postgres.log" >&2
		echo "PostgreSQL for the store did not start" >&2
		exit 1
	}
	FLEET_STORE_URL="postgresql://fleet@127.0.0.1:$PG_PORT/postgres"
	export FLEET_STORE_URL
}

# start_fleetd [serve args]: init a state dir and serve it.
start_fleetd() {
	local state=$T/state
	[ "${FLEET_STORE:-}" = pg ] && store_pg_start
	# shellcheck disable=SC2086
	fleetd init --state "$state" ${FLEET_STORE_URL:+--store "$FLEET_STORE_URL"} \
		${FLEETD_INIT_ARGS:-} >"$T/init.out" 2>&1 || {
		cat "$T/init.out"
		echo "fleetd init failed" >&2
		exit 1
	}
	[ -n "${FLEETD_CONF:-}" ] && printf '%s\n' "$FLEETD_CONF" >"$state/fleetd.conf"
	[ -n "${FLEETD_CONF:-}" ] && [ -n "${FLEET_STORE_URL:-}" ] &&
		printf '[store]\nurl = %s\n' "$FLEET_STORE_URL" >>"$state/fleetd.conf"
	ADMIN_TOKEN=$(sed -n 's/^admin token: //p' "$T/init.out" | tail -n 1)
	serve_fleetd "$@"
}

# serve_fleetd [serve args]: serve the state dir $T/state that is there
# already (start_fleetd's, or a copy), on fresh ports; ADMIN_TOKEN must
# be set by the caller.
serve_fleetd() {
	local state=$T/state out=$T/fleetd.out
	FLEET_CA_FILE=$state/ca.pem
	FLEETD_STATE=$state
	# empty it here: the background redirect truncates it only once the
	# child runs, and a second start_fleetd would read the old ready line
	: >"$out"
	"${FLEETD:-fleetd}" serve --state "$state" --listen 127.0.0.1:0 \
		--mqtt-listen 127.0.0.1:0 --log-level debug \
		${FLEET_STORE_URL:+--store "$FLEET_STORE_URL"} "$@" >"$out" 2>"$T/fleetd.log" &
	FLEETD_PID=$!
	track "$FLEETD_PID"
	if ! wait_until 30 grep -q '^ready ' "$out"; then
		cat "$T/fleetd.log" >&2
		echo "fleetd did not become ready" >&2
		exit 1
	fi
	FLEET_URL=$(sed -n 's/^ready https=\([^ ]*\).*/\1/p' "$out")
	MQTT_URL=$(sed -n 's/^ready .*mqtt=\([^ ]*\).*/\1/p' "$out")
	MQTT_HOST=$(echo "$MQTT_URL" | sed -n 's|^mqtts://\(.*\):[0-9]*$|\1|p')
	MQTT_PORT=$(echo "$MQTT_URL" | sed -n 's|^mqtts://.*:\([0-9]*\)$|\1|p')
	export ADMIN_TOKEN FLEET_CA_FILE FLEET_URL FLEETD_STATE MQTT_URL MQTT_HOST MQTT_PORT
}

fleetd_kill9() {
	local broker
	broker=$(sed -n 's/.*mosquitto (pid \([0-9]*\)) listening.*/\1/p' "$T/fleetd.log" | tail -n 1)
	[ -n "$broker" ] && track "$broker"
	kill -KILL "$FLEETD_PID" || return 1
	wait "$FLEETD_PID" 2>/dev/null
	wait_until 10 sh -c "! kill -0 $FLEETD_PID" || return 1
	[ -z "$broker" ] || wait_until 20 sh -c "! kill -0 $broker"
}

fleetd_restart() {
	cat "$T/fleetd.log" >>"$T/fleetd-old.log"
	: >"$T/fleetd.out"
	"${FLEETD:-fleetd}" serve --state "$FLEETD_STATE" \
		--listen "127.0.0.1:${FLEET_URL##*:}" \
		${MQTT_PORT:+--mqtt-listen "127.0.0.1:$MQTT_PORT"} \
		${FLEET_STORE_URL:+--store "$FLEET_STORE_URL"} \
		--log-level debug "$@" >"$T/fleetd.out" 2>"$T/fleetd.log" &
	FLEETD_PID=$!
	track "$FLEETD_PID"
	wait_until 30 grep -q "^ready https=$FLEET_URL" "$T/fleetd.out"
}

store_sql() {
	if [ -n "${FLEET_STORE_URL:-}" ]; then
		psql -X -A -t -q -v ON_ERROR_STOP=1 "$FLEET_STORE_URL" -c "$1"
	else
		sqlite3 "$FLEETD_STATE/fleetd.db" "$1"
	fi
}

# Log fleetctl in as admin (writes $FLEETCTL_CONFIG).
login_admin() {
	fleetctl -q login --server "$FLEET_URL" --ca "$FLEET_CA_FILE" \
		--token "$ADMIN_TOKEN" >/dev/null
}

# A device identity made with the openssl tool: KEY, CSR in $T/dev/ID.*
make_csr() {
	local id=$1 cn=${2:-$1}
	mkdir -p "$T/dev"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T/dev/$id.key" -out "$T/dev/$id.csr" -subj "/CN=$cn" 2>/dev/null
}

# enroll_curl ID TOKEN [CN [STEM]]: enrol over HTTPS like an agent
# would; prints the HTTP status, leaves key, CSR, response and
# certificate in $T/dev/STEM.{key,csr,resp,pem} (STEM defaults to ID).
enroll_curl() {
	local id=$1 token=$2 stem=${4:-$1}
	make_csr "$stem" "${3:-$id}"
	jq -n --arg t "$token" --arg i "$id" --rawfile c "$T/dev/$stem.csr" \
		'{token: $t, id: $i, csr: $c}' >"$T/dev/$stem.req"
	api POST /api/v1/enroll --data-binary @"$T/dev/$stem.req" \
		-o "$T/dev/$stem.resp" -w '%{http_code}\n'
	jq -r '.cert // empty' "$T/dev/$stem.resp" >"$T/dev/$stem.pem"
}

# mosquitto_pub/sub as device ID (its key and cert in $T/dev).
# (in a background subshell, MQ_PUB_EXEC=1 makes it exec, so that $! is
# mosquitto_pub itself and the cleanup trap stops it)
mq_pub() { local id=$1; shift; ${MQ_PUB_EXEC:+exec} mosquitto_pub -h "$MQTT_HOST" -p "$MQTT_PORT" -V 5 \
	--cafile "$FLEET_CA_FILE" --cert "$T/dev/$id.pem" --key "$T/dev/$id.key" "$@"; }
# mq_sub runs in the background only (mq_sub ID ... & track $!): it execs,
# so $! is mosquitto_sub itself and the cleanup trap really stops it.
# Line-buffered, so a file it writes shows each message (and, with -d,
# the SUBACK) as it arrives, for wait_until.
mq_sub() { local id=$1; shift; exec stdbuf -oL mosquitto_sub -h "$MQTT_HOST" -p "$MQTT_PORT" -V 5 \
	--cafile "$FLEET_CA_FILE" --cert "$T/dev/$id.pem" --key "$T/dev/$id.key" "$@"; }

# mq_refused ARGS...: mosquitto_pub ARGS (with -d); 0 when the broker
# never accepted the connection (no CONNACK, and mosquitto_pub failed),
# 1 when it did.  mosquitto_pub's own exit code for a TLS refusal is 1 or
# 7 by timing ("Protocol error" or "The connection was lost"), so tests
# assert this instead: check_exit 0 "what" mq_refused ...
mq_refused() {
	local out rc
	out=$(mosquitto_pub -d "$@" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	grep -q 'received CONNACK' <<<"$out" && return 1
	[ "$rc" -ne 0 ]
}

# fleetctl with the admin context given by flags.
as_admin() { fleetctl --server "$FLEET_URL" --ca "$FLEET_CA_FILE" --token "$ADMIN_TOKEN" "$@"; }

# curl against fleetd, pinned to its CA: api METHOD PATH [curl args]
api() {
	local method=$1 path=$2
	shift 2
	curl -sS --max-time 20 --cacert "$FLEET_CA_FILE" -X "$method" \
		"$FLEET_URL$path" "$@"
}

finish() {
	echo "# $_checks checks, $_fails failed"
	[ "$_checks" -gt 0 ] && [ "$_fails" -eq 0 ]
	exit $?
}
