#!/usr/bin/env bash
# Job events are ingested without loss or duplicates under a burst
# (issue 17; docs/protocol.md "ack"): 50 devices (mqtt-burst, one real
# MQTT v5 client each over mTLS) publish 400 job events each at full
# speed, the last one final ("failed"), and re-publish the final until
# fleetd acks it.  Three runs on the same fleetd state, fresh jobs each:
#   (a) a plain burst;
#   (b) fleetd stopped (SIGSTOP) for 10 s in the middle of the burst;
#   (c) fleetd killed (-9) in the middle and restarted on the same state
#       dir and ports;
#   (d) on an external broker that restarted once (fleetd reconnected),
#       fleetd killed (-9), the whole burst sent while it is down, then
#       fleetd restarted.
# After each: mqtt-burst saw every final acked (exit 0); every job is
# final and failed (fleetctl jobs list, table and JSON); job_events holds
# no (job, seq) twice, and for (a), (b) and (d) all 400 events of every
# job.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

# the tool's own input checks: usage errors are 2
check_exit 2 "mqtt-burst without its options is a usage error" mqtt-burst
printf 'b1 j-1\nb/+ j-2\n' >"$T/bad.spec"
check_exit 2 "mqtt-burst refuses a spec line that is no \"ID JOB\"" mqtt-burst \
	--host 127.0.0.1 --port 1 --cafile /dev/null --dir "$T" --spec "$T/bad.spec"
check_exit 2 "mqtt-burst refuses --events 0" mqtt-burst --host 127.0.0.1 --port 1 \
	--cafile /dev/null --dir "$T" --spec "$T/bad.spec" --events 0

NDEV=${NDEV:-50}
NEV=${NEV:-400}
# the burst is the point here, not the per-device budget (t2004)
FLEETD_CONF=$'[mqtt]\ndevice_rate = 100000\ndevice_burst = 100000'
start_fleetd --with-broker
login_admin
HTTPS_PORT=${FLEET_URL##*:}
HTTPS_PORT=${HTTPS_PORT%%/*}
db() { store_sql "$1"; }

# --- devices and a bundle -----------------------------------------------
TOK=$(fleetctl -o json token create burst --enroll --uses "$NDEV" --ttl 1h | jq -r .token)
enrol_some() { # enrol devices $1..$2 (a few at once, each with its own key)
	local i p=()
	for ((i = $1; i <= $2; i++)); do
		enroll_curl "b$i" "$TOK" >"$T/enrol-b$i.status" 2>&1 &
		p+=($!)
	done
	wait "${p[@]}" # (not a bare wait: fleetd is a child too)
}
for ((k = 1; k <= NDEV; k += 10)); do enrol_some "$k" $((k + 9 > NDEV ? NDEV : k + 9)); done
enrolled=$(cat "$T"/enrol-b*.status | grep -c '^201$')
check_true "$NDEV devices enrolled ($enrolled)" test "$enrolled" -eq "$NDEV"
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
check "upload fleet-sample 1.1.0" fleetctl bundle upload "$T/fw/fw-1.1.0.fwb"
B=fleet-sample@1.1.0
DEVS=$(seq -f 'b%g' 1 "$NDEV" | tr '\n' ' ')

# --- one run -----------------------------------------------------------
# new_jobs RUN: an update job per device; writes $T/RUN.spec ("ID JOB")
new_jobs() {
	# shellcheck disable=SC2086
	fleetctl -o json update $DEVS --bundle "$B" >"$T/$1.jobs.json" &&
		jq -r '.[] | "\(.device) \(.job)"' "$T/$1.jobs.json" >"$T/$1.spec" &&
		test "$(wc -l <"$T/$1.spec")" -eq "$NDEV"
}
jobs_sql() { awk '{printf "%s'\''%s'\''", (NR > 1 ? "," : ""), $2}' "$T/$1.spec"; }
stored() { db "SELECT count(*) FROM job_events WHERE job IN ($(jobs_sql "$1"))"; }
# burst RUN START_SEQ: mqtt-burst in the background; $BURST_PID, rc in RUN.rc
burst() {
	# (LeakSanitizer sees a few hundred bytes that libcrypto allocates
	# in mqtt-burst and never frees, with no frame of ours: not checked)
	(ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 mqtt-burst --host "$MQTT_HOST" --port "$MQTT_PORT" --cafile "$FLEET_CA_FILE" \
		--dir "$T/dev" --spec "$T/$1.spec" --events "$NEV" --start-seq "$2" \
		--resend-ms 1000 --timeout $((30 * WAIT_SCALE)) >"$T/$1.out" 2>"$T/$1.err"
	 echo $? >"$T/$1.rc") &
	BURST_PID=$!
	track "$BURST_PID"
}
burst_ended() { test -s "$T/$1.rc"; }
# cancel_open RUN: cancel the jobs of RUN that are still open
cancel_open() {
	local j
	for j in $(jq -r '.[] | select(.final != true) | .id' "$T/$1.list.json"); do
		grep -qw "$j" "$T/$1.spec" && fleetctl -q jobs cancel "$j"
	done
}
# after RUN ALL: the checks every run makes; ALL=1: every event stored
after() {
	local run=$1 all=$2 open
	check_exit 0 "($run) mqtt-burst ended" wait_until 40 burst_ended "$run"
	log "($run) mqtt-burst: $(cat "$T/$run.out") exit $(cat "$T/$run.rc" 2>/dev/null)"
	[ -s "$T/$run.err" ] && tail -n 30 "$T/$run.err" | sed 's/^/#   mqtt-burst: /'
	check_true "($run) mqtt-burst saw every final acked by fleetd (exit 0)" \
		test "$(cat "$T/$run.rc" 2>/dev/null)" = 0
	fleetctl -o json jobs list --limit 1000 >"$T/$run.list.json"
	open=$(jq --slurpfile s <(jq -R 'split(" ")[1]' "$T/$run.spec") \
		'[.[] | select(.id as $i | $s | index($i)) | select(.final != true)] | length' \
		"$T/$run.list.json")
	log "($run) stored $(stored "$run") of $((NDEV * NEV)) events; $open of $NDEV jobs open"
	check_true "($run) every job is final (jobs list -o json)" test "$open" = 0
	cancel_open "$run" # so that the next run can start its own jobs
	check "($run) ... and failed (jobs list -o json)" jq -e --slurpfile s \
		<(jq -R 'split(" ")[1]' "$T/$run.spec") \
		'[.[] | select(.id as $i | $s | index($i)) | select(.state == "failed")] | length == '"$NDEV" \
		"$T/$run.list.json"
	fleetctl jobs list --limit 1000 >"$T/$run.list.txt"
	check_true "($run) ... and failed (jobs list table)" test \
		"$(grep -Fwf <(cut -d' ' -f2 "$T/$run.spec") "$T/$run.list.txt" | grep -cw failed)" -eq "$NDEV"
	check_true "($run) no (job, seq) stored twice" test -z "$(db \
		"SELECT job, seq FROM job_events WHERE job IN ($(jobs_sql "$run")) \
		 GROUP BY job, seq HAVING count(*) > 1 LIMIT 5")"
	[ "$all" = 1 ] || return 0
	check_true "($run) every one of the $((NDEV * NEV)) events was stored" \
		test "$(stored "$run")" -eq $((NDEV * NEV))
}
# half_stored RUN: half the burst is in the database
half_stored() { [ "$(stored "$1")" -ge $((NDEV * NEV / 2)) ]; }
# the stop lasts 10 s by design: it is the stimulus, not a synchronisation
past() { [ "$(date +%s)" -ge "$1" ]; }

# --- (a) a plain burst ----------------------------------------------------
check "(a) an update job per device" new_jobs a
burst a 1
after a 1

# --- (b) fleetd stopped for 10 s in the middle of the burst ------------------
check "(b) an update job per device" new_jobs b
burst b $((NEV + 1))
check_exit 0 "(b) half the burst is stored" wait_until 60 half_stored b
kill -STOP "$FLEETD_PID"
UNTIL=$(($(date +%s) + 10))
wait_until 15 past "$UNTIL"
check_exit 0 "(b) the burst went on while fleetd was stopped (the tool still runs)" \
	sh -c "! test -s '$T/b.rc'"
kill -CONT "$FLEETD_PID"
after b 1

# --- (c) fleetd killed -9 in the middle, restarted on the same state ---------
# fleetd's mosquitto is its child and gets SIGTERM when fleetd dies (as
# the rest of a systemd unit would): it saves its sessions and queues
# (persistence is on), and the restarted fleetd's broker loads them.
broker_pid() { sed -n 's/.*mosquitto (pid \([0-9]*\)) listening.*/\1/p' "$1" | tail -n 1; }
check "(c) an update job per device" new_jobs c
burst c $((2 * NEV + 1))
check_exit 0 "(c) half the burst is stored" wait_until 60 half_stored c
BROKER=$(broker_pid "$T/fleetd.log")
track "$BROKER"
kill -KILL "$FLEETD_PID"
wait "$FLEETD_PID" 2>/dev/null # (reaped quietly: no "Killed" line)
check_exit 0 "(c) fleetd is gone" wait_until 10 sh -c "! kill -0 $FLEETD_PID"
check_exit 0 "(c) its mosquitto (pid $BROKER) ends with it" \
	wait_until 20 sh -c "! kill -0 $BROKER"
: >"$T/fleetd2.out"
fleetd serve --state "$FLEETD_STATE" --listen "127.0.0.1:$HTTPS_PORT" \
	--mqtt-listen "127.0.0.1:$MQTT_PORT" --with-broker --log-level debug \
	>"$T/fleetd2.out" 2>"$T/fleetd2.log" &
FLEETD_PID=$!
track "$FLEETD_PID"
check_exit 0 "(c) fleetd restarts on the same state dir and ports" \
	wait_until 30 grep -q "^ready https=$FLEET_URL mqtt=$MQTT_URL" "$T/fleetd2.out"
track "$(broker_pid "$T/fleetd2.log")"
after c 0

# --- (d) an external broker restarts; then fleetd dies; devices go on -------
# With an external broker ([mqtt] url), a fleetd killed -9 leaves the
# broker up, and what devices publish meanwhile waits in fleetd's session
# for the restarted fleetd.  The session must keep its expiry across
# fleetd's reconnects too (a session without one ends at the next
# disconnect; with SESSION_EXPIRY 0 in mqtt.c this run stores 50 of the
# 20000): so the broker restarts first, fleetd reconnects, and only
# then is fleetd killed and the burst sent.
OLD_BROKER=$(broker_pid "$T/fleetd2.log")
kill -TERM "$FLEETD_PID"
check_exit 0 "(d) fleetd and its mosquitto stop at SIGTERM" wait_until 30 \
	sh -c "! kill -0 $FLEETD_PID 2>/dev/null && ! kill -0 $OLD_BROKER 2>/dev/null"
wait "$FLEETD_PID" 2>/dev/null
# ext_broker N: mosquitto on fleetd's own broker config (the operator's
# way, docs/broker.md), the Nth start: wait for its Nth "running" line
ext_broker() {
	mosquitto -c "$FLEETD_STATE/broker/mosquitto.conf" >>"$T/ext-broker.log" 2>&1 &
	EXT_BROKER=$!
	track "$EXT_BROKER"
	wait_until 20 sh -c "[ \$(grep -c ' running\$' '$T/ext-broker.log') -ge $1 ]"
}
# fleetd_up LOG: fleetd on the external broker, same state and ports
fleetd_up() {
	: >"$T/$1.out"
	fleetd serve --state "$FLEETD_STATE" --listen "127.0.0.1:$HTTPS_PORT" \
		${FLEET_STORE_URL:+--store "$FLEET_STORE_URL"} \
		--log-level debug >"$T/$1.out" 2>"$T/$1.log" &
	FLEETD_PID=$!
	track "$FLEETD_PID"
	wait_until 30 grep -q "^ready https=$FLEET_URL mqtt=$MQTT_URL" "$T/$1.out"
}
connects() { [ "$(grep -c 'connected to the broker' "$T/$1.log")" -ge "$2" ]; }
printf '%s\nurl = %s\n' "$FLEETD_CONF" "$MQTT_URL" >"$FLEETD_STATE/fleetd.conf"
check_exit 0 "(d) an external mosquitto on fleetd's broker config" ext_broker 1
check_exit 0 "(d) fleetd starts on it ([mqtt] url)" fleetd_up fleetd3
check_exit 0 "(d) ... and connects" wait_until 20 connects fleetd3 1
check "(d) an update job per device" new_jobs d
kill -TERM "$EXT_BROKER"
check_exit 0 "(d) the broker stops (SIGTERM)" wait_until 20 sh -c "! kill -0 $EXT_BROKER"
wait "$EXT_BROKER" 2>/dev/null
check_exit 0 "(d) ... and starts again" ext_broker 2
check_exit 0 "(d) fleetd reconnects to it" wait_until 60 connects fleetd3 2
kill -KILL "$FLEETD_PID"
wait "$FLEETD_PID" 2>/dev/null
check_exit 0 "(d) fleetd is killed (-9); the broker stays" kill -0 "$EXT_BROKER"
burst d $((3 * NEV + 1))
took() { grep -q 'the broker took all' "$T/d.err"; }
check_exit 0 "(d) the broker PUBACKed the whole burst while fleetd was down" \
	wait_until 60 took
check_exit 0 "(d) fleetd restarts" fleetd_up fleetd4
after d 1
check_exit 0 "fleetd and the external broker are up at the end" \
	kill -0 "$FLEETD_PID" "$EXT_BROKER"
finish
