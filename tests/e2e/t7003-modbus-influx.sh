#!/usr/bin/env bash
# Modbus values into InfluxDB (issue 16, "Must show"; docs/modbus.md,
# docs/telemetry.md "Forwarding"): a real fleet-agent polls
# tests/tools/modbus-sim, fleetd forwards its telemetry to a real influxd
# ([influx] in fleetd.conf, as t6151).  Constant registers of each type
# and in each word order arrive in InfluxDB exactly, after scale and
# offset (%.17g, no rounding on the way), and InfluxDB holds every Modbus
# point fleetd stored, with its millisecond time, none twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"
. "$(dirname "$0")/lib-influx.sh"

influx_start || { cat "$T/influxd.log"; exit 1; }
check_grep '"statement_id":0' "influx: the database is created" influx_admin "CREATE DATABASE fleet"
FLEETD_CONF=$(influx_fleetd_conf)
start_fleetd --with-broker
login_admin
sim_device dev-a

check "the simulator listens" modbus_sim_start sim
PORT=$PORT_sim

# NAME = REGISTER ... and the value it must have everywhere (the
# simulator's constants: tests/tools/modbus-sim.c)
REGS="u16|holding 0|1234
i16|holding 1 type=int16 scale=0.5|-617
u32_cdab|holding 4 type=uint32 order=cdab|305419896
u32_dcba|holding 8 type=uint32 order=dcba|305419896
f_abcd|holding 10 type=float32 offset=-0.25|21.25
f_cdab|holding 12 type=float32 order=cdab scale=2 offset=1|44
f_badc|holding 14 type=float32 order=badc scale=-4|-86
i32|holding 18 type=int32 scale=0.25|-25000"
# the source's own sim.up, 1 throughout
ALL="$REGS
up||1"
{
	printf '[source sim]\nhost = 127.0.0.1\nport = %s\ninterval = 300ms\ntimeout = 300ms\n' "$PORT"
	printf '[registers sim]\n'
	while IFS='|' read -r name reg _; do printf '%s = %s\n' "$name" "$reg"; done <<<"$REGS"
} >"$A/modbus.conf"
printf '[modbus]\nmap = modbus.conf\n' >>"$A/agent.conf"
agent_start_sim dev-a
check "dev-a comes online" wait_until 30 dev_online dev-a

# InfluxDB's rows of the Modbus source (lib-influx.sh's form)
influx_sim() { influx_rows | awk -F'\t' '$2 ~ /^sim\./'; }
# fleetd's, in the same form: DEVICE METRIC TS_MS VALUE
fleetd_sim() {
	local name
	while IFS='|' read -r name _; do
		fleetctl -o json telemetry dev-a --metric "sim.$name" --limit 1000 |
			jq -r '.device as $d | .points[] | [$d, .metric,
				((.ts | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) * 1000
				 + (.ts | capture("\\.(?<ms>[0-9]{3})Z$").ms | tonumber) | tostring),
				(.value | tostring)] | join("\t")'
	done <<<"$ALL" | awk -F'\t' -v OFS='\t' '{ $4 = sprintf("%.17g", $4); print }' | LC_ALL=C sort
}
rows_of() { influx_sim | awk -F'\t' -v m="sim.$1" '$2 == m'; }
three_each() {
	local name
	while IFS='|' read -r name _; do
		[ "$(rows_of "$name" | wc -l)" -ge 3 ] || return 1
	done <<<"$REGS"
}
check "three points of each register reach InfluxDB" wait_until 30 three_each
while IFS='|' read -r name reg want; do
	check_true "InfluxDB: every sim.$name ($reg) is $want" awk -F'\t' \
		-v w="$(printf '%.17g' "$want")" '$4 != w { exit 1 } END { exit NR < 3 }' \
		<(rows_of "$name")
done <<<"$REGS"

check_exit 0 "the agent stops" agent_stop dev-a
same_as_fleetd() {
	fleetd_sim >"$T/fleetd.rows" && influx_sim >"$T/influx.rows" &&
		[ -s "$T/fleetd.rows" ] && diff "$T/fleetd.rows" "$T/influx.rows"
}
check_exit 0 "InfluxDB holds the Modbus points fleetd stored: same times and values, none twice" \
	wait_until 20 same_as_fleetd
awk -F'|' -v OFS='\t' '{ print "sim." $1, sprintf("%.17g", $3) }' <<<"$ALL" | LC_ALL=C sort >"$T/want"
check "... $(wc -l <"$T/influx.rows") points, of the values above only (and sim.up 1)" \
	diff "$T/want" <(cut -f2,4 "$T/influx.rows" | LC_ALL=C sort -u)
fleetctl telemetry dev-a --metric sim.f_badc >"$T/f.txt" 2>&1
check_grep '^[0-9T:.-]+Z +sim\.f_badc +-86$' "fleetctl telemetry (table): sim.f_badc -86 rows" cat "$T/f.txt"
check_grep '^influx-sent: +[1-9][0-9]*$' "fleetctl status (table): influx-sent" fleetctl status
check_grep '^influx-dropped: +0$' "fleetctl status (table): influx dropped nothing" fleetctl status
finish
