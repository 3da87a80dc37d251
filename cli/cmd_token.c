/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "validate.h"

struct token_args {
	const char *role, *group;
	int64_t ttl, uses;
	bool enroll;
};

static int parse_token_create(int argc, char **argv, struct cli_ctx *ctx,
			      struct token_args *a)
{
	static const struct option opts[] = {
		{"role", required_argument, NULL, 'r'},
		{"ttl", required_argument, NULL, 't'},
		{"enroll", no_argument, NULL, 'e'},
		{"group", required_argument, NULL, 'g'},
		{"uses", required_argument, NULL, 'u'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	uint64_t uses;
	int c;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'r': a->role = optarg; break;
		case 'e': a->enroll = true; break;
		case 'g': a->group = optarg; break;
		case 't':
			if (fl_parse_duration(optarg, &a->ttl, &ctx->err))
				return cli_usage(ctx, "%s", ctx->err.msg);
			break;
		case 'u':
			if (fl_parse_uint(optarg, 1000000, &uses, &ctx->err) ||
			    uses == 0)
				return cli_usage(ctx, "bad --uses '%s'", optarg);
			a->uses = (int64_t)uses;
			break;
		case 'o':
			if (cli_set_output(ctx, optarg))
				return FL_EUSAGE;
			break;
		default:
			return cli_usage(ctx, "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage(ctx, "expected one token NAME");
	if (!fl_valid_id(argv[optind]))
		return cli_usage(ctx, "invalid token name '%s'", argv[optind]);
	if (a->enroll ? a->role != NULL : a->role == NULL)
		return cli_usage(ctx, a->enroll ? "--role is for operator tokens"
						: "--role is required");
	if (!a->enroll && (a->group || a->uses))
		return cli_usage(ctx, "--group and --uses need --enroll");
	if (a->group && !fl_valid_id(a->group))
		return cli_usage(ctx, "invalid group '%s'", a->group);
	return 0;
}

static int cmd_token_create(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct cli_col fields[] = {
		{"id", "id"},	    {"name", "name"},	{"kind", "kind"},
		{"role", "role"},   {"group", "group"}, {"uses", "uses"},
		{"expires", "expires"}, {"token", "token"}, {NULL, NULL}};
	struct token_args a = {0};
	json_t *req, *resp = NULL;
	int rc;

	rc = parse_token_create(argc, argv, ctx, &a);
	if (rc)
		return rc;
	req = json_pack("{s:s}", "name", argv[argc - 1]);
	if (a.enroll) {
		json_object_set_new(req, "kind", json_string("enroll"));
		json_object_set_new(req, "uses", json_integer(a.uses ? a.uses : 1));
		if (a.group)
			json_object_set_new(req, "group", json_string(a.group));
	} else {
		json_object_set_new(req, "role", json_string(a.role));
	}
	if (a.ttl)
		json_object_set_new(req, "ttl", json_integer(a.ttl));
	rc = fl_http_json(ctx->http, "POST", "/api/v1/tokens", req, &resp,
			  &ctx->err);
	json_decref(req);
	if (rc)
		return rc;
	cli_print_object(ctx, resp, fields);
	cli_note(ctx, "the token is shown only once: store it now");
	json_decref(resp);
	return 0;
}

static int cmd_token_list(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct cli_col cols[] = {
		{"ID", "id"},		{"NAME", "name"},
		{"KIND", "kind"},	{"ROLE", "role"},
		{"GROUP", "group"},	{"USES LEFT", "uses_left"},
		{"CREATED", "created"}, {"EXPIRES", "expires"},
		{"LAST USED", "last_used"}, {"REVOKED", "revoked"},
		{NULL, NULL}};

	return cli_list_cmd(ctx, argc, argv, "/api/v1/tokens", cols);
}

static int cmd_token_revoke(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	json_t *done;
	int rc;

	if ((rc = cli_args(ctx, argc, argv, 1, 1000, "one or more token ids")))
		return rc;
	for (int i = optind; i < argc; i++)
		if (!fl_valid_id(argv[i]))
			return cli_usage(ctx, "invalid token id '%s'", argv[i]);
	done = json_array();
	for (int i = optind; i < argc && !rc; i++) {
		char *path = fl_xasprintf("/api/v1/tokens/%s", argv[i]);

		rc = fl_http_json(ctx->http, "DELETE", path, NULL, NULL,
				  &ctx->err);
		free(path);
		if (!rc) {
			cli_note(ctx, "revoked token %s", argv[i]);
			json_array_append_new(done, json_string(argv[i]));
		}
	}
	/* what was revoked, even when a later id failed */
	if (json_array_size(done) || !rc)
		cli_print_result(ctx, json_pack("{s:o}", "revoked", done));
	else
		json_decref(done);
	return rc;
}

const struct fl_cmd cli_token_cmds[] = {
	{"create", cmd_token_create, CLI_NEED_SERVER,
	 "token create NAME (--role ROLE | --enroll [--group G] [--uses N])\n"
	 "                      [--ttl DURATION] [-o json]",
	 "create an operator or enrolment token (admin only); printed once",
	 "--role --enroll --group --uses --ttl --output", NULL},
	{"list", cmd_token_list, CLI_NEED_SERVER, "token list [-o json]",
	 "list tokens (admin only)", "--output", NULL},
	{"revoke", cmd_token_revoke, CLI_NEED_SERVER,
	 "token revoke ID... [-o json]", "revoke tokens by id (admin only)",
	 "--output", NULL},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
