/* SPDX-License-Identifier: MIT */
/*
 * Local rules in the agent (rules_agent.h): which rules are in force,
 * and their actions: events into the outbox, writes through the writer
 * the agent set, programs on threads of their own.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "log.h"
#include "proc.h"
#include "rules_agent.h"
#include "util.h"

#define EXEC_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
#define ENV_MAX 5

/* A program of an exec action, on its own thread. */
struct run {
	pthread_t thread;
	bool used;
	atomic_bool done;
	const atomic_bool *stop; /* the agent stops: kill it */
	const char *log_id;	 /* the device id its log lines start with */
	char *argv[AGENT_RULE_ARGV_MAX + 1];
	char *env[ENV_MAX + 1];
	char rule[AGENT_RULE_NAME_MAX + 1];
	int timeout_ms;
};

struct agent_rules_rt {
	const struct agent_config *cfg;
	struct agent_outbox *ob;
	struct agent_rules_eval *eval; /* NULL: no rules */
	char *shadow_text;	       /* in force; NULL: the file's rules */
	agent_rules_write_fn write;
	void *write_ctx;
	atomic_bool stop;
	struct run runs[AGENT_RULES_RUNNING_MAX];
	uint64_t busy; /* exec actions not run: all slots running */
};

int agent_rules_load_text(const struct agent_config *c, const char *text,
			  bool shadow, struct agent_rules **ret,
			  struct fl_error *err)
{
	struct agent_rules_opts o = {.exec_dir = c->rules_exec_dir,
				     .no_exec = shadow && !c->rules_exec_dir};

	return agent_rules_parse(text, strlen(text),
				 shadow ? "shadow rules" : c->rules_file, &o,
				 ret, err);
}

/* ------------------------------------------------------------------ */
/* Actions                                                            */
/* ------------------------------------------------------------------ */

/* The event: point "rule.NAME" as an EVENT message of the outbox. */
static void on_event(void *ctx, const struct agent_rule *r, double value,
		     int64_t ts_ms)
{
	struct agent_rules_rt *rt = ctx;
	struct agent_tlm_point p = {.value = value, .ts_ms = ts_ms};
	struct fl_error err = {0};
	uint64_t seq = 0;
	char *body;

	if (!rt->ob)
		return;
	snprintf(p.metric, sizeof(p.metric), AGENT_RULE_EVENT_PREFIX "%s",
		 r->name);
	body = agent_tlm_points_json(&p, 1);
	if (agent_outbox_put(rt->ob, AGENT_OUTBOX_EVENT, body, strlen(body), 1,
			     agent_tlm_now_ms(), &seq, &err))
		fl_warn("rules: event of '%s': %s", r->name, err.msg);
	else
		fl_info("rules: event of '%s' queued as message %llu", r->name,
			(unsigned long long)seq);
	free(body);
}

static int on_write(void *ctx, const char *source, const char *name,
		    double value, struct fl_error *err)
{
	struct agent_rules_rt *rt = ctx;

	if (!rt->write)
		return fl_fail(err, FL_ENOTFOUND, "no source '%s' to write to",
			       source);
	return rt->write(rt->write_ctx, source, name, value, err);
}

static int run_tick(void *user, struct fl_error *err)
{
	struct run *x = user;

	return atomic_load(x->stop) ? fl_fail(err, FL_ERR, "the agent stops")
				    : 0;
}

static void *run_main(void *arg)
{
	struct run *x = arg;
	struct agent_proc_opts o = {.argv = (const char *const *)x->argv,
				    .env = (const char *const *)x->env,
				    .clean_env = true,
				    .kill_group = true,
				    .timeout_ms = x->timeout_ms,
				    .tick = run_tick,
				    .user = x};
	struct agent_proc_result *res = fl_xcalloc(1, sizeof(*res));
	const char *prev = fl_log_context_set(x->log_id);
	struct fl_error err = {0};

	if (agent_proc_run(&o, res, &err))
		fl_warn("rules: '%s': %s: %s", x->rule, x->argv[0], err.msg);
	else
		fl_info("rules: '%s': %s exited %d%s%s", x->rule, x->argv[0],
			res->status, *res->output ? ": " : "",
			agent_proc_last_line(res->output));
	free(res);
	fl_log_context_set(prev);
	atomic_store(&x->done, true);
	return NULL;
}

static void run_clear(struct run *x)
{
	for (char **a = x->argv; *a; a++)
		free(*a);
	for (char **e = x->env; *e; e++)
		free(*e);
	memset(x->argv, 0, sizeof(x->argv));
	memset(x->env, 0, sizeof(x->env));
	x->used = false;
}

/* Join a finished program's thread (@wait: a running one too). */
static void run_reap(struct run *x, bool wait)
{
	if (!x->used || (!wait && !atomic_load(&x->done)))
		return;
	pthread_join(x->thread, NULL);
	run_clear(x);
}

static void on_exec(void *ctx, const struct agent_rule *r,
		    const struct agent_rule_action *a, double value,
		    int64_t ts_ms)
{
	struct agent_rules_rt *rt = ctx;
	struct run *x = NULL;

	for (size_t i = 0; i < AGENT_RULES_RUNNING_MAX && !x; i++)
		if (!rt->runs[i].used)
			x = &rt->runs[i];
	if (!x) {
		rt->busy++;
		fl_warn("rules: '%s': %d programs still running; %s not run",
			r->name, AGENT_RULES_RUNNING_MAX, a->argv[0]);
		return;
	}
	for (size_t i = 0; a->argv[i]; i++)
		x->argv[i] = fl_xstrdup(a->argv[i]);
	x->env[0] = fl_xstrdup(EXEC_PATH);
	x->env[1] = fl_xasprintf("FLEET_RULE=%s", r->name);
	x->env[2] = fl_xasprintf("FLEET_METRIC=%s", r->metric);
	x->env[3] = fl_xasprintf("FLEET_VALUE=%.17g", value);
	x->env[4] = fl_xasprintf("FLEET_TS=%lld", (long long)ts_ms);
	snprintf(x->rule, sizeof(x->rule), "%s", r->name);
	x->timeout_ms = (int)r->timeout_ms;
	x->stop = &rt->stop;
	x->log_id = rt->cfg->id;
	atomic_store(&x->done, false);
	x->used = true;
	if (pthread_create(&x->thread, NULL, run_main, x)) {
		fl_warn("rules: '%s': cannot start a thread", r->name);
		run_clear(x);
	}
}

/* ------------------------------------------------------------------ */
/* The rules in force                                                 */
/* ------------------------------------------------------------------ */

static void actions(struct agent_rules_rt *rt, struct agent_rules_actions *a)
{
	*a = (struct agent_rules_actions){rt, on_event, on_exec, on_write};
}

static void put_rules(struct agent_rules_rt *rt, struct agent_rules *r,
		      const char *from, int64_t now_ms)
{
	agent_rules_eval_free(rt->eval);
	rt->eval = r ? agent_rules_eval_new(r, now_ms) : NULL;
	fl_info("rules: %zu rules in force (%s)", r ? r->n : 0, from);
}

static void load_file(struct agent_rules_rt *rt, int64_t now_ms)
{
	const struct agent_config *c = rt->cfg;
	struct agent_rules *r = NULL;
	struct fl_error err = {0};
	char *text = NULL;
	size_t len = 0;

	if (!c->rules_file) {
		put_rules(rt, NULL, "no [rules] file", now_ms);
		return;
	}
	if (fl_read_file(c->rules_file, AGENT_RULES_TEXT_MAX, &text, &len,
			 &err) ||
	    agent_rules_load_text(c, text, false, &r, &err))
		fl_error("rules: none in force: %s", err.msg);
	put_rules(rt, r, c->rules_file, now_ms);
	free(text);
}

struct agent_rules_rt *agent_rules_rt_new(const struct agent_config *c,
					  struct agent_outbox *ob,
					  int64_t now_ms)
{
	struct agent_rules_rt *rt = fl_xcalloc(1, sizeof(*rt));

	rt->cfg = c;
	rt->ob = ob;
	load_file(rt, now_ms);
	return rt;
}

void agent_rules_rt_free(struct agent_rules_rt *rt)
{
	if (!rt)
		return;
	atomic_store(&rt->stop, true);
	for (size_t i = 0; i < AGENT_RULES_RUNNING_MAX; i++)
		run_reap(&rt->runs[i], true);
	agent_rules_eval_free(rt->eval);
	free(rt->shadow_text);
	free(rt);
}

void agent_rules_rt_set_writer(struct agent_rules_rt *rt,
			       agent_rules_write_fn write, void *ctx)
{
	rt->write = write;
	rt->write_ctx = ctx;
}

void agent_rules_rt_use(struct agent_rules_rt *rt, const char *text,
			int64_t now_ms)
{
	struct agent_rules *r = NULL;
	struct fl_error err = {0};

	if (!text && !rt->shadow_text)
		return;
	if (text && rt->shadow_text && strcmp(text, rt->shadow_text) == 0)
		return;
	free(rt->shadow_text);
	rt->shadow_text = text ? fl_xstrdup(text) : NULL;
	if (!text)
		load_file(rt, now_ms);
	else if (agent_rules_load_text(rt->cfg, text, true, &r, &err))
		fl_warn("rules: the old rules stay: %s", err.msg);
	else
		put_rules(rt, r, "the shadow", now_ms);
}

void agent_rules_rt_feed(struct agent_rules_rt *rt,
			 const struct agent_tlm_point *p, size_t n,
			 int64_t now_ms)
{
	struct agent_rules_actions a;

	actions(rt, &a);
	for (size_t i = 0; rt->eval && i < n; i++)
		agent_rules_eval_feed(rt->eval, &p[i], now_ms, &a);
}

void agent_rules_rt_tick(struct agent_rules_rt *rt, int64_t now_ms)
{
	struct agent_rules_actions a;

	actions(rt, &a);
	if (rt->eval)
		agent_rules_eval_tick(rt->eval, now_ms, agent_tlm_now_ms(), &a);
	for (size_t i = 0; i < AGENT_RULES_RUNNING_MAX; i++)
		run_reap(&rt->runs[i], false);
}

void agent_rules_rt_report(const struct agent_rules_rt *rt, json_t *into)
{
	struct agent_rules_stats st = {0};
	int running = 0;

	if (rt->eval)
		agent_rules_eval_stats(rt->eval, &st);
	for (size_t i = 0; i < AGENT_RULES_RUNNING_MAX; i++)
		running += rt->runs[i].used;
	json_object_set_new(
	    into, "rules",
	    json_pack("{s:s, s:I, s:I, s:I, s:I, s:i}", "source",
		      rt->shadow_text	    ? "shadow"
		      : rt->cfg->rules_file ? rt->cfg->rules_file
					    : "none",
		      "count",
		      (json_int_t)(rt->eval
				       ? agent_rules_eval_rules(rt->eval)->n
				       : 0),
		      "fired", (json_int_t)st.fired, "suppressed",
		      (json_int_t)(st.suppressed + rt->busy), "failed",
		      (json_int_t)st.failed, "running", running));
}
