#!/usr/bin/env bash
# The outbox end to end through the real fleetd (issue 13, "Must show"):
# a sim fleet-agent samples telemetry every second with a small outbox
# (max_messages) while an update job downloads slowly; the broker stops,
# and while it is down the job ends (its bundle's payload was changed on
# the server: "failed" at verifying, produced offline) and the agent
# samples past the bound; the agent is killed with -9 while offline and
# restarted (still offline); then the broker comes back.  fleetd ends
# with the job's events exactly as the agent logged them (each seq once,
# in order, the final one once), the telemetry seqs in order with one gap
# only, the oldest offline messages (by sample time too), whose points
# are the device's reported dropped count, and nothing queued lost
# across the kill.  fleetd stays up throughout: it runs on an external
# mosquitto with its own broker configuration (docs/broker.md, "An
# external broker"), because the broker `serve --with-broker` runs is
# restarted by fleetd within a second of dying.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

CAP=8
start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
check "make a 1 MiB firmware" ota_pad "$T/fw/fw-1.1.0" 1 "$T/fw/big"
BUNDLE=$(ota_bundle "$T/fw/big" 1.1.1 1)
ID=$(fleetctl bundle upload "$BUNDLE" | tail -n 1)
# a payload byte changed on the server: the agent refuses it by the hash,
# near the end of the download
F=$FLEETD_STATE/bundles/$ID.fwb
check_true "change a payload byte of 1.1.1 on the server" \
	sh -c "printf 'X' | dd of='$F' bs=1 seek=1000000 conv=notrunc 2>/dev/null"
TOK=$(fleetctl -o json token create e2e --enroll --uses 1 | jq -r .token)
check "enrol dev-a as a simulated device" sim_agent dev-a "$TOK"
A=$(agent_dir dev-a)
# 1 MiB at 128 KiB/s: about 8 s of download, most of it offline
cat >>"$A/agent.conf" <<EOF
[telemetry]
interval = 1
[outbox]
max_messages = $CAP
[download]
max_download_rate = 131072
EOF
sed -i 's/^\[mqtt\]$/[mqtt]\nreconnect_max = 2s/' "$A/agent.conf"

# --- fleetd on an external broker it does not restart ------------------------
fleetd_external_broker

# --- 1. positive control: telemetry reaches fleetd -----------------------------
agent_start_sim dev-a
check_exit 0 "dev-a comes online" wait_until 20 dev_online dev-a
db() { store_sql "$1"; }
# the highest telemetry seq fleetd stored for dev-a
stored_max() { db "SELECT coalesce(max(seq), 0) FROM telemetry WHERE device = 'dev-a'"; }
stored_ge() { [ "$(stored_max)" -ge "$1" ]; }
check_exit 0 "positive control: telemetry of dev-a reaches fleetd" wait_until 30 stored_ge 3
fleetctl -o json telemetry dev-a >"$T/t1.json"
check_exit 0 "fleetctl telemetry -o json: built-in metrics, nothing dropped" jq -e \
	'.device == "dev-a" and .dropped == 0 and ([.points[].metric] |
	 index("mem.used_bytes") and index("agent.outbox_depth"))' "$T/t1.json"
fleetctl telemetry dev-a --metric mem.used_bytes >"$T/t1.txt" 2>"$T/t1.err"
check_exit 0 "fleetctl telemetry (table): a header, then mem.used_bytes rows" awk \
	'NR == 1 && !($1 == "TIME" && $2 == "METRIC" && $3 == "VALUE") { exit 1 }
	 NR > 1 && $2 != "mem.used_bytes" { exit 1 } END { exit NR < 2 }' "$T/t1.txt"

# --- 2. the broker stops during an update; the job ends offline ---------------
JOB=$(update_job dev-a "fleet-sample@1.1.1")
downloading() { [ "$(job_state "$JOB")" = downloading ]; }
check_exit 0 "update job $JOB: fleetd sees it downloading" wait_until 30 downloading
check "the broker stops" broker_stop
STOP_MS=$(($(date +%s%N) / 1000000))
R0=$(stored_max)
S0=$(queued_seq)
OFF=$(wc -l <"$A/agent.log")
log "stopped at $STOP_MS; fleetd had seq $R0, the agent had queued $S0"
since_stop() { tail -n +"$((OFF + 1))" "$A/agent.log"; }
# (the final event takes its seq when it is sent: it has none yet)
ended() { since_stop | grep -q "job $JOB failed"; }
check_exit 0 "the job ends while offline (agent log: job $JOB failed)" \
	wait_until 60 ended
check_exit 0 "... after the agent lost the broker" sh -c "sed -n \
	'/connection lost/,/job $JOB failed/p' '$A/agent.log' | grep -q 'job $JOB failed'"
check_exit 1 "... and before it connected again" sh -c "sed -n \
	'/job $JOB failed/,\$p' '$A/agent.log' | grep -q 'connected to'"
agent_json dev-a >"$T/off.json"
check_exit 0 "fleet-agent status: the job failed, its final event unconfirmed" jq -e \
	--arg j "$JOB" '.job.id == $j and .job.state == "failed" and .unconfirmed_events == 1' \
	"$T/off.json"
check_true "fleetd still sees it downloading" downloading
check_exit 0 "the agent samples on while offline, past the bound" \
	wait_until 60 queued_past $((S0 + CAP + 12))

# --- 3. kill -9 while offline, restart offline --------------------------------
check "kill -9 the agent while offline" kill -KILL "${AGENT_PID[dev-a]}"
wait "${AGENT_PID[dev-a]}" 2>/dev/null
S1=$(queued_seq)
agent_start_sim dev-a
check_exit 0 "restarted offline, the telemetry seq goes on after $S1" \
	wait_until 20 queued_past $((S1 + 2))
check_exit 0 "the final event is still unconfirmed after the kill" sh -c \
	"fleet-agent status -o json --config '$A/agent.conf' --sim '$A/sim' | jq -e '.unconfirmed_events == 1'"

# --- 4. the broker back ----------------------------------------------------------
BACK_MS=$(($(date +%s%N) / 1000000))
check "the broker starts again" broker_start
S2=$(queued_seq)
check_exit 0 "fleetd ends with the job final" wait_until 60 job_final "$JOB"
check_exit 0 "fleetd stores every telemetry seq queued up to $S2" wait_until 60 stored_ge "$S2"
agent_done() { agent_json dev-a | jq -e '.unconfirmed_events == 0'; }
check_exit 0 "fleetd confirmed the final event (none unconfirmed on the agent)" \
	wait_until 30 agent_done

# the job: exactly the events the agent published, once each, in order
job_json "$JOB" >"$T/job.json"
check_exit 0 "the job is failed at verifying (the payload hash)" jq -e \
	'.state == "failed" and .final == true and .stage == "verifying" and (.reason | test("hash"))' \
	"$T/job.json"
jq -r '.events[] | "\(.seq) \(.state)"' "$T/job.json" >"$T/fleetd.ev"
sed -n 's/.* event \([0-9]*\): update \([a-z-]*\)$/\1 \2/p' "$A/agent.log" >"$T/agent.ev"
log "agent: $(paste -sd, "$T/agent.ev"); fleetd: $(paste -sd, "$T/fleetd.ev")"
check "fleetd's history is the events the agent published, in order" \
	diff "$T/agent.ev" "$T/fleetd.ev"
check_exit 0 "... seq strictly increasing, the final one last and once" jq -e \
	'[.events[].seq] as $s | ([range(1; $s | length) | $s[.] > $s[. - 1]] | all) and
	 ([.events[] | select(.state == "failed")] | length == 1) and .events[-1].state == "failed"' \
	"$T/job.json"
check_true "no event of the job stored twice (job_events)" test "$(db \
	"SELECT count(*) - count(DISTINCT seq) FROM job_events WHERE job = '$JOB'")" = 0
fleetctl jobs show "$JOB" >"$T/job.txt"
check_true "fleetctl jobs show (table): the same history (queued downloading failed)" \
	test "$(sed -n '/^events:$/,$p' "$T/job.txt" | awk 'NR > 1 { sub(":", "", $2); print $2 }' |
		paste -sd' ')" = "$(cut -d' ' -f2 "$T/agent.ev" | paste -sd' ')"

# the telemetry: seqs in order, one gap (the oldest), dropped = its points
db "SELECT seq FROM telemetry WHERE device = 'dev-a' AND seq <= $S2
	GROUP BY seq ORDER BY min(rowid)" >"$T/seqs"
check_true "no point stored twice" test "$(db "SELECT count(*) FROM (SELECT 1 FROM
	telemetry WHERE device = 'dev-a' GROUP BY seq, metric, ts HAVING count(*) > 1) AS d")" = 0
check "seqs stored in increasing order (by arrival)" sort -n -C "$T/seqs"
comm -23 <(seq 1 "$S2" | sort) <(sort "$T/seqs") | sort -n >"$T/missing"
log "missing seqs: $(paste -sd' ' "$T/missing")"
check_true "the bound dropped messages" test -s "$T/missing"
FIRST=$(head -n 1 "$T/missing")
LAST=$(tail -n 1 "$T/missing")
check_true "... one run ($FIRST..$LAST) right after $R0 (what fleetd had), or the 4 in flight then" \
	test "$FIRST" -gt "$R0" -a "$FIRST" -le $((R0 + 5)) -a \
	"$(wc -l <"$T/missing")" -eq $((LAST - FIRST + 1))
check_true "... and no gap before it or after it up to $S2" \
	test "$(wc -l <"$T/seqs")" -eq $((S2 - LAST + FIRST - 1))
LOST=$(sed -n 's/.*telemetry: message \([0-9]*\) queued, \([0-9]*\) points.*/\1 \2/p' \
	"$A/agent.log" | awk -v f="$FIRST" -v l="$LAST" '$1 >= f && $1 <= l { n += $2 } END { print n + 0 }')
DROPPED=$(fleetctl -o json telemetry dev-a | jq .dropped)
check_true "fleetctl telemetry's dropped ($DROPPED) is the points of the missing messages ($LOST)" \
	test "$DROPPED" -eq "$LOST"
fleetctl telemetry dev-a --metric agent.outbox_depth >/dev/null 2>"$T/t2.err"
check_grep "outbox dropped $LOST points" "the table notes them too" cat "$T/t2.err"
# by sample time: the first offline samples are missing, the last present
# (about 14 s of samples more than the bound holds were taken offline)
OFF_MIN=$(db "SELECT min(ts) FROM telemetry WHERE device = 'dev-a' AND ts > $STOP_MS")
OFF_MAX=$(db "SELECT max(ts) FROM telemetry WHERE device = 'dev-a' AND ts < $BACK_MS")
log "offline from $STOP_MS to $BACK_MS; stored samples of that time: $OFF_MIN..$OFF_MAX"
check_true "no sample of the first 8 s offline is stored (the first: $((OFF_MIN - STOP_MS)) ms after the stop)" \
	test "$OFF_MIN" -gt $((STOP_MS + 8000))
check_true "the newest offline samples are (the last: $((BACK_MS - OFF_MAX)) ms before the broker came back)" \
	test "$OFF_MAX" -gt $((BACK_MS - 3000))
check_exit 0 "the outbox depth reported stayed within the bound" sh -c \
	"fleetctl -o json telemetry dev-a --metric agent.outbox_depth | jq -e '[.points[].value] | max <= $CAP'"
finish
