#!/usr/bin/env bash
# A client that finishes its TLS handshake with a device certificate and
# only then waits must not get into the broker once that certificate is
# revoked, by decommission or by a confirmed rotation (issue 8).  mosquitto
# checks the CRL only in the handshake; fleet_revoke.so checks it on every
# publish, subscribe and delivery and denies the client everything (no kick:
# a kick goes by client id, which the device's valid new session may hold).
. "$(dirname "$0")/lib.sh"

start_fleetd --with-broker
login_admin
TOK=$(fleetctl -o json token create late --enroll --uses 10 --ttl 1h | jq -r .token)
for d in dev-ok dev-dec dev-rot; do
	check_grep '^201$' "enrol $d" enroll_curl "$d" "$TOK"
done

# late ID STEM: handshake with $T/dev/STEM.{pem,key} now, CONNECT as ID
# (subscribing to fleetd's retained presence, publishing a status) once
# $T/STEM.go exists; output in $T/STEM.out.
late() {
	local id=$1 stem=$2
	python3 "$(dirname "$0")/mqtt_late.py" "$MQTT_HOST" "$MQTT_PORT" \
		"$FLEET_CA_FILE" "$T/dev/$stem.pem" "$T/dev/$stem.key" "$id" \
		"$T/$stem.ready" "$T/$stem.go" fleet/fleetd/presence \
		"fleet/$id/status" "{\"firmware\":\"6.6.6-$stem\"}" 5 \
		>"$T/$stem.out" 2>&1 &
	track $!
	wait_until 20 test -e "$T/$stem.ready" || fail "$stem: no TLS handshake"
}
firmware() { as_admin -o json devices show "$1" | jq -r '.firmware // empty'; }

# --- positive control: a late CONNECT with a valid certificate ----------
late dev-ok dev-ok
touch "$T/dev-ok.go"
check "control: the late client connects" wait_until 20 grep -q '^connack 0$' "$T/dev-ok.out"
check "control: it may subscribe to fleetd's presence" wait_until 20 grep -q '^suback 0$' "$T/dev-ok.out"
check "control: it receives the retained presence" \
	wait_until 20 grep -q '^msg fleet/fleetd/presence ' "$T/dev-ok.out"
check "control: its status reaches fleetd" \
	wait_until 20 sh -c "fleetctl -o json devices show dev-ok | jq -e '.firmware == \"6.6.6-dev-ok\"'"

# --- decommissioned while waiting -------------------------------------
late dev-dec dev-dec
check "decommission dev-dec" as_admin devices decommission dev-dec
check "the CRL lists dev-dec" wait_until 20 sh -c \
	"openssl crl -in '$FLEETD_STATE/ca/crl.pem' -noout -text | grep -qi \
	 \"\$(openssl x509 -in '$T/dev/dev-dec.pem' -noout -serial | cut -d= -f2)\""
check "the broker reloaded the CRL" wait_until 20 grep -q 'fleet_revoke: [1-9][0-9]* revoked' \
	"$FLEETD_STATE/broker/mosquitto.log"
touch "$T/dev-dec.go"
check "the decommissioned client's session ends" \
	wait_until 30 grep -qxE 'closed|timeout' "$T/dev-dec.out"
check_true "it received no message" sh -c "! grep -q '^msg' '$T/dev-dec.out'"
check_true "its subscription was not granted" sh -c "! grep -q '^suback 0$' '$T/dev-dec.out'"
check_grep 'denied .*client dev-dec: certificate revoked' "the plugin denied it" \
	cat "$FLEETD_STATE/broker/mosquitto.log"

# --- rotated and confirmed while waiting -------------------------------
cp "$T/dev/dev-rot.pem" "$T/dev/dev-rot-old.pem"; cp "$T/dev/dev-rot.key" "$T/dev/dev-rot-old.key"
late dev-rot dev-rot-old
make_csr dev-rot-new dev-rot
check_grep '^201$' "dev-rot re-enrols" \
	api POST /api/v1/reenroll --cert "$T/dev/dev-rot.pem" --key "$T/dev/dev-rot.key" \
	--data-binary "$(jq -n --rawfile c "$T/dev/dev-rot-new.csr" '{csr: $c}')" \
	-o "$T/reenroll.json" -w '%{http_code}\n'
jq -r .cert "$T/reenroll.json" >"$T/dev/dev-rot-new.pem"
check_grep '^20[04]$' "dev-rot confirms with the new certificate" \
	api POST /api/v1/reenroll/confirm --cert "$T/dev/dev-rot-new.pem" \
	--key "$T/dev/dev-rot-new.key" -d '{}' -o /dev/null -w '%{http_code}\n'
check "the CRL lists dev-rot's old certificate" wait_until 20 sh -c \
	"openssl crl -in '$FLEETD_STATE/ca/crl.pem' -noout -text | grep -qi \
	 \"\$(openssl x509 -in '$T/dev/dev-rot-old.pem' -noout -serial | cut -d= -f2)\""
n=$(grep -c 'fleet_revoke: [0-9]* revoked' "$FLEETD_STATE/broker/mosquitto.log")
check "the broker reloaded the CRL again" wait_until 20 sh -c \
	"[ \$(grep -c 'fleet_revoke: [0-9]* revoked' '$FLEETD_STATE/broker/mosquitto.log') -gt $n ] ||
	 grep -q 'fleet_revoke: 2 revoked' '$FLEETD_STATE/broker/mosquitto.log'"
touch "$T/dev-rot-old.go"
check "the old certificate's session ends" \
	wait_until 30 grep -qxE 'closed|timeout' "$T/dev-rot-old.out"
check_true "it received no message" sh -c "! grep -q '^msg' '$T/dev-rot-old.out'"
check_true "its subscription was not granted" sh -c "! grep -q '^suback 0$' '$T/dev-rot-old.out'"
check_grep 'denied .*client dev-rot: certificate revoked' "the plugin denied it" \
	cat "$FLEETD_STATE/broker/mosquitto.log"
# The late client published its status at least its 5 s listen window
# before its session ended (waited for above), as dev-ok's did, which
# reached fleetd (the positive control at the top).
check_true "its status never reached fleetd" sh -c "[ \"\$(fleetctl -o json devices show dev-rot | jq -r '.firmware // empty')\" != 6.6.6-dev-rot-old ]"
check "dev-rot's new certificate still gets in" \
	mq_pub dev-rot-new -t fleet/dev-rot/status -q 1 -m '{"firmware":"2.0.0"}'
rot_new() { [ "$(firmware dev-rot)" = 2.0.0 ]; }
check "... and its status reaches fleetd" wait_until 20 rot_new
finish
