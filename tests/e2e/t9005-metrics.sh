#!/usr/bin/env bash
# Prometheus /metrics on fleetd (issue 15, docs/metrics.md): scraped over
# HTTPS with a viewer token while two fleet-sim devices run and one of
# them takes an update.  Without a token 401, with a ci token 403.  The
# whole exposition passes promtool (Prometheus' own parser and linter,
# scripts/install-deps), each histogram's buckets are cumulative with
# +Inf == _count, and the values are the ones that follow from what the
# test did: devices online, firmware versions, the job's outcome, the
# exact number of requests the test made to a route.  A firmware version
# with a double quote, a backslash and a newline comes out escaped.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
ota_fleet_ready
VIEW=$(fleetctl -o json token create scraper --role viewer | jq -r .token)
CI=$(fleetctl -o json token create pipeline --role ci | jq -r .token)

# scrape [TOKEN]: GET /metrics into $T/m.txt; prints the HTTP status
scrape() {
	api GET /metrics ${1:+-H "Authorization: Bearer $1"} \
		-D "$T/m.head" -o "$T/m.txt" -w '%{http_code}\n'
}
# status_is CODE [TOKEN]: a scrape gets CODE
status_is() { [ "$(scrape "${2:-}")" = "$1" ]; }
# value SERIES [FILE]: the value of the sample SERIES (name and labels
# exactly as written) in FILE, the last scrape by default (ENVIRON: awk -v
# would undo the escapes)
value() { S=$1 awk 'substr($0, 1, length(ENVIRON["S"]) + 1) == ENVIRON["S"] " " { print $NF }' "${2:-$T/m.txt}"; }
# is SERIES N: a fresh scrape has SERIES at exactly N
is() { status_is 200 "$VIEW" && [ "$(value "$1")" = "$2" ]; }
REQ='fleetd_http_requests_total{method="GET",route="/metrics"'

check_exit 0 "without a token /metrics is 401" status_is 401
check_exit 0 "a ci token may not read metrics: 403" status_is 403 "$CI"
check_exit 0 "a viewer token reads them: 200" status_is 200 "$VIEW"
check_grep '^Content-Type: text/plain; version=0.0.4' "... in the text format 0.0.4" \
	tr -d '\r' <"$T/m.head"
check_exit 0 "... the refusals before it counted under the route pattern: one 401" \
	is "$REQ,code=\"401\"}" 1
check_exit 0 "... and one 403" is "$REQ,code=\"403\"}" 1
# the scrapes so far: 3 with the viewer token (each counted once its
# reply is made, so a scrape sees the ones before it)
check_exit 0 "... and the successful scrapes before this one: 3" is "$REQ,code=\"200\"}" 3

# --- devices: two simulated ones and one with an odd version ----------------
sim_start sims 2 mx line
check_exit 0 "2 simulated devices online in fleetd_devices_online" \
	wait_until 60 is fleetd_devices_online 2
check_exit 0 "... as fleetctl's table of online devices says" sh -c \
	"fleetctl devices list --online | grep -c '^mx-000[12] ' | grep -qx 2"
check_exit 0 "... both on firmware 1.0.0" \
	wait_until 30 is 'fleetd_devices_firmware{version="1.0.0"}' 2
ENR=$(fleetctl -o json token create odd --enroll --uses 1 --ttl 1h | jq -r .token)
check_grep '^201$' "a device enrols with curl" enroll_curl odd-1 "$ENR"
check "... and reports a firmware with a quote, a backslash and a newline" \
	mq_pub odd-1 -q 1 -t fleet/odd-1/status -m '{"firmware":"v\"1\\2\n3"}'
check_exit 0 "... stored as it was sent (positive control)" wait_until 30 sh -c \
	"fleetctl -o json devices show odd-1 | jq -e '.firmware == \"v\\\"1\\\\2\\n3\"'"
check_exit 0 "... and comes out escaped as a label value" wait_until 30 \
	is 'fleetd_devices_firmware{version="v\"1\\2\n3"}' 1
check_exit 0 "3 active devices" is 'fleetd_devices{state="active"}' 3
check_exit 0 "... the one not online not counted online" is fleetd_devices_online 2

# --- a job runs to its end --------------------------------------------------
check_exit 0 "no job has finished yet" is 'fleetd_jobs_finished_total{state="succeeded"}' 0
SENT0=$(value 'fleetd_mqtt_sent_total{kind="cmd"}')
EVENTS0=$(value 'fleetd_mqtt_received_total{kind="events"}')
JOB=$(update_job mx-0001 fleet-sample@1.1.0)
check_exit 0 "an update of mx-0001 succeeds" wait_until 120 sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '.state == \"succeeded\"'"
check_exit 0 "... fleetd_jobs_finished_total{state=succeeded} is 1" \
	wait_until 30 is 'fleetd_jobs_finished_total{state="succeeded"}' 1
check_exit 0 "... and no other outcome counted" sh -c \
	"grep '^fleetd_jobs_finished_total{' '$T/m.txt' | grep -v succeeded | grep -c ' 0\$' | grep -qx 4"
check_exit 0 "... 1.1.0 on one device" \
	wait_until 30 is 'fleetd_devices_firmware{version="1.1.0"}' 1
check_exit 0 "... 1.0.0 on the other" \
	test "$(value 'fleetd_devices_firmware{version="1.0.0"}')" = 1
check_exit 0 "... the update command went out over MQTT" \
	test "$(value 'fleetd_mqtt_sent_total{kind="cmd"}')" -gt "$SENT0"
check_exit 0 "... and its events came in" \
	test "$(value 'fleetd_mqtt_received_total{kind="events"}')" -gt "$EVENTS0"
check_exit 0 "... the store's latency histogram counted calls" \
	test "$(value fleetd_store_call_duration_seconds_count)" -gt 0

# --- exact HTTP counts for a route ------------------------------------------
status_is 200 "$VIEW"
cp "$T/m.txt" "$T/before.txt"
DEV='{method="GET",route="/api/v1/devices/:id"'
n_before() { value "$1" "$T/before.txt"; }
for i in 1 2 3 4 5; do api GET /api/v1/devices/nobody-$i -H "Authorization: Bearer $VIEW" -o /dev/null; done
for i in 1 2; do api GET /api/v1/devices/mx-0002 -H "Authorization: Bearer $VIEW" -o /dev/null; done
status_is 200 "$VIEW"
b404=$(n_before "fleetd_http_requests_total$DEV,code=\"404\"}")
b200=$(n_before "fleetd_http_requests_total$DEV,code=\"200\"}")
bcnt=$(n_before "fleetd_http_request_duration_seconds_count$DEV}")
check_exit 0 "5 requests for unknown devices: the route's 404 counter up by exactly 5" \
	test "$(value "fleetd_http_requests_total$DEV,code=\"404\"}")" = $((${b404:-0} + 5))
check_exit 0 "2 for a known one: its 200 counter up by exactly 2" \
	test "$(value "fleetd_http_requests_total$DEV,code=\"200\"}")" = $((${b200:-0} + 2))
check_exit 0 "... the route's latency histogram _count up by exactly 7" \
	test "$(value "fleetd_http_request_duration_seconds_count$DEV}")" = $((${bcnt:-0} + 7))
check_exit 0 "no raw path in any label" sh -c "! grep -E 'nobody-|mx-0002' '$T/m.txt'"

# --- a rollout: the gauge follows its state, the counters move -------------
DONE0=$(value 'fleetd_jobs_finished_total{state="succeeded"}')
check_exit 0 "no rollout yet" is 'fleetd_rollouts{state="running"}' 0
check "a rollout of 1.1.0 to the devices of group line still on 1.0.0" \
	fleetctl rollout create --bundle fleet-sample@1.1.0 --group line \
	--from-version 1.0.0 --waves 100% --soak 5s --health-window 1s --id mx-spring
check_exit 0 "... counted running while it soaks" \
	wait_until 30 is 'fleetd_rollouts{state="running"}' 1
rollout_done() {
	is 'fleetd_rollouts{state="completed"}' 1 &&
		[ "$(value 'fleetd_rollouts{state="running"}')" = 0 ]
}
check_exit 0 "... then completed, no longer running" wait_until 120 rollout_done
check_exit 0 "... as fleetctl's table says" sh -c \
	"fleetctl rollout list | grep -E '^mx-spring +completed'"
check_exit 0 "... its device's job counted: succeeded up by exactly 1" \
	is 'fleetd_jobs_finished_total{state="succeeded"}' $((DONE0 + 1))
check_exit 0 "... both devices on 1.1.0 now" \
	is 'fleetd_devices_firmware{version="1.1.0"}' 2

# --- the whole exposition ---------------------------------------------------
promtool_ok() { promtool check metrics <"$T/m.txt"; }
check_exit 0 "promtool check metrics accepts the whole exposition" promtool_ok
# every histogram series: le ascending, counts never falling, +Inf last
# and equal to _count
hist_ok() {
	awk '
	/^#/ { next }
	{ split($0, a, " "); series = a[1]; v = a[2] }
	series ~ /_bucket\{/ {
		key = series; sub(/_bucket\{/, "{", key); sub(/,?le="[^"]*"\}$/, "}", key)
		le = series; sub(/.*le="/, "", le); sub(/".*/, "", le)
		if (key in last && (v + 0 < last[key] || (le != "+Inf" && le + 0 <= lastle[key]))) bad = bad " " key
		if (key in inf) bad = bad " after+Inf:" key
		last[key] = v + 0; lastle[key] = le + 0; nb++
		if (le == "+Inf") inf[key] = v
		next
	}
	series ~ /_count/ { key = series; sub(/_count/, "", key); if (key !~ /\{/) key = key "{}"; cnt[key] = v }
	END {
		for (k in inf) { n++; if (!(k in cnt) || cnt[k] != inf[k]) bad = bad " count:" k }
		if (bad != "" || n == 0) { print "bad:" bad; exit 1 }
		print n " histograms, " nb " buckets"
	}' "$T/m.txt" >"$T/hist.out"
	local rc=$?
	cat "$T/hist.out"
	return $rc
}
check_exit 0 "every histogram's buckets are cumulative, +Inf == _count" hist_ok
check_exit 0 "... the checker saw them: 2 routes and the store's at least" \
	awk '$1 >= 3 { ok = 1 } END { exit !ok }' "$T/hist.out"

# --- the docs and the sample dashboard name what is there ------------------
sed -n 's/^| `\([a-z_]*\)` | \(counter\|gauge\|histogram\) .*/\1 \2/p' \
	"$FLEET_SRC/docs/metrics.md" | sort >"$T/doc.names"
sed -n 's/^# TYPE \([a-z_]*\) \([a-z]*\)$/\1 \2/p' "$T/m.txt" | sort >"$T/out.names"
check_exit 0 "docs/metrics.md names every metric served, with its type, and no other" \
	diff "$T/doc.names" "$T/out.names"
check_exit 0 "the sample Grafana dashboard is valid JSON with panels" \
	jq -e '.panels | length > 10' "$FLEET_SRC/docs/grafana-fleetd.json"
jq -r '.. | .expr? // empty' "$FLEET_SRC/docs/grafana-fleetd.json" |
	grep -oE '\b(fleetd|process)_[a-z_]+' | sed -E 's/_(bucket|sum|count)$//' |
	sort -u >"$T/dash.names"
check_exit 0 "... and queries only metrics fleetd serves" \
	sh -c "cut -d' ' -f1 '$T/out.names' | comm -23 '$T/dash.names' - | grep -c . | grep -qx 0"
check_exit 0 "fleet-sim stops cleanly" sim_stop "$SIM_PID"
finish
