/* SPDX-License-Identifier: MIT */
/*
 * fleetctl's glue shared by its commands: notes, usage errors, -o, the
 * server URL, and how common/subcmd.c sees fleetctl (cli_prog).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

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

	va_start(ap, fmt);
	fl_cmd_vusage(&cli_prog, fmt, ap);
	va_end(ap);
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

/* A leaf's --help after its usage and summary: its options and the
 * global ones. */
static void help_extra(const struct fl_cmd *c)
{
	if (*c->options)
		printf("\noptions: %s\n", c->options);
	printf("\nglobal options (before the command): --server URL "
	       "--token-file F|- --token T --ca FILE --context NAME\n"
	       "  -o table|json -q\n");
}

static int prepare(const struct fl_cmd *c, void *arg)
{
	return (c->flags & CLI_NEED_SERVER) ? cli_connect(arg) : 0;
}

const struct fl_cmd_prog cli_prog = {
	.name = "fleetctl",
	.page = "fleetctl(1)",
	.list_usage = "COMMAND ...",
	.width = 14,
	.help_extra = help_extra,
	.prepare = prepare,
};
