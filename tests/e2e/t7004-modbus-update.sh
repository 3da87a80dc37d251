#!/usr/bin/env bash
# A Modbus device that stops answering does not hold up the agent (issue
# 16, "Must show"; docs/modbus.md "Polling"): a real fleet-agent in sim
# mode polls two tests/tools/modbus-sim processes; one (source quiet,
# timeout 5 s) is stopped with SIGSTOP (the kernel takes its connections
# and requests, nothing answers) and reported down (quiet.up 0, the
# positive control), and meanwhile an update job (`fleetctl update` of a
# signed bundle, downloading for about 4 s) runs to "succeeded" through
# its simulated reboot, while the other source's values keep arriving:
# between quiet's down and its down again after the reboot, no gap
# between live samples over 2 s but the reboot's (which waits for
# quiet's request in flight: under its timeout + 3 s), each the
# simulator's ramp.  `fleetctl diag ID modbus` answers (JSON and table)
# before and after the reboot; continued, quiet is up again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the firmware's trust root" fleetctl root push "$T/fw/root.json"
# 1 MiB at 256 KiB/s: the job downloads for about 4 s, quiet silent
check "make a 1 MiB firmware" ota_pad "$T/fw/fw-1.1.0" 1 "$T/fw/big"
check "sign it as fleet-sample 1.1.1" ota_bundle "$T/fw/big" 1.1.1 1
check "upload fleet-sample 1.1.1" fleetctl bundle upload "$T/fw/fleet-sample-1.1.1.fwb"
TOK=$(fleetctl -o json token create e2e --enroll --uses 1 | jq -r .token)
check "enrol dev-a and make it a simulated device" sim_agent dev-a "$TOK"
A=$(agent_dir dev-a)

check "the simulator of source quiet listens" modbus_sim_start quiet
check "the simulator of source live listens" modbus_sim_start live
# quiet waits the longest a response may take (timeout 5 s): an agent
# that waited on it would stall for seconds at each attempt
cat >"$A/modbus.conf" <<EOF
[source quiet]
host = 127.0.0.1
port = $PORT_quiet
interval = 300ms
timeout = 5s
[registers quiet]
u16 = holding 0

[source live]
host = 127.0.0.1
port = $PORT_live
interval = 300ms
timeout = 300ms
[registers live]
ramp = input 0
f_cdab = holding 12 type=float32 order=cdab scale=2 offset=1
EOF
printf '[modbus]\nmap = modbus.conf\n[download]\nmax_download_rate = 262144\n' >>"$A/agent.conf"
agent_start_sim dev-a
check_exit 0 "dev-a comes online" wait_until 30 dev_online dev-a

tele() { fleetctl -o json telemetry dev-a --metric "$1" --limit 1000; }
last_is() { tele "$1" | jq -e --argjson v "$2" '.points[-1].value == $v' >/dev/null; }
check_exit 0 "quiet.u16 arrives: 1234" wait_until 30 last_is quiet.u16 1234
check_exit 0 "live.f_cdab arrives: 44" wait_until 30 last_is live.f_cdab 44

# --- quiet stops answering -----------------------------------------------------
check "the simulator of quiet is stopped (SIGSTOP)" kill -STOP "$PID_quiet"
check_exit 0 "positive control: quiet.up 0 arrives" wait_until 30 last_is quiet.up 0
diag_is() {
	fleetctl -o json diag dev-a modbus | jq -e '[.result.sources[] | {(.name): .up}] | add
		== {"quiet": false, "live": true}' >/dev/null
}
check_exit 0 "diag modbus -o json: quiet down, live up" diag_is

# --- an update meanwhile ---------------------------------------------------------
check_exit 0 "update dev-a to 1.1.1 --wait, quiet still silent" \
	fleetctl update dev-a --bundle fleet-sample@1.1.1 --wait --timeout 60s
JOB=$(fleetctl -o json jobs list --device dev-a | jq -r '.[0].id')
job_json "$JOB" >"$T/job.json"
check_exit 0 "the job succeeded, through its reboot" jq -e '.state == "succeeded"
	and .to_version == "1.1.1" and ([.events[].state] | index("rebooting"))' "$T/job.json"
check_grep 'sim: power-on 2: booted slot b' "the reboot was a simulated power cycle" cat "$A/agent.log"
check_true "the simulator of quiet is still stopped" proc_stopped "$PID_quiet"

ms() { jq '.points | map(.ts | (sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) * 1000
	+ (capture("\\.(?<m>[0-9]{3})Z$").m | tonumber))' ; }
up0_twice() { [ "$(tele quiet.up | jq '[.points[] | select(.value == 0)] | length')" -ge 2 ]; }
check_exit 0 "after the reboot quiet is reported down again (a second quiet.up 0)" \
	wait_until 30 up0_twice
# quiet's two downs (ms): the job ran between them, quiet silent throughout
tele quiet.up | jq '.points |= map(select(.value == 0))' | ms >"$T/down.json"
D1=$(jq '.[0]' "$T/down.json")
D2=$(jq '.[1]' "$T/down.json")
jq '[.events[].ts | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601 * 1000]' "$T/job.json" >"$T/job-ts.json"
check_exit 0 "the job ran between quiet's down and its down after the reboot" jq -e \
	--argjson a "$D1" --argjson b "$D2" 'min >= $a - 1000 and max <= $b' "$T/job-ts.json"
# the simulated reboot (agent.log, same clock) and live's samples from
# quiet's first down to its second
R=$(sed -n 's/^\([0-9T:.-]*Z\) .*sim: power-on 2: .*/"\1"/p' "$A/agent.log" |
	jq '(sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) * 1000 + (capture("\\.(?<m>[0-9]{3})Z$").m | tonumber)')
tele live.ramp >"$T/ramp.json"
ms <"$T/ramp.json" | jq --argjson a "$D1" --argjson b "$D2" 'map(select(. >= $a and . <= $b))' >"$T/live.json"
check_exit 0 "live.ramp meanwhile: every gap under 2 s, but the reboot's, under quiet's timeout + 3 s" \
	jq -e --argjson r "$R" 'length >= 10 and
	([range(1; length) as $i | [.[$i - 1], .[$i]]] | map(
	  (.[1] - .[0]) <= (if .[0] <= $r and $r <= .[1] then 8000 else 2000 end)) | all)' "$T/live.json"
check_exit 0 "... the reboot was in that span" jq -e --argjson r "$R" 'first < $r and $r < last' "$T/live.json"
check_exit 0 "... each value the simulator's ramp at its second" jq -e '
	[.points[] | (.ts | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) as $s
	 | .value == ($s % 100) or .value == (($s - 1) % 100)] | all' "$T/ramp.json"
check_exit 0 "diag modbus -o json after the reboot: quiet down, live up" wait_until 20 diag_is
fleetctl diag dev-a modbus >"$T/diag.txt" 2>&1
check_grep "^quiet +127\.0\.0\.1:$PORT_quiet +no " "diag modbus (table): quiet, down" cat "$T/diag.txt"
check_grep "^live +127\.0\.0\.1:$PORT_live +yes " "... live, up" cat "$T/diag.txt"
check_grep '^live\.f_cdab +44$' "... live.f_cdab 44" cat "$T/diag.txt"

check "the simulator of quiet continues (SIGCONT)" kill -CONT "$PID_quiet"
check_exit 0 "quiet.up 1 arrives" wait_until 60 last_is quiet.up 1
check_exit 0 "the agent stops cleanly" agent_stop dev-a
finish
