#!/bin/bash
# v1005's guest side (tests/vm/mkimage-systemd.sh makes it the unit
# fleet-pkgtest.service of a Debian 12 guest with systemd as PID 1).
# Each check prints "VMCHECK RC WHAT" on the console, its output after a
# failure as "VMOUT ..." lines; the host asserts every RC and "VMDONE".
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
run() {
	local what=$1 rc
	shift
	"$@" >/tmp/vmcheck.out 2>&1
	rc=$?
	echo "VMCHECK $rc $what"
	[ $rc = 0 ] || sed 's/^/VMOUT /' /tmp/vmcheck.out | tail -n 30
}
# wait_until SECONDS CMD...: poll CMD every half second, bounded
wait_until() {
	local end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.5
	done
}
prop() { systemctl show -p "$2" --value "$1"; }
fleetd_restarted() {
	local p
	p=$(prop fleetd MainPID)
	[ "$p" != 0 ] && [ "$p" != "$1" ] && systemctl -q is-active fleetd
}

cd /root/debs || exit 1
run "dpkg -i installs fleetctl, fleetd, fleet-agent and fleet-sim" \
	dpkg -i fleetctl_*.deb fleetd_*.deb fleet-agent_*.deb fleet-sim_*.deb
run "the system user fleet exists" id -u fleet
run "fleetd.service is enabled" systemctl -q is-enabled fleetd
run "fleetd.service is active (it said READY=1)" wait_until 120 systemctl -q is-active fleetd
run "fleetd runs as fleet" bash -c "[ \"\$(ps -o user= -p $(prop fleetd MainPID))\" = fleet ]"
run "its mosquitto runs as fleet" pgrep -u fleet -x mosquitto
run "the state is fleet's, mode 0700" bash -c '[ "$(stat -c %U:%a /var/lib/fleetd)" = fleet:700 ]'
tok=$(runuser -u fleet -- fleetd token create --state /var/lib/fleetd 2>/dev/null)
run "an admin logs in with a token fleetd token create made" \
	bash -c "echo '$tok' | fleetctl login --server https://127.0.0.1:8443 --ca /var/lib/fleetd/ca.pem --token-file -"
run "fleetd answers (fleetctl devices list, table)" fleetctl devices list

run "fleet-agent.service is enabled" systemctl -q is-enabled fleet-agent
run "... and skipped, not failed, before enrolment" \
	bash -c '[ "$(systemctl show -p ConditionResult --value fleet-agent)" = no ] && ! systemctl -q is-failed fleet-agent'
etok=$(fleetctl -o json token create vm --enroll --uses 1 --ttl 1h | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
run "the device enrols into /etc/fleet and /var/lib/fleet-agent" \
	bash -c "echo '$etok' | fleet-agent enroll --server https://127.0.0.1:8443 --ca /var/lib/fleetd/ca.pem --token-file - --id vm-dev"
run "fleet-agent.service starts (it said READY=1)" systemctl start fleet-agent
run "the device is online in fleetd" \
	wait_until 60 bash -c 'fleetctl devices list --online | grep -q "^vm-dev "'

pid=$(prop fleetd MainPID)
kill -STOP "$pid"
run "the watchdog restarts a SIGSTOPped fleetd (30 s + 10 s abort + 5 s)" \
	wait_until 150 fleetd_restarted "$pid"
run "... once" bash -c '[ "$(systemctl show -p NRestarts --value fleetd)" = 1 ]'
run "... for its watchdog" bash -c 'journalctl -u fleetd | grep -q "Watchdog timeout"'
run "the device is online again" \
	wait_until 90 bash -c 'fleetctl devices list --online | grep -q "^vm-dev "'
run "systemctl stop fleetd: a clean stop" \
	bash -c 'systemctl stop fleetd && [ "$(systemctl show -p Result --value fleetd)" = success ]'

run "dpkg -r removes the four packages" dpkg -r fleet-sim fleet-agent fleetd fleetctl
for f in /usr/bin/fleetctl /usr/bin/fleetd /usr/bin/fleet-agent /usr/bin/fleet-sim \
	/usr/lib/fleet /lib/systemd/system/fleetd.service /lib/systemd/system/fleet-agent.service; do
	run "no $f left" test ! -e "$f"
done
run "fleet-agent is no longer running" bash -c '! pgrep -x fleet-agent'
echo VMDONE
