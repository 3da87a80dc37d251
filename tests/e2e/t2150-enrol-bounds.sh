#!/usr/bin/env bash
# Re-enrolment is bounded and only the newest certificate counts (issue 8
# items 2, 4, 6, 9), with curl and the real mosquitto clients standing in
# for a device:
#  - a burst of re-enrolments: the first ones work, then 429 with
#    Retry-After; one pending certificate at a time; the CRL stays small;
#  - confirming with the superseded (old) certificate is refused and
#    revokes nothing; the new one confirms, and the broker session that
#    still runs on the old certificate is closed and cannot come back;
#  - a device decommissioned while its re-enrolment body is still on its
#    way gets no certificate;
#  - a decommissioned id cannot be enrolled again, by any token;
#  - a decommission whose CRL cannot be written changes nothing.
. "$(dirname "$0")/lib.sh"

FLEETD_CONF=$'[ca]\nreenroll_per_hour = 3'
start_fleetd --with-broker
login_admin
TOK=$(fleetctl -o json token create bounds --enroll --group g1 --uses 10 --ttl 1h | jq -r .token)
OTHER=$(fleetctl -o json token create other --enroll --group g2 --uses 5 --ttl 1h | jq -r .token)
db() { store_sql "$1"; }
crl_count() { openssl crl -in "$FLEETD_STATE/ca/crl.pem" -noout -text | grep -c 'Serial Number:'; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr A-F a-f; }

# reenroll STEM NEWSTEM: re-enrol with $T/dev/STEM.{pem,key} for a new key
# NEWSTEM; prints the HTTP status; headers in $T/NEWSTEM.hdr.
reenroll() {
	make_csr "$2" dev-a
	api POST /api/v1/reenroll --cert "$T/dev/$1.pem" --key "$T/dev/$1.key" \
		--data-binary "$(jq -n --rawfile c "$T/dev/$2.csr" '{csr: $c}')" \
		-D "$T/$2.hdr" -o "$T/dev/$2.resp" -w '%{http_code}\n'
	jq -r '.cert // empty' "$T/dev/$2.resp" >"$T/dev/$2.pem"
}
# confirm STEM: POST reenroll/confirm with that certificate
confirm() {
	api POST /api/v1/reenroll/confirm --cert "$T/dev/$1.pem" --key "$T/dev/$1.key" \
		-d '{}' -o "$T/confirm-$1.json" -w '%{http_code}\n'
}

check_grep '^201$' "enrol dev-a" enroll_curl dev-a "$TOK"
A0=$(serial_of "$T/dev/dev-a.pem")

# --- the old certificate's live broker session (positive control) -------
mq_sub dev-a -t fleet/dev-a/cmd -q 1 >"$T/a0.msgs" 2>"$T/a0.err" & A0_SUB=$!
track $A0_SUB
got_rotate() { grep -q '"rotate"' "$1"; }
# a command sent before the subscription is lost: send until one arrives
gets_cmd() { fleetctl -o json rotate dev-a >/dev/null && wait_until 1 got_rotate "$1"; }
check_exit 0 "dev-a's old-certificate session is live: it gets its cmd" \
	wait_until 10 gets_cmd "$T/a0.msgs"

# --- a burst: 2 re-enrolments work, then 429 ---------------------------
check_grep '^201$' "first re-enrolment works" reenroll dev-a a1
A1=$(serial_of "$T/dev/a1.pem")
check_grep '^201$' "second re-enrolment works" reenroll dev-a a2
A2=$(serial_of "$T/dev/a2.pem")
check_grep '^401$' "the superseded pending certificate is revoked (HTTPS refuses it)" \
	reenroll a1 a1x
check_grep '^429$' "third re-enrolment within the hour is refused: 429" reenroll dev-a a3
check_grep '^Retry-After: [0-9]+' "... with Retry-After" cat "$T/a3.hdr"
check_grep 'too_many_requests' "... and error code too_many_requests" cat "$T/dev/a3.resp"
check_exit 22 "curl --fail exits 22 on the 429" \
	curl -sS --fail --max-time 20 --cacert "$FLEET_CA_FILE" -X POST \
	"$FLEET_URL/api/v1/reenroll" --cert "$T/dev/dev-a.pem" --key "$T/dev/dev-a.key" \
	--data-binary "$(jq -n --rawfile c "$T/dev/a3.csr" '{csr: $c}')" -o /dev/null
n429=0
for i in $(seq 1 20); do
	[ "$(reenroll dev-a burst)" = 429 ] && n429=$((n429 + 1))
done
check_true "a burst of 20 more gets 20 times 429 ($n429)" test "$n429" -eq 20
check_true "the device has 3 certificates in all" test "$(db "SELECT count(*) FROM certs WHERE device = 'dev-a'")" -eq 3
check_true "exactly one pending certificate, the newest" \
	test "$(db "SELECT min(serial) || '/' || count(*) FROM certs WHERE device = 'dev-a' AND pending = 1 AND revoked = 0")" = "$A2/1"
check_true "the CRL holds only the superseded one ($(crl_count))" test "$(crl_count)" -eq 1
check_grep "$(echo "$A1" | tr a-f A-F)" "... which is a1" openssl crl -in "$FLEETD_STATE/ca/crl.pem" -noout -text

# --- confirm: only the newest pending certificate ------------------------
check_grep '^403$' "confirming with the old certificate is refused: 403" confirm dev-a
check "... and revokes nothing: a2 and the old one are still valid" sh -c \
	"fleetctl -o json devices show dev-a | jq -e '.active_certs | sort == ([\"$A0\", \"$A2\"] | sort)'"
check_true "the old-certificate session survives the refused confirm" kill -0 $A0_SUB
check_grep '^200$' "confirming with the new certificate works" confirm a2
check "... and revokes the old one" jq -e ".revoked == [\"$A0\"]" "$T/confirm-a2.json"
# No kick (it would hit the device's new session, same client id): once
# the broker reloaded the CRL, fleet_revoke.so denies the old session
# everything; a command fleetd sends now must not reach it.
check_exit 0 "the broker reloaded the CRL with the old certificate" \
	wait_until 10 grep -q 'fleet_revoke: 2 revoked' "$FLEETD_STATE/broker/mosquitto.log"
: >"$T/a0.msgs"
check "fleetd sends dev-a a command" fleetctl -o json rotate dev-a
check_exit 0 "... which the old-certificate session is denied" \
	wait_until 10 grep -q 'denied .*client dev-a: certificate revoked' \
	"$FLEETD_STATE/broker/mosquitto.log"
check_true "... and does not get" sh -c "! got_rotate '$T/a0.msgs'"
kill $A0_SUB 2>/dev/null
check_exit 2 "the old certificate is in the CRL (openssl verify)" \
	openssl verify -crl_check -CRLfile "$FLEETD_STATE/ca/crl.pem" \
	-CAfile "$FLEETD_STATE/ca/trust.pem" "$T/dev/dev-a.pem"
# mosquitto_pub says 1 (protocol error) or 7 (connection lost) depending
# on when the broker drops the refused handshake; the broker's log says why
tls_refused() { grep -c 'certificate verify failed' "$FLEETD_STATE/broker/mosquitto.log"; }
before=$(tls_refused)
mq_pub dev-a -t fleet/dev-a/status -q 1 -m '{}' >"$T/a0-again.out" 2>&1
rc=$?
check_true "the old certificate cannot reconnect to the broker (exit $rc)" \
	test "$rc" -eq 1 -o "$rc" -eq 7
check_exit 0 "... refused in the TLS handshake" \
	wait_until 5 sh -c "[ \$(grep -c 'certificate verify failed' '$FLEETD_STATE/broker/mosquitto.log') -gt $before ]"
cp "$T/dev/a2.key" "$T/dev/dev-a2.key"; cp "$T/dev/a2.pem" "$T/dev/dev-a2.pem"
: >"$T/a2.msgs"
mq_sub dev-a2 -t fleet/dev-a/cmd -q 1 >"$T/a2.msgs" 2>"$T/a2.err" & A2_SUB=$!
track $A2_SUB
check_exit 0 "the new certificate connects and gets dev-a's commands" \
	wait_until 15 gets_cmd "$T/a2.msgs"
check_grep '^200$' "a repeated confirm is harmless" confirm a2
check "... and revokes nothing" jq -e '.revoked == []' "$T/confirm-a2.json"
kill $A2_SUB 2>/dev/null

# --- decommissioned while the re-enrolment body is on its way -------------
check_grep '^201$' "enrol dev-b" enroll_curl dev-b "$TOK"
make_csr b1 dev-b
jq -n --rawfile c "$T/dev/b1.csr" '{csr: $c}' >"$T/b1.body"
mkfifo "$T/b1.fifo"
# curl sends the headers with Expect: 100-continue; fleetd authenticates
# dev-b and answers 100 only then, and the body follows once we say so.
curl -sS -v --max-time 60 --cacert "$FLEET_CA_FILE" -X POST -T - \
	-H 'Content-Type: application/json' -H 'Expect: 100-continue' \
	--cert "$T/dev/dev-b.pem" --key "$T/dev/dev-b.key" \
	"$FLEET_URL/api/v1/reenroll" -o "$T/b1.resp" -w '%{http_code}\n' \
	<"$T/b1.fifo" >"$T/b1.code" 2>"$T/b1.err" & B1=$!
track $B1
exec 7>"$T/b1.fifo"
printf '%s' '{"csr":' >&7
check_exit 0 "fleetd accepted dev-b's headers (100 Continue)" \
	wait_until 10 grep -q '100 Continue' "$T/b1.err"
check "decommission dev-b meanwhile" fleetctl -o json devices decommission dev-b
jq -c .csr "$T/b1.body" >&7
printf '}' >&7
exec 7>&-
wait $B1
# fleetd authorises again when the handler runs: dev-b is no longer active
check_grep '^401$' "the pending re-enrolment is refused: 401" cat "$T/b1.code"
check_true "... and fleetd recorded no certificate for it" \
	test "$(db "SELECT count(*) FROM certs WHERE device = 'dev-b' AND revoked = 0")" -eq 0

# --- a decommissioned id cannot be claimed again ---------------------------
check_grep '^409$' "a token of another group cannot enrol decommissioned dev-b" \
	enroll_curl dev-b "$OTHER" dev-b b-again
check_grep 'decommissioned' "... saying why" jq -r .error.message "$T/dev/b-again.resp"
check_grep '^409$' "nor a token of its own group" enroll_curl dev-b "$TOK" dev-b b-again2
check_true "... and dev-b stays decommissioned, in g1" test \
	"$(fleetctl -o json devices show dev-b | jq -r '.state + " " + .group')" = "decommissioned g1"
check_grep '^201$' "a fresh id enrols with the same token (positive control)" \
	enroll_curl dev-c "$OTHER"

# --- a decommission whose CRL cannot be published changes nothing ---------
CRL=$FLEETD_STATE/ca/crl.pem
cp "$CRL" "$T/crl.saved"
rm -f "$CRL" && mkdir "$CRL"   # the CRL path is now a directory: no write
check_exit 1 "decommission dev-c fails when the CRL cannot be written" \
	fleetctl devices decommission dev-c
check "... and dev-c is still active" sh -c \
	"fleetctl -o json devices show dev-c | jq -e '.state == \"active\" and (.active_certs | length) == 1'"
rmdir "$CRL" && cp "$T/crl.saved" "$CRL"
check "with the CRL writable again, decommission dev-c works" fleetctl -o json devices decommission dev-c
check_grep "$(serial_of "$T/dev/dev-c.pem" | tr a-f A-F)" "... and its certificate is in the CRL" \
	openssl crl -in "$CRL" -noout -text
finish
