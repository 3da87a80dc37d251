/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "json.h"
#include "util.h"

int fl_json_parse(const char *buf, size_t len, size_t max, json_t **ret,
		  struct fl_error *err)
{
	json_error_t jerr;
	json_t *j;

	if (len > max)
		return fl_fail(err, FL_ELIMIT,
			       "JSON document of %zu bytes is over the %zu byte limit",
			       len, max);
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return fl_fail(err, FL_EPARSE,
			       "malformed JSON at line %d column %d: %s",
			       jerr.line, jerr.column, jerr.text);
	if (!json_is_object(j) && !json_is_array(j)) {
		json_decref(j);
		return fl_fail(err, FL_EPARSE,
			       "JSON document must be an object or array");
	}
	*ret = j;
	return 0;
}

int fl_json_load_file(const char *path, size_t max, json_t **ret,
		      struct fl_error *err)
{
	char *buf;
	size_t len;
	int rc;

	rc = fl_read_file(path, max, &buf, &len, err);
	if (rc)
		return rc;
	rc = fl_json_parse(buf, len, max, ret, err);
	if (rc)
		fl_error_prefix(err, "%s", path);
	free(buf);
	return rc;
}

int fl_json_require_object(const json_t *obj, const char *what,
			   struct fl_error *err)
{
	if (!json_is_object(obj))
		return fl_fail(err, FL_EPARSE, "%s must be a JSON object", what);
	return 0;
}

static int get_str(const json_t *obj, const char *key, size_t maxlen,
		   bool optional, const char **ret, struct fl_error *err)
{
	json_t *v = json_object_get(obj, key);
	size_t len;

	if (!v || json_is_null(v)) {
		if (!optional)
			return fl_fail(err, FL_EPARSE, "missing field '%s'", key);
		*ret = NULL;
		return 0;
	}
	if (!json_is_string(v))
		return fl_fail(err, FL_EPARSE, "field '%s' must be a string",
			       key);
	len = json_string_length(v);
	if (len == 0)
		return fl_fail(err, FL_EPARSE, "field '%s' is empty", key);
	if (maxlen && len > maxlen)
		return fl_fail(err, FL_ELIMIT,
			       "field '%s' is longer than %zu bytes", key,
			       maxlen);
	if (strlen(json_string_value(v)) != len)
		return fl_fail(err, FL_EPARSE, "field '%s' contains NUL", key);
	*ret = json_string_value(v);
	return 0;
}

int fl_json_str(const json_t *obj, const char *key, size_t maxlen,
		const char **ret, struct fl_error *err)
{
	return get_str(obj, key, maxlen, false, ret, err);
}

int fl_json_str_opt(const json_t *obj, const char *key, size_t maxlen,
		    const char **ret, struct fl_error *err)
{
	return get_str(obj, key, maxlen, true, ret, err);
}

int fl_json_int(const json_t *obj, const char *key, int64_t min, int64_t max,
		int64_t *ret, struct fl_error *err)
{
	json_t *v = json_object_get(obj, key);
	json_int_t i;

	if (!v)
		return fl_fail(err, FL_EPARSE, "missing field '%s'", key);
	if (!json_is_integer(v))
		return fl_fail(err, FL_EPARSE, "field '%s' must be an integer",
			       key);
	i = json_integer_value(v);
	if (i < min || i > max)
		return fl_fail(err, FL_EPARSE,
			       "field '%s' is out of range [%lld, %lld]", key,
			       (long long)min, (long long)max);
	*ret = i;
	return 0;
}

int fl_json_bool(const json_t *obj, const char *key, bool *ret,
		 struct fl_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return fl_fail(err, FL_EPARSE, "missing field '%s'", key);
	if (!json_is_boolean(v))
		return fl_fail(err, FL_EPARSE, "field '%s' must be true or false",
			       key);
	*ret = json_is_true(v);
	return 0;
}

int fl_json_array(const json_t *obj, const char *key, size_t maxlen,
		  json_t **ret, struct fl_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return fl_fail(err, FL_EPARSE, "missing field '%s'", key);
	if (!json_is_array(v))
		return fl_fail(err, FL_EPARSE, "field '%s' must be an array",
			       key);
	if (json_array_size(v) > maxlen)
		return fl_fail(err, FL_ELIMIT,
			       "field '%s' has more than %zu elements", key,
			       maxlen);
	*ret = v;
	return 0;
}

int fl_json_seqs(const json_t *obj, const char *key, size_t max, int64_t *out,
		 size_t *ret_n, struct fl_error *err)
{
	json_t *arr = NULL;
	int rc;

	*ret_n = 0;
	if (!json_object_get(obj, key))
		return 0;
	rc = fl_json_array(obj, key, max, &arr, err);
	for (size_t i = 0; !rc && i < json_array_size(arr); i++) {
		json_t *v = json_array_get(arr, i);

		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > FL_JSON_SEQ_MAX)
			return fl_fail(err, FL_EPARSE,
				       "field '%s' must hold sequence numbers",
				       key);
		out[(*ret_n)++] = json_integer_value(v);
	}
	return rc;
}

char *fl_json_dumps(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

	return s ? s : fl_xstrdup("null");
}

int fl_json_save_file(const json_t *j, const char *path, unsigned mode,
		      struct fl_error *err)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
	char *line;
	int rc;

	if (!s)
		return fl_fail(err, FL_ENOMEM, "cannot serialise JSON");
	line = fl_xasprintf("%s\n", s);
	rc = fl_write_atomic_str(path, line, mode, err);
	free(line);
	free(s);
	return rc;
}
