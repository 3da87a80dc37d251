#!/usr/bin/env bash
# The CI pipeline of docs/ci-signing.md, step by step, with the signing
# key in an HSM (SoftHSM2 through PKCS#11) so no key file exists: build
# provenance from git, dirty trees refused, upload with a ci token, and
# the exit codes a pipeline relies on.
. "$(dirname "$0")/lib.sh"

MODULE=/usr/lib/softhsm/libsofthsm2.so
export SOFTHSM2_CONF=$T/softhsm2.conf
mkdir -p "$T/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$T/tokens" >"$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label ci --pin 1234 --so-pin 4321 >/dev/null
pkcs11-tool --module "$MODULE" --token-label ci --login --pin 1234 \
	--keypairgen --key-type EC:prime256v1 --id 01 --label release >/dev/null 2>&1
pkcs11-tool --module "$MODULE" --token-label ci --read-object --type pubkey \
	--id 01 -o "$T/hsm.der" >/dev/null 2>&1
openssl pkey -pubin -inform DER -in "$T/hsm.der" -out "$T/hsm.pub" 2>/dev/null
check_true "the HSM holds a P-256 key and we have its public half" test -s "$T/hsm.pub"

# Root: an offline root key; the HSM key may sign bundles.
fleetctl -q keys generate --out "$T/root.key" >/dev/null
check "root init with the HSM key as the targets key" \
	fleetctl -q root init --root-key "$T/root.key" --targets-key "$T/hsm.pub" --out "$T/root.json"

# The "repository" CI builds from.
R=$T/repo
mkdir -p "$R"
git -C "$R" init -q
git -C "$R" config user.email ci@example.invalid
git -C "$R" config user.name ci
git -C "$R" remote add origin https://ci-user:secret@git.example.invalid/fw.git
echo 'int main(void) { return 0; }' >"$R/fw.c"
git -C "$R" add fw.c && git -C "$R" commit -qm "release 2.0.0"
git -C "$R" tag v2.0.0
head -c 200000 /dev/urandom >"$T/image"

URI="pkcs11:token=ci;object=release;type=private?module-path=$MODULE"
export FLEET_PKCS11_PIN=1234
create() {
	fleetctl -q bundle create --image "$T/image" --name fw --version 2.0.0 \
		--security-version 3 --hardware gw-a --pkcs11 "$URI" --git "$R" "$@"
}
check "sign in the HSM with provenance from git" create --out "$T/fw.fwb"
check_true "no key file was written" sh -c "! ls '$T' | grep -q '\\.pem\$'"
fleetctl -o json bundle inspect "$T/fw.fwb" >"$T/inspect.json"
check "provenance has the commit" jq -e --arg c "$(git -C "$R" rev-parse HEAD)" \
	'.manifest.provenance.commit == $c and .manifest.provenance.dirty == false' "$T/inspect.json"
check "provenance has describe" jq -e '.manifest.provenance.describe == "v2.0.0"' "$T/inspect.json"
check "the origin URL lost its credentials" jq -e \
	'.manifest.provenance.remote == "https://git.example.invalid/fw.git"' "$T/inspect.json"
check "signed by the HSM key" sh -c "jq -e --arg k \"\$(fleetctl -o json root show '$T/root.json' | jq -r '.roles.targets.keyids[0]')\" \
	'.signatures[0].keyid == \$k' '$T/inspect.json'"
check "verifies against the root" fleetctl bundle verify "$T/fw.fwb" --root "$T/root.json" --hardware gw-a

echo '// local change' >>"$R/fw.c"
check_exit 5 "a dirty tree is refused (exit 5)" create -o "$T/dirty.fwb"
check_true "... and writes nothing" test ! -e "$T/dirty.fwb"
check "--allow-dirty signs it and says so" create --allow-dirty -o "$T/dirty.fwb"
check "the dirty flag is recorded" sh -c \
	"fleetctl -o json bundle inspect '$T/dirty.fwb' | jq -e '.manifest.provenance.dirty == true and (.manifest.provenance.describe | endswith(\"-dirty\"))'"
# Under SAN, LeakSanitizer reports ~770 bytes that the pkcs11 engine
# (libp11: RSA_meth_dup, CRYPTO_zalloc) keeps after the failed login,
# and turns exit 3 into 134; leak checks are off for this one command
# (see the issue-8 infra report).  The old "any failure" check took 134.
check_exit 3 "a wrong PIN fails the job (the key is not found: exit 3)" \
	env FLEET_PKCS11_PIN=0000 ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
	fleetctl -q bundle create --image "$T/image" --name fw --version 2.0.1 \
	--security-version 3 --hardware gw-a --pkcs11 "$URI" --out "$T/pin.fwb"

# Upload with a ci token: the only thing that role may do.
start_fleetd
login_admin
fleetctl -q root push "$T/root.json"
CI=$(fleetctl -o json token create pipeline --role ci | jq -r .token)
check_grep '^[0-9a-f]{16}$' "upload with the ci token" \
	env FLEET_TOKEN="$CI" fleetctl bundle upload "$T/fw.fwb"
check_exit 4 "the ci token cannot list devices" env FLEET_TOKEN="$CI" fleetctl devices list
check_exit 5 "re-signing the same version differently is a conflict" \
	env FLEET_TOKEN="$CI" fleetctl bundle upload "$T/dirty.fwb"
finish
