#!/usr/bin/env bash
# Slowloris (issue 8, item 3): one client opening many slow TLS
# connections must not make the API unreachable for others.  Per-address
# connection limit; deadlines for the headers and for the whole request
# that trickling one byte at a time does not beat (MHD's own timeout only
# counts idle time).  Positive control: the attacker's connections really
# were accepted up to the limit and stayed open until their deadline.
. "$(dirname "$0")/lib.sh"

PER_IP=40
# The header deadline must outlast the attacker's own connecting: on a
# loaded machine its 200 handshakes took over 6 s, the first connections
# met their deadline meanwhile and freed places for later ones (80
# accepted).
HEADER_S=15
REQUEST_S=20
FLEETD_CONF="[http]
max_connections = 400
max_connections_per_ip = $PER_IP
header_timeout = $HEADER_S
request_timeout = $REQUEST_S"
start_fleetd
SLOW="python3 $FLEET_SRC/tests/e2e/slowhttp.py"

# from another loopback address than the attacker's 127.0.0.1
legit() {
	curl -sS --max-time 5 --interface 127.0.0.2 --cacert "$FLEET_CA_FILE" \
		-o /dev/null -w '%{http_code}\n' "$FLEET_URL$1" "${@:2}"
}
check_grep '^200$' "a client on 127.0.0.2 reaches fleetd" legit /healthz

# --- 200 slow connections from one address: headers never finish --------
$SLOW hold "$FLEET_URL" --ca "$FLEET_CA_FILE" --count 200 --source 127.0.0.1 \
	--status-file "$T/hold.status" --max-time 40 >"$T/hold.json" 2>"$T/hold.err" &
HOLD=$!
track $HOLD
wait_until 60 test -e "$T/hold.status" || fail "the attacker never finished connecting"
check_grep "^accepted=$PER_IP " "the attacker's first $PER_IP connections were accepted (TLS up)" \
	cat "$T/hold.status"
check_grep " refused=160 " "its other 160 connections were refused" cat "$T/hold.status"
check_grep '^200$' "meanwhile another client gets /healthz" legit /healthz
check_grep '^200$' "... and an authenticated call" legit /api/v1/whoami \
	-H "Authorization: Bearer $ADMIN_TOKEN"
check_exit 35 "a further connection from the attacker's address is refused" \
	curl -sS --max-time 5 --interface 127.0.0.1 --cacert "$FLEET_CA_FILE" \
	-o /dev/null "$FLEET_URL/healthz"
wait "$HOLD"
cat "$T/hold.status" "$T/hold.json"
check "every slow connection was closed by fleetd, trickling or not" \
	jq -e ".accepted == $PER_IP and .closed == $PER_IP and .alive == 0" "$T/hold.json"
check "... by the header deadline (${HEADER_S}s), not the 60s idle timeout" \
	jq -e ".max_open_s < $HEADER_S + 4" "$T/hold.json"
check_grep '^200$' "the attacker's address may connect again" \
	curl -sS --max-time 5 --interface 127.0.0.1 --cacert "$FLEET_CA_FILE" \
	-o /dev/null -w '%{http_code}\n' "$FLEET_URL/healthz"

# --- complete headers, a body that trickles ----------------------------------
$SLOW hold "$FLEET_URL" --ca "$FLEET_CA_FILE" --count 5 --source 127.0.0.3 --body \
	--status-file "$T/body.status" --max-time 40 >"$T/body.json" 2>"$T/body.err"
cat "$T/body.json"
check "slow bodies were accepted, then closed by fleetd" \
	jq -e '.accepted == 5 and .closed == 5 and .alive == 0' "$T/body.json"
check "... after the header deadline (${HEADER_S}s: the headers were in)" \
	jq -e ".min_open_s >= $HEADER_S" "$T/body.json"
check "... by the request deadline (${REQUEST_S}s)" \
	jq -e ".max_open_s < $REQUEST_S + 4" "$T/body.json"
check_grep '^200$' "fleetd still answers" legit /healthz
finish
