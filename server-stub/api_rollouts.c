/* SPDX-License-Identifier: MIT */
/*
 * The rollouts API (docs/protocol.md "Rollouts"): plan, create, list,
 * show, and the operators' moves.  The rollouts themselves are
 * rollouts.c and rollout_engine.c; the JSON is api_json.c's.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "api_json.h"
#include "log.h"
#include "rollouts.h"
#include "util.h"

/* A query flag: "1" or "true". */
static bool flag(struct srv_req *r, const char *key)
{
	const char *v = srv_req_query(r, key);

	return fl_streq(v, "1") || fl_streq(v, "true");
}

/* Reply with rollout @id as GET /api/v1/rollouts/:id shows it. */
static int reply_rollout(struct srv_req *r, int status, const char *id,
			 bool devices, bool events)
{
	struct srv_rollout_view v = {0};
	struct srv_bundle_row b = {0};
	struct fl_error err = {0};
	json_t *out;

	if (srv_rollout_view(r->srv, id, devices, events, &v, &err))
		return srv_reply_fail(r, &err);
	srv_store_bundle_get(r->srv->store, v.row.bundle, &b, NULL);
	out = api_rollout_json(&v, b.name);
	srv_bundle_row_free(&b);
	srv_rollout_view_release(&v);
	return srv_reply_json(r, status, out);
}

/* POST /api/v1/rollouts/plan: what a create with this body would do. */
int api_rollout_plan(struct srv_req *r)
{
	json_t *body = srv_req_json(r);
	struct srv_rollout_preview p = {0};
	struct fl_error err = {0};
	json_t *out;

	if (!body)
		return 0;
	if (srv_rollout_plan(r->srv, body, &p, &err))
		return srv_reply_fail(r, &err);
	out = api_rollout_plan_json(&p);
	srv_rollout_preview_release(&p);
	return srv_reply_json(r, 200, out);
}

/* POST /api/v1/rollouts: plan and start; 201 with the rollout. */
int api_rollout_create(struct srv_req *r)
{
	json_t *body = srv_req_json(r);
	struct fl_error err = {0};
	char id[FL_ID_MAX + 1];

	if (!body)
		return 0;
	if (srv_rollout_create(r->srv, body, srv_req_actor(r), time(NULL), id,
			       &err))
		return srv_reply_fail(r, &err);
	return reply_rollout(r, 201, id, false, false);
}

/* GET /api/v1/rollouts[?limit=N][&state=S]: newest first. */
int api_rollout_list(struct srv_req *r)
{
	const char *state = srv_req_query(r, "state");
	struct srv_rollout_list l = {0};
	struct fl_error err = {0};
	json_t *out;
	int limit = srv_req_limit(r, 100, 1000);

	if (!limit)
		return 0;
	if (state && !fl_rollout_state_parse(state)) {
		fl_fail(&err, FL_EINVAL, "unknown rollout state '%.40s'", state);
		return srv_reply_fail(r, &err);
	}
	if (srv_store_rollout_list(r->srv->store, false, state ? 100000 : limit,
				   &l, &err))
		return srv_reply_fail(r, &err);
	out = json_array();
	for (size_t i = 0; i < l.n && (int)json_array_size(out) < limit; i++) {
		struct srv_rollout_count_list c = {0};
		struct srv_bundle_row b = {0};

		if (state && !fl_streq(l.v[i].state, state))
			continue;
		srv_store_rollout_counts(r->srv->store, l.v[i].id, &c, NULL);
		srv_store_bundle_get(r->srv->store, l.v[i].bundle, &b, NULL);
		json_array_append_new(out,
				      api_rollout_summary_json(&l.v[i], b.name, &c));
		srv_bundle_row_free(&b);
		srv_rollout_count_list_free(&c);
	}
	srv_rollout_list_free(&l);
	return srv_reply_json(r, 200, out);
}

/* GET /api/v1/rollouts/:id[?devices=1][&events=1] */
int api_rollout_get(struct srv_req *r)
{
	return reply_rollout(r, 200, r->params[0], flag(r, "devices"),
			     flag(r, "events"));
}

static int act(struct srv_req *r, enum fl_rollout_action action)
{
	struct fl_error err = {0};

	if (srv_rollout_act(r->srv, r->params[0], action, srv_req_actor(r),
			    time(NULL), &err))
		return srv_reply_fail(r, &err);
	return reply_rollout(r, 200, r->params[0], false, false);
}

int api_rollout_pause(struct srv_req *r)
{
	return act(r, FL_ROLLOUT_PAUSE);
}

int api_rollout_resume(struct srv_req *r)
{
	return act(r, FL_ROLLOUT_RESUME);
}

int api_rollout_abort(struct srv_req *r)
{
	return act(r, FL_ROLLOUT_ABORT);
}

int api_rollout_rollback(struct srv_req *r)
{
	return act(r, FL_ROLLOUT_ROLLBACK);
}
