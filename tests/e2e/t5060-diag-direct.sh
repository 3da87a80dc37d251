#!/usr/bin/env bash
# diag --direct with technicians' certificates (issue 12, docs/diagnostics.md
# "Direct, on site"): a real fleetd, mosquitto and fleet-agent.  fleetctl
# technician issue makes the certificate bundle; fleetctl diag --direct
# asks the device through the broker, no fleetd; with mosquitto_pub/sub on
# the technicians' certificates, the broker lets a technician publish
# diag requests and read its own answers, nothing else; revoked and
# expired certificates are refused.  The broker forces client id = CN, so
# each identity has one connection at a time (alice's and bob's apart).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
sim_device dev-a
agent_start_sim dev-a
wait_until 30 dev_online dev-a || fail "dev-a comes online"

# --- bad arguments: exit 2, nothing asked --------------------------------
check_exit 2 "issue without --out" fleetctl technician issue alice
check_exit 2 "a name with capitals" fleetctl technician issue Alice --out "$T/x.tgz"
check_exit 2 "a name with a dot" fleetctl technician issue a.b --out "$T/x.tgz"
check_exit 2 "a ttl over 24h" fleetctl technician issue alice --ttl 25h --out "$T/x.tgz"
check_exit 2 "a ttl under 10s" fleetctl technician issue alice --ttl 5s --out "$T/x.tgz"
check_exit 2 "revoke of a bad name" fleetctl technician revoke 'x/y'
check_exit 2 "--direct without --cert-bundle" fleetctl diag --direct dev-a ping
check_grep 'needs --cert-bundle' "... says what is missing" fleetctl diag --direct dev-a ping
check_exit 2 "--direct with a fan-out" fleetctl diag --direct --cert-bundle "$T/x.tgz" --all ping
check_exit 2 "--cert-bundle without --direct" fleetctl diag --cert-bundle "$T/x.tgz" dev-a ping
check_true "nothing was written" test ! -e "$T/x.tgz"
check_exit 3 "--direct with a missing bundle" fleetctl diag --direct --cert-bundle "$T/x.tgz" dev-a ping

# --- who may issue --------------------------------------------------------
TECH=$(fleetctl -o json token create field --role technician | jq -r .token)
check_exit 4 "a technician token may not issue certificates" \
	fleetctl --token "$TECH" technician issue eve --out "$T/eve.tgz"
check_exit 4 "... nor list them" fleetctl --token "$TECH" technician list

# --- issue ----------------------------------------------------------------
# a write that fails after fleetd issued (RLIMIT_FSIZE of 1 KiB) revokes
small_fs() { (trap '' XFSZ; ulimit -f 1; exec "$@"); }
check_exit 1 "an archive that cannot be written fails (exit 1)" \
	small_fs fleetctl technician issue alice --out "$T/alice.tgz"
cp "$T/last.out" "$T/undo.out"
check_grep 'certificate of alice was revoked' "... and the certificate is revoked" cat "$T/undo.out"
check_true "... no archive is left" test ! -e "$T/alice.tgz"
check "issue alice (default ttl 8h)" fleetctl -q technician issue alice --out "$T/alice.tgz"
check "issue bob" fleetctl -q technician issue bob --ttl 2h --out "$T/bob.tgz"
check_grep '^600$' "the bundle is 0600" stat -c %a "$T/alice.tgz"
check_grep '^-rw------- .*tech-alice/key.pem$' "the key inside is 0600" tar -tvzf "$T/alice.tgz"
unpack() { mkdir -p "$T/$1" && tar -xzf "$T/$1.tgz" -C "$T/$1"; }
check "unpack alice's bundle" unpack alice
check "unpack bob's bundle" unpack bob
AL=$T/alice/tech-alice BO=$T/bob/tech-bob
check_grep 'CN ?= ?tech-alice' "alice's certificate names tech-alice" \
	openssl x509 -in "$AL/cert.pem" -noout -subject
life() { echo $(($(date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s))); }
check_true "alice's certificate lives 8 h" test "$(life "$AL/cert.pem")" -gt 28000 -a "$(life "$AL/cert.pem")" -le 28800
check_true "bob's lives 2 h" test "$(life "$BO/cert.pem")" -le 7200
check_grep "\"broker\": \"$MQTT_URL\"" "the bundle names the broker" cat "$AL/technician.json"
check_exit 5 "a second certificate for alice while hers is valid" \
	fleetctl technician issue alice --out "$T/alice2.tgz"
check_grep '^alice +valid ' "technician list (table) shows alice valid" fleetctl technician list
check "technician list -o json" sh -c "fleetctl -o json technician list >'$T/list.json'"
check "... bob valid, with his serial" jq -e \
	".[] | select(.name == \"bob\") | .state == \"valid\" and .serial == \"$(openssl x509 -in "$BO/cert.pem" -noout -serial | cut -d= -f2 | tr A-F a-f | sed 's/^0*//')\"" "$T/list.json"
audit() { api GET /api/v1/audit -H "Authorization: Bearer $ADMIN_TOKEN"; }
audited() { audit | jq -e '([.[] | select(.path == "/api/v1/technicians" and .status == 201 and .detail.technician == "alice" and .detail.ttl_s == 28800 and (.actor | startswith("token:")))] | length == 2) and ([.[] | select(.path == "/api/v1/technicians/alice/revoke" and .status == 200 and (.detail.revoked | length == 1))] | length == 1)'; }
check "issue and revocation are audited with caller and detail" audited
check_grep '^401$' "fleetd's HTTPS refuses a technician certificate" \
	api GET /api/v1/roots --cert "$BO/cert.pem" --key "$BO/key.pem" -o /dev/null -w '%{http_code}\n'

# --- diag --direct: same output as through fleetd -------------------------
direct() { local who=$1; shift; fleetctl diag --direct --cert-bundle "$T/$who.tgz" "$@"; }
check_grep '^  pong: yes' "direct ping (table) answers pong" direct alice dev-a ping
check_grep '^device: +dev-a' "... naming the device" direct alice dev-a ping
sysinfo_json() { direct alice -o json dev-a sysinfo >"$T/sys.json"; }
check "direct sysinfo -o json" sysinfo_json
check "... with this machine's kernel" jq -e ".ok == true and .device == \"dev-a\" and .result.kernel == \"$(uname -r)\"" "$T/sys.json"
check_exit 1 "an unknown check: exit 1, the device's error" direct alice dev-a nosuch
check_grep 'unknown check' "... which says so" direct alice dev-a nosuch
check_exit 7 "a device nobody answers for: exit 7 at the timeout" \
	direct alice --timeout 2s ghost ping
check_exit 8 "no broker at --broker: exit 8" direct alice --broker mqtts://127.0.0.1:1 dev-a ping
# a listener that accepts and never speaks: --timeout bounds the handshake too
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(120)' >"$T/mute.port" &
track $!
wait_until 10 test -s "$T/mute.port" || fail "the mute listener starts"
SECONDS=0
check_exit 8 "a broker that never answers: exit 8 at --timeout" \
	direct alice --broker "mqtts://127.0.0.1:$(cat "$T/mute.port")" --timeout 2s dev-a ping
check_true "... after about 2 s, not a TCP timeout" test "$SECONDS" -lt $((10 * WAIT_SCALE))

# --- the broker's acl, with mosquitto_pub/sub on the certificates ---------
tq() { local who=$1 d; d=$T/$who/tech-$who; shift
	printf '%s\n' -h "$MQTT_HOST" -p "$MQTT_PORT" -V 5 --cafile "$FLEET_CA_FILE" \
		--cert "$d/cert.pem" --key "$d/key.pem"; }
mapfile -t BOBQ < <(tq bob)
mapfile -t ALQ < <(tq alice)
# bob: ONE connection subscribed to his own answers and to what he may not read
stdbuf -oL mosquitto_sub "${BOBQ[@]}" -d -v -q 1 \
	-t 'fleet/+/diag/resp/tech-bob' -t 'fleet/+/diag/resp/tech-alice' \
	-t 'fleet/+/status' -t 'fleet/dev-a/events' -t 'fleet/dev-a/cmd' \
	-t 'fleet/+/diag/resp/fleetd' -t '#' >"$T/bob.out" 2>&1 &
BOB=$!
track $BOB
check_exit 0 "bob's subscriptions were answered" wait_until 10 grep -q 'SUBACK' "$T/bob.out"
check_grep 'Subscribed \(mid: [0-9]+\): 1, 135, 135, 135, 135, 135, 135' \
	"... his own answers granted, the rest refused (not authorized)" cat "$T/bob.out"
check "alice's direct ping answered while bob listens" direct alice dev-a ping
check "a command through fleetd (rollback) while bob listens" fleetctl -q rollback --device dev-a
check_exit 0 "... reaches the device: its job ends" wait_until 30 sh -c \
	"fleetctl -o json jobs list | jq -e '[.[] | select(.device == \"dev-a\" and .final)] | length >= 1'"
check_grep 'received PUBACK \(Mid: 1, RC:135\)' "alice may not publish a command (broker: not authorized)" \
	mosquitto_pub "${ALQ[@]}" -d -q 1 -t fleet/dev-a/cmd -m '{"id":"evil-1"}'
check_grep 'received PUBACK \(Mid: 1, RC:135\)' "... nor a retained diag request" \
	mosquitto_pub "${ALQ[@]}" -d -q 1 -r -t fleet/dev-a/diag/req -m '{"check":"ping"}'
check_grep 'received PUBACK \(Mid: 1, RC:135\)' "... nor a device's status" \
	mosquitto_pub "${ALQ[@]}" -d -q 1 -t fleet/dev-a/status -m '{}'
check_grep 'received PUBACK \(Mid: 1, RC:135\)' "... nor a request to fleetd" \
	mosquitto_pub "${ALQ[@]}" -d -q 1 -t fleet/fleetd/diag/req -m '{"check":"ping"}'
check_exit 0 "the device saw no command from alice" sh -c "! grep -q 'bad command' '$A/agent.log'"
# positive control for bob's connection: alice asks dev-a to answer on bob's topic
check_grep 'received PUBACK \(Mid: 1, RC:0\)' "alice may publish a diag request" \
	mosquitto_pub "${ALQ[@]}" -d -q 1 -t fleet/dev-a/diag/req \
	-D publish response-topic fleet/dev-a/diag/resp/tech-bob \
	-D publish correlation-data c-1 -m '{"check":"ping"}'
check_exit 0 "bob's same connection received the answer on his topic" \
	wait_until 10 grep -q '^fleet/dev-a/diag/resp/tech-bob ' "$T/bob.out"
check_true "bob's subscriber is still the one connection" kill -0 $BOB
kill $BOB
check_exit 1 "bob read no answer of alice's" grep -q '^fleet/dev-a/diag/resp/tech-alice' "$T/bob.out"
check_exit 1 "bob read no status" grep -q '^fleet/[^ ]*/status' "$T/bob.out"
check_exit 1 "bob read no events, commands or fleetd's answers" \
	grep -Eq '^fleet/dev-a/(events|cmd)|^fleet/[^ ]*/diag/resp/fleetd' "$T/bob.out"

# --- revocation: refused, and the live session is ended -----------------
stdbuf -oL mosquitto_sub "${ALQ[@]}" -d -q 1 -t 'fleet/+/diag/resp/tech-alice' \
	>"$T/alice-sub.out" 2>&1 &
ASUB=$!
track $ASUB
check_exit 0 "alice holds a session" wait_until 10 grep -q 'SUBACK' "$T/alice-sub.out"
check "technician revoke alice" fleetctl -q technician revoke alice
check_exit 0 "... her live session was ended" wait_until 10 \
	grep -q 'Client tech-alice been disconnected by administrative action' \
	"$FLEETD_STATE/broker/mosquitto.log"
kill $ASUB 2>/dev/null
check_exit 0 "... a new connection with her certificate is refused" \
	mq_refused "${ALQ[@]}" -q 1 -t fleet/dev-a/diag/req -m '{"check":"ping"}'
check_exit 4 "... and diag --direct with it exits 4" direct alice dev-a ping
check "bob still works (positive control)" direct bob dev-a ping
check_grep '^alice +revoked ' "technician list (table) shows alice revoked" fleetctl technician list
check_exit 3 "revoking alice again: nothing to revoke" fleetctl technician revoke alice

# --- expiry ---------------------------------------------------------------
check "issue carol for 15 s" fleetctl -q technician issue carol --ttl 15s --out "$T/carol.tgz"
check "unpack carol's bundle" unpack carol
mapfile -t CAQ < <(tq carol)
check_exit 1 "carol's fresh certificate is accepted (control)" \
	mq_refused "${CAQ[@]}" -q 1 -t fleet/dev-a/diag/req -m '{"check":"ping"}'
check_exit 0 "carol's certificate expires" wait_until 30 sh -c \
	"! openssl x509 -in '$T/carol/tech-carol/cert.pem' -noout -checkend 0"
check_exit 0 "the broker refuses it once expired" \
	mq_refused "${CAQ[@]}" -q 1 -t fleet/dev-a/diag/req -m '{"check":"ping"}'
check_exit 4 "diag --direct with it exits 4" direct carol dev-a ping
check_grep 'expired' "... saying it expired" direct carol dev-a ping
check_grep '^carol +expired ' "technician list shows carol expired" fleetctl technician list
check "a new certificate for carol once hers expired" \
	fleetctl -q technician issue carol --out "$T/carol2.tgz"

finish
