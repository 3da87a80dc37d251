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
