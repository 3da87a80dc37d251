/* SPDX-License-Identifier: MIT */
/* Jobs: created, failed, cancelled, expired and read here; the device's
 * events move them in store_ingest.c, by jobs.c's rules. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "store.h"
#include "store_db.h"
#include "util.h"

#define JOB_COLS                                                           \
	"id, device, type, bundle, command, rollout, state, final != 0 AS"  \
	" final, stage, reason, from_version, to_version, bytes, total,"   \
	" " DB_TIME("created") " AS created, " DB_TIME("updated")          \
	" AS updated, created_by, " DB_TIME("expires") " AS expires"

/* The open job of @device that @j cannot start beside: its id into
 * *ret_busy (caller frees), or NULL.  Called in a transaction. */
static int busy_job(struct srv_store *s, const struct srv_job *j,
		    char **ret_busy, struct fl_error *err)
{
	json_t *rows = NULL, *row;
	size_t i;
	int rc;

	*ret_busy = NULL;
	rc = db_query_json(s, &rows, err,
			   "SELECT id, type FROM jobs WHERE device = ?"
			   " AND final = 0 ORDER BY created",
			   "s", j->device);
	json_array_foreach(rows, i, row) {
		const char *type = json_string_value(json_object_get(row, "type"));
		bool busy = !j->lane;

		for (size_t k = 0; !busy && j->lane[k]; k++)
			busy = fl_streq(j->lane[k], type);
		if (!rc && busy && !*ret_busy)
			*ret_busy = fl_xstrdup(
				json_string_value(json_object_get(row, "id")));
	}
	json_decref(rows);
	return rc;
}

int srv_store_job_add(struct srv_store *s, const struct srv_job *j,
		      struct fl_error *err)
{
	int64_t now = time(NULL);
	char *busy = NULL;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = busy_job(s, j, &busy, err);
	if (!rc && busy)
		rc = fl_fail(err, FL_ECONFLICT, "device %s is busy with job %s",
			     j->device, busy);
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
	free(busy);
	return rc;
}

int srv_store_job_command(struct srv_store *s, const char *job,
			  const char *command, struct fl_error *err)
{
	int rc;

	rc = db_lrun(s, NULL, err, "UPDATE jobs SET command = ? WHERE id = ?",
		      "ss", command, job);
	return rc;
}

int srv_store_job_fail(struct srv_store *s, const char *job,
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

int srv_store_job_cancel(struct srv_store *s, const char *job,
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

int srv_store_jobs_expire(struct srv_store *s, int64_t now, int *ret_count,
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

static void fix_jobs(json_t *rows)
{
	db_json_bools(rows, "final");
}

static void fix_jobs_one(json_t *job)
{
	json_object_set_new(job, "final",
			    json_boolean(json_integer_value(json_object_get(job, "final"))));
}

int srv_store_job_list(struct srv_store *s, const struct srv_job_filter *f,
		       json_t **ret, struct fl_error *err)
{
	int rc;

	rc = db_lquery_json(s, ret, err,
			   "SELECT " JOB_COLS " FROM jobs"
			   " WHERE (?1 IS NULL OR device = ?1)"
			   " AND (?2 IS NULL OR state = ?2)"
			   " AND (?3 IS NULL OR rollout = ?3)"
			   " ORDER BY created DESC, rowid DESC LIMIT ?4",
			   "sssd", f->device, f->state, f->rollout,
			   f->limit > 0 ? f->limit : 100);
	if (!rc)
		fix_jobs(*ret);
	return rc;
}

int srv_store_job_open(struct srv_store *s, const char *device,
		       const char *type, json_t **ret, struct fl_error *err)
{
	json_t *job = NULL;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_query_one(s, &job, err,
			  "SELECT " JOB_COLS " FROM jobs WHERE device = ?"
			  " AND type = ? AND final = 0"
			  " ORDER BY created DESC, rowid DESC LIMIT 1",
			  "ss", device, type);
	pthread_mutex_unlock(&s->lock);
	if (rc)
		return rc;
	fix_jobs_one(job);
	*ret = job;
	return 0;
}

int srv_store_job_get(struct srv_store *s, const char *id, json_t **ret,
		      struct fl_error *err)
{
	json_t *job = NULL, *events = NULL, *ev;
	size_t i;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_query_one(s, &job, err, "SELECT " JOB_COLS " FROM jobs WHERE id = ?",
			  "s", id);
	if (!rc)
		rc = db_query_json(s, &events, err,
				   "SELECT event FROM job_events WHERE job = ?"
				   " ORDER BY seq",
				   "s", id);
	pthread_mutex_unlock(&s->lock);
	if (rc == FL_ENOTFOUND) {
		fl_error_clear(err);
		rc = fl_fail(err, FL_ENOTFOUND, "no job '%s'", id);
	}
	if (rc) {
		json_decref(job);
		return rc;
	}
	fix_jobs_one(job);
	json_array_foreach(events, i, ev) {
		const char *t = json_string_value(json_object_get(ev, "event"));

		json_array_set_new(events, i, json_loads(t, 0, NULL) ?: json_null());
	}
	json_object_set_new(job, "events", events);
	*ret = job;
	return 0;
}
