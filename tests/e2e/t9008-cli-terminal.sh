#!/usr/bin/env bash
# fleetctl's tables and the terminal (issue 15): on a terminal a table
# fits its width (TIOCGWINSZ, or COLUMNS), the widest column cut with an
# ellipsis; piped or redirected, every cell is whole whatever COLUMNS
# says, and no escape code is written.  The terminal is a real pty
# (python3's os.openpty with its window size set).
. "$(dirname "$0")/lib.sh"

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

finish
