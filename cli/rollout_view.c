/* SPDX-License-Identifier: MIT */
/*
 * How fleetctl shows a rollout (cli_rollout.h): plan, status, list, and
 * watch, the live view.  Tables go to stdout; notes to stderr; with -o
 * json, the server's documents as they are.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_rollout.h"
#include "rollout.h"
#include "util.h"
#include "validate.h"

#define BAR 30

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_int_t num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* The device states that are over, for progress. */
static json_int_t done_of(const json_t *counts)
{
	static const char *const over[] = {"healthy", "failed", "skipped",
					   "cancelled", "rolled-back",
					   "rollback-failed"};
	json_int_t n = 0;

	for (size_t i = 0; i < FL_ARRAY_SIZE(over); i++)
		n += num(counts, over[i]);
	return n;
}

void cli_rollout_print_plan(struct cli_ctx *ctx, const json_t *plan)
{
	static const struct cli_col cols[] = {
		{"WAVE", "wave"},     {"STOP", "stop"}, {"ORDER", "order"},
		{"DEVICE", "device"}, {"NOTE", "note"}, {NULL, NULL}};
	json_t *rows = json_array(), *w, *d, *e;
	const json_t *bundle = json_object_get(plan, "bundle");
	size_t i, k, order = 0;

	if (ctx->output == CLI_OUT_JSON) {
		cli_print_json(plan);
		json_decref(rows);
		return;
	}
	cli_note(ctx, "plan %s: %s %s to %" JSON_INTEGER_FORMAT
		      " device(s) in %zu wave(s)",
		 str(plan, "id"), str(bundle, "name"), str(bundle, "version"),
		 num(plan, "total"),
		 json_array_size(json_object_get(plan, "waves")));
	json_array_foreach(json_object_get(plan, "notes"), i, e)
		cli_note(ctx, "note: %s", json_string_value(e));
	json_array_foreach(json_object_get(plan, "busy"), i, e)
		cli_note(ctx, "busy: %s: 'rollout create' will refuse this "
			      "plan",
			 json_string_value(e));
	json_array_foreach(json_object_get(plan, "waves"), i, w)
		json_array_foreach(json_object_get(w, "devices"), k, d)
			json_array_append_new(
			    rows, json_pack("{s:I, s:s, s:I, s:s}", "wave",
					    num(w, "wave"), "stop", str(w, "stop"),
					    "order", (json_int_t)++order,
					    "device", json_string_value(d)));
	json_array_foreach(json_object_get(plan, "excluded"), i, e)
		json_array_append_new(
		    rows, json_pack("{s:s, s:s+}", "device", str(e, "device"),
				    "note", "excluded: ", str(e, "reason")));
	cli_print_rows(ctx, rows, cols);
	json_decref(rows);
	if (json_is_true(json_object_get(plan, "id_generated")))
		cli_note(ctx, "fleetd picked the id %s: pass --id %s to "
			      "'rollout create' to run this plan",
			 str(plan, "id"), str(plan, "id"));
}

/* "2 of 10 finished failed (20%), threshold 10%, sample 5 of 5: TRIPPED" */
static char *gate_text(const json_t *g)
{
	return fl_xasprintf(
	    "%" JSON_INTEGER_FORMAT " failed of %" JSON_INTEGER_FORMAT
	    " finished (%" JSON_INTEGER_FORMAT "%%), threshold %" JSON_INTEGER_FORMAT
	    "%%, min sample %" JSON_INTEGER_FORMAT " (needs %" JSON_INTEGER_FORMAT
	    "): %s",
	    num(g, "failed"), num(g, "finished"), num(g, "percent"),
	    num(g, "threshold"), num(g, "min_sample"), num(g, "needed"),
	    json_is_true(json_object_get(g, "tripped")) ? "tripped" : "ok");
}

static void print_summary(struct cli_ctx *ctx, const json_t *r)
{
	static const struct cli_col f[] = {
		{"id", "id"},	      {"state", "state"},
		{"reason", "reason"}, {"bundle", "bundle"},
		{"wave", "wave"},     {"devices", "total"},
		{"progress", "progress"}, {"gate", "gate"},
		{"soak until", "soak_until"}, {"created", "created"},
		{"created by", "created_by"}, {"finished", "finished"},
		{NULL, NULL}};
	const json_t *b = json_object_get(r, "bundle");
	json_t *o = json_deep_copy(r);
	char *gate = gate_text(json_object_get(r, "gate"));

	json_object_set_new(o, "bundle",
			    json_sprintf("%s %s (%s)", str(b, "name") ?: "?",
					 str(b, "version"), str(b, "id")));
	json_object_set_new(o, "wave",
			    json_sprintf("%" JSON_INTEGER_FORMAT
					 " of %" JSON_INTEGER_FORMAT,
					 num(r, "wave"), num(r, "waves_total")));
	json_object_set_new(o, "progress",
			    json_sprintf("%" JSON_INTEGER_FORMAT
					 " of %" JSON_INTEGER_FORMAT " done",
					 done_of(json_object_get(r, "counts")),
					 num(r, "total")));
	json_object_set_new(o, "gate", json_string(gate));
	cli_print_object(ctx, o, f);
	free(gate);
	json_decref(o);
}

static void print_waves(struct cli_ctx *ctx, const json_t *r)
{
	static const struct cli_col cols[] = {
		{"WAVE", "wave"},	   {"STOP", "stop"},
		{"DEVICES", "devices"},	   {"PENDING", "pending"},
		{"COMMANDED", "commanded"}, {"UPDATED", "updated"},
		{"HEALTHY", "healthy"},	   {"FAILED", "failed"},
		{"SKIPPED", "skipped"},	   {"ROLLED-BACK", "rolled-back"},
		{"STARTED", "started"},	   {NULL, NULL}};
	json_t *rows = json_array(), *w;
	size_t i;

	json_array_foreach(json_object_get(r, "waves"), i, w) {
		json_t *row = json_deep_copy(json_object_get(w, "counts"));

		json_object_set(row, "wave", json_object_get(w, "wave"));
		json_object_set(row, "stop", json_object_get(w, "stop"));
		json_object_set(row, "devices", json_object_get(w, "devices"));
		json_object_set(row, "started", json_object_get(w, "started"));
		json_array_append_new(rows, row);
	}
	putchar('\n');
	cli_print_rows(ctx, rows, cols);
	json_decref(rows);
}

static void print_failures(const json_t *r)
{
	const json_t *fails = json_object_get(r, "failures");
	json_t *e;
	size_t i;

	if (!json_array_size(fails))
		return;
	printf("\nlatest failures:\n");
	json_array_foreach(fails, i, e)
		printf("  %s (wave %" JSON_INTEGER_FORMAT ", %s): %s\n",
		       str(e, "device"), num(e, "wave"), str(e, "state"),
		       str(e, "reason") ?: "-");
}

void cli_rollout_print(struct cli_ctx *ctx, const json_t *r, bool devices)
{
	static const struct cli_col cols[] = {
		{"DEVICE", "device"}, {"WAVE", "wave"},
		{"ORDER", "order"},   {"STATE", "state"},
		{"JOB", "job"},	      {"ROLLBACK JOB", "rollback_job"},
		{"FROM", "from_version"}, {"REASON", "reason"},
		{NULL, NULL}};

	if (ctx->output == CLI_OUT_JSON) {
		cli_print_json(r);
		return;
	}
	print_summary(ctx, r);
	print_waves(ctx, r);
	print_failures(r);
	if (devices) {
		putchar('\n');
		cli_print_rows(ctx, json_object_get(r, "devices"), cols);
	}
}

void cli_rollout_print_list(struct cli_ctx *ctx, const json_t *rows)
{
	static const struct cli_col cols[] = {
		{"ID", "id"},	     {"STATE", "state"},
		{"WAVE", "wave"},    {"BUNDLE", "bundle"},
		{"DEVICES", "total"}, {"DONE", "done"},
		{"FAILED", "failed"}, {"CREATED", "created"},
		{NULL, NULL}};
	json_t *t = json_array(), *r;
	size_t i;

	if (ctx->output == CLI_OUT_JSON) {
		cli_print_json(rows);
		json_decref(t);
		return;
	}
	json_array_foreach(rows, i, r) {
		json_t *row = json_deep_copy(r);
		const json_t *c = json_object_get(r, "counts");

		json_object_set_new(row, "wave",
				    json_sprintf("%" JSON_INTEGER_FORMAT
						 "/%" JSON_INTEGER_FORMAT,
						 num(r, "wave"),
						 num(r, "waves_total")));
		json_object_set_new(
		    row, "bundle",
		    json_sprintf("%s", str(json_object_get(r, "bundle"),
					   "version")));
		json_object_set_new(row, "done", json_integer(done_of(c)));
		json_object_set_new(row, "failed",
				    json_integer(num(c, "failed") +
						 num(c, "rollback-failed")));
		json_array_append_new(t, row);
	}
	cli_print_rows(ctx, t, cols);
	json_decref(t);
}

/* ------------------------------------------------------------------ */
/* watch                                                              */
/* ------------------------------------------------------------------ */

/* The one line a change prints when not on a TTY. */
static char *line_of(const json_t *r)
{
	const json_t *c = json_object_get(r, "counts");
	const json_t *g = json_object_get(r, "gate");
	json_int_t flight = num(c, "commanded") + num(c, "updated") +
			    num(c, "rolling-back");

	return fl_xasprintf(
	    "%s %s wave %" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT
	    ": %" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT
	    " done (%" JSON_INTEGER_FORMAT " healthy, %" JSON_INTEGER_FORMAT
	    " failed, %" JSON_INTEGER_FORMAT " in flight, %" JSON_INTEGER_FORMAT
	    " pending, %" JSON_INTEGER_FORMAT " rolled back); gate %"
	    JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT " failed%s%s",
	    str(r, "id"), str(r, "state"), num(r, "wave"),
	    num(r, "waves_total"), done_of(c), num(r, "total"),
	    num(c, "healthy"), num(c, "failed"), flight, num(c, "pending"),
	    num(c, "rolled-back"), num(g, "failed"), num(g, "finished"),
	    str(r, "reason") ? "; " : "", str(r, "reason") ?: "");
}

/* The live view: the whole screen, redrawn. */
static void live(struct cli_ctx *ctx, const json_t *r)
{
	json_int_t total = num(r, "total"), done =
		done_of(json_object_get(r, "counts"));
	int fill = total ? (int)(done * BAR / total) : BAR;

	fputs("\033[H\033[2J", stdout);
	printf("rollout %s  [", str(r, "id"));
	for (int i = 0; i < BAR; i++)
		putchar(i < fill ? '#' : '-');
	printf("] %" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT "  %s\n\n",
	       done, total, str(r, "state"));
	cli_rollout_print(ctx, r, false);
	fflush(stdout);
}

/* Failures not seen before, one line each (plain mode). */
static void new_failures(FILE *out, const json_t *r, json_t *seen)
{
	json_t *e;
	size_t i;

	json_array_foreach(json_object_get(r, "failures"), i, e) {
		char *key = fl_xasprintf("%s/%s", str(e, "device"),
					 str(e, "state"));

		if (!json_object_get(seen, key)) {
			json_object_set_new(seen, key, json_true());
			fprintf(out, "%s %s: %s (wave %" JSON_INTEGER_FORMAT
				     "): %s\n",
				str(r, "id"), str(e, "state"), str(e, "device"),
				num(e, "wave"), str(e, "reason") ?: "-");
		}
		free(key);
	}
}

/* How the rollout ended, as an exit status and message. */
static int outcome(struct cli_ctx *ctx, const json_t *r, const char *want)
{
	const char *state = str(r, "state"), *why = str(r, "reason");

	if (fl_streq(state, want))
		return 0;
	if (fl_streq(state, "rolled-back"))
		return fl_fail(&ctx->err, FL_ERR, "rollout %s rolled back: %s",
			       str(r, "id"), why ?: "-");
	if (fl_streq(state, "paused"))
		return fl_fail(&ctx->err, FL_ECONFLICT,
			       "rollout %s is paused: %s (resume, rollback "
			       "or abort it)",
			       str(r, "id"), why ?: "-");
	return fl_fail(&ctx->err, fl_streq(state, "completed") ? FL_ERR
							       : FL_ECONFLICT,
		       "rollout %s is %s: %s", str(r, "id"), state, why ?: "-");
}

static bool settled(const json_t *r)
{
	enum fl_rollout_state s = fl_rollout_state_parse(str(r, "state"));

	return fl_rollout_state_final(s) || s == FL_ROLLOUT_PAUSED;
}

int cli_rollout_follow(struct cli_ctx *ctx, const char *id, int64_t timeout,
		       int64_t interval, const char *want)
{
	bool tty = ctx->output != CLI_OUT_JSON && isatty(STDOUT_FILENO);
	FILE *out = ctx->output == CLI_OUT_JSON ? stderr : stdout;
	int64_t deadline = fl_now_ms() + timeout * 1000;
	json_t *r = NULL, *seen = json_object();
	char *last = NULL;
	int rc;

	for (;;) {
		json_t *cur = NULL;

		rc = cli_rollout_get(ctx, id, false, &cur);
		if ((rc == FL_EUNREACH || rc == FL_ETIMEOUT) &&
		    (!timeout || fl_now_ms() < deadline)) {
			/* fleetd restarting (or killed in the middle of this
			 * request): the rollout goes on without it */
			if (!ctx->quiet)
				fprintf(stderr, "fleetctl: %s; trying again\n",
					ctx->err.msg);
			fl_error_clear(&ctx->err);
			usleep((useconds_t)(interval * 1000000));
			continue;
		}
		if (rc)
			break;
		json_decref(r);
		r = cur;
		if (tty) {
			live(ctx, r);
		} else if (!ctx->quiet || out == stdout) {
			char *line = line_of(r);

			if (!fl_streq(line, last))
				fprintf(out, "%s\n", line);
			new_failures(out, r, seen);
			fflush(out);
			free(last);
			last = line;
		}
		if (settled(r)) {
			rc = outcome(ctx, r, want);
			break;
		}
		if (timeout && fl_now_ms() >= deadline) {
			rc = fl_fail(&ctx->err, FL_ETIMEOUT,
				     "rollout %s is still %s after %llds", id,
				     str(r, "state"), (long long)timeout);
			break;
		}
		usleep((useconds_t)(interval * 1000000));
	}
	if (r && ctx->output == CLI_OUT_JSON)
		cli_print_json(r);
	free(last);
	json_decref(seen);
	json_decref(r);
	return rc;
}

int cmd_rollout_watch(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct option opts[] = {
		{"timeout", required_argument, NULL, 't'},
		{"interval", required_argument, NULL, 'i'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	int64_t timeout = 6 * 3600, interval = 2;
	int c;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		int64_t *dst = c == 't' ? &timeout : &interval;

		if (c == 'o') {
			if (cli_set_output(ctx, optarg))
				return FL_EUSAGE;
		} else if (c != 't' && c != 'i') {
			return cli_usage(ctx, "unknown option");
		} else if (fl_parse_duration(optarg, dst, NULL) || *dst < 1 ||
			   (c == 'i' && *dst > 60)) {
			return cli_usage(ctx, "bad %s '%s'",
					 c == 't' ? "--timeout" : "--interval",
					 optarg);
		}
	}
	if (optind + 1 != argc)
		return cli_usage(ctx, "expected one ROLLOUT id");
	if (!fl_valid_id(argv[optind]))
		return cli_usage(ctx, "invalid rollout id '%s'", argv[optind]);
	return cli_rollout_follow(ctx, argv[optind], timeout, interval,
				  "completed");
}
