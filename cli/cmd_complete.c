/* SPDX-License-Identifier: MIT */
/*
 * The hidden `fleetctl __complete KIND [PREFIX]` the shell completions
 * call on TAB: ids from the completion cache (cli/complete_cache.c),
 * refreshed from fleetd when stale.  It never fails and never writes to
 * stderr (that would garble the command line): a stale cache, or
 * nothing, is the answer to any error.
 */
#include <stdlib.h>
#include <time.h>

#include "cli.h"

int cmd_complete(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	int kind = argc >= 2 ? cli_kind_from_name(argv[1]) : CLI_KIND_NONE;
	char *url = NULL, *path;

	if (!kind || argc > 3 || cli_server(ctx, &url))
		goto out;
	path = cli_ccache_path(url, kind);
	if (!cli_ccache_fresh(path, time(NULL), CLI_CCACHE_TTL) &&
	    !cli_connect(ctx))
		cli_ccache_refresh(ctx->http, kind, path, &ctx->err);
	cli_ccache_scan(path, argc == 3 ? argv[2] : "", stdout);
	free(path);
out:
	free(url);
	fl_error_clear(&ctx->err);
	return 0;
}
