/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "ca.h"
#include "dash.h"
#include "fsutil.h"
#include "httpd.h"
#include "httpd_internal.h"
#include "http_guard.h"
#include "idem.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define MAX_PATH_LEN 1024
#define HTTP_THREADS 4u
/* Memory per connection for the request line and headers (MHD replies
 * 431 beyond it). */
#define HEADER_MEMORY (32u * 1024)
/* Bodies are drained up to this size before an early refusal is sent;
 * beyond it the reply goes out at once and the connection is closed. */
#define DRAIN_MAX (16u * 1024 * 1024)
/* TLS 1.3, and TLS 1.2 with forward-secret AEAD suites only (no CBC,
 * no SHA-1 MACs, no RSA key transport). */
#define TLS_PRIORITIES                                                     \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL"           \
	":+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD"     \
	":-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA"

#define JSON_TYPE "application/json"

/* On every reply: the dashboard's pages run only fleetd's own files
 * (no inline script or style), in no frame (docs/security.md). */
#define CSP                                                                \
	"default-src 'self'; base-uri 'none'; form-action 'self'; "        \
	"object-src 'none'; frame-ancestors 'none'"

/* Orders srv_req_defer's suspend before srv_req_wake's resume (MHD
 * must never resume a connection it has not suspended). */
static pthread_mutex_t defer_lock = PTHREAD_MUTEX_INITIALIZER;

static void add_security_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Content-Security-Policy", CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
}

static int queue_text(struct srv_req *r, int status, char *text,
		      const char *type)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;

	resp = MHD_create_response_from_buffer(strlen(text), text,
					       MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return FL_ENOMEM;
	}
	MHD_add_response_header(resp, "Content-Type", type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	add_security_headers(resp);
	if (r->set_cookie)
		MHD_add_response_header(resp, "Set-Cookie", r->set_cookie);
	if (r->replayed)
		MHD_add_response_header(resp, "Idempotent-Replayed", "true");
	if (r->retry_after) {
		char secs[16];

		snprintf(secs, sizeof(secs), "%u", r->retry_after);
		MHD_add_response_header(resp, "Retry-After", secs);
	}
	ok = MHD_queue_response(r->conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ok == MHD_YES ? 0 : FL_EIO;
}

int srv_reply_file(struct srv_req *r, int status, int fd, uint64_t offset,
		   uint64_t len, const char *content_range)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;

	if (r->status) {
		close(fd);
		return 0;
	}
	resp = MHD_create_response_from_fd_at_offset64(len, fd, offset);
	if (!resp) {
		close(fd);
		return srv_reply_error(r, 500, "internal",
				       "cannot create a file response");
	}
	MHD_add_response_header(resp, "Content-Type",
				"application/octet-stream");
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	add_security_headers(resp);
	if (content_range)
		MHD_add_response_header(resp, "Content-Range", content_range);
	ok = MHD_queue_response(r->conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	r->status = status;
	return ok == MHD_YES ? 0 : FL_EIO;
}

int srv_reply_static(struct srv_req *r, const void *data, size_t len,
		     const char *type, const char *etag)
{
	const char *inm = srv_req_header(r, "If-None-Match");
	bool same = inm && fl_streq(inm, etag);
	struct MHD_Response *resp;
	enum MHD_Result ok;

	if (r->status)
		return 0;
	resp = MHD_create_response_from_buffer(same ? 0 : len, (void *)data,
					       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return srv_reply_error(r, 500, "internal",
				       "cannot create a response");
	MHD_add_response_header(resp, "Content-Type", type);
	MHD_add_response_header(resp, "ETag", etag);
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	add_security_headers(resp);
	r->status = same ? 304 : 200;
	ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ok == MHD_YES ? 0 : FL_EIO;
}

/* Send a reply held back while the body was drained. */
static void flush_held(struct srv_req *r)
{
	char *text = r->held;

	r->held = NULL;
	r->hold = false;
	if (text)
		queue_text(r, r->status, text, JSON_TYPE);
}

int srv_reply_json(struct srv_req *r, int status, json_t *body)
{
	char *text = body ? fl_json_dumps(body) : fl_xstrdup("");

	json_decref(body);
	if (r->status) { /* one reply per request */
		free(text);
		return 0;
	}
	r->status = status;
	if (r->hold) {
		r->held = text;
		return 0;
	}
	srv_idem_keep(r, text);
	return queue_text(r, status, text, JSON_TYPE);
}

int srv_reply_text(struct srv_req *r, int status, const char *type, char *text)
{
	if (r->status) {
		free(text);
		return 0;
	}
	r->status = status;
	return queue_text(r, status, text, type);
}

int srv_reply_error(struct srv_req *r, int status, const char *code,
		    const char *fmt, ...)
{
	char msg[FL_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (status >= 500)
		fl_error("%s %s: %s", r->method, r->path, msg);
	return srv_reply_json(r, status,
			      json_pack("{s:{s:s, s:s}}", "error", "code", code,
					"message", msg));
}

/* The status and API code come from the one table (err.h). */
int srv_reply_fail(struct srv_req *r, const struct fl_error *err)
{
	const char *api = "internal";
	int status = fl_err_http(err->code, &api);

	return srv_reply_error(r, status, api, "%s", err->msg);
}

static uint64_t body_cap(const struct srv_req *r);

json_t *srv_req_json(struct srv_req *r)
{
	struct fl_error err = {0};

	if (r->json)
		return r->json;
	if (fl_json_parse(r->body ? r->body : "", r->body_len, body_cap(r),
			  &r->json, &err) ||
	    fl_json_require_object(r->json, "request body", &err)) {
		json_decref(r->json);
		r->json = NULL;
		srv_reply_fail(r, &err);
		return NULL;
	}
	return r->json;
}

int srv_req_limit(struct srv_req *r, int def, int max)
{
	const char *s = srv_req_query(r, "limit");
	struct fl_error err = {0};
	uint64_t v = (uint64_t)def;

	if (s && (fl_parse_uint(s, (uint64_t)max, &v, &err) || v == 0)) {
		fl_fail(&err, FL_EINVAL, "bad limit");
		srv_reply_fail(r, &err);
		return 0;
	}
	return (int)v;
}

const char *srv_req_header(struct srv_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *srv_req_query(struct srv_req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

void srv_req_audit(struct srv_req *r, json_t *detail)
{
	free(r->audit_detail);
	r->audit_detail = detail ? fl_json_dumps(detail) : NULL;
	json_decref(detail);
}

const char *srv_req_actor(const struct srv_req *r)
{
	static __thread char buf[80];

	switch (r->who.kind) {
	case SRV_TOKEN:
		snprintf(buf, sizeof(buf), "token:%s", r->who.id);
		return buf;
	case SRV_DEVICE:
		snprintf(buf, sizeof(buf), "device:%s", r->who.id);
		return buf;
	default:
		return "anonymous";
	}
}

/*
 * Match @path against @pattern segment by segment; ':name' segments
 * capture into @params.  Returns true on a full match.
 */
static bool match_path(const char *pattern, const char *path,
		       char *params[SRV_MAX_PARAMS])
{
	int np = 0;

	while (*pattern && *path) {
		const char *pe = strchrnul(pattern + 1, '/');
		const char *se = strchrnul(path + 1, '/');

		if (pattern[1] == ':') {
			if (se == path + 1 || np == SRV_MAX_PARAMS)
				return false;
			params[np++] = fl_xstrndup(path + 1,
						   (size_t)(se - path - 1));
		} else if (pe - pattern != se - path ||
			   memcmp(pattern, path, (size_t)(pe - pattern)) != 0) {
			return false;
		}
		pattern = pe;
		path = se;
	}
	return !*pattern && !*path;
}

static void free_params(char *params[SRV_MAX_PARAMS])
{
	for (int i = 0; i < SRV_MAX_PARAMS; i++) {
		free(params[i]);
		params[i] = NULL;
	}
}

/* Find the route; 404 for an unknown path, 405 for a wrong method. */
static int route(struct srv_req *r)
{
	bool path_known = false;

	for (const struct srv_route *rt = srv_routes; rt->method; rt++) {
		if (!match_path(rt->pattern, r->path, r->params)) {
			free_params(r->params);
			continue;
		}
		if (strcmp(rt->method, r->method) == 0) {
			r->route = rt;
			return 0;
		}
		free_params(r->params);
		path_known = true;
	}
	if (path_known)
		return srv_reply_error(r, 405, "method_not_allowed",
				       "%s is not allowed on %s", r->method,
				       r->path) ?: FL_EUSAGE;
	return srv_reply_error(r, 404, "not_found", "no such endpoint %s",
			       r->path) ?: FL_ENOTFOUND;
}

int srv_token_principal(struct srv *srv, const char *hash,
			struct srv_principal *ret, struct fl_error *err)
{
	struct srv_token t;
	int rc = srv_store_token_find(srv->store, hash, &t, err);

	if (rc && rc != FL_ENOTFOUND)
		return rc; /* the database failed, not the token */
	if (rc || strcmp(t.kind, "operator") != 0)
		return fl_fail(err, FL_EDENIED, "unknown token");
	if (t.revoked)
		return fl_fail(err, FL_EDENIED, "token %s is revoked", t.id);
	if (t.expires && t.expires <= time(NULL))
		return fl_fail(err, FL_EDENIED, "token %s has expired", t.id);
	memset(ret, 0, sizeof(*ret));
	ret->kind = SRV_TOKEN;
	ret->role = t.role;
	fl_strlcpy(ret->id, t.id, sizeof(ret->id));
	fl_strlcpy(ret->name, t.name, sizeof(ret->name));
	return 0;
}

/* The operator token whose SHA-256 hex is @hash into r->who; reply 401
 * when it is unknown, revoked or expired, 503 when the store failed. */
static int token_by_hash(struct srv_req *r, const char *hash)
{
	struct fl_error err = {0};
	int rc = srv_token_principal(r->srv, hash, &r->who, &err);

	if (rc == FL_EDENIED)
		return srv_reply_error(r, 401, "unauthorized", "%s", err.msg)
			   ?: FL_EDENIED;
	if (rc)
		return srv_reply_error(r, 503, "unavailable", "%s", err.msg)
			   ?: rc;
	return 0;
}

/* Resolve the bearer token into r->who; reply 401 on failure. */
static int authenticate(struct srv_req *r)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						    "Authorization");
	char hash[65];

	if (!h || strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) > 256)
		return srv_reply_error(r, 401, "unauthorized",
				       "missing bearer token") ?: FL_EDENIED;
	fl_sha256_hex(h + 7, strlen(h + 7), hash);
	return token_by_hash(r, hash);
}

/*
 * A dashboard session (dash.h) stands for the token that logged in, with
 * a viewer's rights whatever the token's role, and only to read: with a
 * cookie and no bearer token, anything but GET is refused, so no other
 * site can make a browser change state (CSRF).  The token is checked
 * again on every request: revoking it ends its sessions.
 */
static int authenticate_session(struct srv_req *r, const char *id)
{
	char hash[65];

	if (strcmp(r->method, "GET") != 0)
		return srv_reply_error(r, 403, "forbidden",
				       "a dashboard session may only read; "
				       "use a bearer token") ?: FL_EDENIED;
	if (!r->srv->dash ||
	    !srv_dash_lookup(r->srv->dash, id, time(NULL), hash))
		return srv_reply_error(r, 401, "unauthorized",
				       "no such session (expired or logged "
				       "out)") ?: FL_EDENIED;
	if (token_by_hash(r, hash))
		return FL_EDENIED;
	if (!(r->who.role & SRV_ROLES_READ))
		return srv_reply_error(r, 403, "forbidden",
				       "role %s may not use the dashboard",
				       srv_role_name(r->who.role)) ?: FL_EDENIED;
	r->who.role = SRV_ROLE_VIEWER;
	return 0;
}

/* The peer's leaf certificate in DER, or NULL without one. */
static const gnutls_datum_t *peer_cert(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	unsigned n = 0;
	const gnutls_datum_t *certs;

	if (!ci || !ci->tls_session)
		return NULL;
	certs = gnutls_certificate_get_peers(ci->tls_session, &n);
	return n ? certs : NULL;
}

/*
 * The certificate's holder by its digest, when the store recorded it at
 * issue: these exact bytes were signed by fleetd's CA (the handshake
 * proved the key), so only the store's word on revocation, validity and
 * the device is needed, not a verification (OpenSSL's costs more than
 * the rest of a bundle download).  FL_ENOTFOUND: not recorded.
 */
static int known_cert(struct srv_req *r, const gnutls_datum_t *der,
		      struct fl_error *err)
{
	struct srv_cert_holder p;
	char sha[65];
	int rc;

	fl_sha256_hex(der->data, der->size, sha);
	rc = srv_store_device_by_cert(r->srv->store, sha, &p, err);
	if (rc)
		return rc;
	r->who.kind = SRV_DEVICE;
	r->who.role = SRV_ROLE_DEVICE;
	fl_strlcpy(r->who.id, p.device, sizeof(r->who.id));
	fl_strlcpy(r->who.serial, p.serial, sizeof(r->who.serial));
	return 0;
}

/*
 * mTLS: the client certificate must verify against the issuing CA and
 * the current CRL (on every request), and be one fleetd issued to that
 * device and has not revoked, and the device must be active.  The
 * device id is its CN.  A certificate the store knows by its digest
 * stands for that (known_cert).
 */
static int authenticate_device(struct srv_req *r)
{
	const gnutls_datum_t *der = peer_cert(r->conn);
	struct fl_pki_cert_info info;
	struct fl_error err = {0};
	int rc;

	/* Again when the handler runs: the chain cannot have changed, the
	 * store says whether the certificate or the device lost its rights
	 * (revocations reach the CRL from the store, in one transaction). */
	if (r->who.kind == SRV_DEVICE)
		return srv_store_device_principal(r->srv->store, r->who.serial,
						  r->who.id, &err)
			       ? srv_reply_error(r, 401, "unauthorized", "%s",
						 err.msg) ?: FL_EDENIED
			       : 0;
	if (!der)
		return srv_reply_error(r, 401, "unauthorized",
				       "missing bearer token or client "
				       "certificate") ?: FL_EDENIED;
	rc = known_cert(r, der, &err);
	if (!rc)
		return 0;
	if (rc != FL_ENOTFOUND)
		return srv_reply_error(r, 401, "unauthorized", "%s", err.msg)
			   ?: FL_EDENIED;
	fl_error_clear(&err);
	if (fl_pki_verify_der(r->srv->ca->verifier, der->data, der->size,
			      FL_PKI_PURPOSE_CLIENT, &info, NULL, &err))
		return srv_reply_error(r, 401, "unauthorized",
				       "client certificate refused: %s",
				       err.msg) ?: FL_EDENIED;
	if (srv_store_device_principal(r->srv->store, info.serial, info.cn,
				       &err))
		return srv_reply_error(r, 401, "unauthorized", "%s",
				       err.msg) ?: FL_EDENIED;
	r->who.kind = SRV_DEVICE;
	r->who.role = SRV_ROLE_DEVICE;
	fl_strlcpy(r->who.id, info.cn, sizeof(r->who.id));
	fl_strlcpy(r->who.serial, info.serial, sizeof(r->who.serial));
	return 0;
}

/*
 * Authenticate the caller and check its role against the route.  Called
 * when the headers arrive (fast refusal) and again right before the
 * handler runs, which may be much later: a token revoked or expired, or a
 * device decommissioned, while the body was arriving is refused then.
 */
static int authorize(struct srv_req *r)
{
	bool bearer = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						  "Authorization") != NULL;
	char sid[SRV_DASH_ID_LEN + 1];

	if (r->route->flags & SRV_PUBLIC)
		return 0;
	if (!bearer && srv_dash_cookie_id(srv_req_header(r, "Cookie"), sid)) {
		if (authenticate_session(r, sid))
			return FL_EDENIED;
	} else if (!bearer && (r->route->roles & SRV_ROLE_DEVICE)) {
		if (authenticate_device(r))
			return FL_EDENIED;
	} else if (authenticate(r)) {
		return FL_EDENIED;
	}
	if (!(r->route->roles & r->who.role))
		return srv_reply_error(r, 403, "forbidden",
				       "role %s may not %s %s",
				       srv_role_name(r->who.role), r->method,
				       r->path) ?: FL_EDENIED;
	return 0;
}

static void remote_addr(struct MHD_Connection *c, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	buf[0] = '\0';
	if (sa)
		getnameinfo(sa,
			    sa->sa_family == AF_INET6
				    ? sizeof(struct sockaddr_in6)
				    : sizeof(struct sockaddr_in),
			    buf, (socklen_t)len, NULL, 0, NI_NUMERICHOST);
}

/* A route's body_max: its uploads' cap, or its JSON bodies' cap. */
static uint64_t body_cap(const struct srv_req *r)
{
	if (!r->route || (!r->route->on_body && !r->route->body_max))
		return r->srv->max_json_body;
	return r->route->body_max ? r->route->body_max(r->srv)
				  : r->srv->max_upload;
}

/* First call for a request: route, authenticate, check declared size. */
static void begin(struct srv_req *r)
{
	const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						     "Content-Length");
	uint64_t len = 0;

	if (strlen(r->path) > MAX_PATH_LEN) {
		srv_reply_error(r, 414, "too_large", "URL too long");
		return;
	}
	if (route(r) || authorize(r))
		return;
	if (cl && (fl_parse_uint(cl, UINT64_MAX, &len, NULL) ||
		   len > body_cap(r)))
		srv_reply_error(r, 413, "too_large",
				"request body over %llu bytes",
				(unsigned long long)body_cap(r));
}

/* Does the request announce a body small enough to drain? */
static bool body_to_drain(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     "Content-Length");
	const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     "Transfer-Encoding");
	uint64_t len = 0;

	if (te && strcasestr(te, "chunked"))
		return true;
	return cl && !fl_parse_uint(cl, DRAIN_MAX, &len, NULL) && len > 0;
}

static void add_body(struct srv_req *r, const char *data, size_t n)
{
	struct fl_error err = {0};

	r->seen += n;
	if (!r->status && r->route->on_body) {
		if (r->seen > body_cap(r))
			fl_fail(&err, FL_ELIMIT, "upload over %llu bytes",
				(unsigned long long)body_cap(r));
		else
			r->route->on_body(r, data, n, &err);
		if (err.code)
			srv_reply_fail(r, &err);
		return;
	}
	if (r->seen > DRAIN_MAX) {
		srv_reply_error(r, 413, "too_large",
				"request body over %zu bytes",
				r->srv->max_json_body);
		flush_held(r); /* give up draining: reply and close */
		return;
	}
	if (r->status)
		return; /* refused already: drain */
	if (r->body_len + n > body_cap(r)) {
		srv_reply_error(r, 413, "too_large",
				"request body over %llu bytes",
				(unsigned long long)body_cap(r));
		return;
	}
	if (r->body_len + n + 1 > r->body_cap) {
		r->body_cap = (r->body_len + n + 1) * 2;
		r->body = fl_xrealloc(r->body, r->body_cap);
	}
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
}

bool srv_req_changes_state(const struct srv_req *r)
{
	return strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0;
}

/* Does @r get an audit row? */
static bool audited(const struct srv_req *r)
{
	return srv_req_changes_state(r) ||
	       (r->route && (r->route->flags & SRV_AUDIT));
}

/*
 * Audit a mutating request.  Refused anonymous requests cost an attacker
 * nothing, so their rows are rate-limited per source address
 * (http_guard.h); the first one over the limit leaves a marker row.
 */
static void audit(struct srv_req *r)
{
	struct fl_error err = {0};
	bool marker = false;
	int rc;

	if (r->who.kind == SRV_ANON && r->status >= 400 && r->srv->http &&
	    !srv_guard_audit_allowed(r->srv->http, r->remote, &marker)) {
		if (!marker)
			return;
		rc = srv_store_audit(r->srv->store, "anonymous", r->method,
				     "(audit rate limit reached: further "
				     "refused requests from this address are "
				     "counted, not recorded)",
				     429, r->remote, NULL, &err);
	} else {
		rc = srv_store_audit(r->srv->store, srv_req_actor(r), r->method,
				     r->path, r->status, r->remote,
				     r->audit_detail, &err);
	}
	if (rc)
		fl_error("audit: %s", err.msg);
}

void srv_req_defer(struct srv_req *r, int (*on_wake)(struct srv_req *r))
{
	pthread_mutex_lock(&defer_lock);
	r->on_wake = on_wake;
	if (!r->woken) {
		r->waiting = true;
		r->suspended = true;
		MHD_suspend_connection(r->conn);
	}
	pthread_mutex_unlock(&defer_lock);
}

void srv_req_wake(struct srv_req *r)
{
	pthread_mutex_lock(&defer_lock);
	r->woken = true;
	if (r->suspended) {
		r->suspended = false;
		MHD_resume_connection(r->conn); /* @r may go any time now */
	}
	pthread_mutex_unlock(&defer_lock);
}

/* Count @r in the metrics once, when its reply is made (before it is
 * sent, so a client that got it finds it counted). */
static void count(struct srv_req *r)
{
	if (r->counted || !r->status)
		return;
	r->counted = true;
	srv_metrics_http(r->route, r->status, srv_metrics_now_ns() - r->t0);
}

/*
 * Last call: authorise again (the principal may have lost its rights
 * while the body arrived), run the handler, audit requests that change
 * state.  A handler that deferred its reply leaves the connection
 * suspended; MHD calls again once it is woken, and the reply is made.
 */
static void finish(struct srv_req *r)
{
	if (r->finished)
		return;
	if (!r->handled) {
		r->handled = true;
		if (!r->status && !authorize(r) && !srv_idem_begin(r))
			r->route->fn(r);
		if (r->waiting)
			return;
	}
	if (r->on_wake)
		r->on_wake(r);
	r->finished = true;
	if (!r->status)
		srv_reply_error(r, 500, "internal", "handler sent no response");
	srv_idem_end(r);
	count(r);
	if (audited(r))
		audit(r);
	fl_debug("%s %s %s -> %d", r->remote, r->method, r->path, r->status);
}

/* The connection's deadline state (set by on_connection). */
static struct srv_conn *conn_state(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* Headers in: the whole request must follow within its deadline. */
static bool start_deadline(struct srv_req *r)
{
	const struct srv_http_limits *l = &r->srv->cfg.http;
	bool upload = r->route && r->route->on_body && !r->status;

	if (!r->sock)
		return true;
	return srv_guard_headers_done(r->srv->http, r->sock,
				      upload ? l->upload_timeout
					     : l->request_timeout);
}

enum MHD_Result srv_http_on_request(void *cls, struct MHD_Connection *c,
				    const char *url, const char *method,
				    const char *version, const char *data,
				    size_t *data_size, void **con_cls)
{
	struct srv_req *r = *con_cls;

	if (!r) {
		r = fl_xcalloc(1, sizeof(*r));
		r->srv = cls;
		r->conn = c;
		r->t0 = srv_metrics_now_ns();
		r->sock = conn_state(c);
		r->method = method;
		r->path = fl_xstrdup(url);
		remote_addr(c, r->remote, sizeof(r->remote));
		r->hold = body_to_drain(c);
		*con_cls = r;
		begin(r);
		if (r->status && audited(r))
			finish(r); /* audit the refusal */
		count(r);	   /* a refusal: MHD may not call again */
		return start_deadline(r) ? MHD_YES : MHD_NO;
	}
	if (r->sock && !srv_guard_in_time(r->srv->http, r->sock)) {
		fl_debug("%s %s %s: request deadline passed", r->remote,
			 r->method, r->path);
		return MHD_NO; /* close */
	}
	if (*data_size) {
		add_body(r, data, *data_size);
		*data_size = 0;
		return MHD_YES;
	}
	if (r->sock)
		srv_guard_request_done(r->srv->http, r->sock);
	flush_held(r); /* from here on replies go out directly */
	finish(r);
	return MHD_YES;
}

/* Track each connection for its deadlines. */
static void on_connection(void *cls, struct MHD_Connection *c,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct srv *srv = cls;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		srv_guard_conn_free(srv->http, *socket_context);
		*socket_context = NULL;
		return;
	}
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci)
		*socket_context = srv_guard_conn_new(srv->http, ci->connect_fd);
}

void srv_http_on_completed(void *cls, struct MHD_Connection *c,
			   void **con_cls,
			   enum MHD_RequestTerminationCode toe)
{
	struct srv_req *r = *con_cls;

	if (!r)
		return;
	if (r->sock && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		srv_guard_reply_done(r->srv->http, r->sock);
	srv_idem_end(r); /* a deferred request whose client left */
	free_params(r->params);
	free(r->path);
	free(r->body);
	free(r->held);
	free(r->audit_detail);
	free(r->set_cookie);
	json_decref(r->json);
	if (r->ctx_free)
		r->ctx_free(r->ctx);
	free(r);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	fl_debug("microhttpd: %s", msg);
}

int srv_http_check_listen(const char *listen, struct fl_error *err)
{
	const char *colon = strrchr(listen, ':');
	uint64_t port;

	if (!colon || colon == listen || !colon[1] ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    strlen(colon + 1) > 5 ||
	    fl_parse_uint(colon + 1, 65535, &port, NULL))
		return fl_fail(err, FL_EUSAGE,
			       "listen address '%s' must be HOST:PORT with a "
			       "port 0..65535",
			       listen);
	return 0;
}

/* Split "HOST:PORT" / "[V6]:PORT" and resolve it numerically. */
static int resolve(const char *listen, struct addrinfo **ret, char **ret_host,
		   struct fl_error *err)
{
	const char *colon = strrchr(listen, ':');
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	char *host;
	int gai;

	if (srv_http_check_listen(listen, err))
		return FL_EUSAGE;
	host = fl_xstrndup(listen, (size_t)(colon - listen));
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	gai = getaddrinfo(host, colon + 1, &hints, ret);
	if (gai) {
		free(host);
		return fl_fail(err, FL_EUSAGE, "cannot resolve '%s': %s",
			       listen, gai_strerror(gai));
	}
	*ret_host = host;
	return 0;
}

static int load_tls(struct srv *srv, char **key, char **cert, char **trust,
		    struct fl_error *err)
{
	char *kp = srv_path(srv, SRV_TLS_KEY), *cp = srv_path(srv, SRV_TLS_CERT);
	char *tp = srv_path(srv, SRV_CA_TRUST);
	int rc = fl_read_file(kp, 64 * 1024, key, NULL, err);

	if (!rc)
		rc = fl_read_file(cp, 256 * 1024, cert, NULL, err);
	if (!rc)
		rc = fl_read_file(tp, 256 * 1024, trust, NULL, err);
	if (rc && *key) {
		fl_free_secret(*key);
		*key = NULL;
	}
	free(kp);
	free(cp);
	free(tp);
	return rc;
}

/* Start MHD with TLS and the [http] limits. */
static struct MHD_Daemon *start_mhd(struct srv *srv, const struct sockaddr *sa,
				    const char *key, const char *cert,
				    const char *trust)
{
	const struct srv_http_limits *l = &srv->cfg.http;

	return MHD_start_daemon(
		MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
			MHD_USE_ERROR_LOG | MHD_USE_POLL |
			MHD_ALLOW_SUSPEND_RESUME,
		0, NULL, NULL, srv_http_on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
		on_mhd_log, srv, MHD_OPTION_SOCK_ADDR, sa,
		MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_CERT, cert,
		MHD_OPTION_HTTPS_MEM_TRUST, trust, MHD_OPTION_HTTPS_PRIORITIES,
		TLS_PRIORITIES, MHD_OPTION_THREAD_POOL_SIZE, HTTP_THREADS,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)l->max_connections,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned)l->max_connections_per_ip,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_MEMORY,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)l->idle_timeout,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
		MHD_OPTION_NOTIFY_COMPLETED, srv_http_on_completed, srv,
		MHD_OPTION_END);
}

int srv_http_start(struct srv *srv, const char *listen, struct fl_error *err)
{
	char *key = NULL, *cert = NULL, *trust = NULL, *host = NULL;
	const union MHD_DaemonInfo *info;
	struct addrinfo *ai = NULL;
	int rc;

	rc = resolve(listen, &ai, &host, err);
	if (!rc)
		rc = load_tls(srv, &key, &cert, &trust, err);
	if (!rc)
		srv->dash = srv_dash_new(SRV_DASH_MAX_SESSIONS, SRV_DASH_TTL);
	if (!rc && srv->replica) /* a cookie works on every replica */
		srv_dash_use_store(srv->dash, srv->store);
	if (!rc)
		rc = srv_guard_start(srv, err);
	if (rc)
		goto out;
	srv->mhd = start_mhd(srv, ai->ai_addr, key, cert, trust);
	if (!srv->mhd) {
		rc = fl_fail(err, FL_EIO,
			     "cannot listen on %s (address in use, or bad TLS "
			     "key/certificate)",
			     listen);
		goto out;
	}
	info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
	srv->https_url = fl_xasprintf(
		strchr(host, ':') ? "https://[%s]:%u" : "https://%s:%u", host,
		info ? info->port : 0);
out:
	if (ai)
		freeaddrinfo(ai);
	fl_free_secret(key);
	free(cert);
	free(trust);
	free(host);
	return rc;
}

void srv_http_stop(struct srv *srv)
{
	if (srv->mhd)
		MHD_stop_daemon(srv->mhd);
	srv->mhd = NULL;
	srv_guard_stop(srv);
	srv_dash_free(srv->dash);
	srv->dash = NULL;
}
