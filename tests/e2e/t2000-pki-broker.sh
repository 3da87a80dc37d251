#!/usr/bin/env bash
# Device identity on the server side, with openssl, curl and the real
# mosquitto clients standing in for devices: enrolment tokens, factory
# provisioning, the broker's ACLs and client-id rules, decommissioning
# (issue 3).  The agent's own tests are t21xx.
. "$(dirname "$0")/lib.sh"

start_fleetd --with-broker
login_admin
check_true "fleetd serves MQTT" test -n "$MQTT_PORT"

# --- offline root: everything below runs without the root key ----------
check "export the root CA key for offline keeping" \
	fleetd ca export-root --state "$FLEETD_STATE" --out "$T/root-offline.pem" --remove
check_true "the root key left the state dir" test ! -e "$FLEETD_STATE/ca/root.key"
check "the export holds the key" openssl pkey -in "$T/root-offline.pem" -noout
check_true "the export is 0600" test "$(stat -c %a "$T/root-offline.pem")" = 600
check_exit 3 "exporting again finds no key" \
	fleetd ca export-root --state "$FLEETD_STATE" --out "$T/again.pem"

# --- enrolment tokens -------------------------------------------------
fleetctl -o json token create line3 --enroll --group line-3 --uses 2 --ttl 1h >"$T/tok.json"
TOK=$(jq -r .token "$T/tok.json")
check "enrolment token has group and uses" jq -e '.kind == "enroll" and .group == "line-3" and .uses == 2' "$T/tok.json"
check_grep '^201$' "enrol dev-a with the token" enroll_curl dev-a "$TOK"
check "issued certificate verifies (openssl verify)" \
	openssl verify -CAfile "$FLEET_CA_FILE" -untrusted "$FLEETD_STATE/ca/issuing.pem" "$T/dev/dev-a.pem"
check_grep 'CN ?= ?dev-a' "certificate CN is the device id" \
	openssl x509 -in "$T/dev/dev-a.pem" -noout -subject
check_grep 'TLS Web Client Authentication' "certificate is for client auth only" \
	openssl x509 -in "$T/dev/dev-a.pem" -noout -ext extendedKeyUsage
check "response names the broker" jq -e ".mqtt_url == \"$MQTT_URL\" and .group == \"line-3\"" "$T/dev/dev-a.resp"
check_grep '^409$' "an enrolled id cannot be taken over" enroll_curl dev-a "$TOK" dev-a thief
check_grep '^400$' "CSR for another id is refused" enroll_curl dev-x "$TOK" dev-y
check_grep 'CN|another|dev-y' "... with a clear error" jq -r .error.message "$T/dev/dev-x.resp"
mkdir -p "$T/dev"; echo "not a csr" >"$T/dev/garbage.csr"
jq -n --arg t "$TOK" --rawfile c "$T/dev/garbage.csr" '{token: $t, id: "dev-g", csr: $c}' >"$T/garbage.req"
check_grep '^400$' "garbage CSR is refused" \
	api POST /api/v1/enroll --data-binary @"$T/garbage.req" -o "$T/garbage.resp" -w '%{http_code}\n'
check_grep '^401$' "unknown token is refused" enroll_curl dev-z flt_bogus
check_grep '^400$' "reserved id fleetd is refused" enroll_curl fleetd "$TOK"
check_grep '^201$' "second use of the token" enroll_curl dev-b "$TOK"
check_grep '^401$' "used-up token is refused" enroll_curl dev-c "$TOK"
check_grep 'used up' "... saying it is used up" jq -r .error.message "$T/dev/dev-c.resp"
fleetctl -o json token create t2 --enroll --uses 5 >"$T/tok2.json"
fleetctl token revoke "$(jq -r .id "$T/tok2.json")"
check_grep '^401$' "revoked enrolment token is refused" enroll_curl dev-c "$(jq -r .token "$T/tok2.json")"
fleetctl -o json token create t3 --enroll --ttl 1h >"$T/tok3.json"
store_sql "UPDATE tokens SET expires = 1000 WHERE id = '$(jq -r .id "$T/tok3.json")'"
check_grep '^401$' "expired enrolment token is refused" enroll_curl dev-c "$(jq -r .token "$T/tok3.json")"
check_exit 2 "operator tokens need a role" fleetctl token create t4
check_exit 2 "--group needs --enroll" fleetctl token create t4 --role viewer --group g

# --- factory provisioning ----------------------------------------------
check "provision dev-p" fleetctl provision dev-p --group line-3 --out "$T/dev-p.tar.gz"
mkdir -p "$T/unpack" && tar -xzf "$T/dev-p.tar.gz" -C "$T/unpack"
for f in key.pem cert.pem chain.pem ca.pem agent.conf; do
	check_true "archive holds $f" test -s "$T/unpack/dev-p/$f"
done
check_true "key in the archive is 0600" test "$(stat -c %a "$T/unpack/dev-p/key.pem")" = 600
check "provisioned cert verifies" openssl verify -CAfile "$T/unpack/dev-p/ca.pem" \
	-untrusted "$T/unpack/dev-p/chain.pem" "$T/unpack/dev-p/cert.pem"
check_grep "$MQTT_PORT" "agent.conf names the broker" cat "$T/unpack/dev-p/agent.conf"
check_exit 5 "provisioning an enrolled id is a conflict" fleetctl provision dev-a --out "$T/x.tar.gz"

# --- mTLS on the HTTPS API ---------------------------------------------
make_csr dev-a-new dev-a
check_grep '^201$' "re-enrol with the device certificate" \
	api POST /api/v1/reenroll --cert "$T/dev/dev-a.pem" --key "$T/dev/dev-a.key" \
	--data-binary "$(jq -n --rawfile c "$T/dev/dev-a-new.csr" '{csr: $c}')" \
	-o "$T/reenroll.json" -w '%{http_code}\n'
check_grep '^400$' "re-enrol for another subject is refused" \
	api POST /api/v1/reenroll --cert "$T/dev/dev-a.pem" --key "$T/dev/dev-a.key" \
	--data-binary "$(jq -n --rawfile c "$T/dev/dev-b.csr" '{csr: $c}')" \
	-o /dev/null -w '%{http_code}\n'
check_grep '^401$' "re-enrol without a certificate is refused" \
	api POST /api/v1/reenroll -d '{}' -o /dev/null -w '%{http_code}\n'
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-keyout "$T/rogue.key" -out "$T/rogue.pem" -subj /CN=dev-a -addext extendedKeyUsage=clientAuth 2>/dev/null
check_grep '^401$' "a certificate from another CA is refused over HTTPS" \
	api POST /api/v1/reenroll --cert "$T/rogue.pem" --key "$T/rogue.key" -d '{}' -o /dev/null -w '%{http_code}\n'

# --- broker: each device writes only its own topics ----------------------
# (what a device may READ is t2003's: one connection per identity there.)
# dev-b holds one session on its own cmd topic; fleetd is the observer
# of presence.  No second connection of any identity is made here: the
# broker forces client id = CN, so two would kick each other off.
mq_sub dev-b -d -t 'fleet/dev-b/cmd' -q 1 >"$T/b.cmd" 2>&1 & B_SUB=$!
track $B_SUB
check "dev-b has a live session (its SUBACK arrived)" \
	wait_until 10 grep -q SUBACK "$T/b.cmd"
mq_pub dev-a -t fleet/dev-b/cmd -q 1 -m '{"id":"x","type":"rotate"}' 2>/dev/null
mq_pub dev-a -t fleet/dev-b/presence -q 1 -r -m '{"online":true,"agent":"forged"}' 2>/dev/null
mq_pub dev-a -i dev-b -t fleet/dev-a/presence -q 1 -r -m '{"online":true,"agent":"test"}'
check_exit 0 "fleetd marked dev-a online (client id is forced to the username)" \
	wait_until 10 sh -c \
	"fleetctl -o json devices list --online | jq -e '.[] | select(.id == \"dev-a\")'"
# positive control for dev-b's session: fleetd's own command reaches it
check "fleetd sends dev-b a rotate" fleetctl -o json rotate dev-b
check "... and dev-b's session receives it" \
	wait_until 10 grep -q "received PUBLISH.*'fleet/dev-b/cmd'" "$T/b.cmd"
check_true "dev-a's publish to fleet/dev-b/cmd never reached dev-b" \
	test "$(grep -c "received PUBLISH.*'fleet/dev-b/cmd'" "$T/b.cmd")" -eq 1
check_true "... the one it got is fleetd's, not dev-a's" \
	sh -c "! grep -q '\"id\":\"x\"' '$T/b.cmd'"
check "forged presence for dev-b is dropped: fleetd has dev-b offline" sh -c \
	"fleetctl -o json devices show dev-b | jq -e '.online == false'"
check_true "dev-b's session survives dev-a using client id dev-b" kill -0 $B_SUB
check "devices list filters by group" sh -c \
	"fleetctl -o json devices list --group line-3 | jq -e 'length == 3'"
check "devices label" fleetctl devices label dev-a site=berlin rack=7
check "devices list filters by label" sh -c \
	"fleetctl -o json devices list --label site=berlin | jq -e 'length == 1 and .[0].id == \"dev-a\"'"
check "devices label removes" fleetctl devices label dev-a -rack
check "devices show" sh -c "fleetctl -o json devices show dev-a | jq -e '.labels == {\"site\": \"berlin\"} and .cert_serial != null and .cert_expires != null'"
check_exit 3 "devices show unknown is not found" fleetctl devices show nope
check_exit 1 "positive control: the broker accepts dev-a's own certificate" \
	mq_refused -h "$MQTT_HOST" -p "$MQTT_PORT" -V 5 --cafile "$FLEET_CA_FILE" \
	--cert "$T/dev/dev-a.pem" --key "$T/dev/dev-a.key" -t fleet/dev-a/status -m '{}'
check_exit 0 "a certificate from another CA is refused by the broker" \
	mq_refused -h "$MQTT_HOST" -p "$MQTT_PORT" --cafile "$FLEET_CA_FILE" \
	--cert "$T/rogue.pem" --key "$T/rogue.key" -t fleet/dev-a/presence -m x

# --- decommission ------------------------------------------------------
mq_sub dev-a -d -t fleet/dev-a/cmd -q 1 >"$T/a-live.out" 2>&1 & A_LIVE=$!
track $A_LIVE
check "dev-a has a live session (its SUBACK arrived)" \
	wait_until 10 grep -q SUBACK "$T/a-live.out"
check_true "... and it is still up" kill -0 $A_LIVE
SERIAL=$(fleetctl -o json devices show dev-a | jq -r .cert_serial)
check "decommission dev-a" fleetctl devices decommission dev-a
if wait_until 5 sh -c "! kill -0 $A_LIVE"; then pass "dev-a's live session ended within 5 s"
else fail "dev-a's live session still up 5 s after decommission"; fi
check_exit 0 "dev-a cannot reconnect" mq_refused -h "$MQTT_HOST" -p "$MQTT_PORT" \
	-V 5 --cafile "$FLEET_CA_FILE" --cert "$T/dev/dev-a.pem" --key "$T/dev/dev-a.key" \
	-t fleet/dev-a/presence -m '{"online":true}'
check_grep '^401$' "HTTPS refuses dev-a's certificate" \
	api POST /api/v1/reenroll --cert "$T/dev/dev-a.pem" --key "$T/dev/dev-a.key" \
	--data-binary "$(jq -n --rawfile c "$T/dev/dev-a-new.csr" '{csr: $c}')" -o /dev/null -w '%{http_code}\n'
check_grep "$(echo "$SERIAL" | tr a-f A-F)" "old serial is in the CRL" \
	openssl crl -in "$FLEETD_STATE/ca/crl.pem" -noout -text
check_true "dev-b still works" kill -0 $B_SUB
check_exit 3 "decommissioning twice is not found" fleetctl devices decommission dev-a
# dev-b's identity serves as the observer below: one connection at a time
kill "$B_SUB" 2>/dev/null
fleetd_online() {
	mosquitto_sub -h "$MQTT_HOST" -p "$MQTT_PORT" -V 5 --cafile "$FLEET_CA_FILE" \
		--cert "$T/dev/dev-b.pem" --key "$T/dev/dev-b.key" \
		-t fleet/fleetd/presence -C 1 -W 3 | grep -q '"online":true'
}
check_exit 0 "devices see fleetd's retained online presence" wait_until 20 fleetd_online

# The supervised broker dies: fleetd restarts it and reconnects by itself.
OLD=$(pgrep -f "mosquitto -c $FLEETD_STATE/broker/mosquitto.conf")
kill -9 "$OLD"
check_exit 0 "fleetd restarts a broker that died" wait_until 15 sh -c \
	"pgrep -f 'mosquitto -c $FLEETD_STATE/broker/mosquitto.conf' | grep -vx '$OLD'"
check_exit 0 "fleetd reconnects and sees presence again" wait_until 40 sh -c \
	"mosquitto_pub -h $MQTT_HOST -p $MQTT_PORT -V 5 --cafile '$FLEET_CA_FILE' \
	 --cert '$T/dev/dev-b.pem' --key '$T/dev/dev-b.key' -q 1 -r \
	 -t fleet/dev-b/presence -m '{\"online\":true}' &&
	 fleetctl -o json devices list --online | jq -e '.[] | select(.id == \"dev-b\")'"
check_grep 'acl_file|require_certificate' "broker-config writes a config" \
	sh -c "fleetd broker-config --state '$FLEETD_STATE' --listen 127.0.0.1:1 && cat '$FLEETD_STATE/broker/mosquitto.conf'"
finish
