#!/usr/bin/env bash
# Automatic renewal (issue 3): with a 2-minute certificate life the agent
# renews by itself at 2/3 of the life (with jitter), stays online, and
# fleetd revokes the old certificate; a second agent with auto_renew off
# keeps its certificate.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

FLEETD_CONF=$'[ca]\ndevice_lifetime = 2m'
start_fleetd --with-broker
login_admin
TOK=$(fleetctl -o json token create short --enroll --uses 2 --ttl 1h | jq -r .token)

check "enroll dev-r" agent_enroll dev-r "$TOK"
check "enroll dev-s" agent_enroll dev-s "$TOK"
R=$(agent_dir dev-r)
S=$(agent_dir dev-s)
printf '[identity]\nauto_renew = no\n' >>"$S/agent.conf"
check "the certificate lives about 3 minutes from notBefore" sh -c \
	"fleet-agent status -o json --config '$R/agent.conf' | jq -e '
	 ((.cert_expires | fromdateiso8601) - (.cert_not_before | fromdateiso8601)) == 180'"
check "status shows the renewal window at 2/3 of the life, +-10 %" sh -c \
	"fleet-agent status -o json --config '$R/agent.conf' | jq -e '
	 ((.renew_from | fromdateiso8601) - (.cert_not_before | fromdateiso8601)) == 108 and
	 ((.renew_until | fromdateiso8601) - (.cert_not_before | fromdateiso8601)) == 132'"
OLD_R=$(agent_serial dev-r)
OLD_S=$(agent_serial dev-s)
agent_start dev-r
agent_start dev-s
wait_until 15 dev_online dev-r || fail "dev-r online"
wait_until 15 dev_online dev-s || fail "dev-s online"

renewed() { [ "$(agent_serial dev-r)" != "$OLD_R" ]; }
# renewal is due 48..72 s after issue; allow for slow machines
if wait_until 110 renewed; then pass "dev-r renewed its certificate unaided"
else fail "dev-r renewed its certificate unaided"; fi
NEW_R=$(agent_serial dev-r)
check_true "fleetd records the new certificate" test "$(dev_serial dev-r)" = "$NEW_R"
if wait_until 20 sh -c "fleetctl -o json devices show dev-r | jq -e '.active_certs == [\"$NEW_R\"]'"; then
	pass "the old certificate is revoked after the agent confirmed"
else fail "the old certificate is revoked after the agent confirmed"; fi
# the event follows the confirm (which waits for the broker's reload)
check "the renewal event reached fleetd" wait_until $((10 * WAIT_SCALE)) sh -c \
	"fleetctl -o json devices show dev-r | jq -e '.last_event | .type == \"rotate\" and .state == \"succeeded\" and .trigger == \"renewal\" and .cmd == null'"
if wait_until 15 dev_online dev-r; then pass "dev-r is online on its new certificate"
else fail "dev-r is online on its new certificate"; fi
check_true "no confirmation is owed" test ! -e "$R/state/confirm.json"
check_true "dev-s (auto_renew = no) kept its certificate" test "$(agent_serial dev-s)" = "$OLD_S"
check_grep 'renewing certificate' "dev-r logged the renewal" cat "$R/agent.log"
check_true "dev-r is still running" kill -0 "${AGENT_PID[dev-r]}"
agent_stop dev-r
agent_stop dev-s
finish
