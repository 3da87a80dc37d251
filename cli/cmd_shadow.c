/* SPDX-License-Identifier: MIT */
/* fleetctl shadow get|set (docs/shadow.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "shadow.h"
#include "util.h"
#include "validate.h"

/* Bytes of a --file document fleetctl reads (fleetd caps the rest). */
#define FILE_MAX (1024 * 1024)

static const struct cli_col key_cols[] = {{"KEY", "key"},
					  {"DESIRED", "desired"},
					  {"REPORTED", "reported"},
					  {"STATE", "state"},
					  {NULL, NULL}};

/* A value as a table shows it: strings bare, the rest as JSON. */
static json_t *cell(const json_t *v)
{
	char *text;
	json_t *out;

	if (!v)
		return json_null();
	if (json_is_string(v))
		return json_incref((json_t *)v);
	text = fl_json_dumps(v);
	out = json_string(text);
	free(text);
	return out;
}

/* One row per key of desired, reported or refused. */
static void add_key(json_t *rows, json_t *seen, const char *k, const json_t *d,
		    const json_t *r, const json_t *why)
{
	char *state;

	if (json_object_get(seen, k))
		return;
	json_object_set_new(seen, k, json_true());
	if (why)
		state = fl_xasprintf("refused: %s", json_string_value(why));
	else
		state = fl_xstrdup(!d		      ? "reported only"
				   : json_equal(d, r) ? "in sync"
						      : "pending");
	json_array_append_new(rows, json_pack("{s:s, s:o, s:o, s:s}", "key", k,
					      "desired", cell(d), "reported",
					      cell(r), "state", state));
	free(state);
}

static void print_shadow(struct cli_ctx *ctx, const json_t *sh)
{
	json_t *des = json_object_get(sh, "desired");
	json_t *rep = json_object_get(sh, "reported");
	json_t *ds = json_object_get(des, "state");
	json_t *rs = json_object_get(rep, "state");
	json_t *why = json_object_get(rep, "refused");
	json_t *rows = json_array(), *seen = json_object(), *v;
	const json_t *side[] = {ds, rs, why};
	char b1[32], b2[32];
	const char *k;

	if (ctx->output == CLI_OUT_JSON) {
		cli_print_json(sh);
		goto out;
	}
	printf("device:   %s\n",
	       json_string_value(json_object_get(sh, "device")));
	printf("desired:  version %s, updated %s\n",
	       cli_cell(json_object_get(des, "version"), b1, sizeof(b1)),
	       cli_cell(json_object_get(des, "updated"), b2, sizeof(b2)));
	printf("reported: version %s, updated %s\n\n",
	       cli_cell(json_object_get(rep, "version"), b1, sizeof(b1)),
	       cli_cell(json_object_get(rep, "updated"), b2, sizeof(b2)));
	for (size_t i = 0; i < FL_ARRAY_SIZE(side); i++)
		json_object_foreach((json_t *)side[i], k, v)
		    add_key(rows, seen, k, json_object_get(ds, k),
			    json_object_get(rs, k), json_object_get(why, k));
	cli_print_rows(ctx, rows, key_cols);
out:
	json_decref(rows);
	json_decref(seen);
}

static int cmd_shadow_get(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	json_t *sh;
	char *path;
	int rc = cli_args(ctx, argc, argv, 1, 1, "one device ID");

	if (rc)
		return rc;
	if (!fl_valid_id(argv[optind]))
		return cli_usage(ctx, "invalid device id '%s'", argv[optind]);
	path = fl_xasprintf("/api/v1/devices/%s/shadow", argv[optind]);
	rc = fl_http_json(ctx->http, "GET", path, NULL, &sh, &ctx->err);
	free(path);
	if (rc)
		return rc;
	print_shadow(ctx, sh);
	json_decref(sh);
	return 0;
}

/* KEY=VALUE into @patch: VALUE as JSON when it parses (null deletes),
 * else as a string. */
static int add_pair(struct cli_ctx *ctx, json_t *patch, const char *pair)
{
	const char *eq = strchr(pair, '=');
	char *key;
	json_t *v;

	if (!eq)
		return cli_usage(ctx, "expected KEY=VALUE, not '%s'", pair);
	key = fl_xstrndup(pair, (size_t)(eq - pair));
	v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
	if (!v)
		v = json_string(eq + 1);
	json_object_set_new(patch, key, v);
	free(key);
	return 0;
}

/* The patch from --file @file or the KEY=VALUE arguments. */
static int read_patch(struct cli_ctx *ctx, const char *file, int argc,
		      char **argv, json_t **ret)
{
	json_t *patch = NULL;
	int rc = 0;

	if (file) {
		rc = fl_json_load_file(file, FILE_MAX, &patch, &ctx->err);
		if (rc)
			return rc;
	} else {
		patch = json_object();
		for (int i = optind; !rc && i < argc; i++)
			rc = add_pair(ctx, patch, argv[i]);
	}
	if (!rc)
		rc = fl_shadow_check(patch, true, &ctx->err);
	if (rc)
		json_decref(patch);
	else
		*ret = patch;
	return rc;
}

/* Options of shadow set. */
struct set_opts {
	const char *file, *group;
	int64_t if_version; /* -1: none */
};

static int parse_set(struct cli_ctx *ctx, int argc, char **argv,
		     struct set_opts *o)
{
	static const struct option opts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"group", required_argument, NULL, 'g'},
	    {"if-version", required_argument, NULL, 'v'},
	    {"output", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->file = optarg;
			break;
		case 'g':
			if (!fl_valid_id(optarg))
				return cli_usage(ctx, "bad --group '%s'",
						 optarg);
			o->group = optarg;
			break;
		case 'v':
			if (fl_parse_uint(optarg, INT64_MAX, &v, NULL))
				return cli_usage(ctx, "bad --if-version '%s'",
						 optarg);
			o->if_version = (int64_t)v;
			break;
		case 'o':
			if (cli_set_output(ctx, optarg))
				return FL_EUSAGE;
			break;
		default:
			return cli_usage(ctx, "unknown option");
		}
	}
	if (o->group && o->if_version >= 0)
		return cli_usage(ctx, "--if-version names one device's "
				      "version: not with --group");
	return 0;
}

/* shadow set --group G: one write per device of the group. */
static int set_group(struct cli_ctx *ctx, const char *group, json_t *patch)
{
	static const struct cli_col cols[] = {
	    {"DEVICE", "device"}, {"VERSION", "version"}, {NULL, NULL}};
	json_t *body =
	    json_pack("{s:s, s:O}", "group", group, "desired", patch);
	json_t *out;
	int rc;

	rc = fl_http_json(ctx->http, "POST", "/api/v1/shadow", body, &out,
			  &ctx->err);
	json_decref(body);
	if (rc)
		return rc;
	cli_print_rows(ctx, json_object_get(out, "devices"), cols);
	json_decref(out);
	return 0;
}

static int set_one(struct cli_ctx *ctx, const char *id, int64_t if_version,
		   json_t *patch)
{
	json_t *body = json_pack("{s:O}", "desired", patch), *out;
	char *path = fl_xasprintf("/api/v1/devices/%s/shadow", id);
	int rc;

	if (if_version >= 0)
		json_object_set_new(body, "if_version",
				    json_integer(if_version));
	rc = fl_http_json(ctx->http, "POST", path, body, &out, &ctx->err);
	free(path);
	json_decref(body);
	if (rc)
		return rc;
	cli_note(ctx, "%s: desired is at version %lld", id,
		 (long long)json_integer_value(json_object_get(
		     json_object_get(out, "desired"), "version")));
	cli_print_result(ctx, out);
	return 0;
}

static int cmd_shadow_set(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	struct set_opts o = {.if_version = -1};
	const char *id = NULL;
	json_t *patch = NULL;
	int rc = parse_set(ctx, argc, argv, &o);

	if (rc)
		return rc;
	if (!o.group) {
		if (optind >= argc || !fl_valid_id(argv[optind]))
			return cli_usage(ctx, "expected a device ID");
		id = argv[optind++];
	}
	if (!o.file == (optind == argc))
		return cli_usage(ctx, "give KEY=VALUE... or --file F");
	rc = read_patch(ctx, o.file, argc, argv, &patch);
	if (rc)
		return rc;
	rc = o.group ? set_group(ctx, o.group, patch)
		     : set_one(ctx, id, o.if_version, patch);
	json_decref(patch);
	return rc;
}

const struct fl_cmd cli_shadow_cmds[] = {
    {"get", cmd_shadow_get, CLI_NEED_SERVER | CLI_ARG(CLI_KIND_DEVICES),
     "shadow get ID [-o json]",
     "show a device's desired and reported state and their delta", "--output",
     NULL},
    {"set", cmd_shadow_set, CLI_NEED_SERVER | CLI_ARG(CLI_KIND_DEVICES),
     "shadow set ID|--group G KEY=VALUE... | --file F [--if-version N]"
     " [-o json]",
     "change desired keys (VALUE as JSON, else text; null deletes)",
     "--file --group --if-version --output", NULL},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
