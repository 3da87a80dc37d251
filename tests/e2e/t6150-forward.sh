#!/usr/bin/env bash
# Telemetry forwarding (issue 13, docs/telemetry.md "Forwarding"): the
# forwarders of server-stub/fwd.c, driven by tests/tools/fwd-drive,
# against a real influxd (Debian's influxdb 1.6) and a real PostgreSQL,
# both started here on 127.0.0.1:
#  - the points submitted are exactly the points in each database
#    (devices, metrics, timestamps, values; none twice), names that need
#    escaping stored verbatim, the ones a backend cannot hold refused
#    and counted;
#  - both databases stopped: submitting never blocks, the batch in
#    flight is kept and retried, past the queue bound exactly the
#    oldest waiting points are dropped and counted; both started again:
#    everything within the bound arrives, in full, once;
#  - stop while the databases are down ends within its bound and counts
#    what it leaves;
#  - with password authentication, [postgres] password_file is how the
#    password gets in (without it nothing is stored), and it is never
#    written to a log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pg.sh"
. "$(dirname "$0")/lib-influx.sh"
unset PGPASSWORD
export PGPASSFILE=$T/no-passfile

pg_start || { cat "$T/postgres.log"; exit 1; }
influx_start || { cat "$T/influxd.log"; exit 1; }
check_grep '"statement_id":0' "influx: the test database is created" \
	influx_admin "CREATE DATABASE fleet"

BATCH=50 QUEUE=200
cat >"$T/fwd.conf" <<EOF
[influx]
url = $INFLUX_URL/
database = fleet
batch = $BATCH
linger_ms = 100
queue_points = $QUEUE
timeout_ms = 2000
retry_min_ms = 50
retry_max_ms = 400
[postgres]
conninfo = $PG_CONNINFO
table = telemetry
batch = $BATCH
linger_ms = 100
queue_points = $QUEUE
timeout_ms = 2000
retry_min_ms = 50
retry_max_ms = 400
EOF

mkfifo "$T/cmd"
fwd-drive "$T/fwd.conf" 1000 <"$T/cmd" >"$T/drive.out" 2>"$T/drive.log" &
DRIVE=$!
track "$DRIVE"
exec 3>"$T/cmd"

# What each database must hold at the end: DEVICE METRIC TS VALUE lines.
: >"$T/want-both" && : >"$T/want-pg-only"
# gen DEVICE METRIC N TS0: N points, TS0+i, value i+0.5 (fwd-drive)
gen() {
	printf 'gen\t%s\t%s\t%s\t%s\n' "$@" >&3
	awk -v d="$1" -v m="$2" -v n="$3" -v t="$4" \
		'BEGIN { for (i = 0; i < n; i++) printf "%s\t%s\t%.0f\t%.17g\n", d, m, t + i, i + 0.5 }' \
		>>"$T/want-both"
}
# point DEVICE METRIC TS VALUE [WANT]: the fields in fwd-drive's escapes
# (\\ a backslash, \n a newline); WANT is both, pg-only or none
point() {
	printf 'point\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >&3
	[ "${5:-both}" = none ] ||
		printf '%b\t%b\t%s\t%s\n' "$1" "$2" "$3" "$4" |
		awk -F'\t' -v OFS='\t' '{ $4 = sprintf("%.17g", $4); print }' \
			>>"$T/want-${5:-both}"
}

# stats: fwd-drive's counters into $T/st.json; stat_is FILTER: jq -e on them
stats() {
	rm -f "$T/st.json"
	printf 'stats\t%s\n' "$T/st.json" >&3
	wait_until 10 test -s "$T/st.json"
}
stat_is() { stats && jq -e "$1" "$T/st.json" >/dev/null; }

# The rows each database holds (influx_rows, pg_rows), in the form of the
# want files, sorted.
want_influx() { LC_ALL=C sort "$T/want-both"; }
want_pg() { cat "$T/want-both" "$T/want-pg-only" | LC_ALL=C sort; }
same_rows() {
	diff <("$1"_rows) <(want_"$1") | head -n 20 && [ -s "$T/want-both" ] &&
		cmp -s <("$1"_rows) <(want_"$1")
}

TS=1764420000000
# --- 1. points in, the same points out --------------------------------------
# 1,200 points, 100 a call (under the bound), each call sent before the next
for dev in dev-a dev-b; do
	for m in cpu.percent mem.used_bytes; do
		for off in 0 100 200; do
			gen "$dev" "$m" 100 $((TS + off))
			echo submit >&3
			wait_until 30 stat_is '.influx.queued == 0 and .postgres.queued == 0'
		done
	done
done
point dev-b agent.outbox_depth $((TS + 5000)) -12.25
point dev-b app.big $((TS + 5000)) 1e300
point dev-b app.tiny $((TS + 5000)) -0.001
point dev-b app.int $((TS + 5000)) 123456789012345
# names that need escaping in line protocol or SQL, stored verbatim
point 'dev one,"two"' 'm x=1,y' $((TS + 6000)) 1
point 'dev\\x' "it's'); DROP TABLE telemetry; --" $((TS + 6000)) 2
point 'eq=sign;semi' 'quote"' $((TS + 6000)) 3
# a backslash before a space cannot be written to InfluxDB 1.x: refused
# there (one point, whatever batch it came in), stored in PostgreSQL
point 'back\\ slash' m $((TS + 6000)) 4 pg-only
# no newline in a name: refused by both at submit
point 'new\nline' m $((TS + 6000)) 5 none
echo submit >&3
N1=$(wc -l <"$T/want-both")
check_exit 0 "the first $N1 points reach both databases" \
	wait_until 30 stat_is ".influx.sent == $N1 and .postgres.sent == $((N1 + 1)) and .influx.queued == 0 and .postgres.queued == 0"
check_exit 0 "influx holds exactly the points submitted (count, devices, metrics, timestamps, values)" \
	same_rows influx
check_exit 0 "postgres holds exactly the points submitted" same_rows pg
check_exit 0 "refused: the newline name by both, the unwritable backslash by influx only" \
	jq -e '.influx.refused == 2 and .postgres.refused == 1 and .influx.dropped == 0 and .postgres.dropped == 0' "$T/st.json"
check_grep '^1$' "the SQL in a metric name stayed data: the table is there" \
	pg_psql -c "SELECT count(*) FROM telemetry WHERE metric LIKE '%DROP TABLE%'"
check_exit 0 "a plain table here (no timescaledb package in Debian 12), the point's key its primary key" \
	pg_psql -c "SELECT 1 FROM pg_indexes WHERE tablename = 'telemetry' AND indexdef LIKE '%(device, metric, ts)%'"

# --- 2. both databases down: nothing blocks, the bound holds ------------------
check_exit 0 "postgres stopped" pg_stop
check_exit 0 "influxd stopped" influx_stop
TS2=$((TS + 100000))
gen dev-c cpu.percent $BATCH "$TS2"
echo submit >&3
check_exit 0 "the batch in flight fails and is retried by both" \
	wait_until 30 stat_is '.influx.retries >= 1 and .postgres.retries >= 1'
# QUEUE+30 more in one call: the 30 oldest of them go
OVER=30
printf 'gen\t%s\t%s\t%s\t%s\n' dev-c cpu.percent $((QUEUE + OVER)) $((TS2 + BATCH)) >&3
awk -v t=$((TS2 + BATCH)) -v n=$((QUEUE + OVER)) -v o=$OVER \
	'BEGIN { for (i = o; i < n; i++) printf "dev-c\tcpu.percent\t%.0f\t%.17g\n", t + i, i + 0.5 }' >>"$T/want-both"
echo submit >&3
check_exit 0 "past the bound exactly the $OVER oldest waiting points are dropped, by each" \
	stat_is ".influx.dropped == $OVER and .postgres.dropped == $OVER and .influx.queued == $((QUEUE + BATCH)) and .postgres.queued == $((QUEUE + BATCH))"
check_exit 0 "submitting never waited on the databases (under 200 ms each)" \
	jq -e '.submit_max_ms < 200' "$T/st.json"
check_grep 'influx: .*(Couldn.t connect to server)' "the failure is in the stats" \
	jq -r .influx.last_error "$T/st.json"
check_exit 0 "postgres started again" pg_restart
check_exit 0 "influxd started again" influx_restart
N2=$(wc -l <"$T/want-both")
check_exit 0 "everything within the bound arrives" \
	wait_until 60 stat_is ".influx.sent == $N2 and .postgres.sent == $((N2 + 1)) and .influx.queued == 0 and .postgres.queued == 0"
check_exit 0 "influx holds every point once, the dropped ones excepted" \
	same_rows influx
check_exit 0 "postgres too" same_rows pg

# --- 3. stop with the databases down: bounded, and it says what it left -------
check_exit 0 "postgres stopped again" pg_stop
check_exit 0 "influxd stopped again" influx_stop
gen dev-d cpu.percent 10 $((TS + 200000))
echo submit >&3
exec 3>&-
check_exit 0 "fwd-drive stops and exits 0" wait_until 30 proc_gone "$DRIVE"
wait "$DRIVE"
rc=$?
check_exit 0 "fwd-drive exited 0" test "$rc" -eq 0
check_exit 0 "the stop kept to its bound (1 s wait + a 2 s request, each forwarder)" \
	awk '$1 == "stopped_ms" { exit !($2 < 7000) }' "$T/drive.out"
check_exit 0 "both forwarders say the 10 points were not sent" \
	test "$(grep -c 'stopped with 10 points not sent' "$T/drive.log")" -eq 2

# --- 4. the password comes from password_file ---------------------------------
check_exit 0 "postgres started for the password checks" pg_restart
PW=fleet-pw-$RANDOM$RANDOM
check_exit 0 "the role gets a password" pg_psql -c "ALTER ROLE fleet PASSWORD '$PW'"
printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n' >"$PG_DIR/data/pg_hba.conf"
check_exit 0 "TCP connections now need it" pg_psql -c "SELECT pg_reload_conf()"
check_exit 2 "positive control: psql without the password is refused" pg_psql -c "SELECT 1"
printf '%s\n' "$PW" >"$T/pg.pw"
pw_run() { # NAME [password_file]: 5 points of device NAME, then stop
	{
		printf '[postgres]\nconninfo = %s\nbatch = 10\nlinger_ms = 50\n' "$PG_CONNINFO"
		printf 'timeout_ms = 2000\nretry_min_ms = 50\nretry_max_ms = 200\n'
		[ -n "${2:-}" ] && printf 'password_file = %s\n' "$2"
	} >"$T/$1.conf"
	printf 'gen\t%s\tcpu.percent\t5\t%s\nsubmit\n' "$1" "$TS" |
		fwd-drive "$T/$1.conf" 1000 >"$T/$1.out" 2>"$T/$1.log"
}
rows_of() { PGPASSWORD=$PW pg_psql -c "SELECT count(*) FROM telemetry WHERE device = '$1'"; }
check_exit 0 "with password_file the points are stored" pw_run dev-pw "$T/pg.pw"
check_grep '^5$' "all 5 of them" rows_of dev-pw
check_exit 0 "without it fwd-drive still stops in time" pw_run dev-nopw
check_grep 'password' "and says why it could not send" cat "$T/dev-nopw.log"
check_grep '^0$' "nothing stored without the password" rows_of dev-nopw
check_exit 1 "the password is in no log" grep -rlF "$PW" "$T" --include='*.log' --include='*.out'
finish
