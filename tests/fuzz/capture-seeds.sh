#!/usr/bin/env bash
# Seeds from real traffic: run some end-to-end tests with a preload shim
# (tests/fuzz/capture/preload.c) that records what fleetd, fleetctl,
# fleet-agent and curl really send and write, then turn the recordings
# into fuzz seeds (tests/fuzz/capture/convert.py):
#
#   corpus/http/cap-*       the HTTP requests of fleetctl, the agent and
#                           curl (tokens and ids as fuzz_srv.h placeholders)
#   corpus/mqtt/cap-*       what agents publish (presence, status, events)
#   corpus/agent_cmd/cap-*  fleetd's commands, and command logs as written
#   corpus/journal/cap-*    every OTA journal the agents wrote
#   corpus/config/cap-*     agent.conf and fleetctl's config as written
#   corpus/range/cap-*      the agents' Range requests
#   corpus/bootenv/cap-*    the sim devices' U-Boot environments
#   corpus/pki/cap-*        CSRs sent to enrol, certificates, chains, CRLs
#   data/pki-*              t2101's fleetd CA and CRL (with a revoked
#                           certificate) and the time to judge them at
#
# Needs a built tree (make check BUILD=build has run once).  Rerun when a
# wire format changes; the old cap-* seeds are replaced.
#
#   tests/fuzz/capture-seeds.sh [BUILD_DIR]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
cd "$top"
cap=$(mktemp -d)
trap 'rm -rf "$cap"' EXIT
mkdir -p "$cap/raw" "$cap/tmp"
cc -shared -fPIC -O2 -Wall -o "$cap/capture.so" tests/fuzz/capture/preload.c -ldl
for t in t0001 t1100 t2100 t2101 t2200 t3001 t3002 t3005 t4001 t4003 t5001 t5060 t6001; do
	echo "capture-seeds: $t" >&2
	FLEET_CAPTURE_DIR=$cap/raw LD_PRELOAD=$cap/capture.so KEEP_TMP=1 \
		TMPDIR=$cap/tmp FLEET_BUILD=$build FLEET_JOBS=1 \
		tests/run "$t" >&2 || {
		echo "capture-seeds: $t failed; its traffic is kept anyway" >&2
	}
done
python3 tests/fuzz/capture/convert.py "$cap/raw" "$cap/tmp" tests/fuzz
