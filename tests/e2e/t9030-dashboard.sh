#!/usr/bin/env bash
# fleetd's web dashboard (issue 15, docs/dashboard.md) in a real headless
# Chromium, driven over the DevTools protocol by dash_cdp.py, against
# fleetd with six fleet-sim devices, a rollout that runs (wave 1 done,
# soaking) and one that failed and rolled back:
#  - the browser logs in with a viewer token and opens every page (login,
#    overview, devices with search and paging, a device, both rollouts),
#    sees what each must show, follows a change live, and saves a
#    screenshot of each into the test's log dir; no console error, no
#    failed request, no request anywhere but fleetd;
#  - a shadow value `<script>alert(1)</script>` shows as text and opens
#    no dialog;
#  - the cookie is HttpOnly, Secure, SameSite=Strict, Path=/ and holds no
#    token; every dashboard reply has the CSP and the other headers;
#  - a cookie may only GET, with a viewer's rights: a cookie POST is
#    refused (403) and an admin's cookie cannot read what a viewer
#    cannot; logout, revocation and a forged id end the access.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-agent.sh"

if ! command -v chromium >/dev/null; then
	fail "chromium is installed (make check T=t9030 installs it: scripts/install-deps --dashboard)"
	finish
fi
# the screenshots stay next to the test's log (build/test-logs/), for CI
SHOTS=$FLEET_BUILD/test-logs/e2e_t9030-dashboard
rm -rf "$SHOTS" && mkdir -p "$SHOTS"

start_fleetd --with-broker
login_admin
check "build the sample firmware and its bundles" ota_firmware
check "push the trust root" fleetctl root push "$T/fw/root.json"
for v in 1.1.0 1.2.0; do
	check "upload fleet-sample $v" fleetctl bundle upload "$T/fw/fw-$v.fwb"
done
sim_start sim 6 d g6 --telemetry-rate 2 --install-delay 1s
online_on() {
	fleetctl -o json devices list |
		jq -e "[.[] | select(.online and .firmware == \"$1\")] | length == $2" >/dev/null
}
check_exit 0 "6 simulated devices online on 1.0.0" wait_until 90 online_on 1.0.0 6

# bad: 1.2.0 fails its health check on d-0005, the gate trips
check "create rollout bad (1.2.0 to d-0005, d-0006)" fleetctl -q rollout create \
	--bundle fleet-sample@1.2.0 --device d-0005 --device d-0006 --canary d-0005 \
	--waves 1,100% --soak 0s --health-window 2s --id bad
state_is() { fleetctl -o json rollout status "$1" | jq -e ".state == \"$2\"" >/dev/null; }
check_exit 0 "rollout bad ends rolled-back" wait_until 180 state_is bad rolled-back
# good: 1.1.0, wave 1 done, then a soak of an hour: running while we look
check "create rollout good (1.1.0 to d-0001..4, waves 50%,100%, soak 1h)" \
	fleetctl -q rollout create --bundle fleet-sample@1.1.0 --device d-0001 \
	--device d-0002 --device d-0003 --device d-0004 --waves 50%,100% \
	--soak 1h --health-window 1s --id good
wave1_done() {
	fleetctl -o json rollout status good |
		jq -e '.state == "running" and .waves[0].counts.healthy == 2' >/dev/null
}
check_exit 0 "rollout good: wave 1 healthy, soaking" wait_until 180 wave1_done
check_grep '^good +running' "fleetctl rollout list (table) shows good running" \
	fleetctl rollout list
W1=$(fleetctl -o json rollout status good --devices |
	jq -r '[.devices[] | select(.wave == 1)][0].device')
check_true "a wave-1 device: $W1" test -n "$W1"
check_grep "^$W1 .*1\\.1\\.0" "fleetctl devices list (table): $W1 on 1.1.0" \
	fleetctl devices list
XSS='<script>alert(1)</script>'
check "desired shadow of $W1: label = $XSS" fleetctl -q shadow set "$W1" "label=$XSS"
has_points() {
	[ "$(fleetctl -o json telemetry "$W1" | jq '.points | length')" -ge 3 ]
}
check_exit 0 "$W1 has telemetry points" wait_until 30 has_points
fleetctl -o json token create dash-viewer --role viewer 2>/dev/null | jq -r .token >"$T/viewer"
fleetctl -o json token create dash-ci --role ci 2>/dev/null | jq -r .token >"$T/ci"
VIEWER=$(cat "$T/viewer")

# --- the browser --------------------------------------------------------------
CHROMIUM_SPKI=$(openssl x509 -in "$FLEETD_STATE/tls/server.pem" -pubkey -noout |
	openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
export CHROMIUM_SPKI
cat >"$T/steps" <<EOF
open open /
login-page text Viewer token
shot-login shot login.png
login login $VIEWER
overview text Fleet overview
overview-rollouts text running rollouts
overview-bad text rolled-back
cards eval [...document.querySelectorAll('.card')].map(c => c.innerText.replace(/\\s+/g, ' '))
rollout-rows eval [...document.querySelectorAll('tbody tr')].map(r => r.innerText.replace(/\\s+/g, ' '))
shot-overview shot overview.png
devices open /#/devices
devices-all text 6 devices
search eval (f => { f.elements.version.value = '1.1.0'; f.requestSubmit(); return location.hash; })(document.getElementById('search'))
search-result text 2 devices
search-hash eval location.hash
search-rows eval [...document.querySelectorAll('#results tbody tr td:first-child')].map(t => t.innerText)
shot-devices shot devices.png
paged open /#/devices?size=4&page=2
paged-text text page 2 of 2
paged-rows eval [...document.querySelectorAll('#results tbody tr td:first-child')].map(t => t.innerText)
device open /#/device/$W1
device-identity text Slots and versions
device-xss text $XSS
device-fw eval document.body.innerText.includes('1.1.0')
device-scripts eval document.scripts.length
device-chart eval document.querySelectorAll('svg.chart polyline').length
device-jobs eval [...document.querySelectorAll('tbody tr')].some(r => r.innerText.includes('succeeded') && r.innerText.includes('good'))
shot-device shot device.png
good open /#/rollout/good
good-state text running
good-waves eval [...document.querySelectorAll('.wave')].map(w => w.innerText.split('\\n')[0])
good-bars eval document.querySelectorAll('svg.bar rect.s-healthy').length
good-timeline text wave-started
shot-good shot rollout-good.png
pause-live run fleetctl -q rollout pause good
good-paused text paused
bad open /#/rollout/bad
bad-state text rolled-back
bad-failure eval [...document.querySelectorAll('tbody tr')].map(r => r.innerText.replace(/\\s+/g, ' ')).filter(t => t.startsWith('d-0005'))
shot-bad shot rollout-bad.png
cookies cookies -
js-cookie eval document.cookie
EOF
CDP_PROFILE=$T/chromium CDP_WAIT=$((20 * WAIT_SCALE)) python3 "$FLEET_SRC/tests/e2e/dash_cdp.py" "$FLEET_URL" "$SHOTS" "$T/steps" \
	>"$T/results.json" 2>"$T/cdp.err"
check "the Chromium run finished" test -s "$T/results.json"
cp "$T/results.json" "$SHOTS/"
res() { jq -e "$1" "$T/results.json"; }
for s in open login-page login overview overview-rollouts overview-bad devices \
	devices-all search-result paged-text device device-identity device-xss \
	good good-state good-timeline pause-live good-paused bad bad-state; do
	check "browser: step $s" res ".\"$s\".ok == true"
done
check "overview cards: 6 devices, 6 online, 0 offline, 1 running rollout" \
	res '.cards.value | index("6 devices") != null and index("6 online") != null
		and index("0 offline") != null and index("1 running rollouts") != null'
check "overview lists both rollouts with their state" \
	res '[.["rollout-rows"].value[] | select(test("^good running") or test("^bad rolled-back"))] | length == 2'
check "device search goes through the URL (version=1.1.0) ..." \
	res '.["search-hash"].value == "#/devices?version=1.1.0"'
WAVE1=$(fleetctl -o json rollout status good --devices |
	jq -c '[.devices[] | select(.wave == 1) | .device] | sort')
check "... and shows exactly the two wave-1 devices, on 1.1.0" \
	res "(.[\"search-rows\"].value | sort) == $WAVE1"
check "paging: page 2 of size 4 holds the last two devices" \
	res '.["paged-rows"].value == ["d-0005", "d-0006"]'
check "device page: the shadow value shows as text (positive control)" \
	res '.["device-xss"].ok == true'
check "... and opened no dialog" res '.dialogs == []'
check "... and added no script element (the page's own only)" \
	res '.["device-scripts"].value == 1'
check "device page: firmware 1.1.0, a telemetry chart, the rollout's job" \
	res '.["device-fw"].value == true and .["device-chart"].value >= 1
		and .["device-jobs"].value == true'
check "rollout good: two waves, wave 1 with 2 healthy devices as a bar" \
	res '(.["good-waves"].value | length == 2) and (.["good-waves"].value[0] | startswith("Wave 1"))
		and .["good-bars"].value == 1'
check "rollout good: a pause made outside shows without a reload (live)" \
	res '.["good-paused"].ok == true'
check "rollout bad: d-0005's failure with its reason" \
	res '.["bad-failure"].value | length == 1 and (.[0] | test("health check failed"))'
check "no console error in any page" res '.console_errors == []'
check "no failed request" res '.failed_requests == []'
check "every request went to fleetd only" \
	res "[.requests[] | select(startswith(\"$FLEET_URL/\") | not)] == []"
check "the session cookie: HttpOnly, Secure, SameSite=Strict, Path=/, __Host-" \
	res '.cookies.value | length == 1 and .[0].name == "__Host-fleet_session"
		and .[0].httpOnly and .[0].secure and .[0].sameSite == "Strict" and .[0].path == "/"'
check "... which the page's script cannot read" res '.["js-cookie"].value == ""'
for f in login overview devices device rollout-good rollout-bad; do
	check "screenshot $f.png saved (a PNG)" sh -c "file '$SHOTS/$f.png' | grep -q 'PNG image'"
done
check "resume rollout good" fleetctl -q rollout resume good

# --- HTTP: headers, cookie, CSRF, rights ---------------------------------------
hdrs() { api GET "$1" -o /dev/null -D - "${@:2}" | tr -d '\r'; }
for p in / /dash/dash.js /dash/dash.css /dash/session; do
	hdrs "$p" >"$T/h"
	check "GET $p: the CSP (self only, no frames)" grep -q \
		"^Content-Security-Policy: default-src 'self'; .*frame-ancestors 'none'" "$T/h"
	check "GET $p: nosniff, no-referrer" sh -c "grep -q '^X-Content-Type-Options: nosniff' '$T/h' &&
		grep -q '^Referrer-Policy: no-referrer' '$T/h'"
done
check_grep '^Content-Type: text/javascript' "dash.js is JavaScript" hdrs /dash/dash.js
check_grep '^Content-Type: text/css' "dash.css is CSS" hdrs /dash/dash.css
check_grep '^Content-Type: text/html' "/ is HTML" hdrs /
ETAG=$(hdrs /dash/dash.js | sed -n 's/^ETag: //p')
check_true "dash.js has an ETag" test -n "$ETAG"
check_grep '^HTTP/1.1 304' "If-None-Match with it: 304" hdrs /dash/dash.js -H "If-None-Match: $ETAG"
check_grep '^Cache-Control: no-cache' "... and clients revalidate (no-cache)" hdrs /dash/dash.js
check_grep '^HTTP/1.1 404' "an unknown dashboard file: 404" hdrs /dash/nosuch.js

login_as() { api POST /dash/login -H 'Content-Type: application/json' \
	--data "{\"token\":\"$1\"}" -D "$T/login.h" -o "$T/login.out" -w '%{http_code}\n'; }
cookie_of() { tr -d '\r' <"$T/login.h" | sed -n 's/^Set-Cookie: __Host-fleet_session=\([^;]*\);.*/\1/p'; }
check_grep '^200$' "login with the viewer token: 200" login_as "$VIEWER"
VC=$(cookie_of)
check_grep '^Set-Cookie: __Host-fleet_session=[0-9a-f]{64}; Max-Age=[0-9]+; Path=/; Secure; HttpOnly; SameSite=Strict$' \
	"Set-Cookie: random id, Path=/, Secure, HttpOnly, SameSite=Strict" \
	sh -c "tr -d '\r' <'$T/login.h'"
check_true "the cookie is not the token, nor holds it" sh -c "! grep -qF -- '$VIEWER' '$T/login.h'"
check_grep '^401$' "login with a wrong token: 401" login_as "nosuch"
check_grep '^403$' "login with a ci token: 403 (not viewer or higher)" login_as "$(cat "$T/ci")"
check_grep '^200$' "login with the admin token: 200" login_as "$ADMIN_TOKEN"
AC=$(cookie_of)
code() { api "$1" "$2" -o "$T/code.out" -w '%{http_code}\n' "${@:3}"; }
ck() { printf 'Cookie: __Host-fleet_session=%s' "$1"; }
check_grep '^200$' "viewer cookie: GET /api/v1/devices 200" code GET /api/v1/devices -H "$(ck "$VC")"
check_grep '^403$' "viewer cookie: POST labels refused 403 (CSRF)" code POST /api/v1/devices/d-0001/labels \
	-H "$(ck "$VC")" -H 'Content-Type: application/json' --data '{"set":{"k":"v"}}'
check_grep '^403$' "admin cookie: POST rollout pause refused 403" code POST /api/v1/rollouts/good/pause \
	-H "$(ck "$AC")"
check "... the rollout still runs" state_is good running
check_grep '^403$' "admin cookie: DELETE a token refused 403" code DELETE /api/v1/tokens/x -H "$(ck "$AC")"
check_grep '^200$' "admin bearer: POST labels 200 (positive control)" code POST /api/v1/devices/d-0001/labels \
	-H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' --data '{"set":{"k":"v"}}'
for p in /api/v1/tokens /api/v1/audit /api/v1/technicians; do
	check_grep '^403$' "viewer token: GET $p 403" code GET "$p" -H "Authorization: Bearer $VIEWER"
	check_grep '^403$' "admin's cookie (a viewer): GET $p 403" code GET "$p" -H "$(ck "$AC")"
	check_grep '^200$' "admin bearer: GET $p 200" code GET "$p" -H "Authorization: Bearer $ADMIN_TOKEN"
done
body() { api GET "$1" "${@:2}"; }
check_grep '"role":"viewer"' "whoami with the admin's cookie: viewer" body /api/v1/whoami -H "$(ck "$AC")"
check_grep '^401$' "a forged session id: 401" code GET /api/v1/devices \
	-H "$(ck "$(printf '%064d' 0)")"
check_grep '^200$' "logout" code POST /dash/logout -H "$(ck "$AC")"
check_grep '^401$' "the logged-out cookie: 401" code GET /api/v1/devices -H "$(ck "$AC")"
VID=$(fleetctl -o json token list | jq -r '.[] | select(.name == "dash-viewer") | .id')
check "revoke the viewer token" fleetctl -q token revoke "$VID"
check_grep '^401$' "the revoked token's session: 401" code GET /api/v1/devices -H "$(ck "$VC")"
check_grep '"logged_in":false' "/dash/session says logged out" body /dash/session -H "$(ck "$VC")"

sim_stop "$SIM_PID"
finish
