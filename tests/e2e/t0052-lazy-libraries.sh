#!/usr/bin/env bash
# Libraries load on first use (issue 9's footprint; common/lazylib.h):
# no program NEEDs libcurl, libarchive, libgit2, libzstd, libubootenv,
# libmodbus (the agent's Modbus sources, agent/lazy_modbus.c) or
# libpq (telemetry forwarding to PostgreSQL, fwd_pg.c),
# fleetctl not libmosquitto either, and `fleetctl bundle verify` of an
# uncompressed bundle opens none of them.  Positive controls, proving the
# LD_DEBUG probe sees a dlopen: a command that talks to fleetd opens
# libcurl, `provision` libarchive, `bundle create --git` libgit2, a zstd
# bundle libzstd, `diag --direct` libmosquitto, and each of those
# commands still works.  (The agent's idle maps: t3001.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

lazy='libcurl\.so|libarchive\.so|libgit2\.so|libzstd\.so|libubootenv\.so|libpq\.so|libmodbus\.so'
for p in fleetd fleetctl fleet-agent fleet-sim; do
	check_exit 1 "$p NEEDs none of the libraries loaded on first use" \
		sh -c "readelf -d '$FLEET_BUILD/$p' | grep NEEDED | grep -E '$lazy'"
done
check_exit 1 "fleetctl NEEDs no libmosquitto (only diag --direct speaks MQTT)" \
	sh -c "readelf -d '$FLEET_BUILD/fleetctl' | grep NEEDED | grep libmosquitto"
check_grep 'NEEDED.*libcrypto\.so' "positive control: readelf shows fleetctl's NEEDED" \
	readelf -d "$FLEET_BUILD/fleetctl"

# opened FILE CMD...: run CMD with exit status FILE.rc; the shared
# objects it opened (LD_DEBUG=files) go to FILE.
opened() {
	local out=$1
	shift
	rm -f "$T/ld".*
	LD_DEBUG=files LD_DEBUG_OUTPUT=$T/ld "$@" >"$out.out" 2>&1
	echo $? >"$out.rc"
	cat "$T/ld".* | grep -o 'file=[^ ]*' | sort -u >"$out"
}
# succeeded FILE WHAT: the command run by `opened FILE` exited 0 (its
# output shows in the log otherwise)
succeeded() { check_exit 0 "$2 (exit 0)" sh -c "cat '$1.out'; exit \$(cat '$1.rc')"; }

check "build the sample firmware and its bundles" ota_firmware
opened "$T/verify" fleetctl -q bundle verify "$T/fw/fw-1.1.0.fwb" \
	--root "$T/fw/root.json" --hardware sim
succeeded "$T/verify" "bundle verify succeeds"
check_grep 'file=libcrypto\.so' "the probe saw verify open libcrypto" cat "$T/verify"
check_exit 1 "bundle verify opens none of the libraries loaded on first use" \
	grep -E "$lazy" "$T/verify"

check "make a zstd bundle" fleetctl -q bundle create --image "$T/fw/fw-1.1.0" \
	--name fleet-sample --version 7.0.1 --security-version 1 --hardware sim \
	--key "$T/fw/keys/targets" --compress zstd --out "$T/z.fwb"
opened "$T/zverify" fleetctl -q bundle verify "$T/z.fwb" \
	--root "$T/fw/root.json" --hardware sim
succeeded "$T/zverify" "verify of the zstd bundle succeeds"
check_grep 'file=libzstd\.so' "verify of a zstd bundle opens libzstd" cat "$T/zverify"

start_fleetd --with-broker
login_admin
opened "$T/list" fleetctl devices list
succeeded "$T/list" "devices list succeeds"
check_grep 'file=libcurl\.so\.4' "devices list opens libcurl" cat "$T/list"
check_exit 1 "devices list opens neither libarchive, libgit2 nor libmosquitto" \
	grep -E 'libarchive\.so|libgit2\.so|libmosquitto\.so' "$T/list"

opened "$T/prov" fleetctl provision dev-lazy --out "$T/dev-lazy.tar.gz"
succeeded "$T/prov" "provision succeeds"
check_grep 'file=libarchive\.so' "provision opens libarchive" cat "$T/prov"
check_grep '^dev-lazy/agent\.conf$' "its tar.gz lists the agent.conf" \
	tar -tzf "$T/dev-lazy.tar.gz"

check "issue a technician certificate" fleetctl -q technician issue lazy --out "$T/lazy.tgz"
opened "$T/direct" fleetctl diag --direct --cert-bundle "$T/lazy.tgz" --timeout 1s ghost ping
check_grep '^7$' "diag --direct reaches the broker (no device: timeout)" cat "$T/direct.rc"
check_grep 'file=libmosquitto\.so' "diag --direct opens libmosquitto" cat "$T/direct"

R=$T/repo
git init -q "$R"
git -C "$R" -c user.email=t@example.invalid -c user.name=t commit -q \
	--allow-empty -m "release"
opened "$T/git" fleetctl -q bundle create --image "$T/fw/fw-1.1.0" \
	--name fleet-sample --version 7.0.0 --security-version 1 \
	--hardware sim --key "$T/fw/keys/targets" --git "$R" --out "$T/git.fwb"
succeeded "$T/git" "bundle create --git succeeds"
check_grep 'file=libgit2\.so' "bundle create --git opens libgit2" cat "$T/git"
check_grep "\"commit\": \"$(git -C "$R" rev-parse HEAD)\"" \
	"the bundle's provenance names the commit" \
	fleetctl -o json bundle inspect "$T/git.fwb"
finish
