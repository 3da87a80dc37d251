/* SPDX-License-Identifier: MIT */
/* Jobs: created, failed, cancelled, expired and read here; the device's
 * events move them in store_ingest.c, by jobs.c's rules. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "store_sql.h"
#include "util.h"

#define JOB_COLS                                                               \
	"id, device, type, bundle, command, rollout, state, final, stage,"     \
	" reason, from_version, to_version, bytes, total, created, updated,"   \
	" created_by, expires"

struct busy {
	const struct srv_job *j;
	char *id; /* the first open job in @j's lane */
};

static int busy_row(struct db_row *st, void *ctx)
{
	struct busy *b = ctx;
	const char *type = db_col_text(st, 1);
	bool busy = !b->j->lane;

	for (size_t k = 0; !busy && b->j->lane[k]; k++)
		busy = fl_streq(b->j->lane[k], type);
	if (busy && !b->id)
		b->id = db_col_str(st, 0);
	return 0;
}

/* The open job of @device that @j cannot start beside: its id into
 * *ret_busy (caller frees), or NULL.  Called in a transaction. */
static int busy_job(struct srv_store_be *s, const struct srv_job *j,
		    char **ret_busy, struct fl_error *err)
{
	struct busy b = {.j = j};
	int rc;

	rc = db_query_rows(s, busy_row, &b, err,
			   "SELECT id, type FROM jobs WHERE device = ?"
			   " AND final = 0 ORDER BY created",
			   "s", j->device);
	*ret_busy = b.id;
	return rc;
}

/*
 * A device in an active rollout gets its update and rollback jobs from
 * that rollout only, until the rollout ends: FL_ECONFLICT for any other.
 * Called in a transaction.
 */
static int in_rollout(struct srv_store_be *s, const struct srv_job *j,
		      struct fl_error *err)
{
	struct db_first row = {0};
	struct fl_error e = {0};
	int rc;

	if (j->rollout ||
	    !(fl_streq(j->type, "update") || fl_streq(j->type, "rollback")))
		return 0;
	rc = db_query_first(s, &row, &e,
			    "SELECT r.id, r.state FROM rollout_devices rd"
			    " JOIN rollouts r ON r.id = rd.rollout"
			    " WHERE rd.device = ? AND rd.active = 1",
			    "s", j->device);
	if (!rc)
		rc = fl_fail(err, FL_ECONFLICT,
			     "device %s is in rollout %s (%s) until it ends",
			     j->device, row.t[0], row.t[1]);
	else if (rc == FL_ENOTFOUND)
		rc = 0;
	else
		rc = fl_fail(err, rc, "%s", e.msg);
	db_first_free(&row);
	return rc;
}

int db_job_insert(struct srv_store_be *s, const struct srv_job *j, int64_t now,
		  char **ret_busy, struct fl_error *err)
{
	char *busy = NULL;
	int rc;

	rc = in_rollout(s, j, err);
	if (!rc)
		rc = busy_job(s, j, &busy, err);
	if (!rc && busy)
		rc = fl_fail(err, FL_ECONFLICT, "device %s is busy with job %s",
			     j->device, busy);
	if (!rc)
		rc = db_run(
		    s, NULL, err,
		    "INSERT INTO jobs (id, device, type, bundle, command,"
		    " rollout, state, from_version, to_version, created,"
		    " updated, created_by, expires) VALUES (?, ?, ?, ?, ?,"
		    " ?, 'queued', (SELECT firmware FROM devices WHERE"
		    " id = ?2), ?, ?, ?, ?, ?)",
		    "sssssssiisi", j->id, j->device, j->type, j->bundle,
		    j->command, j->rollout, j->to_version, now, now,
		    j->created_by, j->expires);
	if (ret_busy)
		*ret_busy = busy;
	else
		free(busy);
	return rc;
}

int sql_job_add(struct srv_store_be *s, const struct srv_job *j,
		struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = db_job_insert(s, j, time(NULL), NULL, err);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int sql_job_command(struct srv_store_be *s, const char *job,
		    const char *command, struct fl_error *err)
{
	int rc;

	rc = db_lrun(s, NULL, err, "UPDATE jobs SET command = ? WHERE id = ?",
		     "ss", command, job);
	return rc;
}

int sql_job_fail(struct srv_store_be *s, const char *job, const char *stage,
		 const char *reason, struct fl_error *err)
{
	int rc;

	rc = db_lrun(s, NULL, err,
		     "UPDATE jobs SET state = 'failed', final = 1, stage = ?,"
		     " reason = ?, updated = ? WHERE id = ? AND final = 0",
		     "ssis", stage, reason, (int64_t)time(NULL), job);
	return rc;
}

int sql_job_cancel(struct srv_store_be *s, const char *job, const char *actor,
		   struct fl_error *err)
{
	struct db_first row = {0};
	char *reason = fl_xasprintf("cancelled by %s", actor);
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc && db_query_first(s, &row, NULL,
				  "SELECT final, state FROM jobs WHERE id = ?",
				  "s", job))
		rc = fl_fail(err, FL_ENOTFOUND, "no job '%s'", job);
	if (!rc && row.i[0])
		rc = fl_fail(err, FL_ECONFLICT, "job %s is already %s", job,
			     row.t[1]);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "UPDATE jobs SET state = 'cancelled', final = 1,"
			    " stage = state, reason = ?, updated = ?"
			    " WHERE id = ? AND final = 0",
			    "sis", reason, (int64_t)time(NULL), job);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	db_first_free(&row);
	free(reason);
	return rc;
}

int sql_jobs_expire(struct srv_store_be *s, int64_t now, int *ret_count,
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

static int job_row(struct db_row *st, void *ctx)
{
	struct srv_job_row *j = DB_PUSH((struct srv_job_list *)ctx);
	char **strs[] = {&j->id,      &j->device,  &j->type, &j->bundle,
			 &j->command, &j->rollout, &j->state};

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

int sql_job_list(struct srv_store_be *s, const struct srv_job_filter *f,
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

int sql_job_open(struct srv_store_be *s, const char *device, const char *type,
		 struct srv_job_row *ret, struct fl_error *err)
{
	struct srv_job_list l = {0};
	int rc;

	rc = db_lquery_rows(s, job_row, &l, err,
			    "SELECT " JOB_COLS " FROM jobs WHERE device = ?"
			    " AND type = ? AND final = 0"
			    " ORDER BY created DESC, rowid DESC LIMIT 1",
			    "ss", device, type);
	if (!rc && l.n == 0)
		rc = fl_fail(err, FL_ENOTFOUND, "no open %s job of %s", type,
			     device);
	return DB_GIVE_FIRST(rc, l, ret, srv_job_list_free);
}

int sql_job_get(struct srv_store_be *s, const char *id, struct srv_job_row *ret,
		struct fl_error *err)
{
	struct srv_job_list l = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_query_rows(s, job_row, &l, err,
			   "SELECT " JOB_COLS " FROM jobs WHERE id = ?", "s",
			   id);
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
