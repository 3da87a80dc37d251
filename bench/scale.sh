#!/usr/bin/env bash
# fleetd on SQLite, on PostgreSQL, and as two replicas on one PostgreSQL
# (issue 14, docs/scale.md), in one run and on the same machine.  For
# each configuration:
#
#   sqlite  one fleetd, its SQLite store
#   pg1     one fleetd (--replica a) on a PostgreSQL database
#   pg2     replicas a and b (copies of one state dir, the bundles
#           shared) on one PostgreSQL database
#
# with one mosquitto outside fleetd (fleetd broker-config) and the same
# load:
#
#   ingest    BURST devices (tests/tools/mqtt-burst, one MQTT v5 client
#             each over mTLS) publish EVENTS job events each at full
#             speed; the time from the burst's start until the fleetds
#             have handled them all (stored, or refused as stale: with
#             replicas a device's events arrive out of order): events a
#             second;
#   reads     READS GET /api/v1/devices/ID (curl --parallel, 16 at a
#             time, a token), spread over the replicas: reads a second;
#   rollout   DEVICES fleet-sim devices updated by a rollout of
#             fleet-sample 1.1.0 (one wave, no soak): fleetd CPU per
#             device update, summed over the replicas (not mosquitto's,
#             not PostgreSQL's: that is printed beside it).
#
# CPU is each process's threads' run time (/proc/PID/task/*/schedstat).
# Ends with "metric:" lines; the pg2 ones also as ratios to pg1 and to
# sqlite.  Never part of make check.  Figures go to docs/scale.md.
#
#   bench/scale.sh       (BENCH_DEVICES=200 BENCH_BURST=200 BENCH_EVENTS=50
#                         BENCH_READS=4000 BENCH_CONFIGS="sqlite pg1 pg2")
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
NDEV=${BENCH_DEVICES:-200}
NBURST=${BENCH_BURST:-200}
NEV=${BENCH_EVENTS:-50}
NREAD=${BENCH_READS:-4000}
CONFIGS=${BENCH_CONFIGS:-sqlite pg1 pg2}
export FLEET_BUILD=${FLEET_BUILD:-$top/build}
export FLEET_SRC=$top

scripts/install-deps --bench
make -s BUILD="$FLEET_BUILD" all "$FLEET_BUILD/tests/tools/mqtt-burst"
ulimit -n "$(ulimit -Hn)"
set +eu
. tests/e2e/lib.sh
. tests/e2e/lib-agent.sh
. tests/e2e/lib-pg.sh
set -u
unset FLEET_STORE FLEET_STORE_URL
die() { echo "bench: $*" >&2; exit 1; }
now_ns() { date +%s%N; }
cpu_ns() { for p in "$@"; do cat /proc/"$p"/task/*/schedstat; done 2>/dev/null |
	awk '{ s += $1 } END { printf "%.0f", s }'; }
pg_pids() { local pm; pm=$(pgrep -f -- "postgres -D .* -p $PG_PORT ") && echo "$pm" $(pgrep -P "$pm"); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo "# work dir $T; $NBURST burst devices x $NEV events, $NREAD reads, $NDEV devices updated; configs: $CONFIGS"
pg_start || { cat "$T/postgres.log"; die "PostgreSQL did not start"; }
ota_firmware || { cat "$T/fw.log"; die "no sample firmware"; }
declare -A RESULT

# serve NAME DIR PORT [args]: fleetd NAME on DIR, HTTPS on PORT; its
# pid appended to PIDS
serve() {
	local name=$1 dir=$2 port=$3
	shift 3
	fleetd serve --state "$dir" --listen "127.0.0.1:$port" --log-level warn \
		"$@" >"$C/$name.out" 2>"$C/$name.log" &
	PIDS="$PIDS $!"
	track $!
	wait_until 30 grep -q '^ready ' "$C/$name.out" || die "fleetd $name did not start"
}

store() { # SQL: fleetd's store of the configuration that runs
	if [ -n "$STORE_URL" ]; then psql -X -A -t -q "$STORE_URL" -c "$1"
	else sqlite3 "$C/a/fleetd.db" "$1"; fi
}

# up CONFIG: fleetd(s) and a mosquitto for CONFIG; sets C, A_URL, URLS,
# PIDS, STORE_URL
up() {
	local cfg=$1 bport aport bport2
	C=$T/$cfg
	mkdir -p "$C"
	if [ "$cfg" != sqlite ]; then
		pg_psql -c "CREATE DATABASE $cfg" >/dev/null || die "CREATE DATABASE $cfg"
		STORE_URL="postgresql://fleet@127.0.0.1:$PG_PORT/$cfg"
	else
		STORE_URL=''
	fi
	fleetd init --state "$C/a" ${STORE_URL:+--store "$STORE_URL"} >"$C/init.out" 2>&1 ||
		{ cat "$C/init.out"; die "fleetd init ($cfg)"; }
	ADMIN_TOKEN=$(sed -n 's/^admin token: //p' "$C/init.out")
	bport=$(free_port) aport=$(free_port) bport2=$(free_port)
	A_URL=https://127.0.0.1:$aport
	printf '[server]\npublic_url = %s\n[mqtt]\nurl = mqtts://127.0.0.1:%s\n' \
		"$A_URL" "$bport" >>"$C/a/fleetd.conf"
	fleetd broker-config --state "$C/a" --listen "127.0.0.1:$bport" >/dev/null
	(exec mosquitto -c "$C/a/broker/mosquitto.conf" >"$C/broker.log" 2>&1) &
	BROKER=$!
	track $BROKER
	wait_until 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$bport" || die "mosquitto ($cfg)"
	MQTT_HOST=127.0.0.1 MQTT_PORT=$bport
	FLEET_CA_FILE=$C/a/ca.pem FLEET_URL=$A_URL
	export ADMIN_TOKEN FLEET_CA_FILE FLEET_URL MQTT_HOST MQTT_PORT
	PIDS='' URLS=$A_URL
	if [ "$cfg" = pg2 ]; then
		cp -a "$C/a" "$C/b"
		rm -rf "$C/b/bundles" "$C/b/broker" "$C/b/fleetd.lock"
		ln -s "$C/a/bundles" "$C/b/bundles"
		serve b "$C/b" "$bport2" --replica b
		URLS="$URLS https://127.0.0.1:$bport2"
	fi
	if [ "$cfg" = sqlite ]; then serve a "$C/a" "$aport"
	else serve a "$C/a" "$aport" --replica a; fi
	login_admin
	fleetctl -q root push "$T/fw/root.json"
	fleetctl -q bundle upload "$T/fw/fw-1.1.0.fwb" >/dev/null
}

down() {
	local p
	for p in $PIDS ${SIM:-}; do kill -TERM "$p" 2>/dev/null; done
	for p in $PIDS ${SIM:-}; do wait_until 30 sh -c "! kill -0 $p" || kill -KILL "$p"; done
	kill -TERM "$BROKER"
	SIM=''
}

# --- ingest: a burst of job events ------------------------------------------
ingest() {
	local tok total base t0 t1 c0 c1 i p=()
	tok=$(fleetctl -o json token create burst --enroll --uses "$NBURST" --ttl 1h 2>/dev/null | jq -r .token)
	for ((i = 1; i <= NBURST; i++)); do
		enroll_curl "b$i" "$tok" >"$C/enrol-b$i.status" 2>&1 &
		p+=($!)
		if [ ${#p[@]} -ge 20 ]; then wait "${p[@]}"; p=(); fi
	done
	[ ${#p[@]} -eq 0 ] || wait "${p[@]}"
	[ "$(cat "$C"/enrol-b*.status | grep -c '^201$')" -eq "$NBURST" ] || die "burst devices not enrolled"
	# shellcheck disable=SC2046
	fleetctl -o json update $(seq -f 'b%g' 1 "$NBURST") --bundle fleet-sample@1.1.0 2>"$C/update.err" |
		jq -r '.[] | "\(.device) \(.job)"' >"$C/spec"
	total=$((NBURST * NEV)) base=$(handled)
	c0=$(cpu_ns $PIDS) t0=$(now_ns)
	mqtt-burst --host "$MQTT_HOST" --port "$MQTT_PORT" --cafile "$FLEET_CA_FILE" \
		--dir "$T/dev" --spec "$C/spec" --events "$NEV" --start-seq 2 \
		--resend-ms 0 --timeout 300 >"$C/burst.out" || echo "# mqtt-burst: exit $?"
	all_handled() { [ $(($(handled) - base)) -ge "$total" ]; }
	wait_until 300 all_handled || echo "# $CFG: not all events handled in 300 s"
	t1=$(now_ns) c1=$(cpu_ns $PIDS)
	RESULT[$CFG.refused]=$((total - $(store 'SELECT count(*) FROM job_events')))
	RESULT[$CFG.ingest]=$(awk -v n="$total" -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", n * 1e9 / d }')
	RESULT[$CFG.ingest_us]=$(awk -v n="$total" -v c=$((c1 - c0)) 'BEGIN { printf "%.1f", c / 1e3 / n }')
}

# The messages every fleetd has handled (stored, or refused: a repeat,
# stale, after its job's end, illegal).  With replicas the shared
# subscription gives a device's events to both, so its later event can
# reach the store before an earlier one, which is then refused (docs/
# scale.md, "Order"); the burst's events come all at once, so many are.
handled() {
	local n=0 u
	for u in $URLS; do
		n=$((n + $(curl -s --cacert "$FLEET_CA_FILE" -H "Authorization: Bearer $ADMIN_TOKEN" \
			"$u/api/v1/status" | jq '.ingest.stored + .ingest.duplicates +
				.ingest.rejected + .jobs.stale_events + .jobs.illegal_transitions')))
	done
	echo "$n"
}

# --- reads: GET a device, spread over the replicas ----------------------------
reads() {
	local urls t0 t1 c0 c1 ok i
	read -ra urls <<<"$URLS"
	for ((i = 0; i < NREAD; i++)); do
		printf 'url = "%s/api/v1/devices/b%d"\noutput = /dev/null\n' \
			"${urls[i % ${#urls[@]}]}" $((i % NBURST + 1))
	done >"$C/reads.curl"
	c0=$(cpu_ns $PIDS) t0=$(now_ns)
	curl -s --no-progress-meter --parallel --parallel-max 16 --cacert "$FLEET_CA_FILE" \
		-H "Authorization: Bearer $ADMIN_TOKEN" -w '%{http_code}\n' \
		-K "$C/reads.curl" >"$C/reads.codes" || true
	t1=$(now_ns) c1=$(cpu_ns $PIDS)
	ok=$(grep -c '^200$' "$C/reads.codes")
	[ "$ok" -eq "$NREAD" ] || echo "# $CFG: $ok of $NREAD reads answered 200"
	RESULT[$CFG.reads]=$(awk -v n="$ok" -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", n * 1e9 / d }')
	RESULT[$CFG.read_us]=$(awk -v n="$ok" -v c=$((c1 - c0)) 'BEGIN { printf "%.0f", (n ? c / 1e3 / n : 0) }')
}

# --- rollout: DEVICES simulated devices updated -----------------------------
rollout() {
	local t0 t1 c0 c1 d0 d1 db
	fleetctl -o json token create sims --enroll --group sims --uses "$NDEV" --ttl 1h 2>/dev/null |
		jq -r .token >"$C/sim.token"
	(exec fleet-sim run --count "$NDEV" --prefix s --dir "$C/sim" --server "$A_URL" \
		--ca "$FLEET_CA_FILE" --token-file "$C/sim.token" --image "$T/fw/fw-1.0.0" \
		2>"$C/sim.log") &
	SIM=$!
	track $SIM
	on() { [ "$(store "SELECT count(*) FROM devices WHERE grp = 'sims' AND firmware = '$1'")" -ge "$NDEV" ]; }
	wait_until $((NDEV / 5 + 120)) on 1.0.0 || die "$CFG: the simulated devices did not come online"
	db=$([ "$CFG" = sqlite ] || pg_pids)
	c0=$(cpu_ns $PIDS) d0=$(cpu_ns $db) t0=$(now_ns)
	fleetctl -q rollout create --bundle fleet-sample@1.1.0 --group sims --waves 100% \
		--soak 0s --health-window 0s --id bench
	done_() { fleetctl -o json rollout status bench | jq -e '.state == "completed"' >/dev/null; }
	wait_until 600 done_ || die "$CFG: the rollout did not complete"
	t1=$(now_ns) c1=$(cpu_ns $PIDS) d1=$(cpu_ns $db)
	RESULT[$CFG.rollout_s]=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", d / 1e9 }')
	RESULT[$CFG.update_ms]=$(awk -v n="$NDEV" -v c=$((c1 - c0)) 'BEGIN { printf "%.2f", c / 1e6 / n }')
	RESULT[$CFG.db_update_ms]=$(awk -v n="$NDEV" -v c=$((d1 - d0)) 'BEGIN { printf "%.2f", c / 1e6 / n }')
}

for CFG in $CONFIGS; do
	case $CFG in sqlite | pg1 | pg2) ;; *) die "unknown configuration $CFG" ;; esac
	up "$CFG"
	ingest
	reads
	rollout
	down
	echo "# $CFG: ingest ${RESULT[$CFG.ingest]}/s (fleetd ${RESULT[$CFG.ingest_us]} us an event," \
		"${RESULT[$CFG.refused]} refused: out of order across replicas);" \
		"reads ${RESULT[$CFG.reads]}/s (fleetd ${RESULT[$CFG.read_us]} us a read);" \
		"rollout of $NDEV in ${RESULT[$CFG.rollout_s]} s, fleetd ${RESULT[$CFG.update_ms]} ms an update" \
		"${STORE_URL:+(PostgreSQL ${RESULT[$CFG.db_update_ms]} ms) }load $(cut -d' ' -f1-3 /proc/loadavg)"
done

for CFG in $CONFIGS; do
	echo "metric: scale_ingest_$CFG ${RESULT[$CFG.ingest]} /s"
	echo "metric: scale_reads_$CFG ${RESULT[$CFG.reads]} /s"
	echo "metric: scale_cpu_per_update_$CFG ${RESULT[$CFG.update_ms]} ms"
done
for base in pg1 sqlite; do
	case " $CONFIGS " in *" pg2 "*) ;; *) break ;; esac
	case " $CONFIGS " in *" $base "*) ;; *) continue ;; esac
	echo "metric: scale_ingest_pg2_vs_$base $(ratio "${RESULT[pg2.ingest]}" "${RESULT[$base.ingest]}") x"
	echo "metric: scale_reads_pg2_vs_$base $(ratio "${RESULT[pg2.reads]}" "${RESULT[$base.reads]}") x"
done
