/* SPDX-License-Identifier: MIT */
/* A rollout's spec: parsed, checked and shown (rollout_spec.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "rollout_spec.h"
#include "util.h"

static const char *const top_keys[] = {
	"id",	   "bundle",	      "target",		  "waves",
	"canaries", "soak_s",	      "failure",	  "health_window_s",
	"device_timeout_s", "rate_per_min", "concurrency", "auto_rollback",
	NULL};
static const char *const target_keys[] = {"group",   "labels", "hardware",
					  "version", "devices", NULL};
static const char *const failure_keys[] = {"percent", "min_sample", NULL};

/* Every key of @obj is one of @known. */
static int known_keys(const json_t *obj, const char *const *known,
		      const char *what, struct fl_error *err)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		size_t i = 0;

		while (known[i] && strcmp(known[i], key) != 0)
			i++;
		if (!known[i])
			return fl_fail(err, FL_EINVAL, "unknown key '%.64s' in %s",
				       key, what);
	}
	return 0;
}

/* An optional object member: *@ret NULL when absent or null. */
static int opt_object(const json_t *obj, const char *key, const char *const *known,
		      json_t **ret, struct fl_error *err)
{
	json_t *v = json_object_get(obj, key);

	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return fl_fail(err, FL_EPARSE, "field '%s' must be an object",
			       key);
	*ret = v;
	return known_keys(v, known, key, err);
}

/* An optional integer member in [min, max], @def when absent. */
static int opt_int(const json_t *obj, const char *key, int64_t min,
		   int64_t max, int64_t def, int64_t *ret, struct fl_error *err)
{
	*ret = def;
	if (!obj || !json_object_get(obj, key))
		return 0;
	return fl_json_int(obj, key, min, max, ret, err);
}

/*
 * An optional array of ids (devices, canaries), each valid and named
 * once, into a new array of borrowed strings.
 */
static int id_list(const json_t *obj, const char *key, size_t max,
		   const char ***ret, size_t *ret_n, struct fl_error *err)
{
	json_t *arr = NULL, *v;
	const char **ids;
	size_t i, k;
	int rc = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!obj || !json_object_get(obj, key))
		return 0;
	rc = fl_json_array(obj, key, max, &arr, err);
	if (rc)
		return rc;
	ids = fl_xcalloc(json_array_size(arr) + 1, sizeof(*ids));
	json_array_foreach(arr, i, v) {
		ids[i] = json_string_value(v);
		if (!fl_valid_id(ids[i]))
			rc = fl_fail(err, FL_EINVAL, "bad device id in '%s'",
				     key);
		for (k = 0; !rc && k < i; k++)
			if (strcmp(ids[k], ids[i]) == 0)
				rc = fl_fail(err, FL_EINVAL,
					     "'%s' names %s twice", key, ids[i]);
		if (rc)
			break;
	}
	if (rc) {
		free(ids);
		return rc;
	}
	*ret = ids;
	*ret_n = json_array_size(arr);
	return 0;
}

static int labels(const json_t *target, struct srv_rollout_target *t,
		  struct fl_error *err)
{
	json_t *obj = json_object_get(target, "labels"), *v;
	const char *key;

	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return fl_fail(err, FL_EPARSE, "field 'labels' must be an object");
	if (json_object_size(obj) > SRV_ROLLOUT_MAX_LABELS)
		return fl_fail(err, FL_ELIMIT, "more than %d labels",
			       SRV_ROLLOUT_MAX_LABELS);
	json_object_foreach(obj, key, v) {
		if (!fl_valid_label(key) || !fl_valid_label(json_string_value(v)))
			return fl_fail(err, FL_EINVAL,
				       "bad label '%.64s' in the target", key);
		t->label_keys[t->n_labels] = key;
		t->label_values[t->n_labels++] = json_string_value(v);
	}
	return 0;
}

static int target(const json_t *body, struct srv_rollout_target *t,
		  struct fl_error *err)
{
	json_t *obj;
	int rc = opt_object(body, "target", target_keys, &obj, err);

	if (rc || !obj)
		return rc;
	rc = fl_json_str_opt(obj, "group", FL_ID_MAX, &t->group, err);
	if (!rc && t->group && !fl_valid_id(t->group))
		rc = fl_fail(err, FL_EINVAL, "bad group '%s' in the target",
			     t->group);
	if (!rc)
		rc = fl_json_str_opt(obj, "hardware", 64, &t->hardware, err);
	if (!rc && t->hardware && !fl_valid_label(t->hardware))
		rc = fl_fail(err, FL_EINVAL, "bad hardware '%s' in the target",
			     t->hardware);
	if (!rc)
		rc = fl_json_str_opt(obj, "version", 64, &t->version, err);
	if (!rc && t->version && !fl_valid_text(t->version, 64))
		rc = fl_fail(err, FL_EINVAL, "bad version in the target");
	if (!rc)
		rc = labels(obj, t, err);
	if (!rc)
		rc = id_list(obj, "devices", SRV_ROLLOUT_MAX_DEVICES,
			     &t->devices, &t->n_devices, err);
	if (!rc && json_object_get(obj, "devices") && !t->n_devices)
		rc = fl_fail(err, FL_EINVAL, "'devices' names no device");
	return rc;
}

/* One element of "waves": "2%", "5" or 5. */
static int wave(const json_t *v, struct fl_wave_stop *ret,
		struct fl_error *err)
{
	char num[24];

	if (json_is_string(v))
		return fl_wave_stop_parse(json_string_value(v), ret, err);
	if (!json_is_integer(v))
		return fl_fail(err, FL_EPARSE,
			       "a wave is \"N%%\", \"N\" or a number");
	snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		 json_integer_value(v));
	return fl_wave_stop_parse(num, ret, err);
}

static int waves(const json_t *body, struct srv_rollout_spec *s,
		 struct fl_error *err)
{
	json_t *arr = NULL, *v;
	size_t i;
	int rc;

	if (!json_object_get(body, "waves"))
		return fl_wave_stops_parse(SRV_ROLLOUT_DEFAULT_WAVES, s->waves,
					   &s->n_waves, err);
	rc = fl_json_array(body, "waves", FL_WAVES_MAX, &arr, err);
	json_array_foreach(arr, i, v)
		if (!rc)
			rc = wave(v, &s->waves[i], err);
	if (rc)
		return rc;
	s->n_waves = json_array_size(arr);
	return fl_wave_stops_check(s->waves, s->n_waves, err);
}

static int limits(const json_t *body, struct srv_rollout_spec *s,
		  struct fl_error *err)
{
	json_t *fail = NULL;
	int rc;

	rc = opt_int(body, "soak_s", 0, SRV_ROLLOUT_MAX_SOAK,
		     SRV_ROLLOUT_DEFAULT_SOAK, &s->soak_s, err);
	if (!rc)
		rc = opt_int(body, "health_window_s", 0, SRV_ROLLOUT_MAX_WINDOW,
			     SRV_ROLLOUT_DEFAULT_WINDOW, &s->health_window_s,
			     err);
	if (!rc)
		rc = opt_int(body, "device_timeout_s", 1,
			     SRV_ROLLOUT_MAX_TIMEOUT,
			     SRV_ROLLOUT_DEFAULT_TIMEOUT, &s->device_timeout_s,
			     err);
	if (!rc)
		rc = opt_int(body, "rate_per_min", 0, SRV_ROLLOUT_MAX_RATE, 0,
			     &s->rate_per_min, err);
	if (!rc)
		rc = opt_int(body, "concurrency", 0, SRV_ROLLOUT_MAX_RATE, 0,
			     &s->concurrency, err);
	if (!rc)
		rc = opt_object(body, "failure", failure_keys, &fail, err);
	if (!rc)
		rc = opt_int(fail, "percent", 0, 100,
			     SRV_ROLLOUT_DEFAULT_PERCENT, &s->fail_percent, err);
	if (!rc)
		rc = opt_int(fail, "min_sample", 1, SRV_ROLLOUT_MAX_RATE,
			     SRV_ROLLOUT_DEFAULT_MIN_SAMPLE, &s->min_sample,
			     err);
	s->auto_rollback = true;
	if (!rc && json_object_get(body, "auto_rollback"))
		rc = fl_json_bool(body, "auto_rollback", &s->auto_rollback,
				  err);
	return rc;
}

int srv_rollout_spec_parse(const json_t *body, struct srv_rollout_spec *ret,
			   struct fl_error *err)
{
	struct srv_rollout_spec s = {0};
	int rc;

	rc = fl_json_require_object(body, "rollout spec", err);
	if (!rc)
		rc = known_keys(body, top_keys, "the rollout spec", err);
	if (!rc)
		rc = fl_json_str_opt(body, "id", FL_ID_MAX, &s.id, err);
	if (!rc && s.id)
		rc = fl_check_id(s.id, "rollout id", err);
	if (!rc)
		rc = fl_json_str(body, "bundle", 200, &s.bundle, err);
	if (!rc)
		rc = target(body, &s.target, err);
	if (!rc)
		rc = waves(body, &s, err);
	if (!rc)
		rc = id_list(body, "canaries", SRV_ROLLOUT_MAX_CANARIES,
			     &s.canaries, &s.n_canaries, err);
	if (!rc)
		rc = limits(body, &s, err);
	if (rc) {
		srv_rollout_spec_release(&s);
		return rc;
	}
	*ret = s;
	return 0;
}

void srv_rollout_spec_release(struct srv_rollout_spec *s)
{
	if (!s)
		return;
	free(s->target.devices);
	free(s->canaries);
	s->target.devices = NULL;
	s->canaries = NULL;
	s->target.n_devices = s->n_canaries = 0;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *strs(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *target_json(const struct srv_rollout_target *t)
{
	json_t *labels = json_object();

	for (size_t i = 0; i < t->n_labels; i++)
		json_object_set_new(labels, t->label_keys[i],
				    json_string(t->label_values[i]));
	return json_pack("{s:o, s:o, s:o, s:o, s:o}", "group",
			 str_or_null(t->group), "labels", labels, "hardware",
			 str_or_null(t->hardware), "version",
			 str_or_null(t->version), "devices",
			 t->devices ? strs(t->devices, t->n_devices)
				    : json_null());
}

json_t *srv_rollout_spec_json(const struct srv_rollout_spec *s,
			      const char *id, const char *bundle_id)
{
	json_t *w = json_array();
	char buf[FL_WAVE_STOP_TEXT];

	for (size_t i = 0; i < s->n_waves; i++) {
		fl_wave_stop_format(&s->waves[i], buf);
		json_array_append_new(w, json_string(buf));
	}
	return json_pack(
	    "{s:s, s:s, s:o, s:o, s:o, s:I, s:{s:I, s:I}, s:I, s:I, s:I, s:I,"
	    " s:b}",
	    "id", id, "bundle", bundle_id, "target", target_json(&s->target),
	    "waves", w, "canaries", strs(s->canaries, s->n_canaries), "soak_s",
	    (json_int_t)s->soak_s, "failure", "percent",
	    (json_int_t)s->fail_percent, "min_sample",
	    (json_int_t)s->min_sample, "health_window_s",
	    (json_int_t)s->health_window_s, "device_timeout_s",
	    (json_int_t)s->device_timeout_s, "rate_per_min",
	    (json_int_t)s->rate_per_min, "concurrency",
	    (json_int_t)s->concurrency, "auto_rollback", s->auto_rollback);
}

void srv_rollout_new_id(char buf[FL_ID_MAX + 1])
{
	unsigned char raw[8];
	char hex[17];

	fl_random(raw, sizeof(raw), NULL);
	fl_hex(raw, sizeof(raw), hex);
	snprintf(buf, FL_ID_MAX + 1, "r-%s", hex);
}
