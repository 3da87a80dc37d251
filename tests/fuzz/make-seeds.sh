#!/usr/bin/env bash
# Regenerate libfleetsign's fuzz seed material with fsig-tool:
#
#   tests/fuzz/data/root.json    the trusted root (v1) fuzz_bundle and
#                                fuzz_root start from; built into the
#                                targets (embed.sh), so seeds signed by
#                                its keys pass signature verification
#   tests/fuzz/data/bundle.fwb   a bundle it verifies (fw@1.0.0), which
#                                the fleetd targets upload at start-up
#   tests/fuzz/corpus/bundle/    bundles signed by that root's targets
#                                keys: plain, zstd, two payloads, P-256,
#                                provenance, and the policy refusals
#                                that need a good signature first
#                                (hardware, floor, expired), plus one
#                                signed by a stranger
#   tests/fuzz/corpus/manifest/  their manifests, and hand-written ones
#                                with every key: provenance, delta_from,
#                                pre-release versions
#   tests/fuzz/corpus/root/      candidate chains on top of data/root.json
#                                (parts separated by a "%%" line, see
#                                fuzz.h): v2, v2+v3, v3+v2, a gap, a
#                                forged step, two different v2s
#
# The private keys are thrown away: regenerate everything together.
# Expiry is judged at FUZZ_NOW (fuzz.h), which must lie after the seeds
# are made (the 30-day bundle then counts as expired) and before the
# roots expire (10 years on).  The seeds are committed; run this only
# when the formats change.
#
#   FSIG_TOOL=build/tests/tools/fsig-tool tests/fuzz/make-seeds.sh
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
tool=${FSIG_TOOL:-$top/build/tests/tools/fsig-tool}
out=$top/tests/fuzz/corpus
data=$top/tests/fuzz/data
now=$(sed -n 's/^#define FUZZ_NOW ((time_t)\([0-9]*\)).*/\1/p' "$top/tests/fuzz/fuzz.h")
if [ -z "$now" ] || [ "$(date +%s)" -gt $((now - 31 * 86400)) ]; then
	echo "make-seeds: FUZZ_NOW in tests/fuzz/fuzz.h must be more than" \
		"30 days ahead; move it (and its comment) forward" >&2
	exit 1
fi
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cd "$t"

for k in root root2 ed evil; do "$tool" keygen "$k" >/dev/null; done
"$tool" keygen --alg p256 p256 >/dev/null
head -c 300 /dev/urandom >small.img
{ head -c 3000 /dev/zero; head -c 200 /dev/urandom; } >zeros.img
: >empty.img
# a small repository for the provenance seed
mkdir repo
git -C repo init -q
git -C repo -c user.name=fuzz -c user.email=fuzz@example.invalid \
	commit -q --allow-empty -m seed
git -C repo -c user.name=fuzz -c user.email=fuzz@example.invalid \
	tag -a v1.2.0 -m v1.2.0
git -C repo remote add origin https://example.invalid/fw.git

mkdir -p "$out/bundle" "$out/manifest" "$out/root" "$data"
rm -f "$out"/bundle/* "$out"/manifest/* "$out"/root/*

# The trusted root: root key "root", targets keys "ed" and "p256".
"$tool" root-init --root-key root --targets-key ed.pub \
	--targets-key p256.pub --expires 3650d -o "$data/root.json"

mk() { "$tool" create --name fw --hardware gw --hardware gw2 \
	--security-version 2 -o "$out/bundle/$1" "${@:2}"; }
mk plain.fwb --version 1.0.0 --key ed --image small.img
mk zstd.fwb --version 1.1.0-rc.1 --key ed --image zeros.img --compress zstd
mk two.fwb --version 2.0.0 --key ed --key p256 --image small.img \
	--image empty.img --expires 3650d
mk p256.fwb --version 2.0.1+build.7 --key p256 --image small.img
mk prov.fwb --version 1.2.0 --key ed --image small.img --git repo
mk expired.fwb --version 1.0.1 --key ed --image small.img --expires 30d
mk untrusted.fwb --version 1.0.2 --key evil --image small.img
"$tool" create --name fw --version 1.0.3 --security-version 1 \
	--hardware gw --key ed --image small.img -o "$out/bundle/floor.fwb"
"$tool" create --name fw --version 1.0.4 --security-version 2 \
	--hardware x86 --key ed --image small.img -o "$out/bundle/otherhw.fwb"
# fuzz_http and fuzz_mqtt upload it into their fleetd at start-up
cp "$out/bundle/plain.fwb" "$data/bundle.fwb"
for b in "$out"/bundle/*.fwb; do
	tar -xOf "$b" manifest.json >"$out/manifest/$(basename "$b" .fwb).json"
done

# Manifests the writer does not make: every optional key.
sha=$(printf '%064d' 0 | tr 0 a)
cat >"$out/manifest/delta.json" <<EOF
{"format": 1, "name": "fw", "version": "2.0.0-alpha.1+exp.sha.5114f85",
 "security_version": 3, "hardware": ["gw", "gw:rev-2"],
 "created": "2026-11-29T12:00:00Z", "expires": "2030-01-01T00:00:00Z",
 "provenance": {"commit": "$sha", "describe": "v2.0.0-alpha.1-3-gaaaaaaa-dirty",
  "dirty": true, "remote": "https://example.invalid/fw.git",
  "builder": "fleetctl 0.1.0 on ci-7"},
 "payloads": [{"name": "rootfs.img", "type": "rootfs", "compression": "zstd",
  "size": 10, "sha256": "$sha", "raw_size": 20, "raw_sha256": "$sha",
  "delta_from": "1.9.0-rc.1"},
  {"name": "boot.img", "type": "boot", "compression": "none", "size": 0,
  "sha256": "$sha"}]}
EOF
cat >"$out/manifest/prerelease.json" <<EOF
{"format": 1, "name": "fw", "version": "1.0.0-0.3.7", "security_version": 0,
 "hardware": ["gw"], "created": "2026-11-29T12:00:00+02:00",
 "provenance": null,
 "payloads": [{"name": "a", "type": "image", "compression": "zstd",
  "size": 1, "sha256": "$sha", "raw_size": 1, "raw_sha256": "$sha",
  "delta_from": "1.0.0-x.7.z.92"}]}
EOF

# Root chains on top of data/root.json (v1: root key "root").
"$tool" root-rotate --prev "$data/root.json" --sign root --sign root2 \
	--root-key root2 --targets-key ed.pub --expires 3650d -o v2.json
"$tool" root-rotate --prev v2.json --sign root2 --sign p256 \
	--root-key p256 --root-key root2 --root-threshold 2 \
	--targets-key p256.pub --expires 3650d -o v3.json
# v2 signed by its own new key only: v1's threshold is missing
"$tool" root-rotate --prev "$data/root.json" --sign root2 \
	--root-key root2 --targets-key ed.pub --expires 3650d -o v2-forged.json
# another v2, properly signed, with other targets
"$tool" root-rotate --prev "$data/root.json" --sign root --sign evil \
	--root-key evil --targets-key evil.pub --expires 3650d -o v2-other.json
cp v2.json "$out/root/v2.json"
cp v3.json "$out/root/v3-gap.json"
cp v2-forged.json "$out/root/v2-forged.json"
cp "$data/root.json" "$out/root/v1-again.json"
{ cat v2.json; printf '%%%%\n'; cat v3.json; } >"$out/root/v2-v3.chain"
{ cat v3.json; printf '%%%%\n'; cat v2.json; } >"$out/root/v3-v2.chain"
{ cat v2.json; printf '%%%%\n'; cat v2-other.json; } \
	>"$out/root/v2-twice.chain"
ls -l "$data" "$out"/*/
