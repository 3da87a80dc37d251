/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "json.h"
#include "util.h"
#include "validate.h"

/*
 * POST /api/v1/tokens {"name": N, "role": R, "ttl": SECONDS?}
 * -> 201 {"id", "name", "role", "expires", "token"}.  The secret is in
 * this response only; the store keeps its SHA-256.
 */
int api_token_create(struct srv_req *r)
{
	json_t *body = srv_req_json(r), *info = NULL, *ttl_j;
	const char *name, *role_s;
	struct fl_error err = {0};
	char *secret = NULL;
	int64_t ttl = 0;
	int role;

	if (!body)
		return 0;
	if (fl_json_str(body, "name", FL_ID_MAX, &name, &err) ||
	    fl_check_id(name, "token name", &err) ||
	    fl_json_str(body, "role", 32, &role_s, &err))
		return srv_reply_fail(r, &err);
	role = srv_role_parse(role_s);
	if (!role)
		return srv_reply_error(
			r, 400, "bad_request",
			"unknown role '%s' (admin, operator, technician, viewer, ci)",
			role_s);
	ttl_j = json_object_get(body, "ttl");
	if (ttl_j && !json_is_null(ttl_j) &&
	    fl_json_int(body, "ttl", 60, 10LL * 366 * 86400, &ttl, &err))
		return srv_reply_fail(r, &err);
	if (srv_token_create(r->srv, name, role, ttl, srv_req_actor(r), &secret,
			     &info, &err))
		return srv_reply_fail(r, &err);
	json_object_set_new(info, "token", json_string(secret));
	fl_free_secret(secret);
	return srv_reply_json(r, 201, info);
}

int api_token_list(struct srv_req *r)
{
	struct fl_error err = {0};
	json_t *rows;

	if (srv_store_token_list(r->srv->store, &rows, &err))
		return srv_reply_fail(r, &err);
	return srv_reply_json(r, 200, rows);
}

int api_token_revoke(struct srv_req *r)
{
	struct fl_error err = {0};

	if (srv_store_token_revoke(r->srv->store, r->params[0], &err))
		return srv_reply_fail(r, &err);
	return srv_reply_json(r, 200,
			      json_pack("{s:s, s:b}", "id", r->params[0],
					"revoked", 1));
}
