# shellcheck shell=bash
# An enrolled fleet of N fleet-sim devices for the benchmarks that need
# many devices (bench/rollout.sh, bench/diag.sh).  Sourced after N,
# WORKERS and CACHE are set; see bench/rollout.sh for the cache.
#
# Enrolment by token runs at about 40 devices a second (10,000: 4-5
# minutes), so the enrolled fleet is kept: the first run enrols N
# devices into a fresh fleetd and keeps fleetd's state dir and
# fleet-sim's device dirs, stopped, in CACHE (BENCH_FRESH=1 makes it
# again; it is made again when older than 7 days, as certificates renew
# at 2/3 of their 30 days).  Every run works on a copy of it (fleetd's
# state in a temp dir on disk, the devices on /dev/shm) with fleetd on
# fresh ports (fleet_up), so "connect" (fleet_connect) is a started
# fleet-sim process reusing its identities until all are online, and
# every device starts on 1.0.0.

verdict() { awk -v v="$1" -v t="$2" -v op="$3" \
	'BEGIN { print ((op == "le" ? v <= t : v >= t) ? "PASS" : "MISS") }'; }
die() { echo "bench: $*" >&2; exit 1; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
# devices (or events) per minute over a span of ns
per_min() { awk -v n="$1" -v d="$2" 'BEGIN { printf "%.0f", (d > 0 ? n * 60e9 / d : 0) }'; }
sim_stat() { jq -r "$1" "$2/stats.json" 2>/dev/null; }
# SIGTERM to PID and wait for it (bounded)
stop() {
	kill -TERM "$1" 2>/dev/null
	wait_until "$2" sh -c "! kill -0 $1" || die "pid $1 did not stop"
}
broker_pid() { sed -n 's/.*mosquitto (pid \([0-9]*\)) listening.*/\1/p' "$T/fleetd.log" | tail -n 1; }

# make_cache: a fresh fleetd with the bundle, N devices enrolled by
# fleet-sim into group "bench", and the observer's identity; all of it
# stopped cleanly and kept in $CACHE (a subshell: its own temp dir)
make_cache() (
	set +eu
	. tests/e2e/lib.sh
	. tests/e2e/lib-agent.sh
	set -u
	new=$CACHE.new
	rm -rf "$CACHE" "$new"
	mkdir -p "$new"
	echo "# enrolling $N devices into $CACHE (once; about 40 a second)"
	start_fleetd --with-broker --log-level warn >/dev/null
	login_admin
	ota_firmware || { cat "$T/fw.log"; exit 1; }
	fleetctl -q root push "$T/fw/root.json"
	fleetctl -q bundle upload "$T/fw/fw-1.1.0.fwb" >/dev/null
	fleetctl -o json token create bench --enroll --group bench --uses "$N" \
		--ttl 2h 2>/dev/null | jq -r .token >"$T/token"
	tok=$(fleetctl -o json token create observer --enroll --uses 2 --ttl 1h 2>/dev/null |
		jq -r .token)
	[ "$(enroll_curl bench-observer "$tok")" = 201 ] || die "observer not enrolled"
	[ "$(enroll_curl bench-probe "$tok")" = 201 ] || die "probe not enrolled"
	(exec fleet-sim run --count "$N" --dir "$new/sim" --prefix bench \
		--workers "$WORKERS" --server "$FLEET_URL" --ca "$FLEET_CA_FILE" \
		--token-file "$T/token" --image "$T/fw/fw-1.0.0" 2>"$T/sim.log") &
	sim=$!
	track "$sim"
	done_enrolling() { [ "$(sim_stat '.online' "$new/sim")" = "$N" ]; }
	wait_until $((N / 10 + 120)) done_enrolling ||
		die "enrolment: $(sim_stat '{enrolled, online, enrol_failed}' "$new/sim" | tr -d ' \n')"
	echo "# enrolled: $(sim_stat '{enrolled_now, enrol_failed}' "$new/sim" | tr -d ' \n')"
	stop "$sim" 60
	broker=$(broker_pid)
	stop "$FLEETD_PID" 60
	[ -z "$broker" ] || stop "$broker" 30
	cp -a "$T/state" "$T/dev" "$new/"
	printf '%s\n' "$ADMIN_TOKEN" >"$new/admin-token"
	mv "$new" "$CACHE"
)

# fleet_cache: make $CACHE unless a fresh enough one is there
fleet_cache() {
	if [ -n "${BENCH_FRESH:-}" ] || [ ! -s "$CACHE/admin-token" ] ||
		[ -n "$(find "$CACHE/admin-token" -mtime +7)" ]; then
		make_cache || die "could not make $CACHE"
	fi
}

# fleet_up: (after lib.sh is sourced) a copy of the enrolled fleet in
# $SIM (on /dev/shm, removed at exit), fleetd on fresh ports serving the
# copy of its state (FLEETD_CONF, when set, as its fleetd.conf), the
# devices' agent.conf pointed at them; q SQL runs
# a read-only query on fleetd's database
fleet_up() {
	SIM=$(mktemp -d /dev/shm/fleet-bench-sim.XXXXXX)
	trap fleet_exit EXIT
	echo "# work dir $T, devices $SIM, $N devices, fleet-sim --workers $WORKERS"
	cp -a "$CACHE/state" "$CACHE/dev" "$T/"
	cp -a "$CACHE/sim/." "$SIM/"
	ADMIN_TOKEN=$(cat "$CACHE/admin-token")
	[ -z "${FLEETD_CONF:-}" ] || printf '%s\n' "$FLEETD_CONF" >"$T/state/fleetd.conf"
	# info, as in production: a debug line per event would be measured too
	serve_fleetd --with-broker --log-level info >/dev/null
	login_admin
	DB=$FLEETD_STATE/fleetd.db
	find "$SIM" -mindepth 2 -maxdepth 2 -name agent.conf -print0 |
		xargs -0 sed -i -e "s|^url = https://.*|url = $FLEET_URL|" \
			-e "s|^url = mqtts://.*|url = $MQTT_URL|"
	grep -q "^url = $MQTT_URL\$" "$SIM/bench-0001/agent.conf" ||
		die "agent.conf not pointed at the new ports"
}
q() { sqlite3 -readonly "$DB" "$1"; }

# the devices' copy goes too, once lib.sh's cleanup stopped fleet-sim
fleet_exit() {
	local rc=$?
	[ -n "${SIM_PID:-}" ] && kill -TERM "$SIM_PID" 2>/dev/null &&
		wait_until 30 sh -c "! kill -0 $SIM_PID"
	rm -rf "$SIM"
	(exit "$rc")
	cleanup
}

# fleet_connect [ARGS...]: fleet-sim started on the copy (ARGS added to
# its command line) until fleetd has every device online; C0 and C1 the
# start and end (ns), SIM_PID fleet-sim
online() { q "SELECT count(*) FROM devices WHERE grp = 'bench' AND online = 1"; }
fleet_connect() {
	[ "$(q "SELECT count(*) FROM devices WHERE grp = 'bench'")" = "$N" ] ||
		die "the cache has not $N devices in group bench"
	none_online() { [ "$(online)" = 0 ]; }
	wait_until 30 none_online || die "devices online before fleet-sim started"
	C0=$(date +%s%N)
	(exec fleet-sim run --count "$N" --dir "$SIM" --prefix bench --workers "$WORKERS" "$@" \
		>"$T/sim.out" 2>"$T/sim.log") &
	SIM_PID=$!
	track "$SIM_PID"
	all_online() { [ "$(online)" = "$N" ]; }
	wait_until $((N / 20 + 120)) all_online || die "only $(online) of $N online"
	C1=$(date +%s%N)
	echo "# connect: $N devices online in fleetd $(secs "$C0" "$C1") s after fleet-sim started" \
		"($(per_min "$N" $((C1 - C0))) a minute; identities reused, no enrolment)"
	[ "$(sim_stat '.enrolled_now' "$SIM")" = 0 ] || die "fleet-sim enrolled devices"
}

# fleet_observe KIND PROBE: "bench-observer" may read fleet/+/KIND (acl,
# broker reloaded), mosquitto_sub records it in $T/sub.ts as "time topic
# payload"; true once a PROBE payload from the identity "bench-probe"
# (which fleetd must refuse or ignore) came through
fleet_observe() {
	local kind=$1 probe=$2 broker
	printf '\nuser bench-observer\ntopic read fleet/+/%s\n' "$kind" >>"$FLEETD_STATE/broker/acl"
	broker=$(broker_pid)
	[ -n "$broker" ] || die "no broker pid in fleetd's log"
	kill -HUP "$broker"
	(mq_sub bench-observer -t "fleet/+/$kind" -q 1 -F '%U %t %p' >"$T/sub.ts" 2>"$T/sub.err") &
	track $!
	# shellcheck disable=SC2317 # called through wait_until
	probed() {
		mq_pub bench-probe -t "fleet/bench-probe/$kind" -q 1 -m "$probe"
		[ -s "$T/sub.ts" ]
	}
	wait_until 20 probed || die "mosquitto_sub receives nothing (acl reload?)"
}
