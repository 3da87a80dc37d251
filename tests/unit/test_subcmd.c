/* SPDX-License-Identifier: MIT */
/*
 * common/subcmd: the table rules (sorted, unique, every leaf has usage
 * and options) on fleetctl's real tables and on broken ones, and the
 * dispatcher: unknown commands, help, nesting, the prepare hook.
 * fleetd's and fleet-agent's tables live in their main.c; t9001 runs
 * their --list-commands, which refuses a table that breaks the rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "subcmd.h"
#include "util.h"

#define END {NULL, NULL, 0, NULL, NULL, NULL, NULL}

static int calls;
static const char *last_arg;

static int fn_count(int argc, char **argv, void *ctx)
{
	calls++;
	last_arg = argc > 1 ? argv[1] : NULL;
	assert_non_null(fl_cmd_current());
	return ctx ? *(int *)ctx : 0;
}

static int refuse(const struct fl_cmd *c, void *ctx)
{
	return (c->flags & FL_CMD_PROG) ? FL_EDENIED : 0;
}

static const struct fl_cmd sub[] = {
	{"add", fn_count, 0, "t add X", "add", "--x", NULL},
	{"del", fn_count, FL_CMD_PROG, "t del X", "delete", "", NULL},
	END,
};

static int fn_other(int argc, char **argv, void *ctx)
{
	calls += 100;
	return 0;
}

/* "h X" runs h itself, "h x" its subcommand (like "diag ID CHECK" and
 * "diag bundle ID") */
static const struct fl_cmd hsub[] = {
	{"x", fn_other, 0, "h x", "the verb", "--y", NULL},
	END,
};

static const struct fl_cmd good[] = {
	{"a", fn_count, 0, "a", "first", "", NULL},
	{"h", fn_count, 0, "h ARG | h x", "both", "--z", hsub},
	{"t", NULL, 0, "t add|del", "nested", NULL, sub},
	{"z", fn_count, FL_CMD_HIDDEN, "z", "hidden", "--q", NULL},
	END,
};

static const struct fl_cmd_prog prog = {
	.name = "test",
	.page = "test(1)",
	.list_usage = "COMMAND ...",
	.width = 8,
	.prepare = refuse,
};

static void test_fleetctl_tables(void **state)
{
	struct fl_error err = {0};

	assert_int_equal(fl_cmd_check(cli_commands, &err), 0);
	assert_int_equal(fl_cmd_check(good, &err), 0);
}

static void expect_bad(const struct fl_cmd *t)
{
	struct fl_error err = {0};

	assert_int_equal(fl_cmd_check(t, &err), FL_ERR);
	assert_int_equal(fl_cmd_list(t, stdout, NULL), FL_ERR);
}

static void test_broken_tables(void **state)
{
	static const struct fl_cmd unsorted[] = {
		{"b", fn_count, 0, "b", "s", "", NULL},
		{"a", fn_count, 0, "a", "s", "", NULL}, END};
	static const struct fl_cmd dup[] = {
		{"a", fn_count, 0, "a", "s", "", NULL},
		{"a", fn_count, 0, "a", "s", "", NULL}, END};
	static const struct fl_cmd no_usage[] = {
		{"a", fn_count, 0, NULL, "s", "", NULL}, END};
	static const struct fl_cmd no_options[] = {
		{"a", fn_count, 0, "a", "s", NULL, NULL}, END};
	static const struct fl_cmd no_summary[] = {
		{"a", fn_count, 0, "a", NULL, "", NULL}, END};
	static const struct fl_cmd no_fn[] = {
		{"a", NULL, 0, "a", "s", "", NULL}, END};
	static const struct fl_cmd bad_sub[] = {
		{"a", NULL, 0, "a", "s", NULL, unsorted}, END};
	static const struct fl_cmd fn_and_sub[] = {
		{"a", fn_count, 0, "a", "s", NULL, sub}, END};

	expect_bad(unsorted);
	expect_bad(dup);
	expect_bad(no_usage);
	expect_bad(no_options);
	expect_bad(no_summary);
	expect_bad(no_fn);
	expect_bad(bad_sub);
	expect_bad(fn_and_sub);
}

static int run(int argc, ...)
{
	char *argv[8];
	va_list ap;

	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	return fl_cmd_dispatch(&prog, good, argc, argv, NULL);
}

static void test_dispatch(void **state)
{
	int seven = 7;

	calls = 0;
	assert_int_equal(run(0), FL_EUSAGE);
	assert_int_equal(run(1, "nope"), FL_EUSAGE);
	assert_int_equal(run(1, "help"), FL_EUSAGE); /* no help_word */
	assert_int_equal(run(1, "--help"), 0);
	assert_int_equal(run(1, "t"), FL_EUSAGE);
	assert_int_equal(run(2, "t", "nope"), FL_EUSAGE);
	assert_int_equal(run(2, "t", "-h"), 0);
	assert_int_equal(calls, 0);
	assert_int_equal(run(3, "t", "add", "--help"), 0);
	assert_int_equal(calls, 0);
	assert_int_equal(run(3, "t", "add", "X"), 0);
	assert_int_equal(calls, 1);
	assert_string_equal(last_arg, "X");
	/* after "--", --help is an argument */
	assert_int_equal(run(4, "t", "add", "--", "--help"), 0);
	assert_int_equal(calls, 2);
	/* the prepare hook's refusal is returned, fn never runs */
	assert_int_equal(run(2, "t", "del"), FL_EDENIED);
	assert_int_equal(calls, 2);
	assert_int_equal(fl_cmd_dispatch(&prog, good, 1, (char *[]){"a"},
					 &seven),
			 7);
	assert_null(fl_cmd_current());
	assert_int_equal(run(1, "z"), 0); /* hidden still runs */
}

/* A command with a function and subcommands: its verbs go down, any
 * other first argument (or none) runs the command itself. */
static void test_hybrid(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	calls = 0;
	assert_int_equal(run(2, "h", "x"), 0);
	assert_int_equal(calls, 100);
	assert_int_equal(run(3, "h", "gw-1", "ping"), 0);
	assert_int_equal(calls, 101);
	assert_string_equal(last_arg, "gw-1");
	assert_int_equal(run(1, "h"), 0);
	assert_int_equal(calls, 102);
	/* "--" lets an argument named like a verb through */
	assert_int_equal(run(3, "h", "--", "x"), 0);
	assert_int_equal(calls, 103);
	assert_int_equal(run(2, "h", "--help"), 0);
	assert_int_equal(run(3, "h", "x", "--help"), 0);
	assert_int_equal(calls, 103);
	/* both are listed, each with its options */
	f = open_memstream(&text, &len);
	assert_int_equal(fl_cmd_list(good, f, NULL), 0);
	fclose(f);
	assert_non_null(strstr(text, "\nh --z\nh x --y\n"));
	free(text);
}

static void test_usage_error(void **state)
{
	assert_int_equal(fl_cmd_usage(&prog, "bad %s", "x"), FL_EUSAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fleetctl_tables),
		cmocka_unit_test(test_broken_tables),
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_hybrid),
		cmocka_unit_test(test_usage_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
