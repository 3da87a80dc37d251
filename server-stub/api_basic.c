/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "api.h"
#include "util.h"

int api_healthz(struct srv_req *r)
{
	return srv_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

int api_version(struct srv_req *r)
{
	return srv_reply_json(r, 200,
			      json_pack("{s:s, s:i, s:s}", "version",
					FLEET_VERSION, "schema",
					srv_store_schema_version(r->srv->store),
					"api", "v1"));
}

int api_whoami(struct srv_req *r)
{
	return srv_reply_json(r, 200,
			      json_pack("{s:s, s:s, s:s, s:s}", "kind", "token",
					"id", r->who.id, "name", r->who.name,
					"role", srv_role_name(r->who.role)));
}

int api_audit_list(struct srv_req *r)
{
	int limit = srv_req_limit(r, 100, 10000);
	struct fl_error err = {0};
	json_t *rows;

	if (!limit)
		return 0;
	if (srv_store_audit_list(r->srv->store, limit, &rows, &err))
		return srv_reply_fail(r, &err);
	return srv_reply_json(r, 200, rows);
}
