/* SPDX-License-Identifier: MIT */
/*
 * fleetctl rotate ID... | --group G | --all [--wait [--timeout D]]
 *
 * fleetd sends each device a rotate command; with --wait we poll until
 * every device runs on a new certificate and its old one is revoked, or
 * its agent reported the rotation failed, or time runs out.
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

/* "done", "failed: reason" or NULL while still rotating. */
static const char *progress(const json_t *dev, const json_t *cmd,
			    char *buf, size_t len)
{
	const char *old = json_string_value(json_object_get(cmd, "old_serial"));
	const char *cur = json_string_value(json_object_get(dev, "cert_serial"));
	json_t *active = json_object_get(dev, "active_certs");
	json_t *ev = json_object_get(dev, "last_event");

	if (fl_streq(json_string_value(json_object_get(ev, "cmd")),
		     json_string_value(json_object_get(cmd, "command"))) &&
	    fl_streq(json_string_value(json_object_get(ev, "state")),
		     "failed")) {
		snprintf(buf, len, "failed: %s",
			 json_string_value(json_object_get(ev, "reason"))
				 ?: "unknown");
		return buf;
	}
	if (cur && !fl_streq(cur, old) && json_array_size(active) == 1)
		return "done";
	return NULL;
}

/* Poll every device until all are done or failed, or time runs out. */
static int wait_all(struct cli_ctx *ctx, json_t *cmds, int64_t timeout)
{
	int64_t deadline = fl_now_ms() + timeout * 1000;
	size_t n = json_array_size(cmds), left = n, failed = 0, i;
	json_t *cmd;

	while (left && fl_now_ms() < deadline) {
		sleep(1);
		json_array_foreach(cmds, i, cmd) {
			const char *id = json_string_value(json_object_get(cmd, "device"));
			char buf[256], *path;
			const char *st;
			json_t *dev = NULL;

			if (json_object_get(cmd, "result"))
				continue;
			path = fl_xasprintf("/api/v1/devices/%s", id);
			if (!fl_http_json(ctx->http, "GET", path, NULL, &dev,
					  &ctx->err) &&
			    (st = progress(dev, cmd, buf, sizeof(buf)))) {
				json_object_set_new(cmd, "result", json_string(st));
				json_object_set(cmd, "new_serial",
						json_object_get(dev, "cert_serial"));
				failed += strcmp(st, "done") != 0;
				left--;
				cli_note(ctx, "%s: %s", id, st);
			}
			fl_error_clear(&ctx->err);
			json_decref(dev);
			free(path);
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
