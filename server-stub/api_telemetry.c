/* SPDX-License-Identifier: MIT */
/* A device's recent telemetry over HTTPS (docs/protocol.md "Telemetry"). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "api.h"
#include "telemetry.h"
#include "util.h"
#include "validate.h"

#define LIMIT_DEFAULT 1000
#define LIMIT_MAX 10000

/* "2026-11-29T12:00:00.123Z" for @ms since the epoch. */
static json_t *ts_json(int64_t ms)
{
	char sec[21], text[32];

	fl_time_rfc3339((time_t)(ms / 1000), sec);
	snprintf(text, sizeof(text), "%.19s.%03dZ", sec, (int)(ms % 1000));
	return json_string(text);
}

/* A whole value as an integer, the rest as a real. */
static json_t *value_json(double v)
{
	if (v == floor(v) && fabs(v) < 9007199254740992.0)
		return json_integer((json_int_t)v);
	return json_real(v);
}

static json_t *points_json(const struct srv_telemetry_list *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(
		    a, json_pack("{s:s, s:o, s:o}", "metric", l->v[i].metric,
				 "value", value_json(l->v[i].value), "ts",
				 ts_json(l->v[i].ts_ms)));
	return a;
}

/* The query's since, metric and limit into @q; FL_EINVAL with what is
 * wrong. */
static int parse_query(struct srv_req *r, struct srv_telemetry_query *q,
		       struct fl_error *err)
{
	const char *since = srv_req_query(r, "since");
	const char *limit = srv_req_query(r, "limit");
	uint64_t n = LIMIT_DEFAULT;
	time_t t = 0;

	q->metric = srv_req_query(r, "metric");
	if (since && fl_parse_rfc3339(since, &t, NULL))
		return fl_fail(err, FL_EINVAL,
			       "since '%.40s' is not a time "
			       "YYYY-MM-DDThh:mm:ssZ",
			       since);
	if (q->metric && !fl_valid_metric(q->metric))
		return fl_fail(err, FL_EINVAL,
			       "metric '%.80s' is not 1..%d characters "
			       "A-Z a-z 0-9 _ . : -",
			       q->metric, FL_METRIC_MAX);
	if (limit && (fl_parse_uint(limit, LIMIT_MAX, &n, NULL) || !n))
		return fl_fail(err, FL_EINVAL,
			       "limit '%.40s' is not a number 1..%d", limit,
			       LIMIT_MAX);
	q->since_ms = (int64_t)t * 1000;
	q->limit = (int)n;
	return 0;
}

/* GET /api/v1/devices/:id/telemetry?since=T&metric=M&limit=N */
int api_telemetry_get(struct srv_req *r)
{
	struct srv_telemetry_query q = {.device = r->params[0]};
	struct srv_telemetry_list l = {0};
	struct fl_error err = {0};
	json_t *out;

	if (parse_query(r, &q, &err) ||
	    srv_store_telemetry_get(r->srv->store, &q, &l, &err))
		return srv_reply_fail(r, &err);
	out = json_pack("{s:s, s:o, s:I}", "device", q.device, "points",
			points_json(&l), "dropped", (json_int_t)l.dropped);
	srv_telemetry_list_free(&l);
	return srv_reply_json(r, 200, out);
}
