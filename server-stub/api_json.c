/* SPDX-License-Identifier: MIT */
/* The API's JSON for the store's rows (api_json.h). */
#include <stdlib.h>

#include "api_json.h"
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

static json_t *audit_row_json(const struct srv_audit_row *a)
{
	return json_pack("{s:I, s:o, s:o, s:o, s:o, s:i, s:o}", "id",
			 (json_int_t)a->id, "time", api_time_json(a->time),
			 "actor", str(a->actor), "method", str(a->method),
			 "path", str(a->path), "status", a->status, "remote",
			 str(a->remote));
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
