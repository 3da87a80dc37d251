#!/usr/bin/env bash
# Telemetry from devices through fleetd into InfluxDB and PostgreSQL
# (issue 13, docs/telemetry.md "Forwarding"): fleetd with [influx] and
# [postgres] in fleetd.conf, devices played by mosquitto_pub with their
# enrolled identities publishing known points.
#  - Both databases then hold exactly the points the devices sent
#    (device, metric, millisecond time, value), and `fleetctl status`
#    (table and JSON) counts them sent by each forwarder.
#  - Both databases stopped: the devices' next points are still stored by
#    fleetd at once (ingestion is not held up by a database), status shows
#    them waiting and the failed attempts; both started again: every point
#    arrives, none twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pg.sh"
. "$(dirname "$0")/lib-influx.sh"
unset PGPASSWORD
export PGPASSFILE=$T/no-passfile

pg_start || { cat "$T/postgres.log"; exit 1; }
influx_start || { cat "$T/influxd.log"; exit 1; }
check_grep '"statement_id":0' "influx: the database is created" influx_admin "CREATE DATABASE fleet"

FLEETD_CONF="$(influx_fleetd_conf)
[postgres]
conninfo = $PG_CONNINFO
linger_ms = 100
timeout_ms = 2000
retry_min_ms = 100
retry_max_ms = 500"
start_fleetd --with-broker
login_admin
TOK=$(fleetctl -o json token create e2e --enroll --uses 2 | jq -r .token)
check_grep '^201$' "enrol dev-a" enroll_curl dev-a "$TOK"
check_grep '^201$' "enrol dev-b" enroll_curl dev-b "$TOK"

# Points: ten minutes ago plus N seconds, value N.25 (exact in binary).
S0=$((($(date +%s) - 600) * 1000))
: >"$T/want"
# send ID SEQ FIRST LAST: one message of points FIRST..LAST (cpu.percent,
# and mem.used_bytes on even ones), recorded in $T/want
send() {
	local id=$1 seq=$2 i pts=()
	for ((i = $3; i <= $4; i++)); do
		pts+=("{\"metric\":\"cpu.percent\",\"value\":$i.25,\"ts\":$((S0 + i * 1000))}")
		printf '%s\tcpu.percent\t%s\t%s\n' "$id" $((S0 + i * 1000)) "$i.25" >>"$T/want"
		if ((i % 2 == 0)); then
			pts+=("{\"metric\":\"mem.used_bytes\",\"value\":$((i * 1024)),\"ts\":$((S0 + i * 1000))}")
			printf '%s\tmem.used_bytes\t%s\t%s\n' "$id" $((S0 + i * 1000)) $((i * 1024)) >>"$T/want"
		fi
	done
	local IFS=,
	printf '{"seq":%s,"points":[%s]}\n' "$seq" "${pts[*]}" |
		mq_pub "$id" -q 1 -t "fleet/$id/telemetry" -l
}
# what the devices sent, in the form of influx_rows and pg_rows
norm() { awk -F'\t' -v OFS='\t' '{ $4 = sprintf("%.17g", $4); print }' | LC_ALL=C sort; }
want() { norm <"$T/want"; }
holds_all() { diff <(want) <("$@") >/dev/null; }
status_json() { fleetctl -o json status; }
sent_is() { [ "$(status_json | jq ".forward.$1.sent")" = "$2" ]; }
stored() { fleetctl -o json status | jq .telemetry.points; }
stored_is() { [ "$(stored)" = "$1" ]; }

# --- forwarded as sent ------------------------------------------------------
check "dev-a publishes points 1-10 (seq 1)" send dev-a 1 1 10
check "dev-a publishes points 11-20 (seq 2)" send dev-a 2 11 20
check "dev-b publishes points 1-7 (seq 1)" send dev-b 1 1 7
N=$(wc -l <"$T/want")
check "fleetd stored all $N points" wait_until 20 stored_is "$N"
check "InfluxDB holds exactly the points the devices sent" wait_until 20 holds_all influx_rows
check "PostgreSQL holds exactly the points the devices sent" wait_until 20 holds_all pg_rows
check "fleetctl status -o json: influx sent $N" sent_is influx "$N"
check "fleetctl status -o json: postgres sent $N" sent_is postgres "$N"
check_grep "^influx-sent: +$N\$" "fleetctl status (table): influx-sent" fleetctl status
check_grep "^postgres-sent: +$N\$" "fleetctl status (table): postgres-sent" fleetctl status
check_grep '^postgres-dropped: +0$' "fleetctl status (table): nothing dropped" fleetctl status

# --- both databases down, then back --------------------------------------------
check "PostgreSQL stopped" pg_stop
check "influxd stopped" influx_stop
check "dev-a publishes points 21-40 (seq 3), databases down" send dev-a 3 21 40
check "dev-b publishes points 8-30 (seq 2), databases down" send dev-b 2 8 30
M=$(wc -l <"$T/want")
check "fleetd stores the new points at once, databases down" wait_until 20 stored_is "$M"
waiting() { status_json | jq -e --argjson n $((M - N)) '.forward.influx.queued == $n and .forward.postgres.queued == $n and .forward.influx.retries > 0 and .forward.postgres.retries > 0'; }
check "status: the new points wait in both queues, attempts retried" wait_until 20 waiting
check_grep '^influx-last-error: +[^-]' "fleetctl status (table) shows influx's last error" fleetctl status
check "PostgreSQL started again" pg_restart
check "influxd started again" influx_restart
check "InfluxDB then holds every point, none twice" wait_until 30 holds_all influx_rows
check "PostgreSQL then holds every point, none twice" wait_until 30 holds_all pg_rows
check "status: all $M sent by each, none dropped" sh -c \
	"fleetctl -o json status | jq -e '.forward | [.influx, .postgres] | all(.sent == $M and .dropped == 0 and .queued == 0)'"
finish
