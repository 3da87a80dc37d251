/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "config.h"
#include "fsutil.h"
#include "util.h"

int cmd_version(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	json_t *j;
	int rc = cli_args(ctx, argc, argv, 0, 0, "no arguments");

	if (rc)
		return rc;
	if (ctx->output == CLI_OUT_JSON) {
		j = json_pack("{s:s}", "version", FLEET_VERSION);
		cli_print_json(j);
		json_decref(j);
	} else {
		printf("fleetctl %s\n", FLEET_VERSION);
	}
	return 0;
}

int cmd_whoami(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct cli_col fields[] = {
	    {"id", "id"}, {"name", "name"}, {"role", "role"}, {NULL, NULL}};
	json_t *me;
	int rc = cli_args(ctx, argc, argv, 0, 0, "no arguments");

	if (rc)
		return rc;
	rc = fl_http_json(ctx->http, "GET", "/api/v1/whoami", NULL, &me,
			  &ctx->err);
	if (rc)
		return rc;
	cli_print_object(ctx, me, fields);
	json_decref(me);
	return 0;
}

/* Copy the members of @from into @to, their names prefixed. */
static void flatten(json_t *to, const char *prefix, const json_t *from)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)from, key, v)
	{
		char *name = fl_xasprintf("%s%s", prefix, key);

		json_object_set(to, name, v);
		free(name);
	}
}

/* A telemetry forwarder's rows in fleetctl status ("-": not configured). */
#define FORWARD_ROWS(b)                                                        \
	{b "-sent", b "_sent"}, {b "-queued", b "_queued"},                    \
	    {b "-retries", b "_retries"}, {b "-dropped", b "_dropped"},        \
	    {b "-refused", b "_refused"},                                      \
	{                                                                      \
		b "-last-error", b "_last_error"                               \
	}

int cmd_status(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct cli_col fields[] = {
	    {"version", "version"},
	    {"replica", "replica"},
	    {"engine", "engine"},
	    {"mqtt", "mqtt_connected"},
	    {"over-budget", "mqtt_over_budget"},
	    {"broker-dropped", "mqtt_broker_dropped"},
	    {"received", "ingest_received"},
	    {"stored", "ingest_stored"},
	    {"duplicates", "ingest_duplicates"},
	    {"rejected", "ingest_rejected"},
	    {"seq-gaps", "ingest_seq_gaps"},
	    {"failed", "ingest_failed"},
	    {"acks", "ingest_acks"},
	    {"queued", "ingest_queued"},
	    {"queue-high-water", "ingest_queue_high_water"},
	    {"queue-capacity", "ingest_queue_capacity"},
	    {"backpressure-waits", "ingest_waits"},
	    {"backpressure-ms", "ingest_wait_ms"},
	    {"illegal-transitions", "jobs_illegal_transitions"},
	    {"stale-events", "jobs_stale_events"},
	    {"diag-waiting", "diag_waiting"},
	    {"diag-replies", "diag_replies"},
	    {"diag-ignored", "diag_ignored"},
	    {"telemetry-points", "telemetry_points"},
	    {"telemetry-duplicates", "telemetry_duplicates"},
	    {"telemetry-rejected", "telemetry_rejected"},
	    {"telemetry-dropped-by-devices", "telemetry_dropped_by_devices"},
	    FORWARD_ROWS("influx"),
	    FORWARD_ROWS("postgres"),
	    {NULL, NULL}};
	json_t *st, *flat, *forward;
	int rc = cli_args(ctx, argc, argv, 0, 0, "no arguments");

	if (rc)
		return rc;
	rc = fl_http_json(ctx->http, "GET", "/api/v1/status", NULL, &st,
			  &ctx->err);
	if (rc)
		return rc;
	if (ctx->output == CLI_OUT_JSON) {
		cli_print_json(st);
	} else {
		flat = json_object();
		flatten(flat, "", st); /* version, replica, engine */
		flatten(flat, "mqtt_", json_object_get(st, "mqtt"));
		flatten(flat, "ingest_", json_object_get(st, "ingest"));
		flatten(flat, "jobs_", json_object_get(st, "jobs"));
		flatten(flat, "diag_", json_object_get(st, "diag"));
		flatten(flat, "telemetry_", json_object_get(st, "telemetry"));
		forward = json_object_get(st, "forward");
		flatten(flat, "influx_", json_object_get(forward, "influx"));
		flatten(flat, "postgres_",
			json_object_get(forward, "postgres"));
		cli_print_object(ctx, flat, fields);
		json_decref(flat);
	}
	json_decref(st);
	return 0;
}

/* Check the settings work, then store them as a context (0600). */
int cmd_login(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct option opts[] = {
	    {"server", required_argument, NULL, 's'},
	    {"ca", required_argument, NULL, 'c'},
	    {"token", required_argument, NULL, 't'},
	    {"token-file", required_argument, NULL, 'T'},
	    {"context", required_argument, NULL, 'x'},
	    {"output", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	const char *name = ctx->context ? ctx->context : "default";
	char *path = NULL, *dir = NULL, *section = NULL, ca_abs[PATH_MAX];
	char *server = NULL;
	struct fl_ini *ini = NULL;
	json_t *me = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			ctx->server = optarg;
			break;
		case 'c':
			ctx->ca = optarg;
			break;
		case 't':
			ctx->token = optarg;
			break;
		case 'T':
			ctx->token_file = optarg;
			break;
		case 'x':
			name = optarg;
			break;
		case 'o':
			if (cli_set_output(ctx, optarg))
				return FL_EUSAGE;
			break;
		default:
			return cli_usage(ctx, "unknown option");
		}
	}
	rc = cli_token(ctx);
	if (rc)
		return rc;
	if (!ctx->server || !ctx->ca || !ctx->token || optind != argc)
		return cli_usage(ctx,
				 "--server, --ca and a token (--token-file, "
				 "FLEET_TOKEN or --token) are required");
	if (!realpath(ctx->ca, ca_abs))
		return fl_fail_errno(&ctx->err, FL_ENOTFOUND,
				     "cannot find CA file '%s'", ctx->ca);
	ctx->ca = ca_abs;
	rc = cli_server_url(ctx, ctx->server, &server);
	if (rc)
		return rc;
	ctx->server = server; /* saved without a trailing '/' */
	rc = cli_connect(ctx);
	if (!rc)
		rc = fl_http_json(ctx->http, "GET", "/api/v1/whoami", NULL, &me,
				  &ctx->err);
	if (rc)
		goto out;
	path = cli_config_path();
	rc = fl_ini_load(path, &ini, &ctx->err);
	if (rc == FL_ENOTFOUND) {
		fl_error_clear(&ctx->err);
		ini = fl_ini_new();
		rc = 0;
	}
	section = cli_context_section(name);
	if (!rc)
		rc = fl_ini_set(ini, "fleetctl", "current-context", name,
				&ctx->err);
	if (!rc)
		rc = fl_ini_set(ini, section, "server", ctx->server, &ctx->err);
	if (!rc)
		rc = fl_ini_set(ini, section, "ca", ca_abs, &ctx->err);
	if (!rc)
		rc = fl_ini_set(ini, section, "token", ctx->token, &ctx->err);
	dir = fl_xstrdup(path);
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	else
		fl_strlcpy(dir, ".", strlen(dir) + 1);
	if (!rc)
		rc = fl_mkdir_p(dir, 0700, &ctx->err);
	if (!rc)
		rc = fl_ini_save(ini, path, 0600, &ctx->err);
	if (rc)
		goto out;
	cli_note(ctx, "logged in to %s as %s (%s); context '%s' saved in %s",
		 ctx->server, json_string_value(json_object_get(me, "name")),
		 json_string_value(json_object_get(me, "role")), name, path);
	cli_print_result(
	    ctx, json_pack("{s:s, s:s, s:s, s:O?, s:O?, s:s}", "context", name,
			   "server", ctx->server, "ca", ca_abs, "name",
			   json_object_get(me, "name"), "role",
			   json_object_get(me, "role"), "config", path));
out:
	json_decref(me);
	fl_ini_free(ini);
	free(section);
	free(dir);
	free(path);
	ctx->server = NULL;
	free(server);
	return rc;
}
