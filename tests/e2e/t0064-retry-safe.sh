#!/usr/bin/env bash
# Retry-safe requests (issue 14, fleetd's idem.h, docs/api.md
# "Retries"): a request that changes state, sent again with the same
# Idempotency-Key, gets its first answer and is carried out once.  Through
# a TLS front that loses fleetd's first answers (tls_lose_reply.py, as a
# balancer or a network cut after the work was done), fleetctl's retry
# gets the token the first try made (one token, its secret works) and a
# revoke done by the lost try answers 0, not 404.  With curl: the replay
# is marked, a key on another request is refused, another sender's key is
# its own, and a kept answer holds no token secret in the database.
. "$(dirname "$0")/lib.sh"

start_fleetd
PX=$(free_port)
(exec python3 "$FLEET_SRC/tests/e2e/tls_lose_reply.py" "$PX" "${FLEET_URL##*:}" \
	"$FLEETD_STATE/tls/server.pem" "$FLEETD_STATE/tls/server.key" 2 "$T/px.log" \
	>"$T/px.out" 2>&1) &
track $!
check "the front listens" wait_until 10 grep -q listening "$T/px.out"
via_front() {
	fleetctl --server "https://127.0.0.1:$PX" --ca "$FLEET_CA_FILE" \
		--token "$ADMIN_TOKEN" "$@"
}
named() { # named NAME N: N tokens not revoked are named NAME
	as_admin -o json token list | jq -e --arg n "$1" --argjson c "$2" \
		'[.[] | select(.name == $n and .revoked != true)] | length == $c'
}

# --- fleetctl through a front that loses the first answer ----------------
front_create() { via_front -o json token create ci-bot --role viewer >"$T/tok.json"; }
check_exit 0 "token create through the front: exit 0" front_create
check "the front lost the first answer, and the same request went again with the same key" \
	jq -Rse 'split("\n") | map(select(length > 0) | split(" ")) |
		length == 2 and .[0][0] == "POST" and .[0][1] == "/api/v1/tokens" and
		.[0][3] == "lost" and .[1][3] == "sent" and .[1][4] == "201" and
		.[0][2] == .[1][2] and (.[0][2] | length) == 32' "$T/px.log"
check "one token named ci-bot (the retry did not make a second)" named ci-bot 1
check_grep 'ci-bot +operator +viewer' "... in the table too" as_admin token list
SECRET=$(jq -r '.token // empty' "$T/tok.json")
check_exit 0 "the secret the retry printed is the first try's token: it works" \
	fleetctl --server "$FLEET_URL" --ca "$FLEET_CA_FILE" --token "$SECRET" whoami
ID=$(jq -r '.id // empty' "$T/tok.json")
check_exit 0 "token revoke through the front (its first answer lost): exit 0" \
	via_front token revoke "$ID"
check "... it was lost once and sent again with one key" \
	jq -Rse --arg p "/api/v1/tokens/$ID" 'split("\n") | map(select(length > 0) | split(" ")) |
		map(select(.[1] == $p)) | length == 2 and .[0][3] == "lost" and
		.[1][3] == "sent" and .[1][4] == "200" and .[0][2] == .[1][2]' "$T/px.log"
check "... and the token is revoked" named ci-bot 0

# --- the server's side, with curl -----------------------------------------
KEY=0123456789abcdef-first-key
mk() { # mk NAME KEY [TOKEN]: POST /tokens, headers to $T/h, body out
	api POST /api/v1/tokens -H "Authorization: Bearer ${3:-$ADMIN_TOKEN}" \
		${2:+-H "Idempotency-Key: $2"} -D "$T/h" \
		-d "{\"name\":\"$1\",\"role\":\"viewer\"}"
}
mk curl-a "$KEY" >"$T/a1.json"
check "a first request with a key: made (201)" grep -q '^HTTP/1.1 201' "$T/h"
check_exit 1 "... not marked as a replay" grep -qi '^Idempotent-Replayed' "$T/h"
mk curl-a "$KEY" >"$T/a2.json"
check "the same request with the same key: 201 again" grep -q '^HTTP/1.1 201' "$T/h"
check "... marked Idempotent-Replayed: true" grep -qi '^Idempotent-Replayed: true' "$T/h"
check "... with the first answer, secret and all" cmp "$T/a1.json" "$T/a2.json"
check "... and one token named curl-a" named curl-a 1
mk curl-b "$KEY" >"$T/b.json"
check "the key on a different request: 422" grep -q '^HTTP/1.1 422' "$T/h"
check "... key_reused, nothing made" bash -c \
	"jq -e '.error.code == \"key_reused\"' '$T/b.json' && ! grep -q curl-b <<<\"\$(fleetctl --server '$FLEET_URL' --ca '$FLEET_CA_FILE' --token '$ADMIN_TOKEN' token list)\""
OTHER=$(jq -r .token "$T/a1.json")
as_admin token create op2 --role admin -o json >"$T/op2.json"
mk curl-a "$KEY" "$(jq -r .token "$T/op2.json")" >"$T/a3.json"
check "another sender's same key is its own: a new token (201, not a replay)" sh -c \
	"grep -q '^HTTP/1.1 201' '$T/h' && ! grep -qi '^Idempotent-Replayed' '$T/h' && ! cmp -s '$T/a1.json' '$T/a3.json'"
check "... two tokens named curl-a now" named curl-a 2
mk curl-c abc >"$T/c.json"
check "a key too short: 400, nothing made" sh -c \
	"grep -q '^HTTP/1.1 400' '$T/h' && jq -e '.error.message | test(\"Idempotency-Key\")' '$T/c.json'"
mk curl-d "" >/dev/null
mk curl-d "" >/dev/null
check "positive control: without a key, the same request twice makes two" named curl-d 2

# --- what the store keeps ---------------------------------------------------
check "the store keeps sealed answers (one per key used)" \
	test "$(store_sql "SELECT count(*) FROM idempotency WHERE answer IS NOT NULL")" -ge 4
check "... and no token secret in them" bash -c \
	"! grep -qF -e '$SECRET' -e '$OTHER' <<<\"\$(store_sql 'SELECT answer FROM idempotency')\""
check "... nor the keys themselves" bash -c \
	"! grep -qF '$KEY' <<<\"\$(store_sql 'SELECT id_hash, request_hash, answer FROM idempotency')\""
finish
