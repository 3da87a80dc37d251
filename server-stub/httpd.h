/* SPDX-License-Identifier: MIT */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "srv.h"

/*
 * fleetd's HTTPS front: libmicrohttpd with TLS, one route table, bearer
 * token authentication, role checks, body caps, JSON errors
 * {"error":{"code":...,"message":...}} and an audit row for every
 * mutating request.  Handlers see a struct srv_req.
 */

enum srv_principal_kind { SRV_ANON = 0, SRV_TOKEN, SRV_DEVICE };

struct srv_principal {
	enum srv_principal_kind kind;
	char id[64];     /* token id or device id */
	char name[64];   /* token name */
	int role;        /* SRV_ROLE_DEVICE for devices */
	char serial[48]; /* device certificate serial */
};

#define SRV_MAX_PARAMS 4

struct srv_conn;

struct srv_req {
	struct srv *srv;
	struct MHD_Connection *conn;
	struct srv_conn *sock; /* deadlines of the connection (http_guard.h) */
	const struct srv_route *route;
	const char *method;
	char *path;
	char *params[SRV_MAX_PARAMS];
	struct srv_principal who;
	char *body;
	size_t body_len, body_cap;
	json_t *json;
	char remote[64];
	int status; /* status sent, 0 until replied */
	uint64_t t0; /* when the headers arrived (srv_metrics_now_ns) */
	unsigned retry_after; /* > 0: a Retry-After header, in seconds */
	bool finished; /* handler ran and the request was audited */
	bool counted;  /* in the metrics (metrics.h) */
	/* While a body is still arriving an early refusal is held back and
	 * the body drained, so the client can read the reply (closing with
	 * unread data would reset the connection). */
	bool hold;
	char *held;
	uint64_t seen;
	/* Per-request state of a handler, freed when the request ends. */
	void *ctx;
	void (*ctx_free)(void *ctx);
	/* What the audit row adds to method and path (JSON text; freed
	 * with the request); NULL: nothing. */
	char *audit_detail;
	/* The reply's Set-Cookie header (dashboard login and logout); NULL:
	 * none.  Freed with the request. */
	char *set_cookie;
	/* A reply made later (srv_req_defer). */
	int (*on_wake)(struct srv_req *r);
	/* Its Idempotency-Key claimed (idem.h); the reply a replay of a
	 * kept answer (Idempotent-Replayed: true). */
	struct srv_idem *idem;
	bool replayed;
	bool handled;	/* the handler ran */
	bool waiting;	/* deferred: the handler left it suspended */
	bool suspended; /* under the defer lock: MHD suspended, not woken */
	bool woken;	/* under the defer lock */
};

/* Route flags. */
enum {
	SRV_PUBLIC = 1 << 0, /* no authentication */
	SRV_AUDIT = 1 << 1,  /* audited also when it is a GET */
};

struct srv_route {
	const char *method;
	const char *pattern; /* "/api/v1/tokens/:id"; ':x' takes one segment */
	unsigned roles;      /* enum srv_role bits allowed */
	int (*fn)(struct srv_req *r);
	unsigned flags;
	/* Streaming body (uploads): called for each chunk instead of
	 * buffering, up to srv->max_upload bytes.  A non-zero return
	 * replies with @err and drains the rest. */
	int (*on_body)(struct srv_req *r, const char *data, size_t len,
		       struct fl_error *err);
	/* Their own body cap (uploads: NULL is srv->max_upload; JSON
	 * calls: NULL is srv->max_json_body). */
	uint64_t (*body_max)(const struct srv *srv);
};

/* Role sets. */
#define SRV_ROLES_ALL                                                      \
	(SRV_ROLE_ADMIN | SRV_ROLE_OPERATOR | SRV_ROLE_TECHNICIAN |        \
	 SRV_ROLE_VIEWER | SRV_ROLE_CI)
#define SRV_ROLES_READ                                                     \
	(SRV_ROLE_ADMIN | SRV_ROLE_OPERATOR | SRV_ROLE_TECHNICIAN |        \
	 SRV_ROLE_VIEWER)
#define SRV_ROLES_OPS (SRV_ROLE_ADMIN | SRV_ROLE_OPERATOR)

/* The table, in server-stub/routes.c; ends with a NULL method. */
extern const struct srv_route srv_routes[];

/*
 * Check a "HOST:PORT" / "[V6]:PORT" listen address: a non-empty host and
 * a decimal port 0..65535 (0 picks a free one).  FL_EUSAGE otherwise.
 */
int srv_http_check_listen(const char *listen, struct fl_error *err);

/*
 * Listen on @listen ("HOST:PORT"; port 0 picks a free one) with the
 * state dir's TLS key and certificate.  Sets srv->https_url.
 */
int srv_http_start(struct srv *srv, const char *listen, struct fl_error *err);
void srv_http_stop(struct srv *srv);

/*
 * Reply later, without holding a thread: the handler calls this last and
 * returns; the request waits (its connection suspended) until
 * srv_req_wake(@r), then @on_wake runs in an HTTP thread and replies.
 * srv_req_wake must be called exactly once per srv_req_defer, from any
 * thread, before or after it; @r must not be touched after that call.
 * fleetd wakes every waiting request before it stops HTTP.
 */
void srv_req_defer(struct srv_req *r, int (*on_wake)(struct srv_req *r));
void srv_req_wake(struct srv_req *r);

/* Reply with @body (reference stolen; NULL sends an empty body). */
int srv_reply_json(struct srv_req *r, int status, json_t *body);

/*
 * Reply with @len bytes of the open file @fd from @offset (the response
 * takes @fd and closes it); @status 200 or 206 with @content_range (e.g.
 * "bytes 0-99/1000", may be NULL).
 */
int srv_reply_file(struct srv_req *r, int status, int fd, uint64_t offset,
		   uint64_t len, const char *content_range);

/* Reply with @text (taken, freed) as Content-Type @type. */
int srv_reply_text(struct srv_req *r, int status, const char *type, char *text);

/*
 * Reply 200 with @len bytes at @data, which must outlive the reply (the
 * dashboard's compiled-in files), as @type with the ETag @etag (quoted)
 * and Cache-Control no-cache; 304 without a body when the request's
 * If-None-Match is @etag.
 */
int srv_reply_static(struct srv_req *r, const void *data, size_t len,
		     const char *type, const char *etag);

/* Reply {"error":{"code":@code,"message":...}}. */
int srv_reply_error(struct srv_req *r, int status, const char *code,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Reply with the HTTP status and code that fit @err->code. */
int srv_reply_fail(struct srv_req *r, const struct fl_error *err);

/* The parsed JSON object body, or NULL after replying 400. */
json_t *srv_req_json(struct srv_req *r);

/* What @r's audit row says besides method and path (r->audit_detail);
 * takes @detail (NULL: nothing). */
void srv_req_audit(struct srv_req *r, json_t *detail);

/* The "limit" query argument (1..@max, default @def); 0 after replying
 * 400 to a bad one. */
int srv_req_limit(struct srv_req *r, int def, int max);

/*
 * The operator token whose SHA-256 hex is @hash as a principal in *@ret;
 * FL_EDENIED when it is unknown, revoked or expired.
 */
int srv_token_principal(struct srv *srv, const char *hash,
			struct srv_principal *ret, struct fl_error *err);

/* Request header or NULL. */
const char *srv_req_header(struct srv_req *r, const char *name);

/* Whether @r's method changes state (not GET or HEAD): audited, and
 * retry-safe with an Idempotency-Key (idem.h). */
bool srv_req_changes_state(const struct srv_req *r);

/* URL query argument or NULL. */
const char *srv_req_query(struct srv_req *r, const char *key);

/* Actor string for audit rows: "token:ID" or "device:ID". */
const char *srv_req_actor(const struct srv_req *r);

#endif
