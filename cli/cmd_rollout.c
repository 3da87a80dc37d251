/* SPDX-License-Identifier: MIT */
/*
 * fleetctl rollout plan|create|list|status|watch|pause|resume|abort and
 * rollback ROLLOUT (issue 10; docs/protocol.md "Rollouts").  Every flag
 * is checked here first, with the parsers fleetd uses (common/rollout.h,
 * validate.h): a bad one is a usage error (exit 2) before any request.
 * What only fleetd can judge (an unknown bundle: 3; an empty target,
 * waves that do not add up for the target's size: 1; busy devices: 5)
 * comes back as its error.  Showing a rollout is rollout_view.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"
#include "cli_rollout.h"
#include "rollout.h"
#include "util.h"
#include "validate.h"

/* Caps of a spec (server-stub/rollout_spec.h says the same). */
#define MAX_LIST 10000
#define MAX_SOAK (30 * 86400)
#define MAX_WINDOW (7 * 86400)
#define MAX_TIMEOUT (365 * 86400)
#define MAX_RATE 1000000

enum {
	O_BUNDLE = 256, O_GROUP, O_LABEL, O_HARDWARE, O_FROM, O_DEVICE,
	O_WAVES, O_CANARY, O_SOAK, O_MAXFAIL, O_MINSAMPLE, O_WINDOW,
	O_TIMEOUT, O_RATE, O_CONC, O_NOAUTO, O_ID, O_OUTPUT
};

static const struct option spec_opts[] = {
	{"bundle", required_argument, NULL, O_BUNDLE},
	{"group", required_argument, NULL, O_GROUP},
	{"label", required_argument, NULL, O_LABEL},
	{"hardware", required_argument, NULL, O_HARDWARE},
	{"from-version", required_argument, NULL, O_FROM},
	{"device", required_argument, NULL, O_DEVICE},
	{"waves", required_argument, NULL, O_WAVES},
	{"canary", required_argument, NULL, O_CANARY},
	{"soak", required_argument, NULL, O_SOAK},
	{"max-failures", required_argument, NULL, O_MAXFAIL},
	{"min-sample", required_argument, NULL, O_MINSAMPLE},
	{"health-window", required_argument, NULL, O_WINDOW},
	{"device-timeout", required_argument, NULL, O_TIMEOUT},
	{"rate", required_argument, NULL, O_RATE},
	{"concurrency", required_argument, NULL, O_CONC},
	{"no-auto-rollback", no_argument, NULL, O_NOAUTO},
	{"id", required_argument, NULL, O_ID},
	{"output", required_argument, NULL, 'o'},
	{NULL, 0, NULL, 0},
};

/* Member @key of @obj (created on first use). */
static json_t *member(json_t *obj, const char *key, json_t *(*make)(void))
{
	json_t *v = json_object_get(obj, key);

	if (!v) {
		v = make();
		json_object_set_new(obj, key, v);
	}
	return v;
}

/* Append @id to the array @key of @obj, once: a usage error twice. */
static int add_id(struct cli_ctx *ctx, json_t *obj, const char *key,
		  const char *flag, const char *id)
{
	json_t *a = member(obj, key, json_array), *v;
	size_t i;

	if (!fl_valid_id(id))
		return cli_usage(ctx, "invalid device id '%s' for %s", id, flag);
	json_array_foreach(a, i, v)
		if (fl_streq(json_string_value(v), id))
			return cli_usage(ctx, "%s %s is given twice", flag, id);
	if (json_array_size(a) >= MAX_LIST)
		return cli_usage(ctx, "more than %d %s", MAX_LIST, flag);
	json_array_append_new(a, json_string(id));
	return 0;
}

static int add_label(struct cli_ctx *ctx, json_t *target, const char *kv)
{
	json_t *labels = member(target, "labels", json_object);
	const char *eq = strchr(kv, '=');
	char *key;
	int rc = 0;

	if (!eq)
		return cli_usage(ctx, "--label takes KEY=VALUE, not '%s'", kv);
	key = fl_xstrndup(kv, (size_t)(eq - kv));
	if (!fl_valid_label(key) || !fl_valid_label(eq + 1))
		rc = cli_usage(ctx, "invalid label '%s'", kv);
	else if (json_object_get(labels, key))
		rc = cli_usage(ctx, "--label %s is given twice", key);
	else
		json_object_set_new(labels, key, json_string(eq + 1));
	free(key);
	return rc;
}

/* A duration in @min..@max seconds into @obj's @key. */
static int add_secs(struct cli_ctx *ctx, json_t *obj, const char *key,
		    const char *flag, const char *v, int64_t min, int64_t max)
{
	int64_t s;

	if (fl_parse_duration(v, &s, NULL) || s < min || s > max)
		return cli_usage(ctx, "%s takes a duration of %llds to %llds, "
				      "not '%s'",
				 flag, (long long)min, (long long)max, v);
	json_object_set_new(obj, key, json_integer(s));
	return 0;
}

/* A number in @min..@max ("%" allowed with @pct) into @obj's @key. */
static int add_num(struct cli_ctx *ctx, json_t *obj, const char *key,
		   const char *flag, const char *v, uint64_t min, uint64_t max,
		   bool pct)
{
	char buf[24];
	size_t n = strlen(v);
	uint64_t x;

	if (pct && n && n < sizeof(buf) && v[n - 1] == '%') {
		memcpy(buf, v, n - 1);
		buf[n - 1] = '\0';
		v = buf;
	}
	if (fl_parse_uint(v, max, &x, NULL) || x < min)
		return cli_usage(ctx, "%s takes %llu to %llu, not '%s'", flag,
				 (unsigned long long)min,
				 (unsigned long long)max, v);
	json_object_set_new(obj, key, json_integer((json_int_t)x));
	return 0;
}

static int add_waves(struct cli_ctx *ctx, json_t *spec, const char *list)
{
	struct fl_wave_stop v[FL_WAVES_MAX];
	struct fl_error err = {0};
	char buf[FL_WAVE_STOP_TEXT];
	json_t *a = json_array();
	size_t n;

	if (fl_wave_stops_parse(list, v, &n, &err)) {
		json_decref(a);
		return cli_usage(ctx, "--waves: %s", err.msg);
	}
	for (size_t i = 0; i < n; i++) {
		fl_wave_stop_format(&v[i], buf);
		json_array_append_new(a, json_string(buf));
	}
	json_object_set_new(spec, "waves", a);
	return 0;
}

static int add_text(struct cli_ctx *ctx, json_t *obj, const char *key,
		    const char *flag, const char *v, bool (*ok)(const char *))
{
	if (json_object_get(obj, key))
		return cli_usage(ctx, "%s is given twice", flag);
	if (!ok(v))
		return cli_usage(ctx, "invalid %s '%s'", flag, v);
	json_object_set_new(obj, key, json_string(v));
	return 0;
}

static bool ok_version(const char *s)
{
	return *s && fl_valid_text(s, 64);
}

static bool ok_any(const char *s)
{
	return *s && fl_valid_text(s, 200);
}

/* One spec flag into @spec (its target and failure objects). */
static int spec_flag(struct cli_ctx *ctx, int c, const char *v, json_t *spec)
{
	json_t *t = member(spec, "target", json_object);
	json_t *fail = member(spec, "failure", json_object);

	switch (c) {
	case O_BUNDLE: return add_text(ctx, spec, "bundle", "--bundle", v, ok_any);
	case O_GROUP: return add_text(ctx, t, "group", "--group", v, fl_valid_id);
	case O_LABEL: return add_label(ctx, t, v);
	case O_HARDWARE:
		return add_text(ctx, t, "hardware", "--hardware", v,
				fl_valid_label);
	case O_FROM:
		return add_text(ctx, t, "version", "--from-version", v,
				ok_version);
	case O_DEVICE: return add_id(ctx, t, "devices", "--device", v);
	case O_WAVES: return add_waves(ctx, spec, v);
	case O_CANARY: return add_id(ctx, spec, "canaries", "--canary", v);
	case O_SOAK:
		return add_secs(ctx, spec, "soak_s", "--soak", v, 0, MAX_SOAK);
	case O_MAXFAIL:
		return add_num(ctx, fail, "percent", "--max-failures", v, 0, 100,
			       true);
	case O_MINSAMPLE:
		return add_num(ctx, fail, "min_sample", "--min-sample", v, 1,
			       MAX_RATE, false);
	case O_WINDOW:
		return add_secs(ctx, spec, "health_window_s", "--health-window",
				v, 0, MAX_WINDOW);
	case O_TIMEOUT:
		return add_secs(ctx, spec, "device_timeout_s",
				"--device-timeout", v, 1, MAX_TIMEOUT);
	case O_RATE:
		return add_num(ctx, spec, "rate_per_min", "--rate", v, 0,
			       MAX_RATE, false);
	case O_CONC:
		return add_num(ctx, spec, "concurrency", "--concurrency", v, 0,
			       MAX_RATE, false);
	case O_NOAUTO:
		json_object_set_new(spec, "auto_rollback", json_false());
		return 0;
	case O_ID: return add_text(ctx, spec, "id", "--id", v, fl_valid_id);
	case 'o': return cli_set_output(ctx, v);
	default: return cli_usage(ctx, "unknown option");
	}
}

/* The flags of plan and create as a spec; *ret owned by the caller. */
static int parse_spec(struct cli_ctx *ctx, int argc, char **argv,
		      json_t **ret)
{
	json_t *spec = json_object();
	int c, rc = 0;

	while (!rc && (c = getopt_long(argc, argv, "o:", spec_opts, NULL)) != -1)
		rc = spec_flag(ctx, c, optarg, spec);
	if (!rc && optind != argc)
		rc = cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	if (!rc && !json_object_get(spec, "bundle"))
		rc = cli_usage(ctx, "--bundle is required");
	if (!rc && !json_object_size(json_object_get(spec, "failure")))
		json_object_del(spec, "failure");
	if (rc) {
		json_decref(spec);
		return rc;
	}
	*ret = spec;
	return 0;
}

static int cmd_rollout_plan(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	json_t *spec = NULL, *plan = NULL;
	int rc;

	rc = parse_spec(ctx, argc, argv, &spec);
	if (!rc)
		rc = fl_http_json(ctx->http, "POST", "/api/v1/rollouts/plan",
				  spec, &plan, &ctx->err);
	json_decref(spec);
	if (!rc)
		cli_rollout_print_plan(ctx, plan);
	json_decref(plan);
	return rc;
}

static int cmd_rollout_create(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	json_t *spec = NULL, *r = NULL;
	int rc;

	rc = parse_spec(ctx, argc, argv, &spec);
	if (!rc)
		rc = fl_http_json(ctx->http, "POST", "/api/v1/rollouts", spec,
				  &r, &ctx->err);
	json_decref(spec);
	if (!rc) {
		cli_note(ctx, "rollout %s started: follow it with 'fleetctl "
			      "rollout watch %s'",
			 json_string_value(json_object_get(r, "id")),
			 json_string_value(json_object_get(r, "id")));
		cli_rollout_print(ctx, r, false);
	}
	json_decref(r);
	return rc;
}

/* GET /api/v1/rollouts/@id (with the device rows) into *@ret. */
int cli_rollout_get(struct cli_ctx *ctx, const char *id, bool devices,
		    json_t **ret)
{
	char *esc = curl_easy_escape(NULL, id, 0);
	char *path = fl_xasprintf("/api/v1/rollouts/%s%s", esc,
				  devices ? "?devices=1" : "");
	int rc = fl_http_json(ctx->http, "GET", path, NULL, ret, &ctx->err);

	curl_free(esc);
	free(path);
	return rc;
}

/* The one ROLLOUT argument (and -o, and @extra options). */
static int rollout_arg(struct cli_ctx *ctx, int argc, char **argv,
		       const char **ret)
{
	int rc = cli_args(ctx, argc, argv, 1, 1, "one ROLLOUT id");

	if (rc)
		return rc;
	if (!fl_valid_id(argv[optind]))
		return cli_usage(ctx, "invalid rollout id '%s'", argv[optind]);
	*ret = argv[optind];
	return 0;
}

static int cmd_rollout_status(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct option opts[] = {
		{"devices", no_argument, NULL, 'd'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	bool devices = false;
	json_t *r = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (c == 'd')
			devices = true;
		else if (c != 'o')
			return cli_usage(ctx, "unknown option");
		else if (cli_set_output(ctx, optarg))
			return FL_EUSAGE;
	}
	if (optind + 1 != argc)
		return cli_usage(ctx, "expected one ROLLOUT id");
	if (!fl_valid_id(argv[optind]))
		return cli_usage(ctx, "invalid rollout id '%s'", argv[optind]);
	rc = cli_rollout_get(ctx, argv[optind], devices, &r);
	if (!rc)
		cli_rollout_print(ctx, r, devices);
	json_decref(r);
	return rc;
}

static int cmd_rollout_list(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"limit", required_argument, NULL, 'l'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	const char *state = NULL;
	uint64_t limit = 100;
	json_t *rows = NULL;
	char *path;
	int c, rc;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (c == 's' && fl_rollout_state_parse(optarg))
			state = optarg;
		else if (c == 's')
			return cli_usage(ctx, "unknown rollout state '%s'",
					 optarg);
		else if (c == 'l' && (fl_parse_uint(optarg, 1000, &limit, NULL) ||
				      !limit))
			return cli_usage(ctx, "--limit takes 1 to 1000, not '%s'",
					 optarg);
		else if (c == 'o' && cli_set_output(ctx, optarg))
			return FL_EUSAGE;
		else if (c != 'l' && c != 'o')
			return cli_usage(ctx, "unknown option");
	}
	if (optind != argc)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	path = fl_xasprintf("/api/v1/rollouts?limit=%llu%s%s",
			    (unsigned long long)limit, state ? "&state=" : "",
			    state ? state : "");
	rc = fl_http_json(ctx->http, "GET", path, NULL, &rows, &ctx->err);
	free(path);
	if (!rc)
		cli_rollout_print_list(ctx, rows);
	json_decref(rows);
	return rc;
}

/* POST /api/v1/rollouts/@id/@verb; prints the rollout. */
int cli_rollout_act(struct cli_ctx *ctx, const char *id, const char *verb,
		    json_t **ret)
{
	char *path = fl_xasprintf("/api/v1/rollouts/%s/%s", id, verb);
	json_t *body = json_object();
	int rc;

	rc = fl_http_json(ctx->http, "POST", path, body, ret, &ctx->err);
	json_decref(body);
	free(path);
	return rc;
}

static int act(int argc, char **argv, struct cli_ctx *ctx, const char *verb)
{
	const char *id = NULL;
	json_t *r = NULL;
	int rc;

	rc = rollout_arg(ctx, argc, argv, &id);
	if (!rc)
		rc = cli_rollout_act(ctx, id, verb, &r);
	if (!rc) {
		cli_note(ctx, "rollout %s is %s", id,
			 json_string_value(json_object_get(r, "state")));
		cli_rollout_print(ctx, r, false);
	}
	json_decref(r);
	return rc;
}

static int cmd_rollout_pause(int argc, char **argv, void *arg)
{
	return act(argc, argv, arg, "pause");
}

static int cmd_rollout_resume(int argc, char **argv, void *arg)
{
	return act(argc, argv, arg, "resume");
}

static int cmd_rollout_abort(int argc, char **argv, void *arg)
{
	return act(argc, argv, arg, "abort");
}

#define SPEC_USAGE                                                          \
	" --bundle REF [--group G] [--label K=V]...\n"                       \
	"             [--hardware H] [--from-version V] [--device ID]...\n"  \
	"             [--waves 2%,10%,50%,100%] [--canary ID]... [--soak D]\n" \
	"             [--max-failures PCT] [--min-sample N]\n"               \
	"             [--health-window D] [--device-timeout D] [--rate N]\n" \
	"             [--concurrency N] [--no-auto-rollback] [--id NAME]"
#define SPEC_OPTIONS                                                        \
	"--bundle --group --label --hardware --from-version --device --waves" \
	" --canary --soak --max-failures --min-sample --health-window"       \
	" --device-timeout --rate --concurrency --no-auto-rollback --id"      \
	" --output"

const struct fl_cmd cli_rollout_cmds[] = {
	{"abort", cmd_rollout_abort,
	 CLI_NEED_SERVER | CLI_ARG(CLI_KIND_ROLLOUTS),
	 "rollout abort ROLLOUT [-o json]",
	 "stop a rollout for good: open updates cancelled, nothing rolled back",
	 "--output", NULL},
	{"create", cmd_rollout_create, CLI_NEED_SERVER,
	 "rollout create" SPEC_USAGE,
	 "start a staged rollout of a bundle", SPEC_OPTIONS, NULL},
	{"list", cmd_rollout_list, CLI_NEED_SERVER,
	 "rollout list [--state S] [--limit N] [-o json]",
	 "rollouts, newest first", "--state --limit --output", NULL},
	{"pause", cmd_rollout_pause,
	 CLI_NEED_SERVER | CLI_ARG(CLI_KIND_ROLLOUTS),
	 "rollout pause ROLLOUT [-o json]",
	 "command no more devices (those at work finish)", "--output", NULL},
	{"plan", cmd_rollout_plan, CLI_NEED_SERVER, "rollout plan" SPEC_USAGE,
	 "show each wave's devices, before anything is sent", SPEC_OPTIONS,
	 NULL},
	{"resume", cmd_rollout_resume,
	 CLI_NEED_SERVER | CLI_ARG(CLI_KIND_ROLLOUTS),
	 "rollout resume ROLLOUT [-o json]",
	 "go on with a paused rollout (a gate's failures are accepted)",
	 "--output", NULL},
	{"status", cmd_rollout_status,
	 CLI_NEED_SERVER | CLI_ARG(CLI_KIND_ROLLOUTS),
	 "rollout status ROLLOUT [--devices] [-o json]",
	 "a rollout's waves, counts, gate and latest failures",
	 "--devices --output", NULL},
	{"watch", cmd_rollout_watch,
	 CLI_NEED_SERVER | CLI_ARG(CLI_KIND_ROLLOUTS),
	 "rollout watch ROLLOUT [--timeout D] [--interval D] [-o json]",
	 "follow a rollout to its end; the exit status says how it ended",
	 "--timeout --interval --output", NULL},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
