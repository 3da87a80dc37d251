#!/usr/bin/env bash
# Support bundles with replicas (issue 14, server-stub/diag_bundles.h):
# the technician asks replica A for a device's bundle, the device uploads
# it to replica B (a device reaches whichever replica its balancer
# picks), and the technician downloads it from B and from A.  The
# upload moves once across replicas (the same PUT through A afterwards:
# 409).  With the uploads' states in each replica's memory, B answered
# 404 to both.  A device decommissioned through B is in the one CRL
# file both replicas write ([ca] shared_crl) and the broker reads.
# Skipped, saying so, only where PostgreSQL is not
# installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pg.sh"
. "$(dirname "$0")/lib-replicas.sh"

pg_required
unset FLEET_STORE_URL
pg_start || { cat "$T/postgres.log"; exit 1; }
APORT=$(free_port) BAPORT=$(free_port)
A_URL=https://127.0.0.1:$APORT B_URL=https://127.0.0.1:$BAPORT
check "fleetd init on PostgreSQL, one mosquitto, B's state dir a copy of A's" \
	replicas_init "$A_URL"
check "replica a serves" replica_serve a "$SA" "$APORT"
check "replica b serves" replica_serve b "$SB" "$BAPORT"
FLEET_URL=$A_URL MQTT_HOST=127.0.0.1 MQTT_PORT=$BPORT
fa() { fleetctl --server "$A_URL" --ca "$FLEET_CA_FILE" --token "$TECH" "$@"; }
TECH=$ADMIN_TOKEN
LINE=$(fa -o json token create line --enroll --uses 4 | jq -r .token)
TECH=$(fa -o json token create tech --role technician | jq -r .token)
for d in d1 d3; do
	check_grep '^201$' "enrol $d through A" enroll_curl "$d" "$LINE"
done

mkdir -p "$T/bundle-src"
echo "agent log" >"$T/bundle-src/agent.log"
tar -czf "$T/small.tar.gz" -C "$T/bundle-src" agent.log
# d1 answers the bundle check by uploading to B; d3 never answers it
(exec diag-responder --host 127.0.0.1 --port "$BPORT" --cafile "$FLEET_CA_FILE" \
	--dir "$T/dev" --server "$B_URL" --bundle "$T/small.tar.gz" d1 \
	>"$T/r1.log" 2>&1) &
track $!
(exec diag-responder --host 127.0.0.1 --port "$BPORT" --cafile "$FLEET_CA_FILE" \
	--dir "$T/dev" d3 >"$T/r3.log" 2>&1) &
track $!
online() { fa -o json devices show "$1" | jq -e '.online == true' >/dev/null; }
for d in d1 d3; do
	check "$d comes online" wait_until 20 online "$d"
done

check_exit 0 "diag bundle d1 through A (table), d1 uploading to B: saved" \
	fa diag bundle d1 --out "$T/got1.tar.gz"
check "... unchanged" cmp "$T/small.tar.gz" "$T/got1.tar.gz"
check "... the upload reached B, not A" bash -c \
	"grep -q 'PUT /api/v1/devices/d1/diag-bundles/u-' '$T/b.log' &&
	 ! grep -q 'PUT /api/v1/devices/d1/diag-bundles/u-' '$T/a.log'"

# by hand, d3: asked through A, uploaded through B, fetched from both
U=$(curl -sS --max-time 20 --cacert "$FLEET_CA_FILE" -X POST -H "Authorization: Bearer $TECH" \
	-H 'Content-Type: application/json' -d '{"timeout_s": 60}' \
	"$A_URL/api/v1/devices/d3/diag-bundle" | jq -r .upload)
check_true "a bundle request for d3 through A gets an upload id" test "${U#u-}" != "$U"
put_to() { # put_to URL FILE: d3 PUTs FILE as upload $U, prints the status
	curl -sS --max-time 20 --cacert "$FLEET_CA_FILE" --cert "$T/dev/d3.pem" \
		--key "$T/dev/d3.key" -X PUT -H 'Content-Type: application/octet-stream' \
		--data-binary @"$2" -o "$T/put.out" -w '%{http_code}\n' \
		"$1/api/v1/devices/d3/diag-bundles/$U"
}
get_from() { # get_from URL OUT: the technician GETs upload $U
	curl -sS --max-time 20 --cacert "$FLEET_CA_FILE" -H "Authorization: Bearer $TECH" \
		-o "$2" -w '%{http_code}\n' "$1/api/v1/devices/d3/diag-bundles/$U"
}
check_grep '^202$' "B knows it is pending" get_from "$B_URL" "$T/p.out"
check_grep '^200$' "d3 uploads it to B" put_to "$B_URL" "$T/small.tar.gz"
check_grep '^409$' "... once: the same upload through A is refused" put_to "$A_URL" "$T/small.tar.gz"
check_grep '^200$' "the technician downloads it from B" get_from "$B_URL" "$T/got3b.tar.gz"
check "... unchanged" cmp "$T/small.tar.gz" "$T/got3b.tar.gz"
check_grep '^200$' "... and from A, which asked for it" get_from "$A_URL" "$T/got3a.tar.gz"
check "... unchanged" cmp "$T/small.tar.gz" "$T/got3a.tar.gz"
check "the file is in the shared [diag] bundle_dir" test -s "$T/shared/diag/$U.tar.gz"
check_exit 1 "... and nothing of it in the firmware bundle store (a mirror may publish that)" \
	bash -c "ls -A '$SA/bundles' | grep -v '\.fwb\$' | grep ."

# --- one CRL for both ([ca] shared_crl) ----------------------------------------
crl_has() { # crl_has SERIAL: the shared CRL lists it
	openssl crl -in "$T/shared/crl.pem" -noout -text | tr -d ' :' | grep -qi "SerialNumber$1"
}
check_grep "crlfile $T/shared/crl.pem" "the broker reads the shared CRL" cat "$SA/broker/mosquitto.conf"
SERIAL=$(openssl x509 -in "$T/dev/d3.pem" -noout -serial | cut -d= -f2)
check_exit 1 "d3's serial is not in it yet" crl_has "$SERIAL"
fb() { fleetctl --server "$B_URL" --ca "$FLEET_CA_FILE" --token "$ADMIN_TOKEN" "$@"; }
check "d3 decommissioned through B" fb -q devices decommission d3
check "... its certificate is in the shared CRL the broker reads" crl_has "$SERIAL"
check_exit 1 "... and A's own state dir has no CRL of its own in use" \
	grep -q "$SA/ca/crl.pem" "$SA/broker/mosquitto.conf"
finish
