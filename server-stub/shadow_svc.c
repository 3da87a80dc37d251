/* SPDX-License-Identifier: MIT */
/* Device shadows: desired writes published, reports stored
 * (shadow_svc.h). */
#include <stdint.h>
#include <stdlib.h>

#include "api_json.h"
#include "json.h"
#include "log.h"
#include "mqtt.h"
#include "shadow.h"
#include "shadow_svc.h"

int srv_shadow_write(struct srv *srv, const char *id, const json_t *patch,
		     int64_t if_version, struct srv_shadow_row *ret,
		     struct fl_error *err)
{
	struct srv_shadow_write w = {patch, if_version, srv->cfg.shadow_max};
	struct srv_shadow_row r = {0};
	struct fl_error perr = {0};
	json_t *msg;
	int rc;

	rc = fl_shadow_check(patch, true, err);
	if (rc)
		return rc;
	pthread_mutex_lock(&srv->shadow_lock);
	rc = srv_store_shadow_update(srv->store, id, &w, &r, err);
	if (!rc) {
		msg = fl_shadow_desired_msg(r.desired, r.desired_version,
					    r.desired_updated);
		if (srv_mqtt_shadow_desired(srv->mqtt, id, msg, &perr))
			fl_warn("%s: desired version %lld stored, not "
				"published: %s",
				id, (long long)r.desired_version, perr.msg);
		json_decref(msg);
	}
	pthread_mutex_unlock(&srv->shadow_lock);
	if (!rc && ret)
		*ret = r;
	else
		srv_shadow_row_free(&r);
	return rc;
}

/* The "refused" member: an object of key -> reason (text). */
static int check_refused(const json_t *refused, struct fl_error *err)
{
	const char *k;
	json_t *v;

	if (!refused)
		return 0;
	if (!json_is_object(refused) ||
	    json_object_size(refused) > FL_SHADOW_KEYS_MAX)
		return fl_fail(err, FL_EINVAL, "'refused' is not an object");
	json_object_foreach((json_t *)refused, k, v) if (
	    !json_is_string(
		v)) return fl_fail(err, FL_EINVAL,
				   "refused '%.64s': reason is no string", k);
	return 0;
}

void srv_shadow_reported(struct srv *srv, const char *id, const void *payload,
			 size_t len)
{
	struct fl_error err = {0};
	json_t *doc = NULL, *state, *refused;
	int64_t version = 0;
	bool stored = false;
	int rc;

	rc = fl_json_parse(payload, len, SRV_MQTT_MAX_PAYLOAD, &doc, &err);
	if (!rc)
		rc = fl_json_int(doc, "version", 0, INT64_MAX, &version, &err);
	state = json_object_get(doc, "state");
	refused = json_object_get(doc, "refused");
	if (!rc)
		rc = fl_shadow_check(state, false, &err);
	if (!rc)
		rc = check_refused(refused, &err);
	if (!rc)
		rc = srv_store_shadow_report(srv->store, id, version, state,
					     refused, &stored, &err);
	if (rc)
		fl_warn("%s: shadow report dropped: %s", id, err.msg);
	else if (!stored)
		fl_debug("%s: shadow report for version %lld is older than "
			 "the stored one: dropped",
			 id, (long long)version);
	json_decref(doc);
}

json_t *srv_shadow_json(const struct srv_shadow_row *r)
{
	return json_pack(
	    "{s:s, s:{s:I, s:o, s:O}, s:{s:I, s:o, s:O, s:O}, s:o}", "device",
	    r->device, "desired", "version", (json_int_t)r->desired_version,
	    "updated", api_time_json(r->desired_updated), "state", r->desired,
	    "reported", "version", (json_int_t)r->reported_version, "updated",
	    api_time_json(r->reported_updated), "state", r->reported, "refused",
	    r->refused, "delta", fl_shadow_delta(r->desired, r->reported));
}
