#!/usr/bin/env bash
# Bundles on fleetd (issue 4): trust root push and rotation rules,
# streamed uploads verified before storing, roles, idempotent re-upload,
# conflicting versions, tampered uploads refused, Range downloads.
. "$(dirname "$0")/lib.sh"

start_fleetd
login_admin
K=$T/keys
mkdir -p "$K"
fleetctl -q keys generate --out "$K/root1" >/dev/null
fleetctl -q keys generate --out "$K/root2" >/dev/null
fleetctl -q keys generate --alg p256 --out "$K/ci1" >/dev/null
fleetctl -q keys generate --out "$K/ci2" >/dev/null
fleetctl -q root init --root-key "$K/root1" --targets-key "$K/ci1.pub" --out "$K/root-v1.json"
head -c 3000000 /dev/urandom >"$T/img"
mk() { fleetctl -q bundle create --image "$T/img" --name fw --version "$1" \
	--security-version 1 --hardware rpi4 --key "$2" --out "$3"; }
mk 1.0.0 "$K/ci1" "$T/a.fwb"

check_exit 5 "upload before any trust root is a conflict" fleetctl bundle upload "$T/a.fwb"
check "push root v1" fleetctl root push "$K/root-v1.json"
check_exit 5 "pushing v1 again is refused" fleetctl root push "$K/root-v1.json"
check_grep '^[0-9a-f]{16}$' "upload a signed bundle" fleetctl bundle upload "$T/a.fwb"
ID=$(fleetctl -o json bundles list | jq -r '.[0].id')
check "re-uploading the same bundle is fine" fleetctl bundle upload "$T/a.fwb"
check "bundles list has it once" sh -c "fleetctl -o json bundles list | jq -e 'length == 1 and .[0].name == \"fw\"'"
check "bundles show by NAME@VERSION" sh -c "fleetctl -o json bundles show fw@1.0.0 | jq -e '.id == \"$ID\" and .manifest.payloads[0].name == \"img\"'"
check "bundles show by id prefix" sh -c "fleetctl -o json bundles show ${ID:0:8} | jq -e '.version == \"1.0.0\"'"
check_exit 3 "unknown bundle is not found" fleetctl bundles show fw@9.9.9
head -c 100 /dev/urandom >>"$T/img2"; cat "$T/img" >>"$T/img2"
fleetctl -q bundle create --image "$T/img2" --name fw --version 1.0.0 \
	--security-version 1 --hardware rpi4 --key "$K/ci1" --out "$T/other.fwb"
check_exit 5 "a different bundle with the same name and version is a conflict" \
	fleetctl bundle upload "$T/other.fwb"

# Tampering: flip a payload byte, then a manifest byte.
cp "$T/a.fwb" "$T/bad.fwb"
printf 'X' | dd of="$T/bad.fwb" bs=1 seek=100000 conv=notrunc 2>/dev/null
mk 1.0.1 "$K/ci1" "$T/b.fwb"
cp "$T/b.fwb" "$T/badman.fwb"
printf ' ' | dd of="$T/badman.fwb" bs=1 seek=600 conv=notrunc 2>/dev/null
check_exit 6 "tampered payload is refused (exit 6)" fleetctl bundle upload "$T/bad.fwb"
check_grep 'hash' "... naming the hash" fleetctl bundle upload "$T/bad.fwb"
check_exit 6 "tampered manifest is refused (exit 6)" fleetctl bundle upload "$T/badman.fwb"
mk 1.0.2 "$K/ci2" "$T/c.fwb"
check_exit 6 "a bundle signed by an untrusted key is refused" fleetctl bundle upload "$T/c.fwb"
check_true "refused uploads leave nothing behind" \
	test "$(ls "$FLEETD_STATE/bundles" | wc -l)" -eq 1

# Root rotation on the server: v2 adds ci2 (signed by root1 and root2).
fleetctl -q root rotate --from "$K/root-v1.json" --root-key "$K/root1" --root-key "$K/root2" \
	--targets-key "$K/ci1.pub" --targets-key "$K/ci2.pub" \
	--sign-key "$K/root2" --out "$K/root-v2-new-only.json"
check_exit 6 "v2 signed only by the new root key is refused" fleetctl root push "$K/root-v2-new-only.json"
fleetctl -q root rotate --from "$K/root-v1.json" --root-key "$K/root1" --root-key "$K/root2" \
	--targets-key "$K/ci1.pub" --targets-key "$K/ci2.pub" \
	--sign-key "$K/root1" --sign-key "$K/root2" --out "$K/root-v2.json"
check "push root v2 signed by old and new root keys" fleetctl root push "$K/root-v2.json"
check "a bundle by the key added in v2 now uploads" fleetctl bundle upload "$T/c.fwb"
api GET /api/v1/roots -H "Authorization: Bearer $ADMIN_TOKEN" >"$T/roots.json"
check "roots list has v1 and v2" jq -e 'map(.version) == [1, 2]' "$T/roots.json"

# Roles: viewer may not upload, ci may.
VIEWER=$(fleetctl -o json token create v --role viewer | jq -r .token)
CI=$(fleetctl -o json token create ci --role ci | jq -r .token)
mk 1.1.0 "$K/ci1" "$T/d.fwb"
check_exit 4 "viewer cannot upload (exit 4)" fleetctl --token "$VIEWER" bundle upload "$T/d.fwb"
check "ci token uploads" fleetctl --token "$CI" bundle upload "$T/d.fwb"
check_exit 4 "ci token cannot push roots" fleetctl --token "$CI" root push "$K/root-v2.json"

# Downloads with Range.
AUTH="Authorization: Bearer $ADMIN_TOKEN"
api GET "/api/v1/bundles/$ID/download" -H "$AUTH" -o "$T/dl"
check "full download equals the uploaded file" cmp "$T/dl" "$T/a.fwb"
check_grep '^206$' "Range request is 206" api GET "/api/v1/bundles/$ID/download" \
	-H "$AUTH" -r 1000- -o "$T/tail" -w '%{http_code}\n'
check "range tail matches" cmp "$T/tail" <(tail -c +1001 "$T/a.fwb")
check_grep '^416$' "range past the end is 416" api GET "/api/v1/bundles/$ID/download" \
	-H "$AUTH" -r 99999999- -o /dev/null -w '%{http_code}\n'
check_grep '^401$' "download needs credentials" api GET "/api/v1/bundles/$ID/download" \
	-o /dev/null -w '%{http_code}\n'
echo '[garbage' >"$T/garbage.fwb"
check_exit 6 "garbage upload is refused as not a bundle" fleetctl bundle upload "$T/garbage.fwb"
check_grep 'HTTP/1.1 200|"status":"ok"' "server still serving" api GET /healthz
finish
