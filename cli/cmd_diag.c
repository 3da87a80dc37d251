/* SPDX-License-Identifier: MIT */
/*
 * fleetctl diag ID CHECK [ARG...] [--timeout D]
 * fleetctl diag --group G | --label K=V | --all CHECK [ARG...] [--timeout D]
 * fleetctl diag --direct --cert-bundle F.tar.gz [--broker URL] ID CHECK
 * [ARG...] fleetctl diag bundle ID --out FILE.tar.gz [--timeout D] [--force]
 *
 * Diagnostics through fleetd (issue 12, docs/diagnostics.md): fleetd
 * relays the check to the device over MQTT and answers with its reply
 * (one device), a summary and each device's reply (a fan-out), or, for
 * a support bundle, an upload id whose file the device sends to fleetd
 * and this command then downloads.  Exit 7 when a device is offline or
 * does not answer in time.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "diag_direct.h"
#include "util.h"
#include "validate.h"

#define TIMEOUT_DEFAULT 10
#define TIMEOUT_MAX 300
#define BUNDLE_TIMEOUT_DEFAULT 60
#define BUNDLE_MAX (1ULL << 30)
#define ARGS_MAX 16
/* the HTTP request may take this much longer than the diag timeout */
#define SLACK_S 30
/* a fan-out's answer: up to fleetd's 8 MiB of results, JSON-escaped */
#define FANOUT_RESPONSE_MAX (64u << 20)

struct diag_args {
	const char *group, *label;
	bool all;
	bool direct;
	const char *broker, *bundle; /* --direct's */
	int64_t timeout;
	const char *device; /* NULL for a fan-out */
	int check;	    /* argv index of CHECK; ARGs follow */
};

static int parse_timeout(struct cli_ctx *ctx, const char *v, int64_t *ret)
{
	if (fl_parse_duration(v, ret, &ctx->err))
		return cli_usage(ctx, "%s", ctx->err.msg);
	if (*ret < 1 || *ret > TIMEOUT_MAX)
		return cli_usage(ctx, "--timeout must be 1s..%ds", TIMEOUT_MAX);
	return 0;
}

static bool valid_check(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 32 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* The positional part: ID CHECK [ARG...] or, for a fan-out, CHECK
 * [ARG...]. */
static int parse_words(int argc, char **argv, struct cli_ctx *ctx,
		       struct diag_args *a)
{
	int named = (a->group != NULL) + (a->label != NULL) + a->all;
	int need = named ? 1 : 2;

	if (named > 1)
		return cli_usage(ctx, "--group, --label and --all exclude "
				      "each other");
	if (a->direct && (named || !a->bundle))
		return cli_usage(ctx, "--direct asks one device and needs "
				      "--cert-bundle FILE.tar.gz");
	if (!a->direct && (a->bundle || a->broker))
		return cli_usage(ctx, "--cert-bundle and --broker go with "
				      "--direct");
	if (argc - optind < need)
		return cli_usage(ctx, named ? "expected CHECK [ARG...]"
					    : "expected a device ID and CHECK "
					      "[ARG...]");
	if (!named && !fl_valid_id(argv[optind]))
		return cli_usage(ctx, "invalid device id '%s'", argv[optind]);
	a->device = named ? NULL : argv[optind];
	a->check = optind + need - 1;
	if (!valid_check(argv[a->check]))
		return cli_usage(ctx,
				 "invalid check '%s' (1..32 of a-z 0-9 _ -)",
				 argv[a->check]);
	if (argc - a->check - 1 > ARGS_MAX)
		return cli_usage(ctx, "at most %d arguments", ARGS_MAX);
	return 0;
}

static int parse(int argc, char **argv, struct cli_ctx *ctx,
		 struct diag_args *a)
{
	static const struct option opts[] = {
	    {"group", required_argument, NULL, 'g'},
	    {"label", required_argument, NULL, 'l'},
	    {"all", no_argument, NULL, 'a'},
	    {"direct", no_argument, NULL, 'd'},
	    {"broker", required_argument, NULL, 'b'},
	    {"cert-bundle", required_argument, NULL, 'c'},
	    {"timeout", required_argument, NULL, 't'},
	    {"output", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	a->timeout = TIMEOUT_DEFAULT;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if ((c == 'g' || c == 'l') && !cli_filter_ok(c, optarg))
			return cli_usage(ctx, "bad --%s '%s'",
					 c == 'g' ? "group" : "label", optarg);
		switch (c) {
		case 'g':
			a->group = optarg;
			break;
		case 'l':
			a->label = optarg;
			break;
		case 'a':
			a->all = true;
			break;
		case 'd':
			a->direct = true;
			break;
		case 'b':
			a->broker = optarg;
			break;
		case 'c':
			a->bundle = optarg;
			break;
		case 't':
			if (parse_timeout(ctx, optarg, &a->timeout))
				return FL_EUSAGE;
			break;
		case 'o':
			if (cli_set_output(ctx, optarg))
				return FL_EUSAGE;
			break;
		default:
			return cli_usage(ctx, "unknown option");
		}
	}
	return parse_words(argc, argv, ctx, a);
}

static json_t *request(int argc, char **argv, const struct diag_args *a)
{
	json_t *args = json_array(), *body;

	for (int i = a->check + 1; i < argc; i++)
		json_array_append_new(args, json_string(argv[i]));
	body = json_pack("{s:s, s:o, s:I}", "check", argv[a->check], "args",
			 args, "timeout_s", (json_int_t)a->timeout);
	if (a->group)
		json_object_set_new(body, "target",
				    json_pack("{s:s}", "group", a->group));
	else if (a->label)
		json_object_set_new(body, "target",
				    json_pack("{s:s}", "label", a->label));
	else if (a->all)
		json_object_set_new(body, "target",
				    json_pack("{s:b}", "all", 1));
	return body;
}

/* A device's text on the terminal: no control characters but tabs. */
static void put_clean(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		putchar((ch < 0x20 && ch != '\t') || ch == 0x7f ? '?' : ch);
	}
}

/* "  key: value"; a string of several lines below its key, indented;
 * objects and arrays as compact JSON (which escapes what it holds). */
static void print_member(const char *key, const json_t *v)
{
	const char *s = json_string_value(v), *nl;
	char buf[256];

	printf("  ");
	put_clean(key, strlen(key));
	if (s && strchr(s, '\n')) {
		printf(":\n");
		for (; *s; s = nl + 1) {
			nl = strchrnul(s, '\n');
			printf("    ");
			put_clean(s, (size_t)(nl - s));
			putchar('\n');
			if (!*nl)
				break;
		}
		return;
	}
	printf(": ");
	if (json_is_object(v) || json_is_array(v)) {
		char *text = json_dumps(v, JSON_COMPACT);

		put_clean(text, strlen(text));
		free(text);
	} else {
		s = cli_cell(v, buf, sizeof(buf));
		put_clean(s, strlen(s));
	}
	putchar('\n');
}

/* The "modbus" check's result (table output): its counters, a row per
 * source, then every current value as SOURCE.NAME. */
static void print_modbus(struct cli_ctx *ctx, const json_t *result)
{
	static const struct cli_col src_cols[] = {{"SOURCE", "name"},
						  {"TARGET", "target"},
						  {"UP", "up"},
						  {"LAST-POLL", "last_poll"},
						  {"POLLS", "polls"},
						  {"ERRORS", "errors"},
						  {"LAST-ERROR", "last_error"},
						  {NULL, NULL}};
	static const struct cli_col val_cols[] = {
	    {"VALUE-NAME", "name"}, {"VALUE", "value"}, {NULL, NULL}};
	const json_t *sources = json_object_get(result, "sources"), *src, *v;
	json_t *vals = json_array();
	const char *key;
	size_t i;

	print_member("map", json_object_get(result, "map"));
	print_member("samples_read", json_object_get(result, "samples_read"));
	print_member("points_sent", json_object_get(result, "points_sent"));
	cli_print_rows(ctx, sources, src_cols);
	json_array_foreach(sources, i, src)
	{
		const char *name =
		    json_string_value(json_object_get(src, "name"));

		json_object_foreach(json_object_get(src, "values"), key, v)
		{
			char *full = fl_xasprintf("%s.%s", name, key);

			json_array_append_new(
			    vals,
			    json_pack("{s:s, s:O}", "name", full, "value", v));
			free(full);
		}
	}
	if (json_array_size(vals))
		cli_print_rows(ctx, vals, val_cols);
	json_decref(vals);
}

static void print_answer(struct cli_ctx *ctx, const json_t *resp)
{
	static const struct cli_col fields[] = {
	    {"device", "device"}, {"check", "check"},
	    {"ok", "ok"},	  {"elapsed_ms", "elapsed_ms"},
	    {"error", "error"},	  {"code", "code"},
	    {NULL, NULL}};
	const json_t *result = json_object_get(resp, "result"), *v;
	const char *key;

	cli_print_object(ctx, resp, fields);
	if (ctx->output == CLI_OUT_JSON || !result)
		return;
	printf("result:\n");
	if (fl_streq(json_string_value(json_object_get(resp, "check")),
		     "modbus") &&
	    json_is_array(json_object_get(result, "sources"))) {
		print_modbus(ctx, result);
		return;
	}
	if (!json_is_object(result)) {
		print_member("value", result);
		return;
	}
	json_object_foreach((json_t *)result, key, v) print_member(key, v);
}

/* The device said ok: false: exit 1 with its error (7 for its own
 * timeout), its text made safe for a terminal. */
static int answer_failed(struct cli_ctx *ctx, const json_t *resp)
{
	const char *code = json_string_value(json_object_get(resp, "code"));
	const char *why = json_string_value(json_object_get(resp, "error"));
	char clean[256];
	size_t i = 0;

	for (const char *p = why    ? why
			     : code ? code
				    : "failed";
	     *p && i + 1 < sizeof(clean); p++, i++)
		clean[i] = (unsigned char)*p < 0x20 ? '?' : *p;
	clean[i] = '\0';
	return fl_fail(
	    &ctx->err, fl_streq(code, "timeout") ? FL_ETIMEOUT : FL_ERR,
	    "%s: %s failed: %s",
	    json_string_value(json_object_get(resp, "device")),
	    json_string_value(json_object_get(resp, "check")), clean);
}

/* A fan-out: the summary as a table (each device's answer with -o
 * json); exit 1 unless every device answered ok. */
static int print_fanout(struct cli_ctx *ctx, json_t *resp)
{
	static const struct cli_col cols[] = {{"CHECK", "check"},
					      {"DEVICES", "total"},
					      {"ANSWERED", "answered"},
					      {"FAILED", "failed"},
					      {"OFFLINE", "offline"},
					      {"TIMED OUT", "timed_out"},
					      {NULL, NULL}};
	json_t *sum = json_object_get(resp, "summary"), *rows;
	json_int_t total = json_integer_value(json_object_get(sum, "total"));
	json_int_t ok = json_integer_value(json_object_get(sum, "answered"));

	if (ctx->output == CLI_OUT_JSON) {
		cli_print_json(resp);
	} else {
		rows = json_pack("[O]", sum);
		json_object_set(json_array_get(rows, 0), "check",
				json_object_get(resp, "check"));
		cli_print_rows(ctx, rows, cols);
		json_decref(rows);
	}
	if (ok == total)
		return 0;
	return fl_fail(
	    &ctx->err, FL_ERR, "%lld of %lld devices did not answer ok%s",
	    (long long)(total - ok), (long long)total,
	    ctx->output == CLI_OUT_JSON ? "" : " (-o json lists each)");
}

/* --direct: the same answer, asked through the broker with a
 * technician's certificate. */
static int ask_direct(struct cli_ctx *ctx, int argc, char **argv,
		      const struct diag_args *a, json_t **resp)
{
	struct cli_direct d = {.bundle = a->bundle,
			       .broker = a->broker,
			       .device = a->device,
			       .check = argv[a->check],
			       .args = argv + a->check + 1,
			       .nargs = argc - a->check - 1,
			       .timeout_s = a->timeout};

	return cli_diag_direct(&d, resp, &ctx->err);
}

/* Through fleetd: one device or a fan-out. */
static int ask_fleetd(struct cli_ctx *ctx, int argc, char **argv,
		      const struct diag_args *a, json_t **resp)
{
	json_t *req;
	char *path;
	int rc = cli_connect(ctx);

	if (rc)
		return rc;
	req = request(argc, argv, a);
	path = a->device ? fl_xasprintf("/api/v1/devices/%s/diag", a->device)
			 : fl_xstrdup("/api/v1/diag");
	fl_http_set_limits(ctx->http, (a->timeout + SLACK_S) * 1000,
			   FANOUT_RESPONSE_MAX);
	rc = fl_http_json(ctx->http, "POST", path, req, resp, &ctx->err);
	free(path);
	json_decref(req);
	return rc;
}

int cmd_diag(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	struct diag_args a = {0};
	json_t *resp = NULL;
	int rc;

	rc = parse(argc, argv, ctx, &a);
	if (rc)
		return rc;
	rc = a.direct ? ask_direct(ctx, argc, argv, &a, &resp)
		      : ask_fleetd(ctx, argc, argv, &a, &resp);
	if (rc)
		return rc;
	if (!a.device)
		rc = print_fanout(ctx, resp);
	else {
		print_answer(ctx, resp);
		if (!json_is_true(json_object_get(resp, "ok")))
			rc = answer_failed(ctx, resp);
	}
	json_decref(resp);
	return rc;
}

/* ---- diag bundle -------------------------------------------------------- */

struct bundle_args {
	const char *out;
	bool force;
	int64_t timeout;
};

static int parse_bundle(int argc, char **argv, struct cli_ctx *ctx,
			struct bundle_args *a)
{
	static const struct option opts[] = {
	    {"out", required_argument, NULL, 'O'},
	    {"force", no_argument, NULL, 'f'},
	    {"timeout", required_argument, NULL, 't'},
	    {"output", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	a->timeout = BUNDLE_TIMEOUT_DEFAULT;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'O':
			a->out = optarg;
			break;
		case 'f':
			a->force = true;
			break;
		case 't':
			if (parse_timeout(ctx, optarg, &a->timeout))
				return FL_EUSAGE;
			break;
		case 'o':
			if (cli_legacy_out(ctx, optarg, &a->out))
				return FL_EUSAGE;
			break;
		default:
			return cli_usage(ctx, "unknown option");
		}
	}
	if (argc - optind != 1 || !a->out)
		return cli_usage(ctx, "expected a device ID and --out "
				      "FILE.tar.gz");
	if (!fl_valid_id(argv[optind]))
		return cli_usage(ctx, "invalid device id '%s'", argv[optind]);
	return 0;
}

/*
 * Ask @id for a bundle; its upload id into *@ret (caller frees).  An
 * offline device is refused at once (exit 7).
 */
static int ask_bundle(struct cli_ctx *ctx, const char *id, int64_t timeout,
		      char **ret)
{
	char *path = fl_xasprintf("/api/v1/devices/%s/diag-bundle", id);
	json_t *req = json_pack("{s:I}", "timeout_s", (json_int_t)timeout);
	json_t *resp = NULL;
	const char *upload;
	int rc;

	rc = fl_http_json(ctx->http, "POST", path, req, &resp, &ctx->err);
	upload = json_string_value(json_object_get(resp, "upload"));
	if (!rc && (!upload || !fl_valid_id(upload)))
		rc = fl_fail(&ctx->err, FL_EPARSE,
			     "fleetd named no upload for the bundle");
	if (!rc)
		*ret = fl_xstrdup(upload);
	json_decref(resp);
	json_decref(req);
	free(path);
	return rc;
}

/* Poll until the bundle is there (written to @o), fleetd says it failed
 * or timed out, or our own deadline passes. */
static int fetch_bundle(struct cli_ctx *ctx, const char *id, const char *upload,
			const struct bundle_args *a, struct cli_out_file *o,
			uint64_t *ret_size)
{
	char *path =
	    fl_xasprintf("/api/v1/devices/%s/diag-bundles/%s", id, upload);
	int64_t deadline = fl_now_ms() + (a->timeout + SLACK_S) * 1000;
	struct cli_progress bar;
	long status = 0;
	off_t end;
	int rc;

	for (;;) {
		if (ftruncate(o->fd, 0) < 0 || lseek(o->fd, 0, SEEK_SET) < 0) {
			rc = fl_fail_errno(&ctx->err, FL_EIO, "writing '%s'",
					   o->path);
			break;
		}
		cli_progress_start(ctx, &bar, "download");
		rc = fl_http_get_file(ctx->http, path, o->fd, BUNDLE_MAX,
				      &status, &ctx->err);
		cli_progress_end(ctx, &bar);
		if (rc || status == 200)
			break;
		if (fl_now_ms() >= deadline) {
			rc = fl_fail(&ctx->err, FL_ETIMEOUT,
				     "no support bundle from %s after %lld s",
				     id, (long long)(a->timeout + SLACK_S));
			break;
		}
		sleep(1);
	}
	free(path);
	end = lseek(o->fd, 0, SEEK_CUR);
	if (!rc)
		*ret_size = end > 0 ? (uint64_t)end : 0;
	return rc;
}

static int cmd_diag_bundle(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	struct bundle_args a = {0};
	struct cli_out_file out = {.fd = -1};
	char *upload = NULL;
	const char *id;
	uint64_t size = 0;
	int rc;

	rc = parse_bundle(argc, argv, ctx, &a);
	if (rc)
		return rc;
	id = argv[optind];
	fl_http_set_limits(ctx->http, (a.timeout + SLACK_S) * 1000, 0);
	rc = cli_out_open(&out, a.out, a.force, &ctx->err);
	if (!rc)
		rc = ask_bundle(ctx, id, a.timeout, &upload);
	if (!rc) {
		cli_note(ctx, "%s is gathering a support bundle (upload %s)",
			 id, upload);
		rc = fetch_bundle(ctx, id, upload, &a, &out, &size);
	}
	if (!rc)
		rc = cli_out_commit(&out, &ctx->err);
	cli_out_close(&out);
	if (!rc) {
		cli_note(ctx, "wrote %s (%llu bytes)", a.out,
			 (unsigned long long)size);
		cli_print_result(ctx,
				 json_pack("{s:s, s:s, s:s, s:I}", "device", id,
					   "upload", upload, "file", a.out,
					   "size", (json_int_t)size));
	}
	free(upload);
	return rc;
}

const struct fl_cmd cli_diag_cmds[] = {
    {"bundle", cmd_diag_bundle, CLI_NEED_SERVER | CLI_ARG(CLI_KIND_DEVICES),
     "diag bundle ID --out FILE.tar.gz [--timeout D] [--force] [-o json]",
     "have a device gather and upload a support bundle, then save it",
     "--out --timeout --force --output", NULL},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL},
};
