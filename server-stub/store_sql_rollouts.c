/* SPDX-License-Identifier: MIT */
/*
 * Rollouts in SQLite (store_rollouts.h): created with their plan in one
 * transaction, read for the API, and moved by operators.  The engine's
 * own writes are in store_sql_engine.c.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollout.h"
#include "store.h"
#include "store_sql.h"
#include "util.h"

/* Busy devices named in a conflict message. */
#define BUSY_NAMED 5

int db_rollout_event(struct srv_store_be *s, const char *rollout,
		     const char *kind, const char *device, int64_t wave,
		     const char *detail, int64_t now, struct fl_error *err)
{
	return db_run(s, NULL, err,
		      "INSERT INTO rollout_events (rollout, ts, kind, device,"
		      " wave, detail) VALUES (?, ?, ?, ?, ?, ?)",
		      "sissns", rollout, now, kind, device, wave, detail);
}

/* Lock held: "DEVICE (rollout ID)" or "DEVICE (job ID)" for each busy
 * one of @devices, in their order. */
static int busy_list(struct srv_store_be *s, const char *const *devices,
		     size_t n, struct srv_strv *ret, struct fl_error *err)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < n; i++) {
		struct db_first row = {0};

		rc = db_query_first(
		    s, &row, err,
		    "SELECT (SELECT rollout FROM rollout_devices WHERE"
		    " device = ?1 AND active = 1), (SELECT id FROM jobs WHERE"
		    " device = ?1 AND final = 0 AND type IN ('update',"
		    " 'rollback') ORDER BY created LIMIT 1)",
		    "s", devices[i]);
		if (!rc && (row.t[0] || row.t[1]))
			*DB_PUSH(ret) =
			    fl_xasprintf("%s (%s %s)", devices[i],
					 row.t[0] ? "rollout" : "job",
					 row.t[0] ? row.t[0] : row.t[1]);
		db_first_free(&row);
	}
	return rc;
}

int sql_rollout_busy(struct srv_store_be *s, const char *const *devices,
		     size_t n, struct srv_strv *ret_busy, struct fl_error *err)
{
	struct srv_strv l = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = busy_list(s, devices, n, &l, err);
	pthread_mutex_unlock(&s->lock);
	return DB_GIVE(rc, l, ret_busy, srv_strv_free);
}

/* FL_ECONFLICT naming the first busy devices. */
static int busy_fail(const struct srv_strv *busy, struct fl_error *err)
{
	char names[400] = "";
	size_t o = 0;

	for (size_t i = 0; i < busy->n && i < BUSY_NAMED; i++)
		o += (size_t)snprintf(names + o,
				      o < sizeof(names) ? sizeof(names) - o : 0,
				      "%s%s", i ? ", " : "", busy->v[i]);
	return fl_fail(err, FL_ECONFLICT, "%zu device(s) busy: %s%s", busy->n,
		       names, busy->n > BUSY_NAMED ? ", ..." : "");
}

static int insert_rollout(struct srv_store_be *s, const struct srv_rollout *r,
			  int64_t now, struct fl_error *err)
{
	return db_run(
	    s, NULL, err,
	    "INSERT INTO rollouts (id, bundle, version, spec, state, waves,"
	    " soak_s, health_window_s, device_timeout_s, fail_percent,"
	    " min_sample, rate_per_min, concurrency, auto_rollback, created,"
	    " updated, created_by) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?,"
	    " ?, ?, ?, ?, ?, ?, ?, ?)",
	    "ssssiiiiiiiidiis", r->id, r->bundle, r->version, r->spec,
	    (int64_t)r->n_waves, r->soak_s, r->health_window_s,
	    r->device_timeout_s, r->fail_percent, r->min_sample,
	    r->rate_per_min, r->concurrency, (int)r->auto_rollback, now, now,
	    r->created_by);
}

static int insert_plan(struct srv_store_be *s, const struct srv_rollout *r,
		       int64_t now, struct fl_error *err)
{
	int rc = 0;

	for (size_t k = 0; !rc && k < r->n_waves; k++)
		rc = db_run(s, NULL, err,
			    "INSERT INTO rollout_waves (rollout, wave, stop,"
			    " devices, started) VALUES (?, ?, ?, ?, ?)",
			    "sisii", r->id, (int64_t)k, r->wave_stops[k],
			    (int64_t)r->wave_sizes[k], k ? (int64_t)0 : now);
	for (size_t i = 0; !rc && i < r->n_devices; i++)
		rc =
		    db_run(s, NULL, err,
			   "INSERT INTO rollout_devices (rollout, device, wave,"
			   " pos, state, updated) VALUES (?, ?, ?, ?,"
			   " 'pending', ?)",
			   "ssiii", r->id, r->devices[i],
			   (int64_t)r->device_wave[i], (int64_t)i, now);
	return rc;
}

int sql_rollout_add(struct srv_store_be *s, const struct srv_rollout *r,
		    int64_t now, struct srv_strv *ret_busy,
		    struct fl_error *err)
{
	struct srv_strv busy = {0};
	struct db_first row = {0};
	char *detail =
	    fl_xasprintf("%zu devices in %zu waves", r->n_devices, r->n_waves);
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc &&
	    !db_query_first(s, &row, NULL,
			    "SELECT 1 FROM rollouts WHERE id = ?", "s", r->id))
		rc = fl_fail(err, FL_ECONFLICT, "rollout %s exists", r->id);
	if (!rc)
		rc = busy_list(s, r->devices, r->n_devices, &busy, err);
	if (!rc && busy.n)
		rc = busy_fail(&busy, err);
	if (!rc)
		rc = insert_rollout(s, r, now, err);
	if (!rc)
		rc = insert_plan(s, r, now, err);
	if (!rc)
		rc = db_rollout_event(s, r->id, "created", NULL, -1, detail,
				      now, err);
	if (!rc)
		rc = db_rollout_event(s, r->id, "wave-started", NULL, 0, NULL,
				      now, err);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	db_first_free(&row);
	free(detail);
	if (ret_busy)
		*ret_busy = busy;
	else
		srv_strv_free(&busy);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Reading                                                            */
/* ------------------------------------------------------------------ */

#define ROLLOUT_COLS                                                           \
	"r.id, r.bundle, r.version, r.state, r.reason, r.spec,"                \
	" r.created_by, r.wave, r.waves, r.soak_s, r.health_window_s,"         \
	" r.device_timeout_s, r.fail_percent, r.min_sample,"                   \
	" r.rate_per_min, r.concurrency, r.auto_rollback, r.tripped,"          \
	" r.base_failed, r.base_finished, r.soak_until, r.last_command,"       \
	" r.created, r.updated, r.finished,"                                   \
	" (SELECT count(*) FROM rollout_devices WHERE rollout = r.id)"

static int rollout_row(struct db_row *st, void *ctx)
{
	struct srv_rollout_row *r = DB_PUSH((struct srv_rollout_list *)ctx);
	char **strs[] = {&r->id,     &r->bundle, &r->version,	&r->state,
			 &r->reason, &r->spec,	 &r->created_by};
	int64_t *ints[] = {&r->wave,
			   &r->n_waves,
			   &r->soak_s,
			   &r->health_window_s,
			   &r->device_timeout_s,
			   &r->fail_percent,
			   &r->min_sample,
			   &r->rate_per_min,
			   &r->concurrency};
	int c = 0;

	for (size_t i = 0; i < FL_ARRAY_SIZE(strs); i++)
		*strs[i] = db_col_str(st, c++);
	for (size_t i = 0; i < FL_ARRAY_SIZE(ints); i++)
		*ints[i] = db_col_int(st, c++);
	r->auto_rollback = db_col_int(st, c++) != 0;
	r->tripped = db_col_int(st, c++) != 0;
	r->base_failed = db_col_int(st, c++);
	r->base_finished = db_col_int(st, c++);
	r->soak_until = db_col_int(st, c++);
	r->last_command = db_col_int(st, c++);
	r->created = db_col_int(st, c++);
	r->updated = db_col_int(st, c++);
	r->finished = db_col_int(st, c++);
	r->devices = db_col_int(st, c);
	return 0;
}

int sql_rollout_get(struct srv_store_be *s, const char *id,
		    struct srv_rollout_row *ret, struct fl_error *err)
{
	struct srv_rollout_list l = {0};
	int rc;

	rc = db_lquery_rows(s, rollout_row, &l, err,
			    "SELECT " ROLLOUT_COLS " FROM rollouts r"
			    " WHERE r.id = ?",
			    "s", id);
	if (!rc && l.n == 0)
		rc = fl_fail(err, FL_ENOTFOUND, "no rollout '%s'", id);
	return DB_GIVE_FIRST(rc, l, ret, srv_rollout_list_free);
}

int sql_rollout_list(struct srv_store_be *s, bool active, int limit,
		     struct srv_rollout_list *ret, struct fl_error *err)
{
	struct srv_rollout_list l = {0};
	int rc;

	if (active)
		rc = db_lquery_rows(
		    s, rollout_row, &l, err,
		    "SELECT " ROLLOUT_COLS " FROM rollouts r"
		    " WHERE r.state IN ('running', 'paused',"
		    " 'rolling-back') ORDER BY r.created, r.rowid"
		    " LIMIT ?",
		    "d", limit > 0 ? limit : 100);
	else
		rc = db_lquery_rows(s, rollout_row, &l, err,
				    "SELECT " ROLLOUT_COLS " FROM rollouts r"
				    " ORDER BY r.created DESC, r.rowid DESC"
				    " LIMIT ?",
				    "d", limit > 0 ? limit : 100);
	return DB_GIVE(rc, l, ret, srv_rollout_list_free);
}

static int wave_row(struct db_row *st, void *ctx)
{
	struct srv_rollout_wave_row *w =
	    DB_PUSH((struct srv_rollout_wave_list *)ctx);

	w->index = db_col_int(st, 0);
	w->stop = db_col_str(st, 1);
	w->devices = db_col_int(st, 2);
	w->started = db_col_int(st, 3);
	w->done = db_col_int(st, 4);
	return 0;
}

int sql_rollout_waves(struct srv_store_be *s, const char *id,
		      struct srv_rollout_wave_list *ret, struct fl_error *err)
{
	struct srv_rollout_wave_list l = {0};
	int rc;

	rc = db_lquery_rows(
	    s, wave_row, &l, err,
	    "SELECT wave, stop, devices, started, done"
	    " FROM rollout_waves WHERE rollout = ? ORDER BY wave",
	    "s", id);
	return DB_GIVE(rc, l, ret, srv_rollout_wave_list_free);
}

static int count_row(struct db_row *st, void *ctx)
{
	struct srv_rollout_count *c =
	    DB_PUSH((struct srv_rollout_count_list *)ctx);

	c->wave = db_col_int(st, 0);
	c->state = db_col_str(st, 1);
	c->n = db_col_int(st, 2);
	return 0;
}

int sql_rollout_counts(struct srv_store_be *s, const char *id,
		       struct srv_rollout_count_list *ret, struct fl_error *err)
{
	struct srv_rollout_count_list l = {0};
	int rc;

	rc = db_lquery_rows(s, count_row, &l, err,
			    "SELECT wave, state, count(*) FROM rollout_devices"
			    " WHERE rollout = ? GROUP BY wave, state"
			    " ORDER BY wave, state",
			    "s", id);
	return DB_GIVE(rc, l, ret, srv_rollout_count_list_free);
}

static int device_row(struct db_row *st, void *ctx)
{
	struct srv_rollout_device_row *d =
	    DB_PUSH((struct srv_rollout_device_list *)ctx);

	d->device = db_col_str(st, 0);
	d->state = db_col_str(st, 1);
	d->job = db_col_str(st, 2);
	d->rollback_job = db_col_str(st, 3);
	d->from_version = db_col_str(st, 4);
	d->reason = db_col_str(st, 5);
	d->wave = db_col_int(st, 6);
	d->pos = db_col_int(st, 7);
	d->commanded = db_col_int(st, 8);
	d->sent = db_col_int(st, 9);
	d->sends = db_col_int(st, 10);
	d->finished = db_col_int(st, 11);
	d->updated = db_col_int(st, 12);
	return 0;
}

#define DEVICE_COLS                                                            \
	"device, state, job, rollback_job, from_version, reason, wave, pos,"   \
	" commanded, sent, sends, finished, updated"

int sql_rollout_devices(struct srv_store_be *s, const char *id, bool failures,
			int limit, struct srv_rollout_device_list *ret,
			struct fl_error *err)
{
	struct srv_rollout_device_list l = {0};
	int rc;

	if (failures)
		rc =
		    db_lquery_rows(s, device_row, &l, err,
				   "SELECT " DEVICE_COLS " FROM rollout_devices"
				   " WHERE rollout = ? AND state IN ('failed',"
				   " 'rollback-failed')"
				   " ORDER BY updated DESC, pos LIMIT ?",
				   "sd", id, limit > 0 ? limit : INT_MAX);
	else
		rc =
		    db_lquery_rows(s, device_row, &l, err,
				   "SELECT " DEVICE_COLS " FROM rollout_devices"
				   " WHERE rollout = ? ORDER BY pos LIMIT ?",
				   "sd", id, limit > 0 ? limit : INT_MAX);
	return DB_GIVE(rc, l, ret, srv_rollout_device_list_free);
}

static int event_row(struct db_row *st, void *ctx)
{
	struct srv_rollout_event *e =
	    DB_PUSH((struct srv_rollout_event_list *)ctx);

	e->id = db_col_int(st, 0);
	e->time = db_col_int(st, 1);
	e->wave = db_col_int_or(st, 2, -1);
	e->kind = db_col_str(st, 3);
	e->device = db_col_str(st, 4);
	e->detail = db_col_str(st, 5);
	return 0;
}

int sql_rollout_events(struct srv_store_be *s, const char *id, int limit,
		       struct srv_rollout_event_list *ret, struct fl_error *err)
{
	struct srv_rollout_event_list l = {0};
	int rc;

	rc = db_lquery_rows(s, event_row, &l, err,
			    "SELECT id, ts, wave, kind, device, detail"
			    " FROM rollout_events WHERE rollout = ?"
			    " ORDER BY id DESC LIMIT ?",
			    "sd", id, limit > 0 ? limit : 20);
	return DB_GIVE(rc, l, ret, srv_rollout_event_list_free);
}

/* Labels as "k=v" lines (LABELS_*) into @d. */
static void labels_parse(const char *text, struct srv_device_row *d)
{
	const char *p = text;

	while (p && *p) {
		size_t len = strcspn(p, "\n");
		const char *eq = memchr(p, '=', len);

		if (eq) {
			struct srv_label *l = DB_PUSH(&d->labels);

			l->key = fl_xstrndup(p, (size_t)(eq - p));
			l->value =
			    fl_xstrndup(eq + 1, len - (size_t)(eq - p) - 1);
		}
		p += len + (p[len] == '\n');
	}
}

static int candidate_row(struct db_row *st, void *ctx)
{
	struct srv_device_row *d = DB_PUSH((struct srv_device_list *)ctx);

	d->id = db_col_str(st, 0);
	d->group = db_col_str(st, 1);
	d->state = db_col_str(st, 2);
	d->online = db_col_int(st, 3) != 0;
	d->firmware = db_col_str(st, 4);
	d->health = db_col_str(st, 5);
	labels_parse(db_col_text(st, 6), d);
	return 0;
}

/* A device's labels as "k=v" lines in key order: the aggregate is the
 * one statement text the two dialects spell differently. */
#define LABELS_SQLITE "group_concat(key || '=' || value, char(10))"
#define LABELS_PG "string_agg(key || '=' || value, chr(10) ORDER BY key)"
#define CANDIDATE_SELECT(LABELS)                                               \
	"SELECT d.id, d.grp, d.state, d.online, d.firmware, d.health,"         \
	" (SELECT " LABELS " FROM"                                             \
	"  (SELECT key, value FROM device_labels WHERE device = d.id"          \
	"   ORDER BY key) AS l) FROM devices d"
#define CANDIDATES_ALL(LABELS)                                                 \
	CANDIDATE_SELECT(LABELS)                                               \
	" WHERE d.state = 'active'"                                            \
	" AND (?1 IS NULL OR d.grp = ?1) ORDER BY d.id"
#define CANDIDATES_ONE(LABELS) CANDIDATE_SELECT(LABELS) " WHERE d.id = ?"

int sql_rollout_candidates(struct srv_store_be *s, const char *group,
			   const char *const *ids, size_t n_ids,
			   struct srv_device_list *ret, struct fl_error *err)
{
	struct srv_device_list l = {0};
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (!ids)
		rc = db_query_rows(s, candidate_row, &l, err,
				   DB_DIALECT(s, CANDIDATES_ALL(LABELS_SQLITE),
					      CANDIDATES_ALL(LABELS_PG)),
				   "s", group);
	for (size_t i = 0; ids && !rc && i < n_ids; i++)
		rc = db_query_rows(s, candidate_row, &l, err,
				   DB_DIALECT(s, CANDIDATES_ONE(LABELS_SQLITE),
					      CANDIDATES_ONE(LABELS_PG)),
				   "s", ids[i]);
	pthread_mutex_unlock(&s->lock);
	return DB_GIVE(rc, l, ret, srv_device_list_free);
}

/* ------------------------------------------------------------------ */
/* Operators' moves                                                   */
/* ------------------------------------------------------------------ */

/* Lock held, in a transaction: the gate's counts now. */
static int gate_counts(struct srv_store_be *s, const char *id,
		       int64_t *ret_failed, int64_t *ret_finished,
		       struct fl_error *err)
{
	struct db_first row = {0};
	int rc;

	rc = db_query_first(
	    s, &row, err,
	    "SELECT count(*) FILTER (WHERE state = 'failed'),"
	    " count(*) FILTER (WHERE state IN ('failed',"
	    " 'healthy')) FROM rollout_devices WHERE rollout = ?",
	    "s", id);
	*ret_failed = row.i[0];
	*ret_finished = row.i[1];
	db_first_free(&row);
	return rc;
}

static int do_resume(struct srv_store_be *s, const char *id, bool tripped,
		     int64_t now, struct fl_error *err)
{
	int64_t failed = 0, finished = 0;
	int rc = 0;

	if (tripped)
		rc = gate_counts(s, id, &failed, &finished, err);
	if (!rc && tripped)
		rc = db_run(s, NULL, err,
			    "UPDATE rollouts SET base_failed = ?,"
			    " base_finished = ? WHERE id = ?",
			    "iis", failed, finished, id);
	if (!rc)
		rc = db_run(
		    s, NULL, err,
		    "UPDATE rollouts SET state = 'running', reason = NULL,"
		    " tripped = 0, updated = ? WHERE id = ?",
		    "is", now, id);
	return rc;
}

static int do_abort(struct srv_store_be *s, const char *id, const char *actor,
		    int64_t now, struct srv_strv *cancelled,
		    struct fl_error *err)
{
	char *why =
	    fl_xasprintf("cancelled by %s (rollout %s aborted)", actor, id);
	char *reason = fl_xasprintf("aborted by %s", actor);
	int rc;

	rc = db_query_rows(s, db_row_strv, cancelled, err,
			   "SELECT j.id FROM rollout_devices rd JOIN jobs j"
			   " ON j.id = rd.job WHERE rd.rollout = ?"
			   " AND rd.state = 'commanded' AND j.final = 0"
			   " ORDER BY rd.pos",
			   "s", id);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "UPDATE jobs SET state = 'cancelled', final = 1,"
			    " stage = state, reason = ?, updated = ? WHERE"
			    " final = 0 AND id IN (SELECT job FROM"
			    " rollout_devices WHERE rollout = ? AND"
			    " state = 'commanded')",
			    "sis", why, now, id);
	if (!rc)
		rc = db_run(
		    s, NULL, err,
		    "UPDATE rollout_devices SET state = CASE state"
		    " WHEN 'commanded' THEN 'cancelled' ELSE 'skipped' END,"
		    " reason = 'the rollout was aborted', updated = ?"
		    " WHERE rollout = ? AND state IN ('commanded',"
		    " 'pending')",
		    "is", now, id);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "UPDATE rollout_devices SET active = 0"
			    " WHERE rollout = ? AND active = 1",
			    "s", id);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "UPDATE rollouts SET state = 'aborted', reason = ?,"
			    " updated = ?2, finished = ?2 WHERE id = ?3",
			    "sis", reason, now, id);
	free(reason);
	free(why);
	return rc;
}

/* From completed: the rows that may need a rollback hold their devices
 * again, unless another rollout has one of them. */
static int reactivate(struct srv_store_be *s, const char *id,
		      struct fl_error *err)
{
	struct srv_strv busy = {0};
	int rc;

	rc =
	    db_query_rows(s, db_row_strv, &busy, err,
			  "SELECT rd.device || ' (rollout ' || o.rollout || ')'"
			  " FROM rollout_devices rd JOIN rollout_devices o"
			  " ON o.device = rd.device AND o.active = 1"
			  " AND o.rollout != rd.rollout WHERE rd.rollout = ?"
			  " AND rd.state IN ('updated', 'healthy', 'failed')"
			  " ORDER BY rd.pos",
			  "s", id);
	if (!rc && busy.n)
		rc = busy_fail(&busy, err);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "UPDATE rollout_devices SET active = 1"
			    " WHERE rollout = ? AND state IN ('updated',"
			    " 'healthy', 'failed')",
			    "s", id);
	srv_strv_free(&busy);
	return rc;
}

static int do_move(struct srv_store_be *s, const char *id, int action,
		   enum fl_rollout_state from, bool tripped, const char *actor,
		   int64_t now, struct srv_strv *cancelled,
		   struct fl_error *err)
{
	char *why;
	int rc = 0;

	switch (action) {
	case FL_ROLLOUT_PAUSE:
		why = fl_xasprintf("paused by %s", actor);
		rc = db_run(s, NULL, err,
			    "UPDATE rollouts SET state = 'paused', reason = ?,"
			    " updated = ? WHERE id = ?",
			    "sis", why, now, id);
		free(why);
		return rc;
	case FL_ROLLOUT_RESUME:
		return do_resume(s, id, tripped, now, err);
	case FL_ROLLOUT_ABORT:
		return do_abort(s, id, actor, now, cancelled, err);
	default:
		if (from == FL_ROLLOUT_COMPLETED)
			rc = reactivate(s, id, err);
		why = fl_xasprintf("rollback by %s", actor);
		if (!rc)
			rc =
			    db_run(s, NULL, err,
				   "UPDATE rollouts SET state = 'rolling-back',"
				   " reason = ?, tripped = 0, finished = 0,"
				   " updated = ? WHERE id = ?",
				   "sis", why, now, id);
		free(why);
		return rc;
	}
}

int sql_rollout_action(struct srv_store_be *s, const char *id, int action,
		       const char *actor, int64_t now,
		       struct srv_strv *ret_cancelled, struct fl_error *err)
{
	struct srv_strv cancelled = {0};
	struct db_first row = {0};
	enum fl_rollout_state from = 0;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc && db_query_first(s, &row, NULL,
				  "SELECT state, tripped FROM rollouts"
				  " WHERE id = ?",
				  "s", id))
		rc = fl_fail(err, FL_ENOTFOUND, "no rollout '%s'", id);
	if (!rc)
		from = fl_rollout_state_parse(row.t[0]);
	if (!rc && !fl_rollout_action_target(from, action))
		rc = fl_fail(err, FL_ECONFLICT, "rollout %s is %s: cannot %s",
			     id, row.t[0], fl_rollout_action_name(action));
	if (!rc)
		rc = do_move(s, id, action, from, row.i[1] != 0, actor, now,
			     &cancelled, err);
	if (!rc)
		rc = db_rollout_event(s, id, fl_rollout_action_name(action),
				      NULL, -1, actor, now, err);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	db_first_free(&row);
	if (!rc && ret_cancelled)
		*ret_cancelled = cancelled;
	else
		srv_strv_free(&cancelled);
	return rc;
}
