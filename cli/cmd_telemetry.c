/* SPDX-License-Identifier: MIT */
/* fleetctl telemetry: a device's recent points (docs/protocol.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"
#include "util.h"
#include "validate.h"

/* What the command asks fleetd for. */
struct tele_args {
	char since[21]; /* RFC 3339; "" for all */
	const char *metric;
	uint64_t limit;
};

#define LIMIT_DEFAULT 1000 /* points shown: the newest */

/*
 * --since: an RFC 3339 time (YYYY-MM-DDThh:mm:ssZ) as is, or "-" and a
 * duration back from now ("-10m", "-2h", "-1d", "-30s").
 */
static int parse_since(struct cli_ctx *ctx, const char *v, char ret[21])
{
	int64_t back;
	time_t t;

	if (v[0] == '-' && !fl_parse_duration(v + 1, &back, NULL)) {
		fl_time_rfc3339(time(NULL) - (time_t)back, ret);
		return 0;
	}
	if (v[0] != '-' && !fl_parse_rfc3339(v, &t, NULL)) {
		fl_time_rfc3339(t, ret);
		return 0;
	}
	return cli_usage(ctx,
			 "--since takes YYYY-MM-DDThh:mm:ssZ or -DURATION "
			 "(-10m, -2h), not '%s'",
			 v);
}

static int parse_opts(struct cli_ctx *ctx, int argc, char **argv,
		      struct tele_args *a)
{
	static const struct option opts[] = {
	    {"since", required_argument, NULL, 's'},
	    {"metric", required_argument, NULL, 'm'},
	    {"limit", required_argument, NULL, 'l'},
	    {"output", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (c == 's' && parse_since(ctx, optarg, a->since))
			return FL_EUSAGE;
		else if (c == 'm' && !fl_valid_metric(optarg))
			return cli_usage(ctx, "invalid metric name '%s'",
					 optarg);
		else if (c == 'l' &&
			 (fl_parse_uint(optarg, 10000, &a->limit, NULL) ||
			  !a->limit))
			return cli_usage(
			    ctx, "--limit takes 1 to 10000, not '%s'", optarg);
		else if (c == 'o' && cli_set_output(ctx, optarg))
			return FL_EUSAGE;
		else if (c != 's' && c != 'm' && c != 'l' && c != 'o')
			return cli_usage(ctx, "unknown option");
		if (c == 'm')
			a->metric = optarg;
	}
	if (optind != argc - 1)
		return cli_usage(ctx, "expected one device ID");
	if (!fl_valid_id(argv[optind]))
		return cli_usage(ctx, "invalid device id '%s'", argv[optind]);
	return 0;
}

/* /api/v1/devices/ID/telemetry?limit=N[&since=T][&metric=M] for @a
 * (each value checked: nothing in them needs escaping). */
static char *query_path(const char *id, const struct tele_args *a)
{
	return fl_xasprintf(
	    "/api/v1/devices/%s/telemetry?limit=%llu%s%s%s%s", id,
	    (unsigned long long)a->limit, a->since[0] ? "&since=" : "",
	    a->since, a->metric ? "&metric=" : "", a->metric ? a->metric : "");
}

int cmd_telemetry(int argc, char **argv, void *arg)
{
	static const struct cli_col cols[] = {{"TIME", "ts"},
					      {"METRIC", "metric"},
					      {"VALUE", "value"},
					      {NULL, NULL}};
	struct cli_ctx *ctx = arg;
	struct tele_args a = {.limit = LIMIT_DEFAULT};
	json_t *resp = NULL;
	char *path;
	int rc = parse_opts(ctx, argc, argv, &a);

	if (rc)
		return rc;
	path = query_path(argv[optind], &a);
	rc = fl_http_json(ctx->http, "GET", path, NULL, &resp, &ctx->err);
	free(path);
	if (rc)
		return rc;
	if (ctx->output == CLI_OUT_JSON)
		cli_print_json(resp);
	else
		cli_print_rows(ctx, json_object_get(resp, "points"), cols);
	if (ctx->output != CLI_OUT_JSON &&
	    json_integer_value(json_object_get(resp, "dropped")) > 0)
		cli_note(ctx, "the device's outbox dropped %lld points",
			 (long long)json_integer_value(
			     json_object_get(resp, "dropped")));
	json_decref(resp);
	return 0;
}
