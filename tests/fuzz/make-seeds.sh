#!/usr/bin/env bash
# Regenerate the fuzz seed corpus in tests/fuzz/corpus/ with fsig-tool:
# small valid bundles (plain, zstd, two payloads, P-256, provenance-free),
# their manifests, and roots (v1, and a rotated v2).  The seeds are
# committed; run this only when the formats change.
#
#   FSIG_TOOL=build/tests/tools/fsig-tool tests/fuzz/make-seeds.sh
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
tool=${FSIG_TOOL:-$top/build/tests/tools/fsig-tool}
out=$top/tests/fuzz/corpus
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cd "$t"

"$tool" keygen ed >/dev/null
"$tool" keygen --alg p256 p256 >/dev/null
"$tool" keygen root >/dev/null
head -c 300 /dev/urandom >small.img
{ head -c 3000 /dev/zero; head -c 200 /dev/urandom; } >zeros.img
: >empty.img

mkdir -p "$out/bundle" "$out/manifest" "$out/root"
rm -f "$out"/bundle/* "$out"/manifest/* "$out"/root/*
mk() { "$tool" create --name fw --version "$1" --security-version 2 \
	--hardware gw --hardware gw2 -o "$out/bundle/$2" "${@:3}"; }
mk 1.0.0 plain.fwb --key ed --image small.img
mk 1.1.0-rc.1 zstd.fwb --key ed --image zeros.img --compress zstd
mk 2.0.0 two.fwb --key ed --key p256 --image small.img --image empty.img \
	--expires 30d
for b in "$out"/bundle/*.fwb; do
	tar -xOf "$b" manifest.json >"$out/manifest/$(basename "$b" .fwb).json"
done
"$tool" root-init --root-key root --targets-key ed.pub -o "$out/root/v1.json"
"$tool" root-rotate --prev "$out/root/v1.json" --sign root --sign p256 \
	--root-key p256 --targets-key ed.pub --targets-key p256 \
	-o "$out/root/v2.json"
ls -l "$out"/*/
