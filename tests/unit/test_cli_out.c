/* SPDX-License-Identifier: MIT */
/* fleetctl's output (cli/out.c): missing cells never crash; server URLs. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Server URLs: https:// only, trailing slashes dropped (cli/cli.c). */
static void test_server_url(void **state)
{
	static const char *const bad[] = {"http://h:1", "ftp://h", "h:443",
					  "HTTPS://h", "https://", ""};
	struct cli_ctx ctx = {0};
	char *url = NULL;

	assert_int_equal(cli_server_url(&ctx, "https://h:8443/", &url), 0);
	assert_string_equal(url, "https://h:8443");
	free(url);
	assert_int_equal(cli_server_url(&ctx, "https://h:8443//", &url), 0);
	assert_string_equal(url, "https://h:8443");
	free(url);
	assert_int_equal(cli_server_url(&ctx, "https://h", &url), 0);
	assert_string_equal(url, "https://h");
	free(url);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		url = NULL;
		fl_error_clear(&ctx.err);
		assert_int_equal(cli_server_url(&ctx, bad[i], &url), FL_EUSAGE);
		assert_null(url);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cell_absent_and_null),
		cmocka_unit_test(test_cell_scalars),
		cmocka_unit_test(test_rows_missing_columns),
		cmocka_unit_test(test_server_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
