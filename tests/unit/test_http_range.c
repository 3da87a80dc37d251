/* SPDX-License-Identifier: MIT */
/*
 * Byte ranges (common/http_range.c): fleetd's Range parser and the
 * agent's Content-Range check, exactly: what is honoured, what is
 * served whole, what is unsatisfiable, and the loose forms that used to
 * slip through sscanf ("bytes=5x-" taken as "5-", issue 18).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "download_internal.h"
#include "http_range.h"
#include "util.h"

static void want_range(const char *h, uint64_t size, uint64_t start,
		       uint64_t end)
{
	uint64_t a = 7, b = 7;

	assert_int_equal(fl_range_parse(h, size, &a, &b), 0);
	assert_int_equal(a, start);
	assert_int_equal(b, end);
}

static void test_range_honoured(void **state)
{
	want_range("bytes=0-", 1000, 0, 999);
	want_range("bytes=5-", 1000, 5, 999);
	want_range("bytes=5-9", 1000, 5, 9);
	want_range("bytes=999-999", 1000, 999, 999);
	/* an end past the file is clamped, not refused */
	want_range("bytes=10-5000", 1000, 10, 999);
	want_range("bytes=10-18446744073709551615", 1000, 10, 999);
	want_range("bytes=0000012-", 1000, 12, 999);
}

static void test_range_ignored(void **state)
{
	static const char *const whole[] = {
		NULL,	       "",	      "bytes=",	      "bytes=-",
		"bytes=-5",    "bytes=5x-",   "bytes=5-x",    "bytes=5-7x",
		"bytes= 5-",   "bytes=5 -",   "bytes=5- 7",   "bytes=+5-",
		"bytes=-5-",   "bytes=5",     "bytes=5-7,9-", "bytes=5-,",
		"Bytes=5-",    "items=5-",    "bytes =5-",    "bytes=5-7 ",
		"bytes=0x10-", "bytes=1e3-",
		/* 2^64: overflow is malformed, not a huge start */
		"bytes=18446744073709551616-",
		"bytes=1-18446744073709551616",
	};
	uint64_t a = 7, b = 7;

	for (size_t i = 0; i < FL_ARRAY_SIZE(whole); i++) {
		assert_int_equal(fl_range_parse(whole[i], 1000, &a, &b), 1);
		assert_int_equal(a, 7); /* untouched */
		assert_int_equal(b, 7);
	}
}

static void test_range_unsatisfiable(void **state)
{
	uint64_t a = 7, b = 7;

	assert_int_equal(fl_range_parse("bytes=1000-", 1000, &a, &b), -1);
	assert_int_equal(fl_range_parse("bytes=5000-6000", 1000, &a, &b), -1);
	assert_int_equal(fl_range_parse("bytes=9-5", 1000, &a, &b), -1);
	assert_int_equal(fl_range_parse("bytes=0-", 0, &a, &b), -1);
	assert_int_equal(a, 7);
}

static void test_content_range(void **state)
{
	static const char *const bad[] = {
		NULL,		     "",		  "bytes 5-9",
		"bytes 5-9/",	     "bytes */1000",	  "bytes 9-5/1000",
		"bytes 5-1000/1000", "bytes  5-9/1000",	  "bytes=5-9/1000",
		"bytes 5x-9/1000",   "bytes 5-9/1000x",	  "bytes -5-9/1000",
		"bytes 5-9/-1000",   "items 5-9/1000",	  "bytes 5 -9/1000",
		"bytes 0-1/18446744073709551616",
	};
	uint64_t a = 7, b = 7, t = 7;
	struct fl_error err = {0};

	assert_int_equal(fl_content_range_parse(" bytes 5-9/1000 \t", &a, &b,
						&t, &err),
			 0);
	assert_int_equal(a, 5);
	assert_int_equal(b, 9);
	assert_int_equal(t, 1000);
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		a = b = t = 7;
		assert_int_equal(fl_content_range_parse(bad[i], &a, &b, &t,
							&err),
				 FL_EPARSE);
		assert_int_equal(a + b + t, 21);
	}
}

/* The agent's check of a 206 to "Range: bytes=HAVE-". */
static void test_agent_check(void **state)
{
	struct fl_error err = {0};

	assert_int_equal(
	    agent_dl_check_content_range(" bytes 100-999/1000", 100, 1000,
					 &err),
	    0);
	assert_int_equal(agent_dl_check_content_range(" bytes 0-999/1000", 100,
						      1000, &err),
			 FL_EPARSE);
	assert_int_equal(agent_dl_check_content_range(" bytes 100-999/2000",
						      100, 1000, &err),
			 FL_EVERIFY);
	assert_int_equal(agent_dl_check_content_range(" bytes 100x-999/1000",
						      100, 1000, &err),
			 FL_EPARSE);
	assert_int_equal(agent_dl_check_content_range("", 0, 1000, &err),
			 FL_EPARSE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range_honoured),
		cmocka_unit_test(test_range_ignored),
		cmocka_unit_test(test_range_unsatisfiable),
		cmocka_unit_test(test_content_range),
		cmocka_unit_test(test_agent_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
