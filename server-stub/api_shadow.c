/* SPDX-License-Identifier: MIT */
/* Device shadows over HTTPS (docs/protocol.md "Shadow"). */
#include <stdint.h>
#include <stdlib.h>

#include "api.h"
#include "json.h"
#include "shadow_svc.h"
#include "validate.h"

/* Devices one group write may change. */
#define GROUP_MAX 100000

/* A write's body: a "desired" patch, room for JSON around it. */
uint64_t api_shadow_body_max(const struct srv *srv)
{
	return srv->cfg.shadow_max + 4096;
}

int api_shadow_get(struct srv_req *r)
{
	struct srv_shadow_row row = {0};
	struct fl_error err = {0};
	json_t *out;

	if (srv_store_shadow_get(r->srv->store, r->params[0], &row, &err))
		return srv_reply_fail(r, &err);
	out = srv_shadow_json(&row);
	srv_shadow_row_free(&row);
	return srv_reply_json(r, 200, out);
}

/* The "desired" patch of @body; FL_EINVAL when it is missing. */
static int body_patch(json_t *body, json_t **ret, struct fl_error *err)
{
	*ret = json_object_get(body, "desired");
	if (!*ret)
		return fl_fail(err, FL_EINVAL, "'desired' is missing");
	return 0;
}

/* POST /api/v1/devices/:id/shadow {"desired": {...}, "if_version"?} */
int api_shadow_set(struct srv_req *r)
{
	json_t *body = srv_req_json(r), *patch = NULL, *out;
	struct srv_shadow_row row = {0};
	struct fl_error err = {0};
	int64_t if_version = -1;

	if (!body)
		return 0;
	if (body_patch(body, &patch, &err) ||
	    (json_object_get(body, "if_version") &&
	     fl_json_int(body, "if_version", 0, INT64_MAX, &if_version,
			 &err)) ||
	    srv_shadow_write(r->srv, r->params[0], patch, if_version, &row,
			     &err))
		return srv_reply_fail(r, &err);
	out = srv_shadow_json(&row);
	srv_shadow_row_free(&row);
	return srv_reply_json(r, 200, out);
}

/*
 * POST /api/v1/shadow {"group": G, "desired": {...}}: the patch to every
 * active device of the group, each at its own next version; the first
 * failure ends the request with its error, the writes before it stay.
 * Replies {"devices": [{"device", "version"}]}.
 */
int api_shadow_group(struct srv_req *r)
{
	struct srv_device_filter f = {.online = -1};
	json_t *body = srv_req_json(r), *patch = NULL, *out;
	struct srv_device_list devs = {0};
	struct srv_shadow_row row = {0};
	struct fl_error err = {0};
	int rc;

	if (!body)
		return 0;
	rc = fl_json_str(body, "group", FL_ID_MAX, &f.group, &err);
	if (!rc)
		rc = body_patch(body, &patch, &err);
	if (!rc)
		rc = srv_store_device_list(r->srv->store, &f, &devs, &err);
	if (!rc && devs.n > GROUP_MAX)
		rc =
		    fl_fail(&err, FL_ELIMIT, "more than %d devices", GROUP_MAX);
	out = json_array();
	for (size_t i = 0; !rc && i < devs.n; i++) {
		rc = srv_shadow_write(r->srv, devs.v[i].id, patch, -1, &row,
				      &err);
		if (!rc)
			json_array_append_new(
			    out, json_pack("{s:s, s:I}", "device", row.device,
					   "version",
					   (json_int_t)row.desired_version));
		srv_shadow_row_free(&row);
	}
	srv_device_list_free(&devs);
	if (rc) {
		json_decref(out);
		return srv_reply_fail(r, &err);
	}
	return srv_reply_json(r, 200, json_pack("{s:o}", "devices", out));
}
