/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static const struct cli_cmd *current_cmd;

void cli_note(struct cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	if (ctx->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage(struct cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	fputs("fleetctl: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (current_cmd)
		fprintf(stderr, "usage: fleetctl %s\n", current_cmd->usage);
	ctx->err.code = FL_EUSAGE; /* message already printed */
	return FL_EUSAGE;
}

int cli_set_output(struct cli_ctx *ctx, const char *value)
{
	if (fl_streq(value, "json"))
		ctx->output = CLI_OUT_JSON;
	else if (fl_streq(value, "table"))
		ctx->output = CLI_OUT_TABLE;
	else
		return cli_usage(ctx, "unknown output format '%s' (table, json)",
				 value);
	return 0;
}

int cli_server_url(struct cli_ctx *ctx, const char *url, char **ret)
{
	size_t n = strlen(url);

	if (!fl_startswith(url, "https://") || n == strlen("https://"))
		return fl_fail(&ctx->err, FL_EUSAGE,
			       "server URL '%s' must start with https:// "
			       "(fleetd serves HTTPS only)",
			       url);
	while (n > strlen("https://") && url[n - 1] == '/')
		n--;
	*ret = fl_xstrndup(url, n);
	return 0;
}

int cli_legacy_out(struct cli_ctx *ctx, const char *value,
		   const char **ret_out)
{
	if (fl_streq(value, "table") || fl_streq(value, "json"))
		return cli_set_output(ctx, value);
	fprintf(stderr, "fleetctl: warning: -o FILE is deprecated, "
			"use --out FILE\n");
	*ret_out = value;
	return 0;
}

int cli_args(struct cli_ctx *ctx, int argc, char **argv, int min, int max,
	     const char *what)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	int c, n;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (c != 'o')
			return cli_usage(ctx, "unknown option");
		if (cli_set_output(ctx, optarg))
			return FL_EUSAGE;
	}
	n = argc - optind;
	if (n < min || n > max)
		return cli_usage(ctx, "expected %s", what);
	return 0;
}

static void list_table(const struct cli_cmd *table, const char *prefix,
		       FILE *f)
{
	fprintf(f, "usage: fleetctl %s%sCOMMAND ...\n\ncommands:\n", prefix,
		*prefix ? " " : "");
	for (const struct cli_cmd *c = table; c->name; c++)
		if (!(c->flags & CLI_HIDDEN))
			fprintf(f, "  %-14s %s\n", c->name, c->summary);
	fprintf(f, "\n'fleetctl %s%sCOMMAND --help' shows a command's "
		   "options; see fleetctl(1).\n",
		prefix, *prefix ? " " : "");
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return false;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	}
	return false;
}

static void print_help(const struct cli_cmd *c)
{
	printf("usage: fleetctl %s\n\n%s\n", c->usage, c->summary);
	if (c->options && *c->options)
		printf("\noptions: %s\n", c->options);
	printf("\nglobal options (before the command): --server URL "
	       "--token-file F|- --token T --ca FILE --context NAME\n"
	       "  -o table|json -q\n");
}

int cli_dispatch(const struct cli_cmd *table, const char *prefix, int argc,
		 char **argv, struct cli_ctx *ctx)
{
	const struct cli_cmd *c;
	char *path;
	int rc;

	if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
		list_table(table, prefix, argc < 1 ? stderr : stdout);
		if (argc >= 1)
			return 0;
		ctx->err.code = FL_EUSAGE;
		return FL_EUSAGE;
	}
	for (c = table; c->name && strcmp(c->name, argv[0]) != 0; c++)
		;
	if (!c->name) {
		fprintf(stderr, "fleetctl: error: unknown command '%s%s%s'\n",
			prefix, *prefix ? " " : "", argv[0]);
		list_table(table, prefix, stderr);
		ctx->err.code = FL_EUSAGE;
		return FL_EUSAGE;
	}
	path = fl_xasprintf("%s%s%s", prefix, *prefix ? " " : "", c->name);
	if (c->sub) {
		rc = cli_dispatch(c->sub, path, argc - 1, argv + 1, ctx);
		goto out;
	}
	if (wants_help(argc, argv)) {
		print_help(c);
		rc = 0;
		goto out;
	}
	current_cmd = c;
	ctx->cmd_path = path;
	rc = (c->flags & CLI_NEED_SERVER) ? cli_connect(ctx) : 0;
	optind = 0; /* GNU getopt: start afresh on the command's argv */
	if (!rc)
		rc = c->fn(argc, argv, ctx);
	ctx->cmd_path = NULL;
out:
	free(path);
	return rc;
}

void cli_list_commands(const struct cli_cmd *table, const char *prefix,
		       FILE *f)
{
	for (const struct cli_cmd *c = table; c->name; c++) {
		char *path = fl_xasprintf("%s%s%s", prefix, *prefix ? " " : "",
					  c->name);

		if (c->sub)
			cli_list_commands(c->sub, path, f);
		else
			fprintf(f, "%s%s%s\n", path,
				c->options && *c->options ? " " : "",
				c->options ? c->options : "");
		free(path);
	}
}
