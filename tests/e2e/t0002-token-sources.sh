#!/usr/bin/env bash
# Tokens out of argv (issue 8 item 8): an argument is visible to every
# user in ps(1), so fleetctl (global and login) and fleet-agent enroll
# also take the token from the environment, from a file and from stdin.
# Each source is checked with the right token (exit 0) and a wrong one
# (exit 4), so a source that is silently ignored cannot pass.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
S=(--server "$FLEET_URL" --ca "$FLEET_CA_FILE")
umask 077
printf '%s\n' "$ADMIN_TOKEN" >"$T/admin.tok"
printf 'flt_wrong0000000000000000\n' >"$T/wrong.tok"
: >"$T/empty.tok"
is_admin() { "$@" -o json whoami | jq -e '.role == "admin"' >/dev/null; }

# --- fleetctl, global options -------------------------------------------------
check_exit 0 "positive control: --token (argv) still works" \
	fleetctl "${S[@]}" --token "$ADMIN_TOKEN" whoami
check_exit 4 "... and a wrong one is refused (exit 4)" \
	fleetctl "${S[@]}" --token flt_wrong whoami
check "--token-file FILE" is_admin fleetctl "${S[@]}" --token-file "$T/admin.tok"
check_exit 4 "--token-file with a wrong token (exit 4)" \
	fleetctl "${S[@]}" --token-file "$T/wrong.tok" whoami
check "--token-file - reads stdin" sh -c \
	"fleetctl --server '$FLEET_URL' --ca '$FLEET_CA_FILE' --token-file - -o json whoami <'$T/admin.tok' | jq -e '.role == \"admin\"'"
check_exit 4 "--token-file - with a wrong token (exit 4)" sh -c \
	"fleetctl --server '$FLEET_URL' --ca '$FLEET_CA_FILE' --token-file - whoami <'$T/wrong.tok'"
check "FLEET_TOKEN" env FLEET_TOKEN="$ADMIN_TOKEN" \
	fleetctl "${S[@]}" -o json whoami
check_exit 4 "FLEET_TOKEN with a wrong token (exit 4)" env FLEET_TOKEN=flt_wrong \
	fleetctl "${S[@]}" whoami
check "FLEET_TOKEN_FILE" env FLEET_TOKEN_FILE="$T/admin.tok" \
	fleetctl "${S[@]}" -o json whoami
check_exit 4 "FLEET_TOKEN_FILE with a wrong token (exit 4)" \
	env FLEET_TOKEN_FILE="$T/wrong.tok" fleetctl "${S[@]}" whoami
check_exit 2 "--token and --token-file together are a usage error" \
	fleetctl "${S[@]}" --token "$ADMIN_TOKEN" --token-file "$T/admin.tok" whoami
check_exit 2 "an empty token file is a usage error" \
	fleetctl "${S[@]}" --token-file "$T/empty.tok" whoami
check_exit 3 "a missing token file is not found (exit 3)" \
	fleetctl "${S[@]}" --token-file "$T/nope.tok" whoami

# --- fleetctl login -------------------------------------------------------------
check_exit 4 "login --token-file with a wrong token (exit 4)" \
	fleetctl login "${S[@]}" --token-file "$T/wrong.tok"
check_exit 2 "... and nothing was saved: no server configured (exit 2)" fleetctl whoami
check_exit 0 "login --token-file - (stdin)" sh -c \
	"fleetctl login --server '$FLEET_URL' --ca '$FLEET_CA_FILE' --token-file - <'$T/admin.tok'"
check "... the saved context works" is_admin fleetctl
check_exit 0 "login with FLEET_TOKEN" env FLEET_TOKEN="$ADMIN_TOKEN" \
	fleetctl login "${S[@]}" --context envctx
check "... the saved context works" is_admin fleetctl --context envctx
check_exit 0 "login --token-file FILE" fleetctl login "${S[@]}" --context filectx \
	--token-file "$T/admin.tok"
check "... the saved context works" is_admin fleetctl --context filectx

# --- fleet-agent enroll -------------------------------------------------------
TOK=$(as_admin -o json token create src --enroll --uses 10 --ttl 1h | jq -r .token)
printf '%s\n' "$TOK" >"$T/enroll.tok"
enroll() { # enroll ID ARGS...: fleet-agent enroll without --token
	local id=$1 d
	d=$(agent_dir "$id")
	shift
	mkdir -p "$d"
	fleet-agent enroll --server "$FLEET_URL" --ca "$FLEET_CA_FILE" \
		--id "$id" --state "$d/state" --config "$d/agent.conf" "$@"
}
check_exit 0 "positive control: enroll --token-file FILE" enroll dev-f --token-file "$T/enroll.tok"
enroll_stdin() { enroll "$1" --token-file - <"$2"; }
enroll_env() { (export FLEET_ENROLL_TOKEN=$1; enroll "$2"); }
check_exit 0 "enroll --token-file - (stdin)" enroll_stdin dev-s "$T/enroll.tok"
check_exit 4 "enroll --token-file - with a wrong token (exit 4)" \
	enroll_stdin dev-x "$T/wrong.tok"
check_exit 0 "enroll with FLEET_ENROLL_TOKEN" enroll_env "$TOK" dev-e
check_exit 4 "FLEET_ENROLL_TOKEN with a wrong token (exit 4)" \
	enroll_env fle_wrong dev-y
check_exit 2 "enroll with no token at all is a usage error" enroll dev-z
for d in dev-f dev-s dev-e; do
	check_exit 0 "fleetd knows $d" as_admin devices show "$d"
done
for d in dev-x dev-y; do
	check_exit 3 "fleetd does not know $d" as_admin devices show "$d"
done
finish
