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
