/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "manifest.h"
#include "util.h"
#include "validate.h"

const char *fsig_compression_name(enum fsig_compression c)
{
	return c == FSIG_COMP_ZSTD ? "zstd" : "none";
}

bool fsig_valid_name(const char *s)
{
	return fl_valid_filename(s) && strlen(s) <= FSIG_NAME_MAX;
}

static bool is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == n;
}

/* ------------------------------------------------------------------ */
/* Semantic versions                                                   */

static bool ident_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '-';
}

/*
 * Check one dot-separated identifier list starting at *p; stop at @stop
 * characters or NUL.  Numeric identifiers may not have leading zeros
 * when @strict_numeric (core and pre-release, not build metadata).
 */
static bool check_idents(const char **p, const char *stop, bool strict_numeric,
			 int want_count)
{
	int count = 0;

	for (;;) {
		const char *s = *p;
		bool digits = true;

		while (**p && ident_char(**p) &&
		       (!want_count || (**p >= '0' && **p <= '9'))) {
			if (**p < '0' || **p > '9')
				digits = false;
			(*p)++;
		}
		if (*p == s)
			return false;
		if (want_count && !digits)
			return false;
		if (digits && strict_numeric && *p - s > 1 && *s == '0')
			return false;
		count++;
		if (**p != '.')
			break;
		(*p)++;
	}
	if (want_count && count != want_count)
		return false;
	return **p == '\0' || strchr(stop, **p);
}

bool fsig_valid_semver(const char *s)
{
	const char *p = s;

	if (!s || strlen(s) > FSIG_VERSION_MAX)
		return false;
	if (!check_idents(&p, "-+", true, 3))
		return false;
	if (*p == '-') {
		p++;
		if (!check_idents(&p, "+", true, 0))
			return false;
	}
	if (*p == '+') {
		p++;
		if (!check_idents(&p, "", false, 0))
			return false;
	}
	return *p == '\0';
}

/* Compare identifiers [a, a+alen) and [b, b+blen) by SemVer rules. */
static int cmp_ident(const char *a, size_t alen, const char *b, size_t blen)
{
	bool an = strspn(a, "0123456789") >= alen;
	bool bn = strspn(b, "0123456789") >= blen;
	int c;

	if (an && bn) {
		if (alen != blen)
			return alen < blen ? -1 : 1;
		return strncmp(a, b, alen);
	}
	if (an != bn)
		return an ? -1 : 1;
	c = strncmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen == blen ? 0 : (alen < blen ? -1 : 1);
}

/* Compare dot lists up to @end characters ("+" or "" / "-+"). */
static int cmp_list(const char *a, const char *b, const char *end)
{
	for (;;) {
		size_t alen = strcspn(a, end), blen = strcspn(b, end);
		size_t ai = strcspn(a, "."), bi = strcspn(b, ".");
		int c;

		ai = ai < alen ? ai : alen;
		bi = bi < blen ? bi : blen;
		if (alen == 0 || blen == 0)
			return alen == blen ? 0 : (alen == 0 ? -1 : 1);
		c = cmp_ident(a, ai, b, bi);
		if (c)
			return c;
		a += ai + (ai < alen);
		b += bi + (bi < blen);
		if ((ai == alen) != (bi == blen))
			return ai == alen ? -1 : 1;
		if (ai == alen)
			return 0;
	}
}

int fsig_semver_cmp(const char *a, const char *b)
{
	const char *pa, *pb;
	int c = cmp_list(a, b, "-+");

	if (c)
		return c;
	pa = a + strcspn(a, "-+");
	pb = b + strcspn(b, "-+");
	if (*pa != '-' || *pb != '-')
		return (*pa == '-') == (*pb == '-') ? 0 : (*pa == '-' ? -1 : 1);
	return cmp_list(pa + 1, pb + 1, "+");
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */

static int parse_time(const json_t *o, const char *key, bool optional,
		      time_t *ret, struct fl_error *err)
{
	const char *s;
	int rc;

	rc = fl_json_str_opt(o, key, 32, &s, err);
	if (rc)
		return rc;
	if (!s) {
		if (!optional)
			return fl_fail(err, FL_EPARSE, "missing field '%s'",
				       key);
		*ret = 0;
		return 0;
	}
	rc = fl_parse_rfc3339(s, ret, err);
	if (rc)
		fl_error_prefix(err, "field '%s'", key);
	return rc;
}

static int parse_hardware(const json_t *o, struct fsig_manifest *m,
			  struct fl_error *err)
{
	json_t *arr;
	int rc;

	rc = fl_json_array(o, "hardware", FSIG_HARDWARE_MAX, &arr, err);
	if (rc)
		return rc;
	if (json_array_size(arr) == 0)
		return fl_fail(err, FL_EPARSE, "field 'hardware' is empty");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const char *s = json_string_value(json_array_get(arr, i));

		if (!s || !fl_valid_label(s))
			return fl_fail(err, FL_EPARSE,
				       "hardware entry %zu is not a label of "
				       "1-64 [A-Za-z0-9._:-]",
				       i);
		m->hardware[i] = s;
	}
	m->n_hardware = json_array_size(arr);
	return 0;
}

static int parse_provenance(const json_t *o, struct fsig_manifest *m,
			    struct fl_error *err)
{
	struct fsig_provenance *p = &m->provenance;
	json_t *v = json_object_get(o, "provenance");
	json_t *dirty;
	int rc;

	if (!v || json_is_null(v))
		return 0;
	rc = fl_json_require_object(v, "provenance", err);
	if (!rc)
		rc = fl_json_str_opt(v, "commit", 64, &p->commit, err);
	if (!rc && p->commit && !is_hex(p->commit, 40) &&
	    !is_hex(p->commit, 64))
		rc = fl_fail(err, FL_EPARSE, "provenance commit is not hex");
	if (!rc)
		rc = fl_json_str_opt(v, "describe", FSIG_TEXT_MAX, &p->describe,
				     err);
	if (!rc)
		rc =
		    fl_json_str_opt(v, "remote", FSIG_URL_MAX, &p->remote, err);
	if (!rc)
		rc = fl_json_str_opt(v, "builder", FSIG_TEXT_MAX, &p->builder,
				     err);
	if (rc)
		return rc;
	dirty = json_object_get(v, "dirty");
	if (dirty && !json_is_boolean(dirty))
		return fl_fail(err, FL_EPARSE,
			       "provenance 'dirty' must be true or false");
	p->dirty = json_is_true(dirty);
	if ((p->describe && !fl_valid_text(p->describe, FSIG_TEXT_MAX)) ||
	    (p->remote && !fl_valid_text(p->remote, FSIG_URL_MAX)) ||
	    (p->builder && !fl_valid_text(p->builder, FSIG_TEXT_MAX)))
		return fl_fail(err, FL_EPARSE,
			       "provenance text has control characters");
	m->has_provenance = true;
	return 0;
}

static int parse_digest(const json_t *o, const char *key, const char **ret,
			struct fl_error *err)
{
	int rc = fl_json_str(o, key, 64, ret, err);

	if (!rc && !is_hex(*ret, 64))
		rc = fl_fail(err, FL_EPARSE,
			     "field '%s' must be 64 lowercase hex digits", key);
	return rc;
}

/* The compression fields of a payload: raw_* only with compression. */
static int parse_compression(const json_t *o, struct fsig_payload *p,
			     struct fl_error *err)
{
	const char *comp;
	int64_t v = 0;
	int rc;

	rc = fl_json_str(o, "compression", 16, &comp, err);
	if (rc)
		return rc;
	if (strcmp(comp, "none") == 0) {
		if (json_object_get(o, "raw_size") ||
		    json_object_get(o, "raw_sha256") ||
		    json_object_get(o, "delta_from"))
			return fl_fail(err, FL_EPARSE,
				       "raw_size, raw_sha256 and delta_from "
				       "need compression");
		p->compression = FSIG_COMP_NONE;
		p->raw_size = p->size;
		p->raw_sha256 = p->sha256;
		return 0;
	}
	if (strcmp(comp, "zstd") != 0)
		return fl_fail(err, FL_EPARSE, "unknown compression '%.16s'",
			       comp);
	p->compression = FSIG_COMP_ZSTD;
	rc = fl_json_int(o, "raw_size", 0, FSIG_PAYLOAD_SIZE_MAX, &v, err);
	if (!rc)
		rc = parse_digest(o, "raw_sha256", &p->raw_sha256, err);
	if (!rc)
		rc = fl_json_str_opt(o, "delta_from", FSIG_VERSION_MAX,
				     &p->delta_from, err);
	if (!rc && p->delta_from && !fsig_valid_semver(p->delta_from))
		rc = fl_fail(err, FL_EPARSE,
			     "delta_from is not a semantic version");
	p->raw_size = (uint64_t)v;
	return rc;
}

static int parse_payload(const json_t *o, struct fsig_payload *p,
			 enum fsig_reason *reason, struct fl_error *err)
{
	int64_t size = 0;
	int rc;

	rc = fl_json_require_object(o, "payload", err);
	if (!rc)
		rc = fl_json_str(o, "name", 256, &p->name, err);
	if (rc)
		return rc;
	if (!fsig_valid_name(p->name)) {
		*reason = FSIG_R_BAD_NAME;
		return fl_fail(err, FL_EPARSE,
			       "payload name '%.80s' is not a plain file name",
			       p->name);
	}
	rc = fl_json_str(o, "type", FSIG_TYPE_MAX, &p->type, err);
	if (!rc && !fl_valid_label(p->type))
		rc = fl_fail(err, FL_EPARSE, "bad payload type");
	if (!rc)
		rc = fl_json_int(o, "size", 0, FSIG_PAYLOAD_SIZE_MAX, &size,
				 err);
	if (!rc)
		rc = parse_digest(o, "sha256", &p->sha256, err);
	p->size = (uint64_t)size;
	if (!rc)
		rc = parse_compression(o, p, err);
	return rc;
}

static int parse_payloads(const json_t *o, struct fsig_manifest *m,
			  enum fsig_reason *reason, struct fl_error *err)
{
	json_t *arr;
	int rc;

	rc = fl_json_array(o, "payloads", FSIG_PAYLOADS_MAX, &arr, err);
	if (rc)
		return rc;
	if (json_array_size(arr) == 0)
		return fl_fail(err, FL_EPARSE, "field 'payloads' is empty");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		struct fsig_payload *p = &m->payloads[i];

		rc = parse_payload(json_array_get(arr, i), p, reason, err);
		if (rc) {
			fl_error_prefix(err, "payload %zu", i);
			return rc;
		}
		if (fsig_manifest_find(m, p->name) >= 0)
			return fl_fail(err, FL_EPARSE,
				       "payload name '%s' appears twice",
				       p->name);
		m->n_payloads = i + 1;
	}
	return 0;
}

static int parse_top(const json_t *o, struct fsig_manifest *m,
		     enum fsig_reason *reason, struct fl_error *err)
{
	int64_t v = 0;
	int rc;

	rc = fl_json_int(o, "format", 0, 1000, &v, err);
	if (!rc && v != FSIG_FORMAT)
		rc = fl_fail(err, FL_EPARSE, "unsupported format %lld",
			     (long long)v);
	m->format = (int)v;
	if (!rc)
		rc = fl_json_str(o, "name", 256, &m->name, err);
	if (!rc && !fsig_valid_name(m->name))
		rc = fl_fail(err, FL_EPARSE, "bad bundle name");
	if (!rc)
		rc = fl_json_str(o, "version", FSIG_VERSION_MAX, &m->version,
				 err);
	if (!rc && !fsig_valid_semver(m->version))
		rc = fl_fail(err, FL_EPARSE,
			     "version '%s' is not a semantic version",
			     m->version);
	if (!rc)
		rc = fl_json_int(o, "security_version", 0,
				 FSIG_SECURITY_VERSION_MAX, &v, err);
	m->security_version = (uint64_t)v;
	if (!rc)
		rc = parse_hardware(o, m, err);
	if (!rc)
		rc = parse_time(o, "created", false, &m->created, err);
	if (!rc)
		rc = parse_time(o, "expires", true, &m->expires, err);
	if (!rc)
		rc = parse_provenance(o, m, err);
	if (!rc)
		rc = parse_payloads(o, m, reason, err);
	return rc;
}

int fsig_manifest_parse(const void *buf, size_t len, struct fsig_manifest **ret,
			enum fsig_reason *reason, struct fl_error *err)
{
	enum fsig_reason why = FSIG_R_MALFORMED;
	struct fsig_manifest *m;
	json_t *j;
	int rc;

	if (len > FSIG_MANIFEST_MAX) {
		if (reason)
			*reason = FSIG_R_TOO_LARGE;
		return fl_fail(err, FL_ELIMIT,
			       "manifest of %zu bytes is over the %d byte cap",
			       len, FSIG_MANIFEST_MAX);
	}
	rc = fl_json_parse(buf, len, FSIG_MANIFEST_MAX, &j, err);
	if (!rc && !json_is_object(j)) {
		json_decref(j);
		rc = fl_fail(err, FL_EPARSE, "manifest must be a JSON object");
	}
	if (rc) {
		if (reason)
			*reason = why;
		return rc;
	}
	m = fl_xcalloc(1, sizeof(*m));
	m->json = j;
	rc = parse_top(j, m, &why, err);
	if (rc) {
		if (reason)
			*reason = why;
		fl_error_prefix(err, "manifest");
		fsig_manifest_free(m);
		return rc;
	}
	*ret = m;
	return 0;
}

void fsig_manifest_free(struct fsig_manifest *m)
{
	if (!m)
		return;
	json_decref(m->json);
	free(m);
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

static json_t *payload_to_json(const struct fsig_payload *p)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "name", p->name,
			      "type", p->type, "compression",
			      fsig_compression_name(p->compression), "size",
			      (json_int_t)p->size, "sha256", p->sha256);

	if (p->compression != FSIG_COMP_NONE) {
		json_object_set_new(o, "raw_size",
				    json_integer((json_int_t)p->raw_size));
		json_object_set_new(o, "raw_sha256",
				    json_string(p->raw_sha256));
	}
	if (p->delta_from)
		json_object_set_new(o, "delta_from",
				    json_string(p->delta_from));
	return o;
}

static json_t *provenance_to_json(const struct fsig_provenance *pv)
{
	json_t *o = json_object();

	if (pv->commit)
		json_object_set_new(o, "commit", json_string(pv->commit));
	if (pv->describe)
		json_object_set_new(o, "describe", json_string(pv->describe));
	json_object_set_new(o, "dirty", json_boolean(pv->dirty));
	if (pv->remote)
		json_object_set_new(o, "remote", json_string(pv->remote));
	if (pv->builder)
		json_object_set_new(o, "builder", json_string(pv->builder));
	return o;
}

json_t *fsig_manifest_to_json(const struct fsig_manifest *m)
{
	json_t *hw = json_array(), *pls = json_array(), *o;
	char when[21];

	for (size_t i = 0; i < m->n_hardware; i++)
		json_array_append_new(hw, json_string(m->hardware[i]));
	for (size_t i = 0; i < m->n_payloads; i++)
		json_array_append_new(pls, payload_to_json(&m->payloads[i]));
	fl_time_rfc3339(m->created, when);
	o = json_pack("{s:i, s:s, s:s, s:I, s:o, s:s}", "format", m->format,
		      "name", m->name, "version", m->version,
		      "security_version", (json_int_t)m->security_version,
		      "hardware", hw, "created", when);
	if (!o)
		abort(); /* jansson fails only on allocation or NULL strings */
	if (m->expires) {
		fl_time_rfc3339(m->expires, when);
		json_object_set_new(o, "expires", json_string(when));
	}
	if (m->has_provenance)
		json_object_set_new(o, "provenance",
				    provenance_to_json(&m->provenance));
	json_object_set_new(o, "payloads", pls);
	return o;
}

int fsig_manifest_find(const struct fsig_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n_payloads; i++)
		if (strcmp(m->payloads[i].name, name) == 0)
			return (int)i;
	return -1;
}

int fsig_manifest_check_policy(const struct fsig_manifest *m,
			       const struct fsig_policy *pol,
			       enum fsig_reason *reason, struct fl_error *err)
{
	time_t now = pol->now ? pol->now : time(NULL);
	char when[21];
	size_t i;

	if (pol->hardware) {
		for (i = 0; i < m->n_hardware; i++)
			if (strcmp(m->hardware[i], pol->hardware) == 0)
				break;
		if (i == m->n_hardware)
			return fsig_reject(err, reason, FSIG_R_HARDWARE,
					   "bundle is not for hardware '%.64s'",
					   pol->hardware);
	}
	if (m->security_version < pol->min_security_version)
		return fsig_reject(
		    err, reason, FSIG_R_SECURITY_VERSION,
		    "bundle security_version %llu is below "
		    "the floor %llu",
		    (unsigned long long)m->security_version,
		    (unsigned long long)pol->min_security_version);
	if (m->expires && m->expires <= now) {
		fl_time_rfc3339(m->expires, when);
		return fsig_reject(err, reason, FSIG_R_EXPIRED,
				   "bundle expired at %s", when);
	}
	return 0;
}
