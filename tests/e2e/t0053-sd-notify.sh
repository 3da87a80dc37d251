#!/usr/bin/env bash
# fleetd and fleet-agent speak systemd's notify protocol (fleetd.service
# and fleet-agent.service are Type=notify with WatchdogSec): a real
# AF_UNIX datagram socket stands in for systemd and sees, with each
# sender's pid from the kernel, READY=1 once fleetd serves (after its
# ready line), WATCHDOG=1 at half the interval from the main loop, none
# while fleetd is stopped (SIGSTOP: what systemd's watchdog acts on),
# again once it runs, STOPPING=1 on SIGTERM; nothing from fleetd's
# mosquitto, which links libsystemd and would say READY=1 in fleetd's
# name if it inherited the socket.  The agent says READY=1 and pings
# too.  Without NOTIFY_SOCKET nothing is sent (every other test).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

N=$T/notify.out
python3 "$FLEET_SRC/tests/e2e/notify_listen.py" "$T/notify" >"$N" 2>"$T/notify.log" &
track $!
wait_until 10 test -S "$T/notify" || { echo "no notify socket" >&2; exit 1; }

# lines of $N from PID with MESSAGE
said() { awk -v p="$1" -v m="$2" '$2 == p && $3 == m' "$N"; }
count() { said "$1" "$2" | wc -l; }
# seconds since PID's last WATCHDOG=1
silent_for() {
	local last
	last=$(said "$1" WATCHDOG=1 | tail -n 1 | cut -d' ' -f1)
	[ -n "$last" ] && python3 -c "import sys,time; sys.exit(time.time() - $last < $2)"
}

# 2 s: a ping every second, from a loop that ticks every second
export NOTIFY_SOCKET=$T/notify WATCHDOG_USEC=2000000
start_fleetd --with-broker
unset NOTIFY_SOCKET WATCHDOG_USEC
check_exit 0 "fleetd said READY=1 from its own pid" \
	wait_until 10 sh -c "[ \$(awk '\$2 == $FLEETD_PID && \$3 == \"READY=1\"' '$N' | wc -l) = 1 ]"
check_exit 0 "... and pings WATCHDOG=1 from its main loop" \
	wait_until 10 sh -c "[ \$(awk '\$2 == $FLEETD_PID && \$3 == \"WATCHDOG=1\"' '$N' | wc -l) -ge 3 ]"
broker=$(sed -n 's/.*mosquitto (pid \([0-9]*\)) listening.*/\1/p' "$T/fleetd.log" | tail -n 1)
check_true "positive control: fleetd runs a broker (pid $broker)" test -n "$broker"
check_exit 1 "nothing from any other pid (the broker did not inherit the socket)" \
	grep -qv " $FLEETD_PID " "$N"

kill -STOP "$FLEETD_PID"
check_exit 0 "a stopped fleetd stops pinging (3 s, 1.5 intervals, without one)" \
	wait_until 10 silent_for "$FLEETD_PID" 3
before=$(count "$FLEETD_PID" WATCHDOG=1)
kill -CONT "$FLEETD_PID"
check_exit 0 "... and pings again once it runs" \
	wait_until 10 sh -c "[ \$(awk '\$2 == $FLEETD_PID && \$3 == \"WATCHDOG=1\"' '$N' | wc -l) -gt $before ]"

login_admin
TOK=$(fleetctl -o json token create tnotify --enroll --uses 1 --ttl 1h | jq -r .token)
check_exit 0 "a device enrols" agent_enroll dev-notify "$TOK"
export NOTIFY_SOCKET=$T/notify WATCHDOG_USEC=2000000
agent_start dev-notify
unset NOTIFY_SOCKET WATCHDOG_USEC
apid=${AGENT_PID[dev-notify]}
check_exit 0 "fleet-agent said READY=1 from its own pid" \
	wait_until 10 sh -c "awk '\$2 == $apid' '$N' | grep -q ' READY=1$'"
check_exit 0 "... and pings WATCHDOG=1 from its loop" \
	wait_until 10 sh -c "[ \$(awk '\$2 == $apid && \$3 == \"WATCHDOG=1\"' '$N' | wc -l) -ge 3 ]"
check_exit 0 "the device is online (default table output)" \
	wait_until 20 sh -c "fleetctl devices list --online | grep -q '^dev-notify '"
check_exit 0 "the agent stops on SIGTERM" agent_stop dev-notify
check_exit 0 "... saying STOPPING=1" wait_until 10 sh -c "awk '\$2 == $apid' '$N' | grep -q ' STOPPING=1$'"

kill -TERM "$FLEETD_PID"
check_exit 0 "fleetd exits 0 on SIGTERM" wait "$FLEETD_PID"
check_exit 0 "... after saying STOPPING=1" \
	sh -c "awk '\$2 == $FLEETD_PID' '$N' | grep -q ' STOPPING=1$'"
finish
