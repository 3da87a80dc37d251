#!/usr/bin/env bash
# A device's HTTPS request is recognised by its certificate's digest
# (issue 10): fleetd records the SHA-256 of every certificate its CA
# issues (enrolment, re-enrolment) and takes a certificate it knows by
# that digest without verifying it again, judging it by its row
# (revoked, validity, device active).  A certificate it has no digest
# for (issued before digests were kept) is verified as before; one from
# another CA, or revoked, or of a decommissioned device, is refused.
. "$(dirname "$0")/lib.sh"

start_fleetd
login_admin
q() { store_sql "$1"; }
der_sha() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
# GET /api/v1/roots as device ID with its certificate STEM: the status
roots_as() {
	api GET /api/v1/roots --cert "$T/dev/$1.pem" --key "$T/dev/$1.key" \
		-o /dev/null -w '%{http_code}\n'
}

TOK=$(fleetctl -o json token create d --enroll --uses 2 --ttl 1h | jq -r .token)
check_grep '^201$' "enrol dev-a" enroll_curl dev-a "$TOK"
check_grep '^201$' "enrol dev-b" enroll_curl dev-b "$TOK"
SERIAL=$(openssl x509 -in "$T/dev/dev-a.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)
check_grep "$SERIAL" "fleetctl devices show (table) names dev-a's serial" \
	fleetctl devices show dev-a
check_true "fleetd recorded the digest of the certificate it issued" \
	test "$(q "SELECT sha256 FROM certs WHERE device = 'dev-a'")" = "$(der_sha "$T/dev/dev-a.pem")"
check_grep '^200$' "dev-a's request is accepted" roots_as dev-a

# the row decides for a certificate known by its digest: a not_before
# in the future refuses it (the certificate itself is valid: a
# verification would accept it)
q "UPDATE certs SET not_before = not_before + 86400 WHERE device = 'dev-a'"
check_grep '^401$' "a known certificate is judged by its row (not valid yet there)" \
	roots_as dev-a
q "UPDATE certs SET not_before = not_before - 86400 WHERE device = 'dev-a'"
check_grep '^200$' "... and accepted again with the row as issued" roots_as dev-a

# issued before digests were kept: verified, and accepted
q "UPDATE certs SET sha256 = NULL WHERE device = 'dev-b'"
check_grep '^200$' "a certificate without a recorded digest is verified and accepted" \
	roots_as dev-b

# another CA, the same subject: unknown digest, and it does not verify
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-keyout "$T/dev/rogue.key" -out "$T/dev/rogue.pem" -subj /CN=dev-a \
	-addext extendedKeyUsage=clientAuth 2>/dev/null
check_grep '^401$' "a certificate from another CA for dev-a is refused" roots_as rogue

# re-enrolment: the new certificate is recorded with its digest too
make_csr dev-a-new dev-a
check_grep '^201$' "re-enrol dev-a" \
	api POST /api/v1/reenroll --cert "$T/dev/dev-a.pem" --key "$T/dev/dev-a.key" \
	--data-binary "$(jq -n --rawfile c "$T/dev/dev-a-new.csr" '{csr: $c}')" \
	-o "$T/reenroll.json" -w '%{http_code}\n'
jq -r .cert "$T/reenroll.json" >"$T/dev/dev-a-new.pem"
check_true "... its new certificate's digest is recorded" \
	test "$(q "SELECT count(*) FROM certs WHERE sha256 = '$(der_sha "$T/dev/dev-a-new.pem")'")" = 1
check_grep '^200$' "... and the new certificate is accepted" roots_as dev-a-new
check_grep '^200$' "confirm the new certificate" \
	api POST /api/v1/reenroll/confirm --cert "$T/dev/dev-a-new.pem" \
	--key "$T/dev/dev-a-new.key" -d '{}' -o /dev/null -w '%{http_code}\n'
check_grep '^401$' "the old certificate, now revoked, is refused" roots_as dev-a
check_grep '^200$' "positive control: the new one is still accepted" roots_as dev-a-new

check "decommission dev-a" fleetctl devices decommission dev-a
check_grep '^401$' "a decommissioned device's known certificate is refused" roots_as dev-a-new
finish
