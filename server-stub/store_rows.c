/* SPDX-License-Identifier: MIT */
/* What the store's rows and roles mean, the same for every backend. */
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "util.h"

static const struct {
	int role;
	const char *name;
} roles[] = {
    {SRV_ROLE_ADMIN, "admin"},
    {SRV_ROLE_OPERATOR, "operator"},
    {SRV_ROLE_TECHNICIAN, "technician"},
    {SRV_ROLE_VIEWER, "viewer"},
    {SRV_ROLE_CI, "ci"},
};

int srv_role_parse(const char *s)
{
	for (size_t i = 0; s && i < FL_ARRAY_SIZE(roles); i++)
		if (strcmp(s, roles[i].name) == 0)
			return roles[i].role;
	return 0;
}

const char *srv_role_name(int role)
{
	for (size_t i = 0; i < FL_ARRAY_SIZE(roles); i++)
		if (roles[i].role == role)
			return roles[i].name;
	return "none";
}

/* Free each row of @list with @row_free, then the array; zero it. */
#define LIST_FREE(list, row_free)                                              \
	do {                                                                   \
		if (!(list))                                                   \
			break;                                                 \
		for (size_t i_ = 0; i_ < (list)->n; i_++)                      \
			row_free(&(list)->v[i_]);                              \
		free((list)->v);                                               \
		(list)->v = NULL;                                              \
		(list)->n = 0;                                                 \
	} while (0)

static void str_free(char **p)
{
	free(*p);
}

void srv_strv_free(struct srv_strv *l)
{
	LIST_FREE(l, str_free);
}

static void tech_row_free(struct srv_tech_row *t)
{
	free(t->cn);
	free(t->serial);
}

void srv_tech_list_free(struct srv_tech_list *l)
{
	LIST_FREE(l, tech_row_free);
}

static void label_free(struct srv_label *l)
{
	free(l->key);
	free(l->value);
}

void srv_label_list_free(struct srv_label_list *l)
{
	LIST_FREE(l, label_free);
}

void srv_token_row_free(struct srv_token_row *t)
{
	if (!t)
		return;
	free(t->id);
	free(t->name);
	free(t->kind);
	free(t->group);
	free(t->created_by);
	memset(t, 0, sizeof(*t));
}

void srv_token_list_free(struct srv_token_list *l)
{
	LIST_FREE(l, srv_token_row_free);
}

void srv_audit_row_free(struct srv_audit_row *a)
{
	if (!a)
		return;
	free(a->actor);
	free(a->method);
	free(a->path);
	free(a->remote);
	free(a->detail);
	memset(a, 0, sizeof(*a));
}

void srv_audit_list_free(struct srv_audit_list *l)
{
	LIST_FREE(l, srv_audit_row_free);
}

static void crl_entry_free(struct srv_crl_entry *e)
{
	free(e->serial);
}

void srv_crl_list_free(struct srv_crl_list *l)
{
	LIST_FREE(l, crl_entry_free);
}

void srv_cert_row_free(struct srv_cert_row *c)
{
	if (!c)
		return;
	free(c->serial);
	free(c->device);
	memset(c, 0, sizeof(*c));
}

void srv_device_row_free(struct srv_device_row *d)
{
	if (!d)
		return;
	free(d->id);
	free(d->group);
	free(d->state);
	free(d->firmware);
	free(d->slot);
	free(d->health);
	free(d->agent);
	free(d->enrolled_by);
	srv_label_list_free(&d->labels);
	free(d->cert_serial);
	srv_strv_free(&d->active_certs);
	free(d->last_event);
	memset(d, 0, sizeof(*d));
}

void srv_device_list_free(struct srv_device_list *l)
{
	LIST_FREE(l, srv_device_row_free);
}

void srv_bundle_row_free(struct srv_bundle_row *b)
{
	if (!b)
		return;
	free(b->id);
	free(b->sha256);
	free(b->name);
	free(b->version);
	srv_strv_free(&b->hardware);
	free(b->uploaded_by);
	free(b->manifest);
	memset(b, 0, sizeof(*b));
}

void srv_bundle_list_free(struct srv_bundle_list *l)
{
	LIST_FREE(l, srv_bundle_row_free);
}

static void root_row_free(struct srv_root_row *r)
{
	free(r->added_by);
}

void srv_root_list_free(struct srv_root_list *l)
{
	LIST_FREE(l, root_row_free);
}

void srv_job_row_free(struct srv_job_row *j)
{
	if (!j)
		return;
	free(j->id);
	free(j->device);
	free(j->type);
	free(j->bundle);
	free(j->command);
	free(j->rollout);
	free(j->state);
	free(j->stage);
	free(j->reason);
	free(j->from_version);
	free(j->to_version);
	free(j->created_by);
	srv_strv_free(&j->events);
	memset(j, 0, sizeof(*j));
}

void srv_job_list_free(struct srv_job_list *l)
{
	LIST_FREE(l, srv_job_row_free);
}

void srv_rollout_row_free(struct srv_rollout_row *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->bundle);
	free(r->version);
	free(r->state);
	free(r->reason);
	free(r->spec);
	free(r->created_by);
	*r = (struct srv_rollout_row){0};
}

void srv_rollout_list_free(struct srv_rollout_list *l)
{
	LIST_FREE(l, srv_rollout_row_free);
}

static void wave_row_free(struct srv_rollout_wave_row *w)
{
	free(w->stop);
}

void srv_rollout_wave_list_free(struct srv_rollout_wave_list *l)
{
	LIST_FREE(l, wave_row_free);
}

static void count_free(struct srv_rollout_count *c)
{
	free(c->state);
}

void srv_rollout_count_list_free(struct srv_rollout_count_list *l)
{
	LIST_FREE(l, count_free);
}

void srv_rollout_device_row_free(struct srv_rollout_device_row *d)
{
	if (!d)
		return;
	free(d->device);
	free(d->state);
	free(d->job);
	free(d->rollback_job);
	free(d->from_version);
	free(d->reason);
	*d = (struct srv_rollout_device_row){0};
}

void srv_rollout_device_list_free(struct srv_rollout_device_list *l)
{
	LIST_FREE(l, srv_rollout_device_row_free);
}

static void event_free(struct srv_rollout_event *e)
{
	free(e->kind);
	free(e->device);
	free(e->detail);
}

void srv_rollout_event_list_free(struct srv_rollout_event_list *l)
{
	LIST_FREE(l, event_free);
}

static void watch_row_free(struct srv_rollout_watch_row *w)
{
	char **strs[] = {&w->device,	 &w->state,	  &w->reason,
			 &w->from_version, &w->job,	  &w->command,
			 &w->job_state,	 &w->job_stage,	  &w->job_reason,
			 &w->rb_job,	 &w->rb_command,  &w->rb_state,
			 &w->rb_stage,	 &w->rb_reason,	  &w->dev_state,
			 &w->dev_firmware, &w->dev_health};

	for (size_t i = 0; i < FL_ARRAY_SIZE(strs); i++)
		free(*strs[i]);
}

void srv_rollout_watch_list_free(struct srv_rollout_watch_list *l)
{
	LIST_FREE(l, watch_row_free);
}

void srv_shadow_row_free(struct srv_shadow_row *r)
{
	if (!r)
		return;
	free(r->device);
	json_decref(r->desired);
	json_decref(r->desired_meta);
	json_decref(r->reported);
	json_decref(r->refused);
	memset(r, 0, sizeof(*r));
}

static void telemetry_row_free(struct srv_telemetry_row *r)
{
	free(r->metric);
}

void srv_telemetry_list_free(struct srv_telemetry_list *l)
{
	LIST_FREE(l, telemetry_row_free);
}

static void count_row_free(struct srv_count *c)
{
	free(c->name);
}

void srv_fleet_counts_free(struct srv_fleet_counts *c)
{
	if (!c)
		return;
	LIST_FREE(&c->devices, count_row_free);
	LIST_FREE(&c->firmware, count_row_free);
	LIST_FREE(&c->rollouts, count_row_free);
	LIST_FREE(&c->jobs_final, count_row_free);
	c->online = c->firmware_other = 0;
}
