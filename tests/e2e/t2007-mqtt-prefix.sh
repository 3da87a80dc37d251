#!/usr/bin/env bash
# One topic prefix for fleetd, the agent and the broker acl (issue 9,
# item 3): a fleetd with [mqtt] topic_prefix = acme and an agent enrolled
# by it work together (presence, a command and its events), the acl
# confines a device to acme/ID/..., and bad prefixes are refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

# --- bad prefixes: fleetd refuses its config ------------------------------
fleetd init --state "$T/bad" >/dev/null 2>&1 || fail "fleetd init for the bad config"
for p in 'a/b' 'fleet/#' '+' '$SYS' "$(printf 'p%.0s' $(seq 65))"; do
	printf '[mqtt]\ntopic_prefix = %s\n' "$p" >"$T/bad/fleetd.conf"
	check_exit 1 "fleetd refuses topic_prefix '${p:0:12}'" sh -c \
		"fleetd broker-config --state '$T/bad' --listen 127.0.0.1:1 >'$T/bad.out' 2>&1"
	check_grep '\[mqtt\] topic_prefix' "... naming the key" cat "$T/bad.out"
done
check_true "... and wrote no acl" test ! -e "$T/bad/broker/acl"

# --- a fleet under acme/ ---------------------------------------------------
FLEETD_CONF=$(printf '[mqtt]\ntopic_prefix = acme')
start_fleetd --with-broker
login_admin
ACL=$FLEETD_STATE/broker/acl
check_grep '^pattern write acme/%u/status$' "the acl gives devices acme/ID/status" cat "$ACL"
check_grep '^pattern read acme/%u/cmd$' "... and acme/ID/cmd to read" cat "$ACL"
check_grep '^topic readwrite acme/#$' "... and fleetd acme/#" cat "$ACL"
check_exit 1 "... and nothing under fleet/" grep -q 'fleet/' "$ACL"

fleetctl -o json token create acme --enroll --uses 3 >"$T/tok.json"
TOK=$(jq -r .token "$T/tok.json")
A=$(agent_dir dev-a)
check "enrol dev-a" agent_enroll dev-a "$TOK"
check_grep '^topic_prefix = acme$' "agent.conf has the prefix fleetd advertised" \
	cat "$A/agent.conf"
agent_start dev-a
listed_online() {
	fleetctl -o json devices list |
		jq -e '.[] | select(.id == "dev-a") | .online == true'
}
check_exit 0 "fleetctl devices list shows dev-a online (presence heard)" \
	wait_until 15 listed_online
check "a command and its events: rotate dev-a --wait" \
	fleetctl rotate dev-a --wait --timeout $((60 * WAIT_SCALE))s
rotated() {
	dev_json dev-a | jq -e '.last_event | .type == "rotate" and .state == "succeeded"'
}
check_exit 0 "fleetd stored the rotate event from acme/dev-a/events" \
	wait_until 15 rotated

check "factory provisioning under acme" \
	fleetctl provision dev-p --out "$T/dev-p.tar.gz"
check_grep '^topic_prefix = acme$' "... writes the prefix into the archive's agent.conf" \
	tar -xzOf "$T/dev-p.tar.gz" dev-p/agent.conf

# --- the acl confines a device to acme/ID/... ------------------------------
check_grep '^201$' "enrol dev-x over HTTPS" enroll_curl dev-x "$TOK"
check_grep '"topic_prefix": *"acme"' "the enrol answer names the prefix" \
	cat "$T/dev/dev-x.resp"
# (each mosquitto client of dev-x takes over dev-x's one session, so
# publish first, then listen)
check "dev-x publishes a forged offline presence for dev-a" mq_pub dev-x \
	-q 1 -r -t acme/dev-a/presence -m '{"online":false}'
check "dev-x publishes its own status" mq_pub dev-x -q 1 \
	-t acme/dev-x/status -m '{"firmware":"9.9.9","slot":"a","health":"good"}'
x_status() { dev_json dev-x | jq -e '.firmware == "9.9.9"'; }
check_exit 0 "fleetd heard dev-x's status on acme/dev-x/status (positive control)" \
	wait_until 10 x_status
check "... and dev-a is still online: the forged presence was refused" \
	dev_online dev-a
mq_sub dev-x -t '#' -q 1 -v >"$T/x.msgs" 2>"$T/x.err" & X_SUB=$!
track $X_SUB
check_exit 0 "dev-x's subscription is up (it reads fleetd's presence)" \
	wait_until 10 grep -q '^acme/fleetd/presence ' "$T/x.msgs"
agent_stop dev-a
check_exit 0 "dev-a's offline presence reached fleetd while dev-x listened" \
	wait_until 10 dev_offline dev-a
check "fleetd sends dev-x a command" fleetctl -o json rollback --device dev-x
check_exit 0 "dev-x's connection received it on acme/dev-x/cmd (positive control)" \
	wait_until 10 grep -q '^acme/dev-x/cmd ' "$T/x.msgs"
check_true "dev-x's subscriber stayed connected" kill -0 $X_SUB
check_exit 1 "dev-x received nothing of dev-a" grep -q '^acme/dev-a/' "$T/x.msgs"
check_exit 1 "dev-x received nothing but its own topics and fleetd's presence" \
	grep -qv '^acme/dev-x/\|^acme/fleetd/presence ' "$T/x.msgs"
finish
