#!/usr/bin/env bash
# `fleetctl diag --all ping` over 200 simulated devices (issue 12): two
# fleet-sim processes, 190 devices and 10; the second is stopped, so its
# devices are offline.  The fan-out returns as soon as every online
# device answered, well within its timeout, with the right summary in
# the table and in -o json: 190 answered, each with its own pong, and the
# 10 offline ones listed as offline with when they were last seen.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
check "build the sample firmware" ota_firmware
sim_start stay 190 s g200
STAY=$SIM_PID
sim_start gone 10 x g200
GONE=$SIM_PID
online_count() {
	fleetctl -o json devices list |
		jq -e "[.[] | select(.online)] | length == $1" >/dev/null
}
check_exit 0 "200 simulated devices online in fleetd" wait_until 180 online_count 200
TECH=$(fleetctl -o json token create tech --role technician | jq -r .token)
tech() { fleetctl --token "$TECH" "$@"; }

# positive control: with everyone online, everyone answers
check_exit 0 "diag --all ping with 200 online: all answered, exit 0" \
	tech diag --all ping --timeout 30
cp "$T/last.out" "$T/all.txt"
check_grep '^ping +200 +200 +0 +0 +0$' "... 200 of 200" cat "$T/all.txt"

check "the second fleet-sim (10 devices) stops, exit 0" sim_stop "$GONE"
check_exit 0 "... fleetd sees its devices offline: 190 online" \
	wait_until 30 online_count 190

t0=$(date +%s%N)
check_exit 1 "diag --all ping (table): not everyone answered, exit 1" \
	tech diag --all ping --timeout 30
ms=$((($(date +%s%N) - t0) / 1000000))
cp "$T/last.out" "$T/fan.txt"
check_grep '^CHECK +DEVICES +ANSWERED +FAILED +OFFLINE +TIMED OUT$' \
	"... a summary table" cat "$T/fan.txt"
check_grep '^ping +200 +190 +0 +10 +0$' "... 190 answered, 10 offline, none timed out" \
	cat "$T/fan.txt"
check_grep '10 of 200 devices did not answer ok' "... and says how many did not" \
	cat "$T/fan.txt"
check_true "... returned once the online ones answered (${ms} ms, timeout 30 s)" \
	test "$ms" -lt 15000

tech -o json diag --all ping --timeout 30 >"$T/fan.json" 2>"$T/fan.err"
check_true "-o json: exit 1 again" test $? -eq 1
check "... the summary" jq -e \
	'.summary == {"total": 200, "answered": 190, "failed": 0, "offline": 10, "timed_out": 0}' \
	"$T/fan.json"
check "... the 10 offline devices are the stopped fleet-sim's, each with when it was last seen" \
	jq -e '[.devices[] | select(.state == "offline") | select(.last_seen | type == "string") | .device]
	       == ["x-0001","x-0002","x-0003","x-0004","x-0005","x-0006","x-0007","x-0008","x-0009","x-0010"]' \
	"$T/fan.json"
check "... every answered device: ok, a pong, one of the 190 still running" jq -e \
	'[.devices[] | select(.state == "answered") | select(.ok and .result.pong == true)
	  | .device | startswith("s-")] | length == 190 and all' "$T/fan.json"

check "the first fleet-sim stops, exit 0" sim_stop "$STAY"
finish
