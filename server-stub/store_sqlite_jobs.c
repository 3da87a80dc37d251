/* SPDX-License-Identifier: MIT */
/* Update jobs: one per device and bundle (or rollback), moved forward by
 * the device's events. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "store.h"
#include "store_sqlite.h"
#include "util.h"

#define JOB_COLS                                                           \
	"id, device, type, bundle, command, rollout, state, final, stage,"  \
	" reason, from_version, to_version, bytes, total, created, updated," \
	" created_by, expires"

bool srv_job_state_final(const char *state)
{
	static const char *const finals[] = {"succeeded", "failed",
					     "rolled-back", "cancelled",
					     "expired"};

	for (size_t i = 0; i < FL_ARRAY_SIZE(finals); i++)
		if (fl_streq(state, finals[i]))
			return true;
	return false;
}

int sq_job_add(struct srv_store_be *s, const struct srv_job *j,
	       struct fl_error *err)
{
	json_t *busy = NULL;
	int64_t now = time(NULL);
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc && db_query_one(s, &busy, NULL,
				"SELECT id FROM jobs WHERE device = ? AND final = 0",
				"s", j->device) == 0)
		rc = fl_fail(err, FL_ECONFLICT, "device %s is busy with job %s",
			     j->device,
			     json_string_value(json_object_get(busy, "id")));
	if (!rc)
		rc = db_run(s, NULL, err,
			    "INSERT INTO jobs (id, device, type, bundle, command,"
			    " rollout, state, from_version, to_version, created,"
			    " updated, created_by, expires) VALUES (?, ?, ?, ?, ?,"
			    " ?, 'queued', (SELECT firmware FROM devices WHERE"
			    " id = ?2), ?, ?, ?, ?, ?)",
			    "sssssssiisi", j->id, j->device, j->type, j->bundle,
			    j->command, j->rollout, j->to_version, now, now,
			    j->created_by, j->expires);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	json_decref(busy);
	return rc;
}

int sq_job_command(struct srv_store_be *s, const char *job,
		   const char *command, struct fl_error *err)
{
	int rc;

	rc = db_lrun(s, NULL, err, "UPDATE jobs SET command = ? WHERE id = ?",
		      "ss", command, job);
	return rc;
}

int sq_job_fail(struct srv_store_be *s, const char *job,
		const char *stage, const char *reason,
		struct fl_error *err)
{
	int rc;

	rc = db_lrun(s, NULL, err,
		      "UPDATE jobs SET state = 'failed', final = 1, stage = ?,"
		      " reason = ?, updated = ? WHERE id = ? AND final = 0",
		      "ssis", stage, reason, (int64_t)time(NULL), job);
	return rc;
}

int sq_job_cancel(struct srv_store_be *s, const char *job,
		  const char *actor, struct fl_error *err)
{
	json_t *row = NULL;
	char *reason = fl_xasprintf("cancelled by %s", actor);
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc && db_query_one(s, &row, NULL,
				"SELECT state, final FROM jobs WHERE id = ?", "s",
				job))
		rc = fl_fail(err, FL_ENOTFOUND, "no job '%s'", job);
	if (!rc && json_integer_value(json_object_get(row, "final")))
		rc = fl_fail(err, FL_ECONFLICT, "job %s is already %s", job,
			     json_string_value(json_object_get(row, "state")));
	if (!rc)
		rc = db_run(s, NULL, err,
			    "UPDATE jobs SET state = 'cancelled', final = 1,"
			    " stage = state, reason = ?, updated = ?"
			    " WHERE id = ? AND final = 0",
			    "sis", reason, (int64_t)time(NULL), job);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	json_decref(row);
	free(reason);
	return rc;
}

int sq_jobs_expire(struct srv_store_be *s, int64_t now, int *ret_count,
		   struct fl_error *err)
{
	int n = 0, rc;

	rc = db_lrun(s, &n, err,
		     "UPDATE jobs SET state = 'expired', final = 1,"
		     " stage = state, reason = 'no result before its deadline',"
		     " updated = ?1 WHERE final = 0 AND expires > 0"
		     " AND expires <= ?1",
		     "i", now);
	if (!rc && ret_count)
		*ret_count = n;
	return rc;
}

static int job_row(sqlite3_stmt *st, void *ctx)
{
	struct srv_job_row *j = DB_PUSH((struct srv_job_list *)ctx);
	char **strs[] = {&j->id,      &j->device,  &j->type,
			 &j->bundle,  &j->command, &j->rollout,
			 &j->state};

	for (int i = 0; i < (int)FL_ARRAY_SIZE(strs); i++)
		*strs[i] = db_col_str(st, i);
	j->final = db_col_int(st, 7) != 0;
	j->stage = db_col_str(st, 8);
	j->reason = db_col_str(st, 9);
	j->from_version = db_col_str(st, 10);
	j->to_version = db_col_str(st, 11);
	j->bytes = db_col_int_or(st, 12, -1);
	j->total = db_col_int_or(st, 13, -1);
	j->created = db_col_int(st, 14);
	j->updated = db_col_int(st, 15);
	j->created_by = db_col_str(st, 16);
	j->expires = db_col_int(st, 17);
	return 0;
}

int sq_job_list(struct srv_store_be *s, const struct srv_job_filter *f,
		struct srv_job_list *ret, struct fl_error *err)
{
	struct srv_job_list l = {0};
	int rc;

	rc = db_lquery_rows(s, job_row, &l, err,
			    "SELECT " JOB_COLS " FROM jobs"
			    " WHERE (?1 IS NULL OR device = ?1)"
			    " AND (?2 IS NULL OR state = ?2)"
			    " AND (?3 IS NULL OR rollout = ?3)"
			    " ORDER BY created DESC, rowid DESC LIMIT ?4",
			    "sssd", f->device, f->state, f->rollout,
			    f->limit > 0 ? f->limit : 100);
	return DB_GIVE(rc, l, ret, srv_job_list_free);
}

int sq_job_get(struct srv_store_be *s, const char *id,
	       struct srv_job_row *ret, struct fl_error *err)
{
	struct srv_job_list l = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_query_rows(s, job_row, &l, err,
			   "SELECT " JOB_COLS " FROM jobs WHERE id = ?", "s", id);
	if (!rc && l.n == 0)
		rc = fl_fail(err, FL_ENOTFOUND, "no job '%s'", id);
	if (!rc)
		rc = db_query_rows(s, db_row_strv, &l.v[0].events, err,
				   "SELECT event FROM job_events WHERE job = ?"
				   " ORDER BY seq",
				   "s", id);
	pthread_mutex_unlock(&s->lock);
	return DB_GIVE_FIRST(rc, l, ret, srv_job_list_free);
}
