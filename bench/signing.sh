#!/usr/bin/env bash
# Bundle signing and verification against their limit and their peers,
# side by side in one run (issue 4):
#
#   ours      fleetctl bundle create/verify (fsig-tool while fleetctl
#             has no bundle commands)
#   limit     openssl dgst -sha256 -sign / -verify on the bare image
#   peers     mender-artifact write/validate, rauc bundle/info
#
# on a random image (256 MiB), then our verify's peak RSS at 16 MiB and
# 1 GiB (flat memory).  Wall times are hyperfine medians with `sync` and
# removal of old outputs as prepare steps for every tool (not timed);
# peak RSS is GNU time's maximum resident set size.  Ends with one line
# per metric: "metric: NAME VALUE UNIT (target ...) PASS|MISS".
#
#   bench/signing.sh              (BENCH_MIB=256 BENCH_BIG_MIB=1024 RUNS=5)
#   FSIG_TOOL=path OURS=fsig-tool bench/signing.sh
#
# Needs the peers: scripts/install-deps --bench (run here).  Never part
# of make check.  Figures go to docs/performance.md.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
MIB=${BENCH_MIB:-256}
BIG=${BENCH_BIG_MIB:-1024}
RUNS=${RUNS:-5}
build=${FLEET_BUILD:-$top/build}

scripts/install-deps --bench
tool=${FSIG_TOOL:-$build/tests/tools/fsig-tool}
[ -x "$tool" ] || make -s "$tool"
fleetctl=$build/fleetctl
if [ -z "${OURS:-}" ]; then
	OURS=fsig-tool
	"$fleetctl" bundle verify --help >/dev/null 2>&1 && OURS=fleetctl
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/fleet-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W"
echo "# work dir $W, image ${MIB} MiB, $RUNS runs each, ours: $OURS"

# ------------------------------------------------------------------
# Keys, root, peers' keys and certificates
"$tool" keygen ed >/dev/null
"$tool" root-init --root-key ed --targets-key ed.pub -o root.json
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	-out p256.pem 2>/dev/null
openssl pkey -in p256.pem -pubout -out p256.pub
openssl ec -in p256.pem -out p256-sec1.pem 2>/dev/null # mender's format
openssl req -x509 -key p256.pem -out cert.pem -subj /CN=bench -days 2 \
	2>/dev/null
head -c $((MIB << 20)) /dev/urandom >img
mkdir rauc-in
ln img rauc-in/rootfs.img
printf '[update]\ncompatible=gw\nversion=1.0.0\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.img\n' \
	>rauc-in/manifest.raucm

if [ "$OURS" = fleetctl ]; then ours=$fleetctl; sub="bundle "; else ours=$tool; sub=; fi
ours_create() { # IMAGE OUT: the command line
	echo "$ours ${sub}create --image $1 --name fw --version 1.0.0" \
		"--security-version 1 --hardware gw --key ed -o $2"
}
ours_verify() { # BUNDLE
	echo "$ours ${sub}verify --root root.json --hardware gw $1"
}

# name | prepare (untimed) | command, for the create and the verify side
create_cmds=(
	"ours|rm -f out.fwb|$(ours_create img out.fwb)"
	"openssl|rm -f img.sig|openssl dgst -sha256 -sign p256.pem -out img.sig img"
	"mender|rm -f out.mender|mender-artifact write rootfs-image -t gw -n fw-1.0.0 -f img -o out.mender -k p256-sec1.pem --compression none --no-progress"
	"rauc|rm -f out.raucb|rauc bundle --cert=cert.pem --key=p256.pem --mksquashfs-args=-noI\\ -noD\\ -noF\\ -noX\\ -no-xattrs rauc-in out.raucb"
)
verify_cmds=(
	"ours|:|$(ours_verify out.fwb)"
	"openssl|:|openssl dgst -sha256 -verify p256.pub -signature img.sig img"
	"mender|:|mender-artifact validate -k p256.pub out.mender"
	"rauc|:|rauc info --keyring=cert.pem out.raucb"
)

declare -A T R
# measure SIDE "name|prepare|cmd": median seconds into T, peak KB into R
measure() {
	local side=$1 name prep cmd
	IFS='|' read -r name prep cmd <<<"$2"
	sh -c "$prep; sync; $cmd" >/dev/null 2>&1 # the other side's input
	hyperfine --runs "$RUNS" --warmup 1 --style none --output null \
		--prepare "$prep; sync" -n "$name" \
		--export-csv "t-$side-$name.csv" "$cmd" >/dev/null
	T[$side-$name]=$(awk -F, 'NR == 2 { print $4 }' "t-$side-$name.csv")
	sh -c "$prep; sync"
	# shellcheck disable=SC2086
	/usr/bin/time -f %M -o "rss-$side-$name" sh -c "exec $cmd" \
		>/dev/null 2>&1
	R[$side-$name]=$(tail -n 1 "rss-$side-$name")
}
for c in "${create_cmds[@]}"; do measure create "$c"; done
for c in "${verify_cmds[@]}"; do measure verify "$c"; done

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
printf '%-10s %12s %12s %12s %12s\n' tool "create s" "verify s" \
	"create MB" "verify MB"
for n in ours openssl mender rauc; do
	printf '%-10s %12.3f %12.3f %12s %12s\n' "$n" "${T[create-$n]}" \
		"${T[verify-$n]}" "$(mb "${R[create-$n]}")" "$(mb "${R[verify-$n]}")"
done
for n in openssl mender rauc; do
	printf 'ours/%-5s %11sx %11sx\n' "$n" \
		"$(ratio "${T[create-ours]}" "${T[create-$n]}")" \
		"$(ratio "${T[verify-ours]}" "${T[verify-$n]}")"
done

# ------------------------------------------------------------------
# Verify memory at other sizes: flat, whatever the image size
rss_at() { # MIB -> peak KB of our verify
	local f=img-$1
	head -c $(($1 << 20)) /dev/zero >"$f"
	sh -c "$(ours_create "$f" "b-$1.fwb")" >/dev/null 2>&1
	rm -f "$f"
	sync
	/usr/bin/time -f %M -o "rss-$1" sh -c "exec $(ours_verify "b-$1.fwb")" \
		>/dev/null 2>&1
	rm -f "b-$1.fwb"
	tail -n 1 "rss-$1"
}
small=$(rss_at 16)
large=$(rss_at "$BIG")
echo
echo "verify peak RSS: 16 MiB $(mb "$small") MB, ${MIB} MiB $(mb "${R[verify-ours]}") MB, $BIG MiB $(mb "$large") MB"

# ------------------------------------------------------------------
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "PASS" : "MISS" }'; }
cr=$(ratio "${T[create-ours]}" "${T[create-openssl]}")
vr=$(ratio "${T[verify-ours]}" "${T[verify-openssl]}")
cm=$(mb "${R[create-ours]}")
vm=$(mb "${R[verify-ours]}")
growth=$(awk -v a="$small" -v b="$large" 'BEGIN { d = (b - a) / 1024; printf "%.1f", d < 0 ? -d : d }')
echo
echo "metric: create_sign_vs_openssl $cr x (target <= 1.3 x) $(verdict "$cr" 1.3)"
echo "metric: verify_vs_openssl $vr x (target <= 1.2 x) $(verdict "$vr" 1.2)"
echo "metric: create_peak_rss $cm MB (target <= 8 MB) $(verdict "$cm" 8)"
echo "metric: verify_peak_rss $vm MB (target <= 8 MB) $(verdict "$vm" 8)"
echo "metric: verify_rss_growth_16MiB_to_${BIG}MiB $growth MB (target <= 1 MB, flat) $(verdict "$growth" 1)"
