#!/usr/bin/env bash
# make demo works from a fresh clone (issue 8 item 11): the committed
# HEAD of this checkout is cloned into a temp dir and `make demo` runs
# there with nothing built (the installed packages are reused; the
# dependency check is skipped because make check already ran it).  So
# this test sees COMMITTED changes only: commit before relying on it.
# The narrated local fleet runs to the end, shows every command it runs,
# dev-1 ends on 1.1.0 (succeeded), dev-2 rolls back from 1.2.0 by itself,
# and nothing is left behind.  It must not need anything make check
# builds (fsig-tool, the test builds of fleetd and fleet-agent).
. "$(dirname "$0")/lib.sh"

if ! HEAD=$(git -C "$FLEET_SRC" rev-parse --verify -q HEAD); then
	fail "t9002 needs a git checkout to clone ($FLEET_SRC)"
	finish
fi
[ -z "$(git -C "$FLEET_SRC" status --porcelain --untracked-files=no)" ] ||
	log "note: uncommitted changes in $FLEET_SRC are not part of this test"
C=$T/clone
check "clone the committed HEAD ($HEAD)" sh -c \
	"git clone -q --no-checkout '$FLEET_SRC' '$C' && git -C '$C' checkout -q --detach '$HEAD'"
check_true "the clone has nothing built" test ! -e "$C/build"

# a make of its own: nothing from the outer make check (jobserver, SAN=1)
(
	unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES FLEET_BUILD
	export TMPDIR=$T FLEET_DEPS_DONE=1
	exec make -C "$C" -j2 demo
) >"$T/demo.out" 2>&1
check_exit 0 "make demo runs to the end in the fresh clone" sh -c "exit $?"
check_true "it built no test tools" test ! -e "$C/build/tests"
check_grep '^\$ fleetctl -q bundle create .*--out fw-1\.1\.0\.fwb' \
	"the narration shows the commands it runs (bundle create)" cat "$T/demo.out"
check_grep '^\$ fleet-agent run --config agents/dev-1/agent.conf --sim agents/dev-1/sim' \
	"... background ones too (fleet-agent run)" cat "$T/demo.out"
check_grep '^\$ fleetd serve --state server' "... and fleetd serve" cat "$T/demo.out"
check_grep 'j-[0-9a-f]+ +dev-1 +update +succeeded +1\.0\.0 +1\.1\.0' \
	"dev-1 updated to 1.1.0" cat "$T/demo.out"
check_grep 'j-[0-9a-f]+ +dev-2 +update +rolled-back +1\.0\.0 +1\.2\.0 +health check failed' \
	"dev-2 rolled back from 1.2.0 with the reason" cat "$T/demo.out"
check_grep '^fleet_slot=a$' "dev-2's bootloader is back on slot a" cat "$T/demo.out"
check_grep '^dev-1 +demo +yes +1\.1\.0' "the device list shows dev-1 on 1.1.0" cat "$T/demo.out"
check_true "the demo removed its temp dir" sh -c "! ls -d '$T'/fleet-demo.* 2>/dev/null"
finish
