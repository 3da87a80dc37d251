/* SPDX-License-Identifier: MIT */
/* The rollout engine's judgements (rollout_rules.h). */
#include <stdio.h>
#include <string.h>

#include "rollout_rules.h"
#include "util.h"

const char *const srv_rollout_device_states[] = {
    "pending",	   "commanded",	      "updated",   "healthy",
    "failed",	   "skipped",	      "cancelled", "rolling-back",
    "rolled-back", "rollback-failed", NULL};

void srv_rollout_gate_eval(struct srv_rollout_gate *g)
{
	g->needed = g->min_sample < g->started ? g->min_sample : g->started;
	g->tripped = g->failed >= 1 &&
		     g->failed * 100 > g->percent * g->finished &&
		     g->finished >= g->needed;
}

void srv_rollout_gate_of(const struct srv_rollout_row *r,
			 const struct srv_rollout_count_list *c,
			 struct srv_rollout_gate *ret)
{
	struct srv_rollout_gate g = {.percent = r->fail_percent,
				     .min_sample = r->min_sample};

	for (size_t i = 0; i < c->n; i++) {
		const char *st = c->v[i].state;
		bool failed = fl_streq(st, "failed");

		g.failed += failed ? c->v[i].n : 0;
		g.finished += failed || fl_streq(st, "healthy") ? c->v[i].n : 0;
		if (c->v[i].wave <= r->wave && !fl_streq(st, "skipped") &&
		    !fl_streq(st, "cancelled"))
			g.started += c->v[i].n;
	}
	g.failed -= r->base_failed;
	g.finished -= r->base_finished;
	g.started -= r->base_finished;
	srv_rollout_gate_eval(&g);
	*ret = g;
}

void srv_rollout_gate_text(const struct srv_rollout_gate *g, char *buf,
			   size_t len)
{
	snprintf(buf, len,
		 "gate tripped: %lld of %lld finished device(s) failed "
		 "(%lld%% > %lld%%)",
		 (long long)g->failed, (long long)g->finished,
		 (long long)(g->finished ? g->failed * 100 / g->finished : 0),
		 (long long)g->percent);
}

/* "update failed at verifying: bad signature" */
static void job_outcome(struct srv_rollout_verdict *v, const char *type,
			const char *state, const char *stage,
			const char *reason)
{
	snprintf(v->reason, sizeof(v->reason), "%s %s%s%s%s%s", type,
		 state ? state : "lost", stage ? " at " : "",
		 stage ? stage : "", reason ? ": " : "", reason ? reason : "");
}

/*
 * Send the open command again: never sent; or not answered (@seq 0) by
 * a device online, SRV_ROLLOUT_RESEND after it went out, or at once when
 * it went out before fleetd's MQTT link came up (@presence_since): a
 * QoS 2 message the broker did not release before fleetd died (or lost
 * the broker) never reaches the device, and the store cannot tell.
 */
static bool resend(const struct srv_rollout_watch_row *w, int64_t seq,
		   int64_t now, int64_t presence_since)
{
	return w->sent == 0 || (seq == 0 && w->dev_online &&
				(now - w->sent >= SRV_ROLLOUT_RESEND ||
				 w->sent < presence_since));
}

/*
 * The health watch of an updated or healthy device: true (with the
 * reason) when it failed; offline_since is tracked either way.
 */
static bool watch_fails(const struct srv_rollout_watch_row *w,
			const char *version, int64_t now,
			int64_t presence_since, struct srv_rollout_verdict *v)
{
	const char *when = fl_streq(w->state, "updated")
			       ? "during its health window"
			       : "during the soak";
	bool presence = presence_since >= 0;
	int64_t off =
	    now - (w->offline_since > presence_since ? w->offline_since
						     : presence_since);

	if (!fl_streq(w->dev_state, "active"))
		snprintf(v->reason, sizeof(v->reason), "decommissioned %s",
			 when);
	else if (fl_streq(w->dev_health, "failed"))
		snprintf(v->reason, sizeof(v->reason), "reported unhealthy %s",
			 when);
	else if (w->dev_firmware && !fl_streq(w->dev_firmware, version))
		snprintf(v->reason, sizeof(v->reason), "back on firmware %s %s",
			 w->dev_firmware, when);
	else if (presence && !w->dev_online && w->offline_since &&
		 off >= SRV_ROLLOUT_OFFLINE_GRACE)
		snprintf(v->reason, sizeof(v->reason), "offline for %llds %s",
			 (long long)off, when);
	else {
		if (presence && !w->dev_online && !w->offline_since)
			v->offline_since = now;
		else if (presence && w->dev_online && w->offline_since)
			v->offline_since = 0;
		return false;
	}
	return true;
}

static void judge_commanded(const struct srv_rollout_watch_row *w, int64_t now,
			    int64_t presence_since,
			    struct srv_rollout_verdict *v)
{
	if (!w->job) {
		v->kind = SRV_VERDICT_FAILED;
		snprintf(v->reason, sizeof(v->reason), "its job is missing");
	} else if (w->job_final) {
		v->kind = fl_streq(w->job_state, "succeeded")
			      ? SRV_VERDICT_UPDATED
			      : SRV_VERDICT_FAILED;
		if (v->kind == SRV_VERDICT_FAILED)
			job_outcome(v, "update", w->job_state, w->job_stage,
				    w->job_reason);
	} else if (!fl_streq(w->dev_state, "active")) {
		v->kind = SRV_VERDICT_FAILED;
		snprintf(v->reason, sizeof(v->reason),
			 "decommissioned during its update");
	} else {
		v->resend = resend(w, w->job_seq, now, presence_since);
	}
}

static void judge_rollback(const struct srv_rollout_watch_row *w, int64_t now,
			   int64_t presence_since,
			   struct srv_rollout_verdict *v)
{
	if (!w->rb_job ||
	    (w->rb_final && !fl_streq(w->rb_state, "succeeded"))) {
		v->kind = SRV_VERDICT_ROLLBACK_FAILED;
		job_outcome(v, "rollback", w->rb_state, w->rb_stage,
			    w->rb_reason);
	} else if (w->rb_final) {
		v->kind = SRV_VERDICT_ROLLED_BACK;
	} else {
		v->resend = resend(w, w->rb_seq, now, presence_since);
	}
}

void srv_rollout_judge(const struct srv_rollout_watch_row *w,
		       const char *version, int64_t window, int64_t now,
		       int64_t presence_since, struct srv_rollout_verdict *v)
{
	*v = (struct srv_rollout_verdict){.offline_since = -1};
	if (fl_streq(w->state, "commanded")) {
		judge_commanded(w, now, presence_since, v);
	} else if (fl_streq(w->state, "rolling-back")) {
		judge_rollback(w, now, presence_since, v);
	} else if (fl_streq(w->state, "updated") ||
		   fl_streq(w->state, "healthy")) {
		if (watch_fails(w, version, now, presence_since, v))
			v->kind = SRV_VERDICT_FAILED;
		else if (fl_streq(w->state, "updated") &&
			 now >= w->finished + window && w->dev_online)
			v->kind = SRV_VERDICT_HEALTHY;
	}
}

bool srv_rollout_needs_rollback(const struct srv_rollout_watch_row *w,
				const char *version)
{
	bool back = w->from_version && w->dev_firmware &&
		    fl_streq(w->dev_firmware, w->from_version) &&
		    !fl_streq(w->from_version, version);

	if (back)
		return false;
	if (fl_streq(w->state, "updated") || fl_streq(w->state, "healthy"))
		return true;
	if (fl_streq(w->state, "failed"))
		return fl_streq(w->job_state, "succeeded") ||
		       fl_streq(w->dev_firmware, version);
	return false;
}
