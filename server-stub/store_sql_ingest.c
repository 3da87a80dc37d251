/* SPDX-License-Identifier: MIT */
/*
 * What devices report over MQTT, applied in batches (server-stub/ingest.c
 * feeds it): presence, status, events with their jobs, shadow reports
 * and telemetry (store_sql_telemetry.c).  Every
 * statement is idempotent, so a message the broker delivers twice, or a
 * final event the device publishes again until fleetd confirms it,
 * changes nothing the second time.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs.h"
#include "proto.h"
#include "store.h"
#include "store_sql.h"
#include "util.h"

static int changed(int n, struct srv_ingest_item *it)
{
	it->result = n ? SRV_INGEST_STORED : SRV_INGEST_REJECTED;
	return 0;
}

/* A reported column: kept when the parameter is NULL (not reported),
 * cleared when it is "" (reported as null), else set (store.h). */
/* clang-format off */
#define KEEP_OR(p, col) \
	"CASE WHEN " p " IS NULL THEN " col " ELSE nullif(" p ", '') END"

static const char presence_sql[] =
    "UPDATE devices SET online = ?1, last_seen = ?2,"
    " agent = coalesce(?3, agent),"
    " firmware = " KEEP_OR("?4", "firmware")
    " WHERE id = ?5 AND state = 'active'";

static const char status_sql[] =
    "UPDATE devices SET last_seen = ?1,"
    " firmware = " KEEP_OR("?2", "firmware") ","
    " slot = " KEEP_OR("?3", "slot") ","
    " health = " KEEP_OR("?4", "health")
    " WHERE id = ?5 AND state = 'active'";
/* clang-format on */

static int presence(struct srv_store_be *s, int64_t now,
		    struct srv_ingest_item *it, struct fl_error *err)
{
	int n = 0, rc;

	rc = db_run(s, &n, err, presence_sql, "disss", (int)it->f.online, now,
		    it->f.agent, it->f.firmware, it->device);
	return rc ? rc : changed(n, it);
}

static int status(struct srv_store_be *s, int64_t now,
		  struct srv_ingest_item *it, struct fl_error *err)
{
	int n = 0, rc;

	rc = db_run(s, &n, err, status_sql, "issss", now, it->f.firmware,
		    it->f.slot, it->f.health, it->device);
	return rc ? rc : changed(n, it);
}

/* One integer column: the row's value into *(int64_t *)ctx. */
static int int_row(struct db_row *st, void *ctx)
{
	*(int64_t *)ctx = db_col_int(st, 0);
	return 0;
}

/* What an event needs to know first: its device (active) and the job
 * it names, as the state machine needs it. */
struct event_ctx {
	bool device; /* known and active */
	int64_t last_seq;
	bool job, final;
	char id[65], type[16], state[32];
	int64_t seq;
};

static void copy_col(struct db_row *st, int i, char *buf, size_t len)
{
	const char *v = db_col_text(st, i);

	fl_strlcpy(buf, v ? v : "", len);
}

static int event_ctx_row(struct db_row *st, void *ctx)
{
	struct event_ctx *e = ctx;

	e->device = true;
	e->last_seq = db_col_int(st, 0);
	e->job = !db_col_null(st, 1);
	copy_col(st, 1, e->id, sizeof(e->id));
	copy_col(st, 2, e->type, sizeof(e->type));
	copy_col(st, 3, e->state, sizeof(e->state));
	e->seq = db_col_int(st, 4);
	e->final = db_col_int(st, 5) != 0;
	return 0;
}

/*
 * One query for both: the device's last seq (e->device false for an
 * unknown or decommissioned device) and the job the event names, by
 * "job" or by "cmd", the command that started it (rotations: the
 * agent's events carry no job id).
 */
static int event_lookup(struct srv_store_be *s,
			const struct srv_ingest_item *it, struct event_ctx *e,
			struct fl_error *err)
{
	const char *job = it->f.job;
	const char *cmd = job ? NULL : it->f.cmd;

	*e = (struct event_ctx){0};
	return db_query_rows(
	    s, event_ctx_row, e, err,
	    "SELECT d.last_seq, j.id, j.type, j.state, j.seq,"
	    " j.final FROM devices d LEFT JOIN jobs j"
	    " ON j.device = d.id AND (j.id = ?2 OR j.command = ?3)"
	    " WHERE d.id = ?1 AND d.state = 'active' LIMIT 1",
	    "sss", it->device, job, cmd);
}

/*
 * A batch's view of its devices and jobs.  Their rows are written once
 * per batch, when it ends, not once per event: the batch holds the
 * store's lock, so nothing else writes them meanwhile and the view is
 * exact.
 */
struct mark {
	const char *key; /* device or job id; NULL: a free slot */
	/* a device */
	int64_t last_seq; /* after the batch's events so far */
	const char *text; /* the newest event, if newer than the row's */
	/* a job: the state machine's view, and the move to write */
	struct event_ctx job;
	bool moved;
	const char *stage, *reason, *from_version;
	int64_t bytes, total;
};

struct marks {
	struct mark *v;
	size_t cap; /* a power of two, at least twice the batch */
};

static void marks_init(struct marks *m, size_t n)
{
	m->cap = 16;
	while (m->cap < 2 * n)
		m->cap *= 2;
	m->v = fl_xcalloc(m->cap, sizeof(*m->v));
}

/* @key's mark; *ret_new when it was not marked yet (then only its key
 * is set: the caller fills it and may repoint the key). */
static struct mark *mark_get(struct marks *m, const char *key, bool *ret_new)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	size_t i;

	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	*ret_new = false;
	for (i = h & (m->cap - 1); m->v[i].key; i = (i + 1) & (m->cap - 1))
		if (strcmp(m->v[i].key, key) == 0)
			return &m->v[i];
	*ret_new = true;
	m->v[i] = (struct mark){.key = key};
	return &m->v[i];
}

/* The event against its device's newest: it->gap, and whether it is
 * newer (then it becomes the device's last event). */
static bool device_mark(struct marks *m, int64_t seq, const char *text,
			const struct event_ctx *e, struct srv_ingest_item *it)
{
	bool fresh;
	struct mark *d = mark_get(m, it->device, &fresh);
	int64_t last;

	if (fresh)
		d->last_seq = e->last_seq;
	last = d->last_seq;

	it->gap = seq > last + 1 ? seq - last - 1 : 0;
	if (seq <= last)
		return false;
	d->last_seq = seq;
	d->text = text;
	return true;
}

/* Write every marked device: last seen now, and its newest event. */
static int devices_flush(struct srv_store_be *s, const struct marks *m,
			 int64_t now, struct fl_error *err)
{
	int rc = 0;

	for (size_t i = 0; i < m->cap && !rc; i++) {
		const struct mark *d = &m->v[i];

		if (!d->key)
			continue;
		/* never back: another fleetd on the database (a replica)
		 * may have stored a newer event of the device meanwhile */
		if (d->text)
			rc =
			    db_run(s, NULL, err,
				   "UPDATE devices SET last_event = CASE WHEN"
				   " last_seq < ?3 THEN ?1 ELSE last_event END,"
				   " last_seen = ?2, last_seq = CASE WHEN"
				   " last_seq < ?3 THEN ?3 ELSE last_seq END"
				   " WHERE id = ?4",
				   "siis", d->text, now, d->last_seq, d->key);
		else
			rc = db_run(s, NULL, err,
				    "UPDATE devices SET last_seen = ?"
				    " WHERE id = ?",
				    "is", now, d->key);
	}
	return rc;
}

/* What becomes of @state, an event @seq of job @j (jobs.c rules).  An
 * event naming another job type is refused; an unknown "type" is not
 * judged (fleetd never required one). */
static enum srv_ingest_result judge(const struct event_ctx *j, int64_t seq,
				    const char *state, const char *type)
{
	if (j->final)
		return SRV_INGEST_REJECTED;
	if (srv_job_type_known(type) && !fl_streq(type, j->type))
		return SRV_INGEST_ILLEGAL;
	if (!fl_job_state_name_final(state) && seq <= j->seq)
		return SRV_INGEST_STALE;
	return srv_job_transition_ok(j->type, j->state, state)
		   ? SRV_INGEST_STORED
		   : SRV_INGEST_ILLEGAL;
}

/* The batch's view of job @e (as the lookup read it, the first time). */
static struct mark *job_mark(struct marks *jobs, const struct event_ctx *e)
{
	bool fresh;
	struct mark *j = mark_get(jobs, e->id, &fresh);

	if (fresh) {
		j->job = *e;
		j->key = j->job.id;
		j->bytes = j->total = -1;
	}
	return j;
}

/* A legal event moves the job in the batch's view (its row is written
 * by jobs_flush): the last event's state, stage and reason, the newest
 * bytes and total given, the first from_version, the highest seq. */
static void job_moved(struct mark *j, int64_t seq, const char *state,
		      const struct srv_ingest_fields *f)
{
	fl_strlcpy(j->job.state, state, sizeof(j->job.state));
	j->job.seq = seq > j->job.seq ? seq : j->job.seq;
	j->job.final |= fl_job_state_name_final(state);
	j->stage = f->stage;
	j->reason = f->reason;
	if (f->bytes >= 0)
		j->bytes = f->bytes;
	if (f->total >= 0)
		j->total = f->total;
	if (!j->from_version)
		j->from_version = f->from_version;
	j->moved = true;
}

#define JOB_MOVE                                                               \
	"UPDATE jobs SET state = ?1, stage = ?2, reason = ?3,"                 \
	" bytes = coalesce(?4, bytes), total = coalesce(?5, total),"           \
	" from_version = coalesce(from_version, ?6), updated = ?7,"            \
	" seq = CASE WHEN seq > ?8 THEN seq ELSE ?8 END"

/* Write every job the batch moved. */
static int jobs_flush(struct srv_store_be *s, const struct marks *m,
		      int64_t now, struct fl_error *err)
{
	int rc = 0;

	for (size_t i = 0; i < m->cap && !rc; i++) {
		const struct mark *j = &m->v[i];

		if (!j->key || !j->moved)
			continue;
		/* "final" (indexed: jobs_open) is written only when it is.
		 * Alone, the batch's view is exact and these conditions
		 * hold; a replica's writer may find the row moved on by
		 * another's (final, or a newer seq), and leaves it. */
		rc = db_run(
		    s, NULL, err,
		    j->job.final ? JOB_MOVE ", final = 1 WHERE id = ?9"
					    " AND final = 0"
				 : JOB_MOVE " WHERE id = ?9 AND final = 0"
					    " AND seq < ?8",
		    "sssnnsiis", j->job.state, j->stage, j->reason, j->bytes,
		    j->total, j->from_version, now, j->job.seq, j->job.id);
	}
	return rc;
}

/*
 * An event of a job: recorded once per (job, seq) and moving the job
 * when the job's state machine allows it (judge, against the batch's
 * view of the job); a repeat is a duplicate, the rest is refused.  The
 * common case (a new, legal event) costs the history insert; only a
 * refused one asks whether it is a repeat.
 */
static int job_event(struct srv_store_be *s, int64_t now, int64_t seq,
		     struct mark *j, const char *text,
		     struct srv_ingest_item *it, struct fl_error *err)
{
	const char *state = it->f.state;
	int64_t seen = 0;
	int n = 0, rc;

	if (!state) {
		it->result = SRV_INGEST_REJECTED;
		return 0;
	}
	it->result = judge(&j->job, seq, state, it->f.type);
	if (it->result == SRV_INGEST_STORED) {
		rc =
		    db_run(s, &n, err,
			   "INSERT INTO job_events (job, seq, ts, state, event)"
			   " VALUES (?, ?, ?, ?, ?)"
			   " ON CONFLICT (job, seq) DO NOTHING",
			   "siiss", j->job.id, seq, now, state, text);
		if (!rc && n == 1)
			job_moved(j, seq, state, &it->f);
		if (rc || n == 1)
			return rc;
	}
	rc = db_query_rows(s, int_row, &seen, err,
			   "SELECT 1 FROM job_events WHERE job = ? AND seq = ?",
			   "si", j->job.id, seq);
	if (!rc && seen)
		it->result = SRV_INGEST_DUPLICATE;
	return rc;
}

static int event(struct srv_store_be *s, int64_t now, struct marks *m,
		 struct marks *jobs, struct srv_ingest_item *it,
		 struct fl_error *err)
{
	int64_t seq = it->f.seq;
	const char *text = it->text;
	struct event_ctx e;
	bool newer;
	int rc;

	rc = event_lookup(s, it, &e, err);
	if (rc || !e.device) {
		it->result = SRV_INGEST_REJECTED;
		return rc;
	}
	newer = device_mark(m, seq, text, &e, it);
	if (e.job)
		return job_event(s, now, seq, job_mark(jobs, &e), text, it,
				 err);
	if (it->f.job)
		it->result = SRV_INGEST_REJECTED; /* not this device's */
	else
		it->result = newer ? SRV_INGEST_STORED : SRV_INGEST_DUPLICATE;
	return 0;
}

int sql_ingest(struct srv_store_be *s, struct srv_ingest_item *items, size_t n,
	       struct fl_error *err)
{
	int64_t now_ms = srv_telemetry_now_ms(), now = now_ms / 1000;
	struct marks m, jobs;
	int rc;

	marks_init(&m, n);
	marks_init(&jobs, n);
	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	for (size_t i = 0; i < n && !rc; i++) {
		struct srv_ingest_item *it = &items[i];

		it->gap = 0;
		switch (it->kind) {
		case SRV_INGEST_PRESENCE:
			rc = presence(s, now, it, err);
			break;
		case SRV_INGEST_STATUS:
			rc = status(s, now, it, err);
			break;
		case SRV_INGEST_EVENT:
			rc = event(s, now, &m, &jobs, it, err);
			break;
		case SRV_INGEST_SHADOW:
			rc = db_shadow_report(s, now, it, err);
			break;
		case SRV_INGEST_TELEMETRY:
			rc = db_telemetry(s, now_ms, it, err);
			break;
		}
	}
	if (!rc)
		rc = db_telemetry_sweep(s, now_ms, err);
	if (!rc)
		rc = devices_flush(s, &m, now, err);
	if (!rc)
		rc = jobs_flush(s, &jobs, now, err);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	free(m.v);
	free(jobs.v);
	return rc;
}
