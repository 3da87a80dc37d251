#!/usr/bin/env bash
# fleetd's HTTPS: TLS 1.2 offers forward-secret AEAD suites only, and a
# flood of unauthenticated requests cannot grow the audit log without
# limit (issue 8, item 9).
. "$(dirname "$0")/lib.sh"

start_fleetd
HOSTPORT=${FLEET_URL#https://}

# s_client VERSION CIPHER: complete a handshake (exit 0) or not (exit 1)
s_client() {
	local v=$1
	shift
	echo | timeout 10 openssl s_client -connect "$HOSTPORT" "$v" -CAfile "$FLEET_CA_FILE" \
		-verify_return_error "$@"
}
for c in ECDHE-ECDSA-AES128-SHA ECDHE-ECDSA-AES256-SHA ECDHE-ECDSA-AES128-SHA256 \
	ECDHE-RSA-AES128-SHA AES128-SHA AES128-GCM-SHA256; do
	check_exit 1 "TLS 1.2 refuses $c" s_client -tls1_2 -cipher "$c"
done
for c in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 \
	ECDHE-ECDSA-CHACHA20-POLY1305; do
	check_grep "Cipher is $c" "TLS 1.2 with $c works" s_client -tls1_2 -cipher "$c"
done
check_grep 'TLSv1.3' "TLS 1.3 works" s_client -tls1_3
check_exit 1 "TLS 1.1 is refused" s_client -tls1_1

# --- audit flood: 30 unauthenticated POSTs from one address --------------
urls=()
for _ in $(seq 30); do urls+=(-o /dev/null "$FLEET_URL/api/v1/tokens"); done
curl -sS --max-time 60 --cacert "$FLEET_CA_FILE" -X POST -d '{}' \
	-w '%{http_code}\n' "${urls[@]}" >"$T/flood.codes"
check_true "the 30 unauthenticated POSTs were answered, 401 each (positive control)" \
	test "$(grep -c '^401$' "$T/flood.codes")" = 30
check_grep '^401$' "one unauthenticated POST from 127.0.0.2" \
	curl -sS --max-time 10 --interface 127.0.0.2 --cacert "$FLEET_CA_FILE" -X POST \
	-d '{}' -o /dev/null -w '%{http_code}\n' "$FLEET_URL/api/v1/tokens"
login_admin
for i in 1 2 3; do fleetctl -o json token create "op$i" --role viewer >/dev/null 2>&1; done
api GET "/api/v1/audit?limit=1000" -H "Authorization: Bearer $ADMIN_TOKEN" >"$T/audit.json"
anon() { jq "[.[] | select(.actor == \"anonymous\" and .remote == \"$1\" ${2:-})] | length" "$T/audit.json"; }
check_true "the flooding address got 10 audit rows of its refusals" \
	test "$(anon 127.0.0.1 'and .status == 401')" = 10
check_true "... and one marker saying the rest is counted" \
	test "$(anon 127.0.0.1 'and .status == 429')" = 1
check_true "... and no more" test "$(anon 127.0.0.1)" = 11
check_true "another address keeps its own audit rows" \
	test "$(anon 127.0.0.2 'and .status == 401')" = 1
check "authenticated calls are audited one by one" \
	jq -e '[.[] | select(.actor | startswith("token:")) | select(.method == "POST" and .status == 201)] | length == 3' \
	"$T/audit.json"

# the count of the refusals not recorded is written when the window ends,
# at the latest when fleetd stops
kill -TERM "$FLEETD_PID"
wait_until 20 sh -c "! kill -0 $FLEETD_PID" || fail "fleetd did not stop"
check_grep '^1\|\(20 refused requests not recorded: audit rate limit\)$' \
	"fleetd recorded how many refusals it did not record" \
	store_sql "SELECT count(*), path FROM audit WHERE remote = '127.0.0.1'
	AND path LIKE '(%refused requests not recorded%' GROUP BY path"
finish
