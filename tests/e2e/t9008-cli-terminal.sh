#!/usr/bin/env bash
# fleetctl's tables and the terminal (issue 15): on a terminal a table
# fits its width (TIOCGWINSZ, or COLUMNS), the widest column cut with an
# ellipsis; piped or redirected, every cell is whole whatever COLUMNS
# says, and no escape code is written.  The terminal is a real pty
# (python3's os.openpty with its window size set).  An upload draws a
# progress bar on a terminal's stderr, and nothing when stderr is not one.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

start_fleetd --with-broker
login_admin
long=north-site-with-a-group-name-much-too-wide-for-a-small-terminal
check_exit 0 "provision gw-1 in a long group" \
	fleetctl provision gw-1 --group "$long" --out "$T/gw-1.tar.gz"

# on_pty COLS CMD...: CMD's stdout and stderr through a pty COLS wide
on_pty() {
	python3 - "$@" <<'PY'
import fcntl, os, struct, subprocess, sys, termios
cols, argv = int(sys.argv[1]), sys.argv[2:]
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave)
os.close(slave)
out = b""
while True:
    try:
        b = os.read(master, 4096)
    except OSError:
        break
    if not b:
        break
    out += b
sys.stdout.write(out.decode().replace("\r\n", "\n"))
sys.exit(p.wait())
PY
}
# the longest line of FILE, in characters
widest() { python3 -c 'import sys; print(max(len(l.rstrip("\n")) for l in open(sys.argv[1])))' "$1"; }

on_pty 80 fleetctl devices list >"$T/narrow" 2>&1
check_true "an 80-column terminal: the table is at most 80 wide" test "$(widest "$T/narrow")" -le 80
check_grep '^gw-1 +north-site.*…' "the widest column (GROUP) ends in an ellipsis" cat "$T/narrow"
check_grep '^ID +GROUP +ONLINE' "the headers are all there" cat "$T/narrow"
on_pty 200 fleetctl devices list >"$T/wide" 2>&1
check_grep "^gw-1 +$long " "a 200-column terminal shows the group whole" cat "$T/wide"
check_true "and no ellipsis" sh -c "! grep -q '…' '$T/wide'"
COLUMNS=80 on_pty 200 fleetctl devices list >"$T/columns" 2>&1
check_true "COLUMNS=80 on a 200-column terminal: at most 80 wide" test "$(widest "$T/columns")" -le 80

COLUMNS=40 fleetctl devices list >"$T/piped"
check_grep "^gw-1 +$long " "piped (COLUMNS=40 set): the group is whole" cat "$T/piped"
check_true "piped: no ellipsis" sh -c "! grep -q '…' '$T/piped'"
check_true "piped: no escape codes" sh -c "! grep -q \$'\\033' '$T/piped' '$T/narrow'"

# --- the progress bar of an upload ------------------------------------------
check "build the sample firmware and its bundles" ota_firmware
check "push the firmware's trust root" fleetctl root push "$T/fw/root.json"
check "a 24 MiB image" ota_pad "$T/fw/fw-1.1.0" 24 "$T/fw/big"
check "... signed as fleet-sample 1.5.0" ota_bundle "$T/fw/big" 1.5.0 1
check_exit 0 "an upload on a terminal succeeds" \
	on_pty 100 fleetctl bundle upload "$T/fw/fleet-sample-1.5.0.fwb"
tr '\r' '\n' <"$T/last.out" >"$T/up.lines"
check_grep '^upload \[#{30}\] 100%  24\.[0-9] MiB of 24\.[0-9] MiB  .*/s' \
	"... its stderr showed a full bar at 100 %" cat "$T/up.lines"
check_true "... no line wider than the terminal" test "$(widest "$T/up.lines")" -lt 100
check_grep '^[0-9a-f]{16}$' "... and stdout the bundle's id" cat "$T/up.lines"
check_exit 0 "an upload with stderr redirected succeeds" sh -c \
	"fleetctl bundle upload '$T/fw/fw-1.1.0.fwb' >'$T/up.out' 2>'$T/up.err'"
check_grep '^[0-9a-f]{16}$' "... its id on stdout" cat "$T/up.out"
check_true "... and draws no bar" sh -c "! grep -q 'upload \[' '$T/up.err'"
check_true "... nor any carriage return" sh -c "! grep -q \$'\\r' '$T/up.err' '$T/up.out'"

finish
