#!/usr/bin/env bash
# Telemetry into fleetd (issue 13, docs/protocol.md "Telemetry") with a
# real mosquitto and fleetd, devices played by mosquitto_pub with their
# enrolled identities: points stored and shown by `fleetctl telemetry`
# (table and JSON, exact values and times); a QoS-1 duplicate changes
# nothing; malformed, oversize, bad-metric, out-of-range and other broken
# messages are refused whole and counted, and a good message right after
# them on the same connection is stored; the seq restart rule; the window
# trimmed to [telemetry] keep_points; --since and --metric; the exit codes
# of an unknown device and bad options; a device cannot publish telemetry
# for another one (the broker ACL), while its own is stored.
. "$(dirname "$0")/lib.sh"

FLEETD_CONF=$'[telemetry]\nkeep_points = 5\n[mqtt]\ndevice_burst = 100000\ndevice_rate = 100000'
start_fleetd --with-broker
login_admin
TOK=$(fleetctl -o json token create e2e --enroll --uses 2 | jq -r .token)
check_grep '^201$' "enrol dev-a" enroll_curl dev-a "$TOK"
check_grep '^201$' "enrol dev-b" enroll_curl dev-b "$TOK"

# sample times: ten minutes ago (inside the default 24 h), whole seconds
# plus 123 ms, and their RFC 3339 text as fleetd shows them
S0=$(($(date +%s) - 600))
ms() { echo $(((S0 + $1) * 1000 + 123)); }
iso() { date -u -d "@$((S0 + $1))" +%Y-%m-%dT%H:%M:%S.123Z; }
pt() { printf '{"metric":"%s","value":%s,"ts":%s}' "$1" "$2" "$(ms "$3")"; }
msg() { local seq=$1; shift; local IFS=,; printf '{"seq":%s,"points":[%s]}' "$seq" "$*"; }
# pub ID MESSAGE...: one connection, QoS 1, one message per line
pub() { local id=$1; shift; printf '%s\n' "$@" | mq_pub "$id" -q 1 -t "fleet/$id/telemetry" -l; }
tele() { fleetctl -o json telemetry "$@"; }
stat() { fleetctl -o json status | jq -r ".telemetry.$1"; }
stat_is() { [ "$(stat "$1")" = "$2" ]; }
npoints() { tele "$1" | jq '.points | length'; }
npoints_is() { [ "$(npoints "$1")" = "$2" ]; }

# --- stored and shown -----------------------------------------------------
M1=$(msg 1 "$(pt cpu.percent 12.5 0)" "$(pt mem.used_bytes 1048576 0)" "$(pt temp.cpu_c -3.25 1)")
M1="${M1%\}},\"dropped\":2}"
check "dev-a publishes seq 1 (3 points, 2 dropped)" pub dev-a "$M1"
check "its 3 points are stored" wait_until 20 npoints_is dev-a 3
tele dev-a >"$T/a1.json"
check "fleetctl telemetry -o json: the exact points, oldest first, and dropped" \
	jq -e --arg t0 "$(iso 0)" --arg t1 "$(iso 1)" '. == {device: "dev-a", dropped: 2, points: [
		{metric: "cpu.percent", value: 12.5, ts: $t0},
		{metric: "mem.used_bytes", value: 1048576, ts: $t0},
		{metric: "temp.cpu_c", value: -3.25, ts: $t1}]}' "$T/a1.json"
fleetctl telemetry dev-a >"$T/a1.txt" 2>"$T/a1.err"
printf '%-24s  %-14s  %s\n' TIME METRIC VALUE "$(iso 0)" cpu.percent 12.5 \
	"$(iso 0)" mem.used_bytes 1048576 "$(iso 1)" temp.cpu_c -3.25 >"$T/a1.want"
check "fleetctl telemetry (table): TIME METRIC VALUE, the same points" diff "$T/a1.want" "$T/a1.txt"
check_grep "outbox dropped 2 points" "the table notes the points the device dropped" cat "$T/a1.err"
check_true "stored-points counter" stat_is points 3
check_true "dropped-by-devices counter" stat_is dropped_by_devices 2

# --- a QoS-1 duplicate changes nothing -----------------------------------
check "dev-a publishes seq 1 again, other values" pub dev-a "$(msg 1 "$(pt cpu.percent 99 2)")"
check "it is counted as a duplicate" wait_until 20 stat_is duplicates 1
check "and nothing it says is stored" sh -c "fleetctl -o json telemetry dev-a | cmp - '$T/a1.json'"

# --- refused whole, counted; a good message right after is stored ---------
BIG=$(printf '%*s' 66000 '' | tr ' ' x)
P65=$(for i in $(seq 65); do pt cpu.percent "$i" 2; done | paste -sd,)
NOW_MS=$(($(date +%s) * 1000))
BAD=(
	'{"seq":2,"points":[{"metric":"cpu.percent","value":1,'
	"$(msg 2 "$(pt 'bad metric' 1 2)")"
	"$(msg 2 "$(pt "$(printf 'm%.0s' $(seq 65))" 1 2)")"
	"$(msg 2 '{"metric":"cpu.percent","value":1,"ts":1577836799999}')"
	"$(msg 2 "{\"metric\":\"cpu.percent\",\"value\":1,\"ts\":$((NOW_MS + 2 * 86400000))}")"
	"$(msg 2 "$(pt cpu.percent '"12"' 2)")"
	"$(msg 2 "$(pt cpu.percent 1.5 2)" '{"metric":"cpu.percent","value":1,"ts":1.7e12}')"
	"$(msg 0 "$(pt cpu.percent 1 2)")"
	'{"seq":2,"points":[]}'
	"{\"seq\":2,\"points\":[$P65]}"
	"{\"seq\":2,\"pad\":\"$BIG\",\"points\":[$(pt cpu.percent 1 2)]}"
	"$(msg 2 "$(pt cpu.percent 1 2)" | sed 's/}$/,"dropped":-1}/')"
)
check "dev-a sends ${#BAD[@]} broken messages, then seq 2, on one connection" \
	pub dev-a "${BAD[@]}" "$(msg 2 "$(pt disk.state_free_bytes 7340032 2)")"
check "every broken one is counted rejected" wait_until 20 stat_is rejected "${#BAD[@]}"
check "the good one after them is stored" wait_until 20 npoints_is dev-a 4
check "none of the broken ones left a point" sh -c \
	"fleetctl -o json telemetry dev-a | jq -e '[.points[].metric] == [\"cpu.percent\", \"mem.used_bytes\", \"temp.cpu_c\", \"disk.state_free_bytes\"] and .dropped == 2'"
check_grep "telemetry from dev-a rejected" "a rejection is logged" cat "$T/fleetd.log"
check_true "and logged once a minute at most" \
	test "$(grep -c 'telemetry from dev-a rejected' "$T/fleetd.log")" -eq 1
fleetctl status >"$T/status.txt"
check_grep "^telemetry-rejected: +${#BAD[@]}$" "fleetctl status shows the rejected count" cat "$T/status.txt"
check_grep "^telemetry-points: +4$" "fleetctl status shows the points stored" cat "$T/status.txt"

# --- the window: keep_points = 5 ------------------------------------------
check "dev-a publishes seq 3: 3 more points" pub dev-a \
	"$(msg 3 "$(pt cpu.percent 20 3)" "$(pt cpu.percent 30 4)" "$(pt cpu.percent 40 5)")"
check "the window is trimmed to the 5 newest" wait_until 20 sh -c \
	"fleetctl -o json telemetry dev-a | jq -e '[.points[] | \"\(.metric)=\(.value)\"] == [\"temp.cpu_c=-3.25\", \"disk.state_free_bytes=7340032\", \"cpu.percent=20\", \"cpu.percent=30\", \"cpu.percent=40\"]'"
check_true "and the database holds no more than that" \
	test "$(store_sql "SELECT count(*) FROM telemetry WHERE device = 'dev-a'")" -eq 5

# --- --since, --metric, --limit -----------------------------------------
check "--since -1h: all five" sh -c "fleetctl -o json telemetry dev-a --since -1h | jq -e '.points | length == 5'"
check "--since -1m: none (sampled ten minutes ago)" sh -c \
	"fleetctl -o json telemetry dev-a --since -1m | jq -e '.points == []'"
SINCE=$(date -u -d "@$((S0 + 4))" +%Y-%m-%dT%H:%M:%SZ)
check "--since RFC 3339: from that second on" sh -c \
	"fleetctl -o json telemetry dev-a --since $SINCE | jq -e '[.points[].value] == [30, 40]'"
check "--metric cpu.percent --limit 2: its newest two, oldest first" sh -c \
	"fleetctl -o json telemetry dev-a --metric cpu.percent --limit 2 | jq -e '[.points[].value] == [30, 40]'"
check_exit 3 "an unknown device is exit 3" fleetctl telemetry nosuch
check_exit 2 "a bad --since is a usage error" fleetctl telemetry dev-a --since yesterday
check_exit 2 "a bad --metric is a usage error" fleetctl telemetry dev-a --metric 'a b'
check_exit 2 "--limit 0 is a usage error" fleetctl telemetry dev-a --limit 0
check_grep '"since .*is not a time' "the API says what is wrong with since (400)" \
	api GET "/api/v1/devices/dev-a/telemetry?since=10m" -H "Authorization: Bearer $ADMIN_TOKEN" -w '%{http_code}'
check_grep '400$' "with status 400" \
	api GET "/api/v1/devices/dev-a/telemetry?limit=0" -H "Authorization: Bearer $ADMIN_TOKEN" -w '%{http_code}'

# --- the seq restart rule -----------------------------------------------
check "seq 2000000" pub dev-a "$(msg 2000000 "$(pt cpu.percent 50 6)")"
check "is stored" wait_until 20 sh -c "fleetctl -o json telemetry dev-a | jq -e '.points[-1].value == 50'"
check "seq 7, more than 1,000,000 below: a new stream, stored" pub dev-a "$(msg 7 "$(pt cpu.percent 60 7)")"
check "stored" wait_until 20 sh -c "fleetctl -o json telemetry dev-a | jq -e '.points[-1].value == 60'"
check "then seq 6: below the new mark, a duplicate" pub dev-a "$(msg 6 "$(pt cpu.percent 70 8)")"
check "counted as one" wait_until 20 stat_is duplicates 2
check "and not stored" sh -c "fleetctl -o json telemetry dev-a | jq -e '.points[-1].value == 60'"

# --- a device cannot publish for another ---------------------------------
# (the broker refuses it; mosquitto_pub's exit code for that varies)
mq_pub dev-b -q 1 -t fleet/dev-a/telemetry -m "$(msg 9000000 "$(pt cpu.percent 666 9)")" >"$T/attack.out" 2>&1
check "dev-b publishes on its own (positive control)" pub dev-b "$(msg 1 "$(pt cpu.percent 5 9)")"
check "dev-b's own point is stored" wait_until 20 npoints_is dev-b 1
check "nothing reached dev-a: its newest point is still 60" sh -c \
	"fleetctl -o json telemetry dev-a | jq -e '[.points[].value] | index(666) == null and .[-1] == 60'"
check "nor moved dev-a's mark: its seq 8 is stored" pub dev-a "$(msg 8 "$(pt cpu.percent 80 10)")"
check "stored" wait_until 20 sh -c "fleetctl -o json telemetry dev-a | jq -e '.points[-1].value == 80'"

finish
