/* SPDX-License-Identifier: MIT */
/*
 * common/util: duration and number parsing with their caps, RFC 3339
 * round trips, hex, random tokens, SHA-256 and fl_strlcpy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

#define TEN_YEARS (10LL * 366 * 86400)

static void test_duration_units(void **state)
{
	static const struct {
		const char *in;
		int64_t want;
	} ok[] = {
		{"90", 90},	    {"90s", 90},	{"15m", 900},
		{"12h", 43200},	    {"30d", 2592000},	{"1d", 86400},
		{"0s", 0},	    {"007m", 420},
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(ok); i++) {
		struct fl_error err = {0};
		int64_t v = -1;

		assert_int_equal(fl_parse_duration(ok[i].in, &v, &err), 0);
		assert_int_equal(v, ok[i].want);
		assert_int_equal(err.code, 0);
	}
}

static void test_duration_caps(void **state)
{
	static const struct {
		const char *in;
		int64_t want; /* -1: refused */
	} cases[] = {
		{"316224000", TEN_YEARS},  {"316224001", -1},
		{"5270400m", TEN_YEARS},   {"5270401m", -1},
		{"87840h", TEN_YEARS},	   {"87841h", -1},
		{"3660d", TEN_YEARS},	   {"3661d", -1},
		{"99999999999999999999d", -1},
		{"18446744073709551615s", -1},
		{"18446744073709551616", -1},
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
		struct fl_error err = {0};
		int64_t v = -7;
		int rc = fl_parse_duration(cases[i].in, &v, &err);

		if (cases[i].want < 0) {
			assert_int_equal(rc, FL_EINVAL);
			assert_int_equal(err.code, FL_EINVAL);
			assert_int_equal(v, -7); /* untouched on failure */
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(v, cases[i].want);
		}
	}
}

static void test_duration_garbage(void **state)
{
	static const char *const bad[] = {
		"",    "s",	"d",	 "-5",	 "+5",	  " 5",	  "5 ",
		"5x",  "5mm",	"1.5h",	 "5D",	 "5M",	  "0x10", "5 m",
		"m5",  "5s5",	"\t5",	 "5\n",
		"1234567890123456789012345678901234567890",
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		struct fl_error err = {0};
		int64_t v = -7;

		assert_int_equal(fl_parse_duration(bad[i], &v, &err),
				 FL_EINVAL);
		assert_int_equal(err.code, FL_EINVAL);
		assert_int_equal(v, -7);
	}
	assert_int_equal(fl_parse_duration(NULL, &(int64_t){0}, NULL),
			 FL_EINVAL);
}

static void test_parse_uint(void **state)
{
	static const char *const bad[] = {
		"",   "-1",  "+1", " 1", "1 ", "1a", "0x1", "1.0",
		"18446744073709551616", "99999999999999999999999",
	};
	struct fl_error err = {0};
	uint64_t v = 0;

	assert_int_equal(fl_parse_uint("0", 10, &v, &err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(fl_parse_uint("42", 42, &v, &err), 0);
	assert_int_equal(v, 42);
	assert_int_equal(fl_parse_uint("0042", 42, &v, &err), 0);
	assert_int_equal(v, 42);
	assert_int_equal(fl_parse_uint("18446744073709551615", UINT64_MAX, &v,
				       &err),
			 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(err.code, 0);

	v = 7;
	assert_int_equal(fl_parse_uint("43", 42, &v, &err), FL_EINVAL);
	assert_int_equal(err.code, FL_EINVAL);
	assert_int_equal(v, 7);
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		fl_error_clear(&err);
		assert_int_equal(fl_parse_uint(bad[i], UINT64_MAX, &v, &err),
				 FL_EINVAL);
		assert_int_equal(err.code, FL_EINVAL);
		assert_int_equal(v, 7);
	}
	assert_int_equal(fl_parse_uint(NULL, 10, &v, NULL), FL_EINVAL);
}

static void test_rfc3339_round_trip(void **state)
{
	static const struct {
		time_t t;
		const char *text;
	} known[] = {
		{0, "1970-01-01T00:00:00Z"},
		{951782400, "2000-02-29T00:00:00Z"},
		{1795664947, "2026-11-26T03:49:07Z"},
		{2147483648LL, "2038-01-19T03:14:08Z"},
		{4102444799LL, "2099-12-31T23:59:59Z"},
		{253402300799LL, "9999-12-31T23:59:59Z"},
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(known); i++) {
		char buf[21];
		time_t t = -1;

		memset(buf, 'x', sizeof(buf));
		fl_time_rfc3339(known[i].t, buf);
		assert_string_equal(buf, known[i].text);
		assert_int_equal(fl_parse_rfc3339(buf, &t, NULL), 0);
		assert_int_equal(t, known[i].t);
	}
	/* every hour of a leap year survives the round trip */
	for (time_t t = 1704067200; t < 1735689600; t += 3599) {
		char buf[21];
		time_t back = 0;

		fl_time_rfc3339(t, buf);
		assert_int_equal(fl_parse_rfc3339(buf, &back, NULL), 0);
		assert_int_equal(back, t);
	}
}

/* Times that do not fit the 20-character form still give a terminated
 * string (the buffer has no room for a five-digit year). */
static void test_rfc3339_out_of_range(void **state)
{
	char buf[21];

	time_t t = 0;

	memset(buf, 'x', sizeof(buf));
	fl_time_rfc3339(253402300800LL, buf); /* year 10000 */
	assert_string_equal(buf, "9999-12-31T23:59:59Z");
	memset(buf, 'x', sizeof(buf));
	fl_time_rfc3339((time_t)INT64_MAX, buf);
	assert_string_equal(buf, "9999-12-31T23:59:59Z");
	memset(buf, 'x', sizeof(buf));
	fl_time_rfc3339((time_t)INT64_MIN, buf);
	assert_string_equal(buf, "0000-01-01T00:00:00Z");
	/* early years keep four digits, and read back */
	fl_time_rfc3339(-61318239053LL, buf);
	assert_string_equal(buf, "0026-11-26T03:49:07Z");
	assert_int_equal(fl_parse_rfc3339(buf, &t, NULL), 0);
	assert_int_equal(t, -61318239053LL);
}

static void test_rfc3339_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"2026-11-26T03:49:07",
		"2026-11-26T03:49:07+01:00",
		"2026-11-26 03:49:07Z",
		"2026-11-26T03:49:07Zx",
		"2026-11-26t03:49:07z",
		"2026-13-01T00:00:00Z",
		"2026-00-10T00:00:00Z",
		"2026-11-26T24:00:00Z",
		"2026-02-30T00:00:00Z", /* no such day */
		"2025-02-29T00:00:00Z", /* not a leap year */
		"2026-04-31T00:00:00Z",
		" 2026-11-26T03:49:07Z",
		"2026-1-5T03:04:05Z",
		"26-11-26T03:49:07Z",
		"yesterday",
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		struct fl_error err = {0};
		time_t t = 12345;

		assert_int_equal(fl_parse_rfc3339(bad[i], &t, &err),
				 FL_EPARSE);
		assert_int_equal(err.code, FL_EPARSE);
		assert_int_equal(t, 12345);
	}
}

static void test_hex(void **state)
{
	static const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80,
					   0xab, 0xcd, 0xef, 0xff};
	char out[2 * sizeof(in) + 2];

	memset(out, 'x', sizeof(out));
	fl_hex(in, sizeof(in), out);
	assert_string_equal(out, "00017f80abcdefff");
	assert_int_equal(out[sizeof(out) - 1], 'x'); /* no overrun */
	fl_hex(in, 0, out);
	assert_string_equal(out, "");
}

static bool is_b64url(const char *s)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz0123456789-_";

	return strspn(s, alpha) == strlen(s);
}

static void test_random_token(void **state)
{
	static const struct {
		size_t nbytes, chars;
	} sizes[] = {{1, 2}, {2, 3}, {3, 4}, {16, 22}, {32, 43}, {64, 86}};
	char *a, *b;

	for (size_t i = 0; i < FL_ARRAY_SIZE(sizes); i++) {
		a = fl_random_token("flt_", sizes[i].nbytes);
		assert_true(fl_startswith(a, "flt_"));
		assert_int_equal(strlen(a), 4 + sizes[i].chars);
		assert_true(is_b64url(a + 4));
		fl_free_secret(a);
	}
	a = fl_random_token("fle_", 32);
	b = fl_random_token("fle_", 32);
	assert_string_not_equal(a, b);
	fl_free_secret(a);
	fl_free_secret(b);

	/* capped at 64 random bytes */
	a = fl_random_token("", 1000);
	assert_int_equal(strlen(a), 86);
	assert_true(is_b64url(a));
	fl_free_secret(a);
}

/* Over many tokens every one of the 64 characters turns up. */
static void test_random_token_alphabet(void **state)
{
	bool seen[256] = {false};
	size_t n = 0;

	for (int i = 0; i < 200; i++) {
		char *t = fl_random_token("", 48);

		for (const char *p = t; *p; p++)
			seen[(unsigned char)*p] = true;
		fl_free_secret(t);
	}
	for (size_t c = 0; c < 256; c++)
		n += seen[c];
	assert_int_equal(n, 64);
	assert_true(seen['-'] && seen['_']);
	assert_false(seen['+'] || seen['/'] || seen['=']);
}

static void test_sha256(void **state)
{
	char out[65];

	fl_sha256_hex("abc", 3, out);
	assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223"
				 "b00361a396177a9cb410ff61f20015ad");
	fl_sha256_hex("", 0, out);
	assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb924"
				 "27ae41e4649b934ca495991b7852b855");
	fl_sha256_hex("abcdbcdecdefdefgefghfghighijhijk"
		      "ijkljklmklmnlmnomnopnopq",
		      56, out);
	assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039"
				 "a33ce45964ff2167f6ecedd419db06c1");
}

static void test_strlcpy(void **state)
{
	char buf[8];

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(fl_strlcpy(buf, "hello", sizeof(buf)), 5);
	assert_string_equal(buf, "hello");

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(fl_strlcpy(buf, "0123456789", sizeof(buf)), 10);
	assert_string_equal(buf, "0123456");

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(fl_strlcpy(buf, "01234567", sizeof(buf)), 8);
	assert_string_equal(buf, "0123456");

	assert_int_equal(fl_strlcpy(buf, "0123456", sizeof(buf)), 7);
	assert_string_equal(buf, "0123456");

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(fl_strlcpy(buf, "abc", 1), 3);
	assert_int_equal(buf[0], '\0');
	assert_int_equal(buf[1], 'x');

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(fl_strlcpy(buf, "abc", 0), 3);
	assert_int_equal(buf[0], 'x');
}

static void test_small_helpers(void **state)
{
	char *s;

	assert_true(fl_startswith("https://x", "https://"));
	assert_true(fl_startswith("abc", ""));
	assert_false(fl_startswith("http://x", "https://"));
	assert_false(fl_startswith("ab", "abc"));
	assert_true(fl_streq("a", "a"));
	assert_false(fl_streq("a", "b"));
	assert_false(fl_streq(NULL, "a"));
	assert_false(fl_streq(NULL, NULL));

	s = fl_xasprintf("%s-%d", "x", 42);
	assert_string_equal(s, "x-42");
	free(s);
	s = fl_xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	fl_free_secret(s);
	fl_free_secret(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_duration_caps),
		cmocka_unit_test(test_duration_garbage),
		cmocka_unit_test(test_parse_uint),
		cmocka_unit_test(test_rfc3339_round_trip),
		cmocka_unit_test(test_rfc3339_out_of_range),
		cmocka_unit_test(test_rfc3339_bad),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_random_token),
		cmocka_unit_test(test_random_token_alphabet),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_strlcpy),
		cmocka_unit_test(test_small_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
