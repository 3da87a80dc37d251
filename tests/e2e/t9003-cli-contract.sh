#!/usr/bin/env bash
# The CLI's output contract (issue 8, items 10, 16, 17), driven by the
# command table: every command and subcommand that `fleetctl
# --list-commands` prints is run in table mode and with -o json against
# a live fleetd holding real data (devices active, decommissioned,
# online through a sim agent and offline; jobs in flight and finished;
# bundles, tokens, roots).  A run fails on a signal, on an exit code
# other than the documented one, on anything but exactly one JSON
# document with -o json, and on an empty stdout where data was asked
# for.  A command without a case here fails the test: nothing is
# skipped silently.  Then the exit codes of bad filters, limits and
# server URLs, and the deprecated -o FILE.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

# run MODE WANT KIND ARGS...: fleetctl [-o json] ARGS exits WANT.
#   KIND data:   stdout must not be empty in either mode
#        action: stdout may be empty in table mode (the note goes to
#                stderr), one JSON document with -o json
#        script: no JSON (completion scripts), stdout must not be empty
run() {
	local mode=$1 want=$2 kind=$3 rc what
	shift 3
	what="[$mode] fleetctl $*"
	[ "$mode" = json ] && set -- -o json "$@"
	fleetctl "$@" >"$T/c.out" 2>"$T/c.err"
	rc=$?
	cat "$T/c.out" "$T/c.err" >"$T/last.out"
	if [ "$rc" -ge 128 ]; then
		_result fail "$what: killed by signal $((rc - 128))"
	elif [ "$rc" -ne "$want" ]; then
		_result fail "$what: exit $rc, documented $want"
	elif [ "$mode" = json ] && [ "$kind" != script ] && [ "$rc" -eq 0 ] &&
		! jq -se 'length == 1' <"$T/c.out" >/dev/null 2>&1; then
		_result fail "$what: stdout is not one JSON document"
	elif [ "$rc" -eq 0 ] && [ ! -s "$T/c.out" ] &&
		{ [ "$kind" != action ] || [ "$mode" = json ]; }; then
		_result fail "$what: empty stdout"
	else
		_result ok "$what"
	fi
}

# --- the world: fleetd, its broker, bundles, devices, jobs ---------------------
start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
K=$T/fw/keys
ENR=$(fleetctl -o json token create contract --enroll --group g1 --uses 10 --ttl 1h | jq -r .token)
check "enrol dev-on as a simulated device in group g1" sim_agent dev-on "$ENR"
agent_start_sim dev-on
wait_until 15 dev_online dev-on || fail "dev-on comes online"
for d in off-1 off-2 gone; do
	check "provision $d" fleetctl -q provision "$d" --out "$T/$d.tar.gz"
done
check "decommission gone" fleetctl -q devices decommission gone
DEV_STATES=$(fleetctl -o json devices list --all | jq -r '[.[] | "\(.id):\(.state // "?"):\(.online)"] | join(" ")')
log "devices: $DEV_STATES"
# diag-1 answers diag requests (tests/tools/diag-responder, with its
# provisioned identity) and uploads support bundles
check "provision diag-1" fleetctl -q provision diag-1 --out "$T/diag-1.tar.gz"
mkdir -p "$T/dr" "$T/drdev" "$T/drsrc"
tar -xzf "$T/diag-1.tar.gz" -C "$T/dr"
cp "$T/dr/diag-1/cert.pem" "$T/drdev/diag-1.pem"
cp "$T/dr/diag-1/key.pem" "$T/drdev/diag-1.key"
echo log >"$T/drsrc/agent.log"
tar -czf "$T/drsrc.tar.gz" -C "$T/drsrc" agent.log
diag-responder --host "$MQTT_HOST" --port "$MQTT_PORT" --cafile "$FLEET_CA_FILE" \
	--dir "$T/drdev" --server "$FLEET_URL" --bundle "$T/drsrc.tar.gz" diag-1 \
	>"$T/dr.log" 2>&1 &
track $!
check "label diag-1 diag=yes" fleetctl -q devices label diag-1 diag=yes
check_exit 0 "diag-1 comes online" wait_until 20 dev_online diag-1

# --- one case per command: case_<path with _> MODE ------------------------------
n=0
ver() { if [ "$1" = table ]; then echo 1.1.1; else echo 1.1.2; fi; }
case_version() { run "$1" 0 data version; }
case_whoami() { run "$1" 0 data whoami; }
case_status() { run "$1" 0 data status; }
case_login() {
	run "$1" 0 action login --server "$FLEET_URL" --ca "$FLEET_CA_FILE" \
		--token "$ADMIN_TOKEN" --context "ctx-$1"
}
case_config_show() { run "$1" 0 data config show; }
case_config_use() { run "$1" 0 action config use "ctx-$1"; }
case_config_delete() { run "$1" 0 action config delete "ctx-$1"; }
# the hidden one the completions call: ids, one a line (no JSON)
case___complete() { run "$1" 0 script __complete rollouts; }
case_completion_bash() { run "$1" 0 script completion bash; }
case_completion_zsh() { run "$1" 0 script completion zsh; }
case_completion_fish() { run "$1" 0 script completion fish; }
case_keys_generate() { run "$1" 0 data keys generate --out "$T/k-$1"; }
case_root_init() {
	run "$1" 0 action root init --root-key "$T/k-$1" --targets-key "$T/k-$1.pub" \
		--out "$T/root-$1.json"
}
case_root_sign() {
	run "$1" 0 action root sign "$T/root-$1.json" --key "$T/k-$1"
	run "$1" 0 action root sign "$T/root-$1.json" --key "$T/k-$1" --out "$T/root-$1-b.json"
}
case_root_show() {
	run "$1" 0 data root show "$T/root-$1.json"
	run "$1" 0 data root show "$T/root-$1-b.json"
}
case_root_rotate() {
	run "$1" 0 action root rotate --from "$T/fw/root.json" --root-key "$K/root" \
		--targets-key "$K/targets.pub" --sign-key "$K/root" \
		--out "$T/fw/root-next-$1.json"
}
# the firmware's root first, then its next version (rotated above)
case_root_push() {
	if [ "$1" = table ]; then run table 0 action root push "$T/fw/root.json"
	else run json 0 action root push "$T/fw/root-next-table.json"; fi
}
case_bundle_create() {
	run "$1" 0 action bundle create --image "$T/fw/fw-1.1.0" --name fleet-sample \
		--version "$(ver "$1")" --security-version 1 --hardware sim \
		--key "$K/targets" --out "$T/b-$1.fwb"
}
case_bundle_inspect() { run "$1" 0 data bundle inspect "$T/b-$1.fwb"; }
case_bundle_verify() {
	run "$1" 0 action bundle verify "$T/b-$1.fwb" --root "$T/fw/root.json"
}
case_bundle_upload() { run "$1" 0 data bundle upload "$T/b-$1.fwb"; }
case_bundles_list() { run "$1" 0 data bundles list; }
case_bundles_show() { run "$1" 0 data bundles show "fleet-sample@$(ver "$1")"; }
case_devices_list() {
	run "$1" 0 data devices list
	run "$1" 0 data devices list --all
	run "$1" 0 data devices list --offline --group g1
	run "$1" 0 data devices list --label site=x
}
case_devices_show() {
	run "$1" 0 data devices show dev-on
	run "$1" 0 data devices show gone
	run "$1" 0 data devices show off-1
}
case_devices_label() { run "$1" 0 data devices label off-1 site=x "mode=$1"; }
case_devices_decommission() {
	check "provision dec-$1" fleetctl -q provision "dec-$1" --out "$T/dec-$1.tar.gz"
	run "$1" 0 action devices decommission "dec-$1"
}
case_token_create() {
	run "$1" 0 data token create "op-$1" --role viewer --ttl 1h
	run "$1" 0 data token create "en-$1" --enroll --group g1 --uses 2
}
case_token_list() { run "$1" 0 data token list; }
case_token_revoke() {
	local id
	id=$(fleetctl -o json token list | jq -r --arg n "op-$1" '.[] | select(.name == $n) | .id')
	run "$1" 0 action token revoke "$id"
}
job_done() { fleetctl -o json jobs list --device "$1" | jq -e '.[0].final == true' >/dev/null; }
# an update left in flight on an offline device, and one on dev-on that
# finishes (no --wait: the job table printed straight away)
case_update() {
	local off=off-1
	[ "$1" = json ] && off=off-2
	run "$1" 0 data update "$off" --bundle fleet-sample@1.1.1
	run "$1" 0 data update dev-on --bundle fleet-sample@1.1.1
	wait_until 60 job_done dev-on || fail "[$1] the update of dev-on finishes"
}
case_rollback() {
	run "$1" 0 data rollback --device dev-on
	wait_until 60 job_done dev-on || fail "[$1] the rollback of dev-on finishes"
}
case_jobs_list() {
	run "$1" 0 data jobs list
	run "$1" 0 data jobs list --device off-1 --state queued --limit 5
	run "$1" 0 data jobs list --rollout nosuch
}
case_jobs_show() {
	local job
	for d in off-1 dev-on; do
		job=$(fleetctl -o json jobs list --device "$d" | jq -r '.[0].id')
		run "$1" 0 data jobs show "$job"
	done
}
# (issue 8 item 14 adds it: cancel the update left in flight on off-1/off-2;
# runs after the other cases, as commands missing from ORDER do)
case_jobs_cancel() {
	local off=off-1 job
	[ "$1" = json ] && off=off-2
	job=$(fleetctl -o json jobs list --device "$off" | jq -r '[.[] | select(.final != true)][0].id')
	run "$1" 0 action jobs cancel "$job"
}
case_provision() { run "$1" 0 action provision "prov-$1" --out "$T/prov-$1.tar.gz"; }
# rollouts (issue 10): ro-MODE over prov-MODE (provisioned, never online,
# no job) stays running, so it can be paused, resumed and aborted;
# ro-w-MODE over dev-on completes and is rolled back by hand (both
# followed to their end)
case_rollout_plan() {
	run "$1" 0 data rollout plan --bundle fleet-sample@1.1.2 --device off-1 --device off-2
	run "$1" 0 data rollout plan --bundle fleet-sample@1.1.2 --group g1 --id p1
}
case_rollout_create() {
	run "$1" 0 data rollout create --bundle fleet-sample@1.1.2 \
		--device "prov-$1" --waves 100% --id "ro-$1"
}
case_rollout_list() {
	run "$1" 0 data rollout list
	run "$1" 0 data rollout list --state running --limit 5
}
case_rollout_status() {
	run "$1" 0 data rollout status "ro-$1"
	run "$1" 0 data rollout status "ro-$1" --devices
}
case_rollout_pause() { run "$1" 0 data rollout pause "ro-$1"; }
case_rollout_resume() { run "$1" 0 data rollout resume "ro-$1"; }
case_rollout_abort() { run "$1" 0 data rollout abort "ro-$1"; }
case_rollout_watch() {
	check "create ro-w-$1 over dev-on" fleetctl -q rollout create \
		--bundle fleet-sample@1.1.2 --device dev-on --waves 100% --soak 0s \
		--health-window 0s --id "ro-w-$1"
	run "$1" 0 data rollout watch "ro-w-$1" --timeout $((120 * WAIT_SCALE))s --interval 1s
	run "$1" 0 data rollback "ro-w-$1" --wait --timeout $((120 * WAIT_SCALE))s
}
case_diag() {
	run "$1" 0 data diag diag-1 ping
	run "$1" 0 data diag --label diag=yes ping
	run "$1" 7 data diag off-1 ping
}
case_diag_bundle() { run "$1" 0 action diag bundle diag-1 --out "$T/diag-$1.tar.gz"; }
case_shadow_set() {
	run "$1" 0 action shadow set dev-on "mode=$1"
	run "$1" 0 data shadow set --group g1 telemetry_interval=30
	run "$1" 5 action shadow set dev-on --if-version 0 mode=x
	run "$1" 3 action shadow set nosuch mode=x
}
case_shadow_get() {
	run "$1" 0 data shadow get dev-on
	run "$1" 3 data shadow get nosuch
}
case_telemetry() {
	run "$1" 0 data telemetry dev-on
	run "$1" 0 data telemetry dev-on --since -1h --metric cpu.percent --limit 5
	run "$1" 3 data telemetry nosuch
	run "$1" 2 data telemetry dev-on --since yesterday
}
# technicians (issue 12): the bundle issued works for diag --direct
case_technician_issue() {
	run "$1" 0 action technician issue "t-$1" --out "$T/tech-$1.tar.gz"
	run "$1" 0 data diag --direct --cert-bundle "$T/tech-$1.tar.gz" diag-1 ping
	run "$1" 7 data diag --direct --cert-bundle "$T/tech-$1.tar.gz" --timeout 1s off-1 ping
}
case_technician_list() { run "$1" 0 data technician list; }
case_technician_revoke() { run "$1" 0 action technician revoke "t-$1"; }
case_rotate() {
	run "$1" 0 data rotate off-1
	run "$1" 0 data rotate --group g1 --wait --timeout $((60 * WAIT_SCALE))s
}

# The order the cases need (files and data made by earlier ones), then
# every other command in table order.
ORDER="version whoami status keys_generate root_init root_sign root_show root_rotate
root_push bundle_create bundle_inspect bundle_verify bundle_upload bundles_list
bundles_show provision devices_label devices_list devices_show
devices_decommission update rollback jobs_list jobs_show rotate token_create
token_list token_revoke login config_show config_use config_delete
jobs_cancel rollout_plan rollout_create rollout_list rollout_status rollout_pause
rollout_resume rollout_abort rollout_watch"
fleetctl --list-commands | awk '{ s = $1; for (i = 2; i <= NF && $i !~ /^--/; i++) s = s "_" $i; print s }' >"$T/cmds"
check_true "--list-commands lists the commands" test "$(wc -l <"$T/cmds")" -ge 20
for c in $(cat "$T/cmds"); do
	declare -F "case_$c" >/dev/null || fail "no contract case for 'fleetctl ${c//_/ }'"
	case " $(echo $ORDER) " in *" $c "*) ;; *) ORDER="$ORDER $c" ;; esac
done
for c in $ORDER; do
	grep -qx "$c" "$T/cmds" || { fail "case_$c names no command in --list-commands"; continue; }
	for mode in table json; do
		"case_$c" "$mode"
		n=$((n + 1))
	done
done
log "$n command runs"
fleetctl -q config use default >/dev/null 2>&1

# --- documented failures, in both modes -------------------------------------
VIEWER=$(fleetctl -o json token create watcher --role viewer | jq -r .token)
check_true "a viewer token" test -n "$VIEWER" -a "$VIEWER" != null
for mode in table json; do
	run "$mode" 3 data devices show nosuch
	run "$mode" 3 data jobs show j-nosuch
	run "$mode" 3 data bundles show fleet-sample@9.9.9
	run "$mode" 3 data bundle inspect "$T/missing.fwb"
	run "$mode" 4 data --token "$VIEWER" token list
	run "$mode" 4 data --token flt_nope whoami
	run "$mode" 6 action bundle verify "$T/b-table.fwb" --root "$T/root-table.json"
	run "$mode" 8 data --server https://127.0.0.1:1 whoami
done
run json 6 action bundle verify "$T/b-table.fwb" --root "$T/root-table.json"
check "... a failed verify still prints one JSON document saying why" \
	jq -e '.verified == false and (.reason | length) > 0' "$T/c.out"

# --- item 16: usage errors are exit 2, a trailing slash just works -------------
check_exit 2 "jobs list --limit 0 is a usage error" fleetctl jobs list --limit 0
check_exit 2 "jobs list --limit x is a usage error" fleetctl jobs list --limit x
check_exit 2 "jobs list --state bogus is a usage error" fleetctl jobs list --state bogus
check_exit 2 "devices list --online --offline is a usage error" \
	fleetctl devices list --online --offline
check_exit 2 "devices list --group with a bad group is a usage error" \
	fleetctl devices list --group 'a/b'
check_exit 2 "devices list --label with a bad label is a usage error" \
	fleetctl devices list --label 'site=a b'
check_exit 0 "devices list --label KEY alone is fine" fleetctl devices list --label site
check_exit 2 "an http:// server URL is a usage error" \
	fleetctl --server "${FLEET_URL/https:/http:}" devices list
check_grep 'https://' "... saying https:// is required" \
	fleetctl --server "${FLEET_URL/https:/http:}" devices list
check_exit 0 "a trailing slash on --server just works" \
	fleetctl --server "$FLEET_URL/" devices list
check_exit 2 "login with an http:// URL is a usage error" \
	fleetctl login --server "${FLEET_URL/https:/http:}" --ca "$FLEET_CA_FILE" \
	--token "$ADMIN_TOKEN" --context bad
check_exit 5 "pushing the same root again is a conflict (exit 5)" \
	fleetctl root push "$T/fw/root-next-table.json"
if grep -qi 'unique\|constraint' "$T/last.out"; then
	fail "... without leaking SQL ($(head -c 200 "$T/last.out"))"
else pass "... without leaking SQL"; fi
check_exit 5 "pushing an older root is a conflict (exit 5)" fleetctl root push "$T/fw/root.json"

# --- item 17: -o is the output format; files are --out -------------------------
BC="bundle create --image $T/fw/fw-1.1.0 --name fleet-sample --version 9.0.0
	--security-version 1 --hardware sim --key $K/targets"
cd "$T" || exit 1
check_exit 2 "bundle create -o json is the format: no --out is a usage error" \
	fleetctl $BC -o json
check_true "... and writes no file named json" test ! -e "$T/json"
check_exit 2 "bundle create -o table: the same" fleetctl $BC -o table
check_true "... and writes no file named table" test ! -e "$T/table"
cd - >/dev/null || exit 1
check "bundle create --out F -o json prints one JSON document" sh -c \
	"fleetctl $(echo $BC) --out '$T/new.fwb' -o json | jq -e '.file == \"$T/new.fwb\"'"
check_grep 'deprecated' "bundle create -o FILE still works, deprecated" fleetctl $BC -o "$T/old.fwb"
check_true "... and writes FILE" test -s "$T/old.fwb"
check_exit 2 "keys generate --out json is fine, -o json alone is a usage error" \
	fleetctl keys generate -o json

agent_stop dev-on
finish
