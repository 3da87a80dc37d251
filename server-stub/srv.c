/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fsutil.h"
#include "srv.h"
#include "util.h"

char *srv_path(const struct srv *srv, const char *name)
{
	return fl_path_join(srv->state_dir, name);
}

int srv_open(const char *state_dir, struct srv **ret, struct fl_error *err)
{
	struct srv *srv = fl_xcalloc(1, sizeof(*srv));
	char *db;
	int rc;

	srv->state_dir = fl_xstrdup(state_dir);
	srv->max_json_body = SRV_MAX_JSON_BODY;
	db = srv_path(srv, SRV_DB_FILE);
	if (!fl_path_exists(db)) {
		rc = fl_fail(err, FL_ENOTFOUND,
			     "'%s' is not an initialised state dir "
			     "(run 'fleetd init --state %s')",
			     state_dir, state_dir);
		goto out_free;
	}
	rc = srv_store_open(db, &srv->store, err);
	if (rc)
		goto out_free;
	free(db);
	*ret = srv;
	return 0;
out_free:
	free(db);
	srv_close(srv);
	return rc;
}

void srv_close(struct srv *srv)
{
	if (!srv)
		return;
	srv_store_close(srv->store);
	free(srv->https_url);
	free(srv->state_dir);
	free(srv);
}

int srv_token_create(struct srv *srv, const char *name, int role,
		     int64_t ttl, const char *created_by, char **ret_secret,
		     json_t **ret_info, struct fl_error *err)
{
	struct srv_token t = {.role = role, .uses_left = -1};
	unsigned char idraw[8];
	char hash[65], expires[21] = "";
	char *secret;
	int rc;

	rc = fl_random(idraw, sizeof(idraw), err);
	if (rc)
		return rc;
	fl_hex(idraw, sizeof(idraw), t.id);
	fl_strlcpy(t.name, name, sizeof(t.name));
	fl_strlcpy(t.kind, "operator", sizeof(t.kind));
	t.expires = ttl ? time(NULL) + ttl : 0;
	secret = fl_random_token("flt_", 32);
	fl_sha256_hex(secret, strlen(secret), hash);
	rc = srv_store_token_add(srv->store, &t, hash, created_by, err);
	if (rc) {
		fl_free_secret(secret);
		return rc;
	}
	if (t.expires)
		fl_time_rfc3339(t.expires, expires);
	*ret_info = json_pack("{s:s, s:s, s:s, s:s?}", "id", t.id, "name", name,
			      "role", srv_role_name(role), "expires",
			      t.expires ? expires : NULL);
	*ret_secret = secret;
	return 0;
}
