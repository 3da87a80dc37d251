/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "srv.h"
#include "ca.h"
#include "util.h"

/* Create @dir 0700, refusing a dir that already holds a database or a
 * CA (whose database may be elsewhere: [store] url). */
static int make_state_dir(const char *dir, struct fl_error *err)
{
	char *db = fl_path_join(dir, SRV_DB_FILE);
	char *ca = fl_path_join(dir, SRV_CA_FILE);
	bool exists = fl_path_exists(db) || fl_path_exists(ca);
	int rc;

	free(db);
	free(ca);
	if (exists)
		return fl_fail(err, FL_ECONFLICT,
			       "'%s' is already initialised", dir);
	rc = fl_mkdir_p(dir, 0700, err);
	if (rc)
		return rc;
	if (chmod(dir, 0700) < 0)
		return fl_fail_errno(err, FL_EIO, "cannot chmod '%s'", dir);
	/* the bundle store from the start, so that a replica's copy of this
	 * dir can link to it before the first fleetd serves it */
	for (size_t i = 0; !rc && i < 2; i++) {
		db = fl_path_join(dir, i ? "bundles" : "tls");
		rc = fl_mkdir_p(db, 0700, err);
		free(db);
	}
	return rc;
}

/* The database: fleetd.db, or @store, named in a new fleetd.conf. */
static int create_db(const char *dir, const char *store, struct fl_error *err)
{
	char *db = store ? fl_xstrdup(store) : fl_path_join(dir, SRV_DB_FILE);
	char *conf = fl_path_join(dir, SRV_CONF_FILE);
	char *text = fl_xasprintf("[store]\nurl = %s\n", store ? store : "");
	struct srv_store *st = NULL;
	int rc = store ? fl_write_atomic_str(conf, text, 0600, err) : 0;

	if (!rc)
		rc = srv_store_open(db, &st, err);
	srv_store_close(st);
	free(text);
	free(conf);
	free(db);
	return rc;
}

int srv_init_state(const char *state_dir, const char *const *sans,
		   size_t nsans, const char *store, char **ret_token,
		   struct fl_error *err)
{
	struct srv *srv = NULL;
	json_t *info = NULL;
	int rc;

	rc = make_state_dir(state_dir, err);
	if (!rc)
		rc = srv_ca_init(state_dir, sans, nsans, err);
	if (!rc)
		rc = create_db(state_dir, store, err);
	if (!rc)
		rc = srv_open(state_dir, &srv, err);
	if (!rc)
		rc = srv_token_create(srv,
				      &(struct srv_token_spec){
					      .name = "admin",
					      .role = SRV_ROLE_ADMIN},
				      "fleetd-init", ret_token, &info, err);
	json_decref(info);
	srv_close(srv);
	return rc;
}
