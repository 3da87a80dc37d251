/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_json.h"
#include "json.h"
#include "util.h"
#include "validate.h"

/* The role of an operator token request; 0 after replying 400. */
static int parse_role(struct srv_req *r, json_t *body)
{
	struct fl_error err = {0};
	const char *role_s;
	int role;

	if (fl_json_str(body, "role", 32, &role_s, &err)) {
		srv_reply_fail(r, &err);
		return 0;
	}
	role = srv_role_parse(role_s);
	if (!role)
		srv_reply_error(
			r, 400, "bad_request",
			"unknown role '%s' (admin, operator, technician, viewer, ci)",
			role_s);
	return role;
}

/* Enrolment token fields: group (optional), uses (default 1). */
static int parse_enroll(json_t *body, struct srv_token_spec *spec,
			struct fl_error *err)
{
	int rc = fl_json_str_opt(body, "group", FL_ID_MAX, &spec->group, err);

	if (!rc && spec->group)
		rc = fl_check_id(spec->group, "group", err);
	spec->uses = 1;
	if (!rc && json_object_get(body, "uses"))
		rc = fl_json_int(body, "uses", 1, 1000000, &spec->uses, err);
	return rc;
}

/*
 * POST /api/v1/tokens {"name", "role", "ttl"?} or
 * {"name", "kind": "enroll", "group"?, "uses"?, "ttl"?}
 * -> 201 with the token object and "token", the secret, shown only in
 * this response; the store keeps its SHA-256.
 */
int api_token_create(struct srv_req *r)
{
	json_t *body = srv_req_json(r), *info = NULL;
	struct srv_token_spec spec = {0};
	struct fl_error err = {0};
	const char *kind = NULL;
	char *secret = NULL;

	if (!body)
		return 0;
	if (fl_json_str(body, "name", FL_ID_MAX, &spec.name, &err) ||
	    fl_check_id(spec.name, "token name", &err) ||
	    fl_json_str_opt(body, "kind", 16, &kind, &err))
		return srv_reply_fail(r, &err);
	spec.enroll = fl_streq(kind, "enroll");
	if (kind && !spec.enroll && !fl_streq(kind, "operator"))
		return srv_reply_error(r, 400, "bad_request",
				       "unknown token kind '%s'", kind);
	if (!spec.enroll && !(spec.role = parse_role(r, body)))
		return 0;
	if ((spec.enroll && parse_enroll(body, &spec, &err)) ||
	    (json_object_get(body, "ttl") &&
	     fl_json_int(body, "ttl", 60, 10LL * 366 * 86400, &spec.ttl,
			 &err)) ||
	    srv_token_create(r->srv, &spec, srv_req_actor(r), &secret, &info,
			     &err))
		return srv_reply_fail(r, &err);
	json_object_set_new(info, "token", json_string(secret));
	fl_free_secret(secret);
	return srv_reply_json(r, 201, info);
}

int api_token_list(struct srv_req *r)
{
	struct srv_token_list rows = {0};
	struct fl_error err = {0};
	json_t *out;

	if (srv_store_token_list(r->srv->store, &rows, &err))
		return srv_reply_fail(r, &err);
	out = api_tokens_json(&rows);
	srv_token_list_free(&rows);
	return srv_reply_json(r, 200, out);
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
