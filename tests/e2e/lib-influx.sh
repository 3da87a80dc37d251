# A real InfluxDB 1.x (Debian's influxd) for the end-to-end tests,
# sourced after lib.sh (issue 13's forwarding tests).
#
#   influx_start        influxd with a config generated in $T/influx:
#                       HTTP on a free 127.0.0.1 port, its RPC (backup)
#                       port on another, meta, data and WAL under
#                       $T/influx, no reporting, no other listener
#                       (graphite, collectd, opentsdb, udp off); true
#                       once /ping answers.  Sets INFLUX_URL, INFLUX_PID
#   influx_stop         SIGTERM; true once influxd is gone
#   influx_restart      influx_start again on the same dirs and ports
#   influx_query DB Q   GET /query (epoch=ms): the JSON answer
#   influx_admin Q      POST /query (CREATE DATABASE ...)
#   influx_fleetd_conf  fleetd.conf's [influx] section forwarding to its
#                       database fleet, with short lingers and retries
#   influx_rows [DB]    fleetd's telemetry measurement in DB (fleet) as sorted
#                       "DEVICE<TAB>METRIC<TAB>TS_MS<TAB>VALUE" lines (%.17g)

_influx_init() {
	local d=$T/influx
	mkdir -p "$d"
	INFLUX_PORT=$(free_port)
	INFLUX_RPC_PORT=$(free_port)
	cat >"$d/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$INFLUX_RPC_PORT"
[meta]
  dir = "$d/meta"
[data]
  dir = "$d/data"
  wal-dir = "$d/wal"
  query-log-enabled = false
[coordinator]
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:$INFLUX_PORT"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false
[[graphite]]
  enabled = false
[[collectd]]
  enabled = false
[[opentsdb]]
  enabled = false
[[udp]]
  enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
CONF
	INFLUX_URL=http://127.0.0.1:$INFLUX_PORT
}

influx_start() {
	[ -n "${INFLUX_URL:-}" ] || _influx_init
	influxd run -config "$T/influx/influxdb.conf" >>"$T/influxd.log" 2>&1 &
	INFLUX_PID=$!
	track "$INFLUX_PID"
	wait_until 30 curl -sf --max-time 2 "$INFLUX_URL/ping"
}

influx_restart() { influx_start; }

influx_stop() {
	kill -TERM "$INFLUX_PID" || return 1
	wait_until 30 proc_gone "$INFLUX_PID" || return 1
	wait "$INFLUX_PID" 2>/dev/null
	return 0
}

influx_query() {
	curl -sS --max-time 20 -G "$INFLUX_URL/query" --data-urlencode "db=$1" \
		--data-urlencode epoch=ms --data-urlencode "q=$2"
}

influx_admin() {
	curl -sS --max-time 20 -XPOST "$INFLUX_URL/query" --data-urlencode "q=$1"
}

influx_rows() {
	influx_query "${1:-fleet}" 'SELECT device, metric, value FROM telemetry' |
		jq -r '.results[0].series[0].values[]? | [.[1], .[2], (.[0] | tostring), (.[3] | tostring)] | join("\t")' |
		awk -F'\t' -v OFS='\t' '{ $4 = sprintf("%.17g", $4); print }' | LC_ALL=C sort
}

influx_fleetd_conf() {
	printf '[influx]\nurl = %s\ndatabase = fleet\nlinger_ms = 100\ntimeout_ms = 2000\nretry_min_ms = 100\nretry_max_ms = 500\n' \
		"$INFLUX_URL"
}
