/* SPDX-License-Identifier: MIT */
/* fleetctl's table output (cli/out.c): missing cells never crash. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"

static void test_cell_absent_and_null(void **state)
{
	char buf[64];
	json_t *null = json_null();

	assert_string_equal(cli_cell(NULL, buf, sizeof(buf)), "-");
	assert_string_equal(cli_cell(null, buf, sizeof(buf)), "-");
	json_decref(null);
}

static void test_cell_scalars(void **state)
{
	char buf[64];
	json_t *i = json_integer(42), *t = json_true(), *a = json_pack("[s,n]", "x");

	assert_string_equal(cli_cell(i, buf, sizeof(buf)), "42");
	assert_string_equal(cli_cell(t, buf, sizeof(buf)), "yes");
	assert_string_equal(cli_cell(a, buf, sizeof(buf)), "x,-");
	json_decref(i);
	json_decref(t);
	json_decref(a);
}

/* A row without some of the columns, as fleetd answers a fresh job. */
static void test_rows_missing_columns(void **state)
{
	static const struct cli_col cols[] = {
		{"JOB", "job"}, {"STATE", "state"}, {"REASON", "reason"},
		{NULL, NULL}};
	static const struct cli_col fields[] = {
		{"job", "job"}, {"token", "token"}, {NULL, NULL}};
	struct cli_ctx ctx = {0};
	json_t *rows = json_pack("[{s:s}, {}]", "job", "j-1");
	int saved = dup(STDOUT_FILENO), devnull = open("/dev/null", O_WRONLY);

	fflush(stdout);
	dup2(devnull, STDOUT_FILENO);
	cli_print_rows(&ctx, rows, cols);
	cli_print_object(&ctx, json_array_get(rows, 0), fields);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(devnull);
	json_decref(rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cell_absent_and_null),
		cmocka_unit_test(test_cell_scalars),
		cmocka_unit_test(test_rows_missing_columns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
