# A real nginx (Debian's nginx-light) as a bundle mirror (docs/ota.md
# "Mirrors"), for the end-to-end tests and bench/rollout.sh, sourced
# after lib.sh once fleetd's state dir exists ($FLEETD_STATE).
#
#   mirror_port         pick the port (MIRROR_PORT) before fleetd starts,
#                       so fleetd.conf can name it: MIRROR_URL, the
#                       mirror_url of the directory mirror_start serves
#   mirror_start DIR    nginx in the foreground (daemon off) on
#                       127.0.0.1:MIRROR_PORT, TLS with a server
#                       certificate the fleet's issuing CA signs (made
#                       here from $FLEETD_STATE/ca), ssl_verify_client on
#                       against the fleet CA, serving DIR read-only under
#                       /bundles/; access log "$T/nginx/access.log":
#                       CLIENT_CN STATUS "REQUEST" BYTES RANGE.  True once
#                       it answers.  Sets MIRROR_PID
#   mirror_stop         SIGTERM; true once nginx is gone
#   mirror_log          the access log

mirror_port() {
	MIRROR_PORT=$(free_port)
	MIRROR_URL=https://127.0.0.1:$MIRROR_PORT/bundles/
}

# The mirror's own certificate: P-256, CN and SAN 127.0.0.1, 1 day,
# issued by fleetd's issuing CA; the chain nginx sends ends with it.
_mirror_cert() {
	local d=$T/nginx ca=$FLEETD_STATE/ca
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/server.key" -subj /CN=127.0.0.1 -out "$d/server.csr" 2>/dev/null &&
		printf 'subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n' >"$d/ext" &&
		openssl x509 -req -in "$d/server.csr" -CA "$ca/issuing.pem" \
			-CAkey "$ca/issuing.key" -CAcreateserial -days 1 \
			-extfile "$d/ext" -out "$d/server.pem" 2>/dev/null &&
		cat "$ca/issuing.pem" >>"$d/server.pem"
}

mirror_start() {
	local d=$T/nginx user=
	mkdir -p "$d/tmp"
	[ -e "$d/server.pem" ] || _mirror_cert || return 1
	# as root, the workers would drop to nobody, who cannot read the
	# state dir (0700)
	[ "$(id -u)" = 0 ] && user='user root;'
	cat >"$d/nginx.conf" <<CONF
$user
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 1024; }
http {
	log_format mirror '\$ssl_client_s_dn \$status "\$request" \$body_bytes_sent "\$http_range"';
	access_log $d/access.log mirror;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	types { application/octet-stream fwb; }
	server {
		listen 127.0.0.1:$MIRROR_PORT ssl;
		ssl_certificate $d/server.pem;
		ssl_certificate_key $d/server.key;
		ssl_client_certificate $FLEETD_STATE/ca/trust.pem;
		ssl_verify_client on;
		ssl_verify_depth 2;
		location /bundles/ {
			alias $1/;
			limit_except GET { deny all; }
			location ~ /\. { deny all; }
		}
	}
}
CONF
	nginx -c "$d/nginx.conf" -e "$d/error.log" >>"$d/nginx.out" 2>&1 &
	MIRROR_PID=$!
	track "$MIRROR_PID"
	wait_until 15 bash -c "exec 3<>/dev/tcp/127.0.0.1/$MIRROR_PORT" 2>/dev/null
}

mirror_stop() {
	kill -TERM "$MIRROR_PID" 2>/dev/null
	wait_until 15 proc_gone "$MIRROR_PID"
}

mirror_log() { cat "$T/nginx/access.log" 2>/dev/null; }
