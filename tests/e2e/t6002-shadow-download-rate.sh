#!/usr/bin/env bash
# The shadow's download_rate really caps an update's download (issue 13,
# docs/shadow.md): a 2 MiB bundle downloads quickly without the key,
# takes at least about size / rate with download_rate=200000, and
# quickly again once the key is deleted (back to agent.conf's: none).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the firmware's trust root" fleetctl root push "$T/fw/root.json"
check "make a 2 MiB firmware" ota_pad "$T/fw/fw-1.1.0" 2 "$T/fw/big"
for v in 1.1.1 1.1.2 1.1.3; do
	B=$(ota_bundle "$T/fw/big" "$v" 1)
	check "sign and upload it as $v" fleetctl -q bundle upload "$B"
done
TOK=$(fleetctl -o json token create rate --enroll --uses 1 --ttl 1h | jq -r .token)
check "enrol dev-a as a simulated device" sim_agent dev-a "$TOK"
agent_start_sim dev-a
check "dev-a comes online" wait_until 30 dev_online dev-a

past_download() { case "$(job_state "$1")" in queued | downloading) return 1 ;; esac; }
succeeded() { test "$(job_state "$1")" = succeeded; }
reported_at() { fleetctl -o json shadow get dev-a | jq -e ".reported.version == $1" >/dev/null; }
# update_timed VERSION: update dev-a; $SECS gets the seconds until the
# job was past downloading; true once the job succeeded
update_timed() {
	local t0 job
	t0=$(date +%s.%N)
	job=$(update_job dev-a "fleet-sample@$1")
	wait_until 120 past_download "$job" || return 1
	SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	wait_until 120 succeeded "$job"
}
faster() { awk -v s="$SECS" -v m="$1" 'BEGIN { exit !(s < m) }'; }
slower() { awk -v s="$SECS" -v m="$1" 'BEGIN { exit !(s >= m) }'; }

check "update to 1.1.1 without a cap" update_timed 1.1.1
check_true "... downloaded in under 5 s ($SECS s)" faster $((5 * WAIT_SCALE))
check "shadow: download_rate=200000" fleetctl shadow set dev-a download_rate=200000
check "... reported applied" wait_until 20 reported_at 1
check_grep '^download_rate +200000 +200000 +in sync$' "... in sync (table)" fleetctl shadow get dev-a
check "update to 1.1.2 under the cap" update_timed 1.1.2
check_true "... took at least 7 s for 2 MiB at 200 kB/s ($SECS s)" slower 7
check "shadow: download_rate deleted" fleetctl shadow set dev-a download_rate=null
check "... reported" wait_until 20 reported_at 2
check "update to 1.1.3 without a cap again" update_timed 1.1.3
check_true "... downloaded in under 5 s ($SECS s)" faster $((5 * WAIT_SCALE))
finish
