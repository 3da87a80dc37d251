/* SPDX-License-Identifier: MIT */
#ifndef AGENT_RULES_H
#define AGENT_RULES_H

/*
 * Local rules (issue 16, docs/rules.md): a small declarative file the
 * agent evaluates on every telemetry value it produces, offline too.
 *
 *   [write "plc.fan"]            ; a Modbus target rules may write
 *   min = 0
 *   max = 1
 *
 *   [rule "hot"]
 *   kind = threshold             ; threshold, rate, stale, zscore
 *   metric = room.temp
 *   above = 30                   ; or below
 *   hysteresis = 0.5
 *   event = yes                  ; actions: event, write, exec
 *   write = plc.fan 1
 *   exec = /usr/lib/fleet/rules/notify hot
 *
 * This module is pure: agent_rules_parse reads the text into struct
 * agent_rules (every error "FILE:LINE: message"), and the evaluator
 * (agent_rules_eval_*) keeps each rule's state and calls the actions
 * through struct agent_rules_actions, with time passed in, so both are
 * unit-tested without a clock, a broker or a Modbus device.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_telemetry.h"
#include "err.h"

#define AGENT_RULES_TEXT_MAX (32 * 1024) /* bytes of a rule file */
#define AGENT_RULES_MAX 64		 /* [rule] sections */
#define AGENT_RULES_WRITES_MAX 64	 /* [write] sections */
#define AGENT_RULE_NAME_MAX 59		 /* "rule." + name: a metric */
#define AGENT_RULE_ACTIONS_MAX 4	 /* actions of one rule */
#define AGENT_RULE_ARGV_MAX 16		 /* words of an exec action */
#define AGENT_RULE_EXEC_LEN_MAX 1024	 /* bytes of an exec line */
#define AGENT_RULE_SAMPLES_MAX 1024	 /* zscore window, rate samples */
#define AGENT_RULE_RATE_WINDOW_MAX 3600	 /* s */
#define AGENT_RULE_STALE_MAX 86400	 /* s */
#define AGENT_RULE_TIMEOUT_MAX 300	 /* s, an exec action */
#define AGENT_RULE_TIMEOUT_DEFAULT 10	 /* s */
#define AGENT_RULE_EVENTS_PER_MIN 30	 /* events of one rule a minute */
#define AGENT_RULE_EXECS_PER_MIN 6	 /* programs one rule starts */
#define AGENT_RULE_WRITES_PER_MIN 30	 /* writes of one rule */
#define AGENT_RULE_EVENT_PREFIX "rule."	 /* metric of a rule's event */

enum agent_rule_kind {
	AGENT_RULE_THRESHOLD = 1,
	AGENT_RULE_RATE,
	AGENT_RULE_STALE,
	AGENT_RULE_ZSCORE,
};

enum agent_rule_act {
	AGENT_RULE_EVENT = 1,
	AGENT_RULE_WRITE,
	AGENT_RULE_EXEC,
};

/* A target rules may write, with its limits ([write "SOURCE.NAME"]). */
struct agent_rule_target {
	char name[AGENT_TLM_METRIC_MAX + 1]; /* SOURCE.NAME */
	double min, max;
	unsigned line;
};

struct agent_rule_action {
	enum agent_rule_act kind;
	char source[AGENT_TLM_METRIC_MAX + 1]; /* write: SOURCE */
	char name[AGENT_TLM_METRIC_MAX + 1];   /* write: NAME */
	double value;			       /* write */
	unsigned line;
	char *argv[AGENT_RULE_ARGV_MAX + 1]; /* exec: NULL-ended */
};

struct agent_rule {
	char name[AGENT_RULE_NAME_MAX + 1];
	enum agent_rule_kind kind;
	char metric[AGENT_TLM_METRIC_MAX + 1];
	bool below;	      /* fires under the limit, else above it */
	double limit;	      /* value, rate per s, or |z| */
	double hysteresis;    /* >= 0: re-armed past limit -/+ it */
	int64_t window_ms;    /* rate: the window */
	unsigned samples;     /* zscore: the window, in samples */
	unsigned min_samples; /* zscore: before it can fire */
	int64_t after_ms;     /* stale */
	int64_t timeout_ms;   /* exec actions */
	struct agent_rule_action act[AGENT_RULE_ACTIONS_MAX];
	size_t n_act;
	unsigned line; /* of its section header */
};

struct agent_rules {
	struct agent_rule *v;
	size_t n;
	struct agent_rule_target *w;
	size_t n_w;
};

/* What a rule file may do where it comes from. */
struct agent_rules_opts {
	/* exec actions: programs directly in this directory only (NULL:
	 * any absolute path) */
	const char *exec_dir;
	bool no_exec; /* exec actions refused */
};

/*
 * Parse @len bytes of @text (a rule file named @file in messages) into
 * *@ret (free with agent_rules_free).  Every problem is refused with
 * "FILE:LINE: message": syntax, unknown sections, keys and kinds, a key
 * given twice, missing keys, caps, a write to an undeclared target or
 * outside its limits, an exec path that is not absolute or not in
 * @o->exec_dir.  Returns 0, FL_EPARSE, FL_ELIMIT.
 */
int agent_rules_parse(const char *text, size_t len, const char *file,
		      const struct agent_rules_opts *o,
		      struct agent_rules **ret, struct fl_error *err);

/* NULL is fine. */
void agent_rules_free(struct agent_rules *r);

/* ------------------------------------------------------------------ */
/* The evaluator                                                      */
/* ------------------------------------------------------------------ */

/*
 * The actions of a rule that fired.  @value: the value that made it
 * fire (stale: seconds since the last value), @ts_ms its time.  write
 * returns 0 or a code with @err set (logged by the evaluator).
 */
struct agent_rules_actions {
	void *ctx;
	void (*event)(void *ctx, const struct agent_rule *r, double value,
		      int64_t ts_ms);
	void (*exec)(void *ctx, const struct agent_rule *r,
		     const struct agent_rule_action *a, double value,
		     int64_t ts_ms);
	int (*write)(void *ctx, const char *source, const char *name,
		     double value, struct fl_error *err);
};

/* Counters for status. */
struct agent_rules_stats {
	uint64_t fired;	     /* rule firings */
	uint64_t suppressed; /* actions not run: over a rate cap */
	uint64_t failed;     /* writes that failed */
};

struct agent_rules_eval;

/* An evaluator of @rules (owned from now on) started at monotonic
 * @now_ms (stale rules count from there). */
struct agent_rules_eval *agent_rules_eval_new(struct agent_rules *rules,
					      int64_t now_ms);

/* NULL is fine. */
void agent_rules_eval_free(struct agent_rules_eval *e);

/* The rules evaluated (borrowed). */
const struct agent_rules *
agent_rules_eval_rules(const struct agent_rules_eval *e);

/*
 * Point @p (its ts_ms the sampling time) arrives at monotonic @now_ms:
 * every rule on its metric is evaluated and runs its actions through
 * @a when it fires.
 */
void agent_rules_eval_feed(struct agent_rules_eval *e,
			   const struct agent_tlm_point *p, int64_t now_ms,
			   const struct agent_rules_actions *a);

/* The timer at monotonic @now_ms, wall clock @wall_ms: stale rules
 * fire once no value came for their time. */
void agent_rules_eval_tick(struct agent_rules_eval *e, int64_t now_ms,
			   int64_t wall_ms,
			   const struct agent_rules_actions *a);

void agent_rules_eval_stats(const struct agent_rules_eval *e,
			    struct agent_rules_stats *ret);

#endif
