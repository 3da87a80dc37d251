/* SPDX-License-Identifier: MIT */
/*
 * The rollout engine (rollouts.h, DESIGN §7): called once a second from
 * fleetd's main loop, it reads what the store says about each active
 * rollout, decides, writes the decision (one transaction, guarded by the
 * state it saw), and only then acts: sends the commands it wrote, tells
 * devices to cancel.  It keeps nothing in memory between ticks, so
 * fleetd may be killed anywhere: a decision not written is taken again,
 * a command written but maybe not sent goes out again with the same
 * command id (the agent runs a command id once), and no device ever gets
 * a second job in one rollout (the store commands a row only from
 * "pending").
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "log.h"
#include "mqtt.h"
#include "rollouts.h"
#include "srv.h"
#include "util.h"

/* One rollout's tick. */
struct tick {
	struct srv *srv;
	const struct srv_rollout_row *r;
	int64_t now;
	char actor[FL_ID_MAX + 16];   /* "rollout:ID": its jobs' creator */
	char engine[320];	      /* "engine:HOLDER": the audit's actor */
	struct srv_bundle_row bundle; /* loaded for update commands */
	bool have_bundle;
	/* presence learnt since (rollout_rules.h): fleetd's MQTT link up
	 * since then, -1 down, 0 no link (tests) */
	int64_t presence_since;
};

/* Commands to send after their decisions are written. */
struct outbox {
	size_t n;
	struct out {
		const char *device, *type, *job, *command;
		bool cancel;
	} * v;
};

static void out_add(struct outbox *o, const char *device, const char *type,
		    const char *job, const char *command, bool cancel)
{
	o->v = fl_xrealloc(o->v, (o->n + 1) * sizeof(*o->v));
	o->v[o->n++] = (struct out){device, type, job, command, cancel};
}

static int bundle(struct tick *t, struct fl_error *err)
{
	int rc = 0;

	if (!t->have_bundle)
		rc = srv_store_bundle_get(t->srv->store, t->r->bundle,
					  &t->bundle, err);
	t->have_bundle = !rc;
	return rc;
}

/*
 * Send what @o holds (the decisions are in the store already) and record
 * the commands that went out.  A send that fails stays unsent in the
 * store, so a later tick sends it again.
 */
static int flush(struct tick *t, struct outbox *o, struct fl_error *err)
{
	const char **sent = fl_xcalloc(o->n + 1, sizeof(*sent));
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < o->n; i++) {
		const struct out *c = &o->v[i];
		bool update = fl_streq(c->type, "update");
		struct fl_error e = {0};

		if (c->cancel)
			rc = srv_job_tell_cancel(t->srv, c->device, c->job, &e);
		else if (update && bundle(t, &e))
			rc = e.code;
		else
			rc = srv_job_send(t->srv, c->device, c->type, c->job,
					  c->command,
					  update ? &t->bundle : NULL, &e);
		if (rc)
			fl_warn("rollout %s: %s %s to %s: %s", t->r->id,
				c->cancel ? "cancel of" : "command", c->job,
				c->device, e.msg);
		else if (!c->cancel)
			sent[n++] = c->device;
	}
	rc = n ? srv_store_rollout_sent(t->srv->store, t->r->id, sent, n,
					t->now, err)
	       : 0;
	free(sent);
	return rc;
}

/* The store change a verdict makes, if any. */
static bool change_of(const struct srv_rollout_watch_row *w,
		      const struct srv_rollout_verdict *v,
		      struct srv_rollout_change *c)
{
	static const struct {
		enum srv_rollout_verdict_kind kind;
		const char *to;
		bool finished;
	} moves[] = {
	    {SRV_VERDICT_UPDATED, "updated", true},
	    {SRV_VERDICT_HEALTHY, "healthy", false},
	    {SRV_VERDICT_FAILED, "failed", true},
	    {SRV_VERDICT_ROLLED_BACK, "rolled-back", true},
	    {SRV_VERDICT_ROLLBACK_FAILED, "rollback-failed", true},
	};

	*c = (struct srv_rollout_change){.device = w->device,
					 .from = w->state,
					 .offline_since = v->offline_since};
	for (size_t i = 0; i < FL_ARRAY_SIZE(moves); i++)
		if (moves[i].kind == v->kind) {
			c->to = c->event = moves[i].to;
			c->finished = moves[i].finished;
			c->reason = v->reason[0] ? v->reason : NULL;
		}
	return c->to || c->offline_since >= 0;
}

/*
 * Rolling back: stop @w's open update.  One the device never reported on
 * is cancelled here (it may never have got the command: the rollout must
 * not wait for its deadline); the device is told either way, and stops
 * unless it has switched slots (then the job ends on its own).
 */
static void stop_update(struct tick *t, const struct srv_rollout_watch_row *w,
			struct outbox *o)
{
	struct fl_error e = {0};

	if (w->job_seq == 0 &&
	    srv_store_job_cancel(t->srv->store, w->job, t->engine, &e))
		fl_warn("rollout %s: cancelling job %s: %s", t->r->id, w->job,
			e.msg);
	out_add(o, w->device, "update", w->job, NULL, true);
}

/*
 * Judge every watched row, write the verdicts, then resend what needs
 * it; rolling back, stop the updates still open instead (a cancel, once:
 * the flag is written first).
 */
static int watch(struct tick *t, int64_t healthy_wave, bool all,
		 struct fl_error *err)
{
	struct srv_rollout_watch_list l = {0};
	bool rolling_back = fl_streq(t->r->state, "rolling-back");
	struct srv_rollout_verdict *v;
	struct srv_rollout_change *c;
	struct outbox o = {0};
	size_t n = 0;
	int rc;

	rc = srv_store_rollout_watch(t->srv->store, t->r->id, healthy_wave, all,
				     &l, err);
	if (rc)
		return rc;
	v = fl_xcalloc(l.n + 1, sizeof(*v));
	c = fl_xcalloc(l.n + 1, sizeof(*c));
	for (size_t i = 0; i < l.n; i++) {
		struct srv_rollout_watch_row *w = &l.v[i];
		bool rb = fl_streq(w->state, "rolling-back");

		srv_rollout_judge(w, t->r->version, t->r->health_window_s,
				  t->now, t->presence_since, &v[i]);
		if (change_of(w, &v[i], &c[n]))
			n++;
		if (v[i].resend && (rb || !rolling_back))
			out_add(&o, w->device, rb ? "rollback" : "update",
				rb ? w->rb_job : w->job,
				rb ? w->rb_command : w->command, false);
		if (rolling_back && !v[i].kind && !w->cancel_sent &&
		    fl_streq(w->state, "commanded")) {
			c[n++] =
			    (struct srv_rollout_change){.device = w->device,
							.from = w->state,
							.offline_since = -1,
							.cancel_sent = true};
			stop_update(t, w, &o);
		}
	}
	rc = n ? srv_store_rollout_apply(t->srv->store, t->r->id, c, n, t->now,
					 NULL, err)
	       : 0;
	if (!rc)
		rc = flush(t, &o, err);
	free(o.v);
	free(c);
	free(v);
	srv_rollout_watch_list_free(&l);
	return rc;
}

static int step(struct tick *t, struct srv_rollout_step *st,
		struct fl_error *err)
{
	st->actor = t->engine;
	return srv_store_rollout_step(t->srv->store, t->r->id, st, t->now, err);
}

/* A step that changes nothing yet: set what it changes. */
static struct srv_rollout_step step_new(const char *from, const char *event)
{
	return (struct srv_rollout_step){.from = from,
					 .wave = -1,
					 .soak_until = -1,
					 .wave_done = -1,
					 .tripped = -1,
					 .event = event};
}

/* The gate tripped: paused, or rolling back with auto_rollback. */
static int trip(struct tick *t, const struct srv_rollout_gate *g,
		struct fl_error *err)
{
	char why[200];
	struct srv_rollout_step st = step_new("running", "gate-tripped");

	st.to = t->r->auto_rollback ? "rolling-back" : "paused";
	st.reason = st.detail = why;
	st.tripped = 1;
	srv_rollout_gate_text(g, why, sizeof(why));
	fl_warn("rollout %s: %s; %s", t->r->id, why,
		t->r->auto_rollback ? "rolling back" : "paused");
	return step(t, &st, err);
}

/* Jobs for a batch of devices, ids chosen up front. */
struct batch {
	size_t n;
	struct srv_rollout_cmd *cmds;
	struct srv_job *jobs;
	char (*ids)[2][40]; /* job id, command id */
};

static void batch_init(struct batch *b, size_t cap)
{
	b->n = 0;
	b->cmds = fl_xcalloc(cap + 1, sizeof(*b->cmds));
	b->jobs = fl_xcalloc(cap + 1, sizeof(*b->jobs));
	b->ids = fl_xcalloc(cap + 1, sizeof(*b->ids));
}

static void batch_free(struct batch *b)
{
	free(b->cmds);
	free(b->jobs);
	free(b->ids);
}

/* A job of @type (to @to_version) for @device, borrowed strings. */
static void batch_add(struct batch *b, const struct tick *t, const char *device,
		      const char *type, const char *to_version)
{
	size_t i = b->n++;

	srv_job_new_ids(b->ids[i][0], b->ids[i][1]);
	b->jobs[i] = (struct srv_job){
	    .id = b->ids[i][0],
	    .device = device,
	    .type = type,
	    .bundle = fl_streq(type, "update") ? t->bundle.id : NULL,
	    .command = b->ids[i][1],
	    .rollout = t->r->id,
	    .to_version = to_version,
	    .created_by = t->actor,
	    .expires = t->now + t->r->device_timeout_s,
	    .lane = srv_job_lane(type)};
	b->cmds[i] = (struct srv_rollout_cmd){device, &b->jobs[i], 0};
}

#ifdef FLEET_TEST_HOOKS
/*
 * Test builds only (fleetd-test): FLEETD_FAILPOINTS=rollout-before-send
 * stops fleetd (SIGSTOP) right after a batch of commands was written and
 * before any of them is sent, so a test can kill -9 it exactly there.
 */
static void failpoint_before_send(void)
{
	const char *fp = getenv("FLEETD_FAILPOINTS");

	if (fp && fl_streq(fp, "rollout-before-send")) {
		fl_warn("failpoint rollout-before-send: stopping (SIGSTOP)");
		raise(SIGSTOP);
	}
}
#else
static void failpoint_before_send(void)
{
}
#endif

/* Write the batch's decisions (and the rate clock), then send. */
static int batch_run(struct tick *t, struct batch *b, int64_t clock,
		     struct fl_error *err)
{
	struct outbox o = {0};
	int rc;

	rc = srv_store_rollout_command(t->srv->store, t->r->id, b->cmds, b->n,
				       t->now, clock, err);
	if (!rc)
		failpoint_before_send();
	for (size_t i = 0; !rc && i < b->n; i++)
		if (!b->cmds[i].result)
			out_add(&o, b->cmds[i].device, b->jobs[i].type,
				b->ids[i][0], b->ids[i][1], false);
	if (!rc)
		rc = flush(t, &o, err);
	free(o.v);
	return rc;
}

/*
 * How many of @pending devices may be commanded now, by the concurrency
 * cap (@open devices at work) and the rate; *@clock gets the rate clock
 * after them (ms: 60000 / rate per device, at most a second's worth, or
 * one device, of backlog).
 */
static int64_t budget_of(const struct tick *t, int64_t pending, int64_t open,
			 int64_t *clock)
{
	const struct srv_rollout_row *r = t->r;
	int64_t budget = pending, now_ms = t->now * 1000, step, back;

	*clock = now_ms;
	if (r->concurrency && budget > r->concurrency - open)
		budget = r->concurrency - open;
	if (budget > SRV_ROLLOUT_BATCH)
		budget = SRV_ROLLOUT_BATCH;
	if (!r->rate_per_min || budget <= 0)
		return budget;
	step = 60000 / r->rate_per_min;
	back = step > 1000 ? step : 1000;
	*clock =
	    r->last_command > now_ms - back ? r->last_command : now_ms - back;
	if (budget > (now_ms - *clock) * r->rate_per_min / 60000)
		budget = (now_ms - *clock) * r->rate_per_min / 60000;
	*clock += (budget * 60000 + r->rate_per_min - 1) / r->rate_per_min;
	return budget;
}

/* Command the next pending devices of wave @wave, within the rate and
 * concurrency limits; @open devices are commanded and unfinished. */
static int command(struct tick *t, int64_t wave, int64_t pending, int64_t open,
		   struct fl_error *err)
{
	struct srv_strv devs = {0};
	struct batch b;
	int64_t clock, budget = budget_of(t, pending, open, &clock);
	int rc;

	if (budget <= 0)
		return 0;
	rc = bundle(t, err);
	if (!rc)
		rc = srv_store_rollout_pending(t->srv->store, t->r->id, wave,
					       (int)budget, &devs, err);
	if (rc || !devs.n)
		goto out;
	batch_init(&b, devs.n);
	for (size_t i = 0; i < devs.n; i++)
		batch_add(&b, t, devs.v[i], "update", t->r->version);
	rc = batch_run(t, &b, clock, err);
	batch_free(&b);
out:
	srv_strv_free(&devs);
	return rc;
}

/* Devices of wave @wave (or, with @wave -1, of all) in @state. */
static int64_t count(const struct srv_rollout_count_list *c, int64_t wave,
		     const char *state)
{
	int64_t n = 0;

	for (size_t i = 0; i < c->n; i++)
		if ((wave < 0 || c->v[i].wave == wave) &&
		    fl_streq(c->v[i].state, state))
			n += c->v[i].n;
	return n;
}

/* Wave finished: its soak, then the next wave or the end. */
static int advance(struct tick *t, struct fl_error *err)
{
	const struct srv_rollout_row *r = t->r;
	int64_t until = r->soak_until;
	char detail[96];
	struct srv_rollout_step st;
	int rc;

	if (!until) {
		until = t->now + r->soak_s;
		snprintf(detail, sizeof(detail),
			 "wave %lld finished; soak %llds",
			 (long long)r->wave + 1, (long long)r->soak_s);
		st = step_new("running", "wave-finished");
		st.soak_until = until;
		st.wave_done = r->wave;
		st.detail = detail;
		rc = step(t, &st, err);
		if (rc)
			return rc;
	}
	if (t->now < until)
		return 0;
	if (r->wave + 1 < r->n_waves) {
		snprintf(detail, sizeof(detail), "wave %lld of %lld",
			 (long long)r->wave + 2, (long long)r->n_waves);
		st = step_new("running", "wave-started");
		st.wave = r->wave + 1;
		st.soak_until = 0;
		st.detail = detail;
		fl_info("rollout %s: %s started", r->id, detail);
	} else {
		st = step_new("running", "completed");
		st.to = "completed";
		st.reason = "";
		st.release = st.skip_pending = true;
		fl_info("rollout %s: completed", r->id);
	}
	return step(t, &st, err);
}

static int run_tick(struct tick *t, struct fl_error *err)
{
	struct srv_rollout_count_list c = {0};
	struct srv_rollout_gate g;
	int64_t k = t->r->wave, pending, busy;
	int rc;

	rc = watch(t, k, false, err);
	if (rc || !fl_streq(t->r->state, "running"))
		return rc;
	rc = srv_store_rollout_counts(t->srv->store, t->r->id, &c, err);
	if (rc)
		return rc;
	srv_rollout_gate_of(t->r, &c, &g);
	pending = count(&c, k, "pending");
	busy = count(&c, k, "commanded") + count(&c, k, "updated");
	if (g.tripped)
		rc = trip(t, &g, err);
	else if (!pending && !busy)
		rc = advance(t, err);
	else if (pending)
		rc = command(t, k, pending, count(&c, -1, "commanded"), err);
	srv_rollout_count_list_free(&c);
	return rc;
}

/* Rolling back, nothing left in flight: the end. */
static int rolled_back(struct tick *t, size_t done, size_t failed,
		       struct fl_error *err)
{
	char detail[96];
	struct srv_rollout_step st = step_new("rolling-back", "rolled-back");

	st.to = "rolled-back";
	st.skip_pending = st.release = true;
	st.detail = detail;
	snprintf(detail, sizeof(detail),
		 "%zu device(s) rolled back, %zu rollback(s) failed", done,
		 failed);
	fl_info("rollout %s: rolled back (%s)", t->r->id, detail);
	return step(t, &st, err);
}

/* Rolling back: command a rollback for each device that needs one, and
 * end when none is left in flight. */
static int rollback_tick(struct tick *t, struct fl_error *err)
{
	struct srv_rollout_watch_list l = {0};
	size_t busy = 0, done = 0, failed = 0;
	struct batch b;
	int rc;

	rc = watch(t, -1, true, err);
	if (!rc)
		rc = srv_store_rollout_watch(t->srv->store, t->r->id, -1, true,
					     &l, err);
	if (rc)
		return rc;
	batch_init(&b, l.n);
	for (size_t i = 0; i < l.n; i++) {
		const struct srv_rollout_watch_row *w = &l.v[i];

		busy += fl_streq(w->state, "commanded") ||
			fl_streq(w->state, "rolling-back");
		done += fl_streq(w->state, "rolled-back");
		failed += fl_streq(w->state, "rollback-failed");
		if (b.n < SRV_ROLLOUT_BATCH && !w->rb_job &&
		    srv_rollout_needs_rollback(w, t->r->version))
			batch_add(&b, t, w->device, "rollback",
				  w->from_version);
	}
	if (b.n)
		rc = batch_run(t, &b, t->r->last_command, err);
	else if (!busy)
		rc = rolled_back(t, done, failed, err);
	batch_free(&b);
	srv_rollout_watch_list_free(&l);
	return rc;
}

static int rollout_tick(struct srv *srv, const struct srv_rollout_row *r,
			int64_t now, struct fl_error *err)
{
	struct tick t = {.srv = srv, .r = r, .now = now};
	struct srv_mqtt_stats ms;
	int rc;

	if (srv->mqtt) {
		srv_mqtt_stats(srv->mqtt, &ms);
		t.presence_since = ms.connected ? ms.connected_since : -1;
	}
	snprintf(t.actor, sizeof(t.actor), "rollout:%s", r->id);
	snprintf(t.engine, sizeof(t.engine), "engine:%.300s",
		 srv->engine_id ? srv->engine_id : "fleetd");
	if (fl_streq(r->state, "rolling-back"))
		rc = rollback_tick(&t, err);
	else
		rc = run_tick(&t, err);
	srv_bundle_row_free(&t.bundle);
	return rc;
}

/* The lease this fleetd holds the engine by. */
static const char *holder(const struct srv *srv)
{
	return srv->engine_id ? srv->engine_id : "fleetd";
}

/* Take or renew the engine's lease when there is work, or always for a
 * replica; true when this fleetd may run the engine now. */
static bool take_lease(struct srv *srv, size_t active, int64_t now)
{
	struct fl_error err = {0};
	bool held;

	if (!active && !srv->replica) {
		__atomic_store_n(&srv->engine_held, true, __ATOMIC_RELAXED);
		return false;
	}
	held = !srv_store_lease_take(srv->store, SRV_ROLLOUT_LEASE, holder(srv),
				     now, SRV_ROLLOUT_LEASE_TTL, NULL, &err);
	if (held !=
	    __atomic_exchange_n(&srv->engine_held, held, __ATOMIC_RELAXED))
		fl_info("rollout engine: %s",
			held ? "this fleetd holds it" : err.msg);
	return held && active;
}

void srv_rollouts_tick(struct srv *srv, int64_t now)
{
	struct srv_rollout_list l = {0};
	struct fl_error err = {0};

	if (srv_store_rollout_list(srv->store, true, 1000, &l, &err)) {
		fl_warn("rollouts: %s", err.msg);
		return;
	}
	if (take_lease(srv, l.n, now)) {
		srv_store_jobs_expire(srv->store, now, NULL, NULL);
		for (size_t i = 0; i < l.n; i++) {
			fl_error_clear(&err);
			pthread_mutex_lock(&srv->rollouts_lock);
			if (rollout_tick(srv, &l.v[i], now, &err) &&
			    err.code != FL_ECONFLICT)
				fl_warn("rollout %s: %s", l.v[i].id, err.msg);
			pthread_mutex_unlock(&srv->rollouts_lock);
		}
	}
	srv_rollout_list_free(&l);
}

void srv_rollouts_release(struct srv *srv, int64_t now)
{
	/* a lease that ends now is free to take (or not ours: refused) */
	if (srv->replica &&
	    !srv_store_lease_take(srv->store, SRV_ROLLOUT_LEASE, holder(srv),
				  now, 0, NULL, NULL))
		fl_info("rollout engine: lease handed back");
}
