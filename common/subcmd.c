/* SPDX-License-Identifier: MIT */
/* Subcommand tables: dispatch, help, usage errors, lists; see subcmd.h. */
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "subcmd.h"
#include "util.h"

static const struct fl_cmd *current;

const struct fl_cmd *fl_cmd_current(void)
{
	return current;
}

/* "a b" from a path prefix ("" at the top) and a name. */
static char *join(const char *prefix, const char *name)
{
	return fl_xasprintf("%s%s%s", prefix, *prefix ? " " : "", name);
}

static void list_table(const struct fl_cmd_prog *prog,
		       const struct fl_cmd *table, const char *prefix, FILE *f)
{
	const char *sp = *prefix ? " " : "";

	fprintf(f, "usage: %s %s%s%s\n\ncommands:\n", prog->name, prefix, sp,
		prog->list_usage);
	for (const struct fl_cmd *c = table; c->name; c++)
		if (!(c->flags & FL_CMD_HIDDEN))
			fprintf(f, "  %-*s %s\n", prog->width, c->name,
				c->summary);
	fprintf(f, "\n'%s %s%sCOMMAND --help' shows a command's options; "
		   "see %s.\n",
		prog->name, prefix, sp, prog->page);
}

static bool is_help(const char *a)
{
	return fl_streq(a, "--help") || fl_streq(a, "-h");
}

/* --help or -h among the arguments, before any "--". */
static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && !fl_streq(argv[i], "--"); i++)
		if (is_help(argv[i]))
			return true;
	return false;
}

static int run_leaf(const struct fl_cmd_prog *prog, const struct fl_cmd *c,
		    int argc, char **argv, void *ctx)
{
	int rc;

	if (wants_help(argc, argv)) {
		printf("usage: %s %s\n\n%s\n", prog->name, c->usage,
		       c->summary);
		if (c->sub)
			printf("\ncommands:\n");
		for (const struct fl_cmd *s = c->sub; s && s->name; s++)
			if (!(s->flags & FL_CMD_HIDDEN))
				printf("  %-*s %s\n", prog->width, s->name,
				       s->summary);
		if (prog->help_extra)
			prog->help_extra(c);
		return 0;
	}
	current = c;
	rc = prog->prepare ? prog->prepare(c, ctx) : 0;
	optind = 0; /* GNU getopt: start afresh on the command's argv */
	if (!rc)
		rc = c->fn(argc, argv, ctx);
	current = NULL;
	return rc;
}

/* The hidden --list-commands: the lines, or why the table is refused. */
static int list_or_fail(const struct fl_cmd_prog *prog,
			const struct fl_cmd *table)
{
	struct fl_error err = {0};
	int rc = fl_cmd_list(table, stdout, &err);

	if (rc)
		fprintf(stderr, "%s: error: %s\n", prog->name, err.msg);
	return rc;
}

/* Does argv[1] name a command of @sub?  (A command with a function and
 * subcommands runs itself otherwise.) */
static bool is_verb(const struct fl_cmd *sub, int argc, char **argv)
{
	for (const struct fl_cmd *s = sub; argc > 1 && s->name; s++)
		if (fl_streq(s->name, argv[1]))
			return true;
	return false;
}

static int dispatch(const struct fl_cmd_prog *prog, const struct fl_cmd *table,
		    const char *prefix, int argc, char **argv, void *ctx)
{
	const struct fl_cmd *c;
	char *path;
	int rc;

	if (argc < 1) {
		list_table(prog, table, prefix, stderr);
		return FL_EUSAGE;
	}
	if (!*prefix && fl_streq(argv[0], "--list-commands"))
		return list_or_fail(prog, table);
	if (is_help(argv[0]) ||
	    (prog->help_word && !*prefix && fl_streq(argv[0], "help"))) {
		list_table(prog, table, prefix, stdout);
		return 0;
	}
	for (c = table; c->name && !fl_streq(c->name, argv[0]); c++)
		;
	if (!c->name) {
		path = join(prefix, argv[0]);
		fprintf(stderr, "%s: error: unknown command '%s'\n",
			prog->name, path);
		free(path);
		list_table(prog, table, prefix, stderr);
		return FL_EUSAGE;
	}
	if (!c->sub || (c->fn && !is_verb(c->sub, argc, argv)))
		return run_leaf(prog, c, argc, argv, ctx);
	path = join(prefix, c->name);
	rc = dispatch(prog, c->sub, path, argc - 1, argv + 1, ctx);
	free(path);
	return rc;
}

int fl_cmd_dispatch(const struct fl_cmd_prog *prog,
		    const struct fl_cmd *table, int argc, char **argv,
		    void *ctx)
{
	return dispatch(prog, table, "", argc, argv, ctx);
}

int fl_cmd_vusage(const struct fl_cmd_prog *prog, const char *fmt,
		  va_list ap)
{
	fprintf(stderr, "%s: error: ", prog->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (current)
		fprintf(stderr, "usage: %s %s\n", prog->name, current->usage);
	return FL_EUSAGE;
}

int fl_cmd_usage(const struct fl_cmd_prog *prog, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = fl_cmd_vusage(prog, fmt, ap);
	va_end(ap);
	return rc;
}

static void list_lines(const struct fl_cmd *table, const char *prefix,
		       FILE *f)
{
	for (const struct fl_cmd *c = table; c->name; c++) {
		char *path = join(prefix, c->name);

		if (c->fn)
			fprintf(f, "%s%s%s\n", path, *c->options ? " " : "",
				c->options);
		if (c->sub)
			list_lines(c->sub, path, f);
		free(path);
	}
}

int fl_cmd_list(const struct fl_cmd *table, FILE *f, struct fl_error *err)
{
	int rc = fl_cmd_check(table, err);

	if (!rc)
		list_lines(table, "", f);
	return rc;
}

/* One entry's own rules (not its order). */
static int check_entry(const struct fl_cmd *c, const char *path,
		       struct fl_error *err)
{
	if (!c->summary || !*c->summary)
		return fl_fail(err, FL_ERR, "command '%s' has no summary",
			       path);
	if (c->sub && !c->sub->name)
		return fl_fail(err, FL_ERR, "command '%s' has an empty table",
			       path);
	if (c->sub && !c->fn)
		return 0;
	if (!c->fn || !c->usage || !*c->usage || !c->options)
		return fl_fail(err, FL_ERR,
			       "command '%s' lacks a function, usage or "
			       "options",
			       path);
	return 0;
}

static int check_level(const struct fl_cmd *table, const char *prefix,
		       struct fl_error *err)
{
	int rc = 0;

	for (const struct fl_cmd *c = table; !rc && c->name; c++) {
		char *path = join(prefix, c->name);

		if (c != table && strcmp(c[-1].name, c->name) >= 0)
			rc = fl_fail(err, FL_ERR,
				     "command '%s' is not sorted after '%s' "
				     "or is a duplicate",
				     path, c[-1].name);
		if (!rc)
			rc = check_entry(c, path, err);
		if (!rc && c->sub)
			rc = check_level(c->sub, path, err);
		free(path);
	}
	return rc;
}

int fl_cmd_check(const struct fl_cmd *table, struct fl_error *err)
{
	return check_level(table, "", err);
}
