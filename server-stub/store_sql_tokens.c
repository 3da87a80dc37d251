/* SPDX-License-Identifier: MIT */
/* Operator and enrolment tokens in SQLite. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "store_sql.h"
#include "util.h"

int sql_token_add(struct srv_store_be *s, const struct srv_token *t,
		  const char *hash_hex, const char *group,
		  const char *created_by, struct fl_error *err)
{
	int rc;

	rc = db_lrun(s, NULL, err,
		     "INSERT INTO tokens (id, hash, kind, name, role, grp,"
		     " uses_left, created, expires, created_by)"
		     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		     "ssssdsiiis", t->id, hash_hex, t->kind, t->name, t->role,
		     group, t->uses_left, (int64_t)time(NULL), t->expires,
		     created_by);
	return rc;
}

struct token_found {
	struct srv_token t;
	bool found;
};

/* Columns: id, name, kind, role, expires, uses_left, revoked. */
static int token_auth_row(struct db_row *st, void *ctx)
{
	struct token_found *f = ctx;
	struct srv_token *t = &f->t;
	const char *text;

	f->found = true;
	text = db_col_text(st, 0);
	fl_strlcpy(t->id, text ? text : "", sizeof(t->id));
	text = db_col_text(st, 1);
	fl_strlcpy(t->name, text ? text : "", sizeof(t->name));
	text = db_col_text(st, 2);
	fl_strlcpy(t->kind, text ? text : "", sizeof(t->kind));
	t->role = (int)db_col_int(st, 3);
	t->expires = db_col_int(st, 4);
	t->uses_left = db_col_int(st, 5);
	t->revoked = db_col_int(st, 6) != 0;
	return 0;
}

int sql_token_find(struct srv_store_be *s, const char *hash_hex,
		   struct srv_token *ret, struct fl_error *err)
{
	struct token_found f = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_query_rows(s, token_auth_row, &f, err,
			   "SELECT id, name, kind, role, expires, uses_left,"
			   " revoked FROM tokens WHERE hash = ?",
			   "s", hash_hex);
	if (!rc && !f.found)
		rc = fl_fail(err, FL_ENOTFOUND, "not found");
	if (!rc) {
		*ret = f.t;
		db_run(s, NULL, NULL,
		       "UPDATE tokens SET last_used = ? WHERE hash = ?", "is",
		       (int64_t)time(NULL), hash_hex);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int token_row(struct db_row *st, void *ctx)
{
	struct srv_token_row *t = DB_PUSH((struct srv_token_list *)ctx);

	t->id = db_col_str(st, 0);
	t->name = db_col_str(st, 1);
	t->kind = db_col_str(st, 2);
	t->role = (int)db_col_int(st, 3);
	t->group = db_col_str(st, 4);
	t->uses_left = db_col_int(st, 5);
	t->created = db_col_int(st, 6);
	t->expires = db_col_int(st, 7);
	t->last_used = db_col_int(st, 8);
	t->revoked = db_col_int(st, 9) != 0;
	t->created_by = db_col_str(st, 10);
	return 0;
}

int sql_token_list(struct srv_store_be *s, struct srv_token_list *ret,
		   struct fl_error *err)
{
	struct srv_token_list l = {0};
	int rc;

	rc = db_lquery_rows(s, token_row, &l, err,
			    "SELECT id, name, kind, role, grp, uses_left,"
			    " created, expires, last_used, revoked, created_by"
			    " FROM tokens ORDER BY created, id",
			    NULL);
	return DB_GIVE(rc, l, ret, srv_token_list_free);
}

/* Would revoking @id leave no active, unexpired admin token?  Lock held. */
static int check_not_last_admin(struct srv_store_be *s, const char *id,
				struct fl_error *err)
{
	int64_t now = (int64_t)time(NULL);
	struct db_first row;
	int rc;

	/* 0 others, 1 self */
	rc = db_query_first(s, &row, err,
			    "SELECT count(*),"
			    " (SELECT count(*) FROM tokens WHERE id = ?1"
			    "  AND kind = 'operator' AND role = ?2"
			    "  AND revoked = 0"
			    "  AND (expires = 0 OR expires > ?3))"
			    " FROM tokens WHERE id != ?1 AND kind = 'operator'"
			    " AND role = ?2 AND revoked = 0"
			    " AND (expires = 0 OR expires > ?3)",
			    "sdi", id, SRV_ROLE_ADMIN, now);
	if (!rc && row.i[1] && !row.i[0])
		rc = fl_fail(err, FL_ECONFLICT,
			     "token '%s' is the last admin token; create "
			     "another admin token first (or, on the server, "
			     "'fleetd token create --state DIR')",
			     id);
	db_first_free(&row);
	return rc;
}

int sql_token_revoke(struct srv_store_be *s, const char *id,
		     struct fl_error *err)
{
	int rc, n = 0;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (rc)
		goto out_unlock;
	rc = check_not_last_admin(s, id, err);
	if (!rc)
		rc = db_run(s, &n, err,
			    "UPDATE tokens SET revoked = 1 WHERE id = ?", "s",
			    id);
	if (!rc && n == 0)
		rc = fl_fail(err, FL_ENOTFOUND, "no token with id '%s'", id);
	rc = db_end(s, rc, err);
out_unlock:
	pthread_mutex_unlock(&s->lock);
	return rc;
}
