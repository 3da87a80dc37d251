#!/usr/bin/env bash
# Foundation: fleetctl -> fleetd over real HTTPS.  Login, whoami, roles,
# bad and revoked tokens, malformed and oversized bodies, audit, server
# down (issue 2).
. "$(dirname "$0")/lib.sh"

check_exit 0 "fleetctl --help" fleetctl --help
check_exit 2 "unknown command is a usage error" fleetctl frobnicate
check_exit 2 "whoami without a server is a usage error" fleetctl whoami

start_fleetd
check_exit 5 "fleetd init refuses an initialised state dir" \
	fleetd init --state "$FLEETD_STATE"
check_true "state dir is 0700" test "$(stat -c %a "$FLEETD_STATE")" = 700

check "login with the admin token" fleetctl login --server "$FLEET_URL" \
	--ca "$FLEET_CA_FILE" --token "$ADMIN_TOKEN"
check_true "config file is 0600" test "$(stat -c %a "$FLEETCTL_CONFIG")" = 600
check_grep '^role: +admin' "whoami after login" fleetctl whoami
check "-o json whoami is valid JSON" \
	sh -c 'fleetctl -o json whoami | jq -e ".role == \"admin\" and .kind == \"token\""'

# A viewer may read but not create tokens.
fleetctl -o json token create viewer1 --role viewer >"$T/viewer.json"
VIEWER=$(jq -r .token "$T/viewer.json")
VIEWER_ID=$(jq -r .id "$T/viewer.json")
check_true "token create returns a token" test -n "$VIEWER" -a "$VIEWER" != null
check_grep '^role: +viewer' "viewer whoami" fleetctl --token "$VIEWER" whoami
check_exit 4 "viewer cannot create tokens (exit 4)" \
	fleetctl --token "$VIEWER" token create x --role admin
check_grep '^403$' "viewer token create is HTTP 403" \
	api POST /api/v1/tokens -H "Authorization: Bearer $VIEWER" \
	-d '{"name":"x","role":"admin"}' -o /dev/null -w '%{http_code}\n'
check_exit 2 "unknown role is a usage error before any request" \
	fleetctl token create x --role
check_exit 1 "server refuses an unknown role" \
	fleetctl token create x --role superuser

# Bad, revoked and expired tokens are 401 and exit 4.
check_exit 4 "bad token (exit 4)" fleetctl --token flt_nope whoami
check_grep '^401$' "bad token is HTTP 401" \
	api GET /api/v1/whoami -H "Authorization: Bearer flt_nope" \
	-o /dev/null -w '%{http_code}\n'
check_grep '^401$' "missing token is HTTP 401" \
	api GET /api/v1/whoami -o /dev/null -w '%{http_code}\n'
check "revoke the viewer token" fleetctl token revoke "$VIEWER_ID"
check_exit 4 "revoked token (exit 4)" fleetctl --token "$VIEWER" whoami
check_grep 'revoked' "revoked token says so" fleetctl --token "$VIEWER" whoami
check_exit 3 "revoking an unknown token is not found (exit 3)" \
	fleetctl token revoke 0123456789abcdef
fleetctl -o json token create short --role operator --ttl 1h >"$T/short.json"
store_sql \
	"UPDATE tokens SET expires = 1000 WHERE id = '$(jq -r .id "$T/short.json")'"
check_exit 4 "expired token (exit 4)" \
	fleetctl --token "$(jq -r .token "$T/short.json")" whoami
check "token list shows revocation" \
	sh -c "fleetctl -o json token list | jq -e '.[] | select(.id == \"$VIEWER_ID\") | .revoked == true'"

# Malformed and oversized bodies: clear JSON errors, server keeps serving.
AUTH="Authorization: Bearer $ADMIN_TOKEN"
check_grep '"code":"bad_request"' "malformed JSON is 400 bad_request" \
	api POST /api/v1/tokens -H "$AUTH" -d '{"name": "x", ' -w ' %{http_code}'
check_grep ' 400$' "malformed JSON status 400" \
	api POST /api/v1/tokens -H "$AUTH" -d '[1,2' -w ' %{http_code}'
check_grep ' 400$' "JSON that is not an object is 400" \
	api POST /api/v1/tokens -H "$AUTH" -d '[1,2]' -w ' %{http_code}'
head -c 200000 /dev/zero | tr '\0' 'a' >"$T/big"
check_grep '"code":"too_large".* 413$' "oversized body is 413" \
	api POST /api/v1/tokens -H "$AUTH" --data-binary @"$T/big" -w ' %{http_code}'
check_grep ' 413$' "oversized chunked body is 413" \
	api POST /api/v1/tokens -H "$AUTH" -H 'Transfer-Encoding: chunked' \
	--data-binary @"$T/big" -w ' %{http_code}'
check_grep '"status":"ok"' "server still serving after bad bodies" api GET /healthz
check_grep ' 404$' "unknown endpoint is 404" api GET /api/v1/nope -H "$AUTH" -w ' %{http_code}'
check_grep ' 405$' "wrong method is 405" api PUT /api/v1/tokens -H "$AUTH" -w ' %{http_code}'
check_grep '"version"' "version endpoint" api GET /api/v1/version

# Every mutating call is audited, refusals included.
api GET "/api/v1/audit?limit=1000" -H "$AUTH" >"$T/audit.json"
check "audit has the viewer's refused POST" \
	jq -e "[.[] | select(.method == \"POST\" and .status == 403 and .actor == \"token:$VIEWER_ID\")] | length >= 1" "$T/audit.json"
check "audit has the revoke" \
	jq -e "[.[] | select(.method == \"DELETE\" and .status == 200)] | length == 1" "$T/audit.json"
check "audit has no GETs" jq -e '[.[] | select(.method == "GET")] | length == 0' "$T/audit.json"

# Environment overrides the config file.
fleetctl -o json token create op1 --role operator >"$T/op.json"
check_grep '^role: +operator' "FLEET_TOKEN overrides the context" \
	env FLEET_TOKEN="$(jq -r .token "$T/op.json")" fleetctl whoami
check_grep '^role: +admin' "flags and env without any config" \
	env FLEETCTL_CONFIG="$T/none" FLEET_SERVER="$FLEET_URL" \
	FLEET_CA="$FLEET_CA_FILE" FLEET_TOKEN="$ADMIN_TOKEN" fleetctl whoami

# A server certificate from another CA is refused (pinned CA).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/other.key" -out "$T/other.pem" -subj /CN=other -days 1 2>/dev/null
check_exit 4 "server not matching the pinned CA is refused" \
	fleetctl --ca "$T/other.pem" whoami

# Clean shutdown on SIGTERM; then the server is unreachable (exit 8).
kill -TERM "$FLEETD_PID"
if wait_until 10 sh -c "! kill -0 $FLEETD_PID"; then
	wait "$FLEETD_PID"
	check_exit 0 "fleetd exits 0 on SIGTERM" sh -c "exit $?"
else
	fail "fleetd did not stop on SIGTERM"
fi
check_exit 8 "server down (exit 8)" fleetctl whoami
finish
