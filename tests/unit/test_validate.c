/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "validate.h"
#include "util.h"

static void test_ids(void **state)
{
	static const char *const good[] = {"a", "gw-01", "farm.7_b", "0abc"};
	static const char *const bad[] = {
		"",      "-a",     ".a",  "A1",   "dev/1", "dev+",
		"dev#",  "dev 1",  "dév", "_x",
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_check_id_error),
		cmocka_unit_test(test_filenames),
		cmocka_unit_test(test_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
