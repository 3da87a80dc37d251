/* SPDX-License-Identifier: MIT */
#ifndef SRV_DIAG_SVC_H
#define SRV_DIAG_SVC_H

/*
 * fleetd's diagnostics service (issue 12): the relay table (diag.h) and
 * the support bundles (diag_bundles.h) wired to fleetd: started and
 * stopped with `fleetd serve`, requests checked and sent over MQTT, and
 * the API's JSON for what came back (docs/protocol.md "Diagnostics").
 */
#include <stdint.h>

#include <jansson.h>

#include "diag_relay.h"
#include "err.h"
#include "srv.h"

#define SRV_DIAG_ARGS_MAX 16
#define SRV_DIAG_ARG_MAX 256	    /* bytes of one argument */
#define SRV_DIAG_ARGS_BYTES 2048    /* of all of them */
#define SRV_DIAG_TIMEOUT_DEFAULT 10 /* seconds */
#define SRV_DIAG_TIMEOUT_MAX 300
/* fleetd waits this much longer than the device's timeout_s, so that a
 * device's own "timeout" answer reaches it first */
#define SRV_DIAG_GRACE_MS 1000
/* devices one fan-out may name */
#define SRV_DIAG_FANOUT_MAX 100000

/* A diag request as the API takes it and the device gets it. */
struct srv_diag_req {
	char check[SRV_DIAG_CHECK_MAX + 1];
	json_t *args; /* array of strings; owned */
	int64_t timeout_s;
};

/*
 * Check the request members of @body ("check", optional "args" and
 * "timeout_s", @def_timeout when absent); any other member but @extra
 * (NULL: none) is refused.  FL_EINVAL or FL_ELIMIT with the reason.
 */
int srv_diag_req_parse(const json_t *body, const char *extra,
		       int64_t def_timeout, struct srv_diag_req *ret,
		       struct fl_error *err);
void srv_diag_req_release(struct srv_diag_req *q);

/* {"check", "args", "timeout_s"}: what the device gets, and the audit
 * row's detail (with @key added: "device" or "target", its value @what,
 * a reference stolen; @key NULL: none). */
json_t *srv_diag_req_json(const struct srv_diag_req *q, const char *key,
			  json_t *what);

/* srv->diag and srv->bundles, before the MQTT client starts. */
int srv_diag_svc_start(struct srv *srv, struct fl_error *err);
/* Complete every waiting call (their requests are woken): before HTTP
 * stops. */
void srv_diag_svc_stop(struct srv *srv);
/* Free both: after the MQTT client stopped. */
void srv_diag_svc_free(struct srv *srv);

/*
 * Can fleetd ask devices now?  FL_EUNREACH with the reason when it has
 * no relay, no MQTT client, or no broker connection.
 */
int srv_diag_available(struct srv *srv, struct fl_error *err);

/*
 * Send @q to every target of @c that srv_diag_begin marked "ask"; one
 * that cannot be sent fails (srv_diag_fail).
 */
void srv_diag_send(struct srv *srv, struct srv_diag_call *c,
		   const struct srv_diag_req *q);

/*
 * One target's outcome: {"device", "state", and what it answered
 * ("ok", "elapsed_ms", "result" or "error" and "code"), "rtt_ms", or
 * "last_seen" when offline}.
 */
json_t *srv_diag_target_json(const struct srv_diag_call *c,
			     const struct srv_diag_target *t);

/* A fan-out's answer: {"check", "summary": {"total", "answered",
 * "failed", "offline", "timed_out"}, "devices": [TARGET...]}. */
json_t *srv_diag_fanout_json(const struct srv_diag_call *c);

#endif
