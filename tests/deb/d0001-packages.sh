#!/usr/bin/env bash
# The Debian packages that make deb built into build-deb/ (make
# check-deb): lintian finds no error in any of them (positive control: a
# package without its copyright file is an error); each holds its
# programs, man pages and completions, fleetd and fleet-agent their
# units; Depends name the libraries the programs dlopen (invisible to
# dpkg-shlibdeps), fleetd's its broker and adduser; fleetd's postinst
# creates the user fleet before dh_installsystemd's part enables and
# starts the unit; fleet-agent's enables its unit; the version is the
# Makefile's.
. "$(dirname "$0")/../e2e/lib.sh"

D=$FLEET_SRC/build-deb
deb() { echo "$D/$1_"*_*.deb; }
for p in fleetctl fleetd fleet-agent fleet-sim; do
	check_true "$p was built" test -f "$(deb "$p")"
done
version=$(sed -n 's/^VERSION := //p' "$FLEET_SRC/Makefile")
check_grep "^$version\$" "the packages carry the Makefile's VERSION (debian/changelog)" \
	dpkg-deb -f "$(deb fleetd)" Version
check_exit 0 "lintian: no error in any package" lintian --fail-on error "$D"/*.deb

dpkg-deb -R "$(deb fleetctl)" "$T/bad"
rm "$T/bad/usr/share/doc/fleetctl/copyright"
dpkg-deb -b "$T/bad" "$T/bad.deb" >/dev/null
check_exit 2 "positive control: lintian fails a package without copyright" \
	lintian --fail-on error "$T/bad.deb"

has() { dpkg-deb -c "$(deb "$1")" | awk '{print $6}' | grep -qx "./$2"; }
for f in usr/bin/fleetctl usr/share/man/man1/fleetctl.1.gz \
	usr/share/bash-completion/completions/fleetctl; do
	check_true "fleetctl holds $f" has fleetctl "$f"
done
for f in usr/bin/fleetd usr/lib/fleet/fleet_revoke.so lib/systemd/system/fleetd.service \
	usr/share/man/man8/fleetd.8.gz etc/default/fleetd; do
	check_true "fleetd holds $f" has fleetd "$f"
done
for f in usr/bin/fleet-agent lib/systemd/system/fleet-agent.service \
	usr/share/man/man8/fleet-agent.8.gz; do
	check_true "fleet-agent holds $f" has fleet-agent "$f"
done
check_exit 1 "fleet-agent does not carry fleet-sim" has fleet-agent usr/bin/fleet-sim
check_true "fleet-sim holds usr/bin/fleet-sim" has fleet-sim usr/bin/fleet-sim

dep() { dpkg-deb -f "$(deb "$1")" Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//'; }
for l in mosquitto adduser libmicrohttpd12 libcurl4 libpq5; do
	check_grep "^$l\$" "fleetd depends on $l" dep fleetd
done
for l in libcurl4 libzstd1 libarchive13 libubootenv0.1 libmosquitto1 libmodbus5; do
	check_grep "^$l\$" "fleet-agent depends on $l" dep fleet-agent
done
for l in libcurl4 libgit2-[0-9.]+ libmosquitto1; do
	check_grep "^$l\$" "fleetctl depends on $l (dlopen)" dep fleetctl
done

dpkg-deb -e "$(deb fleetd)" "$T/fleetd.ctl"
dpkg-deb -e "$(deb fleet-agent)" "$T/agent.ctl"
check_exit 0 "fleetd's postinst creates the user fleet, then enables and starts fleetd" \
	awk '/adduser --system/ { u = NR } /helper enable .fleetd.service/ { e = NR }
	     /deb-systemd-invoke/ { s = NR } END { exit !(u && u < e && e < s) }' "$T/fleetd.ctl/postinst"
check_grep "helper enable 'fleet-agent.service'" "fleet-agent's postinst enables its unit" \
	cat "$T/agent.ctl/postinst"
finish
