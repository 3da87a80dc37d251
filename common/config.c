/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config.h"
#include "fsutil.h"
#include "util.h"

struct fl_ini *fl_ini_new(void)
{
	return fl_xcalloc(1, sizeof(struct fl_ini));
}

void fl_ini_free(struct fl_ini *ini)
{
	if (!ini)
		return;
	for (size_t i = 0; i < ini->n; i++) {
		free(ini->v[i].section);
		free(ini->v[i].key);
		fl_free_secret(ini->v[i].value); /* may hold a token */
	}
	free(ini->v);
	free(ini);
}

static void append(struct fl_ini *ini, const char *section, const char *key,
		   const char *value)
{
	if (ini->n == ini->cap) {
		ini->cap = ini->cap ? ini->cap * 2 : 16;
		ini->v = fl_xrealloc(ini->v, ini->cap * sizeof(*ini->v));
	}
	ini->v[ini->n].section = fl_xstrdup(section);
	ini->v[ini->n].key = fl_xstrdup(key);
	ini->v[ini->n].value = fl_xstrdup(value);
	ini->n++;
}

/* libinih's own limit on section names (MAX_SECTION, with the NUL):
 * longer names are cut short without an error. */
#define INIH_MAX_SECTION 50

struct parse_ctx {
	struct fl_ini *ini;
	bool too_many;
};

static int on_entry(void *user, const char *section, const char *key,
		    const char *value)
{
	struct parse_ctx *ctx = user;

	if (!key) /* new-section notification of some inih builds */
		return 1;
	if (!*key) /* "= value": libinih passes an empty name */
		return 0;
	if (ctx->ini->n >= FL_INI_MAX_ENTRIES) {
		ctx->too_many = true;
		return 0;
	}
	append(ctx->ini, section, key, value ? value : "");
	return 1;
}

#define BOM "\xEF\xBB\xBF"

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * What libinih would read differently from what the file says, refused
 * before it parses (each a line number in the message):
 *  - lines over FL_INI_MAX_LINE bytes, which it splits;
 *  - indented lines, which it takes as the continuation of the previous
 *    key's value ("    state_dir = x" under "id = a" became a second
 *    value of id);
 *  - section names of INIH_MAX_SECTION bytes or more, which it cuts
 *    short, and anything but a comment after the ']', which it drops;
 *  - a byte order mark anywhere but at the very start, which it would
 *    skip once written back there.
 */
static int check_syntax(const char *text, struct fl_error *err)
{
	int line = 1;

	for (const char *p = text; *p; line++) {
		const char *nl = strchr(p, '\n'), *q = p, *close;
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (len > FL_INI_MAX_LINE)
			return fl_fail(err, FL_ELIMIT,
				       "line %d is longer than %d bytes", line,
				       FL_INI_MAX_LINE);
		if (line == 1 && len >= 3 && memcmp(q, BOM, 3) == 0)
			q += 3; /* libinih skips a UTF-8 BOM there */
		if ((size_t)(p + len - q) >= 3 && memcmp(q, BOM, 3) == 0)
			return fl_fail(err, FL_EPARSE,
				       "line %d starts with a byte order mark",
				       line);
		while (q < p + len && blank(*q))
			q++;
		if (q > p && blank(q[-1]) && q < p + len && *q != ';' &&
		    *q != '#')
			return fl_fail(err, FL_EPARSE,
				       "line %d is indented (continuation lines "
				       "are not supported)",
				       line);
		close = *q == '[' ? memchr(q, ']', (size_t)(p + len - q))
				  : NULL;
		if (close && close - q - 1 >= INIH_MAX_SECTION)
			return fl_fail(err, FL_ELIMIT,
				       "line %d: section name longer than %d "
				       "bytes",
				       line, INIH_MAX_SECTION - 1);
		if (close) {
			for (q = close + 1; q < p + len && blank(*q); q++)
				;
			if (q < p + len && *q != ';' && *q != '#')
				return fl_fail(err, FL_EPARSE,
					       "line %d: text after the "
					       "section name",
					       line);
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	return 0;
}

int fl_ini_parse(const char *text, struct fl_ini **ret, struct fl_error *err)
{
	struct parse_ctx ctx = {0};
	int rc, line;

	if (strlen(text) > FL_INI_MAX_BYTES)
		return fl_fail(err, FL_ELIMIT, "INI text is over %d bytes",
			       FL_INI_MAX_BYTES);
	rc = check_syntax(text, err);
	if (rc)
		return rc;
	ctx.ini = fl_ini_new();
	line = ini_parse_string(text, on_entry, &ctx);
	if (line != 0 || ctx.too_many) {
		fl_ini_free(ctx.ini);
		if (ctx.too_many)
			return fl_fail(err, FL_ELIMIT, "more than %d entries",
				       FL_INI_MAX_ENTRIES);
		if (line < 0)
			return fl_fail(err, FL_ENOMEM, "cannot parse INI text");
		return fl_fail(err, FL_EPARSE, "syntax error on line %d", line);
	}
	*ret = ctx.ini;
	return 0;
}

int fl_ini_load(const char *path, struct fl_ini **ret, struct fl_error *err)
{
	char *text;
	int rc;

	rc = fl_read_file(path, FL_INI_MAX_BYTES, &text, NULL, err);
	if (rc)
		return rc;
	rc = fl_ini_parse(text, ret, err);
	if (rc)
		fl_error_prefix(err, "%s", path);
	fl_free_secret(text);
	return rc;
}

const char *fl_ini_get(const struct fl_ini *ini, const char *section,
		       const char *key)
{
	const char *v = NULL;

	for (size_t i = 0; ini && i < ini->n; i++)
		if (strcmp(ini->v[i].section, section) == 0 &&
		    strcmp(ini->v[i].key, key) == 0)
			v = ini->v[i].value;
	return v;
}

static void remove_at(struct fl_ini *ini, size_t i)
{
	free(ini->v[i].section);
	free(ini->v[i].key);
	fl_free_secret(ini->v[i].value);
	memmove(&ini->v[i], &ini->v[i + 1], (ini->n - i - 1) * sizeof(*ini->v));
	ini->n--;
}

static bool writable(const char *s, bool is_value)
{
	size_t n = strlen(s);

	if (!is_value && n == 0)
		return false;
	if (n && (s[0] == ' ' || s[n - 1] == ' ' || s[0] == '\t'))
		return false;
	if (is_value && s[0] == ';') /* "k = ;x": an inline comment */
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f ||
		    (!is_value && strchr("[]=:;#", s[i])))
			return false;
	return !strstr(s, " ;");
}

int fl_ini_set(struct fl_ini *ini, const char *section, const char *key,
	       const char *value, struct fl_error *err)
{
	size_t i;

	if (!writable(key, false) || (value && !writable(value, true)) ||
	    strchr(section, ']') || strchr(section, '\n') ||
	    strstr(section, " ;") || strlen(section) >= INIH_MAX_SECTION ||
	    (value && strlen(key) + 3 + strlen(value) > FL_INI_MAX_LINE))
		return fl_fail(err, FL_EINVAL,
			       "cannot store '%s' in an INI file", key);
	for (i = ini->n; i-- > 0;)
		if (strcmp(ini->v[i].section, section) == 0 &&
		    strcmp(ini->v[i].key, key) == 0)
			remove_at(ini, i);
	if (!value)
		return 0;
	/* keep a section's keys together: insert after its last key */
	for (i = ini->n; i-- > 0;)
		if (strcmp(ini->v[i].section, section) == 0)
			break;
	append(ini, section, key, value);
	if (i != (size_t)-1 && i + 1 < ini->n - 1) {
		struct fl_ini_entry e = ini->v[ini->n - 1];

		memmove(&ini->v[i + 2], &ini->v[i + 1],
			(ini->n - i - 2) * sizeof(*ini->v));
		ini->v[i + 1] = e;
	}
	return 0;
}

void fl_ini_remove_section(struct fl_ini *ini, const char *section)
{
	for (size_t i = ini->n; i-- > 0;)
		if (strcmp(ini->v[i].section, section) == 0)
			remove_at(ini, i);
}

int fl_ini_get_uint(const struct fl_ini *ini, const char *section,
		    const char *key, uint64_t max, uint64_t def,
		    uint64_t *ret, struct fl_error *err)
{
	const char *v = fl_ini_get(ini, section, key);
	int rc;

	if (!v) {
		*ret = def;
		return 0;
	}
	rc = fl_parse_uint(v, max, ret, NULL);
	if (rc)
		return fl_fail(err, FL_EPARSE,
			       "[%s] %s: '%.40s' is not a number up to "
			       "%" PRIu64, section, key, v, max);
	return 0;
}

int fl_ini_get_bool(const struct fl_ini *ini, const char *section,
		    const char *key, bool def, bool *ret,
		    struct fl_error *err)
{
	static const char *const yes[] = {"true", "yes", "1", "on"};
	static const char *const no[] = {"false", "no", "0", "off"};
	const char *v = fl_ini_get(ini, section, key);

	if (!v) {
		*ret = def;
		return 0;
	}
	for (size_t i = 0; i < FL_ARRAY_SIZE(yes); i++) {
		if (strcmp(v, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcmp(v, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return fl_fail(err, FL_EPARSE, "[%s] %s: '%.40s' is not true or false",
		       section, key, v);
}

static bool key_allowed(const struct fl_ini_entry *e,
			const struct fl_ini_key *allowed)
{
	for (; allowed->section; allowed++) {
		size_t n = strlen(allowed->section);
		bool wild = n && allowed->section[n - 1] == '*';
		bool sec = wild ? strncmp(e->section, allowed->section, n - 1) == 0
				: strcmp(e->section, allowed->section) == 0;

		if (sec && strcmp(e->key, allowed->key) == 0)
			return true;
	}
	return false;
}

int fl_ini_check_keys(const struct fl_ini *ini,
		      const struct fl_ini_key *allowed, struct fl_error *err)
{
	for (size_t i = 0; i < ini->n; i++)
		if (!key_allowed(&ini->v[i], allowed))
			return fl_fail(err, FL_EPARSE, "unknown setting [%s] %s",
				       ini->v[i].section, ini->v[i].key);
	return 0;
}

char *fl_ini_format(const struct fl_ini *ini)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	const char *cur = NULL;

	if (!f)
		abort();
	for (size_t i = 0; i < ini->n; i++) {
		const struct fl_ini_entry *e = &ini->v[i];

		if (!cur || strcmp(cur, e->section) != 0) {
			if (e->section[0] || cur)
				fprintf(f, "%s[%s]\n", cur ? "\n" : "",
					e->section);
			cur = e->section;
		}
		/* "k = ;x" would read back as an empty value (an inline
		 * comment), and " = " may not fit where "=" did */
		fprintf(f,
			e->value[0] == ';' ||
				strlen(e->key) + 3 + strlen(e->value) >
				    FL_INI_MAX_LINE
			    ? "%s=%s\n"
			    : "%s = %s\n",
			e->key, e->value);
	}
	fclose(f);
	return out;
}

int fl_ini_save(const struct fl_ini *ini, const char *path, mode_t mode,
		struct fl_error *err)
{
	char *text = fl_ini_format(ini);
	int rc = fl_write_atomic_str(path, text, mode, err);

	fl_free_secret(text);
	return rc;
}
