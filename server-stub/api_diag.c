/* SPDX-License-Identifier: MIT */
/*
 * The diagnostics API (issue 12; docs/protocol.md "Diagnostics"): a
 * check on one device or a fan-out, relayed over MQTT while the request
 * waits without holding a thread (srv_req_defer), and support bundles.
 * Every call is audited with its device or target, check and arguments.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "diag_bundles.h"
#include "diag_svc.h"
#include "json.h"
#include "log.h"
#include "util.h"
#include "validate.h"

/* Device ids a fan-out's audit row lists (the count is always there). */
#define AUDIT_IDS_MAX 100
/* A support bundle's default time to be gathered and uploaded (s). */
#define BUNDLE_TIMEOUT_DEFAULT 60

/* A waiting request's state: its call and what it asked. */
struct diag_ctx {
	struct srv_diag_call *call;
	struct srv_diag_req q;
};

static void ctx_free(void *p)
{
	struct diag_ctx *x = p;

	srv_diag_call_free(x->call);
	srv_diag_req_release(&x->q);
	free(x);
}

static struct diag_ctx *ctx_new(struct srv_req *r)
{
	struct diag_ctx *x = fl_xcalloc(1, sizeof(*x));

	r->ctx = x;
	r->ctx_free = ctx_free;
	return x;
}

/* The call's done: the request's reply can be made. */
static void wake(struct srv_diag_call *c, void *arg)
{
	srv_req_wake(arg);
}

/* A device that can be asked: active and online; else the answer. */
static int check_device(struct srv_req *r, const char *id,
			struct srv_device_row *dev)
{
	struct fl_error err = {0};
	char since[21];

	if (!fl_valid_id(id) ||
	    srv_store_device_get(r->srv->store, id, dev, &err))
		return srv_reply_error(r, 404, "not_found", "no device '%s'",
				       id)
			   ?: FL_ENOTFOUND;
	if (!fl_streq(dev->state, "active"))
		return srv_reply_error(r, 409, "conflict", "device %s is %s",
				       id, dev->state)
			   ?: FL_ECONFLICT;
	if (dev->online)
		return 0;
	if (!dev->last_seen)
		return srv_reply_error(r, 409, "offline",
				       "%s is offline: never seen", id)
			   ?: FL_ETIMEOUT;
	fl_time_rfc3339((time_t)dev->last_seen, since);
	return srv_reply_error(r, 409, "offline", "%s is offline since %s", id,
			       since)
		   ?: FL_ETIMEOUT;
}

static int reply_unavailable(struct srv_req *r)
{
	struct fl_error err = {0};

	if (!srv_diag_available(r->srv, &err))
		return 0;
	return srv_reply_error(r, 503, "unavailable", "%s", err.msg)
		   ?: FL_EUNREACH;
}

static int reply_refused(struct srv_req *r, enum srv_diag_admit a)
{
	const struct srv_diag_config *c = &r->srv->cfg.diag;

	r->retry_after = 1;
	switch (a) {
	case SRV_DIAG_CALLER_BUSY:
		return srv_reply_error(r, 429, "too_many_requests",
				       "%s has %llu diag requests waiting "
				       "([diag] max_pending_per_caller)",
				       srv_req_actor(r),
				       (unsigned long long)c->max_per_caller);
	case SRV_DIAG_FULL:
		return srv_reply_error(r, 503, "unavailable",
				       "fleetd has %llu diag requests waiting "
				       "([diag] max_pending)",
				       (unsigned long long)c->max_pending);
	case SRV_DIAG_STOPPING:
		return srv_reply_error(r, 503, "unavailable",
				       "fleetd is stopping");
	default:
		r->retry_after = 0;
		return srv_reply_error(r, 400, "bad_request",
				       "no device, or one named twice");
	}
}

/* Begin @x's call and send it; @on_wake replies once it completes. */
static int run(struct srv_req *r, struct diag_ctx *x,
	       int (*on_wake)(struct srv_req *r))
{
	enum srv_diag_admit a;

	a = srv_diag_begin(r->srv->diag, x->call, fl_now_ms(),
			   x->q.timeout_s * 1000 + SRV_DIAG_GRACE_MS);
	if (a != SRV_DIAG_ADMITTED)
		return reply_refused(r, a);
	srv_diag_send(r->srv, x->call, &x->q);
	srv_req_defer(r, on_wake);
	return 0;
}

static int reply_device(struct srv_req *r)
{
	struct diag_ctx *x = r->ctx;
	const struct srv_diag_target *t = &x->call->t[0];
	json_t *o;

	if (t->state == SRV_DIAG_TIMED_OUT && x->call->stopped)
		return srv_reply_error(r, 503, "unavailable",
				       "fleetd stopped before %s answered",
				       t->device);
	if (t->state == SRV_DIAG_TIMED_OUT)
		return srv_reply_error(
		    r, 504, "timeout", "%s did not answer '%s' within %lld s",
		    t->device, x->q.check, (long long)x->q.timeout_s);
	o = srv_diag_target_json(x->call, t);
	json_object_set_new(o, "check", json_string(x->q.check));
	return srv_reply_json(r, 200, o);
}

/* POST /api/v1/devices/ID/diag {"check", "args", "timeout_s"} */
int api_diag_device(struct srv_req *r)
{
	json_t *body = srv_req_json(r);
	const char *id = r->params[0];
	struct srv_device_row dev = {0};
	struct fl_error err = {0};
	struct diag_ctx *x;
	int rc;

	if (!body)
		return 0;
	x = ctx_new(r);
	if (srv_diag_req_parse(body, NULL, SRV_DIAG_TIMEOUT_DEFAULT, &x->q,
			       &err))
		return srv_reply_fail(r, &err);
	srv_req_audit(r, srv_diag_req_json(&x->q, "device", json_string(id)));
	rc = check_device(r, id, &dev);
	srv_device_row_free(&dev);
	if (rc || reply_unavailable(r))
		return 0;
	x->call = srv_diag_call_new(srv_req_actor(r), x->q.check, 1, wake, r);
	fl_strlcpy(x->call->t[0].device, id, sizeof(x->call->t[0].device));
	return run(r, x, reply_device);
}

/* {"group": G} | {"label": "K" or "K=V"} | {"all": true}: the filter. */
static int parse_target(const json_t *target, struct srv_device_filter *f,
			char key[static 65], struct fl_error *err)
{
	const char *label = NULL, *eq;
	size_t n;
	int rc;

	if (!json_is_object(target) || json_object_size(target) != 1)
		return fl_fail(err, FL_EINVAL,
			       "'target' is {\"group\": G}, {\"label\": "
			       "\"K=V\"} or {\"all\": true}");
	rc = fl_json_str_opt(target, "group", FL_ID_MAX, &f->group, err);
	if (!rc)
		rc = fl_json_str_opt(target, "label", 200, &label, err);
	if (rc || f->group ||
	    (!label && json_is_true(json_object_get(target, "all"))))
		return rc;
	if (!label)
		return fl_fail(err, FL_EINVAL, "'target' names no devices");
	eq = strchr(label, '=');
	n = eq ? (size_t)(eq - label) : strlen(label);
	if (n == 0 || n > 64)
		return fl_fail(err, FL_EINVAL, "bad label '%s'", label);
	memcpy(key, label, n);
	key[n] = '\0';
	f->label_key = key;
	f->label_value = eq ? eq + 1 : NULL;
	return 0;
}

/* The audit row of a fan-out names how many devices it reached and, up
 * to AUDIT_IDS_MAX of them, which (the first by id). */
static void add_audit_devices(json_t *detail, const struct srv_device_list *l)
{
	json_t *ids = json_array();

	for (size_t i = 0; i < l->n && i < AUDIT_IDS_MAX; i++)
		json_array_append_new(ids, json_string(l->v[i].id));
	json_object_set_new(detail, "devices", json_integer((json_int_t)l->n));
	json_object_set_new(detail, "device_ids", ids);
}

/* A call over @l: every device, the offline ones not to be asked. */
static struct srv_diag_call *fanout_call(struct srv_req *r, const char *check,
					 const struct srv_device_list *l)
{
	struct srv_diag_call *c =
	    srv_diag_call_new(srv_req_actor(r), check, l->n, wake, r);

	for (size_t i = 0; i < l->n; i++) {
		fl_strlcpy(c->t[i].device, l->v[i].id, sizeof(c->t[i].device));
		if (!l->v[i].online) {
			c->t[i].state = SRV_DIAG_OFFLINE;
			c->t[i].last_seen = l->v[i].last_seen;
		}
	}
	return c;
}

static int reply_fanout(struct srv_req *r)
{
	struct diag_ctx *x = r->ctx;

	if (x->call->stopped)
		return srv_reply_error(r, 503, "unavailable",
				       "fleetd stopped before the devices "
				       "answered");
	return srv_reply_json(r, 200, srv_diag_fanout_json(x->call));
}

/* POST /api/v1/diag {"target", "check", "args", "timeout_s"} */
int api_diag_fanout(struct srv_req *r)
{
	struct srv_device_filter f = {.online = -1};
	json_t *body = srv_req_json(r), *detail;
	struct srv_device_list l = {0};
	struct fl_error err = {0};
	struct diag_ctx *x;
	char key[65];

	if (!body)
		return 0;
	x = ctx_new(r);
	if (srv_diag_req_parse(body, "target", SRV_DIAG_TIMEOUT_DEFAULT, &x->q,
			       &err) ||
	    parse_target(json_object_get(body, "target"), &f, key, &err))
		return srv_reply_fail(r, &err);
	detail = srv_diag_req_json(
	    &x->q, "target", json_incref(json_object_get(body, "target")));
	srv_req_audit(r, json_incref(detail));
	if (reply_unavailable(r) ||
	    srv_store_device_list(r->srv->store, &f, &l, &err)) {
		json_decref(detail);
		return r->status ? 0 : srv_reply_fail(r, &err);
	}
	add_audit_devices(detail, &l);
	srv_req_audit(r, detail);
	if (!l.n || l.n > SRV_DIAG_FANOUT_MAX) {
		srv_device_list_free(&l);
		return l.n ? srv_reply_error(r, 413, "too_large",
					     "more than %d devices",
					     SRV_DIAG_FANOUT_MAX)
			   : srv_reply_error(r, 404, "not_found",
					     "no active device matches");
	}
	x->call = fanout_call(r, x->q.check, &l);
	srv_device_list_free(&l);
	return run(r, x, reply_fanout);
}

/* ---- support bundles ---------------------------------------------------- */

static void bundle_done(struct srv_diag_call *c, void *arg)
{
	srv_diag_bundles_settle(arg, c, fl_wall_ms());
}

/* Begin and send the bundle check @q (args: [UPLOAD]) to @id; the call
 * belongs to the bundle entry from here on. */
static int send_bundle(struct srv_req *r, struct srv_diag_req *q,
		       const char *id)
{
	struct srv_diag_call *c;
	enum srv_diag_admit a;
	struct fl_error err = {0};
	char upload[SRV_DIAG_UPLOAD_ID_MAX];

	c = srv_diag_call_new(srv_req_actor(r), q->check, 1, bundle_done,
			      r->srv->bundles);
	fl_strlcpy(c->t[0].device, id, sizeof(c->t[0].device));
	if (srv_diag_bundles_add(r->srv->bundles, id, c, upload, &err)) {
		srv_diag_call_free(c);
		return srv_reply_error(r, 503, "unavailable", "%s", err.msg);
	}
	json_array_append_new(q->args, json_string(upload));
	srv_req_audit(r, srv_diag_req_json(q, "device", json_string(id)));
	a = srv_diag_begin(r->srv->diag, c, fl_now_ms(),
			   q->timeout_s * 1000 + SRV_DIAG_GRACE_MS);
	if (a != SRV_DIAG_ADMITTED) {
		srv_diag_bundles_remove(r->srv->bundles, upload);
		return reply_refused(r, a);
	}
	srv_diag_send(r->srv, c, q);
	fl_info("support bundle %s of %s asked by %s", upload, id,
		srv_req_actor(r));
	return srv_reply_json(r, 202,
			      json_pack("{s:s, s:s, s:I}", "device", id,
					"upload", upload, "timeout_s",
					(json_int_t)q->timeout_s));
}

/* POST /api/v1/devices/ID/diag-bundle {"timeout_s"} */
int api_diag_bundle_request(struct srv_req *r)
{
	json_t *body = srv_req_json(r);
	struct srv_device_row dev = {0};
	struct srv_diag_req q = {0};
	struct fl_error err = {0};
	int rc;

	if (!body)
		return 0;
	json_object_set_new(body, "check", json_string("bundle"));
	if (srv_diag_req_parse(body, NULL, BUNDLE_TIMEOUT_DEFAULT, &q, &err) ||
	    (json_array_size(q.args) &&
	     fl_fail(&err, FL_EINVAL, "a bundle request takes no args"))) {
		srv_diag_req_release(&q);
		return srv_reply_fail(r, &err);
	}
	rc = check_device(r, r->params[0], &dev);
	srv_device_row_free(&dev);
	if (!rc && !reply_unavailable(r))
		send_bundle(r, &q, r->params[0]);
	srv_diag_req_release(&q);
	return 0;
}

/* GET /api/v1/devices/ID/diag-bundles/UPLOAD: 200 the .tar.gz, 202 not
 * yet, 502 the device failed, 504 nothing came in time. */
int api_diag_bundle_get(struct srv_req *r)
{
	const char *id = r->params[0], *upload = r->params[1];
	enum srv_bundle_state st;
	struct fl_error err = {0};
	char *why = NULL;
	uint64_t size = 0;
	int fd = -1, rc;

	if (!r->srv->bundles)
		return srv_reply_error(r, 404, "not_found",
				       "no support bundle %s", upload);
	if (srv_diag_bundles_get(r->srv->bundles, id, upload, &st, &fd, &size,
				 &why, &err))
		return srv_reply_fail(r, &err);
	switch (st) {
	case SRV_BUNDLE_UPLOADED:
		return srv_reply_file(r, 200, fd, 0, size, NULL);
	case SRV_BUNDLE_FAILED:
		rc = srv_reply_error(r, 502, "failed", "%s: %s", id, why);
		free(why);
		return rc;
	case SRV_BUNDLE_EXPIRED:
		return srv_reply_error(r, 504, "timeout",
				       "%s sent no support bundle in time", id);
	default:
		return srv_reply_json(r, 202,
				      json_pack("{s:s, s:s, s:s}", "device", id,
						"upload", upload, "state",
						"pending"));
	}
}

static void upload_free(void *p)
{
	srv_diag_upload_free(p);
}

/* Only the device the upload is for may send it. */
static int upload_caller(struct srv_req *r, struct fl_error *err)
{
	if (!fl_streq(r->who.id, r->params[0]))
		return fl_fail(err, FL_EDENIED,
			       "device %s may not upload a bundle of %s",
			       r->who.id, r->params[0]);
	if (!r->srv->bundles)
		return fl_fail(err, FL_ENOTFOUND, "no upload %s", r->params[1]);
	return 0;
}

int api_diag_bundle_body(struct srv_req *r, const char *data, size_t len,
			 struct fl_error *err)
{
	struct srv_diag_upload *u = NULL;

	if (!r->ctx) {
		if (upload_caller(r, err) ||
		    srv_diag_upload_begin(r->srv->bundles, r->params[0],
					  r->params[1], &u, err))
			return err->code;
		r->ctx = u;
		r->ctx_free = upload_free;
	}
	return srv_diag_upload_write(r->ctx, data, len, err);
}

/* PUT /api/v1/devices/ID/diag-bundles/UPLOAD (the device, mTLS) */
int api_diag_bundle_put(struct srv_req *r)
{
	struct fl_error err = {0};
	uint64_t size = 0;

	if (upload_caller(r, &err))
		return srv_reply_fail(r, &err);
	if (!r->ctx)
		return srv_reply_error(r, 400, "bad_request", "empty upload");
	if (srv_diag_upload_finish(r->ctx, &size, fl_wall_ms(), &err))
		return srv_reply_fail(r, &err);
	fl_info("support bundle %s of %s arrived: %llu bytes", r->params[1],
		r->params[0], (unsigned long long)size);
	return srv_reply_json(r, 200,
			      json_pack("{s:s, s:I}", "upload", r->params[1],
					"size", (json_int_t)size));
}

uint64_t api_diag_bundle_max(const struct srv *srv)
{
	return srv->cfg.diag.bundle_max;
}
