/* SPDX-License-Identifier: MIT */
/*
 * The rollout engine's writes in SQLite (store_rollouts.h): its lease,
 * what it watches, and its decisions, each one transaction written
 * before fleetd acts on it.  Guards on the states the engine saw keep a
 * decision from happening twice.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_sql.h"
#include "util.h"

/* Lock held: remember that this handle holds lease @name as @holder. */
static void fence_set(struct srv_store_be *s, const char *name,
		      const char *holder)
{
	if (fl_streq(s->fence_name, name) && fl_streq(s->fence_holder, holder))
		return;
	free(s->fence_name);
	free(s->fence_holder);
	s->fence_name = fl_xstrdup(name);
	s->fence_holder = fl_xstrdup(holder);
}

/*
 * One statement takes or renews the lease, so two fleetds that both saw
 * it expire cannot both get it: the update applies only where the row
 * is @holder's or has run out (PostgreSQL re-checks that condition on
 * the row it locked).
 */
int sql_lease_take(struct srv_store_be *s, const char *name, const char *holder,
		   int64_t now, int64_t ttl, char **ret_holder,
		   struct fl_error *err)
{
	struct db_first row = {0};
	int rc, changes = 0;

	pthread_mutex_lock(&s->lock);
	rc = db_run(s, &changes, err,
		    "INSERT INTO leases (name, holder, expires)"
		    " VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
		    " holder = excluded.holder, expires = excluded.expires"
		    " WHERE leases.holder = excluded.holder"
		    " OR leases.expires <= ?",
		    "ssii", name, holder, now + ttl, now);
	if (!rc && changes == 0) {
		db_query_first(s, &row, NULL,
			       "SELECT holder, expires FROM leases"
			       " WHERE name = ?",
			       "s", name);
		rc = fl_fail(err, FL_ECONFLICT,
			     "lease %s is held by %s until %lld", name,
			     row.t[0] ? row.t[0] : "?", (long long)row.i[1]);
		if (ret_holder)
			*ret_holder = fl_xstrdup(row.t[0] ? row.t[0] : "?");
	}
	if (!rc)
		fence_set(s, name, holder);
	pthread_mutex_unlock(&s->lock);
	db_first_free(&row);
	return rc;
}

/*
 * Lock held: BEGIN an engine decision (end it with db_end either way), which
 * goes on only while this handle still holds the lease it took last (a fleetd
 * paused past its lease, then continued, must not act on what it saw before).
 * On PostgreSQL the lease row is read FOR SHARE: a takeover waits until this
 * decision has committed, and then sees it.
 */
static int engine_begin(struct srv_store_be *s, struct fl_error *err)
{
	struct db_first row = {0};
	int rc = db_begin(s, err);

	if (rc || !s->fence_name)
		return rc;
	db_query_first(s, &row, NULL,
		       DB_DIALECT(s,
				  "SELECT holder FROM leases"
				  " WHERE name = ?",
				  "SELECT holder FROM leases"
				  " WHERE name = ? FOR SHARE"),
		       "s", s->fence_name);
	if (!fl_streq(row.t[0], s->fence_holder))
		rc = fl_fail(err, FL_ECONFLICT,
			     "lease %s is now %s's: decision dropped",
			     s->fence_name, row.t[0] ? row.t[0] : "nobody");
	db_first_free(&row);
	return rc; /* the caller's db_end rolls back */
}

int sql_rollout_pending(struct srv_store_be *s, const char *id, int64_t wave,
			int limit, struct srv_strv *ret, struct fl_error *err)
{
	struct srv_strv l = {0};
	int rc;

	rc = db_lquery_rows(s, db_row_strv, &l, err,
			    "SELECT device FROM rollout_devices WHERE"
			    " rollout = ? AND state = 'pending' AND wave = ?"
			    " ORDER BY pos LIMIT ?",
			    "sid", id, wave, limit);
	return DB_GIVE(rc, l, ret, srv_strv_free);
}

static int watch_row(struct db_row *st, void *ctx)
{
	struct srv_rollout_watch_row *w =
	    DB_PUSH((struct srv_rollout_watch_list *)ctx);
	int c = 0;

	w->device = db_col_str(st, c++);
	w->state = db_col_str(st, c++);
	w->reason = db_col_str(st, c++);
	w->wave = db_col_int(st, c++);
	w->pos = db_col_int(st, c++);
	w->commanded = db_col_int(st, c++);
	w->sent = db_col_int(st, c++);
	w->sends = db_col_int(st, c++);
	w->finished = db_col_int(st, c++);
	w->offline_since = db_col_int(st, c++);
	w->cancel_sent = db_col_int(st, c++) != 0;
	w->from_version = db_col_str(st, c++);
	w->job = db_col_str(st, c++);
	w->command = db_col_str(st, c++);
	w->job_state = db_col_str(st, c++);
	w->job_stage = db_col_str(st, c++);
	w->job_reason = db_col_str(st, c++);
	w->job_final = db_col_int(st, c++) != 0;
	w->job_seq = db_col_int(st, c++);
	w->rb_job = db_col_str(st, c++);
	w->rb_command = db_col_str(st, c++);
	w->rb_state = db_col_str(st, c++);
	w->rb_stage = db_col_str(st, c++);
	w->rb_reason = db_col_str(st, c++);
	w->rb_final = db_col_int(st, c++) != 0;
	w->rb_seq = db_col_int(st, c++);
	w->dev_state = db_col_str(st, c++);
	w->dev_firmware = db_col_str(st, c++);
	w->dev_health = db_col_str(st, c++);
	w->dev_online = db_col_int(st, c) != 0;
	return 0;
}

#define WATCH_SELECT                                                           \
	"SELECT rd.device, rd.state, rd.reason, rd.wave, rd.pos,"              \
	" rd.commanded, rd.sent, rd.sends, rd.finished, rd.offline_since,"     \
	" rd.cancel_sent, rd.from_version,"                                    \
	" j.id, j.command, j.state, j.stage, j.reason, j.final, j.seq,"        \
	" rb.id, rb.command, rb.state, rb.stage, rb.reason, rb.final,"         \
	" rb.seq, d.state, d.firmware, d.health, d.online"                     \
	" FROM rollout_devices rd"                                             \
	" LEFT JOIN jobs j ON j.id = rd.job"                                   \
	" LEFT JOIN jobs rb ON rb.id = rd.rollback_job"                        \
	" LEFT JOIN devices d ON d.id = rd.device"                             \
	" JOIN rollouts r ON r.id = rd.rollout WHERE rd.rollout = ?1"

/*
 * A healthy row the health watch has news about (rollout_rules.c
 * watch_fails: each way it fails, or its offline_since to set or clear).
 * The others would be judged "no change" again each tick: at 10,000
 * devices a wave's thousands of healthy rows, every second.
 */
#define HEALTHY_NEWS                                                           \
	"(coalesce(d.state, '') <> 'active' OR d.health = 'failed'"            \
	" OR (d.firmware IS NOT NULL AND d.firmware <> r.version)"             \
	" OR coalesce(d.online, 0) = 0 OR rd.offline_since <> 0)"

static int by_pos(const void *a, const void *b)
{
	const struct srv_rollout_watch_row *x = a, *y = b;

	return (x->pos > y->pos) - (x->pos < y->pos);
}

/*
 * Two index searches (rollout, state[, wave]), sorted here: one WHERE
 * with an OR, or an ORDER BY pos, made SQLite walk every row of the
 * rollout by pos and join each (perf at 10,000 devices: 27 % of
 * fleetd's CPU).
 */
int sql_rollout_watch(struct srv_store_be *s, const char *id,
		      int64_t healthy_wave, bool all,
		      struct srv_rollout_watch_list *ret, struct fl_error *err)
{
	struct srv_rollout_watch_list l = {0};
	int rc;

	if (all)
		rc = db_lquery_rows(s, watch_row, &l, err, WATCH_SELECT, "s",
				    id);
	else
		rc = db_lquery_rows(
		    s, watch_row, &l, err,
		    WATCH_SELECT " AND rd.state IN ('commanded', 'updated',"
				 " 'rolling-back') UNION ALL " WATCH_SELECT
				 " AND rd.state = 'healthy' AND rd.wave = ?2"
				 " AND " HEALTHY_NEWS,
		    "si", id, healthy_wave);
	if (!rc && l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), by_pos);
	return DB_GIVE(rc, l, ret, srv_rollout_watch_list_free);
}

static int apply_one(struct srv_store_be *s, const char *id,
		     const struct srv_rollout_change *c, int64_t now,
		     size_t *applied, struct fl_error *err)
{
	int n = 0, rc;

	rc = db_run(s, &n, err,
		    "UPDATE rollout_devices SET state = coalesce(?3, state),"
		    " reason = coalesce(?4, reason),"
		    " finished = CASE WHEN ?5 <> 0 THEN ?7 ELSE finished END,"
		    " offline_since = CASE WHEN ?6 < 0 THEN offline_since"
		    " ELSE ?6 END, cancel_sent = CASE WHEN ?8 > cancel_sent"
		    " THEN ?8 ELSE cancel_sent END,"
		    " updated = ?7 WHERE rollout = ?1 AND device = ?2"
		    " AND state = ?9",
		    "ssssdiids", id, c->device, c->to, c->reason,
		    (int)c->finished, c->offline_since, now,
		    (int)c->cancel_sent, c->from);
	if (!rc && n && c->event)
		rc = db_run(s, NULL, err,
			    "INSERT INTO rollout_events (rollout, ts, kind,"
			    " device, wave, detail) VALUES (?1, ?2, ?3, ?4,"
			    " (SELECT wave FROM rollout_devices WHERE"
			    " rollout = ?1 AND device = ?4), ?5)",
			    "sisss", id, now, c->event, c->device, c->reason);
	*applied += (size_t)n;
	return rc;
}

int sql_rollout_apply(struct srv_store_be *s, const char *id,
		      const struct srv_rollout_change *c, size_t n, int64_t now,
		      size_t *ret_applied, struct fl_error *err)
{
	size_t applied = 0;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = engine_begin(s, err);
	for (size_t i = 0; !rc && i < n; i++)
		rc = apply_one(s, id, &c[i], now, &applied, err);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	if (!rc && ret_applied)
		*ret_applied = applied;
	return rc;
}

/* The device's open job of another kind: record why the row is left
 * out (skipped, or rollback-failed). */
static int busy_row(struct srv_store_be *s, const char *id,
		    const struct srv_rollout_cmd *c, bool rollback,
		    const char *busy, int64_t now, struct fl_error *err)
{
	char *why = fl_xasprintf("busy with job %s", busy);
	int rc;

	rc = db_run(s, NULL, err,
		    "UPDATE rollout_devices SET state = ?, reason = ?,"
		    " updated = ? WHERE rollout = ? AND device = ?",
		    "ssiss", rollback ? "rollback-failed" : "skipped", why, now,
		    id, c->device);
	if (!rc)
		rc = db_rollout_event(s, id,
				      rollback ? "rollback-failed" : "skipped",
				      c->device, -1, why, now, err);
	free(why);
	return rc;
}

/* Lock held, in a transaction: command one device, or say why not. */
static int command_one(struct srv_store_be *s, const char *id,
		       struct srv_rollout_cmd *c, int64_t now,
		       struct fl_error *err)
{
	bool rollback = fl_streq(c->job->type, "rollback");
	struct fl_error e = {0};
	struct db_first row = {0};
	char *busy = NULL, *detail;
	int rc;

	rc = db_query_first(s, &row, NULL,
			    "SELECT state, rollback_job FROM rollout_devices"
			    " WHERE rollout = ? AND device = ?",
			    "ss", id, c->device);
	c->result = FL_ENOTFOUND;
	if (rc ||
	    (rollback ? row.t[1] != NULL || !(fl_streq(row.t[0], "updated") ||
					      fl_streq(row.t[0], "healthy") ||
					      fl_streq(row.t[0], "failed"))
		      : !fl_streq(row.t[0], "pending"))) {
		db_first_free(&row);
		return 0;
	}
	db_first_free(&row);
	c->result = db_job_insert(s, c->job, now, &busy, &e);
	if (c->result == FL_ECONFLICT && busy)
		rc = busy_row(s, id, c, rollback, busy, now, err);
	else if (c->result)
		rc = fl_fail(err, c->result, "%s", e.msg);
	else
		rc = db_run(s, NULL, err,
			    rollback
				? "UPDATE rollout_devices SET state ="
				  " 'rolling-back', rollback_job = ?3,"
				  " commanded = ?4, sent = 0, sends = 0,"
				  " cancel_sent = 0, updated = ?4"
				  " WHERE rollout = ?1 AND device = ?2"
				: "UPDATE rollout_devices SET state ="
				  " 'commanded', job = ?3, from_version ="
				  " (SELECT from_version FROM jobs WHERE"
				  " id = ?3), reason = NULL, commanded = ?4,"
				  " sent = 0, sends = 0, cancel_sent = 0,"
				  " updated = ?4 WHERE rollout = ?1"
				  " AND device = ?2",
			    "sssi", id, c->device, c->job->id, now);
	free(busy);
	if (rc || c->result)
		return rc;
	detail =
	    fl_xasprintf("job %s, command %s", c->job->id, c->job->command);
	rc = db_rollout_event(s, id,
			      rollback ? "rollback-commanded" : "commanded",
			      c->device, -1, detail, now, err);
	free(detail);
	return rc;
}

int sql_rollout_command(struct srv_store_be *s, const char *id,
			struct srv_rollout_cmd *cmds, size_t n, int64_t now,
			int64_t clock, struct fl_error *err)
{
	const char *want = n && fl_streq(cmds[0].job->type, "rollback")
			       ? "rolling-back"
			       : "running";
	struct db_first row = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = engine_begin(s, err);
	if (!rc &&
	    db_query_first(s, &row, NULL,
			   "SELECT state FROM rollouts WHERE id = ?", "s", id))
		rc = fl_fail(err, FL_ENOTFOUND, "no rollout '%s'", id);
	if (!rc && !fl_streq(row.t[0], want))
		rc = fl_fail(err, FL_ECONFLICT, "rollout %s is %s, not %s", id,
			     row.t[0], want);
	for (size_t i = 0; !rc && i < n; i++)
		rc = command_one(s, id, &cmds[i], now, err);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "UPDATE rollouts SET last_command = ?, updated = ?"
			    " WHERE id = ?",
			    "iis", clock, now, id);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	db_first_free(&row);
	return rc;
}

int sql_rollout_sent(struct srv_store_be *s, const char *id,
		     const char *const *devices, size_t n, int64_t now,
		     struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = engine_begin(s, err);
	for (size_t i = 0; !rc && i < n; i++)
		rc = db_run(s, NULL, err,
			    "UPDATE rollout_devices SET sent = ?, sends ="
			    " sends + 1 WHERE rollout = ? AND device = ?",
			    "iss", now, id, devices[i]);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Lock held, in a transaction: what a step changes besides the row. */
static int step_rows(struct srv_store_be *s, const char *id,
		     const struct srv_rollout_step *st, int64_t now,
		     struct fl_error *err)
{
	char *why = fl_xasprintf("not started: the rollout is %s",
				 st->to ? st->to : "over");
	int rc = 0;

	if (st->wave >= 0)
		rc = db_run(s, NULL, err,
			    "UPDATE rollout_waves SET started = ? WHERE"
			    " rollout = ? AND wave = ? AND started = 0",
			    "isi", now, id, st->wave);
	if (!rc && st->wave_done >= 0)
		rc = db_run(s, NULL, err,
			    "UPDATE rollout_waves SET done = ? WHERE"
			    " rollout = ? AND wave = ? AND done = 0",
			    "isi", now, id, st->wave_done);
	if (!rc && st->skip_pending)
		rc = db_run(s, NULL, err,
			    "UPDATE rollout_devices SET state = 'skipped',"
			    " reason = ?, updated = ? WHERE rollout = ?"
			    " AND state = 'pending'",
			    "sis", why, now, id);
	if (!rc && st->release)
		rc = db_run(s, NULL, err,
			    "UPDATE rollout_devices SET active = 0"
			    " WHERE rollout = ? AND active = 1",
			    "s", id);
	free(why);
	return rc;
}

/* Lock held, in a transaction: the log and the audit entry of a step. */
static int step_log(struct srv_store_be *s, const char *id,
		    const struct srv_rollout_step *st, int64_t now,
		    struct fl_error *err)
{
	char *path = fl_xasprintf("/api/v1/rollouts/%s/%s", id, st->event);
	int rc;

	rc = db_rollout_event(s, id, st->event, NULL, st->wave, st->detail, now,
			      err);
	if (!rc)
		rc = db_audit(s, st->actor ? st->actor : "fleetd", "ENGINE",
			      path, 200, now, err);
	free(path);
	return rc;
}

int sql_rollout_step(struct srv_store_be *s, const char *id,
		     const struct srv_rollout_step *st, int64_t now,
		     struct fl_error *err)
{
	struct db_first row = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = engine_begin(s, err);
	if (!rc &&
	    db_query_first(s, &row, NULL,
			   "SELECT state FROM rollouts WHERE id = ?", "s", id))
		rc = fl_fail(err, FL_ENOTFOUND, "no rollout '%s'", id);
	if (!rc && st->from && !fl_streq(row.t[0], st->from))
		rc = fl_fail(err, FL_ECONFLICT, "rollout %s is %s, not %s", id,
			     row.t[0], st->from);
	if (!rc)
		rc = db_run(
		    s, NULL, err,
		    "UPDATE rollouts SET state = coalesce(?2, state),"
		    " reason = CASE WHEN ?3 IS NULL THEN reason"
		    " ELSE nullif(?3, '') END,"
		    " wave = CASE WHEN ?4 < 0 THEN wave ELSE ?4 END,"
		    " soak_until = CASE WHEN ?5 < 0 THEN soak_until ELSE ?5 "
		    "END,"
		    " tripped = CASE WHEN ?6 < 0 THEN tripped ELSE ?6 END,"
		    " finished = CASE WHEN ?7 <> 0 THEN ?8 ELSE finished END,"
		    " updated = ?8 WHERE id = ?1",
		    "sssiiddi", id, st->to, st->reason, st->wave,
		    st->soak_until, st->tripped, (int)st->release, now);
	if (!rc)
		rc = step_rows(s, id, st, now, err);
	if (!rc && st->event)
		rc = step_log(s, id, st, now, err);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	db_first_free(&row);
	return rc;
}
