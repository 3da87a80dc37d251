/* SPDX-License-Identifier: MIT */
/* Bundles and trust roots in the store. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "store.h"
#include "store_db.h"
#include "util.h"

#define BUNDLE_COLS                                                        \
	"id, sha256, name, version, security_version, hardware, size,"    \
	" " DB_TIME("created") " AS created, uploaded_by"

static void fix_hardware(json_t *rows)
{
	size_t i;
	json_t *row;

	json_array_foreach(rows, i, row) {
		const char *t = json_string_value(json_object_get(row, "hardware"));
		json_t *v = t ? json_loads(t, 0, NULL) : NULL;

		json_object_set_new(row, "hardware", v ? v : json_array());
		t = json_string_value(json_object_get(row, "manifest"));
		if (t)
			json_object_set_new(row, "manifest",
					    json_loads(t, 0, NULL) ?: json_null());
	}
}

int srv_store_bundle_add(struct srv_store *s, const struct srv_bundle *b,
			 const char *uploaded_by, bool *ret_existed,
			 struct fl_error *err)
{
	char *hw = fl_json_dumps(b->hardware), *man = fl_json_dumps(b->manifest);
	json_t *row = NULL;
	int rc;

	pthread_mutex_lock(&s->lock);
	*ret_existed = db_query_one(s, &row, NULL,
				    "SELECT id FROM bundles WHERE sha256 = ?",
				    "s", b->sha256) == 0;
	rc = *ret_existed ? 0
			  : db_run(s, NULL, err,
				   "INSERT INTO bundles (id, sha256, name, version,"
				   " security_version, hardware, size, manifest,"
				   " created, uploaded_by)"
				   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
				   "ssssisisis", b->id, b->sha256, b->name,
				   b->version, (int64_t)b->security_version, hw,
				   (int64_t)b->size, man, (int64_t)time(NULL),
				   uploaded_by);
	pthread_mutex_unlock(&s->lock);
	if (rc == FL_ECONFLICT) {
		fl_error_clear(err);
		rc = fl_fail(err, FL_ECONFLICT,
			     "a different bundle %s %s is already stored",
			     b->name, b->version);
	}
	json_decref(row);
	free(hw);
	free(man);
	return rc;
}

int srv_store_bundle_list(struct srv_store *s, json_t **ret,
			  struct fl_error *err)
{
	int rc;

	rc = db_lquery_json(s, ret, err,
			   "SELECT " BUNDLE_COLS " FROM bundles"
			   " ORDER BY created DESC, name, version",
			   NULL);
	if (!rc)
		fix_hardware(*ret);
	return rc;
}

int srv_store_bundle_get(struct srv_store *s, const char *ref, json_t **ret,
			 struct fl_error *err)
{
	const char *at = strchr(ref, '@');
	char *name = at ? fl_xstrndup(ref, (size_t)(at - ref)) : NULL;
	char *prefix = fl_xasprintf("%s%%", ref);
	json_t *rows = NULL;
	int rc;

	rc = db_lquery_json(s, &rows, err,
			   "SELECT " BUNDLE_COLS ", manifest FROM bundles"
			   " WHERE (?1 IS NOT NULL AND name = ?1 AND version = ?2)"
			   " OR (?1 IS NULL AND length(?3) >= 6"
			   " AND id LIKE ?4 ESCAPE '\\')",
			   "ssss", name, at ? at + 1 : NULL, ref, prefix);
	if (!rc && json_array_size(rows) == 0)
		rc = fl_fail(err, FL_ENOTFOUND, "no bundle '%s'", ref);
	else if (!rc && json_array_size(rows) > 1)
		rc = fl_fail(err, FL_ECONFLICT,
			     "bundle id prefix '%s' is ambiguous", ref);
	if (!rc) {
		fix_hardware(rows);
		*ret = json_incref(json_array_get(rows, 0));
	}
	json_decref(rows);
	free(prefix);
	free(name);
	return rc;
}

int srv_store_root_add(struct srv_store *s, uint64_t version,
		       const char *envelope, int64_t expires,
		       const char *added_by, struct fl_error *err)
{
	int rc;

	rc = db_lrun(s, NULL, err,
		      "INSERT INTO roots (version, envelope, expires, added,"
		      " added_by) VALUES (?, ?, ?, ?, ?)",
		      "isiis", (int64_t)version, envelope, expires,
		      (int64_t)time(NULL), added_by);
	return rc;
}

int srv_store_root_list(struct srv_store *s, json_t **ret,
			struct fl_error *err)
{
	int rc;

	rc = db_lquery_json(s, ret, err,
			   "SELECT version, " DB_TIME("expires") " AS expires,"
			   " " DB_TIME("added") " AS added, added_by"
			   " FROM roots ORDER BY version",
			   NULL);
	return rc;
}

int srv_store_root_get(struct srv_store *s, uint64_t version, char **ret,
		       struct fl_error *err)
{
	json_t *row = NULL;
	int rc;

	rc = db_lquery_one(s, &row, NULL,
			  "SELECT envelope FROM roots WHERE ?1 = 0 OR version = ?1"
			  " ORDER BY version DESC LIMIT 1",
			  "i", (int64_t)version);
	if (rc)
		return fl_fail(err, FL_ENOTFOUND,
			       version ? "no trust root version %llu"
				       : "no trust root yet%.0llu",
			       (unsigned long long)version);
	*ret = fl_xstrdup(json_string_value(json_object_get(row, "envelope")));
	json_decref(row);
	return 0;
}
