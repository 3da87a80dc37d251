/* SPDX-License-Identifier: MIT */
/* The device shadow's merge rule and delta (shadow.h, docs/shadow.md). */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"
#include "shadow.h"

bool fl_shadow_key_valid(const char *key)
{
	size_t n = key ? strlen(key) : 0;

	if (n == 0 || n > FL_SHADOW_KEY_MAX)
		return false;
	return strspn(key, "abcdefghijklmnopqrstuvwxyz"
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

int fl_shadow_check(const json_t *doc, bool patch_nulls, struct fl_error *err)
{
	const char *k;
	json_t *v;

	if (!json_is_object(doc))
		return fl_fail(err, FL_EINVAL,
			       "a shadow document must be a JSON object");
	if (json_object_size(doc) > FL_SHADOW_KEYS_MAX)
		return fl_fail(err, FL_EINVAL, "more than %d keys",
			       FL_SHADOW_KEYS_MAX);
	json_object_foreach((json_t *)doc, k, v)
	{
		if (!fl_shadow_key_valid(k))
			return fl_fail(err, FL_EINVAL,
				       "bad key '%.64s' (1..%d of "
				       "A-Z a-z 0-9 _ . -)",
				       k, FL_SHADOW_KEY_MAX);
		if (json_is_null(v) && !patch_nulls)
			return fl_fail(err, FL_EINVAL, "key '%s' is null", k);
	}
	return 0;
}

/* The "refused" member: an object of key -> reason (text). */
static int check_refused(const json_t *refused, struct fl_error *err)
{
	const char *k;
	json_t *v;

	if (!refused)
		return 0;
	if (!json_is_object(refused) ||
	    json_object_size(refused) > FL_SHADOW_KEYS_MAX)
		return fl_fail(err, FL_EINVAL, "'refused' is not an object");
	json_object_foreach((json_t *)refused, k, v) if (
	    !json_is_string(
		v)) return fl_fail(err, FL_EINVAL,
				   "refused '%.64s': reason is no string", k);
	return 0;
}

int fl_shadow_check_report(const json_t *report, struct fl_error *err)
{
	int64_t version;
	int rc = fl_json_int(report, "version", 0, INT64_MAX, &version, err);

	if (!rc)
		rc = fl_shadow_check(json_object_get(report, "state"), false,
				     err);
	if (!rc)
		rc = check_refused(json_object_get(report, "refused"), err);
	return rc;
}

size_t fl_shadow_merge(json_t *state, json_t *meta, const json_t *patch,
		       int64_t version)
{
	const char *k;
	json_t *v;
	size_t n = 0;

	json_object_foreach((json_t *)patch, k, v)
	{
		json_t *last = json_object_get(meta, k);

		if (json_integer_value(last) > version)
			continue; /* a newer write set it: that one wins */
		if (json_is_null(v))
			n += json_object_del(state, k) == 0;
		else if (!json_equal(json_object_get(state, k), v) && ++n)
			json_object_set(state, k, v);
		json_object_set_new(meta, k, json_integer(version));
	}
	return n;
}

size_t fl_shadow_size(const json_t *doc)
{
	char *text = fl_json_dumps(doc);
	size_t n = strlen(text);

	free(text);
	return n;
}

json_t *fl_shadow_delta(const json_t *desired, const json_t *reported)
{
	json_t *out = json_object(), *v;
	const char *k;

	json_object_foreach((json_t *)desired, k,
			    v) if (!json_equal(v, json_object_get(reported, k)))
	    json_object_set(out, k, v);
	return out;
}

json_t *fl_shadow_desired_msg(const json_t *state, int64_t version,
			      int64_t updated)
{
	char ts[21];

	fl_time_rfc3339(updated, ts);
	return json_pack("{s:I, s:s, s:O}", "version", (json_int_t)version,
			 "updated", ts, "state", state);
}
