/* SPDX-License-Identifier: MIT */
/* The API's JSON for the store's rows (api_json.h). */
#include <stdlib.h>

#include "api_json.h"
#include "rollouts.h"
#include "util.h"

json_t *api_time_json(int64_t t)
{
	char buf[21];

	if (t <= 0)
		return json_null();
	fl_time_rfc3339((time_t)t, buf);
	return json_string(buf);
}

/* A string or null. */
static json_t *str(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* A JSON document stored as text, or @def when none or unreadable. */
static json_t *doc(const char *text, json_t *def)
{
	json_t *v = text ? json_loads(text, 0, NULL) : NULL;

	if (!v)
		return def;
	json_decref(def);
	return v;
}

json_t *api_strv_json(const struct srv_strv *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	return a;
}

/* json_t *NAME(const struct LIST *l): the array of ROW_JSON(&l->v[i]). */
#define LIST_JSON(name, list, row_json)                                        \
	json_t *name(const struct list *l)                                     \
	{                                                                      \
		json_t *a = json_array();                                      \
                                                                               \
		for (size_t i = 0; i < l->n; i++)                              \
			json_array_append_new(a, row_json(&l->v[i]));          \
		return a;                                                      \
	}

static json_t *labels_json(const struct srv_label_list *l)
{
	json_t *o = json_object();

	for (size_t i = 0; i < l->n; i++)
		json_object_set_new(o, l->v[i].key, json_string(l->v[i].value));
	return o;
}

json_t *api_device_json(const struct srv_device_row *d)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", str(d->id));
	json_object_set_new(o, "group", str(d->group));
	json_object_set_new(o, "state", str(d->state));
	json_object_set_new(o, "online", json_boolean(d->online));
	json_object_set_new(o, "last_seen", api_time_json(d->last_seen));
	json_object_set_new(o, "firmware", str(d->firmware));
	json_object_set_new(o, "slot", str(d->slot));
	json_object_set_new(o, "health", str(d->health));
	json_object_set_new(o, "agent", str(d->agent));
	json_object_set_new(o, "created", api_time_json(d->created));
	json_object_set_new(o, "enrolled_by", str(d->enrolled_by));
	json_object_set_new(o, "labels", labels_json(&d->labels));
	json_object_set_new(o, "cert_serial", str(d->cert_serial));
	json_object_set_new(o, "cert_expires",
			    d->cert_serial ? api_time_json(d->cert_expires)
					   : json_null());
	json_object_set_new(o, "active_certs", api_strv_json(&d->active_certs));
	json_object_set_new(o, "last_event", doc(d->last_event, json_null()));
	return o;
}

LIST_JSON(api_devices_json, srv_device_list, api_device_json)

static json_t *token_json(const struct srv_token_row *t)
{
	return json_pack(
	    "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o}", "id",
	    str(t->id), "name", str(t->name), "kind", str(t->kind), "role",
	    t->role ? json_string(srv_role_name(t->role)) : json_null(),
	    "group", str(t->group), "uses_left",
	    t->uses_left >= 0 ? json_integer(t->uses_left) : json_null(),
	    "created", api_time_json(t->created), "expires",
	    api_time_json(t->expires), "last_used", api_time_json(t->last_used),
	    "revoked", t->revoked, "created_by", str(t->created_by));
}

LIST_JSON(api_tokens_json, srv_token_list, token_json)

/* "detail" is the row's JSON text parsed back (null: none). */
static json_t *audit_row_json(const struct srv_audit_row *a)
{
	json_t *detail = a->detail ? json_loads(a->detail, 0, NULL) : NULL;

	return json_pack(
	    "{s:I, s:o, s:o, s:o, s:o, s:i, s:o, s:o}", "id", (json_int_t)a->id,
	    "time", api_time_json(a->time), "actor", str(a->actor), "method",
	    str(a->method), "path", str(a->path), "status", a->status, "remote",
	    str(a->remote), "detail", detail ? detail : json_null());
}

LIST_JSON(api_audit_json, srv_audit_list, audit_row_json)

json_t *api_bundle_json(const struct srv_bundle_row *b)
{
	json_t *o = json_pack(
	    "{s:o, s:o, s:o, s:o, s:I, s:o, s:I, s:o, s:o}", "id", str(b->id),
	    "sha256", str(b->sha256), "name", str(b->name), "version",
	    str(b->version), "security_version",
	    (json_int_t)b->security_version, "hardware",
	    api_strv_json(&b->hardware), "size", (json_int_t)b->size, "created",
	    api_time_json(b->created), "uploaded_by", str(b->uploaded_by));

	if (b->manifest)
		json_object_set_new(o, "manifest",
				    doc(b->manifest, json_null()));
	return o;
}

LIST_JSON(api_bundles_json, srv_bundle_list, api_bundle_json)

static json_t *root_json(const struct srv_root_row *r)
{
	return json_pack("{s:I, s:o, s:o, s:o}", "version",
			 (json_int_t)r->version, "expires",
			 api_time_json(r->expires), "added",
			 api_time_json(r->added), "added_by", str(r->added_by));
}

LIST_JSON(api_roots_json, srv_root_list, root_json)

/* A count a device reported, or null. */
static json_t *count(int64_t n)
{
	return n >= 0 ? json_integer(n) : json_null();
}

static json_t *events_json(const struct srv_strv *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, doc(l->v[i], json_null()));
	return a;
}

json_t *api_job_json(const struct srv_job_row *j, bool events)
{
	json_t *o = json_pack(
	    "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o, s:o, s:o, s:o,"
	    " s:o, s:o, s:o, s:o, s:o, s:o}",
	    "id", str(j->id), "device", str(j->device), "type", str(j->type),
	    "bundle", str(j->bundle), "command", str(j->command), "rollout",
	    str(j->rollout), "state", str(j->state), "final", j->final, "stage",
	    str(j->stage), "reason", str(j->reason), "from_version",
	    str(j->from_version), "to_version", str(j->to_version), "bytes",
	    count(j->bytes), "total", count(j->total), "created",
	    api_time_json(j->created), "updated", api_time_json(j->updated),
	    "created_by", str(j->created_by), "expires",
	    api_time_json(j->expires));

	if (events)
		json_object_set_new(o, "events", events_json(&j->events));
	return o;
}

static json_t *job_list_json(const struct srv_job_row *j)
{
	return api_job_json(j, false);
}

LIST_JSON(api_jobs_json, srv_job_list, job_list_json)

int api_device_fetch(struct srv_store *s, const char *id, json_t **ret,
		     struct fl_error *err)
{
	struct srv_device_row d = {0};
	int rc = srv_store_device_get(s, id, &d, err);

	if (!rc)
		*ret = api_device_json(&d);
	srv_device_row_free(&d);
	return rc;
}

int api_bundle_fetch(struct srv_store *s, const char *ref, json_t **ret,
		     struct fl_error *err)
{
	struct srv_bundle_row b = {0};
	int rc = srv_store_bundle_get(s, ref, &b, err);

	if (!rc)
		*ret = api_bundle_json(&b);
	srv_bundle_row_free(&b);
	return rc;
}

int api_job_fetch(struct srv_store *s, const char *id, json_t **ret,
		  struct fl_error *err)
{
	struct srv_job_row j = {0};
	int rc = srv_store_job_get(s, id, &j, err);

	if (!rc)
		*ret = api_job_json(&j, true);
	srv_job_row_free(&j);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Rollouts                                                           */
/* ------------------------------------------------------------------ */

json_t *api_rollout_plan_json(const struct srv_rollout_preview *p)
{
	const struct srv_rollout_plan *pl = &p->plan;
	json_t *waves = json_array(), *excl = json_array();
	char stop[FL_WAVE_STOP_TEXT];

	for (size_t k = 0; k < pl->n_waves; k++) {
		json_t *devs = json_array();

		for (size_t i = 0; i < pl->waves[k].count; i++)
			json_array_append_new(
			    devs, json_string(pl->order[pl->waves[k].first + i]));
		fl_wave_stop_format(&pl->waves[k].stop, stop);
		json_array_append_new(waves,
				      json_pack("{s:I, s:s, s:o}", "wave",
						(json_int_t)k + 1, "stop", stop,
						"devices", devs));
	}
	for (size_t i = 0; i < pl->n_excluded; i++)
		json_array_append_new(excl,
				      json_pack("{s:s, s:s}", "device",
						pl->excluded[i].device, "reason",
						pl->excluded[i].reason));
	return json_pack("{s:s, s:b, s:{s:s, s:s, s:s}, s:O, s:I, s:o, s:o,"
			 " s:o, s:o}",
			 "id", p->id, "id_generated", p->generated, "bundle",
			 "id", p->bundle.id, "name", p->bundle.name, "version",
			 p->bundle.version, "spec", p->spec, "total",
			 (json_int_t)pl->n, "waves", waves, "excluded", excl,
			 "busy", api_strv_json(&p->busy), "notes",
			 api_strv_json(&pl->notes));
}

/* {state: n} for every device state, of wave @wave (-1: all). */
static json_t *counts_json(const struct srv_rollout_count_list *c,
			   int64_t wave)
{
	json_t *o = json_object();

	for (size_t s = 0; srv_rollout_device_states[s]; s++) {
		json_int_t n = 0;

		for (size_t i = 0; i < c->n; i++)
			if ((wave < 0 || c->v[i].wave == wave) &&
			    fl_streq(c->v[i].state, srv_rollout_device_states[s]))
				n += c->v[i].n;
		json_object_set_new(o, srv_rollout_device_states[s],
				    json_integer(n));
	}
	return o;
}

static json_t *waves_json(const struct srv_rollout_view *v)
{
	json_t *a = json_array();

	for (size_t i = 0; i < v->waves.n; i++) {
		const struct srv_rollout_wave_row *w = &v->waves.v[i];

		json_array_append_new(
		    a, json_pack("{s:I, s:s, s:I, s:o, s:o, s:o}", "wave",
				 (json_int_t)w->index + 1, "stop", w->stop,
				 "devices", (json_int_t)w->devices, "started",
				 api_time_json(w->started), "done",
				 api_time_json(w->done), "counts",
				 counts_json(&v->counts, w->index)));
	}
	return a;
}

static json_t *gate_json(const struct srv_rollout_gate *g)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "failed",
			 (json_int_t)g->failed, "finished",
			 (json_int_t)g->finished, "percent",
			 (json_int_t)(g->finished ? g->failed * 100 / g->finished
						  : 0),
			 "threshold", (json_int_t)g->percent, "min_sample",
			 (json_int_t)g->min_sample, "needed",
			 (json_int_t)g->needed, "started",
			 (json_int_t)g->started, "tripped", g->tripped);
}

static json_t *rollout_device_json(const struct srv_rollout_device_row *d)
{
	return json_pack(
	    "{s:s, s:I, s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o,"
	    " s:o}",
	    "device", d->device, "wave", (json_int_t)d->wave + 1, "order",
	    (json_int_t)d->pos + 1, "state", d->state, "job", str(d->job),
	    "rollback_job", str(d->rollback_job), "from_version",
	    str(d->from_version), "reason", str(d->reason), "commanded",
	    api_time_json(d->commanded), "sent", api_time_json(d->sent),
	    "sends", (json_int_t)d->sends, "finished",
	    api_time_json(d->finished), "updated", api_time_json(d->updated));
}

static LIST_JSON(rollout_devices_json, srv_rollout_device_list,
		 rollout_device_json)

static json_t *rollout_event_json(const struct srv_rollout_event *e)
{
	return json_pack("{s:I, s:o, s:s, s:o, s:o, s:o}", "id",
			 (json_int_t)e->id, "time", api_time_json(e->time),
			 "kind", e->kind, "wave",
			 e->wave >= 0 ? json_integer(e->wave + 1) : json_null(),
			 "device", str(e->device), "detail", str(e->detail));
}

static LIST_JSON(rollout_events_json, srv_rollout_event_list,
		 rollout_event_json)

static json_t *failures_json(const struct srv_rollout_device_list *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(
		    a, json_pack("{s:s, s:I, s:s, s:o, s:o}", "device",
				 l->v[i].device, "wave",
				 (json_int_t)l->v[i].wave + 1, "state",
				 l->v[i].state, "reason", str(l->v[i].reason),
				 "time", api_time_json(l->v[i].updated)));
	return a;
}

/* The members a rollout has in lists and alone. */
static json_t *rollout_base(const struct srv_rollout_row *r,
			    const char *bundle_name,
			    const struct srv_rollout_count_list *c)
{
	return json_pack(
	    "{s:s, s:s, s:o, s:I, s:I, s:{s:s, s:o, s:s}, s:I, s:o, s:o, s:o,"
	    " s:o, s:o}",
	    "id", r->id, "state", r->state, "reason", str(r->reason), "wave",
	    (json_int_t)r->wave + 1, "waves_total", (json_int_t)r->n_waves,
	    "bundle", "id", r->bundle, "name", str(bundle_name), "version",
	    r->version, "total", (json_int_t)r->devices, "counts",
	    counts_json(c, -1), "created", api_time_json(r->created),
	    "updated", api_time_json(r->updated), "finished",
	    api_time_json(r->finished), "created_by", str(r->created_by));
}

json_t *api_rollout_summary_json(const struct srv_rollout_row *r,
				 const char *bundle_name,
				 const struct srv_rollout_count_list *c)
{
	return rollout_base(r, bundle_name, c);
}

json_t *api_rollout_json(const struct srv_rollout_view *v,
			 const char *bundle_name)
{
	json_t *o = rollout_base(&v->row, bundle_name, &v->counts);

	json_object_set_new(o, "soak_until", api_time_json(v->row.soak_until));
	json_object_set_new(o, "gate", gate_json(&v->gate));
	json_object_set_new(o, "waves", waves_json(v));
	json_object_set_new(o, "failures", failures_json(&v->failures));
	json_object_set_new(o, "spec", doc(v->row.spec, json_null()));
	if (v->with_devices)
		json_object_set_new(o, "devices",
				    rollout_devices_json(&v->devices));
	if (v->with_events)
		json_object_set_new(o, "events",
				    rollout_events_json(&v->events));
	return o;
}
