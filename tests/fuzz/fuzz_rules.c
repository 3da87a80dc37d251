/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the local rule file (agent/rules.c; docs/rules.md), which the
 * shadow's "rules" key carries from operators to devices.  Input: the
 * text.  A text that parses must hold every cap and rule the parser
 * promises (checked here against the caps, not the parser's own
 * tables): counts, names, a kind with what it needs, writes within
 * their declared target's limits, exec programs absolute; then the
 * evaluator runs on a few values of every rule's metric and the timer,
 * whose actions must respect the per-minute caps.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "rules.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_setup();
	return 0;
}

#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x))                                                      \
			__builtin_trap();                                      \
	} while (0)

static const struct agent_rule_target *target(const struct agent_rules *r,
					      const struct agent_rule_action *a)
{
	for (size_t i = 0; i < r->n_w; i++) {
		size_t n = strlen(a->source);

		if (strncmp(r->w[i].name, a->source, n) == 0 &&
		    r->w[i].name[n] == '.' &&
		    strcmp(r->w[i].name + n + 1, a->name) == 0)
			return &r->w[i];
	}
	return NULL;
}

static void check_rule(const struct agent_rules *rs, const struct agent_rule *r)
{
	CHECK(r->name[0] && strlen(r->name) <= AGENT_RULE_NAME_MAX);
	CHECK(r->kind >= AGENT_RULE_THRESHOLD && r->kind <= AGENT_RULE_ZSCORE);
	CHECK(r->metric[0]);
	CHECK(r->n_act >= 1 && r->n_act <= AGENT_RULE_ACTIONS_MAX);
	CHECK(isfinite(r->limit) && r->hysteresis >= 0);
	CHECK(r->timeout_ms >= 1000 &&
	      r->timeout_ms <= AGENT_RULE_TIMEOUT_MAX * 1000);
	if (r->kind == AGENT_RULE_RATE)
		CHECK(r->window_ms >= 1000);
	if (r->kind == AGENT_RULE_STALE)
		CHECK(r->after_ms >= 1000);
	if (r->kind == AGENT_RULE_ZSCORE)
		CHECK(r->limit > 0 && r->samples >= 2 &&
		      r->samples <= AGENT_RULE_SAMPLES_MAX &&
		      r->min_samples >= 2 && r->min_samples <= r->samples);
	for (size_t k = 0; k < r->n_act; k++) {
		const struct agent_rule_action *a = &r->act[k];
		const struct agent_rule_target *t;

		if (a->kind == AGENT_RULE_WRITE) {
			CHECK((t = target(rs, a)) != NULL);
			CHECK(a->value >= t->min && a->value <= t->max);
		}
		if (a->kind == AGENT_RULE_EXEC)
			CHECK(
			    a->argv[0] && a->argv[0][0] == '/' &&
			    !strstr(a->argv[0], "/../") &&
			    !strstr(a->argv[0], "/./") &&
			    !strstr(a->argv[0], "//") &&
			    strcmp(a->argv[0] + strlen(a->argv[0]) - 2, "/.") &&
			    (strlen(a->argv[0]) < 3 ||
			     strcmp(a->argv[0] + strlen(a->argv[0]) - 3,
				    "/..")));
	}
}

static unsigned n_actions;

static void on_event(void *ctx, const struct agent_rule *r, double v,
		     int64_t ts)
{
	n_actions++;
}

static void on_exec(void *ctx, const struct agent_rule *r,
		    const struct agent_rule_action *a, double v, int64_t ts)
{
	n_actions++;
}

static int on_write(void *ctx, const char *source, const char *name, double v,
		    struct fl_error *err)
{
	n_actions++;
	return 0;
}

/* Values up and down on every rule's metric, and the timer. */
static void run(struct agent_rules *r)
{
	static const double values[] = {0, 1e9, -1e9, 3, 3, 1e-9, 50, -50};
	struct agent_rules_actions a = {NULL, on_event, on_exec, on_write};
	struct agent_rules_eval *e = agent_rules_eval_new(r, 0);
	size_t n = r->n;

	n_actions = 0;
	for (size_t i = 0; i < 4 * FL_ARRAY_SIZE(values); i++)
		for (size_t k = 0; k < n; k++) {
			struct agent_tlm_point p = {
			    .value = values[i % FL_ARRAY_SIZE(values)],
			    .ts_ms = 1000 * (int64_t)i};

			memcpy(p.metric, r->v[k].metric, sizeof(p.metric));
			agent_rules_eval_feed(e, &p, 1000 * (int64_t)i, &a);
		}
	agent_rules_eval_tick(e, 100000000, 0, &a);
	/* within a minute: at most the caps of each action of each rule */
	CHECK(n_actions <=
	      n * AGENT_RULE_ACTIONS_MAX * AGENT_RULE_EVENTS_PER_MIN);
	agent_rules_eval_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_rules *r = NULL;

	if (agent_rules_parse((const char *)data, size, "fuzz", NULL, &r, NULL))
		return 0;
	CHECK(r->n <= AGENT_RULES_MAX && r->n_w <= AGENT_RULES_WRITES_MAX);
	for (size_t i = 0; i < r->n_w; i++)
		CHECK(r->w[i].min <= r->w[i].max && strchr(r->w[i].name, '.'));
	for (size_t i = 0; i < r->n; i++)
		check_rule(r, &r->v[i]);
	run(r);
	return 0;
}
