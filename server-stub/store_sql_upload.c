/* SPDX-License-Identifier: MIT */
/*
 * Support bundles' uploads in the store (store.h, diag_bundles.h): each
 * step a conditional update, so that replicas racing on one upload move
 * it once.
 */
#include <stdlib.h>

#include "diag_bundles.h"
#include "store.h"
#include "store_sql.h"

int sql_upload_add(struct srv_store_be *s, const char *id, const char *device,
		   int64_t now, int max, struct fl_error *err)
{
	struct db_first n = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = db_query_first(s, &n, err,
				    "SELECT count(*) FROM diag_uploads", NULL);
	if (!rc && n.i[0] >= max)
		rc = fl_fail(err, FL_ELIMIT,
			     "fleetd holds %d support bundles already (each "
			     "for %d s after it arrived)",
			     max, SRV_DIAG_BUNDLE_KEEP_S);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "INSERT INTO diag_uploads (id, device, created)"
			    " VALUES (?, ?, ?)",
			    "ssi", id, device, now);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	db_first_free(&n);
	return rc;
}

int sql_upload_drop(struct srv_store_be *s, const char *id,
		    struct fl_error *err)
{
	return db_lrun(s, NULL, err, "DELETE FROM diag_uploads WHERE id = ?",
		       "s", id);
}

int sql_upload_begin(struct srv_store_be *s, const char *id, const char *device,
		     struct fl_error *err)
{
	struct db_first row = {0};
	int rc, n = 0;

	pthread_mutex_lock(&s->lock);
	rc = db_run(s, &n, err,
		    "UPDATE diag_uploads SET state = ? WHERE id = ?"
		    " AND device = ? AND state = ?",
		    "dssd", SRV_BUNDLE_UPLOADING, id, device,
		    SRV_BUNDLE_PENDING);
	if (!rc && !n)
		rc = db_query_first(s, &row, NULL,
				    "SELECT state FROM diag_uploads WHERE"
				    " id = ? AND device = ?",
				    "ss", id, device) == 0
			 ? fl_fail(err, FL_ECONFLICT,
				   "upload %s of %s is not pending", id, device)
			 : fl_fail(err, FL_ENOTFOUND,
				   "no upload %s for device %s", id, device);
	pthread_mutex_unlock(&s->lock);
	db_first_free(&row);
	return rc;
}

int sql_upload_finish(struct srv_store_be *s, const char *id, uint64_t size,
		      int64_t now, struct fl_error *err)
{
	int n = 0;
	int rc = db_lrun(s, &n, err,
			 "UPDATE diag_uploads SET state = ?, size = ?,"
			 " settled = ? WHERE id = ? AND state = ?",
			 "diisd", SRV_BUNDLE_UPLOADED, (int64_t)size, now, id,
			 SRV_BUNDLE_UPLOADING);

	return rc || n ? rc
		       : fl_fail(err, FL_ENOTFOUND,
				 "upload %s was given up meanwhile", id);
}

/* the device may try again while its call waits */
int sql_upload_abort(struct srv_store_be *s, const char *id, int64_t now,
		     struct fl_error *err)
{
	return db_lrun(s, NULL, err,
		       "UPDATE diag_uploads SET"
		       " state = CASE WHEN call_done = 1 THEN ? ELSE ? END,"
		       " settled = CASE WHEN call_done = 1 THEN ? ELSE 0 END"
		       " WHERE id = ? AND state = ?",
		       "ddisd", SRV_BUNDLE_EXPIRED, SRV_BUNDLE_PENDING, now, id,
		       SRV_BUNDLE_UPLOADING);
}

int sql_upload_settle(struct srv_store_be *s, const char *id, int state,
		      const char *error, int64_t now, struct fl_error *err)
{
	return db_lrun(s, NULL, err,
		       "UPDATE diag_uploads SET call_done = 1,"
		       " error = CASE WHEN state = ?1 THEN ?2 ELSE error END,"
		       " settled = CASE WHEN state = ?1 THEN ?3 ELSE settled"
		       " END,"
		       " state = CASE WHEN state = ?1 THEN ?4 ELSE state END"
		       " WHERE id = ?5",
		       "dsids", SRV_BUNDLE_PENDING, error, now, state, id);
}

int sql_upload_get(struct srv_store_be *s, const char *id, const char *device,
		   struct srv_upload_row *ret, struct fl_error *err)
{
	struct db_first row = {0};
	int rc = db_lquery_first(s, &row, err,
				 "SELECT state, size, error FROM diag_uploads"
				 " WHERE id = ? AND device = ?",
				 "ss", id, device);

	if (rc == FL_ENOTFOUND) {
		fl_error_clear(err);
		rc = fl_fail(err, FL_ENOTFOUND,
			     "no support bundle %s of device %s", id, device);
	}
	if (!rc) {
		ret->state = (int)row.i[0];
		ret->size = (uint64_t)row.i[1];
		ret->error = row.t[2];
		row.t[2] = NULL;
	}
	db_first_free(&row);
	return rc;
}

/* Settled @keep ago, or begun @stale ago (its fleetd died). */
#define EXPIRED                                                                \
	" FROM diag_uploads WHERE (call_done = 1 AND settled > 0 AND"          \
	" settled <= ?) OR created <= ?"

int sql_upload_expire(struct srv_store_be *s, int64_t now, int64_t keep,
		      int64_t stale, struct srv_strv *ret_ids,
		      struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = db_query_rows(s, db_row_strv, ret_ids, err,
				   "SELECT id" EXPIRED, "ii", now - keep,
				   now - stale);
	if (!rc)
		rc = db_run(s, NULL, err, "DELETE" EXPIRED, "ii", now - keep,
			    now - stale);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}
