#!/usr/bin/env bash
# fleetctl provision --out (issue 8, items 7 and 12): the archive holds
# the device key, so it is created exclusively with mode 0600 under an
# unpredictable temp name (a symlink at the target or at OUT.tmp is never
# followed), an existing OUT is refused unless --force, and nothing is
# stored on fleetd unless the archive was written: a bad --out leaves no
# orphan device and the retry with a good --out succeeds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

umask 022
start_fleetd --with-broker
login_admin
mkdir -p "$T/out"

# --- positive control: a plain provision works and is private ----------
check_exit 0 "provision dev-ok" fleetctl provision dev-ok --out "$T/out/dev-ok.tar.gz"
check_true "the archive is 0600 despite umask 022" \
	test "$(stat -c %a "$T/out/dev-ok.tar.gz")" = 600
check_true "the archive is a regular file" test -f "$T/out/dev-ok.tar.gz" -a ! -L "$T/out/dev-ok.tar.gz"
check "it holds the device key" sh -c "tar -tzf '$T/out/dev-ok.tar.gz' | grep -qx 'dev-ok/key.pem'"
check_true "no temp file is left next to it" \
	test "$(find "$T/out" -mindepth 1 | wc -l)" = 1
check_exit 0 "fleetd knows dev-ok" fleetctl devices show dev-ok

# --- a symlink at the guessable OUT.tmp is not followed -----------------
echo precious >"$T/victim-tmp"
ln -s "$T/victim-tmp" "$T/out/dev-t.tar.gz.tmp"
check_exit 0 "provision dev-t with a symlink planted at OUT.tmp" \
	fleetctl provision dev-t --out "$T/out/dev-t.tar.gz"
check_true "the symlink's target is untouched" test "$(cat "$T/victim-tmp")" = precious
check_true "the planted symlink is still there, unused" test -L "$T/out/dev-t.tar.gz.tmp"
check_true "OUT is a regular file, not the planted link" \
	test -f "$T/out/dev-t.tar.gz" -a ! -L "$T/out/dev-t.tar.gz"
check_true "OUT is 0600" test "$(stat -c %a "$T/out/dev-t.tar.gz")" = 600
check "OUT holds dev-t's key" sh -c "tar -tzf '$T/out/dev-t.tar.gz' | grep -qx 'dev-t/key.pem'"

# --- a symlink (or any file) at OUT is refused, and nothing is stored ----
echo precious >"$T/victim-out"
ln -s "$T/victim-out" "$T/out/dev-s.tar.gz"
check_exit 5 "provision onto an existing symlink is refused (exit 5)" \
	fleetctl provision dev-s --out "$T/out/dev-s.tar.gz"
cp "$T/last.out" "$T/prev.out"
check_grep "exists.*--force" "... the error names --force" cat "$T/prev.out"
check_true "the symlink's target is untouched" test "$(cat "$T/victim-out")" = precious
check_exit 3 "fleetd stored nothing for dev-s" fleetctl devices show dev-s
echo old >"$T/out/dev-f.tar.gz"
check_exit 5 "an existing file is refused without --force" \
	fleetctl provision dev-f --out "$T/out/dev-f.tar.gz"
check_true "... and left as it was" test "$(cat "$T/out/dev-f.tar.gz")" = old
check_exit 0 "--force replaces it" \
	fleetctl provision dev-f --force --out "$T/out/dev-f.tar.gz"
check "... with the archive, 0600" sh -c \
	"tar -tzf '$T/out/dev-f.tar.gz' | grep -qx 'dev-f/key.pem' && test \$(stat -c %a '$T/out/dev-f.tar.gz') = 600"
check_exit 0 "--force replaces a symlink itself, not its target" \
	fleetctl provision dev-s2 --force --out "$T/out/dev-s.tar.gz"
check_true "... the target is untouched" test "$(cat "$T/victim-out")" = precious
check_true "... OUT is now a regular file" test -f "$T/out/dev-s.tar.gz" -a ! -L "$T/out/dev-s.tar.gz"

# --- an unwritable --out stores nothing; the retry succeeds --------------
check_exit 1 "--out in a missing directory fails (exit 1)" \
	fleetctl provision dev-u --out "$T/no/such/dir/dev-u.tar.gz"
check_exit 3 "fleetd stored nothing for dev-u" fleetctl devices show dev-u
check_exit 0 "the retry with a good --out succeeds" \
	fleetctl provision dev-u --out "$T/out/dev-u.tar.gz"
check_exit 0 "fleetd knows dev-u now" fleetctl devices show dev-u

# --- a write that fails after fleetd registered the device is undone ----
# RLIMIT_FSIZE of 1 KiB (SIGXFSZ ignored): the archive cannot be written
# out, after fleetd has issued the certificate.
small_fs() { (trap '' XFSZ; ulimit -f 1; exec "$@"); }
check_exit 1 "a write that fails half way fails (exit 1)" \
	small_fs fleetctl provision dev-w --out "$T/out/dev-w.tar.gz"
cp "$T/last.out" "$T/prev.out"
check_grep "registration of dev-w was undone" "... and says the registration was undone" cat "$T/prev.out"
check_exit 3 "fleetd keeps nothing for dev-w" fleetctl devices show dev-w
check "... not even as decommissioned" sh -c \
	"fleetctl -o json devices list --all | jq -e 'map(select(.id == \"dev-w\")) | length == 0'"
check_true "no partial archive or temp file is left" \
	test -z "$(find "$T/out" -name '*dev-w*')"
check_exit 0 "the retry succeeds" fleetctl provision dev-w --out "$T/out/dev-w.tar.gz"

# --- undo is only for a device that never connected --------------------
# undo_code TOKEN ID SERIAL: the HTTP status of an undo request
undo_code() {
	api POST "/api/v1/provision/$2/undo" -H "Authorization: Bearer $1" \
		-d "{\"serial\": \"$3\"}" -o /dev/null -w '%{http_code}'
}
SER=$(fleetctl -o json devices show dev-ok | jq -r .cert_serial)
VT=$(fleetctl -o json token create v --role viewer | jq -r .token)
check_true "a viewer cannot undo a provision (403)" test "$(undo_code "$VT" dev-ok "$SER")" = 403
check_true "undo with another serial is refused (409)" test "$(undo_code "$ADMIN_TOKEN" dev-ok 00)" = 409
check_true "undo of an unknown device is 404" test "$(undo_code "$ADMIN_TOKEN" dev-none "$SER")" = 404
check_exit 0 "dev-ok is still there" fleetctl devices show dev-ok
mkdir -p "$T/unpack" "$(agent_dir dev-ok)" && tar -xzf "$T/out/dev-ok.tar.gz" -C "$T/unpack"
AGENT_CWD=/ agent_start dev-ok "$T/unpack/dev-ok/agent.conf"
if wait_until 15 dev_online dev-ok; then pass "dev-ok runs from its archive"
else fail "dev-ok runs from its archive"; fi
check_true "a device that has connected cannot be undone (409)" \
	test "$(undo_code "$ADMIN_TOKEN" dev-ok "$SER")" = 409
check_exit 0 "dev-ok is still there" fleetctl devices show dev-ok
agent_stop dev-ok
finish
