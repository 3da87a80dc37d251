#!/usr/bin/env bash
# The last admin token cannot be revoked (issue 8, item 13); 'fleetd
# token create' is the local recovery path, with fleetd running or
# stopped.  'fleetd serve --listen' takes HOST:PORT with a real port or
# exits 2 (item 16).
. "$(dirname "$0")/lib.sh"

start_fleetd
login_admin
whoami() { api GET /api/v1/whoami -H "Authorization: Bearer $1"; }
ADMIN_ID=$(whoami "$ADMIN_TOKEN" | jq -r .id)
revoke_as() { fleetctl --token "$1" token revoke "$2"; }

# tokens that do not count as a way back in: a viewer, an expired admin, a
# revoked admin
fleetctl -o json token create ro --role viewer >/dev/null 2>&1
EXP_ID=$(fleetctl -o json token create old-admin --role admin --ttl 1h 2>/dev/null | jq -r .id)
store_sql "UPDATE tokens SET expires = $(($(date +%s) - 1)) WHERE id = '$EXP_ID'"
REV_ID=$(fleetctl -o json token create gone-admin --role admin 2>/dev/null | jq -r .id)
check "revoking another admin token works while one remains" fleetctl token revoke "$REV_ID"

check_exit 5 "the last admin token cannot revoke itself" revoke_as "$ADMIN_TOKEN" "$ADMIN_ID"
check_grep 'last admin token' "... saying why" revoke_as "$ADMIN_TOKEN" "$ADMIN_ID"
check_grep '"role": *"admin"' "... and it still works" whoami "$ADMIN_TOKEN"
check_true "... and it is not revoked" \
	test "$(store_sql "SELECT revoked FROM tokens WHERE id = '$ADMIN_ID'")" = 0

# positive control: with a second admin token the first may go
SECOND=$(fleetctl -o json token create second --role admin 2>/dev/null | jq -r .token)
SECOND_ID=$(whoami "$SECOND" | jq -r .id)
check "with a second admin token the first can be revoked" revoke_as "$SECOND" "$ADMIN_ID"
check_grep 'revoked' "... and is refused afterwards" whoami "$ADMIN_TOKEN"
check_exit 5 "now the second one is the last and cannot revoke itself" \
	revoke_as "$SECOND" "$SECOND_ID"

# --- local recovery while fleetd runs ------------------------------------
check_exit 2 "fleetd token create refuses an unknown role" \
	fleetd token create --state "$FLEETD_STATE" --role root
check_exit 2 "fleetd token create needs --state" fleetd token create
fleetd token create --state "$FLEETD_STATE" --name rescue >"$T/rescue.out" 2>"$T/rescue.err"
check_true "fleetd token create prints only the token on stdout" \
	test "$(wc -l <"$T/rescue.out")" = 1
RESCUE=$(cat "$T/rescue.out")
check_grep '"role": *"admin"' "the recovery token is an admin token fleetd accepts at once" \
	whoami "$RESCUE"
check "with it, the second admin token can be revoked" revoke_as "$RESCUE" "$SECOND_ID"
check_grep '^local:fleetd$' "the token records its local creator" \
	store_sql "SELECT created_by FROM tokens WHERE name = 'rescue'"
VIEW=$(fleetd token create --state "$FLEETD_STATE" --role viewer --name ro2 --ttl 1h 2>/dev/null)
check_grep '"role": *"viewer"' "fleetd token create --role viewer" whoami "$VIEW"

# --- local recovery with fleetd stopped ------------------------------------
kill -TERM "$FLEETD_PID"
wait_until 20 sh -c "! kill -0 $FLEETD_PID" || fail "fleetd did not stop"
check "fleetd token create works with fleetd stopped" sh -c \
	"fleetd token create --state '$FLEETD_STATE' --name offline >'$T/offline.out' 2>/dev/null"
fleetd serve --state "$FLEETD_STATE" --listen 127.0.0.1:0 >"$T/serve2.out" 2>"$T/fleetd2.log" &
track $!
wait_until 30 grep -q '^ready ' "$T/serve2.out" || fail "fleetd did not restart"
FLEET_URL=$(sed -n 's/^ready https=\([^ ]*\).*/\1/p' "$T/serve2.out")
check_grep '"role": *"admin"' "the token made offline works once fleetd runs" \
	whoami "$(cat "$T/offline.out")"

# --- --listen ----------------------------------------------------------------
for l in bogus :99999 127.0.0.1:99999 127.0.0.1:-1 127.0.0.1: 127.0.0.1:8x; do
	check_exit 2 "fleetd serve --listen '$l' is a usage error" \
		timeout 10 fleetd serve --state "$FLEETD_STATE" --listen "$l"
done
check_exit 2 "fleetd serve --mqtt-listen 127.0.0.1:70000 is a usage error" \
	timeout 10 fleetd serve --state "$FLEETD_STATE" --listen 127.0.0.1:0 --with-broker \
	--mqtt-listen 127.0.0.1:70000
check_exit 2 "fleetd broker-config --listen 127.0.0.1:70000 is a usage error" \
	fleetd broker-config --state "$FLEETD_STATE" --listen 127.0.0.1:70000
check_grep 'HOST:PORT' "... with a clear error" \
	timeout 10 fleetd serve --state "$FLEETD_STATE" --listen 127.0.0.1:99999
finish
