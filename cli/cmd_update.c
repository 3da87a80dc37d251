/* SPDX-License-Identifier: MIT */
/*
 * fleetctl update DEVICE... --bundle REF [--wait] [--expire D], rollback
 * --device ID (or ROLLOUT: cmd_rollout.c), jobs list|show|cancel (issues
 * 5 and 8).  With --wait,
 * progress goes to stderr and the exit code says whether every device
 * ended in "succeeded".  Offline devices are named at once: their jobs
 * wait for them until fleetd's deadline (--expire).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli.h"
#include "cli_rollout.h"
#include "proto.h"
#include "util.h"
#include "validate.h"

static const struct cli_col job_cols[] = {
    {"JOB", "job"},	      {"DEVICE", "device"},
    {"TYPE", "type"},	      {"STATE", "state"},
    {"FROM", "from_version"}, {"TO", "to_version"},
    {"REASON", "reason"},     {NULL, NULL}};

/* What fleetd answers when it starts a job (no --wait). */
static const struct cli_col started_cols[] = {
    {"JOB", "job"}, {"DEVICE", "device"}, {"COMMAND", "command"}, {NULL, NULL}};

/* Print a progress line when a job's state or percentage changes. */
static void progress(struct cli_ctx *ctx, json_t *slot, const json_t *job)
{
	const char *state = json_string_value(json_object_get(job, "state"));
	json_int_t bytes = json_integer_value(json_object_get(job, "bytes"));
	json_int_t total = json_integer_value(json_object_get(job, "total"));
	const char *reason = json_string_value(json_object_get(job, "reason"));
	char line[160];

	if (total > 0 && fl_streq(state, "downloading"))
		snprintf(line, sizeof(line), "downloading %d%%",
			 (int)(bytes * 100 / total));
	else if (reason)
		snprintf(line, sizeof(line), "%s: %s", state ? state : "?",
			 reason);
	else
		snprintf(line, sizeof(line), "%s", state ? state : "?");
	if (!fl_streq(json_string_value(json_object_get(slot, "last")), line)) {
		cli_note(ctx, "%s: %s",
			 json_string_value(json_object_get(job, "device")),
			 line);
		json_object_set_new(slot, "last", json_string(line));
	}
}

static void copy_fields(json_t *dst, const json_t *src)
{
	static const char *const keys[] = {
	    "type", "state", "final", "reason", "from_version", "to_version"};

	for (size_t i = 0; i < FL_ARRAY_SIZE(keys); i++)
		json_object_set(dst, keys[i], json_object_get(src, keys[i]));
}

/* A job (fleetd's JSON) that ended in "succeeded". */
static bool succeeded(const json_t *job)
{
	return fl_job_state_parse(json_string_value(
		   json_object_get(job, "state"))) == FL_JOB_SUCCEEDED;
}

/* Poll the jobs in @jobs ([{"job", "device"}]) until all are final. */
static int wait_jobs(struct cli_ctx *ctx, json_t *jobs, int64_t timeout)
{
	int64_t deadline = fl_now_ms() + timeout * 1000;
	size_t left = json_array_size(jobs), bad = 0, i;
	json_t *j;

	while (left && fl_now_ms() < deadline) {
		json_array_foreach(jobs, i, j)
		{
			const char *id =
			    json_string_value(json_object_get(j, "job"));
			char *path;
			json_t *cur = NULL;

			if (json_is_true(json_object_get(j, "final")))
				continue;
			path = fl_xasprintf("/api/v1/jobs/%s", id);
			if (!fl_http_json(ctx->http, "GET", path, NULL, &cur,
					  &ctx->err)) {
				progress(ctx, j, cur);
				copy_fields(j, cur);
				if (json_is_true(
					json_object_get(cur, "final"))) {
					left--;
					bad += !succeeded(cur);
				}
			}
			fl_error_clear(&ctx->err);
			json_decref(cur);
			free(path);
		}
		if (left)
			usleep(500 * 1000);
	}
	if (left)
		return fl_fail(&ctx->err, FL_ETIMEOUT,
			       "%zu job(s) unfinished after %llds", left,
			       (long long)timeout);
	if (bad)
		return fl_fail(&ctx->err, FL_ERR,
			       "%zu of %zu job(s) did not succeed", bad,
			       json_array_size(jobs));
	return 0;
}

/* --wait, --timeout D and --expire D (0 = fleetd's default). */
struct wait_opts {
	bool wait;
	int64_t timeout, expire;
};

static int wait_opt(int c, const char *arg, struct cli_ctx *ctx,
		    struct wait_opts *w)
{
	if (c == 'w') {
		w->wait = true;
		return 0;
	}
	if (fl_parse_duration(arg, c == 'e' ? &w->expire : &w->timeout,
			      &ctx->err))
		return cli_usage(ctx, "%s", ctx->err.msg);
	if (c == 'e' && w->expire <= 0)
		return cli_usage(ctx, "--expire must be at least 1s");
	return 0;
}

/* Name the devices that are offline: their jobs wait for them. */
static void note_offline(const json_t *jobs)
{
	size_t i;
	json_t *j;

	json_array_foreach(jobs, i,
			   j) if (json_is_false(json_object_get(j, "online")))
	    fprintf(stderr,
		    "fleetctl: %s is offline: its job starts when it "
		    "connects; fleetd gives up at %s\n",
		    json_string_value(json_object_get(j, "device")),
		    json_string_value(json_object_get(j, "expires"))
			?: "its deadline");
}

/* Print what was started, or the final states after --wait. */
static int report(struct cli_ctx *ctx, json_t *jobs, json_t *errors,
		  const struct wait_opts *w)
{
	size_t i;
	json_t *e;
	int rc = 0;

	json_array_foreach(errors, i, e)
	    fprintf(stderr, "fleetctl: %s: %s\n",
		    json_string_value(json_object_get(e, "device")),
		    json_string_value(json_object_get(e, "error")));
	note_offline(jobs);
	if (w->wait && json_array_size(jobs))
		rc = wait_jobs(ctx, jobs, w->timeout);
	cli_print_rows(ctx, jobs, w->wait ? job_cols : started_cols);
	if (!rc && json_array_size(errors))
		rc = fl_fail(&ctx->err, FL_ERR, "%zu device(s) could not start",
			     json_array_size(errors));
	return rc;
}

int cmd_update(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct option opts[] = {
	    {"bundle", required_argument, NULL, 'b'},
	    {"wait", no_argument, NULL, 'w'},
	    {"timeout", required_argument, NULL, 't'},
	    {"expire", required_argument, NULL, 'e'},
	    {"output", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	const char *bundle = NULL;
	struct wait_opts w = {.timeout = 1800};
	json_t *devs, *req, *resp = NULL;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (c == 'b')
			bundle = optarg;
		else if (c == 'w' || c == 't' || c == 'e')
			rc = wait_opt(c, optarg, ctx, &w);
		else if (c != 'o')
			return cli_usage(ctx, "unknown option");
		else if (cli_set_output(ctx, optarg))
			return FL_EUSAGE; /* cli_set_output said why */
		if (rc)
			return rc;
	}
	if (optind >= argc || !bundle)
		return cli_usage(ctx, "expected DEVICE... and --bundle REF");
	devs = json_array();
	for (int i = optind; i < argc; i++) {
		if (!fl_valid_id(argv[i])) {
			json_decref(devs);
			return cli_usage(ctx, "invalid device id '%s'",
					 argv[i]);
		}
		json_array_append_new(devs, json_string(argv[i]));
	}
	req = json_pack("{s:o, s:s}", "devices", devs, "bundle", bundle);
	if (w.expire)
		json_object_set_new(req, "expire", json_integer(w.expire));
	rc = fl_http_json(ctx->http, "POST", "/api/v1/updates", req, &resp,
			  &ctx->err);
	json_decref(req);
	if (!rc)
		rc = report(ctx, json_object_get(resp, "jobs"),
			    json_object_get(resp, "errors"), &w);
	json_decref(resp);
	return rc;
}

/*
 * rollback ROLLOUT: every device the rollout updated goes back (fleetd's
 * engine does it); with --wait, follow it until it is rolled back.
 */
static int rollback_rollout(struct cli_ctx *ctx, const char *id,
			    const struct wait_opts *w)
{
	json_t *r = NULL;
	int rc;

	if (!fl_valid_id(id))
		return cli_usage(ctx, "invalid rollout id '%s'", id);
	if (w->expire)
		return cli_usage(ctx, "--expire is for --device only");
	rc = cli_rollout_act(ctx, id, "rollback", &r);
	if (!rc) {
		cli_note(ctx, "rollout %s is rolling back", id);
		if (!w->wait)
			cli_rollout_print(ctx, r, false);
	}
	json_decref(r);
	if (!rc && w->wait)
		rc = cli_rollout_follow(ctx, id, w->timeout, 2, "rolled-back");
	return rc;
}

int cmd_rollback(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct option opts[] = {
	    {"device", required_argument, NULL, 'd'},
	    {"wait", no_argument, NULL, 'w'},
	    {"timeout", required_argument, NULL, 't'},
	    {"expire", required_argument, NULL, 'e'},
	    {"output", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	const char *dev = NULL;
	struct wait_opts w = {.timeout = 900};
	json_t *req, *resp = NULL, *jobs;
	char *path;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (c == 'd')
			dev = optarg;
		else if (c == 'w' || c == 't' || c == 'e')
			rc = wait_opt(c, optarg, ctx, &w);
		else if (c != 'o')
			return cli_usage(ctx, "unknown option");
		else if (cli_set_output(ctx, optarg))
			return FL_EUSAGE; /* cli_set_output said why */
		if (rc)
			return rc;
	}
	if (!dev && optind + 1 == argc)
		return rollback_rollout(ctx, argv[optind], &w);
	if (!dev || optind != argc || !fl_valid_id(dev))
		return cli_usage(ctx, "expected ROLLOUT or --device ID");
	path = fl_xasprintf("/api/v1/devices/%s/rollback", dev);
	req = json_object();
	if (w.expire)
		json_object_set_new(req, "expire", json_integer(w.expire));
	rc = fl_http_json(ctx->http, "POST", path, req, &resp, &ctx->err);
	json_decref(req);
	free(path);
	if (rc)
		return rc;
	jobs = json_pack("[O]", resp);
	rc = report(ctx, jobs, NULL, &w);
	json_decref(jobs);
	json_decref(resp);
	return rc;
}

/* One event of `jobs show`: time, state and why (a final state's
 * reason, or a note such as the mirror's failure). */
static void print_event(const json_t *ev)
{
	const char *why = json_string_value(json_object_get(ev, "reason"));

	if (!why)
		why = json_string_value(json_object_get(ev, "detail"));
	printf("  %s  %s%s%s\n",
	       json_string_value(json_object_get(ev, "ts")) ?: "-",
	       json_string_value(json_object_get(ev, "state")) ?: "?",
	       why ? ": " : "", why ? why : "");
}

/*
 * A jobs list filter value fleetd could match: a job state (proto.h: the
 * protocol's and the ones fleetd sets itself), a limit of 1..10000.
 * Anything else is a usage error, never an empty list.
 */
static int job_filter_ok(struct cli_ctx *ctx, int c, const char *v)
{
	uint64_t n;

	if (c == 'l' && (fl_parse_uint(v, 10000, &n, NULL) || n == 0))
		return cli_usage(ctx, "--limit takes 1 to 10000, not '%s'", v);
	if (c == 'd' && !fl_valid_id(v))
		return cli_usage(ctx, "invalid device id '%s'", v);
	if (c == 'r' && !fl_valid_id(v))
		return cli_usage(ctx, "invalid rollout id '%s'", v);
	if (c != 's')
		return 0;
	if (fl_job_state_parse(v))
		return 0;
	return cli_usage(ctx, "unknown job state '%s'", v);
}

static int cmd_jobs_list(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct option opts[] = {
	    {"device", required_argument, NULL, 'd'},
	    {"state", required_argument, NULL, 's'},
	    {"limit", required_argument, NULL, 'l'},
	    {"rollout", required_argument, NULL, 'r'},
	    {"output", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	static const struct cli_col cols[] = {
	    {"JOB", "id"},	  {"DEVICE", "device"}, {"TYPE", "type"},
	    {"STATE", "state"},	  {"TO", "to_version"}, {"UPDATED", "updated"},
	    {"REASON", "reason"}, {NULL, NULL}};
	char *q = fl_xstrdup(""), *path, *n;
	json_t *rows;
	int c, rc;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		const char *key = c == 'd'   ? "device"
				  : c == 's' ? "state"
				  : c == 'l' ? "limit"
				  : c == 'r' ? "rollout"
					     : NULL;
		char *esc;

		if (!key) {
			if (c == 'o' && !cli_set_output(ctx, optarg))
				continue;
			free(q);
			return c == 'o' ? FL_EUSAGE
					: cli_usage(ctx, "unknown option");
		}
		if (job_filter_ok(ctx, c, optarg)) {
			free(q);
			return FL_EUSAGE;
		}
		esc = curl_easy_escape(NULL, optarg, 0);
		n = fl_xasprintf("%s%c%s=%s", q, *q ? '&' : '?', key, esc);
		curl_free(esc);
		free(q);
		q = n;
	}
	path = fl_xasprintf("/api/v1/jobs%s", q);
	rc = fl_http_json(ctx->http, "GET", path, NULL, &rows, &ctx->err);
	free(path);
	free(q);
	if (rc)
		return rc;
	cli_print_rows(ctx, rows, cols);
	json_decref(rows);
	return 0;
}

static int cmd_jobs_show(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct cli_col f[] = {{"job", "id"},
					   {"device", "device"},
					   {"type", "type"},
					   {"bundle", "bundle"},
					   {"state", "state"},
					   {"stage", "stage"},
					   {"reason", "reason"},
					   {"from", "from_version"},
					   {"to", "to_version"},
					   {"created", "created"},
					   {"updated", "updated"},
					   {"expires", "expires"},
					   {NULL, NULL}};
	json_t *job, *ev;
	char *path;
	size_t i;
	int rc;

	if ((rc = cli_args(ctx, argc, argv, 1, 1, "one JOB id")))
		return rc;
	if (!fl_valid_id(argv[optind]))
		return cli_usage(ctx, "invalid job id '%s'", argv[optind]);
	path = fl_xasprintf("/api/v1/jobs/%s", argv[optind]);
	rc = fl_http_json(ctx->http, "GET", path, NULL, &job, &ctx->err);
	free(path);
	if (rc)
		return rc;
	cli_print_object(ctx, job, f);
	if (ctx->output != CLI_OUT_JSON) {
		printf("events:\n");
		json_array_foreach(json_object_get(job, "events"), i, ev)
		    print_event(ev);
	}
	json_decref(job);
	return 0;
}

/* jobs cancel JOB: fleetd stops waiting for it; the device is free. */
static int cmd_jobs_cancel(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct cli_col f[] = {
	    {"job", "id"},	{"device", "device"}, {"state", "state"},
	    {"stage", "stage"}, {"reason", "reason"}, {NULL, NULL}};
	json_t *req, *job = NULL;
	char *path;
	int rc;

	if ((rc = cli_args(ctx, argc, argv, 1, 1, "one JOB id")))
		return rc;
	if (!fl_valid_id(argv[optind]))
		return cli_usage(ctx, "invalid job id '%s'", argv[optind]);
	path = fl_xasprintf("/api/v1/jobs/%s/cancel", argv[optind]);
	req = json_object();
	rc = fl_http_json(ctx->http, "POST", path, req, &job, &ctx->err);
	json_decref(req);
	free(path);
	if (rc)
		return rc;
	json_object_del(job, "events");
	cli_print_object(ctx, job, f);
	json_decref(job);
	return 0;
}

const struct fl_cmd cli_jobs_cmds[] = {
	{"cancel", cmd_jobs_cancel,
	 CLI_NEED_SERVER | CLI_ARG(CLI_KIND_JOBS), "jobs cancel JOB [-o json]",
	 "stop a job that has not finished (the device is free again)",
	 "--output", NULL},
	{"list", cmd_jobs_list, CLI_NEED_SERVER,
	 "jobs list [--device ID] [--state S] [--rollout R] [--limit N]"
	 " [-o json]",
	 "update and rollback jobs, newest first",
	 "--device --state --rollout --limit --output", NULL},
	{"show", cmd_jobs_show,
	 CLI_NEED_SERVER | CLI_ARG(CLI_KIND_JOBS), "jobs show JOB [-o json]",
	 "one job with every state it went through", "--output", NULL},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
