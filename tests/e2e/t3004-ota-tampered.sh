#!/usr/bin/env bash
# Bundles the device must refuse (issue 5), modified on the server after
# upload or made for another device: a changed manifest, another
# hardware and a security_version below the floor are refused from the
# first bytes, before the payload is downloaded (the slot is not even
# opened); a changed payload byte is caught by the hash while streaming
# and the slot written so far is never made bootable.  Each is "failed"
# at stage "verifying" and the device stays on its slot.  A bundle
# signed by a key that only a newer trust root lists is installed after
# the agent fetched that root from fleetd along the signed chain.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
check "make a 2 MiB firmware" ota_pad "$T/fw/fw-1.1.0" 2 "$T/fw/big"

# upload VER [HW] [SV] [KEY]: sign the big firmware, upload; prints the id
upload() {
	local f
	f=$(ota_bundle "$T/fw/big" "$1" "${3:-1}" "${2:-sim}" "${4:-$T/fw/keys/targets}") &&
		fleetctl bundle upload "$f" | tail -n 1
}
# poke OFFSET BUNDLE_ID: change one byte of the stored bundle file
poke() {
	local f=$FLEETD_STATE/bundles/$2.fwb old
	old=$(dd if="$f" bs=1 skip="$1" count=1 2>/dev/null | od -An -tx1 | tr -d ' ')
	if [ "$old" = 58 ]; then printf 'Y'; else printf 'X'; fi |
		dd of="$f" bs=1 seek="$1" conv=notrunc 2>/dev/null
}
TOK=$(fleetctl -o json token create ota --enroll --uses 2 --ttl 1h | jq -r .token)
A=$(agent_dir dev-a)
check "enrol dev-a as a simulated device" sim_agent dev-a "$TOK"
agent_start_sim dev-a
wait_until 15 dev_online dev-a || fail "dev-a comes online"

# refused VER REASON_RE [EARLY]: the update fails at verifying, the device
# stays on slot a with 1.0.0; EARLY: refused before the payload came
refused() {
	local job size
	job=$(update_job dev-a "fleet-sample@$1")
	wait_until 60 job_final "$job" || { fail "$1: the job ends"; return; }
	check "$1: failed at verifying ($2)" sh -c "fleetctl -o json jobs show $job | jq -e \
		'.state == \"failed\" and .stage == \"verifying\" and (.reason | test(\"$2\"))'"
	check_true "$1: still slot a, no trial" \
		test "$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)" = a0
	check "$1: slot a untouched" cmp "$A/sim/slot-a" "$T/fw/fw-1.0.0"
	if [ -n "${3:-}" ]; then
		size=$(agent_json dev-a | jq .job.bundle.size)
		check_true "$1: refused after $(agent_json dev-a | jq .job.fetched) of $size bytes" \
			test "$(agent_json dev-a | jq .job.fetched)" -lt $((size / 4))
		check_true "$1: slot b never opened" test ! -e "$A/sim/slot-b"
	fi
}

# --- refused from the first bytes ------------------------------------------------
ID=$(upload 1.1.2)
check "change a manifest byte of 1.1.2 on the server" poke 600 "$ID"
refused 1.1.2 'signature' early
ID=$(upload 1.1.3 other-board)
refused 1.1.3 'hardware' early

# --- refused by the payload hash --------------------------------------------------
ID=$(upload 1.1.1)
check "change a payload byte of 1.1.1 on the server" poke 1000000 "$ID"
refused 1.1.1 'hash'
check_true "the slot written on the way is not recorded as holding firmware" \
	test "$(agent_json dev-a | jq -r .slots.b.version)" = null
check_exit 1 "so there is nothing to roll back to" \
	fleetctl rollback --device dev-a --wait --timeout 30s
check_true "no bundle head is left in the state dir" test ! -e "$A/state/bundle.head"

# --- the anti-rollback floor ------------------------------------------------------
upload 2.0.0 sim 2 >/dev/null
check "update to 2.0.0 (security_version 2)" \
	fleetctl update dev-a --bundle fleet-sample@2.0.0 --wait --timeout 60s
check "the floor is now 2" sh -c "fleet-agent status -o json --config '$A/agent.conf' --sim '$A/sim' | jq -e '.security_floor == 2 and .firmware == \"2.0.0\"'"
upload 2.0.1 sim 1 >/dev/null
job=$(update_job dev-a fleet-sample@2.0.1)
wait_until 60 job_final "$job" || fail "2.0.1: the job ends"
check "2.0.1 (security_version 1) is refused at verifying" sh -c "fleetctl -o json jobs show $job | jq -e \
	'.state == \"failed\" and .stage == \"verifying\" and (.reason | test(\"security_version\"))'"
check_true "... and the device stays on slot b" \
	test "$(sim_var dev-a fleet_slot)$(sim_var dev-a upgrade_available)" = b0

# --- a newer trust root from fleetd ------------------------------------------------
K=$T/keys
mkdir -p "$K"
fleetctl -q keys generate --out "$K/ci2" >/dev/null
check "root v2 adds a second signing key" fleetctl -q root rotate --from "$T/fw/root.json" \
	--root-key "$T/fw/keys/root" --targets-key "$T/fw/keys/targets.pub" \
	--targets-key "$K/ci2.pub" --sign-key "$T/fw/keys/root" --out "$K/root-v2.json"
check "push root v2" fleetctl root push "$K/root-v2.json"
upload 2.1.0 sim 2 "$K/ci2" >/dev/null
check "a bundle signed by the new key installs" \
	fleetctl update dev-a --bundle fleet-sample@2.1.0 --wait --timeout 60s
check "the agent walked to root v2" sh -c "fleet-agent status -o json --config '$A/agent.conf' --sim '$A/sim' | jq -e '.trust_root == 2 and .firmware == \"2.1.0\"'"
check_grep 'trust root is now version 2' "... and said so" cat "$A/agent.log"
# a forged root v3 (signed by a key the chain does not know) is not taken
fleetctl -q keys generate --out "$K/evil" >/dev/null
fleetctl -q root rotate --from "$K/root-v2.json" --root-key "$K/evil" \
	--targets-key "$K/evil" --sign-key "$K/evil" --out "$K/root-v3.json" 2>/dev/null
check_exit 6 "fleetd refuses a root v3 not signed by v2's root key" fleetctl root push "$K/root-v3.json"
agent_stop dev-a
finish
