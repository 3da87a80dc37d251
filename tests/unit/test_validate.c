/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "validate.h"
#include "util.h"

static void test_ids(void **state)
{
	static const char *const good[] = {"a", "gw-01", "farm.7_b", "0abc"};
	static const char *const bad[] = {
	    "",
	    "-a",
	    ".a",
	    "A1",
	    "dev/1",
	    "dev+",
	    "dev#",
	    "dev 1",
	    "dév",
	    "_x",
	    "a123456789012345678901234567890123456789012345678901234567890123",
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(good); i++)
		assert_true(fl_valid_id(good[i]));
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++)
		assert_false(fl_valid_id(bad[i]));
	assert_false(fl_valid_id(NULL));
	/* exactly 63 characters is the longest allowed */
	assert_true(fl_valid_id(
	    "a12345678901234567890123456789012345678901234567890123456789012"));
}

static void test_check_id_error(void **state)
{
	struct fl_error err = {0};

	assert_int_equal(fl_check_id("bad/id", "device id", &err), FL_EINVAL);
	assert_int_equal(err.code, FL_EINVAL);
	assert_int_equal(fl_check_id("ok", "device id", NULL), 0);
}

static void test_filenames(void **state)
{
	assert_true(fl_valid_filename("rootfs.img"));
	assert_true(fl_valid_filename("App-1.2+b"));
	assert_false(fl_valid_filename(".."));
	assert_false(fl_valid_filename("."));
	assert_false(fl_valid_filename(".hidden"));
	assert_false(fl_valid_filename("a/b"));
	assert_false(fl_valid_filename("../etc"));
	assert_false(fl_valid_filename(""));
	assert_false(fl_valid_filename("a\nb"));
}

static void test_text(void **state)
{
	assert_true(fl_valid_text("hello world", 20));
	assert_false(fl_valid_text("hello world", 5));
	assert_false(fl_valid_text("bell\a", 20));
}

/* Mirror URLs: https, an origin, a plain path; a base ends with '/',
 * a file does not. */
static void test_mirror_url(void **state)
{
	static const char *const bad[] = {
	    "http://m.example/fw/",
	    "https://",
	    "https:///fw/",
	    "https://m.example",
	    "https://u:p@m.example/fw/",
	    "https://m.example/fw/?x=1/",
	    "https://m.example/fw/#a/",
	    "https://m.example/a/../b/",
	    "https://m.example//fw/",
	    "https://m.example:0/",
	    "https://m.example:65536/",
	    "https://m.example:/fw/",
	    "https://m.example:08/fw/",
	    "https://[::1]:443/fw/",
	    "https://m.example/a%2f/",
	    "https://m ex/fw/",
	    "https://m.example/fw/\n/",
	    "ftp://m.example/fw/",
	};
	char big[FL_MIRROR_URL_MAX + 2];

	assert_true(fl_valid_mirror_base("https://m.example/"));
	assert_true(fl_valid_mirror_base("https://127.0.0.1:8443/b-1/"));
	assert_true(
	    fl_valid_mirror_url("https://cdn.example/fw/x_1.fwb"));
	assert_false(fl_valid_mirror_url("https://cdn.example/fw/"));
	assert_false(fl_valid_mirror_base("https://cdn.example/fw/a"));
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++)
		assert_false(fl_valid_mirror_base(bad[i]));
	assert_false(fl_valid_mirror_base(NULL));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "https://m.example/", 18);
	big[sizeof(big) - 2] = '/';
	assert_false(fl_valid_mirror_base(big));
	big[sizeof(big) - 3] = '\0';
	big[sizeof(big) - 4] = '/';
	assert_true(fl_valid_mirror_base(big));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_check_id_error),
	    cmocka_unit_test(test_filenames),
	    cmocka_unit_test(test_text),
	    cmocka_unit_test(test_mirror_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
