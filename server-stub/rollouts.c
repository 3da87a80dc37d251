/* SPDX-License-Identifier: MIT */
/*
 * The rollout service (rollouts.h): plan, create, show and the
 * operators' moves.  The engine is rollout_engine.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "json.h"
#include "log.h"
#include "rollout_spec.h"
#include "rollouts.h"
#include "srv.h"
#include "util.h"

void srv_rollout_preview_release(struct srv_rollout_preview *p)
{
	if (!p)
		return;
	srv_bundle_row_free(&p->bundle);
	json_decref(p->spec);
	p->spec = NULL;
	srv_rollout_plan_free(&p->plan);
	srv_strv_free(&p->busy);
}

/* Plan @s over the store's devices; fills @p (not its busy list). */
static int plan_spec(struct srv *srv, const struct srv_rollout_spec *s,
		     struct srv_rollout_preview *p, struct fl_error *err)
{
	struct srv_device_list devs = {0};
	int rc;

	rc = srv_store_bundle_get(srv->store, s->bundle, &p->bundle, err);
	if (rc)
		return rc;
	if (s->id) {
		fl_strlcpy(p->id, s->id, sizeof(p->id));
	} else {
		srv_rollout_new_id(p->id);
		p->generated = true;
	}
	rc = srv_store_rollout_candidates(srv->store, s->target.group,
					  s->target.devices,
					  s->target.n_devices, &devs, err);
	if (!rc)
		rc = srv_rollout_plan_make(s, p->id, p->bundle.version, &devs,
					   &p->plan, err);
	if (!rc)
		p->spec = srv_rollout_spec_json(s, p->id, p->bundle.id);
	srv_device_list_free(&devs);
	return rc;
}

int srv_rollout_plan(struct srv *srv, const json_t *body,
		     struct srv_rollout_preview *ret, struct fl_error *err)
{
	struct srv_rollout_preview p = {0};
	struct srv_rollout_spec s;
	int rc;

	rc = srv_rollout_spec_parse(body, &s, err);
	if (rc)
		return rc;
	rc = plan_spec(srv, &s, &p, err);
	if (!rc)
		rc = srv_store_rollout_busy(srv->store,
					    (const char *const *)p.plan.order,
					    p.plan.n, &p.busy, err);
	srv_rollout_spec_release(&s);
	if (rc) {
		srv_rollout_preview_release(&p);
		return rc;
	}
	*ret = p;
	return 0;
}

/* The store's record of plan @p of spec @s. */
static int record(struct srv *srv, const struct srv_rollout_spec *s,
		  const struct srv_rollout_preview *p, const char *actor,
		  int64_t now, struct fl_error *err)
{
	const struct srv_rollout_plan *pl = &p->plan;
	char stops[FL_WAVES_MAX][FL_WAVE_STOP_TEXT];
	const char *stop_v[FL_WAVES_MAX];
	size_t sizes[FL_WAVES_MAX];
	size_t *wave = fl_xcalloc(pl->n + 1, sizeof(*wave));
	char *spec = fl_json_dumps(p->spec);
	struct srv_rollout r = {.id = p->id,
				.bundle = p->bundle.id,
				.version = p->bundle.version,
				.spec = spec,
				.created_by = actor,
				.soak_s = s->soak_s,
				.health_window_s = s->health_window_s,
				.device_timeout_s = s->device_timeout_s,
				.fail_percent = s->fail_percent,
				.min_sample = s->min_sample,
				.rate_per_min = s->rate_per_min,
				.concurrency = s->concurrency,
				.auto_rollback = s->auto_rollback,
				.n_waves = pl->n_waves,
				.wave_stops = stop_v,
				.wave_sizes = sizes,
				.n_devices = pl->n,
				.devices = (const char *const *)pl->order,
				.device_wave = wave};
	int rc;

	for (size_t k = 0; k < pl->n_waves; k++) {
		fl_wave_stop_format(&pl->waves[k].stop, stops[k]);
		stop_v[k] = stops[k];
		sizes[k] = pl->waves[k].count;
		for (size_t i = 0; i < pl->waves[k].count; i++)
			wave[pl->waves[k].first + i] = k;
	}
	rc = srv_store_rollout_add(srv->store, &r, now, NULL, err);
	free(spec);
	free(wave);
	return rc;
}

int srv_rollout_create(struct srv *srv, const json_t *body, const char *actor,
		       int64_t now, char *ret_id, struct fl_error *err)
{
	struct srv_rollout_preview p = {0};
	struct srv_rollout_spec s;
	int rc;

	rc = srv_rollout_spec_parse(body, &s, err);
	if (rc)
		return rc;
	rc = plan_spec(srv, &s, &p, err);
	if (!rc)
		rc = record(srv, &s, &p, actor, now, err);
	if (!rc) {
		fl_info("rollout %s: %s %s to %zu device(s) in %zu wave(s), by "
			"%s",
			p.id, p.bundle.name, p.bundle.version, p.plan.n,
			p.plan.n_waves, actor);
		fl_strlcpy(ret_id, p.id, FL_ID_MAX + 1);
	}
	srv_rollout_preview_release(&p);
	srv_rollout_spec_release(&s);
	return rc;
}

void srv_rollout_view_release(struct srv_rollout_view *v)
{
	if (!v)
		return;
	srv_rollout_row_free(&v->row);
	srv_rollout_wave_list_free(&v->waves);
	srv_rollout_count_list_free(&v->counts);
	srv_rollout_device_list_free(&v->failures);
	srv_rollout_device_list_free(&v->devices);
	srv_rollout_event_list_free(&v->events);
}

int srv_rollout_view(struct srv *srv, const char *id, bool devices, bool events,
		     struct srv_rollout_view *ret, struct fl_error *err)
{
	struct srv_rollout_view v = {.with_devices = devices,
				     .with_events = events};
	struct srv_store *st = srv->store;
	int rc;

	rc = srv_store_rollout_get(st, id, &v.row, err);
	if (!rc)
		rc = srv_store_rollout_waves(st, id, &v.waves, err);
	if (!rc)
		rc = srv_store_rollout_counts(st, id, &v.counts, err);
	if (!rc)
		rc = srv_store_rollout_devices(st, id, true, 10, &v.failures,
					       err);
	if (!rc && devices)
		rc = srv_store_rollout_devices(st, id, false, 0, &v.devices,
					       err);
	if (!rc && events)
		rc = srv_store_rollout_events(st, id, 50, &v.events, err);
	if (rc) {
		srv_rollout_view_release(&v);
		return rc;
	}
	srv_rollout_gate_of(&v.row, &v.counts, &v.gate);
	*ret = v;
	return 0;
}

/* Tell the devices of the jobs an abort cancelled (best effort). */
static void tell_cancelled(struct srv *srv, const struct srv_strv *jobs)
{
	for (size_t i = 0; i < jobs->n; i++) {
		struct srv_job_row j = {0};
		struct fl_error e = {0};

		if (!srv_store_job_get(srv->store, jobs->v[i], &j, &e) &&
		    srv_job_tell_cancel(srv, j.device, j.id, &e))
			fl_warn("job %s: cannot tell %s it is cancelled: %s",
				j.id, j.device, e.msg);
		srv_job_row_free(&j);
	}
}

int srv_rollout_act(struct srv *srv, const char *id,
		    enum fl_rollout_action action, const char *actor,
		    int64_t now, struct fl_error *err)
{
	struct srv_strv cancelled = {0};
	int rc;

	pthread_mutex_lock(&srv->rollouts_lock);
	rc = srv_store_rollout_action(srv->store, id, (int)action, actor, now,
				      &cancelled, err);
	if (!rc) {
		fl_info("rollout %s: %s by %s", id,
			fl_rollout_action_name(action), actor);
		tell_cancelled(srv, &cancelled);
	}
	pthread_mutex_unlock(&srv->rollouts_lock);
	srv_strv_free(&cancelled);
	return rc;
}
