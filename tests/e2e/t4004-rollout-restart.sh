#!/usr/bin/env bash
# The rollout engine keeps nothing in memory (issue 10): fleetd is killed
# with -9 twice during a rollout (once its canary was commanded, once the
# last wave was) and restarted on the same state dir and ports; the
# restarted fleetd takes its engine lease back at once and the rollout
# completes as if nothing happened: every device on 1.1.0, one job each
# in the rollout, and each device's agent ran the rollout's update
# command once (a command sent again keeps its id and is only "seen
# before").
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
check "upload fleet-sample 1.1.0" fleetctl bundle upload "$T/fw/fw-1.1.0.fwb"
TOK=$(fleetctl -o json token create ro --enroll --group g1 --uses 5 --ttl 1h | jq -r .token)
DEVS="dev-a dev-b dev-c dev-d"
for d in $DEVS; do
	check "enrol $d (simulated, group g1)" sim_agent "$d" "$TOK"
	agent_start_sim "$d"
done
all_online() { for d in $DEVS; do dev_online "$d" || return 1; done; }
wait_until 30 all_online || fail "the four devices come online"
on_fw() { dev_json "$1" | jq -e ".firmware == \"$2\"" >/dev/null; }
all_on() { for d in $DEVS; do on_fw "$d" "$1" || return 1; done; }
wait_until 15 all_on 1.0.0 || fail "fleetd sees 1.0.0 on every device"

n=1
restart() {
	check_exit 0 "kill -9 #$n: fleetd is gone, its broker too" fleetd_kill9
	check_exit 0 "kill -9 #$n: fleetd restarts on the same state and ports" \
		fleetd_restart --with-broker
	n=$((n + 1))
}
count_of() { fleetctl -o json rollout status rs | jq -e ".wave == $1 and .counts.$2 >= $3" >/dev/null; }

check "create rollout rs: 1.1.0 in three waves" fleetctl -q rollout create \
	--bundle fleet-sample@1.1.0 --group g1 --waves 1,50%,100% --soak 0s \
	--health-window 1s --id rs
# a watch started now follows the rollout across both restarts
timeout 200 fleetctl rollout watch rs --interval 1s --timeout 180s \
	>"$T/watch.out" 2>"$T/watch.err" &
WATCH=$!
track "$WATCH"
wait_until 30 count_of 1 commanded 1 || fail "the canary is commanded"
restart
wait_until 90 count_of 3 commanded 1 || fail "the last wave is commanded"
restart
check_exit 0 "the rollout completes after both restarts (watch exits 0)" \
	timeout 200 fleetctl rollout watch rs --interval 1s --timeout 180s
wait "$WATCH"
check_true "the watch started before the kills exits 0 too" test $? -eq 0
check_grep '^rs completed' "... ending with completed" cat "$T/watch.out"
if wait_until 15 all_on 1.1.0; then pass "every device runs 1.1.0"
else fail "every device runs 1.1.0"; fi
done_ok() { fleetctl -o json rollout status rs | jq -e '.counts.healthy == 4 and .counts.failed == 0'; }
check "4 healthy, none failed" done_ok
for d in $DEVS; do
	job=$(fleetctl -o json jobs list --device "$d" | jq -r '[.[] | select(.rollout == "rs")] | if length == 1 then .[0].id else "many" end')
	check_true "$d has one job of the rollout" test "$job" != many -a "$job" != null
	cmd=$(fleetctl -o json jobs show "$job" | jq -r .command)
	check_true "$d's agent ran its command $cmd once" \
		test "$(grep -c "command $cmd: update" "$(agent_dir "$d")/agent.log")" -eq 1
done
check_grep 'rollout rs: wave 3 of 3 started' "positive control: fleetd logged the waves" \
	cat "$T/fleetd-old.log" "$T/fleetd.log"
for d in $DEVS; do agent_stop "$d"; done
finish
