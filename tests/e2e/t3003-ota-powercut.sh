#!/usr/bin/env bash
# Power cuts during updates (issue 5): the agent is stopped at a
# failpoint (FLEET_AGENT_FAILPOINTS) in every state of an update and
# killed with SIGKILL there, then started again (each start of a sim
# device is a power-on, which the simulated bootloader counts).  After
# every kill the bootloader boots a good slot or falls back to one; the
# download resumes from its last checkpoint instead of starting again
# (issue 11: what the slot already holds is read back, the rest fetched
# with Range), and the state dir never holds a copy of the bundle; every
# job ends in a truthful final state.  Then fleetd goes away in the
# middle of a download: the agent retries and resumes with Range.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
# a 32 MiB firmware 1.1.1 (1.1.0 with random bytes after it: it still runs)
check "make a 32 MiB firmware" ota_pad "$T/fw/fw-1.1.0" 32 "$T/fw/big"
BIG=$(ota_bundle "$T/fw/big" 1.1.1 1)
check "upload the 32 MiB bundle 1.1.1" fleetctl bundle upload "$BIG"
check "upload the unhealthy 1.2.0" fleetctl bundle upload "$T/fw/fw-1.2.0.fwb"
SIZE=$(stat -c %s "$BIG")
TOK=$(fleetctl -o json token create ota --enroll --uses 2 --ttl 1h | jq -r .token)
A=$(agent_dir dev-a)
check "enrol dev-a as a simulated device" sim_agent dev-a "$TOK"
# 8 MiB/s, so that a download lasts long enough to be cut in the middle;
# a checkpoint comes a second after the payload began, then every 8 MiB
printf '[download]\nmax_download_rate = 8388608\n' >>"$A/agent.conf"

# crash ID POINT: kill -9 at POINT, then the bootloader must be safe.
crash() {
	if crash_at dev-a "$1"; then pass "killed at $1"; else fail "killed at $1"; fi
	check "after the kill at $1 the bootloader has a good slot" env_safe dev-a "$GOOD_A" "$GOOD_B"
}
resumed_at() { grep -o 'download resumes at byte [0-9]*' "$A/agent.log" | tail -n 1 | grep -o '[0-9]*$'; }
ckpt() { agent_json dev-a | jq -r ".job.$1"; }
# the state dir in KiB (du), each sample kept; the largest is checked
state_kib() { du -sk "$A/state" | cut -f1 | tee -a "$T/state.kib"; }
small_state() { test "$(state_kib)" -le 1024; }
# resume_check CKPT: the pass after a kill started at the checkpoint
# the journal held, CKPT (the agent logs it once it reads the journal)
resume_check() {
	local r
	wait_until 30 grep -q "download resumes at byte $1\b" "$A/agent.log"
	r=$(resumed_at)
	check_true "the download resumed at byte $r, the last checkpoint ($1)" test "${r:-x}" = "$1"
}

# --- job 1: 1.0.0 -> 1.1.1, killed in every state ---------------------------
GOOD_A=$T/fw/fw-1.0.0 GOOD_B=$T/fw/big
AGENT_BIN=fleet-agent-test AGENT_ENV=FLEET_AGENT_FAILPOINTS=queued agent_start_sim dev-a
wait_until 15 dev_online dev-a || fail "dev-a comes online"
JOB=$(update_job dev-a fleet-sample@1.1.1)
if wait_until 30 proc_stopped "${AGENT_PID[dev-a]}"; then pass "stopped at queued"
else fail "stopped at queued"; fi
kill -9 "${AGENT_PID[dev-a]}"
wait "${AGENT_PID[dev-a]}" 2>/dev/null
check "after the kill at queued the bootloader has a good slot" env_safe dev-a "$GOOD_A" "$GOOD_B"

crash downloading
crash bytes=1000000
C1=$(ckpt bytes)
check "the state dir stays small with 1 MB of the bundle in ($(state_kib) KiB)" small_state
crash checkpoint=1
C2=$(ckpt bytes) S2=$(ckpt slot_bytes)
resume_check "$C1"
check_true "stopped right after the pass's first checkpoint, at byte $C2 (> $C1)" test "$C2" -gt "$C1"
check_true "... which has $S2 payload bytes in slot b" test "$S2" -gt 0
check_true "... and slot b holds them" test "$(stat -c %s "$A/sim/slot-b")" -ge "$S2"
check "... while the state dir stays small ($(state_kib) KiB)" small_state
check_true "the head of the bundle is kept ($(stat -c %s "$A/state/bundle.head") bytes)" \
	test "$(stat -c %s "$A/state/bundle.head")" -eq $((C2 - S2))
# between two checkpoints: 3 MB more in the slot (a checkpoint needs 8 MiB)
crash written=$((S2 + 3000000))
resume_check "$C2"
C3=$(ckpt bytes)
check_true "killed between checkpoints: the journal holds $C3 (>= $C2)" test "$C3" -ge "$C2"
crash verifying
resume_check "$C3"
check "at verifying the state dir holds no copy of the bundle ($(state_kib) KiB)" small_state
crash installing
crash installed
check_true "the head is gone once installed" test ! -e "$A/state/bundle.head"
check_true "still on slot a before the switch" test "$(sim_var dev-a fleet_slot)" = a
crash rebooting
check_true "killed before the switch: still slot a, no trial" \
	test "$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)" = a0
crash switched
check_true "killed after the switch: slot b on trial" \
	test "$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)" = b1
crash health-check
crash marked-good
check_true "killed after marking good: slot b, stable" \
	test "$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)" = b0
agent_start_sim dev-a
if wait_until 30 job_final "$JOB"; then pass "job 1 ends"; else fail "job 1 ends"; fi
check_true "job 1 succeeded (fleetd: $(job_state "$JOB"))" test "$(job_state "$JOB")" = succeeded
check "slot b holds exactly the 32 MiB firmware" cmp "$A/sim/slot-b" "$T/fw/big"
F=$(agent_json dev-a | jq .job.fetched)
check_true "progress survived the kills: each byte counted once, fetched $F == $SIZE" test "$F" = "$SIZE"
check "agent status: 1.1.1 on slot b" sh -c "fleet-agent status -o json --config '$A/agent.conf' --sim '$A/sim' | jq -e '.firmware == \"1.1.1\" and .slot == \"b\"'"
check_grep "$JOB +.*succeeded" "fleetctl lists job 1 as succeeded" fleetctl jobs list --device dev-a
agent_stop dev-a

# --- job 2: 1.1.1 -> 1.2.0 (unhealthy), killed on the way back --------------
GOOD_A=- GOOD_B=$T/fw/big
trial_a_is_120() {
	[ "$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)" != a1 ] ||
		cmp -s "$A/sim/slot-a" "$T/fw/fw-1.2.0"
}
AGENT_BIN=fleet-agent-test AGENT_ENV=FLEET_AGENT_FAILPOINTS=health-check agent_start_sim dev-a
wait_until 15 dev_online dev-a || fail "dev-a comes online (job 2)"
JOB2=$(update_job dev-a fleet-sample@1.2.0)
if wait_until 60 proc_stopped "${AGENT_PID[dev-a]}"; then pass "stopped at the health check of 1.2.0"
else fail "stopped at the health check of 1.2.0"; fi
kill -9 "${AGENT_PID[dev-a]}"
wait "${AGENT_PID[dev-a]}" 2>/dev/null
check "after the kill at health-check the bootloader has a good slot" env_safe dev-a "$GOOD_A" "$GOOD_B"
check "a slot on trial holds the verified image" trial_a_is_120
crash reverting
check "a slot on trial holds the verified image" trial_a_is_120
crash reverted
check_true "killed after switching back: slot b on trial" \
	test "$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)" = b1
crash marked-good
agent_start_sim dev-a
if wait_until 30 job_final "$JOB2"; then pass "job 2 ends"; else fail "job 2 ends"; fi
check "job 2 is rolled-back because the health check failed" sh -c \
	"fleetctl -o json jobs show $JOB2 | jq -e '.state == \"rolled-back\" and (.reason | test(\"health check failed\"))'"
check_true "fw_printenv: slot b, stable" \
	test "$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)" = b0
check "slot b still holds the 32 MiB firmware" cmp "$A/sim/slot-b" "$T/fw/big"
check "the agent says so too" sh -c "fleet-agent status -o json --config '$A/agent.conf' --sim '$A/sim' | jq -e '.firmware == \"1.1.1\" and .job.state == \"rolled-back\"'"
agent_stop dev-a

# --- job 3: fleetd goes away in the middle of a download -------------------
# fleetd (and its broker) stop until the agent has noticed, and come back
# on the same ports:
# the transfer breaks off, the agent retries with backoff and resumes
# with Range from the byte it had.
# 32 MiB at 8 MiB/s: more than the sockets can hold in flight
check "make a 32 MiB firmware" ota_pad "$T/fw/fw-1.1.0" 32 "$T/fw/big32"
B3=$(ota_bundle "$T/fw/big32" 1.3.0 1)
check "upload 1.3.0 (32 MiB)" fleetctl bundle upload "$B3"
sed -i 's/^max_download_rate = .*/max_download_rate = 8388608/' "$A/agent.conf"
agent_start_sim dev-a
wait_until 15 dev_online dev-a || fail "dev-a comes online (job 3)"
JOB3=$(update_job dev-a fleet-sample@1.3.0)
held_at() { state_kib >/dev/null; [ "$(ckpt bytes)" -ge "$1" ]; }
if wait_until 30 held_at 4000000; then pass "the download is under way"
else fail "the download is under way"; fi
HTTPS_PORT=${FLEET_URL##*:}
kill -TERM "$FLEETD_PID"
wait_until 10 sh -c "! kill -0 $FLEETD_PID" || fail "fleetd stops on SIGTERM"
# down until the agent has seen the transfer break off and scheduled a retry
if wait_until 30 grep -Eq 'trying again in [0-9]+ ms from byte [1-9]' "$A/agent.log"
then pass "the agent notices fleetd is gone mid-transfer"
else fail "the agent notices fleetd is gone mid-transfer"; fi
fleetd serve --state "$FLEETD_STATE" --listen "127.0.0.1:$HTTPS_PORT" \
	--mqtt-listen "127.0.0.1:$MQTT_PORT" --log-level debug --with-broker \
	>"$T/fleetd2.out" 2>>"$T/fleetd.log" &
FLEETD_PID=$!
track "$FLEETD_PID"
if wait_until 30 grep -q '^ready ' "$T/fleetd2.out"; then pass "fleetd is back on the same ports"
else fail "fleetd is back on the same ports"; fi
# the state dir sampled (du) every 0.1 s until the job ends (and above)
final_small() { state_kib >/dev/null; job_final "$1"; }
if wait_until 90 final_small "$JOB3"; then pass "job 3 ends"; else fail "job 3 ends"; fi
MAXK=$(sort -n "$T/state.kib" | tail -n 1)
check_true "the state dir stayed under 1 MiB in $(wc -l <"$T/state.kib") samples (largest $MAXK KiB)" \
	test "$MAXK" -le 1024
check_true "job 3 succeeded (fleetd: $(job_state "$JOB3"))" test "$(job_state "$JOB3")" = succeeded
check_grep 'trying again in [0-9]+ ms from byte [1-9]' \
	"the agent retried from where the transfer broke off" cat "$A/agent.log"
F=$(agent_json dev-a | jq .job.fetched)
check_true "... and fetched every byte once: $F == $(stat -c %s "$B3")" test "$F" = "$(stat -c %s "$B3")"
check "slot a holds the 32 MiB firmware" cmp "$A/sim/slot-a" "$T/fw/big32"
agent_stop dev-a
finish
