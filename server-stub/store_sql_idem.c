/* SPDX-License-Identifier: MIT */
/*
 * Idempotency keys in the store (store.h, idem.h): one row per key and
 * sender, claimed before the request runs and answered after, so that a
 * retry of it on any replica finds the first try's answer.
 */
#include <stdlib.h>

#include "store.h"
#include "store_sql.h"

/* The row of @id_hash into *@ret (found). Caller holds the lock. */
static int idem_get(struct srv_store_be *s, const char *id_hash,
		    struct srv_idem_row *ret, struct fl_error *err)
{
	struct db_first row = {0};
	int rc = db_query_first(s, &row, err,
				"SELECT request_hash, status, answer FROM"
				" idempotency WHERE id_hash = ?",
				"s", id_hash);

	if (!rc) {
		ret->found = true;
		ret->answered = row.t[1] != NULL;
		ret->status = (int)row.i[1];
		ret->request_hash = row.t[0];
		ret->answer = row.t[2];
		row.t[0] = row.t[2] = NULL;
	}
	db_first_free(&row);
	return rc;
}

int sql_idem_claim(struct srv_store_be *s, const char *id_hash,
		   const char *request_hash, int64_t now, int64_t ttl,
		   struct srv_idem_row *ret, struct fl_error *err)
{
	int rc, added = 0;

	*ret = (struct srv_idem_row){0};
	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "DELETE FROM idempotency WHERE created <= ?", "i",
			    now - ttl);
	/* a claim of the same key on another replica: waits for it to
	 * commit, then adds nothing */
	if (!rc)
		rc = db_run(s, &added, err,
			    "INSERT INTO idempotency (id_hash, request_hash,"
			    " created) VALUES (?, ?, ?)"
			    " ON CONFLICT (id_hash) DO NOTHING",
			    "ssi", id_hash, request_hash, now);
	if (!rc && !added)
		rc = idem_get(s, id_hash, ret, err);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	if (rc)
		srv_idem_row_free(ret);
	return rc;
}

int sql_idem_answer(struct srv_store_be *s, const char *id_hash, int status,
		    const char *answer, struct fl_error *err)
{
	return db_lrun(s, NULL, err,
		       "UPDATE idempotency SET status = ?, answer = ?"
		       " WHERE id_hash = ?",
		       "dss", status, answer, id_hash);
}

int sql_idem_drop(struct srv_store_be *s, const char *id_hash,
		  struct fl_error *err)
{
	return db_lrun(s, NULL, err,
		       "DELETE FROM idempotency WHERE id_hash = ?", "s",
		       id_hash);
}
