/* SPDX-License-Identifier: MIT */
/* Bundles and trust roots in the store. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "store.h"
#include "store_sql.h"
#include "util.h"

#define BUNDLE_COLS                                                            \
	"id, sha256, name, version, security_version, hardware, size,"         \
	" created, uploaded_by"

/* Stored hardware lists are JSON arrays of strings (written by
 * sql_bundle_add); anything else reads as an empty list. */
static void hardware_parse(const char *text, struct srv_strv *ret)
{
	json_t *arr = text ? json_loads(text, 0, NULL) : NULL, *v;
	size_t i;

	json_array_foreach(arr, i, v) if (json_is_string(v))
	    db_strv_add(ret, json_string_value(v));
	json_decref(arr);
}

/* The stored form of a bundle's hardware list: a JSON array. */
static char *hardware_text(const struct srv_bundle *b)
{
	json_t *a = json_array();
	char *text;

	for (size_t i = 0; i < b->n_hardware; i++)
		json_array_append_new(a, json_string(b->hardware[i]));
	text = fl_json_dumps(a);
	json_decref(a);
	return text;
}

/* A bundle row; column 9, when present, is the manifest. */
static int bundle_row(struct db_row *st, void *ctx)
{
	struct srv_bundle_row *b = DB_PUSH((struct srv_bundle_list *)ctx);

	b->id = db_col_str(st, 0);
	b->sha256 = db_col_str(st, 1);
	b->name = db_col_str(st, 2);
	b->version = db_col_str(st, 3);
	b->security_version = (uint64_t)db_col_int(st, 4);
	hardware_parse(db_col_text(st, 5), &b->hardware);
	b->size = (uint64_t)db_col_int(st, 6);
	b->created = db_col_int(st, 7);
	b->uploaded_by = db_col_str(st, 8);
	if (db_col_count(st) > 9)
		b->manifest = db_col_str(st, 9);
	return 0;
}

int sql_bundle_add(struct srv_store_be *s, const struct srv_bundle *b,
		   const char *uploaded_by, bool *ret_existed,
		   struct fl_error *err)
{
	char *hw = hardware_text(b);
	struct db_first row;
	int rc;

	pthread_mutex_lock(&s->lock);
	*ret_existed = db_query_first(s, &row, NULL,
				      "SELECT id FROM bundles WHERE sha256 = ?",
				      "s", b->sha256) == 0;
	db_first_free(&row);
	rc = *ret_existed
		 ? 0
		 : db_run(s, NULL, err,
			  "INSERT INTO bundles (id, sha256, name, version,"
			  " security_version, hardware, size, manifest,"
			  " created, uploaded_by)"
			  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			  "ssssisisis", b->id, b->sha256, b->name, b->version,
			  (int64_t)b->security_version, hw, (int64_t)b->size,
			  b->manifest, (int64_t)time(NULL), uploaded_by);
	pthread_mutex_unlock(&s->lock);
	if (rc == FL_ECONFLICT) {
		fl_error_clear(err);
		rc = fl_fail(err, FL_ECONFLICT,
			     "a different bundle %s %s is already stored",
			     b->name, b->version);
	}
	free(hw);
	return rc;
}

int sql_bundle_list(struct srv_store_be *s, struct srv_bundle_list *ret,
		    struct fl_error *err)
{
	struct srv_bundle_list l = {0};
	int rc;

	rc = db_lquery_rows(s, bundle_row, &l, err,
			    "SELECT " BUNDLE_COLS " FROM bundles"
			    " ORDER BY created DESC, name, version",
			    NULL);
	return DB_GIVE(rc, l, ret, srv_bundle_list_free);
}

int sql_bundle_get(struct srv_store_be *s, const char *ref,
		   struct srv_bundle_row *ret, struct fl_error *err)
{
	const char *at = strchr(ref, '@');
	char *name = at ? fl_xstrndup(ref, (size_t)(at - ref)) : NULL;
	struct srv_bundle_list l = {0};
	int rc;

	/* a prefix compared with substr, not LIKE: SQLite prepares a
	 * statement whose LIKE pattern is a parameter again at every run
	 * (every bundle download), and LIKE would read '_' and '%' in
	 * @ref as wildcards */
	rc = db_lquery_rows(
	    s, bundle_row, &l, err,
	    "SELECT " BUNDLE_COLS ", manifest FROM bundles"
	    " WHERE (?1 IS NOT NULL AND name = ?1 AND version = ?2)"
	    " OR (?1 IS NULL AND length(?3) >= 6"
	    " AND substr(id, 1, length(?3)) = ?3)",
	    "sss", name, at ? at + 1 : NULL, ref);
	if (!rc && l.n == 0)
		rc = fl_fail(err, FL_ENOTFOUND, "no bundle '%s'", ref);
	else if (!rc && l.n > 1)
		rc = fl_fail(err, FL_ECONFLICT,
			     "bundle id prefix '%s' is ambiguous", ref);
	free(name);
	return DB_GIVE_FIRST(rc, l, ret, srv_bundle_list_free);
}

int sql_root_add(struct srv_store_be *s, uint64_t version, const char *envelope,
		 int64_t expires, const char *added_by, struct fl_error *err)
{
	int rc;

	rc = db_lrun(s, NULL, err,
		     "INSERT INTO roots (version, envelope, expires, added,"
		     " added_by) VALUES (?, ?, ?, ?, ?)",
		     "isiis", (int64_t)version, envelope, expires,
		     (int64_t)time(NULL), added_by);
	return rc;
}

static int root_row(struct db_row *st, void *ctx)
{
	struct srv_root_row *r = DB_PUSH((struct srv_root_list *)ctx);

	r->version = (uint64_t)db_col_int(st, 0);
	r->expires = db_col_int(st, 1);
	r->added = db_col_int(st, 2);
	r->added_by = db_col_str(st, 3);
	return 0;
}

int sql_root_list(struct srv_store_be *s, struct srv_root_list *ret,
		  struct fl_error *err)
{
	struct srv_root_list l = {0};
	int rc;

	rc = db_lquery_rows(s, root_row, &l, err,
			    "SELECT version, expires, added, added_by"
			    " FROM roots ORDER BY version",
			    NULL);
	return DB_GIVE(rc, l, ret, srv_root_list_free);
}

int sql_root_get(struct srv_store_be *s, uint64_t version, char **ret,
		 struct fl_error *err)
{
	struct db_first row;
	int rc;

	rc = db_lquery_first(s, &row, NULL,
			     "SELECT envelope FROM roots WHERE ?1 = 0 OR"
			     " version = ?1 ORDER BY version DESC LIMIT 1",
			     "i", (int64_t)version);
	if (rc) {
		db_first_free(&row);
		return fl_fail(err, FL_ENOTFOUND,
			       version ? "no trust root version %llu"
				       : "no trust root yet%.0llu",
			       (unsigned long long)version);
	}
	*ret = row.t[0];
	row.t[0] = NULL;
	db_first_free(&row);
	return 0;
}
