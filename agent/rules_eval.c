/* SPDX-License-Identifier: MIT */
/*
 * The rule evaluator (rules.h, docs/rules.md "How rules fire"): every
 * kind reduces to a signal compared with the rule's limit by one edge
 * detector, so each fires once per crossing and is re-armed only once
 * the signal is back past limit -/+ hysteresis:
 *   threshold  the value;
 *   rate       change per second between the oldest and newest sample
 *              within the window;
 *   zscore     |z| of the value against the window of samples before it
 *              (none until min_samples are there);
 *   stale      a timer: fires once no value came for `after`, re-armed
 *              by the next value.
 * Actions go through struct agent_rules_actions, each kind capped per
 * rule and minute.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rules.h"
#include "util.h"

#define MINUTE_MS 60000

struct ring {
	double *v;
	int64_t *ts;
	unsigned cap, head, n; /* head: the oldest */
};

struct rstate {
	bool fired; /* disarmed until the signal is back */
	struct ring ring;
	int64_t last_ms;     /* monotonic: the last value, or the start */
	int64_t rl_start[3]; /* per action kind: the minute counted */
	unsigned rl_n[3];
};

struct agent_rules_eval {
	struct agent_rules *rules;
	struct rstate *st;
	struct agent_rules_stats stats;
};

static void ring_push(struct ring *r, double v, int64_t ts)
{
	unsigned i = (r->head + r->n) % r->cap;

	if (r->n == r->cap) {
		r->head = (r->head + 1) % r->cap;
		r->n--;
	}
	r->v[i] = v;
	r->ts[i] = ts;
	r->n++;
}

static unsigned ring_at(const struct ring *r, unsigned k)
{
	return (r->head + k) % r->cap;
}

struct agent_rules_eval *agent_rules_eval_new(struct agent_rules *rules,
					      int64_t now_ms)
{
	struct agent_rules_eval *e = fl_xcalloc(1, sizeof(*e));

	e->rules = rules;
	e->st = fl_xcalloc(rules->n ? rules->n : 1, sizeof(*e->st));
	for (size_t i = 0; i < rules->n; i++) {
		const struct agent_rule *r = &rules->v[i];
		struct ring *g = &e->st[i].ring;

		e->st[i].last_ms = now_ms;
		g->cap = r->kind == AGENT_RULE_ZSCORE ? r->samples
			 : r->kind == AGENT_RULE_RATE ? AGENT_RULE_SAMPLES_MAX
						      : 0;
		if (g->cap) {
			g->v = fl_xcalloc(g->cap, sizeof(*g->v));
			g->ts = fl_xcalloc(g->cap, sizeof(*g->ts));
		}
	}
	return e;
}

void agent_rules_eval_free(struct agent_rules_eval *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->rules->n; i++) {
		free(e->st[i].ring.v);
		free(e->st[i].ring.ts);
	}
	free(e->st);
	agent_rules_free(e->rules);
	free(e);
}

const struct agent_rules *
agent_rules_eval_rules(const struct agent_rules_eval *e)
{
	return e->rules;
}

void agent_rules_eval_stats(const struct agent_rules_eval *e,
			    struct agent_rules_stats *ret)
{
	*ret = e->stats;
}

/* ------------------------------------------------------------------ */
/* Firing                                                             */
/* ------------------------------------------------------------------ */

/* Signal @x: true when it crosses the limit while armed. */
static bool edge(struct rstate *s, const struct agent_rule *r, double x)
{
	bool over = r->below ? x < r->limit : x > r->limit;
	bool back = r->below ? x > r->limit + r->hysteresis
			     : x < r->limit - r->hysteresis;

	if (over && !s->fired)
		return s->fired = true;
	if (back)
		s->fired = false;
	return false;
}

/* One more action of kind @k (0..2) within its cap this minute? */
static bool allow(struct rstate *s, int k, unsigned cap, int64_t now)
{
	if (s->rl_n[k] == 0 || now - s->rl_start[k] >= MINUTE_MS) {
		s->rl_start[k] = now;
		s->rl_n[k] = 0;
	}
	if (s->rl_n[k] >= cap)
		return false;
	s->rl_n[k]++;
	return true;
}

static void write_action(struct agent_rules_eval *e, const struct agent_rule *r,
			 const struct agent_rule_action *x,
			 const struct agent_rules_actions *a)
{
	struct fl_error err = {0};
	int rc = a->write ? a->write(a->ctx, x->source, x->name, x->value, &err)
			  : fl_fail(&err, FL_ENOTFOUND, "no writer for %s",
				    x->source);

	if (rc) {
		e->stats.failed++;
		fl_warn("rules: '%s': write %s.%s %g: %s", r->name, x->source,
			x->name, x->value, err.msg);
	}
}

static void fire(struct agent_rules_eval *e, size_t i, double value,
		 int64_t ts_ms, int64_t now,
		 const struct agent_rules_actions *a)
{
	static const unsigned caps[] = {AGENT_RULE_EVENTS_PER_MIN,
					AGENT_RULE_WRITES_PER_MIN,
					AGENT_RULE_EXECS_PER_MIN};
	const struct agent_rule *r = &e->rules->v[i];

	e->stats.fired++;
	fl_info("rules: '%s' fired: %s %g", r->name, r->metric, value);
	for (size_t k = 0; k < r->n_act; k++) {
		const struct agent_rule_action *x = &r->act[k];
		int kind = (int)x->kind - 1;

		if (!allow(&e->st[i], kind, caps[kind], now)) {
			e->stats.suppressed++;
			fl_warn("rules: '%s': over %u actions of a kind a "
				"minute; not run",
				r->name, caps[kind]);
		} else if (x->kind == AGENT_RULE_EVENT && a->event) {
			a->event(a->ctx, r, value, ts_ms);
		} else if (x->kind == AGENT_RULE_WRITE) {
			write_action(e, r, x, a);
		} else if (x->kind == AGENT_RULE_EXEC && a->exec) {
			a->exec(a->ctx, r, x, value, ts_ms);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Signals                                                            */
/* ------------------------------------------------------------------ */

/* Change per second over the window, after adding the sample; false
 * while fewer than two samples span it. */
static bool rate(struct ring *g, const struct agent_rule *r, double v,
		 int64_t ts, double *ret)
{
	unsigned last;

	if (g->n && ts <= g->ts[ring_at(g, g->n - 1)])
		return false; /* out of order: not a change over time */
	ring_push(g, v, ts);
	while (g->n > 1 && g->ts[g->head] < ts - r->window_ms) {
		g->head = (g->head + 1) % g->cap;
		g->n--;
	}
	if (g->n < 2)
		return false;
	last = ring_at(g, g->n - 1);
	*ret = (g->v[last] - g->v[g->head]) * 1000.0 /
	       (double)(g->ts[last] - g->ts[g->head]);
	return true;
}

/* |z| of @v against the samples before it (then added); false while
 * fewer than min_samples. */
static bool zscore(struct ring *g, const struct agent_rule *r, double v,
		   double *ret)
{
	double sum = 0, sq = 0, mean, sd;
	bool ok = g->n >= r->min_samples;

	for (unsigned k = 0; ok && k < g->n; k++)
		sum += g->v[ring_at(g, k)];
	mean = ok ? sum / g->n : 0;
	for (unsigned k = 0; ok && k < g->n; k++) {
		double d = g->v[ring_at(g, k)] - mean;

		sq += d * d;
	}
	sd = ok ? sqrt(sq / g->n) : 0;
	if (ok)
		*ret = sd > 0 ? fabs(v - mean) / sd : v == mean ? 0 : INFINITY;
	ring_push(g, v, 0);
	return ok;
}

void agent_rules_eval_feed(struct agent_rules_eval *e,
			   const struct agent_tlm_point *p, int64_t now_ms,
			   const struct agent_rules_actions *a)
{
	for (size_t i = 0; i < e->rules->n; i++) {
		const struct agent_rule *r = &e->rules->v[i];
		struct rstate *s = &e->st[i];
		double x = p->value, shown = p->value;
		bool have = true;

		if (strcmp(r->metric, p->metric))
			continue;
		s->last_ms = now_ms;
		if (r->kind == AGENT_RULE_STALE) {
			s->fired = false;
		} else if (r->kind == AGENT_RULE_RATE) {
			have = rate(&s->ring, r, p->value, p->ts_ms, &x);
			shown = x;
		} else if (r->kind == AGENT_RULE_ZSCORE) {
			have = zscore(&s->ring, r, p->value, &x);
		}
		if (r->kind != AGENT_RULE_STALE && have && edge(s, r, x))
			fire(e, i, shown, p->ts_ms, now_ms, a);
	}
}

void agent_rules_eval_tick(struct agent_rules_eval *e, int64_t now_ms,
			   int64_t wall_ms, const struct agent_rules_actions *a)
{
	for (size_t i = 0; i < e->rules->n; i++) {
		const struct agent_rule *r = &e->rules->v[i];
		struct rstate *s = &e->st[i];
		int64_t quiet = now_ms - s->last_ms;

		if (r->kind == AGENT_RULE_STALE && !s->fired &&
		    quiet > r->after_ms) {
			s->fired = true;
			fire(e, i, (double)(quiet / 1000), wall_ms, now_ms, a);
		}
	}
}
