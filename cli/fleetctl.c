/* SPDX-License-Identifier: MIT */
/*
 * fleetctl: Fleet's operator CLI.  Global options, then the command
 * table (cli/commands.c); everything else lives in libfleetctl.a.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static const char usage_text[] =
	"usage: fleetctl [--server URL] [--token-file F|-] [--token T] "
	"[--ca FILE]\n"
	"                [--context NAME] [-o table|json] [-q] COMMAND "
	"[ARGS]\n";

/* parse_globals: the option (--help, --version, ...) did it all */
#define DONE INT_MIN

static int parse_globals(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option opts[] = {
		{"server", required_argument, NULL, 's'},
		{"token", required_argument, NULL, 't'},
		{"token-file", required_argument, NULL, 'T'},
		{"ca", required_argument, NULL, 'c'},
		{"context", required_argument, NULL, 'x'},
		{"output", required_argument, NULL, 'o'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"list-commands", no_argument, NULL, 'L'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "+o:qh", opts, NULL)) != -1) {
		switch (c) {
		case 's': ctx->server = optarg; break;
		case 't': ctx->token = optarg; break;
		case 'T': ctx->token_file = optarg; break;
		case 'c': ctx->ca = optarg; break;
		case 'x': ctx->context = optarg; break;
		case 'q': ctx->quiet = true; break;
		case 'o':
			if (cli_set_output(ctx, optarg))
				return -FL_EUSAGE;
			break;
		case 'h':
			fputs(usage_text, stdout);
			fl_cmd_dispatch(&cli_prog, cli_commands, 1,
					(char *[]){"--help"}, ctx);
			return DONE;
		case 'V':
			printf("fleetctl %s\n", FLEET_VERSION);
			return DONE;
		case 'L':
			return fl_cmd_dispatch(&cli_prog, cli_commands, 1,
					       (char *[]){"--list-commands"},
					       ctx)
				       ? -FL_ERR
				       : DONE;
		default:
			fputs(usage_text, stderr);
			return -FL_EUSAGE;
		}
	}
	return optind;
}

int main(int argc, char **argv)
{
	struct cli_ctx ctx = {0};
	int first, rc;

	first = parse_globals(argc, argv, &ctx);
	if (first < 0)
		return first == DONE ? 0 : fl_exit_code(-first);
	rc = fl_cmd_dispatch(&cli_prog, cli_commands, argc - first,
			     argv + first, &ctx);
	/* a usage error without a message was printed with its usage */
	if (rc && (ctx.err.msg[0] || rc != FL_EUSAGE))
		fprintf(stderr, "fleetctl: error: %s\n",
			ctx.err.msg[0] ? ctx.err.msg : fl_err_name(rc));
	cli_ctx_release(&ctx);
	return fl_exit_code(rc);
}
