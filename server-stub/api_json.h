/* SPDX-License-Identifier: MIT */
#ifndef SRV_API_JSON_H
#define SRV_API_JSON_H

/*
 * The API's JSON for the store's rows (docs/protocol.md): one function
 * per row type and list, the only place their keys, order, times
 * (RFC 3339, null for 0) and nulls are decided.  Each returns a new
 * reference.
 */
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "store.h"

json_t *api_time_json(int64_t t);
json_t *api_strv_json(const struct srv_strv *l);

json_t *api_device_json(const struct srv_device_row *d);
json_t *api_devices_json(const struct srv_device_list *l);
json_t *api_tokens_json(const struct srv_token_list *l);
json_t *api_audit_json(const struct srv_audit_list *l);
/* With its manifest when the row has one (srv_store_bundle_get). */
json_t *api_bundle_json(const struct srv_bundle_row *b);
json_t *api_bundles_json(const struct srv_bundle_list *l);
json_t *api_roots_json(const struct srv_root_list *l);
/* With its "events" when the row has them (srv_store_job_get). */
json_t *api_job_json(const struct srv_job_row *j, bool events);
json_t *api_jobs_json(const struct srv_job_list *l);

/* --- rollouts (docs/protocol.md "Rollouts") --- */
struct srv_rollout_preview;
struct srv_rollout_view;

/* POST /api/v1/rollouts/plan: {"id", "id_generated", "bundle", "spec",
 * "total", "waves": [{"wave", "stop", "devices": [ID...]}], "excluded":
 * [{"device", "reason"}], "busy": ["ID (rollout R)"...], "notes"}. */
json_t *api_rollout_plan_json(const struct srv_rollout_preview *p);

/* One rollout with its waves, counts, gate, latest failures and, when
 * the view has them, its device rows and decision log; @bundle_name may
 * be NULL. */
json_t *api_rollout_json(const struct srv_rollout_view *v,
			 const char *bundle_name);

/* A rollout in a list: the row and its counts by state; @bundle_name
 * may be NULL. */
json_t *api_rollout_summary_json(const struct srv_rollout_row *r,
				 const char *bundle_name,
				 const struct srv_rollout_count_list *c);

/* srv_store_device_get and srv_store_bundle_get as API objects, for
 * handlers that pass the object on. */
int api_device_fetch(struct srv_store *s, const char *id, json_t **ret,
		     struct fl_error *err);
int api_bundle_fetch(struct srv_store *s, const char *ref, json_t **ret,
		     struct fl_error *err);
int api_job_fetch(struct srv_store *s, const char *id, json_t **ret,
		  struct fl_error *err);

#endif
