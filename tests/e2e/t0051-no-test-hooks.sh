#!/usr/bin/env bash
# Test-only failpoints are compiled only into the test builds (issue 8
# item 9).  FLEETD_FAILPOINTS=reenroll-bad-cert=ID made a production
# fleetd's CA sign device ID's re-enrolment with a throwaway key, and
# FLEET_AGENT_FAILPOINTS stopped a production agent mid-update.  Now
# fleetd and fleet-agent carry neither the names nor the code, and the
# production fleetd issues a normal certificate with the variable set.
# Positive controls: the test builds (fleetd-test, fleet-agent-test) do
# carry them, and fleetd-test with the same variable does hand out the
# rogue certificate.
. "$(dirname "$0")/lib.sh"

hooks='FLEETD_FAILPOINTS|FLEET_AGENT_FAILPOINTS|reenroll-bad-cert|Rogue CA|stopping \(SIGSTOP\)'
for p in fleetd fleet-agent fleet-sim fleetctl; do
	check_exit 1 "$p holds no failpoint names" \
		sh -c "strings '$FLEET_BUILD/$p' | grep -E '$hooks'"
done
for p in fleetd-test fleet-agent-test; do
	check_exit 0 "positive control: $p holds them" \
		sh -c "strings '$FLEET_BUILD/tests/tools/$p' | grep -qE '$hooks'"
done

# reenroll ID with a fresh key as device ID; prints the HTTP status
reenroll() {
	make_csr "$1-new" "$1"
	api POST /api/v1/reenroll --cert "$T/dev/$1.pem" --key "$T/dev/$1.key" \
		--data-binary "$(jq -n --rawfile c "$T/dev/$1-new.csr" '{csr: $c}')" \
		-o "$T/$1.reenroll" -w '%{http_code}\n'
	jq -r .cert "$T/$1.reenroll" >"$T/$1.new.pem"
}
# does ID's re-enrolled certificate chain to this fleetd's CA?
chains() {
	openssl verify -CAfile "$FLEET_CA_FILE" \
		-untrusted "$FLEETD_STATE/ca/issuing.pem" "$T/$1.new.pem"
}

for variant in fleetd fleetd-test; do
	id=dev-$variant
	export FLEETD_FAILPOINTS=reenroll-bad-cert=$id
	FLEETD=$variant start_fleetd
	login_admin
	TOK=$(fleetctl -o json token create "t$id" --enroll --uses 1 --ttl 1h | jq -r .token)
	check_grep '^201$' "$variant: $id enrols" enroll_curl "$id" "$TOK"
	check_grep '^201$' "$variant: $id re-enrols" reenroll "$id"
	if [ "$variant" = fleetd ]; then
		check_exit 0 "production fleetd ignores FLEETD_FAILPOINTS: a certificate of its CA" \
			chains "$id"
	else
		check_exit 2 "positive control: fleetd-test honours it (a rogue certificate)" \
			chains "$id"
		check_grep 'issuer=CN ?= ?Rogue CA' "... signed by the throwaway CA" \
			openssl x509 -in "$T/$id.new.pem" -noout -issuer
	fi
	kill -TERM "$FLEETD_PID"
	wait "$FLEETD_PID"
	rm -rf "$FLEETD_STATE"
done
unset FLEETD_FAILPOINTS
finish
