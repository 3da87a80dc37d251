# Helpers for the fleet-agent end-to-end tests (t21xx), sourced after
# lib.sh.  Each agent lives in $T/agents/ID: state/ (identity, journals),
# agent.conf, enroll.out and agent.log.
#
#   agent_enroll ID TOKEN [ARGS]  fleet-agent enroll into $T/agents/ID
#   agent_start ID [CONF]        run it in the background (AGENT_PID[ID]),
#                                from $AGENT_CWD when set
#   agent_stop ID                SIGTERM, wait (bounded); exit status
#   dev_json ID                  fleetctl devices show ID -o json
#   dev_online ID / dev_offline ID   fleetd's view of presence
#   agent_serial ID              the serial the agent's cert.pem holds

declare -A AGENT_PID=()

agent_dir() { printf '%s/agents/%s' "$T" "$1"; }

agent_enroll() {
	local id=$1 tok=$2 d
	d=$(agent_dir "$id")
	shift 2
	mkdir -p "$d"
	fleet-agent enroll --server "$FLEET_URL" --ca "$FLEET_CA_FILE" \
		--token "$tok" --id "$id" --state "$d/state" \
		--config "$d/agent.conf" "$@" >"$d/enroll.out" 2>&1
}

# AGENT_CWD: directory to run it from (default: the current one).
agent_start() {
	local id=$1 d
	d=$(agent_dir "$id")
	(cd "${AGENT_CWD:-.}" && exec fleet-agent run --config "${2:-$d/agent.conf}" \
		--log-level debug >>"$d/agent.log" 2>&1) &
	AGENT_PID[$id]=$!
	track $!
}

# SIGTERM and wait up to 10 s; prints nothing, returns the exit status.
agent_stop() {
	local pid=${AGENT_PID[$1]} i
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100 * WAIT_SCALE; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	wait "$pid"
}

dev_json() { fleetctl -o json devices show "$1"; }
dev_online() { dev_json "$1" | jq -e '.online == true' >/dev/null; }
dev_offline() { dev_json "$1" | jq -e '.online == false' >/dev/null; }

agent_serial() {
	fleet-agent status -o json --config "$(agent_dir "$1")/agent.conf" |
		jq -r .cert_serial
}

# The serial fleetd records for ID.
dev_serial() { dev_json "$1" | jq -r .cert_serial; }

# --- updates (t3xxx): simulated devices -------------------------------------
#
#   ota_firmware             the sample firmware, signed bundles and root.json
#                            in $T/fw (test keys in $T/fw/keys)
#   ota_bundle IMG VER SV [HW] [KEY]   sign IMG as fleet-sample VER into
#                            $T/fw/fleet-sample-VER.fwb (prints the path)
#   ota_pad FW MIB OUT       FW followed by MIB MiB of random bytes (still
#                            runs: ELF ignores trailing data)
#   sim_agent ID TOKEN       enrol ID and make $T/agents/ID/sim a device with
#                            firmware 1.0.0 in slot a
#   agent_start_sim ID       run it in sim mode (AGENT_ENV: extra environment,
#                            e.g. FLEET_AGENT_FAILPOINTS=..., which only
#                            AGENT_BIN=fleet-agent-test honours)
#   sim_var ID NAME          a bootloader variable, read with fw_printenv
#   agent_json ID            fleet-agent status -o json (sim mode)
#   job_json JOB / job_state JOB / job_final JOB   fleetd's view of a job
#   update_job ID REF        start an update, print the job id
#   crash_at ID POINT        run ID until failpoint POINT stops it, then kill -9
#   env_safe ID GOOD_A GOOD_B   the slot the bootloader boots next is good,
#                            or it is on trial with a good one to fall back
#                            to (GOOD_x: the file the slot must equal to be
#                            good, or "-")

ota_firmware() {
	make -s -C "$FLEET_SRC/firmware-sample" bundles OUT="$T/fw" \
		BUILD="$FLEET_BUILD" >"$T/fw.log" 2>&1
}

# The sample firmware built, its trust root pushed to fleetd and
# fleet-sample 1.1.0 uploaded: a check each.
ota_fleet_ready() {
	check "build the sample firmware and its bundles" ota_firmware
	check "push the firmware's trust root" fleetctl root push "$T/fw/root.json"
	check "upload fleet-sample 1.1.0" fleetctl bundle upload "$T/fw/fw-1.1.0.fwb"
}

ota_bundle() {
	local img=$1 ver=$2 sv=$3 hw=${4:-sim} key=${5:-$T/fw/keys/targets}
	fleetctl -q bundle create --image "$img" --name fleet-sample --version "$ver" \
		--security-version "$sv" --hardware "$hw" --key "$key" \
		--out "$T/fw/fleet-sample-$ver.fwb" >/dev/null &&
		printf '%s\n' "$T/fw/fleet-sample-$ver.fwb"
}

ota_pad() {
	cat "$1" >"$3" && head -c $(($2 << 20)) /dev/urandom >>"$3" && chmod 755 "$3"
}

sim_agent() {
	agent_enroll "$1" "$2" &&
		fleet-agent sim-init "$(agent_dir "$1")/sim" --image "$T/fw/fw-1.0.0" >/dev/null
}

agent_start_sim() {
	local id=$1 d
	d=$(agent_dir "$id")
	# shellcheck disable=SC2086
	(cd "${AGENT_CWD:-.}" && exec env ${AGENT_ENV:-} "${AGENT_BIN:-fleet-agent}" run \
		--config "$d/agent.conf" --sim "$d/sim" --log-level debug \
		>>"$d/agent.log" 2>&1) &
	AGENT_PID[$id]=$!
	track $!
}

sim_var() { fw_printenv -n -c "$(agent_dir "$1")/sim/fw_env.config" "$2" 2>/dev/null; }

agent_json() {
	local d
	d=$(agent_dir "$1")
	fleet-agent status -o json --config "$d/agent.conf" --sim "$d/sim"
}

job_json() { fleetctl -o json jobs show "$1"; }
job_state() { job_json "$1" | jq -r .state; }
job_final() { job_json "$1" | jq -e '.final == true' >/dev/null; }

update_job() {
	fleetctl -o json update "$1" --bundle "$2" | jq -r '.[0].job'
}

proc_stopped() { [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = T ]; }

crash_at() {
	local id=$1 point=$2 pid
	AGENT_BIN=fleet-agent-test AGENT_ENV="FLEET_AGENT_FAILPOINTS=$point" \
		agent_start_sim "$id"
	pid=${AGENT_PID[$id]}
	if ! wait_until 60 proc_stopped "$pid"; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 1
	fi
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	return 0
}

# Is slot S of ID good: does it equal file F ("-": never)?
slot_good() {
	[ "$3" != - ] && cmp -s "$(agent_dir "$1")/sim/slot-$2" "$3"
}

env_safe() {
	local id=$1 slot up other
	slot=$(sim_var "$id" fleet_slot)
	up=$(sim_var "$id" upgrade_available)
	if [ "$slot" = a ]; then other=b; else other=a; fi
	good() { if [ "$1" = a ]; then slot_good "$id" a "$2"; else slot_good "$id" b "$3"; fi; }
	good "$slot" "$2" "$3" || { [ "$up" = 1 ] && good "$other" "$2" "$3"; }
}

# sim_start NAME COUNT PREFIX GROUP [fleet-sim run ARGS...]: COUNT
# fleet-sim devices PREFIX-0001... enrolling into GROUP by a token of
# their own, on the sample firmware (ota_firmware), in $T/NAME (dir, .out,
# .log); the process id in SIM_PID, tracked for cleanup.  ARGS go to
# fleet-sim run (e.g. --install-delay 4s).
sim_start() {
	local name=$1 n=$2 prefix=$3 group=$4
	shift 4
	fleetctl -o json token create "$name" --enroll --group "$group" \
		--uses "$n" --ttl 1h | jq -r .token >"$T/$name.token"
	(exec fleet-sim run --count "$n" --prefix "$prefix" --dir "$T/$name" \
		--server "$FLEET_URL" --ca "$FLEET_CA_FILE" \
		--token-file "$T/$name.token" --image "$T/fw/fw-1.0.0" \
		--log-level info "$@" >"$T/$name.out" 2>"$T/$name.log") &
	SIM_PID=$!
	track "$SIM_PID"
}

# sim_stop PID: SIGTERM, and its exit status once it stopped (1 when it
# did not within 15 s)
sim_stop() {
	kill -TERM "$1" 2>/dev/null
	wait_until 15 sh -c "! kill -0 $1 2>/dev/null" || return 1
	wait "$1"
}

# An external mosquitto on fleetd's own broker configuration
# ($FLEETD_STATE/broker/mosquitto.conf), which a test stops and starts
# itself (fleetd restarts the broker it runs): broker_start, broker_stop
# (true once nothing listens), broker_up.
broker_up() { bash -c "exec 3<>/dev/tcp/$MQTT_HOST/$MQTT_PORT" 2>/dev/null; }
broker_start() {
	mosquitto -c "$FLEETD_STATE/broker/mosquitto.conf" >>"$T/broker.log" 2>&1 &
	BROKER_PID=$!
	track "$BROKER_PID"
	wait_until 20 broker_up
}
broker_stop() {
	kill -TERM "$BROKER_PID" && wait "$BROKER_PID" 2>/dev/null
	! broker_up
}

# The newest telemetry message the agent of $A queued in its outbox (its
# log), and whether it is at least N: queued_seq, queued_past N.
queued_seq() { sed -n 's/.*telemetry: message \([0-9]*\) queued.*/\1/p' "$A/agent.log" | tail -n 1; }
queued_past() { [ "$(queued_seq)" -ge "$1" ]; }

# fleetd_external_broker: fleetd (of start_fleetd --with-broker) and its
# own mosquitto stopped, a mosquitto started on fleetd's broker
# configuration (broker_start), and fleetd served again on the same state
# and ports against it ([mqtt] url): a broker the test stops and starts
# without fleetd restarting it.
fleetd_external_broker() {
	local old
	old=$(sed -n 's/.*mosquitto (pid \([0-9]*\)) listening.*/\1/p' "$T/fleetd.log" | tail -n 1)
	kill -TERM "$FLEETD_PID"
	check_exit 0 "fleetd and its own mosquitto stop" wait_until 30 \
		sh -c "! kill -0 $FLEETD_PID 2>/dev/null && ! kill -0 $old 2>/dev/null"
	wait "$FLEETD_PID" 2>/dev/null
	printf '[mqtt]\nurl = %s\n' "$MQTT_URL" >"$FLEETD_STATE/fleetd.conf"
	check "mosquitto on fleetd's broker configuration" broker_start
	cat "$T/fleetd.log" >>"$T/fleetd-old.log"
	: >"$T/fleetd.out"
	fleetd serve --state "$FLEETD_STATE" --listen "127.0.0.1:${FLEET_URL##*:}" \
		${FLEET_STORE_URL:+--store "$FLEET_STORE_URL"} \
		--log-level debug >"$T/fleetd.out" 2>"$T/fleetd.log" &
	FLEETD_PID=$!
	track "$FLEETD_PID"
	check_exit 0 "fleetd serves on it ([mqtt] url), same state and ports" \
		wait_until 30 grep -q "^ready https=$FLEET_URL mqtt=$MQTT_URL" "$T/fleetd.out"
}

# sim_device ID: ID enrolled with a token of its own (agent_enroll) and
# made a simulated device on a trivial firmware image ($T/fw, version
# 1.0.0, healthy); A its agent dir.
sim_device() {
	local tok
	tok=$(fleetctl -o json token create "e2e-$1" --enroll --uses 1 | jq -r .token)
	check "enrol $1" agent_enroll "$1" "$tok"
	A=$(agent_dir "$1")
	printf '#!/bin/sh\ncase "$1" in --version) echo 1.0.0;; esac\nexit 0\n' >"$T/fw"
	chmod 755 "$T/fw"
	check "make it a simulated device" fleet-agent sim-init "$A/sim" --image "$T/fw"
}

# modbus_sim_start NAME [ARGS...]: tests/tools/modbus-sim (with ARGS) on
# a free 127.0.0.1 port, PORT_NAME and PID_NAME set, its log in
# $T/sim-NAME.log; true once it listens.
modbus_sim_start() {
	local name=$1 port
	shift
	port=$(free_port)
	modbus-sim --port "$port" "$@" >"$T/sim-$name.log" 2>&1 &
	track $!
	printf -v "PID_$name" %s $!
	printf -v "PORT_$name" %s "$port"
	wait_until 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
}
