/* SPDX-License-Identifier: MIT */
/* The telemetry wire message and its seq rule (telemetry.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "telemetry.h"
#include "util.h"
#include "validate.h"

/* Point @i of the message: an object with a valid metric, a finite
 * number and a sample time inside the window. */
static int check_point(const json_t *p, size_t i, int64_t now_ms,
		       struct fl_error *err)
{
	const json_t *metric = json_object_get(p, "metric");
	const json_t *value = json_object_get(p, "value");
	const json_t *ts = json_object_get(p, "ts");

	if (!json_is_object(p))
		return fl_fail(err, FL_EPARSE, "point %zu is not an object", i);
	if (!fl_valid_metric(json_string_value(metric)))
		return fl_fail(err, FL_EPARSE,
			       "point %zu: 'metric' is not 1..%d characters "
			       "A-Z a-z 0-9 _ . : -",
			       i, FL_METRIC_MAX);
	if (!json_is_number(value) || !isfinite(json_number_value(value)))
		return fl_fail(err, FL_EPARSE,
			       "point %zu: 'value' is not a finite number", i);
	if (!json_is_integer(ts) ||
	    json_integer_value(ts) < SRV_TELEMETRY_TS_MIN ||
	    json_integer_value(ts) > now_ms + SRV_TELEMETRY_TS_AHEAD_MS)
		return fl_fail(err, FL_EPARSE,
			       "point %zu: 'ts' is not integer milliseconds "
			       "between 2020-01-01 and a day from now",
			       i);
	return 0;
}

/* The message's fields other than its points. */
static int check_head(const json_t *j, int64_t *ret_seq, int64_t *ret_dropped,
		      json_t **ret_points, struct fl_error *err)
{
	int rc = fl_json_require_object(j, "telemetry", err);

	*ret_dropped = 0;
	if (!rc)
		rc = fl_json_int(j, "seq", 1, SRV_TELEMETRY_SEQ_MAX, ret_seq,
				 err);
	if (!rc && json_object_get(j, "dropped"))
		rc = fl_json_int(j, "dropped", 0, SRV_TELEMETRY_SEQ_MAX,
				 ret_dropped, err);
	if (!rc)
		rc = fl_json_array(j, "points", SRV_TELEMETRY_POINTS_MAX,
				   ret_points, err);
	if (!rc && json_array_size(*ret_points) == 0)
		rc = fl_fail(err, FL_EPARSE, "'points' is empty");
	return rc;
}

/* The checked points copied into one allocation. */
static struct srv_tmsg *copy(const json_t *points, size_t names)
{
	size_t n = json_array_size(points);
	struct srv_tmsg *m =
	    fl_xmalloc(sizeof(*m) + n * sizeof(m->points[0]) + names);
	char *p = (char *)&m->points[n];
	const json_t *pt;
	size_t i;

	m->n = n;
	json_array_foreach(points, i, pt)
	{
		const char *metric =
		    json_string_value(json_object_get(pt, "metric"));
		size_t len = strlen(metric) + 1;

		memcpy(p, metric, len);
		m->points[i] = (struct srv_tpoint){
		    .metric = p,
		    .ts_ms = json_integer_value(json_object_get(pt, "ts")),
		    .value = json_number_value(json_object_get(pt, "value"))};
		p += len;
	}
	return m;
}

int srv_telemetry_parse(const json_t *j, int64_t now_ms, struct srv_tmsg **ret,
			struct fl_error *err)
{
	int64_t seq = 0, dropped = 0;
	json_t *points = NULL, *pt;
	size_t i, names = 0;
	int rc = check_head(j, &seq, &dropped, &points, err);

	json_array_foreach(rc ? NULL : points, i, pt)
	{
		rc = check_point(pt, i, now_ms, err);
		if (rc)
			return rc;
		names +=
		    strlen(json_string_value(json_object_get(pt, "metric"))) +
		    1;
	}
	if (rc)
		return rc;
	*ret = copy(points, names);
	(*ret)->seq = seq;
	(*ret)->dropped = dropped;
	return 0;
}

enum srv_tseq srv_telemetry_seq(int64_t mark, bool reenrolled, int64_t seq)
{
	if (seq > mark)
		return SRV_TSEQ_NEW;
	if (reenrolled || mark - seq > SRV_TELEMETRY_RESTART_GAP)
		return SRV_TSEQ_RESTART;
	return SRV_TSEQ_DUPLICATE;
}
