#!/usr/bin/env bash
# make demo works from a fresh clone (issues 8 and 10): the committed
# HEAD of this checkout is cloned into a temp dir and `make demo` runs
# there with nothing built (the installed packages are reused; the
# dependency check is skipped because make check already ran it).  So
# this test sees COMMITTED changes only: commit before relying on it.
# The narrated story, read from its output (fleetctl's default tables):
# twenty fleet-sim devices enrol and come online; rollout spring takes
# 1.1.0 to all twenty in three waves and completes; rollout autumn
# (1.2.0) fails on its two canaries, the gate trips and it ends rolled
# back; exactly the two canaries ever got a 1.2.0 job or held 1.2.0 in
# a slot, the other 18 were skipped; everyone runs 1.1.0 at the end;
# nothing is left behind.  It must not need anything make check builds
# (fsig-tool, the test builds of fleetd and fleet-agent).  The demo's
# two-minute budget is a bench figure (README), not asserted here.
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
O=$T/demo.out
# part N: the demo's output under its heading "== N." up to the next one
part() { awk -v h=$'\033[1m== '"$1" 'f && index($0, "\033[1m== ") { exit }
	index($0, h) == 1 { f = 1 } f' "$O" >"$T/part-$1.out"; }
for n in 3 4 5 6 7 "done"; do part "$n"; done
# count FILE ERE: the number of lines matching
count() { grep -Ec -- "$2" "$1" || true; }

check_grep '^\$ fleetd serve --state server' "the narration shows the commands it runs (fleetd serve)" cat "$O"
check_grep '^\$ fleet-sim run --count 20 --dir sims .*--token-file enroll\.token' \
	"... background ones too (fleet-sim run, the token from a file)" cat "$O"
check_true "twenty devices online, listed by fleetctl devices list" \
	test "$(count "$T/part-3.out" '^sim-00(0[1-9]|1[0-9]|20) +demo +yes +1\.0\.0 ')" -eq 20
check_grep '^\$ fleetctl rollout plan --bundle fleet-sample@1\.1\.0 ' "the plan is shown first" cat "$T/part-4.out"
check_true "... wave 1 is the two canaries" \
	test "$(count "$T/part-4.out" '^1 +2 +[12] +sim-00(07|14) ')" -eq 2
check_grep '^\$ fleetctl rollout watch spring ' "1.1.0 is followed with rollout watch" cat "$T/part-5.out"
check_grep '^spring running wave 2/3: ' "... live, wave by wave" cat "$T/part-5.out"
check_grep '^spring completed wave 3/3: 20/20 done \(20 healthy, 0 failed' \
	"rollout spring completed: 1.1.0 on all 20" cat "$T/part-5.out"
check_grep '^state: +completed$' "... rollout status says completed" cat "$T/part-5.out"
check_grep '^autumn failed: sim-00(07|14) \(wave 1\): update rolled-back: health check failed' \
	"1.2.0: a canary fails its health check" cat "$T/part-6.out"
check_grep '^fleetctl: error: rollout autumn rolled back: gate tripped: 2 of 2 finished' \
	"... the gate trips and the rollout rolls back by itself" cat "$T/part-6.out"
check_grep '\(watch exit 1: ' "... watch exits 1 and the demo says so" cat "$T/part-6.out"
check_grep '^state: +rolled-back$' "rollout status autumn: rolled-back" cat "$T/part-7.out"
check_grep '^2 +25% +3 +0 +0 +0 +0 +0 +3 ' "... wave 2: its 3 devices skipped" cat "$T/part-7.out"
check_grep '^3 +100% +15 +0 +0 +0 +0 +0 +15 ' "... wave 3: its 15 devices skipped" cat "$T/part-7.out"
check_true "the rollout made exactly two jobs (jobs list --rollout autumn)" \
	test "$(count "$T/part-7.out" '^j-[0-9a-f]+ +sim-[0-9]+ +update +')" -eq 2
check_true "... one per canary, both rolled back from 1.2.0" \
	test "$(count "$T/part-7.out" '^j-[0-9a-f]+ +sim-00(07|14) +update +rolled-back +1\.2\.0 ')" -eq 2
check_true "two devices' slots ever held 1.2.0" \
	test "$(count "$T/part-7.out" '^sim-[0-9]{4} .*=1\.2\.0')" -eq 2
check_true "... the canaries'" \
	test "$(count "$T/part-7.out" '^sim-00(07|14) +a=1\.2\.0 +b=1\.1\.0$')" -eq 2
check_true "... and every other device holds 1.0.0 and 1.1.0 only" \
	test "$(count "$T/part-7.out" '^sim-[0-9]{4} +a=1\.0\.0 +b=1\.1\.0$')" -eq 18
check_true "all 20 run 1.1.0 at the end (devices list)" \
	test "$(count "$T/part-7.out" '^sim-[0-9]{4} +demo +yes +1\.1\.0 ')" -eq 20
check_grep '^== done in [0-9]+ s' "the elapsed time is printed" sed 's/\x1b\[[0-9]*m//g' "$T/part-done.out"
check_grep 'fleetctl rollout status autumn --devices' "... and how to look around" cat "$T/part-done.out"
check_true "the demo removed its temp dir" sh -c "! ls -d '$T'/fleet-demo.* 2>/dev/null"
finish
