#!/usr/bin/env bash
# Diagnostics through fleetd (issue 12): fleetctl diag -> fleetd -> MQTT
# -> a device -> back, with a real fleetd, broker and HTTPS.  The devices
# are tests/tools/diag-responder, which answers by check name as the wire
# format says a device does (the real agent is checked by its own tests).
#
#   d1 d2 d3  group line, answer (d1 d2 labelled site=a; d3's responder
#             has no bundle file and never answers "bundle")
#   d4        group line, enrolled, never online
#   d5        online, then its responder stops: offline since then
#   d6        group line, says it is online but nothing answers for it
. "$(dirname "$0")/lib.sh"

FLEETD_CONF=$(printf '[diag]\nbundle_max = 65536\nmax_pending_per_caller = 2\n')
start_fleetd --with-broker
login_admin
LINE=$(fleetctl -o json token create line --enroll --group line --uses 10 | jq -r .token)
OTHER=$(fleetctl -o json token create other --enroll --uses 10 | jq -r .token)
for d in d1 d2 d3 d4 d6; do
	check_grep '^201$' "enrol $d in group line" enroll_curl "$d" "$LINE"
done
check_grep '^201$' "enrol d5" enroll_curl d5 "$OTHER"
check "label d1 site=a" fleetctl -q devices label d1 site=a
check "label d2 site=a" fleetctl -q devices label d2 site=a
TECH_JSON=$(fleetctl -o json token create tech --role technician)
TECH=$(jq -r .token <<<"$TECH_JSON")
TECH_ID=$(jq -r .id <<<"$TECH_JSON")
VIEWER=$(fleetctl -o json token create watcher --role viewer | jq -r .token)
tech() { fleetctl --token "$TECH" "$@"; }
viewer() { fleetctl --token "$VIEWER" "$@"; }

# a small support bundle (tar.gz) the devices upload
mkdir -p "$T/bundle-src"
echo "agent log" >"$T/bundle-src/agent.log"
tar -czf "$T/small.tar.gz" -C "$T/bundle-src" agent.log

responder() {
	local out=$1
	shift
	diag-responder --host "$MQTT_HOST" --port "$MQTT_PORT" --cafile "$FLEET_CA_FILE" \
		--dir "$T/dev" "$@" >"$T/$out.log" 2>"$T/$out.err" &
	track $!
}
responder r12 --server "$FLEET_URL" --bundle "$T/small.tar.gz" d1 d2
responder r3 d3
responder r5 d5
R5=$!
# said RE what: the previous check's output (stdout and stderr) matches
# RE (check_grep rewrites last.out, so it reads a copy)
said() {
	cp "$T/last.out" "$T/said.out"
	check_grep "$1" "$2" cat "$T/said.out"
}
online() { fleetctl -o json devices show "$1" | jq -e '.online == true' >/dev/null; }
offline() { fleetctl -o json devices show "$1" | jq -e '.online == false' >/dev/null; }
for d in d1 d2 d3 d5; do
	check_exit 0 "$d comes online" wait_until 20 online "$d"
done
check "d6 says it is online (retained presence, no responder)" mq_pub d6 -q 1 -r \
	-t fleet/d6/presence -m '{"online":true}'
check_exit 0 "d6 comes online" wait_until 10 online d6
kill "$R5"
check_exit 0 "d5 goes offline when its responder stops" wait_until 10 offline d5

# --- one device --------------------------------------------------------------
check_exit 0 "ping d1 (table)" tech diag d1 ping
cp "$T/last.out" "$T/ping.txt"
check_grep '^device: +d1$' "... the table names the device" cat "$T/ping.txt"
check_grep '^ok: +yes$' "... and says ok" cat "$T/ping.txt"
check_grep '^  pong: yes$' "... and shows the result's members" cat "$T/ping.txt"
check "ping d1 -o json" sh -c "fleetctl --token '$TECH' -o json diag d1 ping >'$T/ping.json'"
check "... is the device's answer: device, check, ok, elapsed, result" jq -e \
	'.device == "d1" and .check == "ping" and .ok == true and .state == "answered"
	 and .elapsed_ms == 1 and .result.pong == true and .result.device == "d1"
	 and (.rtt_ms | type) == "number"' "$T/ping.json"
check "echo passes the arguments through" sh -c \
	"fleetctl --token '$TECH' -o json diag d2 echo a 'b c' -- -x >'$T/echo.json'"
check "... all three, in order" jq -e '.result.args == ["a", "b c", "-x"]' "$T/echo.json"
check_exit 0 "an operator check's output (table)" tech diag d1 output
cp "$T/last.out" "$T/output.txt"
check_grep '^    second \?\[2J line$' "... prints stdout line by line, escape sequences defused" \
	cat "$T/output.txt"
check_exit 1 "... and never writes the ESC byte to the terminal" grep -q $'\x1b' "$T/output.txt"
check_exit 1 "a check the device reports failed exits 1" tech diag d1 fail
said 'd1: fail failed: failed on purpose' "... with the device's error"
check_exit 1 "an unknown check exits 1" tech diag d1 nosuch
check_exit 1 "a reply that is not JSON exits 1" tech diag d1 garbage
said 'malformed reply' "... saying the reply was malformed"
check_exit 0 "a device that answers twice: the first answer counts" tech diag d1 dup
check_exit 0 "... the second is ignored (fleetd logs it)" wait_until 10 \
	grep -q 'd1: diag reply matches no waiting request' "$T/fleetd.log"
check "... and counts it (fleetctl status -o json)" sh -c \
	"fleetctl -o json status | jq -e '.diag.ignored == 1 and .diag.replies >= 1 and .diag.waiting == 0'"
check_grep '^diag-ignored: +1$' "... also in the table" fleetctl status
check_exit 3 "an unknown device exits 3" tech diag nosuch ping
check_exit 2 "a bad check name is a usage error" tech diag d1 'Bad!'

# offline: answered at once, exit 7
t0=$(date +%s%N)
check_exit 7 "a device never online: exit 7" tech diag d4 ping
ms=$((($(date +%s%N) - t0) / 1000000))
said 'd4 is offline: never seen' "... saying so"
check_true "... at once (${ms} ms < 2000 ms)" test "$ms" -lt 2000
t0=$(date +%s%N)
check_exit 7 "a device gone offline: exit 7" tech diag d5 ping
ms=$((($(date +%s%N) - t0) / 1000000))
said 'd5 is offline since [0-9-]+T[0-9:]+Z' "... 'offline since' when it was last seen"
check_true "... at once (${ms} ms < 2000 ms)" test "$ms" -lt 2000

# no answer: exit 7 after the timeout, not before, not much later
t0=$(date +%s%N)
check_exit 7 "a device that does not answer: exit 7" tech diag d1 silent --timeout 2
ms=$((($(date +%s%N) - t0) / 1000000))
said 'd1 did not answer .silent. within 2 s' "... saying it timed out"
check_true "... after about the timeout (${ms} ms in 2000..6000)" \
	test "$ms" -ge 2000 -a "$ms" -lt 6000
check_exit 7 "d6 (online, nobody answering) times out too" tech diag d6 ping --timeout 1

# roles: viewer and ci are denied, technician (above), operator, admin may
check_exit 4 "a viewer token may not run diag" viewer diag d1 ping
check_exit 0 "... the same call with the technician token works" tech diag d1 ping
check_exit 0 "... and with the admin token" fleetctl diag d1 ping

# audit: every call with its caller, device, check and arguments
api GET '/api/v1/audit?limit=200' -H "Authorization: Bearer $ADMIN_TOKEN" >"$T/audit.json"
check "the technician's echo is audited with device, check and args" jq -e \
	--arg a "token:$TECH_ID" 'any(.[]; .actor == $a and .path == "/api/v1/devices/d2/diag"
	 and .status == 200 and .detail.device == "d2" and .detail.check == "echo"
	 and .detail.args == ["a", "b c", "-x"] and .detail.timeout_s == 10)' "$T/audit.json"
check "the offline refusal is audited (409)" jq -e --arg a "token:$TECH_ID" \
	'any(.[]; .actor == $a and .path == "/api/v1/devices/d4/diag" and .status == 409
	 and .detail.check == "ping")' "$T/audit.json"
check "the viewer's refused call is audited (403)" jq -e \
	'any(.[]; (.actor | startswith("token:")) and .path == "/api/v1/devices/d1/diag"
	 and .status == 403)' "$T/audit.json"

# --- fan-out ---------------------------------------------------------------
t0=$(date +%s%N)
check_exit 1 "fan-out to group line: not everyone answered, exit 1" \
	tech diag --group line ping --timeout 2
ms=$((($(date +%s%N) - t0) / 1000000))
cp "$T/last.out" "$T/fan.txt"
check_grep '^CHECK +DEVICES +ANSWERED +FAILED +OFFLINE +TIMED OUT$' \
	"... prints a summary table" cat "$T/fan.txt"
check_grep '^ping +5 +3 +0 +1 +1$' "... 5 devices: 3 answered, d4 offline, d6 timed out" \
	cat "$T/fan.txt"
check_grep '2 of 5 devices did not answer ok' "... and says how many did not" cat "$T/fan.txt"
check_true "... collected until the timeout (${ms} ms in 2000..6000)" \
	test "$ms" -ge 2000 -a "$ms" -lt 6000
tech -o json diag --group line ping --timeout 1 >"$T/fan.json" 2>/dev/null
check "fan-out -o json: the summary and every device's state" jq -e \
	'.summary == {"total": 5, "answered": 3, "failed": 0, "offline": 1, "timed_out": 1}
	 and ([.devices[] | "\(.device)=\(.state)"] | join(" "))
	     == "d1=answered d2=answered d3=answered d4=offline d6=timed-out"
	 and ([.devices[] | select(.state == "answered") | .result.device] == ["d1", "d2", "d3"])' \
	"$T/fan.json"
check_exit 1 "fan-out by label site=a, a check that fails" tech diag --label site=a fail
said '^fail +2 +0 +2 +0 +0$' "... both devices report failed"
check_exit 0 "fan-out by label site=a, ping: all answered, exit 0" tech diag --label site=a ping
said '^ping +2 +2 +0 +0 +0$' "... 2 of 2 answered"
check_exit 1 "fan-out --all includes d5 (offline)" sh -c \
	"fleetctl --token '$TECH' -o json diag --all ping --timeout 1 >'$T/all.json'"
check "... as offline with when it was last seen" jq -e \
	'.devices[] | select(.device == "d5") | .state == "offline" and (.last_seen | type) == "string"' \
	"$T/all.json"
check_exit 3 "fan-out to a group nobody is in: exit 3" tech diag --group nobody ping
check_exit 4 "a viewer may not fan out" viewer diag --all ping
api GET '/api/v1/audit?limit=50' -H "Authorization: Bearer $ADMIN_TOKEN" >"$T/audit2.json"
check "a fan-out is audited with its target and devices" jq -e --arg a "token:$TECH_ID" \
	'any(.[]; .actor == $a and .path == "/api/v1/diag" and .detail.target == {"label": "site=a"}
	 and .detail.devices == 2 and .detail.device_ids == ["d1", "d2"]
	 and .detail.check == "fail")' "$T/audit2.json"

# --- waiting calls hold no thread; [diag] max_pending_per_caller = 2 ----------
# fleetd's HTTP side has 4 threads: six calls waiting for silent devices
# (two per token) must not stop it answering anything else
OP=$(fleetctl -o json token create op --role operator | jq -r .token)
TECH2=$(fleetctl -o json token create tech2 --role technician | jq -r .token)
SILENT=$(grep -c ' silent$' "$T/r12.log")
WAITERS=()
for tok in "$TECH" "$OP" "$TECH2"; do
	for d in d1 d2; do
		fleetctl --token "$tok" diag "$d" silent --timeout 6 >/dev/null 2>&1 &
		WAITERS+=($!)
	done
done
waiting() { [ "$(grep -c ' silent$' "$T/r12.log")" -ge $((SILENT + 6)) ]; }
check_exit 0 "six calls of three tokens wait on d1, d2" wait_until 10 waiting
t0=$(date +%s%N)
check_exit 0 "... the API still answers (whoami)" fleetctl whoami
ms=$((($(date +%s%N) - t0) / 1000000))
check_true "... at once (${ms} ms < 2000 ms)" test "$ms" -lt 2000
check_exit 0 "... and another caller's diag call goes through" fleetctl diag d1 ping
check_exit 1 "a third call of the same token is refused" tech diag d1 ping
said 'HTTP 429' "... with 429"
said 'max_pending_per_caller' "... naming the bound (max_pending_per_caller)"
rcs=""
for p in "${WAITERS[@]}"; do
	wait "$p"
	rcs="$rcs$?"
done
check_true "the waiting calls end in their timeout, exit 7 ($rcs)" test "$rcs" = 777777

# --- support bundles -----------------------------------------------------------
check_exit 0 "diag bundle d1 (table): the device uploads, fleetctl saves it" \
	tech diag bundle d1 --out "$T/got.tar.gz"
said "wrote .*got.tar.gz \($(stat -c %s "$T/small.tar.gz") bytes\)" "... and says so"
check "... the very bytes the device sent" cmp "$T/small.tar.gz" "$T/got.tar.gz"
check "diag bundle d2 -o json" sh -c \
	"fleetctl --token '$TECH' -o json diag bundle d2 --out '$T/got2.tar.gz' >'$T/b2.json'"
check "... names device, upload, file and size" jq -e --argjson n "$(stat -c %s "$T/small.tar.gz")" \
	'.device == "d2" and (.upload | startswith("u-")) and .size == $n' "$T/b2.json"
check_exit 5 "an existing --out file is not replaced" tech diag bundle d1 --out "$T/got.tar.gz"
check_exit 7 "diag bundle of an offline device: exit 7" tech diag bundle d4 --out "$T/x.tar.gz"
check_exit 1 "... and no file is left behind" test -e "$T/x.tar.gz"
check_exit 4 "a viewer may not ask for a bundle" viewer diag bundle d1 --out "$T/v.tar.gz"

# the upload endpoint, by hand: d3's responder never uploads
ask_bundle() {
	api POST /api/v1/devices/d3/diag-bundle -H "Authorization: Bearer $TECH" \
		-H 'Content-Type: application/json' -d '{"timeout_s": 60}' | jq -r .upload
}
put_as() {
	curl -sS --max-time 20 --cacert "$FLEET_CA_FILE" --cert "$T/dev/$1.pem" \
		--key "$T/dev/$1.key" -X PUT -H 'Content-Type: application/octet-stream' \
		--data-binary @"$3" -o "$T/put.out" -w '%{http_code}\n' \
		"$FLEET_URL/api/v1/devices/d3/diag-bundles/$2"
}
get_bundle() {
	api GET "/api/v1/devices/d3/diag-bundles/$1" -H "Authorization: Bearer $TECH" \
		-o "$2" -w '%{http_code}\n'
}
U=$(ask_bundle)
check_true "a bundle request for d3 gets an upload id" test "${U#u-}" != "$U"
check_grep '^202$' "... pending until the device uploads" get_bundle "$U" "$T/p.out"
check_grep '^403$' "another device's certificate may not upload it" put_as d1 "$U" "$T/small.tar.gz"
head -c 100000 /dev/urandom | gzip -1 >"$T/big.tar.gz"
check_grep '^413$' "over [diag] bundle_max is refused" put_as d3 "$U" "$T/big.tar.gz"
check_grep '^400$' "data that is not gzip is refused" put_as d3 "$U" "$T/bundle-src/agent.log"
check_grep '^202$' "... the upload is still pending" get_bundle "$U" "$T/p.out"
check_grep '^200$' "d3's own certificate uploads it (positive control)" put_as d3 "$U" "$T/small.tar.gz"
check_grep '^409$' "... once" put_as d3 "$U" "$T/small.tar.gz"
check_grep '^200$' "the technician downloads it" get_bundle "$U" "$T/got3.tar.gz"
check "... unchanged" cmp "$T/small.tar.gz" "$T/got3.tar.gz"
check_grep '^404$' "an unknown upload id is 404" put_as d3 u-000000000000000000000000 "$T/small.tar.gz"
api GET '/api/v1/audit?limit=50' -H "Authorization: Bearer $ADMIN_TOKEN" >"$T/audit3.json"
check "the download is audited with its caller" jq -e --arg a "token:$TECH_ID" --arg u "$U" \
	'any(.[]; .actor == $a and .method == "GET" and .path == "/api/v1/devices/d3/diag-bundles/\($u)"
	 and .status == 200)' "$T/audit3.json"
check "the upload is audited as the device" jq -e --arg u "$U" \
	'any(.[]; .actor == "device:d3" and .method == "PUT" and .status == 200
	 and .path == "/api/v1/devices/d3/diag-bundles/\($u)")' "$T/audit3.json"

# --- tech- names technicians, never a device --------------------------------
check_grep '^400$' "enrolment refuses the id tech-x" enroll_curl tech-x "$OTHER"
check_exit 1 "provision refuses the id tech-y" fleetctl provision tech-y --out "$T/tech-y.tar.gz"
said "reserved" "... saying it is reserved"
finish
