# fleetd replicas for the end-to-end tests (issue 14, docs/scale.md),
# sourced after lib.sh and lib-pg.sh, with PostgreSQL started:
#
#   replicas_init PUBLIC   fleetd init on PostgreSQL in $SA ([server]
#                          public_url PUBLIC), one mosquitto outside
#                          fleetd from its broker-config on $BPORT, and
#                          $SB a copy of $SA's state dir (the same CA)
#                          with the bundle store shared, one CRL file and
#                          one support bundle dir ([ca] shared_crl,
#                          [diag] bundle_dir in $T/shared); sets SA
#                          SB BPORT ADMIN_TOKEN FLEET_CA_FILE
#   replica_serve NAME DIR PORT
#                          fleetd serve --replica NAME on DIR, HTTPS on
#                          127.0.0.1:PORT, until ready; PID_NAME its pid,
#                          $T/NAME.out and $T/NAME.log (the previous
#                          run's log kept in $T/NAME-old.log)

replicas_init() {
	SA=$T/a SB=$T/b BPORT=$(free_port)
	fleetd init --state "$SA" --store "postgresql://fleet@127.0.0.1:$PG_PORT/postgres" \
		>"$T/init.out" 2>&1 || return 1
	ADMIN_TOKEN=$(sed -n 's/^admin token: //p' "$T/init.out")
	mkdir -p "$T/shared"
	printf '[server]\npublic_url = %s\n[mqtt]\nurl = mqtts://127.0.0.1:%s\n' \
		"$1" "$BPORT" >>"$SA/fleetd.conf"
	printf '[ca]\nshared_crl = %s\n[diag]\nbundle_dir = %s\n' \
		"$T/shared/crl.pem" "$T/shared/diag" >>"$SA/fleetd.conf"
	fleetd broker-config --state "$SA" --listen "127.0.0.1:$BPORT" || return 1
	(exec mosquitto -c "$SA/broker/mosquitto.conf" >"$T/broker.log" 2>&1) &
	track $!
	wait_until 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$BPORT" || return 1
	cp -a "$SA" "$SB"
	rm -rf "$SB/bundles" "$SB/broker" "$SB/fleetd.lock"
	ln -s "$SA/bundles" "$SB/bundles"
	FLEET_CA_FILE=$SA/ca.pem
	[ -n "$ADMIN_TOKEN" ]
}

replica_serve() {
	: >"$T/$1.out"
	cat "$T/$1.log" >>"$T/$1-old.log" 2>/dev/null
	fleetd serve --state "$2" --listen "127.0.0.1:$3" --replica "$1" \
		--log-level debug >"$T/$1.out" 2>"$T/$1.log" &
	eval "PID_$1=$!"
	track $!
	wait_until 30 grep -q '^ready ' "$T/$1.out" || {
		tail -n 5 "$T/$1.log" # why, in the check's output
		return 1
	}
}
