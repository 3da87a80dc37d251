/* SPDX-License-Identifier: MIT */
/* The audit log in SQLite. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "store_sql.h"
#include "util.h"

int sql_audit(struct srv_store_be *s, const char *actor, const char *method,
	      const char *path, int status, const char *remote,
	      const char *detail, struct fl_error *err)
{
	return db_lrun(s, NULL, err,
		       "INSERT INTO audit"
		       " (ts, actor, method, path, status, remote, detail)"
		       " VALUES (?, ?, ?, ?, ?, ?, ?)",
		       "isssdss", (int64_t)time(NULL), actor, method, path,
		       status, remote, detail);
}

int db_audit(struct srv_store_be *s, const char *actor, const char *method,
	     const char *path, int status, int64_t now, struct fl_error *err)
{
	return db_run(s, NULL, err,
		      "INSERT INTO audit (ts, actor, method, path, status)"
		      " VALUES (?, ?, ?, ?, ?)",
		      "isssd", now, actor, method, path, status);
}

static int audit_row(struct db_row *st, void *ctx)
{
	struct srv_audit_row *a = DB_PUSH((struct srv_audit_list *)ctx);

	a->id = db_col_int(st, 0);
	a->time = db_col_int(st, 1);
	a->actor = db_col_str(st, 2);
	a->method = db_col_str(st, 3);
	a->path = db_col_str(st, 4);
	a->status = (int)db_col_int(st, 5);
	a->remote = db_col_str(st, 6);
	a->detail = db_col_str(st, 7);
	return 0;
}

int sql_audit_list(struct srv_store_be *s, int limit,
		   struct srv_audit_list *ret, struct fl_error *err)
{
	struct srv_audit_list l = {0};
	int rc;

	rc =
	    db_lquery_rows(s, audit_row, &l, err,
			   "SELECT id, ts, actor, method, path, status, remote,"
			   " detail FROM audit ORDER BY id DESC LIMIT ?",
			   "d", limit);
	return DB_GIVE(rc, l, ret, srv_audit_list_free);
}
