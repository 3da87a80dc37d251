#!/usr/bin/env bash
# The server certificate's names (issue 8, item 17): `fleetd init --san`
# puts a name in it, and `fleetd cert server --san` reissues it later
# from the same CA for a server that gained a name, so clients that pin
# ca.pem reach it by the new name after a restart.
. "$(dirname "$0")/lib.sh"

FLEETD_INIT_ARGS="--san fleet-a.test"
start_fleetd
PORT=${FLEET_URL##*:}
# curl pinned to the CA, reaching 127.0.0.1 by NAME
by_name() {
	curl -sS --max-time 10 --cacert "$FLEET_CA_FILE" \
		--resolve "$1:$PORT:127.0.0.1" -o /dev/null -w '%{http_code}\n' \
		"https://$1:$PORT/api/v1/whoami" -H "Authorization: Bearer $ADMIN_TOKEN"
}
check_grep '^200$' "init --san: fleet-a.test is in the certificate" by_name fleet-a.test
check_exit 60 "fleet-b.test is not (curl: certificate name mismatch)" by_name fleet-b.test

check_exit 2 "cert needs the 'server' verb" fleetd cert --state "$FLEETD_STATE"
check_exit 2 "cert server needs --state" fleetd cert server --san x
check_exit 3 "cert server of a missing state dir is not found (exit 3)" \
	fleetd cert server --state "$T/nostate" --san x
OLD_CA=$(sha256sum <"$FLEET_CA_FILE")
check_grep 'fleet-b\.test' "cert server --san fleet-a.test --san fleet-b.test --san 10.9.8.7" \
	fleetd cert server --state "$FLEETD_STATE" --san fleet-a.test --san fleet-b.test \
	--san 10.9.8.7
check_true "the pinned CA is unchanged" test "$(sha256sum <"$FLEET_CA_FILE")" = "$OLD_CA"
check_grep 'DNS:fleet-b\.test' "the new certificate names fleet-b.test" \
	openssl x509 -in "$FLEETD_STATE/tls/server.pem" -noout -ext subjectAltName
check_grep 'IP Address:10\.9\.8\.7' "... and the IP address" \
	openssl x509 -in "$FLEETD_STATE/tls/server.pem" -noout -ext subjectAltName
check "... and verifies against ca.pem" sh -c \
	"openssl verify -CAfile '$FLEET_CA_FILE' -untrusted '$FLEETD_STATE/tls/server.pem' '$FLEETD_STATE/tls/server.pem'"

# restart on the same port: both names work, and the admin token still does
kill -TERM "$FLEETD_PID"
wait "$FLEETD_PID" 2>/dev/null
fleetd serve --state "$FLEETD_STATE" --listen "127.0.0.1:$PORT" >"$T/fleetd2.out" 2>"$T/fleetd2.log" &
FLEETD_PID=$!
track "$FLEETD_PID"
wait_until 30 grep -q '^ready ' "$T/fleetd2.out" || fail "fleetd restarts"
check_grep '^200$' "after a restart fleet-b.test is served" by_name fleet-b.test
check_grep '^200$' "... and fleet-a.test still is" by_name fleet-a.test
check_grep '^200$' "... and 127.0.0.1" by_name 127.0.0.1
finish
