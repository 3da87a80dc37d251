/* SPDX-License-Identifier: MIT */
/* fleetctl devices list|show|label|decommission, and rotate. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli.h"
#include "util.h"
#include "validate.h"

static const struct cli_col device_cols[] = {
	{"ID", "id"},	       {"GROUP", "group"},
	{"ONLINE", "online"},   {"FIRMWARE", "firmware"},
	{"LAST SEEN", "last_seen"}, {"CERT EXPIRES", "cert_expires"},
	{NULL, NULL}};

bool cli_filter_ok(int c, const char *v)
{
	char key[80];
	const char *eq = strchr(v, '=');

	if (c == 'g')
		return fl_valid_id(v);
	if (!eq)
		return fl_valid_label(v);
	if ((size_t)(eq - v) >= sizeof(key))
		return false;
	memcpy(key, v, (size_t)(eq - v));
	key[eq - v] = '\0';
	return fl_valid_label(key) && fl_valid_label(eq + 1);
}

/* Append "&key=value" (URL-escaped) to a query string. */
static void add_query(char **q, const char *key, const char *value)
{
	char *esc = curl_easy_escape(NULL, value, 0), *n;

	n = fl_xasprintf("%s%s%s=%s", *q, **q ? "&" : "?", key, esc);
	curl_free(esc);
	free(*q);
	*q = n;
}

static int cmd_devices_list(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct option opts[] = {
		{"group", required_argument, NULL, 'g'},
		{"label", required_argument, NULL, 'l'},
		{"online", no_argument, NULL, 'n'},
		{"offline", no_argument, NULL, 'f'},
		{"version", required_argument, NULL, 'v'},
		{"all", no_argument, NULL, 'a'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	char *q = fl_xstrdup(""), *path;
	json_t *rows;
	int c, rc, presence = 0;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if ((c == 'g' || c == 'l') && !cli_filter_ok(c, optarg)) {
			free(q);
			return cli_usage(ctx, "bad --%s '%s'",
					 c == 'g' ? "group" : "label", optarg);
		}
		switch (c) {
		case 'g': add_query(&q, "group", optarg); break;
		case 'l': add_query(&q, "label", optarg); break;
		case 'n':
		case 'f':
			if (presence && presence != c) {
				free(q);
				return cli_usage(ctx, "--online and --offline "
						      "exclude each other");
			}
			if (!presence)
				add_query(&q, "online", c == 'n' ? "true" : "false");
			presence = c;
			break;
		case 'v': add_query(&q, "version", optarg); break;
		case 'a': add_query(&q, "all", "true"); break;
		case 'o':
			if (!cli_set_output(ctx, optarg))
				break;
			free(q);
			return FL_EUSAGE;
		default:
			free(q);
			return cli_usage(ctx, "unknown option");
		}
	}
	if (optind != argc) {
		free(q);
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	}
	path = fl_xasprintf("/api/v1/devices%s", q);
	rc = fl_http_json(ctx->http, "GET", path, NULL, &rows, &ctx->err);
	free(path);
	free(q);
	if (rc)
		return rc;
	cli_print_rows(ctx, rows, device_cols);
	json_decref(rows);
	return 0;
}

/* Commands taking one device ID and -o. */
static int one_id(int argc, char **argv, struct cli_ctx *ctx,
		  const char **ret_id)
{
	int rc = cli_args(ctx, argc, argv, 1, 1, "one device ID");

	if (rc)
		return rc;
	if (!fl_valid_id(argv[optind]))
		return cli_usage(ctx, "invalid device id '%s'", argv[optind]);
	*ret_id = argv[optind];
	return 0;
}

static int show_device(struct cli_ctx *ctx, json_t *dev)
{
	static const struct cli_col fields[] = {
		{"id", "id"},
		{"state", "state"},
		{"group", "group"},
		{"labels", "labels_text"},
		{"online", "online"},
		{"last seen", "last_seen"},
		{"firmware", "firmware"},
		{"slot", "slot"},
		{"health", "health"},
		{"agent", "agent"},
		{"cert serial", "cert_serial"},
		{"cert expires", "cert_expires"},
		{"enrolled", "created"},
		{"enrolled by", "enrolled_by"},
		{NULL, NULL}};
	const char *k;
	json_t *v;
	char *text = fl_xstrdup("");

	if (ctx->output != CLI_OUT_JSON) {
		json_object_foreach(json_object_get(dev, "labels"), k, v) {
			char *n = fl_xasprintf("%s%s%s=%s", text, *text ? "," : "",
					       k, json_string_value(v));

			free(text);
			text = n;
		}
		json_object_set_new(dev, "labels_text", json_string(text));
	}
	cli_print_object(ctx, dev, fields);
	free(text);
	return 0;
}

static int cmd_devices_show(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	const char *id;
	char *path;
	json_t *dev;
	int rc = one_id(argc, argv, ctx, &id);

	if (rc)
		return rc;
	path = fl_xasprintf("/api/v1/devices/%s", id);
	rc = fl_http_json(ctx->http, "GET", path, NULL, &dev, &ctx->err);
	free(path);
	if (rc)
		return rc;
	show_device(ctx, dev);
	json_decref(dev);
	return 0;
}

/* devices label ID key=value... -key... */
static int cmd_devices_label(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	json_t *set = json_object(), *rm = json_array(), *req, *dev = NULL;
	char *path;
	int rc = 0;

	if (argc < 3 || !fl_valid_id(argv[1]))
		rc = cli_usage(ctx, "expected a device ID and labels");
	for (int i = 2; i < argc && !rc; i++) {
		char *eq = strchr(argv[i], '=');

		if (argv[i][0] == '-' && fl_valid_label(argv[i] + 1)) {
			json_array_append_new(rm, json_string(argv[i] + 1));
			continue;
		}
		if (!eq) {
			rc = cli_usage(ctx, "bad label '%s' (KEY=VALUE or -KEY)",
				       argv[i]);
			break;
		}
		*eq = '\0';
		if (!fl_valid_label(argv[i]) || !fl_valid_label(eq + 1))
			rc = cli_usage(ctx, "bad label '%s'", argv[i]);
		else
			json_object_set_new(set, argv[i], json_string(eq + 1));
	}
	req = json_pack("{s:o, s:o}", "set", set, "remove", rm);
	if (rc)
		goto out;
	path = fl_xasprintf("/api/v1/devices/%s/labels", argv[1]);
	rc = fl_http_json(ctx->http, "POST", path, req, &dev, &ctx->err);
	free(path);
	if (!rc)
		show_device(ctx, dev);
out:
	json_decref(dev);
	json_decref(req);
	return rc;
}

static int cmd_devices_decommission(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	json_t *req, *resp = NULL;
	const char *id;
	char *path;
	int rc = one_id(argc, argv, ctx, &id);

	if (rc)
		return rc;
	path = fl_xasprintf("/api/v1/devices/%s/decommission", id);
	req = json_object();
	rc = fl_http_json(ctx->http, "POST", path, req, &resp, &ctx->err);
	json_decref(req);
	free(path);
	if (!rc && ctx->output == CLI_OUT_JSON)
		cli_print_json(resp);
	else if (!rc)
		cli_note(ctx, "decommissioned %s: %zu certificate(s) revoked",
			 id, json_array_size(json_object_get(resp, "revoked")));
	json_decref(resp);
	return rc;
}

const struct fl_cmd cli_devices_cmds[] = {
	{"decommission", cmd_devices_decommission,
	 CLI_NEED_SERVER | CLI_ARG(CLI_KIND_DEVICES),
	 "devices decommission ID",
	 "revoke a device's certificates and end its broker session",
	 "--output", NULL},
	{"label", cmd_devices_label,
	 CLI_NEED_SERVER | CLI_ARG(CLI_KIND_DEVICES),
	 "devices label ID KEY=VALUE... [-KEY...]",
	 "set or remove labels", "", NULL},
	{"list", cmd_devices_list, CLI_NEED_SERVER,
	 "devices list [--group G] [--label K[=V]] [--online|--offline]\n"
	 "                     [--version V] [--all] [-o json]",
	 "list devices", "--group --label --online --offline --version --all "
			 "--output",
	 NULL},
	{"show", cmd_devices_show,
	 CLI_NEED_SERVER | CLI_ARG(CLI_KIND_DEVICES),
	 "devices show ID [-o json]",
	 "show a device: certificate, last seen, groups, labels", "--output",
	 NULL},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
