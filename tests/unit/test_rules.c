/* SPDX-License-Identifier: MIT */
/*
 * Local rules (agent/rules.c, agent/rules_eval.c; docs/rules.md): the
 * file's every refusal with its line, and the evaluator on a fake clock:
 * a threshold crossing up and down with wiggles inside the hysteresis
 * band fires once per crossing, rate over its window, z-score on a known
 * series, stale on the timer, and the per-minute action caps.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules.h"
#include "util.h"

#define T0 INT64_C(1764420000000)

static struct agent_rules *parse_ok(const char *text)
{
	struct agent_rules *r = NULL;
	struct fl_error err = {0};
	int rc =
	    agent_rules_parse(text, strlen(text), "r.conf", NULL, &r, &err);

	if (rc)
		fail_msg("%s", err.msg);
	return r;
}

/* The code of refusing @text; the message must start "r.conf:LINE:". */
static int parse_bad(const char *text, unsigned line,
		     const struct agent_rules_opts *o)
{
	struct agent_rules *r = NULL;
	struct fl_error err = {0};
	char want[32];
	int rc = agent_rules_parse(text, strlen(text), "r.conf", o, &r, &err);

	snprintf(want, sizeof(want), "r.conf:%u: ", line);
	assert_int_not_equal(rc, 0);
	assert_null(r);
	if (strncmp(err.msg, want, strlen(want)))
		fail_msg("'%s' is not at line %u", err.msg, line);
	return rc;
}

#define RULE(body) "[rule \"r\"]\n" body

static void test_parse_good(void **unused)
{
	struct agent_rules *r = parse_ok(
	    "; comment\n"
	    "[write \"plc.fan\"]\nmin = 0\nmax = 1\n\n"
	    "[rule \"hot\"]  ; inline\nkind = threshold\nmetric = room.temp\n"
	    "above = 30\t# inline\nhysteresis = 0.5 ;\nevent = yes\n"
	    "write = plc.fan 1\nexec = /bin/echo  hot  1\ntimeout = 5s\n"
	    "[rule \"fast\"]\nkind = rate\nmetric = p.x\nbelow = -2\n"
	    "window = 1m\nevent = yes\n"
	    "[rule \"gone\"]\r\nkind = stale\r\nmetric = p.x\r\n"
	    "after = 90\r\nevent = yes\r\n"
	    "[rule \"odd\"]\nkind = zscore\nmetric = p.x\nabove = 3\n"
	    "samples = 20\nevent = true\n");
	const struct agent_rule *v = r->v;

	assert_int_equal(r->n, 4);
	assert_int_equal(r->n_w, 1);
	assert_string_equal(r->w[0].name, "plc.fan");
	assert_true(r->w[0].min == 0 && r->w[0].max == 1);
	assert_string_equal(v[0].name, "hot");
	assert_int_equal(v[0].kind, AGENT_RULE_THRESHOLD);
	assert_string_equal(v[0].metric, "room.temp");
	assert_false(v[0].below);
	assert_true(v[0].limit == 30 && v[0].hysteresis == 0.5);
	assert_int_equal(v[0].n_act, 3);
	assert_int_equal(v[0].act[0].kind, AGENT_RULE_EVENT);
	assert_int_equal(v[0].act[1].kind, AGENT_RULE_WRITE);
	assert_string_equal(v[0].act[1].source, "plc");
	assert_string_equal(v[0].act[1].name, "fan");
	assert_true(v[0].act[1].value == 1);
	assert_string_equal(v[0].act[2].argv[0], "/bin/echo");
	assert_string_equal(v[0].act[2].argv[1], "hot");
	assert_string_equal(v[0].act[2].argv[2], "1");
	assert_null(v[0].act[2].argv[3]);
	assert_int_equal(v[0].timeout_ms, 5000);
	assert_int_equal(v[1].kind, AGENT_RULE_RATE);
	assert_true(v[1].below && v[1].limit == -2);
	assert_int_equal(v[1].window_ms, 60000);
	assert_int_equal(v[1].timeout_ms, AGENT_RULE_TIMEOUT_DEFAULT * 1000);
	assert_int_equal(v[2].kind, AGENT_RULE_STALE);
	assert_int_equal(v[2].after_ms, 90000);
	assert_int_equal(v[3].kind, AGENT_RULE_ZSCORE);
	assert_int_equal(v[3].samples, 20);
	assert_int_equal(v[3].min_samples, 10); /* the default */
	agent_rules_free(r);
	agent_rules_free(parse_ok("")); /* no rules */
}

/* The example of docs/rules.md, as it is there. */
static void test_parse_doc_example(void **unused)
{
	struct agent_rules *r =
	    parse_ok("; the targets rules may write, and their limits\n"
		     "[write \"plc.fan\"]\n"
		     "min = 0\n"
		     "max = 1\n"
		     "\n"
		     "[rule \"tank-hot\"]\n"
		     "kind = threshold\n"
		     "metric = tank.temp\n"
		     "above = 80\n"
		     "hysteresis = 5          ; re-armed once below 75\n"
		     "event = yes\n"
		     "write = plc.fan 1\n"
		     "exec = /usr/lib/fleet/rules/notify tank-hot\n"
		     "\n"
		     "[rule \"pressure-rising\"]\n"
		     "kind = rate\n"
		     "metric = line.pressure\n"
		     "above = 0.5             ; more than 0.5 a second\n"
		     "window = 30s\n"
		     "event = yes\n"
		     "\n"
		     "[rule \"meter-silent\"]\n"
		     "kind = stale\n"
		     "metric = meter.kwh\n"
		     "after = 5m\n"
		     "event = yes\n"
		     "\n"
		     "[rule \"vibration-odd\"]\n"
		     "kind = zscore\n"
		     "metric = motor.vib\n"
		     "above = 4               ; |z| > 4\n"
		     "samples = 120           ; against the last 120 values\n"
		     "min_samples = 30        ; not before 30 are there "
		     "(default: 10 or samples)\n"
		     "event = yes\n");

	assert_int_equal(r->n, 4);
	assert_true(r->v[0].limit == 80 && r->v[0].hysteresis == 5);
	assert_int_equal(r->v[0].n_act, 3);
	assert_true(r->v[1].limit == 0.5);
	assert_int_equal(r->v[2].after_ms, 300000);
	assert_int_equal(r->v[3].min_samples, 30);
	agent_rules_free(r);
}

static void test_parse_errors(void **unused)
{
	assert_int_equal(parse_bad("metric = a.b\n", 1, NULL), FL_EPARSE);
	assert_int_equal(parse_bad("\n[rule x]\n", 2, NULL), FL_EPARSE);
	assert_int_equal(parse_bad("[macro \"x\"]\n", 1, NULL), FL_EPARSE);
	assert_int_equal(parse_bad("[rule \"a.b\"]\n", 1, NULL), FL_EPARSE);
	assert_int_equal(parse_bad(RULE("kind = pid\n"), 2, NULL), FL_EPARSE);
	assert_int_equal(
	    parse_bad(RULE("kind = threshold\ncolour = red\n"), 3, NULL),
	    FL_EPARSE);
	assert_int_equal(
	    parse_bad(RULE("kind = threshold\nkind = rate\n"), 3, NULL),
	    FL_EPARSE);
	assert_int_equal(parse_bad(RULE("above = 1\nbelow = 2\n"), 3, NULL),
			 FL_EPARSE);
	assert_int_equal(parse_bad(RULE("above = hot\n"), 2, NULL), FL_EPARSE);
	assert_int_equal(parse_bad(RULE("above = nan\n"), 2, NULL), FL_EPARSE);
	assert_int_equal(parse_bad(RULE("metric = a b\n"), 2, NULL), FL_EPARSE);
	assert_int_equal(parse_bad(RULE("just words\n"), 2, NULL), FL_EPARSE);
	/* what a kind needs, at the header line or the key's */
	assert_int_equal(
	    parse_bad("\n" RULE("metric = a.b\nevent = yes\n"), 2, NULL),
	    FL_EPARSE);
	assert_int_equal(
	    parse_bad(RULE("kind = threshold\nevent = yes\n"), 1, NULL),
	    FL_EPARSE);
	assert_int_equal(parse_bad(RULE("kind = threshold\nmetric = a.b\n"
					"above = 1\n"),
				   1, NULL),
			 FL_EPARSE);
	assert_int_equal(parse_bad(RULE("kind = rate\nmetric = a.b\nabove = "
					"1\nevent = yes\n"),
				   1, NULL),
			 FL_EPARSE);
	assert_int_equal(parse_bad(RULE("kind = stale\nmetric = a.b\nabove = "
					"1\nafter = 5\nevent = yes\n"),
				   4, NULL),
			 FL_EPARSE);
	assert_int_equal(parse_bad(RULE("kind = zscore\nmetric = a.b\nabove = "
					"3\nsamples = 5\nmin_samples = 6\n"
					"event = yes\n"),
				   6, NULL),
			 FL_EPARSE);
	assert_int_equal(
	    parse_bad(RULE("kind = threshold\nhysteresis = -1\n"), 3, NULL),
	    FL_EPARSE);
	/* no action, for each kind (zscore's was let through: fuzz_rules) */
	assert_int_equal(parse_bad(RULE("kind = zscore\nmetric = a.b\nabove = "
					"3\nsamples = 5\n"),
				   1, NULL),
			 FL_EPARSE);
	assert_int_equal(parse_bad(RULE("kind = stale\nmetric = a.b\nafter = "
					"5\n"),
				   1, NULL),
			 FL_EPARSE);
	/* the same name twice, at the second header */
	assert_int_equal(parse_bad(RULE("kind = stale\nmetric = a.b\nafter = "
					"5\nevent = yes\n") RULE(""),
				   6, NULL),
			 FL_EPARSE);
}

static void test_parse_caps(void **unused)
{
	char *big = calloc(1, AGENT_RULES_TEXT_MAX + 2);
	char *many = calloc(1, 200 * 80);
	struct agent_rules *r = NULL;
	size_t off = 0;

	memset(big, ';', AGENT_RULES_TEXT_MAX + 1);
	assert_int_equal(
	    agent_rules_parse(big, strlen(big), "r.conf", NULL, &r, NULL),
	    FL_ELIMIT);
	for (int i = 0; i <= AGENT_RULES_MAX; i++) {
		off +=
		    (size_t)snprintf(many + off, 200 * 80 - off,
				     "[rule \"r%d\"]\nkind = stale\n"
				     "metric = a.b\nafter = 5\nevent = yes\n",
				     i);
	}
	assert_int_equal(parse_bad(many, 5 * AGENT_RULES_MAX + 1, NULL),
			 FL_ELIMIT);
	assert_int_equal(parse_bad(RULE("kind = stale\nmetric = a.b\n"
					"after = 5\nexec = /bin/true\n"
					"exec = /bin/true\nexec = /bin/true\n"
					"exec = /bin/true\nexec = /bin/true\n"),
				   9, NULL),
			 FL_ELIMIT);
	assert_int_equal(parse_bad(RULE("exec = /bin/x 1 2 3 4 5 6 7 8 9 10 11 "
					"12 13 14 15 16\n"),
				   2, NULL),
			 FL_ELIMIT);
	assert_int_equal(
	    parse_bad(RULE("kind = zscore\nsamples = 1025\n"), 3, NULL),
	    FL_EPARSE);
	assert_int_equal(parse_bad(RULE("kind = rate\nwindow = 2h\n"), 3, NULL),
			 FL_EPARSE);
	assert_int_equal(parse_bad(RULE("kind = stale\nafter = 2d\n"), 3, NULL),
			 FL_EPARSE);
	assert_int_equal(parse_bad(RULE("timeout = 10m\n"), 2, NULL),
			 FL_EPARSE);
	free(big);
	free(many);
}

static void test_parse_writes(void **unused)
{
	const char *rule = "[rule \"w\"]\nkind = threshold\nmetric = a.b\n"
			   "above = 1\n";
	char text[512];

	/* a write outside its target's limits is refused at load */
	snprintf(text, sizeof(text),
		 "%swrite = plc.sp 101\n[write \"plc.sp\"]\nmin = 0\n"
		 "max = 100\n",
		 rule);
	assert_int_equal(parse_bad(text, 5, NULL), FL_EPARSE);
	snprintf(text, sizeof(text),
		 "%swrite = plc.sp -0.5\n[write \"plc.sp\"]\nmin = 0\n"
		 "max = 100\n",
		 rule);
	assert_int_equal(parse_bad(text, 5, NULL), FL_EPARSE);
	/* undeclared target */
	snprintf(text, sizeof(text), "%swrite = plc.other 1\n", rule);
	assert_int_equal(parse_bad(text, 5, NULL), FL_EPARSE);
	snprintf(text, sizeof(text), "%swrite = plcsp 1\n", rule);
	assert_int_equal(parse_bad(text, 5, NULL), FL_EPARSE);
	snprintf(text, sizeof(text), "%swrite = plc.sp\n", rule);
	assert_int_equal(parse_bad(text, 5, NULL), FL_EPARSE);
	/* targets: both limits, in order */
	assert_int_equal(parse_bad("[write \"plc.sp\"]\nmin = 1\n", 1, NULL),
			 FL_EPARSE);
	assert_int_equal(
	    parse_bad("[write \"plc.sp\"]\nmin = 1\nmax = 0\n", 3, NULL),
	    FL_EPARSE);
	assert_int_equal(parse_bad("[write \"plcsp\"]\n", 1, NULL), FL_EPARSE);
	assert_int_equal(parse_bad("[write \"p.s\"]\nabove = 1\n", 2, NULL),
			 FL_EPARSE);
	/* in limits: fine */
	snprintf(text, sizeof(text),
		 "%swrite = plc.sp 100\n[write \"plc.sp\"]\nmin = 0\n"
		 "max = 100\n",
		 rule);
	agent_rules_free(parse_ok(text));
}

static void test_parse_exec(void **unused)
{
	const struct agent_rules_opts dir = {.exec_dir = "/usr/lib/fleet/"};
	const struct agent_rules_opts none = {.no_exec = true};
	const char *rule = "[rule \"x\"]\nkind = threshold\nmetric = a.b\n"
			   "above = 1\n";
	struct agent_rules *r = NULL;
	char text[512];

	snprintf(text, sizeof(text), "%sexec = bin/sh -c x\n", rule);
	assert_int_equal(parse_bad(text, 5, NULL), FL_EPARSE);
	snprintf(text, sizeof(text), "%sexec = /usr/lib/fleet/../../bin/sh\n",
		 rule);
	assert_int_equal(parse_bad(text, 5, NULL), FL_EPARSE);
	snprintf(text, sizeof(text), "%sexec = /usr/lib/fleet/..\n", rule);
	assert_int_equal(parse_bad(text, 5, NULL), FL_EPARSE);
	snprintf(text, sizeof(text), "%sexec = /usr//bin/x\n", rule);
	assert_int_equal(parse_bad(text, 5, NULL), FL_EPARSE);
	snprintf(text, sizeof(text), "%sexec = /usr/./bin/x\n", rule);
	assert_int_equal(parse_bad(text, 5, NULL), FL_EPARSE);
	snprintf(text, sizeof(text), "%sexec = /\n", rule);
	assert_int_equal(parse_bad(text, 5, NULL), FL_EPARSE);
	snprintf(text, sizeof(text), "%sexec = /bin/sh -c x\n", rule);
	assert_int_equal(parse_bad(text, 5, &dir), FL_EPARSE);
	assert_int_equal(parse_bad(text, 5, &none), FL_EPARSE);
	snprintf(text, sizeof(text), "%sexec = /usr/lib/fleet/sub/x\n", rule);
	assert_int_equal(parse_bad(text, 5, &dir), FL_EPARSE);
	snprintf(text, sizeof(text), "%sexec = /usr/lib/fleet/fan on\n", rule);
	assert_int_equal(
	    agent_rules_parse(text, strlen(text), "r.conf", &dir, &r, NULL), 0);
	agent_rules_free(r);
}

/* ------------------------------------------------------------------ */
/* The evaluator                                                      */
/* ------------------------------------------------------------------ */

struct rec {
	int events, execs, writes;
	double last_value;
	int64_t last_ts;
	char last_rule[64];
	int write_rc;
};

static void on_event(void *ctx, const struct agent_rule *r, double v,
		     int64_t ts)
{
	struct rec *c = ctx;

	c->events++;
	c->last_value = v;
	c->last_ts = ts;
	snprintf(c->last_rule, sizeof(c->last_rule), "%s", r->name);
}

static void on_exec(void *ctx, const struct agent_rule *r,
		    const struct agent_rule_action *a, double v, int64_t ts)
{
	((struct rec *)ctx)->execs++;
}

static int on_write(void *ctx, const char *source, const char *name, double v,
		    struct fl_error *err)
{
	struct rec *c = ctx;

	c->writes++;
	c->last_value = v;
	return c->write_rc ? fl_fail(err, c->write_rc, "refused") : 0;
}

static struct agent_rules_eval *eval_of(const char *text)
{
	return agent_rules_eval_new(parse_ok(text), 0);
}

/* Feed @v as metric @m at time @t (ms, monotonic and wall alike). */
static void feed(struct agent_rules_eval *e, struct rec *c, const char *m,
		 double v, int64_t t)
{
	struct agent_rules_actions a = {c, on_event, on_exec, on_write};
	struct agent_tlm_point p = {.value = v, .ts_ms = T0 + t};

	snprintf(p.metric, sizeof(p.metric), "%s", m);
	agent_rules_eval_feed(e, &p, t, &a);
}

static void test_threshold_hysteresis(void **unused)
{
	struct agent_rules_eval *e =
	    eval_of("[rule \"hot\"]\nkind = threshold\nmetric = t.c\n"
		    "above = 30\nhysteresis = 2\nevent = yes\n");
	/* up, wiggles inside the band, down past it, up again */
	const double series[] = {20,   29, 31,	 29, 30.5, 28.5, 31, 29,
				 27.9, 28, 29.9, 30, 30.1, 35,	 20};
	const int events_after[] = {0, 0, 1, 1, 1, 1, 1, 1,
				    1, 1, 1, 1, 2, 2, 2};
	struct rec c = {0};

	for (size_t i = 0; i < FL_ARRAY_SIZE(series); i++) {
		feed(e, &c, "t.c", series[i], (int64_t)i * 1000);
		feed(e, &c, "t.other", 100, (int64_t)i * 1000);
		if (c.events != events_after[i])
			fail_msg("after %g (#%zu): %d events, not %d",
				 series[i], i, c.events, events_after[i]);
	}
	assert_string_equal(c.last_rule, "hot");
	assert_true(c.last_value == 30.1);
	assert_int_equal(c.last_ts, T0 + 12000);
	agent_rules_eval_free(e);

	/* below, no hysteresis: every crossing */
	e = eval_of("[rule \"low\"]\nkind = threshold\nmetric = t.c\n"
		    "below = 5\nevent = yes\n");
	memset(&c, 0, sizeof(c));
	for (int i = 0; i < 6; i++)
		feed(e, &c, "t.c", i % 2 ? 4 : 6, i * 1000);
	assert_int_equal(c.events, 3);
	agent_rules_eval_free(e);
}

static void test_rate(void **unused)
{
	struct agent_rules_eval *e =
	    eval_of("[rule \"fast\"]\nkind = rate\nmetric = p.l\nabove = 1\n"
		    "window = 10s\nevent = yes\n");
	struct rec c = {0};

	/* 0.5 per s for 20 s: nothing */
	for (int i = 0; i <= 20; i++)
		feed(e, &c, "p.l", i * 0.5, i * 1000);
	assert_int_equal(c.events, 0);
	/* then 3 per s: over 10 s the rate passes 1 per s */
	for (int i = 21; i <= 30 && !c.events; i++)
		feed(e, &c, "p.l", 10 + (i - 20) * 3.0, i * 1000);
	assert_int_equal(c.events, 1);
	/* at 23 s: (19 - 6.5) / 10 s, the sample at 13 s the oldest */
	assert_true(fabs(c.last_value - 1.25) < 1e-9);
	assert_int_equal(c.last_ts, T0 + 23000);
	/* out-of-order sample: ignored */
	feed(e, &c, "p.l", 1000, 1000);
	assert_int_equal(c.events, 1);
	agent_rules_eval_free(e);
}

static void test_zscore(void **unused)
{
	struct agent_rules_eval *e =
	    eval_of("[rule \"odd\"]\nkind = zscore\nmetric = v.x\nabove = 3\n"
		    "samples = 10\nmin_samples = 4\nevent = yes\n");
	/* 10, 12, 10, 12: mean 11, sd 1 */
	const double base[] = {10, 12, 10, 12};
	struct rec c = {0};

	for (size_t i = 0; i < 4; i++)
		feed(e, &c, "v.x", base[i], (int64_t)i);
	/* a spike before min_samples could not fire; now z = 3 exactly:
	 * not above 3 */
	feed(e, &c, "v.x", 14, 10);
	assert_int_equal(c.events, 0);
	agent_rules_eval_free(e);

	e = eval_of("[rule \"odd\"]\nkind = zscore\nmetric = v.x\nabove = 3\n"
		    "samples = 10\nmin_samples = 4\nevent = yes\n");
	memset(&c, 0, sizeof(c));
	feed(e, &c, "v.x", 100, 0); /* only 0 samples before: no z */
	feed(e, &c, "v.x", 10, 1);
	feed(e, &c, "v.x", 12, 2);
	assert_int_equal(c.events, 0);
	agent_rules_eval_free(e);

	e = eval_of("[rule \"odd\"]\nkind = zscore\nmetric = v.x\nabove = 3\n"
		    "samples = 10\nmin_samples = 4\nevent = yes\n");
	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < 4; i++)
		feed(e, &c, "v.x", base[i], (int64_t)i);
	feed(e, &c, "v.x", 14.5, 10); /* z = 3.5 */
	assert_int_equal(c.events, 1);
	assert_true(c.last_value == 14.5);
	feed(e, &c, "v.x", 30, 11); /* still anomalous: disarmed */
	assert_int_equal(c.events, 1);
	agent_rules_eval_free(e);

	/* a constant series: the first different value is infinitely far */
	e = eval_of("[rule \"odd\"]\nkind = zscore\nmetric = v.x\nabove = 3\n"
		    "samples = 5\nevent = yes\n");
	memset(&c, 0, sizeof(c));
	for (int i = 0; i < 5; i++)
		feed(e, &c, "v.x", 7, i);
	assert_int_equal(c.events, 0);
	feed(e, &c, "v.x", 7.001, 9);
	assert_int_equal(c.events, 1);
	agent_rules_eval_free(e);
}

static void test_stale(void **unused)
{
	struct agent_rules_eval *e =
	    eval_of("[rule \"gone\"]\nkind = stale\nmetric = s.v\n"
		    "after = 5\nevent = yes\n");
	struct agent_rules_actions a = {NULL, on_event, on_exec, on_write};
	struct rec c = {0};

	a.ctx = &c;
	agent_rules_eval_tick(e, 5000, T0, &a); /* from the start: 5 s */
	assert_int_equal(c.events, 0);
	agent_rules_eval_tick(e, 5001, T0 + 1, &a);
	assert_int_equal(c.events, 1);
	assert_true(c.last_value == 5);
	assert_int_equal(c.last_ts, T0 + 1);
	agent_rules_eval_tick(e, 9000, T0, &a); /* once */
	assert_int_equal(c.events, 1);
	feed(e, &c, "s.v", 1, 10000); /* re-armed */
	agent_rules_eval_tick(e, 15000, T0, &a);
	assert_int_equal(c.events, 1);
	agent_rules_eval_tick(e, 15001, T0, &a);
	assert_int_equal(c.events, 2);
	agent_rules_eval_free(e);
}

static void test_caps_and_writes(void **unused)
{
	struct agent_rules_eval *e = eval_of(
	    "[write \"plc.fan\"]\nmin = 0\nmax = 1\n"
	    "[rule \"flap\"]\nkind = threshold\nmetric = f.v\nabove = 0\n"
	    "event = yes\nexec = /bin/true\nwrite = plc.fan 1\n");
	struct agent_rules_stats st;
	struct rec c = {0};
	int64_t t = 0;

	/* 100 crossings within a minute */
	for (int i = 0; i < 100; i++, t += 100) {
		feed(e, &c, "f.v", 1, t);
		feed(e, &c, "f.v", -1, t + 50);
	}
	assert_int_equal(c.events, AGENT_RULE_EVENTS_PER_MIN);
	assert_int_equal(c.execs, AGENT_RULE_EXECS_PER_MIN);
	assert_int_equal(c.writes, AGENT_RULE_WRITES_PER_MIN);
	agent_rules_eval_stats(e, &st);
	assert_int_equal(st.fired, 100);
	assert_int_equal(st.suppressed, 300 - AGENT_RULE_EVENTS_PER_MIN -
					    AGENT_RULE_EXECS_PER_MIN -
					    AGENT_RULE_WRITES_PER_MIN);
	/* a minute later: allowed again; a failed write is counted */
	c.write_rc = FL_EIO;
	feed(e, &c, "f.v", 1, 60000);
	assert_int_equal(c.events, AGENT_RULE_EVENTS_PER_MIN + 1);
	assert_int_equal(c.execs, AGENT_RULE_EXECS_PER_MIN + 1);
	agent_rules_eval_stats(e, &st);
	assert_int_equal(st.failed, 1);
	agent_rules_eval_free(e);

	/* no writer set: the write fails, the rest runs */
	e = eval_of("[write \"plc.fan\"]\nmin = 0\nmax = 1\n"
		    "[rule \"w\"]\nkind = threshold\nmetric = f.v\nabove = 0\n"
		    "write = plc.fan 1\nevent = yes\n");
	memset(&c, 0, sizeof(c));
	{
		struct agent_rules_actions a = {&c, on_event, NULL, NULL};
		struct agent_tlm_point p = {"f.v", 1, T0};

		agent_rules_eval_feed(e, &p, 0, &a);
	}
	agent_rules_eval_stats(e, &st);
	assert_int_equal(st.failed, 1);
	assert_int_equal(c.events, 1);
	agent_rules_eval_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good),
	    cmocka_unit_test(test_parse_doc_example),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_parse_caps),
	    cmocka_unit_test(test_parse_writes),
	    cmocka_unit_test(test_parse_exec),
	    cmocka_unit_test(test_threshold_hysteresis),
	    cmocka_unit_test(test_rate),
	    cmocka_unit_test(test_zscore),
	    cmocka_unit_test(test_stale),
	    cmocka_unit_test(test_caps_and_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
