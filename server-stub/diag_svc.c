/* SPDX-License-Identifier: MIT */
/* fleetd's diagnostics service: requests, the relay's lifecycle, the
 * sending, the answers' JSON (diag_svc.h). */
#include <stdlib.h>
#include <string.h>

#include "api_json.h"
#include "diag_bundles.h"
#include "diag_svc.h"
#include "json.h"
#include "log.h"
#include "mqtt.h"
#include "util.h"

static bool valid_check(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= SRV_DIAG_CHECK_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* "args": at most SRV_DIAG_ARGS_MAX strings without NUL, each and all
 * within their byte caps; absent or null is none. */
static int parse_args(const json_t *body, json_t **ret, struct fl_error *err)
{
	json_t *a = json_object_get(body, "args"), *v;
	size_t i, total = 0;

	if (!a || json_is_null(a)) {
		*ret = json_array();
		return 0;
	}
	if (!json_is_array(a))
		return fl_fail(err, FL_EINVAL, "'args' must be an array");
	if (json_array_size(a) > SRV_DIAG_ARGS_MAX)
		return fl_fail(err, FL_ELIMIT, "more than %d args",
			       SRV_DIAG_ARGS_MAX);
	json_array_foreach(a, i, v)
	{
		size_t n = json_string_length(v);

		if (!json_is_string(v) || strlen(json_string_value(v)) != n)
			return fl_fail(err, FL_EINVAL,
				       "args must be strings without NUL");
		if (n > SRV_DIAG_ARG_MAX)
			return fl_fail(err, FL_ELIMIT,
				       "arg %zu is over %d bytes", i + 1,
				       SRV_DIAG_ARG_MAX);
		total += n;
	}
	if (total > SRV_DIAG_ARGS_BYTES)
		return fl_fail(err, FL_ELIMIT, "args over %d bytes in all",
			       SRV_DIAG_ARGS_BYTES);
	*ret = json_deep_copy(a);
	return 0;
}

static int check_keys(const json_t *body, const char *extra,
		      struct fl_error *err)
{
	static const char *const known[] = {"check", "args", "timeout_s"};
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)body, key, v)
	{
		bool ok = extra && fl_streq(key, extra);

		for (size_t i = 0; !ok && i < FL_ARRAY_SIZE(known); i++)
			ok = fl_streq(key, known[i]);
		if (!ok)
			return fl_fail(err, FL_EINVAL, "unknown member '%.64s'",
				       key);
	}
	return 0;
}

int srv_diag_req_parse(const json_t *body, const char *extra,
		       int64_t def_timeout, struct srv_diag_req *ret,
		       struct fl_error *err)
{
	struct srv_diag_req q = {.timeout_s = def_timeout};
	const char *check;
	int rc;

	rc = check_keys(body, extra, err);
	if (!rc)
		rc =
		    fl_json_str(body, "check", SRV_DIAG_CHECK_MAX, &check, err);
	if (!rc && !valid_check(check))
		rc = fl_fail(err, FL_EINVAL,
			     "check '%s' is not 1..%d of [a-z0-9_-]", check,
			     SRV_DIAG_CHECK_MAX);
	if (!rc && json_object_get(body, "timeout_s"))
		rc = fl_json_int(body, "timeout_s", 1, SRV_DIAG_TIMEOUT_MAX,
				 &q.timeout_s, err);
	if (!rc)
		rc = parse_args(body, &q.args, err);
	if (rc)
		return rc == FL_ELIMIT ? rc : FL_EINVAL;
	fl_strlcpy(q.check, check, sizeof(q.check));
	*ret = q;
	return 0;
}

void srv_diag_req_release(struct srv_diag_req *q)
{
	json_decref(q->args);
	q->args = NULL;
}

json_t *srv_diag_req_json(const struct srv_diag_req *q, const char *key,
			  json_t *what)
{
	json_t *o = json_pack("{s:s, s:O, s:I}", "check", q->check, "args",
			      q->args, "timeout_s", (json_int_t)q->timeout_s);

	if (key)
		json_object_set_new(o, key, what);
	return o;
}

int srv_diag_svc_start(struct srv *srv, struct fl_error *err)
{
	struct srv_diag_limits l = {
	    .max_calls = srv->cfg.diag.max_pending,
	    .max_per_caller = srv->cfg.diag.max_per_caller,
	    .max_bytes = SRV_DIAG_CALL_BYTES,
	};
	char *dir = srv->cfg.diag.bundle_dir
			? fl_xstrdup(srv->cfg.diag.bundle_dir)
			: srv_path(srv, "diag");
	int rc;

	rc = srv_diag_bundles_new(dir, srv->cfg.diag.bundle_max, srv->store,
				  &srv->bundles, err);
	free(dir);
	if (rc)
		return rc;
	srv->diag = srv_diag_new(&l);
	return srv_diag_start_timer(srv->diag, err);
}

void srv_diag_svc_stop(struct srv *srv)
{
	if (srv->diag)
		srv_diag_stop(srv->diag);
}

void srv_diag_svc_free(struct srv *srv)
{
	/* the bundles' calls first: freeing a call looks at its table */
	srv_diag_bundles_free(srv->bundles);
	srv->bundles = NULL;
	srv_diag_free(srv->diag);
	srv->diag = NULL;
}

int srv_diag_available(struct srv *srv, struct fl_error *err)
{
	struct srv_mqtt_stats st;

	if (!srv->diag || !srv->mqtt)
		return fl_fail(err, FL_EUNREACH,
			       "fleetd has no MQTT broker (serve with "
			       "--with-broker or [mqtt] url)");
	srv_mqtt_stats(srv->mqtt, &st);
	if (!st.connected)
		return fl_fail(err, FL_EUNREACH,
			       "fleetd is not connected to its broker");
	return 0;
}

void srv_diag_send(struct srv *srv, struct srv_diag_call *c,
		   const struct srv_diag_req *q)
{
	json_t *req = srv_diag_req_json(q, NULL, NULL);
	char *text = fl_json_dumps(req);
	size_t failed = 0;

	for (size_t i = 0; i < c->n; i++) {
		struct fl_error err = {0};

		if (!c->t[i].ask ||
		    !srv_mqtt_diag_send(srv->mqtt, c->t[i].device, c->corr,
					sizeof(c->corr), text,
					(uint32_t)q->timeout_s, &err))
			continue;
		if (!failed++)
			fl_warn("diag %s to %s: %s", q->check, c->t[i].device,
				err.msg);
		srv_diag_fail(srv->diag, c, i, err.msg, fl_now_ms());
	}
	if (failed > 1)
		fl_warn("diag %s: %zu requests could not be sent", q->check,
			failed);
	free(text);
	json_decref(req);
}

/* Copy what a device's reply says, member by member and typed. */
static void add_reply(json_t *o, const json_t *reply)
{
	json_t *v;

	json_object_set_new(
	    o, "ok", json_boolean(json_is_true(json_object_get(reply, "ok"))));
	if (json_is_integer(v = json_object_get(reply, "elapsed_ms")))
		json_object_set(o, "elapsed_ms", v);
	if ((v = json_object_get(reply, "result")))
		json_object_set(o, "result", v);
	if (json_is_string(v = json_object_get(reply, "error")))
		json_object_set(o, "error", v);
	if (json_is_string(v = json_object_get(reply, "code")))
		json_object_set(o, "code", v);
}

json_t *srv_diag_target_json(const struct srv_diag_call *c,
			     const struct srv_diag_target *t)
{
	json_t *o = json_pack("{s:s, s:s}", "device", t->device, "state",
			      srv_diag_state_name(t->state));

	switch (t->state) {
	case SRV_DIAG_OFFLINE:
		json_object_set_new(o, "last_seen",
				    api_time_json(t->last_seen));
		return o;
	case SRV_DIAG_TIMED_OUT:
		json_object_set_new(
		    o, "error",
		    json_sprintf("no answer within %lld s",
				 (long long)(c->deadline_ms - c->start_ms) /
				     1000));
		return o;
	default:
		break;
	}
	if (t->reply)
		add_reply(o, t->reply);
	else
		json_object_set_new(
		    o, "ok", json_boolean(t->state == SRV_DIAG_ANSWERED));
	if (t->error) { /* fleetd's own finding: garbage, unsent, dropped */
		json_object_set_new(o, "error", json_string(t->error));
		json_object_set_new(o, "code",
				    json_string(t->state == SRV_DIAG_ANSWERED
						    ? "too-large"
						    : "failed"));
	}
	if (t->reply_ms)
		json_object_set_new(o, "rtt_ms",
				    json_integer(t->reply_ms - c->start_ms));
	return o;
}

json_t *srv_diag_fanout_json(const struct srv_diag_call *c)
{
	size_t count[SRV_DIAG_TIMED_OUT + 1] = {0};
	json_t *devs = json_array();

	for (size_t i = 0; i < c->n; i++) {
		count[c->t[i].state]++;
		json_array_append_new(devs, srv_diag_target_json(c, &c->t[i]));
	}
	return json_pack("{s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:o}", "check",
			 c->check, "summary", "total", (json_int_t)c->n,
			 "answered", (json_int_t)count[SRV_DIAG_ANSWERED],
			 "failed", (json_int_t)count[SRV_DIAG_FAILED],
			 "offline", (json_int_t)count[SRV_DIAG_OFFLINE],
			 "timed_out", (json_int_t)count[SRV_DIAG_TIMED_OUT],
			 "devices", devs);
}
