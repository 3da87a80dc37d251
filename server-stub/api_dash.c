/* SPDX-License-Identifier: MIT */
/*
 * The read-only web dashboard (docs/dashboard.md): its files, compiled
 * into fleetd from server-stub/dash/ (scripts/embed-assets), and the
 * login that trades a token for a session cookie (dash.h).  The pages
 * read the /api/v1 endpoints with that cookie; httpd.c lets a cookie
 * only GET, with a viewer's rights.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "dash.h"
#include "util.h"

struct dash_file {
	const char *name, *type, *etag;
	const unsigned char *data;
	size_t len;
};

#include "dash_files.h"

static int reply_file(struct srv_req *r, const char *name)
{
	for (const struct dash_file *f = dash_files; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return srv_reply_static(r, f->data, f->len, f->type,
						f->etag);
	return srv_reply_error(r, 404, "not_found", "no such file");
}

/* GET / */
int api_dash_index(struct srv_req *r)
{
	return reply_file(r, "index.html");
}

/* GET /dash/:file */
int api_dash_file(struct srv_req *r)
{
	return reply_file(r, r->params[0]);
}

/* The principal of the request's session cookie; false without a live
 * session of a token that is still good. */
static bool session_principal(struct srv_req *r, struct srv_principal *ret)
{
	char sid[SRV_DASH_ID_LEN + 1], hash[65];

	return r->srv->dash &&
	       srv_dash_cookie_id(srv_req_header(r, "Cookie"), sid) &&
	       srv_dash_lookup(r->srv->dash, sid, time(NULL), hash) &&
	       !srv_token_principal(r->srv, hash, ret, NULL) &&
	       (ret->role & SRV_ROLES_READ);
}

/* GET /dash/session: who the cookie logs in, 200 either way (the page
 * asks before it shows the login form). */
int api_dash_session(struct srv_req *r)
{
	struct srv_principal p;

	if (!session_principal(r, &p))
		return srv_reply_json(r, 200,
				      json_pack("{s:b}", "logged_in", 0));
	return srv_reply_json(r, 200,
			      json_pack("{s:b, s:s, s:s, s:s}", "logged_in", 1,
					"token", p.id, "name", p.name, "role",
					srv_role_name(SRV_ROLE_VIEWER)));
}

/* POST /dash/login {"token": T}: a viewer (or higher) token gets a
 * session cookie; the token itself never goes into it. */
int api_dash_login(struct srv_req *r)
{
	json_t *body = srv_req_json(r);
	const char *token = json_string_value(json_object_get(body, "token"));
	struct fl_error err = {0};
	char hash[65], sid[SRV_DASH_ID_LEN + 1];

	if (!body)
		return 0;
	if (!token || !*token || strlen(token) > 256)
		return srv_reply_error(r, 400, "bad_request",
				       "'token' is missing");
	if (!r->srv->dash)
		return srv_reply_error(r, 503, "unavailable",
				       "no dashboard sessions here");
	fl_sha256_hex(token, strlen(token), hash);
	if (srv_token_principal(r->srv, hash, &r->who, &err))
		return srv_reply_error(r, 401, "unauthorized", "%s", err.msg);
	if (!(r->who.role & SRV_ROLES_READ))
		return srv_reply_error(r, 403, "forbidden",
				       "role %s may not use the dashboard",
				       srv_role_name(r->who.role));
	if (srv_dash_login(r->srv->dash, hash, time(NULL), sid, &err))
		return srv_reply_fail(r, &err);
	r->set_cookie = srv_dash_set_cookie(r->srv->dash, sid);
	return srv_reply_json(r, 200,
			      json_pack("{s:b, s:s, s:s, s:s}", "logged_in", 1,
					"token", r->who.id, "name", r->who.name,
					"role",
					srv_role_name(SRV_ROLE_VIEWER)));
}

/* POST /dash/logout: end the cookie's session and remove the cookie. */
int api_dash_logout(struct srv_req *r)
{
	char sid[SRV_DASH_ID_LEN + 1];

	if (r->srv->dash &&
	    srv_dash_cookie_id(srv_req_header(r, "Cookie"), sid))
		srv_dash_logout(r->srv->dash, sid);
	if (r->srv->dash)
		r->set_cookie = srv_dash_set_cookie(r->srv->dash, NULL);
	return srv_reply_json(r, 200, json_pack("{s:b}", "logged_in", 0));
}
