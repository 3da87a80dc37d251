#!/usr/bin/env bash
# What a rollout refuses, with its exit code, and nothing half created
# (issue 10): an unknown bundle (3), an empty target (1), waves that do
# not add up (2 when the flags alone show it, 1 when only the target's
# size does), a threshold out of range (2; the API answers 400), a busy
# device (5, named: another rollout's or an open job's); the API's own
# checks of every spec field; operators' moves and the illegal ones (5);
# who may plan and who may act (viewers: 4).  The devices stay offline:
# commands wait in their sessions, nothing here needs them to answer.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
check "upload fleet-sample 1.1.0" fleetctl bundle upload "$T/fw/fw-1.1.0.fwb"
TOK=$(fleetctl -o json token create ro --enroll --group g1 --uses 6 --ttl 1h | jq -r .token)
for d in dev-a dev-b dev-c dev-d dev-x; do
	check "enrol $d (group g1, offline)" sim_agent "$d" "$TOK"
done
count() { fleetctl -o json rollout list | jq length; }
B=fleet-sample@1.1.0
G=(--device dev-a --device dev-b --device dev-c --device dev-d)

# --- refused by fleetctl before any request: usage errors (2) -------------------
for args in "--waves 10%,50%" "--waves 50%,10%,100%" "--waves 0%,100%" \
	"--waves 2%,x,100%" "--max-failures 101" "--max-failures -1" \
	"--min-sample 0" "--soak -5s" "--rate x" "--concurrency -1" \
	"--device Dev-A" "--device dev-a --device dev-a" "--canary a/b" \
	"--label site" "--label 'site=a b'" "--group A" "--id 'bad id'" \
	"--device-timeout 0s" "--health-window 8d" "--hardware a/b"; do
	# shellcheck disable=SC2086
	eval "check_exit 2 \"create $args: usage error (2)\" fleetctl rollout create --bundle $B $args"
done
check_exit 2 "create without --bundle: usage error (2)" fleetctl rollout create --group g1
check_exit 2 "plan with a stray argument: usage error (2)" fleetctl rollout plan --bundle $B extra
check_grep 'waves do not add up' "... --waves 10%,50% says the waves do not add up" \
	fleetctl rollout create --bundle $B --waves 10%,50%

# --- refused by fleetd ------------------------------------------------------------
check_exit 3 "an unknown bundle is not found (3)" fleetctl rollout create --bundle fleet-sample@9.9.9 --group g1
check_exit 3 "... also for plan (3)" fleetctl rollout plan --bundle fleet-sample@9.9.9 --group g1
check_exit 3 "an unknown named device is not found (3)" fleetctl rollout create --bundle $B --device nosuch
check_exit 1 "an empty target is refused (1)" fleetctl rollout create --bundle $B --group nosuch
check_grep 'empty target' "... saying so" fleetctl rollout create --bundle $B --group nosuch
check_exit 1 "waves of counts that stop short of the target are refused (1)" \
	fleetctl rollout create --bundle $B "${G[@]}" --waves 1,2
check_grep 'waves do not add up: the last one stops at 2 of 4 devices' "... saying so" \
	fleetctl rollout create --bundle $B "${G[@]}" --waves 1,2
check_exit 1 "a canary outside the target is refused (1)" \
	fleetctl rollout create --bundle $B "${G[@]}" --canary dev-x
check_true "nothing was created by any of them" test "$(count)" -eq 0

# the API checks every field itself (a client other than fleetctl)
post() { api POST /api/v1/rollouts -H "Authorization: Bearer $ADMIN_TOKEN" \
	-H 'Content-Type: application/json' --data-binary "$1" -o "$T/resp" -w '%{http_code}'; }
for body in '{"bundle": "'$B'", "target": {"group": "g1"}, "failure": {"percent": 101}}' \
	'{"bundle": "'$B'", "target": {"group": "g1"}, "failure": {"min_sample": 0}}' \
	'{"bundle": "'$B'", "target": {"group": "g1"}, "waves": ["10%", "50%"]}' \
	'{"bundle": "'$B'", "target": {"group": "g1"}, "waves": ["50%", "10%", "100%"]}' \
	'{"bundle": "'$B'", "target": {"group": "g1"}, "wave": ["100%"]}' \
	'{"bundle": "'$B'", "target": {"group": "G1"}}' \
	'{"bundle": "'$B'", "target": {"devices": ["dev-a", "dev-a"]}}' \
	'{"bundle": "'$B'", "target": {"group": "g1"}, "soak_s": -1}' \
	'{"bundle": "'$B'", "target": {"group": "g1"}, "auto_rollback": "no"}' \
	'{"target": {"group": "g1"}}' '[]' '{"bundle": "'$B'", "id": "R 1"}'; do
	code=$(post "$body")
	check_true "API: $body is refused with 400" test "$code" = 400
	check_exit 0 "... as a JSON error" jq -e '.error.code == "bad_request" and (.error.message | length > 0)' "$T/resp"
done
check_true "still nothing created" test "$(count)" -eq 0

# --- busy devices -----------------------------------------------------------------
check "create rollout one over dev-a and dev-b" fleetctl -q rollout create --bundle $B \
	--device dev-a --device dev-b --waves 1,100% --soak 1h --id one
check_exit 5 "a second rollout on a busy device is a conflict (5)" \
	fleetctl rollout create --bundle $B --device dev-b --device dev-c --id two
check_grep '1 device\(s\) busy: dev-b \(rollout one\)' "... naming the device and its rollout" \
	fleetctl rollout create --bundle $B --device dev-b --device dev-c --id two
check_exit 3 "... and rollout two was not created (3)" fleetctl rollout status two
check_exit 0 "... nor is dev-c held by it" sh -c \
	"fleetctl -o json rollout plan --bundle $B --device dev-c | jq -e '.busy == []'"
check "a plan names busy devices without refusing" sh -c \
	"fleetctl -o json rollout plan --bundle $B --device dev-b --device dev-c | jq -e '.busy == [\"dev-b (rollout one)\"]'"
JOB=$(fleetctl -o json update dev-d --bundle $B | jq -r '.[0].job')
check_exit 5 "a device with an open update job is busy too (5)" \
	fleetctl rollout create --bundle $B --device dev-c --device dev-d --id three
check_grep "dev-d \\(job $JOB\\)" "... naming the job" \
	fleetctl rollout create --bundle $B --device dev-c --device dev-d --id three
check_exit 5 "the same id twice is a conflict (5)" \
	fleetctl rollout create --bundle $B --device dev-c --id one
check_true "only rollout one exists" test "$(count)" -eq 1

# --- pause, resume, abort; illegal moves ---------------------------------------
st() { fleetctl -o json rollout status one | jq -r .state; }
wait_until 10 sh -c "fleetctl -o json rollout status one | jq -e '.counts.commanded == 1'" ||
	fail "rollout one commands its canary"
check_exit 5 "resume of a running rollout is a conflict (5)" fleetctl rollout resume one
check_grep 'rollout one is running: cannot resume' "... saying so" fleetctl rollout resume one
check_exit 0 "pause" fleetctl rollout pause one
check_true "... paused" test "$(st)" = paused
check "... with the reason" sh -c "fleetctl -o json rollout status one | jq -e '.reason | startswith(\"paused by token:\")'"
check_exit 5 "pause of a paused rollout is a conflict (5)" fleetctl rollout pause one
check_exit 5 "watch of a paused rollout stops at once with 5" fleetctl rollout watch one --timeout 30s
check_exit 0 "resume" fleetctl rollout resume one
check_true "... running" test "$(st)" = running
check_exit 7 "watch --timeout bounds the wait (7)" fleetctl rollout watch one --timeout 2s --interval 1s
CANARY=$(fleetctl -o json rollout status one --devices | jq -r '.devices[] | select(.state == "commanded") | .job')
check_exit 0 "abort" fleetctl rollout abort one
check_true "... aborted" test "$(st)" = aborted
check "... its open job is cancelled" sh -c "fleetctl -o json jobs show $CANARY | jq -e '.state == \"cancelled\" and (.reason | contains(\"rollout one aborted\"))'"
check "... the other device never started" sh -c \
	"fleetctl -o json rollout status one | jq -e '.counts.cancelled == 1 and .counts.skipped == 1'"
for verb in pause resume abort; do
	check_exit 5 "$verb of an aborted rollout is a conflict (5)" fleetctl rollout $verb one
done
check_exit 5 "rollback of an aborted rollout is a conflict (5)" fleetctl rollback one
check_exit 3 "pause of an unknown rollout: not found (3)" fleetctl rollout pause nosuch
check_exit 2 "rollback with ROLLOUT and --device is a usage error (2)" fleetctl rollback one --device dev-a
check_exit 2 "rollback ROLLOUT --expire is a usage error (2)" fleetctl rollback one --expire 1h
check "the devices are free again" fleetctl -q rollout create --bundle $B \
	--device dev-a --device dev-b --waves 100% --id four

# --- roles: viewers plan and read, operators act --------------------------------
VIEWER=$(fleetctl -o json token create watcher --role viewer | jq -r .token)
OPER=$(fleetctl -o json token create op --role operator | jq -r .token)
check_exit 0 "a viewer may plan" fleetctl --token "$VIEWER" rollout plan --bundle $B --device dev-c
check_exit 0 "a viewer may list" fleetctl --token "$VIEWER" rollout list
check_exit 0 "a viewer may read a rollout" fleetctl --token "$VIEWER" rollout status four
check_exit 4 "a viewer may not create (4)" fleetctl --token "$VIEWER" rollout create --bundle $B --device dev-c
check_exit 4 "a viewer may not pause (4)" fleetctl --token "$VIEWER" rollout pause four
check_exit 4 "a viewer may not roll back (4)" fleetctl --token "$VIEWER" rollback four
check_exit 0 "an operator may pause" fleetctl --token "$OPER" rollout pause four
check_exit 0 "an operator may abort" fleetctl --token "$OPER" rollout abort four
finish
