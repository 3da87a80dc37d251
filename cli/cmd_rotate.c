/* SPDX-License-Identifier: MIT */
/*
 * fleetctl rotate ID... | --group G | --all [--wait [--timeout D]]
 *
 * fleetd starts a rotate job per device (docs/protocol.md); with --wait
 * we poll the jobs until each is over (succeeded: the device runs on its
 * new certificate and fleetd revoked the old one; failed, cancelled or
 * expired), or time runs out.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"
#include "validate.h"

struct rotate_args {
	const char *group;
	bool all, wait;
	int64_t timeout;
};

static int parse(int argc, char **argv, struct cli_ctx *ctx,
		 struct rotate_args *a)
{
	static const struct option opts[] = {
		{"group", required_argument, NULL, 'g'},
		{"all", no_argument, NULL, 'a'},
		{"wait", no_argument, NULL, 'w'},
		{"timeout", required_argument, NULL, 't'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	int c, named;

	a->timeout = 120;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'g': a->group = optarg; break;
		case 'a': a->all = true; break;
		case 'w': a->wait = true; break;
		case 't':
			if (fl_parse_duration(optarg, &a->timeout, &ctx->err))
				return cli_usage(ctx, "%s", ctx->err.msg);
			break;
		case 'o':
			if (cli_set_output(ctx, optarg))
				return FL_EUSAGE;
			break;
		default:
			return cli_usage(ctx, "unknown option");
		}
	}
	named = (optind < argc) + (a->group != NULL) + a->all;
	if (named != 1)
		return cli_usage(ctx, "name devices: IDs, --group G or --all");
	for (int i = optind; i < argc; i++)
		if (!fl_valid_id(argv[i]))
			return cli_usage(ctx, "invalid device id '%s'", argv[i]);
	return 0;
}

static json_t *request(int argc, char **argv, const struct rotate_args *a)
{
	json_t *ids;

	if (a->all)
		return json_pack("{s:b}", "all", 1);
	if (a->group)
		return json_pack("{s:s}", "group", a->group);
	ids = json_array();
	for (int i = optind; i < argc; i++)
		json_array_append_new(ids, json_string(argv[i]));
	return json_pack("{s:o}", "ids", ids);
}

/* The serial a rotation's job ended on: its last event's. */
static json_t *new_serial(const json_t *job)
{
	json_t *evs = json_object_get(job, "events");
	size_t n = json_array_size(evs);

	return n ? json_object_get(json_array_get(evs, n - 1), "serial")
		 : NULL;
}

/* "done", "STATE: reason" or NULL while the rotate job is open. */
static const char *progress(const json_t *job, char *buf, size_t len)
{
	const char *state = json_string_value(json_object_get(job, "state"));

	if (!json_is_true(json_object_get(job, "final")))
		return NULL;
	if (fl_streq(state, "succeeded"))
		return "done";
	snprintf(buf, len, "%s: %s", state ? state : "?",
		 json_string_value(json_object_get(job, "reason")) ?: "unknown");
	return buf;
}

/* Ask fleetd about @cmd's job once; true when it is over. */
static bool poll_one(struct cli_ctx *ctx, json_t *cmd)
{
	const char *id = json_string_value(json_object_get(cmd, "job"));
	char buf[256], *path;
	const char *st = NULL;
	json_t *job = NULL;

	if (!id) {
		json_object_set_new(cmd, "result",
				    json_string("failed: fleetd started no job"));
		return true;
	}
	path = fl_xasprintf("/api/v1/jobs/%s", id);
	if (!fl_http_json(ctx->http, "GET", path, NULL, &job, &ctx->err) &&
	    (st = progress(job, buf, sizeof(buf)))) {
		json_object_set_new(cmd, "result", json_string(st));
		json_object_set(cmd, "new_serial",
				new_serial(job) ?: json_null());
	}
	fl_error_clear(&ctx->err);
	json_decref(job);
	free(path);
	return st != NULL;
}

/* Poll every device's rotate job until all are over, or time runs out. */
static int wait_all(struct cli_ctx *ctx, json_t *cmds, int64_t timeout)
{
	int64_t deadline = fl_now_ms() + timeout * 1000;
	size_t n = json_array_size(cmds), left = n, failed = 0, i;
	json_t *cmd;

	while (left && fl_now_ms() < deadline) {
		sleep(1);
		json_array_foreach(cmds, i, cmd) {
			const char *res;

			if (json_object_get(cmd, "result") || !poll_one(ctx, cmd))
				continue;
			res = json_string_value(json_object_get(cmd, "result"));
			failed += strcmp(res, "done") != 0;
			left--;
			cli_note(ctx, "%s: %s",
				 json_string_value(json_object_get(cmd, "device")),
				 res);
		}
	}
	if (left)
		return fl_fail(&ctx->err, FL_ETIMEOUT,
			       "%zu of %zu devices did not finish rotating in %llds",
			       left, n, (long long)timeout);
	if (failed)
		return fl_fail(&ctx->err, FL_ERR, "%zu of %zu rotations failed",
			       failed, n);
	return 0;
}

int cmd_rotate(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct cli_col cols[] = {
		{"DEVICE", "device"}, {"COMMAND", "command"},
		{"OLD SERIAL", "old_serial"}, {"RESULT", "result"},
		{"NEW SERIAL", "new_serial"}, {NULL, NULL}};
	static const struct cli_col sent_cols[] = {
		{"DEVICE", "device"}, {"COMMAND", "command"},
		{"OLD SERIAL", "old_serial"}, {NULL, NULL}};
	struct rotate_args a = {0};
	json_t *req, *resp = NULL, *cmds;
	int rc;

	rc = parse(argc, argv, ctx, &a);
	if (rc)
		return rc;
	req = request(argc, argv, &a);
	rc = fl_http_json(ctx->http, "POST", "/api/v1/rotate", req, &resp,
			  &ctx->err);
	json_decref(req);
	if (rc)
		return rc;
	cmds = json_object_get(resp, "commands");
	cli_note(ctx, "sent rotate to %zu device(s)", json_array_size(cmds));
	if (a.wait)
		rc = wait_all(ctx, cmds, a.timeout);
	cli_print_rows(ctx, cmds, a.wait ? cols : sent_cols);
	json_decref(resp);
	return rc;
}
