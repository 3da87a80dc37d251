/* SPDX-License-Identifier: MIT */
/*
 * common/config: INI parsing with its caps, editing that keeps sections
 * together, typed getters, schema checks, values that could not be read
 * back, and save/load round trips on real files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "config.h"
#include "fsutil.h"
#include "util.h"

static struct fl_ini *parse_ok(const char *text)
{
	struct fl_error err = {0};
	struct fl_ini *ini = NULL;

	assert_int_equal(fl_ini_parse(text, &ini, &err), 0);
	assert_non_null(ini);
	return ini;
}

/* Entry @i is section/key = value. */
static void assert_entry(const struct fl_ini *ini, size_t i,
			 const char *section, const char *key,
			 const char *value)
{
	assert_true(i < ini->n);
	assert_string_equal(ini->v[i].section, section);
	assert_string_equal(ini->v[i].key, key);
	assert_string_equal(ini->v[i].value, value);
}

/* Every section's entries are contiguous in the list. */
static void assert_sections_together(const struct fl_ini *ini)
{
	for (size_t i = 1; i < ini->n; i++) {
		if (strcmp(ini->v[i].section, ini->v[i - 1].section) == 0)
			continue;
		for (size_t j = 0; j + 1 < i; j++)
			assert_string_not_equal(ini->v[j].section,
						ini->v[i].section);
	}
}

static void test_parse(void **state)
{
	struct fl_ini *ini = parse_ok("top = 1\n"
				      "; comment\n"
				      "# another\n"
				      "\n"
				      "[server]\n"
				      "url = https://127.0.0.1:8443\n"
				      "ca=  /etc/fleet/ca.pem  \n"
				      "empty =\n"
				      "colon: yes\n"
				      "[agent]\n"
				      "id = gw-01 ; inline comment\n"
				      "semi = a;b\n");

	assert_int_equal(ini->n, 7);
	assert_entry(ini, 0, "", "top", "1");
	assert_entry(ini, 1, "server", "url", "https://127.0.0.1:8443");
	assert_entry(ini, 2, "server", "ca", "/etc/fleet/ca.pem");
	assert_entry(ini, 3, "server", "empty", "");
	assert_entry(ini, 4, "server", "colon", "yes");
	assert_entry(ini, 5, "agent", "id", "gw-01");
	assert_entry(ini, 6, "agent", "semi", "a;b");
	assert_string_equal(fl_ini_get(ini, "agent", "id"), "gw-01");
	assert_null(fl_ini_get(ini, "agent", "url"));
	assert_null(fl_ini_get(ini, "nosuch", "id"));
	assert_null(fl_ini_get(NULL, "agent", "id"));
	fl_ini_free(ini);

	ini = parse_ok("");
	assert_int_equal(ini->n, 0);
	fl_ini_free(ini);
	fl_ini_free(NULL);
}

/* The error names the line: the number is the data under test. */
static void test_syntax_error_line(void **state)
{
	static const char *const bad[] = {
		"a = 1\n[ok]\nb = 2\n\n\n\n\n\n\n\n\nno equals sign here\n",
		"a = 1\n[ok]\nb = 2\n\n\n\n\n\n\n\n\n[unclosed\n",
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		struct fl_error err = {0};
		struct fl_ini *ini = NULL;

		assert_int_equal(fl_ini_parse(bad[i], &ini, &err), FL_EPARSE);
		assert_int_equal(err.code, FL_EPARSE);
		assert_null(ini);
		assert_non_null(strstr(err.msg, "12"));
	}
}

static char *line_of(size_t len, const char *head)
{
	size_t h = strlen(head);
	char *s = fl_xmalloc(len + 2);

	memcpy(s, head, h);
	memset(s + h, 'v', len - h);
	s[len] = '\n';
	s[len + 1] = '\0';
	return s;
}

static void test_line_cap(void **state)
{
	char *ok = line_of(FL_INI_MAX_LINE, "k = ");
	char *over = line_of(FL_INI_MAX_LINE + 1, "k = ");
	/* libinih would split this one into "k = vvv" and "x = 1" */
	char *split = line_of(FL_INI_MAX_LINE + 6, "k = ");
	char *text;
	struct fl_error err = {0};
	struct fl_ini *ini = NULL;

	ini = parse_ok(ok);
	assert_int_equal(ini->n, 1);
	assert_int_equal(strlen(fl_ini_get(ini, "", "k")),
			 FL_INI_MAX_LINE - 4);
	fl_ini_free(ini);
	ini = NULL;

	assert_int_equal(fl_ini_parse(over, &ini, &err), FL_ELIMIT);
	assert_int_equal(err.code, FL_ELIMIT);
	assert_null(ini);

	memcpy(split + FL_INI_MAX_LINE - 1, "x = 1", 5);
	text = fl_xasprintf("[s]\na = 1\n%s", split);
	assert_int_equal(fl_ini_parse(text, &ini, NULL), FL_ELIMIT);
	assert_null(ini);
	free(text);

	/* a long last line without a newline counts too */
	over[FL_INI_MAX_LINE + 1] = '\0';
	text = fl_xasprintf("a = 1\n%s", over);
	assert_int_equal(fl_ini_parse(text, &ini, NULL), FL_ELIMIT);
	free(text);
	free(ok);
	free(over);
	free(split);
}

/* What the format writes, the parser reads back the same (issue 18:
 * fuzz_config's round trip).  Each of these texts went wrong once. */
static void assert_round_trip(const char *text)
{
	struct fl_ini *ini = parse_ok(text), *again;
	char *out = fl_ini_format(ini);

	again = parse_ok(out);
	assert_int_equal(again->n, ini->n);
	for (size_t i = 0; i < ini->n; i++)
		assert_entry(again, i, ini->v[i].section, ini->v[i].key,
			     ini->v[i].value);
	fl_ini_free(again);
	fl_ini_free(ini);
	free(out);
}

static void test_format_reads_back(void **state)
{
	/* 199 bytes as "k=v..." do not fit as "k = v..." */
	char *full = line_of(FL_INI_MAX_LINE, "k=");
	struct fl_ini *ini;

	/* "k = ;x" would be an empty value and an inline comment */
	ini = parse_ok("[s]\nk=;x\n");
	assert_entry(ini, 0, "s", "k", ";x");
	fl_ini_free(ini);
	assert_round_trip("[s]\nk=;x\nsemi = a;b\n");
	assert_round_trip(full);
	assert_round_trip("top = 1\n[s]\na = 2\n[]\nb = 3\n");
	free(full);
}

/* Text libinih would read as something else is refused, naming the
 * line: indentation (a continuation of the previous value), an empty
 * key, a section name it would cut short or text it would drop after
 * it, a byte order mark it would skip once written back first. */
static void test_refused_syntax(void **state)
{
	static const struct {
		const char *text;
		int code;
		const char *where;
	} bad[] = {
	    {"[device]\nid = a\n    state_dir = /x\n", FL_EPARSE, "line 3"},
	    {"[device]\nid = a\n\tstate_dir = /x\n", FL_EPARSE, "line 3"},
	    {"[s]\na = 1\n= v\n", FL_EPARSE, "line 3"},
	    {"[s]\na = 1\n: v\n", FL_EPARSE, "line 3"},
	    {"[s] x = 1\na = 1\n", FL_EPARSE, "line 1"},
	    {"[s]\na = 1\n\xEF\xBB\xBFk = v\n", FL_EPARSE, "line 3"},
	    {"\xEF\xBB\xBF\xEF\xBB\xBFk = v\n", FL_EPARSE, "line 1"},
	    {"[s]\na = 1\n[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]"
	     "\n",
	     FL_ELIMIT, "line 3"},
	};
	struct fl_ini *ini;

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		struct fl_error err = {0};

		ini = NULL;
		assert_int_equal(fl_ini_parse(bad[i].text, &ini, &err),
				 bad[i].code);
		assert_null(ini);
		assert_non_null(strstr(err.msg, bad[i].where));
	}
	/* still fine: indented comments, a comment after a section, a BOM
	 * first, a section name of 49 bytes */
	ini = parse_ok("\xEF\xBB\xBF[s] ; the first\n  ; note\nk = v\n"
		       "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n"
		       "x = 1\n");
	assert_entry(ini, 0, "s", "k", "v");
	assert_entry(ini, 1, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		     "x", "1");
	fl_ini_free(ini);
}

static char *entries(size_t n)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	fputs("[s]\n", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "k%zu = %zu\n", i, i);
	fclose(f);
	return out;
}

static void test_entry_cap(void **state)
{
	char *max = entries(FL_INI_MAX_ENTRIES);
	char *over = entries(FL_INI_MAX_ENTRIES + 1);
	char *far = entries(3 * FL_INI_MAX_ENTRIES);
	struct fl_error err = {0};
	struct fl_ini *ini = NULL;

	ini = parse_ok(max);
	assert_int_equal(ini->n, FL_INI_MAX_ENTRIES);
	assert_string_equal(fl_ini_get(ini, "s", "k999"), "999");
	fl_ini_free(ini);
	ini = NULL;

	assert_int_equal(fl_ini_parse(over, &ini, &err), FL_ELIMIT);
	assert_int_equal(err.code, FL_ELIMIT);
	assert_null(ini);
	assert_int_equal(fl_ini_parse(far, &ini, NULL), FL_ELIMIT);
	assert_null(ini);
	free(max);
	free(over);
	free(far);
}

static void test_byte_cap(void **state)
{
	size_t n = FL_INI_MAX_BYTES + 1;
	char *text = fl_xmalloc(n + 64);
	struct fl_ini *ini = NULL;

	/* comment lines: short lines, few entries, too many bytes */
	for (size_t i = 0; i < n; i += 64) {
		memset(text + i, ';', 64);
		text[i + 63] = '\n';
	}
	text[n] = '\0';
	assert_int_equal(fl_ini_parse(text, &ini, NULL), FL_ELIMIT);
	assert_null(ini);
	/* exactly the cap is fine */
	text[FL_INI_MAX_BYTES] = '\0';
	ini = parse_ok(text);
	assert_int_equal(ini->n, 0);
	fl_ini_free(ini);
	free(text);
}

static void test_last_value_wins(void **state)
{
	struct fl_ini *ini = parse_ok("[a]\nk = 1\n[b]\nk = b\n[a]\nk = 2\n");

	assert_string_equal(fl_ini_get(ini, "a", "k"), "2");
	assert_string_equal(fl_ini_get(ini, "b", "k"), "b");
	/* set replaces every copy */
	assert_int_equal(fl_ini_set(ini, "a", "k", "3", NULL), 0);
	assert_string_equal(fl_ini_get(ini, "a", "k"), "3");
	assert_int_equal(ini->n, 2);
	fl_ini_free(ini);
}

static void test_set_keeps_sections_together(void **state)
{
	struct fl_ini *ini = parse_ok("g = 0\n[a]\nx = 1\ny = 2\n"
				      "[b]\nz = 3\n[c]\nw = 4\n");
	struct fl_error err = {0};

	/* new key of an existing section: after that section's last key */
	assert_int_equal(fl_ini_set(ini, "a", "new", "n", &err), 0);
	assert_entry(ini, 3, "a", "new", "n");
	assert_entry(ini, 4, "b", "z", "3");
	/* replacing moves the key to its section's end, not elsewhere */
	assert_int_equal(fl_ini_set(ini, "a", "x", "10", &err), 0);
	assert_entry(ini, 1, "a", "y", "2");
	assert_entry(ini, 3, "a", "x", "10");
	assert_entry(ini, 4, "b", "z", "3");
	/* the top-level section too */
	assert_int_equal(fl_ini_set(ini, "", "g2", "x", &err), 0);
	assert_entry(ini, 1, "", "g2", "x");
	/* a new section goes at the end */
	assert_int_equal(fl_ini_set(ini, "d", "k", "v", &err), 0);
	assert_entry(ini, ini->n - 1, "d", "k", "v");
	assert_int_equal(fl_ini_set(ini, "c", "w2", "5", &err), 0);
	assert_entry(ini, ini->n - 2, "c", "w2", "5");
	assert_sections_together(ini);
	assert_int_equal(ini->n, 9);

	/* delete */
	assert_int_equal(fl_ini_set(ini, "a", "y", NULL, &err), 0);
	assert_null(fl_ini_get(ini, "a", "y"));
	assert_int_equal(fl_ini_set(ini, "a", "nosuch", NULL, &err), 0);
	assert_int_equal(ini->n, 8);
	assert_int_equal(err.code, 0);
	assert_sections_together(ini);
	fl_ini_free(ini);
}

static void test_remove_section(void **state)
{
	struct fl_ini *ini = parse_ok("[a]\nx = 1\n[b]\ny = 2\n[a]\nz = 3\n"
				      "[ab]\nq = 4\n");

	fl_ini_remove_section(ini, "a");
	assert_int_equal(ini->n, 2);
	assert_entry(ini, 0, "b", "y", "2");
	assert_entry(ini, 1, "ab", "q", "4");
	fl_ini_remove_section(ini, "nosuch");
	assert_int_equal(ini->n, 2);
	fl_ini_remove_section(ini, "b");
	fl_ini_remove_section(ini, "ab");
	assert_int_equal(ini->n, 0);
	fl_ini_free(ini);
}

static void test_get_uint(void **state)
{
	struct fl_ini *ini = parse_ok("[s]\nn = 42\nzero = 0\nneg = -1\n"
				      "junk = 12x\nempty =\nbig = "
				      "99999999999999999999999\n");
	static const char *const bad[] = {"neg", "junk", "empty", "big"};
	struct fl_error err = {0};
	uint64_t v = 7;

	assert_int_equal(fl_ini_get_uint(ini, "s", "n", 42, 1, &v, &err), 0);
	assert_int_equal(v, 42);
	assert_int_equal(fl_ini_get_uint(ini, "s", "zero", 5, 1, &v, &err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(fl_ini_get_uint(ini, "s", "nope", 5, 3, &v, &err), 0);
	assert_int_equal(v, 3);

	v = 7;
	assert_int_equal(fl_ini_get_uint(ini, "s", "n", 41, 1, &v, &err),
			 FL_EPARSE);
	assert_int_equal(err.code, FL_EPARSE);
	assert_int_equal(v, 7);
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		fl_error_clear(&err);
		assert_int_equal(fl_ini_get_uint(ini, "s", bad[i], UINT64_MAX,
						 1, &v, &err),
				 FL_EPARSE);
		assert_int_equal(err.code, FL_EPARSE);
		assert_int_equal(v, 7);
	}
	fl_ini_free(ini);
}

static void test_get_bool(void **state)
{
	static const char *const yes[] = {"true", "yes", "1", "on"};
	static const char *const no[] = {"false", "no", "0", "off"};
	static const char *const bad[] = {"", "2", "maybe", "True ", "y"};
	struct fl_ini *ini = fl_ini_new();
	struct fl_error err = {0};
	bool v;

	for (size_t i = 0; i < FL_ARRAY_SIZE(yes); i++) {
		assert_int_equal(fl_ini_set(ini, "s", "k", yes[i], NULL), 0);
		v = false;
		assert_int_equal(fl_ini_get_bool(ini, "s", "k", false, &v,
						 NULL),
				 0);
		assert_true(v);
		assert_int_equal(fl_ini_set(ini, "s", "k", no[i], NULL), 0);
		assert_int_equal(fl_ini_get_bool(ini, "s", "k", true, &v,
						 NULL),
				 0);
		assert_false(v);
	}
	assert_int_equal(fl_ini_get_bool(ini, "s", "absent", true, &v, NULL),
			 0);
	assert_true(v);
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		struct fl_ini *b = fl_ini_new();

		/* written directly: "True " could not be set */
		b->v = fl_xcalloc(1, sizeof(*b->v));
		b->cap = b->n = 1;
		b->v[0].section = fl_xstrdup("s");
		b->v[0].key = fl_xstrdup("k");
		b->v[0].value = fl_xstrdup(bad[i]);
		v = true;
		fl_error_clear(&err);
		assert_int_equal(fl_ini_get_bool(b, "s", "k", true, &v, &err),
				 FL_EPARSE);
		assert_int_equal(err.code, FL_EPARSE);
		assert_true(v);
		fl_ini_free(b);
	}
	fl_ini_free(ini);
}

static void test_check_keys(void **state)
{
	static const struct fl_ini_key allowed[] = {
		{"", "log"},	     {"server", "url"}, {"server", "ca"},
		{"backend *", "id"}, {"dev*", "x"},	{NULL, NULL},
	};
	struct fl_ini *ini = parse_ok("log = info\n[server]\nurl = u\n"
				      "ca = c\n[backend a]\nid = 1\n"
				      "[backend b]\nid = 2\n[dev]\nx = 1\n"
				      "[device]\nx = 2\n");
	static const char *const bad[] = {
		"[server]\nurl = u\ntoken = t\n", /* unknown key */
		"[serverx]\nurl = u\n",	   /* exact section only */
		"[Server]\nurl = u\n",
		"url = u\n",		   /* key in the wrong section */
		"[backend]\nid = 1\n",	   /* prefix is "backend " */
		"[backend a]\nname = 1\n", /* wildcard: keys still checked */
		"[server]\nURL = u\n",
	};
	struct fl_error err = {0};

	assert_int_equal(fl_ini_check_keys(ini, allowed, &err), 0);
	fl_ini_free(ini);
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		ini = parse_ok(bad[i]);
		fl_error_clear(&err);
		assert_int_equal(fl_ini_check_keys(ini, allowed, &err),
				 FL_EPARSE);
		assert_int_equal(err.code, FL_EPARSE);
		fl_ini_free(ini);
	}
	ini = fl_ini_new();
	assert_int_equal(fl_ini_check_keys(ini, allowed, NULL), 0);
	fl_ini_free(ini);
}

/* What fl_ini_set refuses: what would not read back the same. */
static void test_set_refuses_unwritable(void **state)
{
	static const struct {
		const char *section, *key, *value;
	} bad[] = {
		{"s", "k", "two\nlines"},
		{"s", "k", "cr\rhere"},
		{"s", "k", "tab\there"},
		{"s", "k", "bell\a"},
		{"s", "k", "del\x7f"},
		{"s", "k", "value ; comment"},
		{"s", "k", " leading"},
		{"s", "k", "trailing "},
		{"s", "", "v"},
		{"s", "a=b", "v"},
		{"s", "a:b", "v"},
		{"s", "[k", "v"},
		{"s", "k]", "v"},
		{"s", ";k", "v"},
		{"s", "#k", "v"},
		{"s", " k", "v"},
		{"s", "k ", "v"},
		{"s", "k\n", "v"},
		{"s]", "k", "v"},
		{"s\n", "k", "v"},
		{"s\nx = 1\n[t", "k", "v"},
		{"s", "k", ";comment"},   /* "k = ;comment" reads back "" */
		{"a ;b", "k", "v"},	  /* "[a ;b]" is a syntax error */
		/* libinih cuts section names at 49 bytes */
		{"section-name-of-fifty-bytes-xxxxxxxxxxxxxxxxxxxxxx", "k",
		 "v"},
		/* "k = " + 196 bytes is one byte over the line cap */
		{"s", "k",
		 "0123456789012345678901234567890123456789012345678901234567890"
		 "1234567890123456789012345678901234567890123456789012345678901"
		 "2345678901234567890123456789012345678901234567890123456789012"
		 "3456789012345"},
	};
	struct fl_ini *ini = parse_ok("[s]\nk = old\n");

	assert_int_equal(strlen(bad[FL_ARRAY_SIZE(bad) - 2].section), 50);
	assert_int_equal(strlen(bad[FL_ARRAY_SIZE(bad) - 1].value), 196);
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		struct fl_error err = {0};

		assert_int_equal(fl_ini_set(ini, bad[i].section, bad[i].key,
					    bad[i].value, &err),
				 FL_EINVAL);
		assert_int_equal(err.code, FL_EINVAL);
		/* the list is unchanged */
		assert_int_equal(ini->n, 1);
		assert_entry(ini, 0, "s", "k", "old");
	}
	fl_ini_free(ini);
}

/* Values that look odd but do read back: allowed. */
static void test_set_accepts_odd_values(void **state)
{
	static const char *const odd[] = {
		"",	  "a;b",     "(;)",    "#start", "a = b",	"[x]",
		"a:b",	  "\"q\"",   "h\xc3\xa9", "a #b",	"x;",
		"https://h:1/p?q=1;r=2",
	};
	struct fl_ini *ini = fl_ini_new(), *back;
	char *text;

	for (size_t i = 0; i < FL_ARRAY_SIZE(odd); i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%zu", i);
		assert_int_equal(fl_ini_set(ini, "s", key, odd[i], NULL), 0);
	}
	text = fl_ini_format(ini);
	back = parse_ok(text);
	assert_int_equal(back->n, ini->n);
	for (size_t i = 0; i < ini->n; i++)
		assert_entry(back, i, "s", ini->v[i].key, odd[i]);
	free(text);
	fl_ini_free(back);
	fl_ini_free(ini);
}

static void test_save_load_round_trip(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *path = fl_path_join(f->dir, "agent.conf");
	struct fl_ini *ini = parse_ok("top = 1\n[server]\nurl = https://x\n"
				      "[agent]\nid = gw-01\n[server]\n"
				      "ca = /c.pem\n[empty value]\nk =\n");
	struct fl_ini *back = NULL;
	struct fl_error err = {0};
	struct stat st;

	assert_int_equal(fl_ini_set(ini, "agent", "token", "flt_a-b_c", &err),
			 0);
	assert_int_equal(fl_ini_set(ini, "", "top2", "2", &err), 0);
	assert_int_equal(fl_ini_set(ini, "new", "k", "a;b", &err), 0);
	assert_int_equal(fl_ini_save(ini, path, 0600, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);

	assert_int_equal(fl_ini_load(path, &back, &err), 0);
	assert_int_equal(back->n, ini->n);
	for (size_t i = 0; i < ini->n; i++)
		assert_entry(back, i, ini->v[i].section, ini->v[i].key,
			     ini->v[i].value);
	fl_ini_free(back);

	/* saving again replaces the file and its mode */
	assert_int_equal(fl_ini_set(ini, "agent", "id", "gw-02", &err), 0);
	assert_int_equal(fl_ini_save(ini, path, 0644, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(fl_ini_load(path, &back, &err), 0);
	assert_string_equal(fl_ini_get(back, "agent", "id"), "gw-02");
	fl_ini_free(back);
	fl_ini_free(ini);
	free(path);
}

/* The longest section name and line that fl_ini_set takes read back. */
static void test_set_limits_read_back(void **state)
{
	const char *sec = "section-name-of-49-bytes-xxxxxxxxxxxxxxxxxxxxxxxx";
	char value[FL_INI_MAX_LINE];
	struct fl_ini *ini = fl_ini_new(), *back;
	char *text;

	assert_int_equal(strlen(sec), 49);
	memset(value, 'v', FL_INI_MAX_LINE - 4);
	value[FL_INI_MAX_LINE - 4] = '\0';
	assert_int_equal(fl_ini_set(ini, sec, "k", value, NULL), 0);
	text = fl_ini_format(ini);
	back = parse_ok(text);
	assert_int_equal(back->n, 1);
	assert_entry(back, 0, sec, "k", value);
	free(text);
	fl_ini_free(back);
	fl_ini_free(ini);
}

/* Whatever fl_ini_set accepts, a save/load round trip gives back. */
static void test_set_then_round_trip_long(void **state)
{
	struct fl_ini *ini = fl_ini_new(), *back = NULL;
	char value[512];
	char *text;
	size_t accepted = 0;

	for (size_t len = 150; len < sizeof(value); len += 7) {
		memset(value, 'x', len);
		value[len] = '\0';
		if (fl_ini_set(ini, "s", "k", value, NULL) == 0)
			accepted = len;
	}
	assert_true(accepted > 0);
	text = fl_ini_format(ini);
	assert_int_equal(fl_ini_parse(text, &back, NULL), 0);
	assert_string_equal(fl_ini_get(back, "s", "k"),
			    fl_ini_get(ini, "s", "k"));
	free(text);
	fl_ini_free(back);
	fl_ini_free(ini);
}

static void test_load_errors(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *missing = fl_path_join(f->dir, "nope.conf");
	char *bad = fl_path_join(f->dir, "bad.conf");
	char *nodir = fl_path_join(f->dir, "no/dir/x.conf");
	struct fl_ini *ini = NULL, *empty = fl_ini_new();
	struct fl_error err = {0};

	assert_int_equal(fl_ini_load(missing, &ini, &err), FL_ENOTFOUND);
	assert_int_equal(err.code, FL_ENOTFOUND);
	assert_int_equal(fl_write_atomic_str(bad, "[s]\nbroken\n", 0600, NULL),
			 0);
	fl_error_clear(&err);
	assert_int_equal(fl_ini_load(bad, &ini, &err), FL_EPARSE);
	assert_int_equal(err.code, FL_EPARSE);
	assert_null(ini);
	fl_error_clear(&err);
	assert_int_equal(fl_ini_save(empty, nodir, 0600, &err), FL_EIO);
	assert_int_equal(err.code, FL_EIO);
	fl_ini_free(empty);
	free(missing);
	free(bad);
	free(nodir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_syntax_error_line),
		cmocka_unit_test(test_line_cap),
		cmocka_unit_test(test_format_reads_back),
		cmocka_unit_test(test_refused_syntax),
		cmocka_unit_test(test_entry_cap),
		cmocka_unit_test(test_byte_cap),
		cmocka_unit_test(test_last_value_wins),
		cmocka_unit_test(test_set_keeps_sections_together),
		cmocka_unit_test(test_remove_section),
		cmocka_unit_test(test_get_uint),
		cmocka_unit_test(test_get_bool),
		cmocka_unit_test(test_check_keys),
		cmocka_unit_test(test_set_refuses_unwritable),
		cmocka_unit_test(test_set_accepts_odd_values),
		cmocka_unit_test(test_set_limits_read_back),
		cmocka_unit_test(test_set_then_round_trip_long),
		cmocka_unit_test_setup_teardown(test_save_load_round_trip,
						tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_load_errors, tmpdir_setup,
						tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
