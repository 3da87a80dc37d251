/* SPDX-License-Identifier: MIT */
/*
 * common/json: size caps, malformed and ambiguous documents, typed
 * getters with their limits, and a save/load round trip on real files.
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

#include "fsutil.h"
#include "json.h"
#include "util.h"

/* Parse a NUL-terminated literal that must be accepted. */
static json_t *parse_ok(const char *s)
{
	struct fl_error err = {0};
	json_t *j = NULL;

	assert_int_equal(fl_json_parse(s, strlen(s), 4096, &j, &err), 0);
	assert_non_null(j);
	return j;
}

static void test_parse_caps(void **state)
{
	const char *doc = "{\"a\": [1, 2, 3]}";
	size_t len = strlen(doc);
	struct fl_error err = {0};
	json_t *sentinel = json_true(), *j = sentinel;

	/* exactly at the cap is fine, one byte over is a limit error */
	assert_int_equal(fl_json_parse(doc, len, len, &j, &err), 0);
	assert_true(json_is_object(j));
	json_decref(j);
	j = sentinel;
	assert_int_equal(fl_json_parse(doc, len, len - 1, &j, &err),
			 FL_ELIMIT);
	assert_int_equal(err.code, FL_ELIMIT);
	assert_ptr_equal(j, sentinel);
	/* the cap is checked before parsing: junk over the cap is ELIMIT */
	fl_error_clear(&err);
	assert_int_equal(fl_json_parse("{{{{{{", 6, 5, &j, &err), FL_ELIMIT);
	assert_ptr_equal(j, sentinel);
}

/* @len bytes, not a C string: the bytes after @len are never read. */
static void test_parse_not_terminated(void **state)
{
	char buf[] = {'[', '1', ']', 'x', 'x'};
	json_t *j = NULL;

	assert_int_equal(fl_json_parse(buf, 3, 3, &j, NULL), 0);
	assert_int_equal(json_array_size(j), 1);
	json_decref(j);
	assert_int_equal(fl_json_parse(buf, 4, 4, &j, NULL), FL_EPARSE);
}

static void test_parse_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		" ",
		"{",
		"{\"a\":}",
		"{\"a\":1,}",
		"[1,]",
		"{'a':1}",
		"{\"a\":1} x",
		"{\"a\":1}{}",
		"[\"\\u0000\"]",		/* NUL inside a string */
		"[\"\xff\xfe\"]",		/* not UTF-8 */
		"[1e99999]",
		"[99999999999999999999999]",	/* integer overflow */
		"{\"a\":NaN}",
		"[01]",
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		struct fl_error err = {0};
		json_t *j = NULL;

		assert_int_equal(
			fl_json_parse(bad[i], strlen(bad[i]), 4096, &j, &err),
			FL_EPARSE);
		assert_int_equal(err.code, FL_EPARSE);
		assert_null(j);
	}
}

static void test_parse_duplicates_and_scalars(void **state)
{
	static const char *const bad[] = {
		"{\"a\":1,\"a\":2}",
		"{\"a\":1,\"b\":{\"c\":1,\"c\":1}}",
		"[{\"x\":true,\"x\":false}]",
		/* the top level must be an object or an array */
		"1",
		"\"text\"",
		"null",
		"true",
		"1.5",
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		struct fl_error err = {0};
		json_t *j = NULL;

		assert_int_equal(
			fl_json_parse(bad[i], strlen(bad[i]), 4096, &j, &err),
			FL_EPARSE);
		assert_int_equal(err.code, FL_EPARSE);
		assert_null(j);
	}
	json_decref(parse_ok("[]"));
	json_decref(parse_ok(" {} "));
	json_decref(parse_ok("{\"a\":1,\"b\":{\"a\":1}}"));
}

/* Nesting far deeper than any real document fails cleanly. */
static void test_parse_deep_nesting(void **state)
{
	size_t depth = 100000;
	char *buf = fl_xmalloc(2 * depth);
	json_t *j = NULL;

	memset(buf, '[', depth);
	memset(buf + depth, ']', depth);
	assert_int_equal(fl_json_parse(buf, 2 * depth, 2 * depth, &j, NULL),
			 FL_EPARSE);
	assert_null(j);
	free(buf);
}

static void test_require_object(void **state)
{
	json_t *o = json_object(), *a = json_array();
	struct fl_error err = {0};

	assert_int_equal(fl_json_require_object(o, "body", &err), 0);
	assert_int_equal(fl_json_require_object(a, "body", &err), FL_EPARSE);
	assert_int_equal(err.code, FL_EPARSE);
	assert_int_equal(fl_json_require_object(NULL, "body", NULL),
			 FL_EPARSE);
	json_decref(o);
	json_decref(a);
}

static void test_str(void **state)
{
	json_t *o = parse_ok("{\"name\":\"gw-01\",\"n\":5,\"e\":\"\","
			     "\"nul\":null,\"t\":true,\"a\":[\"x\"],"
			     "\"u\":\"h\\u00e9\"}");
	const char *sentinel = "unchanged", *s = sentinel;
	static const char *const bad[] = {"missing", "n", "e", "nul", "t",
					  "a"};
	struct fl_error err = {0};

	assert_int_equal(fl_json_str(o, "name", 0, &s, &err), 0);
	assert_string_equal(s, "gw-01");
	/* the cap is inclusive and counts bytes */
	assert_int_equal(fl_json_str(o, "name", 5, &s, &err), 0);
	assert_int_equal(fl_json_str(o, "u", 3, &s, &err), 0);
	assert_int_equal(strlen(s), 3);
	s = sentinel;
	assert_int_equal(fl_json_str(o, "name", 4, &s, &err), FL_ELIMIT);
	assert_int_equal(err.code, FL_ELIMIT);
	assert_ptr_equal(s, sentinel);
	assert_int_equal(fl_json_str(o, "u", 2, &s, NULL), FL_ELIMIT);
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		fl_error_clear(&err);
		assert_int_equal(fl_json_str(o, bad[i], 0, &s, &err),
				 FL_EPARSE);
		assert_int_equal(err.code, FL_EPARSE);
		assert_ptr_equal(s, sentinel);
	}
	/* not an object at all */
	assert_int_equal(fl_json_str(NULL, "name", 0, &s, NULL), FL_EPARSE);
	json_decref(o);
}

/* A string with an embedded NUL (built in memory: the parser refuses
 * \u0000) must not be handed out as a shorter C string. */
static void test_str_embedded_nul(void **state)
{
	json_t *o = json_object();
	const char *s = NULL;
	struct fl_error err = {0};

	json_object_set_new(o, "id", json_stringn("gw\0evil", 7));
	assert_int_equal(fl_json_str(o, "id", 0, &s, &err), FL_EPARSE);
	assert_int_equal(err.code, FL_EPARSE);
	assert_null(s);
	assert_int_equal(fl_json_str_opt(o, "id", 0, &s, NULL), FL_EPARSE);
	assert_null(s);
	json_decref(o);
}

static void test_str_opt(void **state)
{
	json_t *o = parse_ok("{\"a\":\"x\",\"nul\":null,\"e\":\"\","
			     "\"n\":1,\"long\":\"abcdef\"}");
	const char *s = "unchanged";

	assert_int_equal(fl_json_str_opt(o, "a", 0, &s, NULL), 0);
	assert_string_equal(s, "x");
	assert_int_equal(fl_json_str_opt(o, "missing", 0, &s, NULL), 0);
	assert_null(s);
	s = "unchanged";
	assert_int_equal(fl_json_str_opt(o, "nul", 0, &s, NULL), 0);
	assert_null(s);
	s = "unchanged";
	assert_int_equal(fl_json_str_opt(o, "e", 0, &s, NULL), FL_EPARSE);
	assert_int_equal(fl_json_str_opt(o, "n", 0, &s, NULL), FL_EPARSE);
	assert_int_equal(fl_json_str_opt(o, "long", 5, &s, NULL), FL_ELIMIT);
	assert_string_equal(s, "unchanged");
	json_decref(o);
}

static void test_int(void **state)
{
	json_t *o = parse_ok("{\"z\":0,\"neg\":-5,\"big\":9223372036854775807,"
			     "\"small\":-9223372036854775808,\"r\":1.0,"
			     "\"s\":\"1\",\"b\":true,\"nul\":null}");
	static const char *const bad[] = {"r", "s", "b", "nul", "missing"};
	struct fl_error err = {0};
	int64_t v = 77;

	assert_int_equal(fl_json_int(o, "z", 0, 0, &v, &err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(fl_json_int(o, "neg", -5, -5, &v, &err), 0);
	assert_int_equal(v, -5);
	assert_int_equal(fl_json_int(o, "big", 0, INT64_MAX, &v, &err), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(fl_json_int(o, "small", INT64_MIN, 0, &v, &err), 0);
	assert_true(v == INT64_MIN);

	v = 77;
	assert_int_equal(fl_json_int(o, "neg", -4, 10, &v, &err), FL_EPARSE);
	assert_int_equal(err.code, FL_EPARSE);
	assert_int_equal(fl_json_int(o, "z", 1, 10, &v, NULL), FL_EPARSE);
	assert_int_equal(fl_json_int(o, "big", 0, INT64_MAX - 1, &v, NULL),
			 FL_EPARSE);
	assert_int_equal(fl_json_int(o, "small", INT64_MIN + 1, 0, &v, NULL),
			 FL_EPARSE);
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++)
		assert_int_equal(fl_json_int(o, bad[i], INT64_MIN, INT64_MAX,
					     &v, NULL),
				 FL_EPARSE);
	assert_int_equal(v, 77);
	json_decref(o);
}

static void test_bool(void **state)
{
	json_t *o = parse_ok("{\"t\":true,\"f\":false,\"one\":1,"
			     "\"s\":\"true\",\"nul\":null}");
	static const char *const bad[] = {"one", "s", "nul", "missing"};
	bool v = false;

	assert_int_equal(fl_json_bool(o, "t", &v, NULL), 0);
	assert_true(v);
	assert_int_equal(fl_json_bool(o, "f", &v, NULL), 0);
	assert_false(v);
	v = true;
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		struct fl_error err = {0};

		assert_int_equal(fl_json_bool(o, bad[i], &v, &err), FL_EPARSE);
		assert_int_equal(err.code, FL_EPARSE);
	}
	assert_true(v);
	json_decref(o);
}

static void test_array(void **state)
{
	json_t *o = parse_ok("{\"a\":[1,2,3],\"e\":[],\"o\":{},\"s\":\"x\"}");
	json_t *sentinel = json_null(), *a = sentinel;
	struct fl_error err = {0};

	assert_int_equal(fl_json_array(o, "a", 3, &a, &err), 0);
	assert_int_equal(json_array_size(a), 3);
	assert_ptr_equal(a, json_object_get(o, "a")); /* borrowed */
	assert_int_equal(fl_json_array(o, "e", 0, &a, &err), 0);
	assert_int_equal(json_array_size(a), 0);

	a = sentinel;
	assert_int_equal(fl_json_array(o, "a", 2, &a, &err), FL_ELIMIT);
	assert_int_equal(err.code, FL_ELIMIT);
	assert_int_equal(fl_json_array(o, "o", 10, &a, NULL), FL_EPARSE);
	assert_int_equal(fl_json_array(o, "s", 10, &a, NULL), FL_EPARSE);
	assert_int_equal(fl_json_array(o, "missing", 10, &a, NULL),
			 FL_EPARSE);
	assert_ptr_equal(a, sentinel);
	json_decref(o);
}

static void test_dumps(void **state)
{
	json_t *o = parse_ok("{ \"b\" : [ 1 , 2 ] , \"a\" : \"x\" }");
	json_t *s = json_string("q\"");
	char *d;

	d = fl_json_dumps(o);
	assert_string_equal(d, "{\"b\":[1,2],\"a\":\"x\"}");
	free(d);
	d = fl_json_dumps(s);
	assert_string_equal(d, "\"q\\\"\"");
	free(d);
	json_decref(o);
	json_decref(s);
}

static void test_save_load(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *path = fl_path_join(f->dir, "doc.json");
	json_t *o = parse_ok("{\"name\":\"gw-01\",\"list\":[1,\"two\",null],"
			     "\"nested\":{\"t\":true,\"n\":-3},"
			     "\"u\":\"h\\u00e9 \\\"q\\\" \\n\"}");
	json_t *back = NULL;
	struct fl_error err = {0};
	struct stat st;
	char *text;
	size_t len;

	assert_int_equal(fl_json_save_file(o, path, 0640, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(fl_read_file(path, 1 << 20, &text, &len, &err), 0);
	assert_true(len > 0 && text[len - 1] == '\n');
	free(text);

	assert_int_equal(fl_json_load_file(path, 1 << 20, &back, &err), 0);
	assert_true(json_equal(o, back));
	json_decref(back);
	back = NULL;

	/* the load cap applies to the file */
	assert_int_equal(fl_json_load_file(path, 10, &back, &err), FL_ELIMIT);
	assert_int_equal(err.code, FL_ELIMIT);
	assert_null(back);
	json_decref(o);
	free(path);
}

static void test_load_errors(void **state)
{
	struct tmpdir_fixture *f = *state;
	char *missing = fl_path_join(f->dir, "nope.json");
	char *bad = fl_path_join(f->dir, "bad.json");
	char *dup = fl_path_join(f->dir, "dup.json");
	char *nodir = fl_path_join(f->dir, "no/such/dir.json");
	struct fl_error err = {0};
	json_t *j = NULL, *o = json_object();

	assert_int_equal(fl_json_load_file(missing, 4096, &j, &err),
			 FL_ENOTFOUND);
	assert_int_equal(err.code, FL_ENOTFOUND);
	assert_int_equal(fl_write_atomic_str(bad, "{\"a\":", 0600, NULL), 0);
	fl_error_clear(&err);
	assert_int_equal(fl_json_load_file(bad, 4096, &j, &err), FL_EPARSE);
	assert_int_equal(err.code, FL_EPARSE);
	assert_int_equal(
		fl_write_atomic_str(dup, "{\"a\":1,\"a\":1}", 0600, NULL), 0);
	assert_int_equal(fl_json_load_file(dup, 4096, &j, NULL), FL_EPARSE);
	assert_null(j);

	/* saving into a directory that does not exist fails, creates nothing */
	fl_error_clear(&err);
	assert_int_equal(fl_json_save_file(o, nodir, 0600, &err), FL_EIO);
	assert_int_equal(err.code, FL_EIO);
	assert_false(fl_path_exists(nodir));
	json_decref(o);
	free(missing);
	free(bad);
	free(dup);
	free(nodir);
}

/* Sequence numbers: optional, capped, each 1 .. 2^53. */
static void test_seqs(void **state)
{
	static const char *const bad[] = {
	    "{\"s\": 1}",	    "{\"s\": [0]}",	 "{\"s\": [\"1\"]}",
	    "{\"s\": [1.5]}", "{\"s\": [9007199254740993]}",
	};
	int64_t out[3];
	size_t n = 9;
	json_t *j;

	(void)state;
	j = json_loads("{\"s\": [1, 9007199254740992]}", 0, NULL);
	assert_int_equal(fl_json_seqs(j, "s", 3, out, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[1], FL_JSON_SEQ_MAX);
	assert_int_equal(fl_json_seqs(j, "t", 3, out, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_int_equal(fl_json_seqs(j, "s", 1, out, &n, NULL), FL_ELIMIT);
	json_decref(j);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = json_loads(bad[i], 0, NULL);
		assert_int_equal(fl_json_seqs(j, "s", 3, out, &n, NULL),
				 FL_EPARSE);
		json_decref(j);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_caps),
		cmocka_unit_test(test_seqs),
		cmocka_unit_test(test_parse_not_terminated),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_duplicates_and_scalars),
		cmocka_unit_test(test_parse_deep_nesting),
		cmocka_unit_test(test_require_object),
		cmocka_unit_test(test_str),
		cmocka_unit_test(test_str_embedded_nul),
		cmocka_unit_test(test_str_opt),
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_array),
		cmocka_unit_test(test_dumps),
		cmocka_unit_test_setup_teardown(test_save_load, tmpdir_setup,
						tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_load_errors, tmpdir_setup,
						tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
