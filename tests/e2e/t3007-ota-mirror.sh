#!/usr/bin/env bash
# Bundles from a mirror (issue 10, docs/ota.md "Mirrors"): fleetd's
# [bundles] mirror_url names a real nginx on 127.0.0.1 (TLS with a
# certificate of the fleet CA, client certificates required), serving a
# copy of fleetd's bundle directory, published as rsync would.  An update
# downloads from the mirror and fleetd serves no byte of it; with the
# mirror stopped the job still succeeds, from fleetd; a payload byte
# changed on the mirror is caught by the hash, the agent falls back to
# fleetd from byte 0 and the slot ends up with fleetd's bytes; a kill -9
# in the middle of a mirror download resumes against the mirror with
# Range (a 206 in nginx's log).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"
. "$(dirname "$0")/lib-nginx.sh"

command -v nginx >/dev/null || { echo "nginx missing: scripts/install-deps" >&2; exit 1; }
MIRROR=$T/mirror
mkdir -p "$MIRROR"
mirror_port
FLEETD_CONF=$(printf '[bundles]\nmirror_url = %s' "$MIRROR_URL") start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
check "the mirror (nginx) starts" mirror_start "$MIRROR"

# publish: the bundle files as they are in fleetd's state dir, to the
# mirror's directory (what rsync of STATE/bundles/ would do)
publish() { cp -p "$FLEETD_STATE"/bundles/*.fwb "$MIRROR/"; }
# upload IMG VER: sign IMG as fleet-sample VER and upload; prints the id
upload() {
	local f
	f=$(ota_bundle "$1" "$2" 1) && fleetctl bundle upload "$f" | tail -n 1
}
# fleetd's own bundle route, as its debug log shows each request
fleetd_served() { grep -c "GET /api/v1/bundles/$1/download -> 20" "$T/fleetd.log"; }
# mirror requests for bundle ID by dev-a, with STATUS
mirror_served() { mirror_log | grep -c "CN=dev-a $2 \"GET /bundles/$1.fwb "; }
slot_b_is() { cmp -s "$A/sim/slot-b" "$1"; }

TOK=$(fleetctl -o json token create ota --enroll --uses 2 --ttl 1h | jq -r .token)
A=$(agent_dir dev-a)
check "enrol dev-a as a simulated device" sim_agent dev-a "$TOK"
# 8 MiB/s, so that the 32 MiB download below lasts long enough to be cut
printf '[download]\nmax_download_rate = 8388608\n' >>"$A/agent.conf"
agent_start_sim dev-a
wait_until 15 dev_online dev-a || fail "dev-a comes online"

# --- 1: the bundle comes from the mirror ---------------------------------------
ID1=$(upload "$T/fw/fw-1.1.0" 1.1.0)
check "publish 1.1.0 to the mirror" publish
JOB=$(update_job dev-a fleet-sample@1.1.0)
wait_until 60 job_final "$JOB" || fail "1.1.0: the job ends"
check_true "1.1.0: the job succeeded" test "$(job_state "$JOB")" = succeeded
check_true "nginx served the whole bundle to dev-a (200)" test "$(mirror_served "$ID1" 200)" -ge 1
check_true "fleetd served no byte of it" test "$(fleetd_served "$ID1")" -eq 0
check "its downloading events say the bytes came from the mirror" sh -c \
	"fleetctl -o json jobs show $JOB | jq -e '[.events[] | select(.state == \"downloading\") | .source] | unique == [\"mirror\"]'"
check_true "slot b holds 1.1.0" slot_b_is "$T/fw/fw-1.1.0"

# --- 2: the mirror is down: fleetd serves it -----------------------------------
check "make a 2 MiB firmware 1.1.1" ota_pad "$T/fw/fw-1.1.0" 2 "$T/fw/f111"
ID2=$(upload "$T/fw/f111" 1.1.1)
publish
check "stop the mirror" mirror_stop
JOB=$(update_job dev-a fleet-sample@1.1.1)
wait_until 90 job_final "$JOB" || fail "1.1.1: the job ends"
check_true "1.1.1 with the mirror down: the job succeeded" test "$(job_state "$JOB")" = succeeded
check_true "fleetd's bundle route served it" test "$(fleetd_served "$ID2")" -ge 1
fleetctl jobs show "$JOB" >"$T/show2.out"
check_grep 'downloading: mirror failed (.*); downloading from fleetd' \
	"jobs show (table) says the agent left the mirror and why" cat "$T/show2.out"
check_true "slot a holds 1.1.1" cmp -s "$A/sim/slot-a" "$T/fw/f111"

# --- 3: a tampered file on the mirror -------------------------------------------
check "the mirror starts again" mirror_start "$MIRROR"
check "make a 2 MiB firmware 1.1.2" ota_pad "$T/fw/fw-1.1.0" 2 "$T/fw/f112"
ID3=$(upload "$T/fw/f112" 1.1.2)
publish
# one payload byte of the mirror's copy, 1 MB in (the manifest still
# verifies: only the payload hash at the end can tell)
old=$(dd if="$MIRROR/$ID3.fwb" bs=1 skip=1000000 count=1 2>/dev/null | od -An -tx1 | tr -d ' ')
if [ "$old" = 58 ]; then new=Y; else new=X; fi
printf '%s' "$new" | dd of="$MIRROR/$ID3.fwb" bs=1 seek=1000000 conv=notrunc 2>/dev/null
check_exit 1 "the mirror's copy differs from fleetd's" cmp -s "$MIRROR/$ID3.fwb" "$FLEETD_STATE/bundles/$ID3.fwb"
JOB=$(update_job dev-a fleet-sample@1.1.2)
wait_until 90 job_final "$JOB" || fail "1.1.2: the job ends"
check_true "1.1.2 from a tampered mirror: the job succeeded" test "$(job_state "$JOB")" = succeeded
check_true "the agent took the tampered file from nginx" test "$(mirror_served "$ID3" 200)" -ge 1
check_true "... refused it and took fleetd's" test "$(fleetd_served "$ID3")" -ge 1
fleetctl jobs show "$JOB" >"$T/show3.out"
check_grep 'downloading: mirror failed (.*hash.*); downloading from fleetd' \
	"jobs show (table) names the hash" cat "$T/show3.out"
check_true "slot b holds fleetd's 1.1.2, not the mirror's bytes" slot_b_is "$T/fw/f112"
check_true "the device runs slot b" test "$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)" = b0

# --- 4: kill -9 in the middle of a mirror download: Range against nginx -----------
agent_stop dev-a
check "make a 32 MiB firmware 1.1.3" ota_pad "$T/fw/fw-1.1.0" 32 "$T/fw/f113"
ID4=$(upload "$T/fw/f113" 1.1.3)
publish
AGENT_BIN=fleet-agent-test AGENT_ENV=FLEET_AGENT_FAILPOINTS=checkpoint=1 agent_start_sim dev-a
wait_until 15 dev_online dev-a || fail "dev-a comes online (test build)"
JOB=$(update_job dev-a fleet-sample@1.1.3)
if wait_until 60 proc_stopped "${AGENT_PID[dev-a]}"; then pass "stopped after a checkpoint of the mirror download"
else fail "stopped after a checkpoint of the mirror download"; fi
kill -9 "${AGENT_PID[dev-a]}"
wait "${AGENT_PID[dev-a]}" 2>/dev/null
C=$(agent_json dev-a | jq -r .job.bytes)
check_true "the journal holds a checkpoint at byte $C" test "${C:-0}" -gt 0
agent_start_sim dev-a
wait_until 90 job_final "$JOB" || fail "1.1.3: the job ends"
check_true "1.1.3 after kill -9: the job succeeded" test "$(job_state "$JOB")" = succeeded
check_grep "download resumes at byte $C from https://127.0.0.1:$MIRROR_PORT/bundles/$ID4.fwb\)" \
	"the pass after the kill resumed from the mirror at the checkpoint" cat "$A/agent.log"
check_true "nginx answered the resume with 206" test "$(mirror_served "$ID4" 206)" -ge 1
check_grep "CN=dev-a 206 \"GET /bundles/$ID4.fwb [^\"]*\" [0-9]* \"bytes=$C-\"" \
	"... to Range: bytes=$C-" mirror_log
check_true "fleetd served no byte of 1.1.3" test "$(fleetd_served "$ID4")" -eq 0
check_true "slot a holds 1.1.3" cmp -s "$A/sim/slot-a" "$T/fw/f113"
agent_stop dev-a
finish
