#!/usr/bin/env bash
# Devices cannot read each other's MQTT traffic (issue 8, item 1).
#
# The broker forces client id = certificate CN, so two connections of one
# identity kick each other off (that is how t2000 missed this): here every
# identity has exactly ONE connection, and the eavesdropper's connection
# proves it was alive (positive control) by receiving its own command
# after the forbidden traffic was published.
. "$(dirname "$0")/lib.sh"

start_fleetd --with-broker
login_admin
fleetctl -o json token create iso --enroll --uses 2 >"$T/tok.json"
TOK=$(jq -r .token "$T/tok.json")
check_grep '^201$' "enrol dev-a" enroll_curl dev-a "$TOK"
check_grep '^201$' "enrol dev-b" enroll_curl dev-b "$TOK"

# dev-b: one long-lived connection subscribed to everything it can name.
mq_sub dev-b -t '#' -t '$SYS/#' -q 1 -v >"$T/b.msgs" 2>"$T/b.err" & B_SUB=$!
track $B_SUB
b_subscribed() { grep -q 'dev-b' "$FLEETD_STATE/broker/mosquitto.log" &&
	grep -q 'fleet/fleetd/presence' "$T/b.msgs"; }
# fleetd's retained presence is what dev-b may read: it arrives first
check_exit 0 "dev-b's connection is up (it reads fleetd's presence)" \
	wait_until 10 b_subscribed

# dev-a: one connection that receives its command and then publishes.
mq_sub dev-a -t fleet/dev-a/cmd -q 1 -C 1 -W 20 >"$T/a.cmd" 2>"$T/a.err" & A_SUB=$!
track $A_SUB
check_exit 0 "dev-a is connected" wait_until 10 \
	grep -q "as dev-a" "$FLEETD_STATE/broker/mosquitto.log"
check "fleetd sends dev-a a command (rollback job)" \
	fleetctl -o json rollback --device dev-a
check_exit 0 "dev-a received its command" wait_until 10 test -s "$T/a.cmd"
# dev-a's traffic after its command: status, events, retained presence
# (mosquitto_pub as dev-a ends dev-a's subscriber session, which is done)
check "dev-a publishes status" mq_pub dev-a -q 1 -t fleet/dev-a/status \
	-m '{"firmware":"1.0.0","slot":"a","health":"good"}'
check "dev-a publishes an event" mq_pub dev-a -q 1 -t fleet/dev-a/events \
	-m '{"seq":1,"type":"boot","state":"running"}'
check "dev-a publishes retained presence" mq_pub dev-a -q 1 -r \
	-t fleet/dev-a/presence -m '{"online":true,"agent":"t2003"}'
check_exit 0 "fleetd saw dev-a's presence (the traffic flowed)" wait_until 10 \
	sh -c "fleetctl -o json devices show dev-a | jq -e '.online == true'"

# Positive control: after all that, dev-b's SAME connection gets its own
# command, so it was connected while dev-a's traffic flowed.
check "fleetd sends dev-b a command" fleetctl -o json rollback --device dev-b
check_exit 0 "dev-b's connection received its own command" wait_until 10 \
	grep -q '^fleet/dev-b/cmd ' "$T/b.msgs"
check_true "dev-b's subscriber never dropped (one connection throughout)" \
	kill -0 $B_SUB
check_exit 1 "the broker never kicked dev-b (no second session)" \
	grep -q 'dev-b.*already connected\|Client dev-b .*disconnected' \
	"$FLEETD_STATE/broker/mosquitto.log"

check_exit 1 "dev-b did not receive dev-a's cmd" grep -q '^fleet/dev-a/cmd' "$T/b.msgs"
check_exit 1 "dev-b did not receive dev-a's status" grep -q '^fleet/dev-a/status' "$T/b.msgs"
check_exit 1 "dev-b did not receive dev-a's events" grep -q '^fleet/dev-a/events' "$T/b.msgs"
check_exit 1 "dev-b did not receive dev-a's presence" grep -q '^fleet/dev-a/presence' "$T/b.msgs"
check_exit 1 "dev-b received nothing of \$SYS" grep -q '^\$SYS/' "$T/b.msgs"
check_exit 1 "dev-b received nothing but its own topics and fleetd's presence" \
	grep -qv '^fleet/dev-b/\|^fleet/fleetd/presence ' "$T/b.msgs"

# A fresh subscriber of dev-b would get dev-a's retained presence now if
# reads were open: check the retained copy too (one connection, bounded).
kill $B_SUB 2>/dev/null
mq_sub dev-b -t '#' -t '$SYS/#' -v -W 3 >"$T/b2.msgs" 2>/dev/null & B2=$!
track $B2
wait $B2
check_grep '^fleet/fleetd/presence ' "a new dev-b connection reads fleetd's retained presence" \
	cat "$T/b2.msgs"
check_exit 1 "... but not dev-a's retained presence" grep -q '^fleet/dev-a/' "$T/b2.msgs"
check_exit 1 "... nor \$SYS" grep -q '^\$SYS/' "$T/b2.msgs"

# --- migration: an install from before the fix ------------------------
# Its dynsec.json grants every read; it also holds a decommissioned
# (disabled) client, which the migration must keep.
kill -TERM "$FLEETD_PID"
check_exit 0 "fleetd stops" wait_until 15 sh -c "! kill -0 $FLEETD_PID"
D=$FLEETD_STATE/broker/dynsec.json
jq '.defaultACLAccess.publishClientReceive = true |
    .clients += [{"username": "dev-gone", "disabled": true}]' "$D" >"$T/old.json"
cp "$T/old.json" "$D"
check "the old file grants reads" jq -e '.defaultACLAccess.publishClientReceive == true' "$D"
fleetd serve --state "$FLEETD_STATE" --listen 127.0.0.1:0 --mqtt-listen 127.0.0.1:0 \
	--log-level debug --with-broker >"$T/fleetd2.out" 2>"$T/fleetd2.log" &
FLEETD_PID=$!
track $FLEETD_PID
check_exit 0 "fleetd serves the old install again" wait_until 30 grep -q '^ready ' "$T/fleetd2.out"
MQTT_URL=$(sed -n 's/^ready .*mqtt=\([^ ]*\).*/\1/p' "$T/fleetd2.out")
MQTT_PORT=${MQTT_URL##*:}
check "serve migrated dynsec.json: reads defer to the acl_file" \
	jq -e '.defaultACLAccess.publishClientReceive == false and
	       .defaultACLAccess.publishClientSend == false' "$D"
check "... and kept the disabled client" \
	jq -e '.clients[] | select(.username == "dev-gone") | .disabled == true' "$D"
check "... and the enrolled ones" jq -e '[.clients[].username] | index("dev-a") != null' "$D"
check_grep 'migrated' "fleetd says it migrated the file" cat "$T/fleetd2.log"
mq_sub dev-b -t '#' -t '$SYS/#' -v -W 3 >"$T/b3.msgs" 2>/dev/null & B3=$!
track $B3
wait $B3
check_grep '^fleet/fleetd/presence ' "after migration dev-b reads fleetd's presence" \
	cat "$T/b3.msgs"
check_exit 1 "... but not dev-a's retained presence" grep -q '^fleet/dev-a/' "$T/b3.msgs"
check_exit 1 "... nor \$SYS" grep -q '^\$SYS/' "$T/b3.msgs"
# broker-config alone migrates too (a file written by hand here)
cp "$T/old.json" "$T/bc-dynsec.json"
kill -TERM "$FLEETD_PID"
check_exit 0 "fleetd stops again" wait_until 15 sh -c "! kill -0 $FLEETD_PID"
cp "$T/old.json" "$D"
check "broker-config runs" fleetd broker-config --state "$FLEETD_STATE" --listen 127.0.0.1:1
check "broker-config migrated dynsec.json" \
	jq -e '.defaultACLAccess.publishClientReceive == false and
	       (.clients[] | select(.username == "dev-gone") | .disabled == true)' "$D"
check_true "dynsec.json stays 0600" test "$(stat -c %a "$D")" = 600
finish
