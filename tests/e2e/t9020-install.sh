#!/usr/bin/env bash
# make install places exactly the programs, the broker plugin, the man
# pages, the completions of each program for bash, zsh and fish, and the
# systemd units, under DESTDIR and PREFIX (UNITDIR for the units); the
# units run the installed programs; systemd-analyze verify accepts them
# (positive control: it refuses a unit with a bad line) and their
# offline security exposure stays at or under 3.0 ("OK"); fleetd's unit
# runs it as Type=notify with a watchdog, under the user fleet.
. "$(dirname "$0")/lib.sh"

inst() {
	make -s -C "$FLEET_SRC" BUILD="$FLEET_BUILD" SAN="${FLEET_SAN:-0}" install "$@"
}

check_exit 0 "make install DESTDIR=\$T/root PREFIX=/usr" inst DESTDIR="$T/root" PREFIX=/usr
want=$T/want
{
	for p in fleetctl fleetd fleet-agent fleet-sim; do
		echo "usr/bin/$p"
		echo "usr/share/bash-completion/completions/$p"
		echo "usr/share/zsh/site-functions/_$p"
		echo "usr/share/fish/vendor_completions.d/$p.fish"
	done
	echo usr/lib/fleet/fleet_revoke.so
	echo usr/share/man/man1/fleetctl.1
	echo usr/share/man/man1/fleet-sim.1
	echo usr/share/man/man5/fleet-bundle.5
	echo usr/share/man/man8/fleetd.8
	echo usr/share/man/man8/fleet-agent.8
	echo usr/lib/systemd/system/fleetd.service
	echo usr/lib/systemd/system/fleet-agent.service
} | sort >"$want"
(cd "$T/root" && find . -type f | sed 's|^\./||' | sort) >"$T/got"
check "the tree holds exactly the expected files" diff "$want" "$T/got"
check "every man page of the repository is installed" \
	sh -c "cd '$FLEET_SRC/man' && for m in *; do grep -qx \"usr/share/man/man\${m##*.}/\$m\" '$T/got' || exit 1; done"
for p in fleetctl fleetd fleet-agent fleet-sim; do
	check "$p is installed executable and runs" "$T/root/usr/bin/$p" --version
done
check_grep '^ExecStart=/usr/bin/fleetd serve --state /var/lib/fleetd ' \
	"fleetd.service runs PREFIX/bin/fleetd" cat "$T/root/usr/lib/systemd/system/fleetd.service"
check_grep '^ExecStart=/usr/bin/fleet-agent run ' \
	"fleet-agent.service runs PREFIX/bin/fleet-agent" \
	cat "$T/root/usr/lib/systemd/system/fleet-agent.service"
check_exit 0 "UNITDIR moves the units (Debian: /lib/systemd/system)" \
	inst DESTDIR="$T/root2" PREFIX=/usr UNITDIR=/lib/systemd/system
check_true "... fleetd.service is there" test -f "$T/root2/lib/systemd/system/fleetd.service"

# verify resolves ExecStart on this machine: an install into a real
# prefix, whose programs exist where the units say.  verify exits 0 on a
# line it ignores (an unknown key or value), so a clean unit is one that
# passes without a word.
verify_clean() {
	local out
	out=$(systemd-analyze verify --man=no "$1" 2>&1) || { echo "$out"; return 1; }
	[ -z "$out" ] || { echo "$out"; return 1; }
}
check_exit 0 "make install PREFIX=\$T/prefix" inst PREFIX="$T/prefix"
U=$T/prefix/lib/systemd/system
for u in fleetd fleet-agent; do
	check_exit 0 "systemd-analyze verify accepts $u.service without a warning" \
		verify_clean "$U/$u.service"
	check_exit 0 "$u.service: systemd-analyze security exposure <= 3.0" \
		systemd-analyze security --offline=true --threshold=30 "$U/$u.service"
done
mkdir -p "$T/bad"
sed 's/^ProtectSystem=strict/ProtectSystem=stricter/' "$U/fleetd.service" >"$T/bad/fleetd.service"
check_exit 1 "positive control: a bad value is not clean" verify_clean "$T/bad/fleetd.service"
sed 's|^ExecStart=.*/bin/fleetd |ExecStart=/nonexistent/fleetd |' "$U/fleetd.service" >"$T/bad/fleetd.service"
check_exit 1 "positive control: a program that is not there is not clean" \
	verify_clean "$T/bad/fleetd.service"
sed '/^SystemCallFilter=/d; /^CapabilityBoundingSet=/d' "$U/fleetd.service" >"$T/bad/fleetd.service"
check_exit 1 "positive control: security fails the unit without its filters" \
	systemd-analyze security --offline=true --threshold=30 "$T/bad/fleetd.service"
for line in Type=notify WatchdogSec=30s User=fleet StateDirectory=fleetd \
	Restart=on-failure NoNewPrivileges=yes ProtectSystem=strict; do
	check_grep "^$line\$" "fleetd.service: $line" cat "$U/fleetd.service"
done
finish
