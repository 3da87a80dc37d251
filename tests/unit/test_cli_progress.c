/* SPDX-License-Identifier: MIT */
/* fleetctl's progress bar (cli/progress.c): the line it draws, and no bar
 * when stderr is not a terminal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "progress.h"

#define MiB (1024 * 1024)

static void test_known_total(void **state)
{
	char buf[256];
	size_t n = cli_progress_line(buf, sizeof(buf), "upload", 9 * MiB,
				     36 * MiB, 3 * MiB, 80);

	(void)state;
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf,
			    "upload [#######-----------------------]  25%  "
			    "9.0 MiB of 36.0 MiB  3.0 MiB/s");
}

static void test_done_and_past_total(void **state)
{
	char buf[256];

	(void)state;
	cli_progress_line(buf, sizeof(buf), "x", 40, 40, 0, 80);
	assert_non_null(strstr(buf, "[##############################] 100%"));
	/* a sender that overshoots never draws past the bar or 100 % */
	cli_progress_line(buf, sizeof(buf), "x", 50, 40, 0, 80);
	assert_non_null(strstr(buf, "[##############################] 100%"));
}

static void test_unknown_total(void **state)
{
	char buf[256];

	(void)state;
	cli_progress_line(buf, sizeof(buf), "download", 1536, 0, 512, 80);
	assert_string_equal(buf, "download  1.5 KiB  512 B/s");
}

static void test_narrow_terminal(void **state)
{
	char buf[256];
	size_t n;

	(void)state;
	/* no room for a bar: the numbers alone, cut below the width so the
	 * carriage return can redraw the line */
	n = cli_progress_line(buf, sizeof(buf), "upload", 9 * MiB, 36 * MiB,
			      3 * MiB, 30);
	assert_int_equal(n, 29);
	assert_null(strchr(buf, '['));
	assert_memory_equal(buf, "upload  25%  9.0 MiB of 36.0 ", 29);
}

static void test_no_bar_without_a_terminal(void **state)
{
	struct fl_http_opts o = {.base_url = "https://127.0.0.1:1",
				 .ca_file = "/nonexistent.pem"};
	struct cli_ctx ctx = {0};
	struct cli_progress p;

	(void)state;
	assert_int_equal(fl_http_new(&o, &ctx.http, NULL), 0);
	/* the test's stderr is a file or a pipe under tests/run */
	assert_int_equal(isatty(STDERR_FILENO), 0);
	assert_false(cli_progress_start(&ctx, &p, "upload"));
	ctx.quiet = true;
	assert_false(cli_progress_start(&ctx, &p, "upload"));
	cli_progress_end(&ctx, &p);
	fl_http_free(ctx.http);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_total),
	    cmocka_unit_test(test_done_and_past_total),
	    cmocka_unit_test(test_unknown_total),
	    cmocka_unit_test(test_narrow_terminal),
	    cmocka_unit_test(test_no_bar_without_a_terminal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
