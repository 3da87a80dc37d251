#!/usr/bin/env bash
# make demo keeps working: the narrated local fleet runs to the end, dev-1
# ends on 1.1.0 (succeeded), dev-2 rolls back from 1.2.0 by itself, and
# nothing is left behind.
. "$(dirname "$0")/lib.sh"

TMPDIR=$T "$FLEET_SRC/scripts/demo" >"$T/demo.out" 2>&1
check_exit 0 "the demo runs to the end" sh -c "exit $?"
check_grep 'j-[0-9a-f]+ +dev-1 +update +succeeded +1\.0\.0 +1\.1\.0' \
	"dev-1 updated to 1.1.0" cat "$T/demo.out"
check_grep 'j-[0-9a-f]+ +dev-2 +update +rolled-back +1\.0\.0 +1\.2\.0 +health check failed' \
	"dev-2 rolled back from 1.2.0 with the reason" cat "$T/demo.out"
check_grep '^fleet_slot=a$' "dev-2's bootloader is back on slot a" cat "$T/demo.out"
check_grep '^dev-1 +demo +yes +1\.1\.0' "the device list shows dev-1 on 1.1.0" cat "$T/demo.out"
check_true "the demo removed its temp dir" sh -c "! ls -d '$T'/fleet-demo.* 2>/dev/null"
finish
