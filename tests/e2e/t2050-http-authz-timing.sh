#!/usr/bin/env bash
# Authorisation must hold when the handler runs, not only when the
# headers arrive (issue 8, item 2): a request sends its headers and half
# its body, its principal loses its rights (token revoked, token expired,
# device decommissioned), then the body is finished.  Nothing may be
# done.  Positive controls: the same slow requests by principals that
# keep their rights succeed.
. "$(dirname "$0")/lib.sh"

start_fleetd
login_admin
SLOW="python3 $FLEET_SRC/tests/e2e/slowhttp.py"

# slow_start NAME PATH BODYFILE [slowhttp args]: start a slow request in
# the background; returns when its headers and half its body are sent.
slow_start() {
	local name=$1 path=$2 body=$3
	shift 3
	rm -f "$T/$name.ready" "$T/$name.go"
	$SLOW request "$FLEET_URL" "$path" --ca "$FLEET_CA_FILE" \
		--body-file "$body" --ready-file "$T/$name.ready" \
		--go-file "$T/$name.go" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	eval "${name}_pid=$!"
	track $!
	wait_until 20 test -e "$T/$name.ready" || fail "$name: slow request never got going"
}

# slow_finish NAME: send the rest of the body; prints "STATUS BODY".
slow_finish() {
	local pid_var="${1}_pid"
	touch "$T/$1.go"
	wait "${!pid_var}"
	cat "$T/$1.out"
}

mint_body() { jq -n --arg n "$1" '{name: $n, role: "admin"}' >"$T/$1.req"; }
minted() { as_admin -o json token list | jq -e --arg n "$1" 'any(.[]; .name == $n)'; }
new_admin() { as_admin -o json token create "$1" --role admin --ttl 1h 2>/dev/null | jq -r "$2"; }

# --- a token revoked while its request's body is pending ----------------
REV_SECRET=$(new_admin doomed .token)
REV_ID=$(as_admin -o json token list | jq -r '.[] | select(.name == "doomed") | .id')
mint_body minted-by-revoked
slow_start revoked /api/v1/tokens "$T/minted-by-revoked.req" \
	--header "Authorization: Bearer $REV_SECRET"
check "revoke the token while its request is pending" as_admin token revoke "$REV_ID"
check_grep '^401 ' "the pending request of the revoked token is refused" slow_finish revoked
check_exit 1 "... and minted nothing" minted minted-by-revoked

# --- a token that expires while its request's body is pending -----------
EXP_SECRET=$(new_admin expiring .token)
mint_body minted-by-expired
slow_start expired /api/v1/tokens "$T/minted-by-expired.req" \
	--header "Authorization: Bearer $EXP_SECRET"
# the clock is injected: the token's expiry moves into the past
check "expire the token while its request is pending" store_sql \
	"UPDATE tokens SET expires = $(($(date +%s) - 1)) WHERE name = 'expiring'"
check_grep '^401 ' "the pending request of the expired token is refused" slow_finish expired
check_exit 1 "... and minted nothing" minted minted-by-expired

# --- positive control: a token that stays valid ---------------------------
OK_SECRET=$(new_admin steady .token)
mint_body minted-by-steady
slow_start steady /api/v1/tokens "$T/minted-by-steady.req" \
	--header "Authorization: Bearer $OK_SECRET"
check "an unrelated revocation meanwhile" as_admin token revoke \
	"$(as_admin -o json token create bystander --role viewer 2>/dev/null | jq -r .id)"
check_grep '^201 ' "the same slow request by a valid token succeeds" slow_finish steady
check "... and minted its token" minted minted-by-steady

# --- a device decommissioned while its re-enrolment is pending ------------
ENROLL=$(as_admin -o json token create line --enroll --uses 3 2>/dev/null | jq -r .token)
check_grep '^201$' "enrol dev-gone" enroll_curl dev-gone "$ENROLL"
check_grep '^201$' "enrol dev-stays" enroll_curl dev-stays "$ENROLL"
check_grep '^201$' "enrol dev-parked" enroll_curl dev-parked "$ENROLL"
certs() { store_sql "SELECT count(*) FROM certs WHERE device = '$1'"; }
for d in dev-gone dev-stays; do
	make_csr "$d-new" "$d"
	jq -n --rawfile c "$T/dev/$d-new.csr" '{csr: $c}' >"$T/$d-reenroll.req"
done
slow_start gone /api/v1/reenroll "$T/dev-gone-reenroll.req" \
	--cert "$T/dev/dev-gone.pem" --key "$T/dev/dev-gone.key"
check "decommission dev-gone while its re-enrolment is pending" \
	as_admin devices decommission dev-gone
check_grep '^401 ' "the pending re-enrolment of the decommissioned device is refused" \
	slow_finish gone
check_true "... and no certificate was added" test "$(certs dev-gone)" = 1

slow_start stays /api/v1/reenroll "$T/dev-stays-reenroll.req" \
	--cert "$T/dev/dev-stays.pem" --key "$T/dev/dev-stays.key"
check_grep '^201 ' "the same slow re-enrolment by an active device succeeds" slow_finish stays
check_true "... and added its certificate" test "$(certs dev-stays)" = 2

# --- a device that is not active is refused even with a valid certificate --
dev_get() {
	api GET /api/v1/roots --cert "$T/dev/$1.pem" --key "$T/dev/$1.key" \
		-o /dev/null -w '%{http_code}\n'
}
check_grep '^200$' "an active device reads the trust roots" dev_get dev-parked
store_sql \
	"UPDATE devices SET state = 'decommissioned' WHERE id = 'dev-parked'"
check_true "its certificate is still unrevoked" test \
	"$(store_sql "SELECT revoked FROM certs WHERE device = 'dev-parked'")" = 0
check_grep '^401$' "the same device, no longer active, is refused" dev_get dev-parked
finish
