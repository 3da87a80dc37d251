/* SPDX-License-Identifier: MIT */
/*
 * What devices report over MQTT, applied in batches (server-stub/ingest.c
 * feeds it): presence, status, and events with their jobs.  Every
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
#include "store_sqlite.h"
#include "util.h"

static int changed(int n, struct srv_ingest_item *it)
{
	it->result = n ? SRV_INGEST_STORED : SRV_INGEST_REJECTED;
	return 0;
}

static int presence(struct srv_store_be *s, int64_t now,
		    struct srv_ingest_item *it, struct fl_error *err)
{
	int n = 0, rc;

	rc = db_run(s, &n, err,
		    "UPDATE devices SET online = ?, last_seen = ?,"
		    " agent = coalesce(?, agent), firmware = coalesce(?, firmware)"
		    " WHERE id = ? AND state = 'active'",
		    "disss", (int)it->f.online,
		    now, it->f.agent, it->f.firmware,
		    it->device);
	return rc ? rc : changed(n, it);
}

static int status(struct srv_store_be *s, int64_t now,
		  struct srv_ingest_item *it, struct fl_error *err)
{
	int n = 0, rc;

	rc = db_run(s, &n, err,
		    "UPDATE devices SET last_seen = ?,"
		    " firmware = coalesce(?, firmware), slot = coalesce(?, slot),"
		    " health = coalesce(?, health) WHERE id = ? AND state = 'active'",
		    "issss", now, it->f.firmware,
		    it->f.slot, it->f.health,
		    it->device);
	return rc ? rc : changed(n, it);
}

/* One integer column: the row's value into *(int64_t *)ctx. */
static int int_row(sqlite3_stmt *st, void *ctx)
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

static void copy_col(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const char *v = (const char *)sqlite3_column_text(st, i);

	fl_strlcpy(buf, v ? v : "", len);
}

static int event_ctx_row(sqlite3_stmt *st, void *ctx)
{
	struct event_ctx *e = ctx;

	e->device = true;
	e->last_seq = db_col_int(st, 0);
	e->job = sqlite3_column_type(st, 1) != SQLITE_NULL;
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
	return db_query_rows(s, event_ctx_row, e, err,
			     "SELECT d.last_seq, j.id, j.type, j.state, j.seq,"
			     " j.final FROM devices d LEFT JOIN jobs j"
			     " ON j.device = d.id AND (j.id = ?2 OR j.command = ?3)"
			     " WHERE d.id = ?1 AND d.state = 'active' LIMIT 1",
			     "sss", it->device, job, cmd);
}

/*
 * A batch's view of its devices' newest events.  The device rows are
 * written once per device when the batch ends, not once per event: the
 * batch holds the store's lock, so nothing else writes them meanwhile.
 */
struct dev_mark {
	const char *device; /* NULL: a free slot */
	int64_t last_seq;   /* after the batch's events so far */
	const char *text;   /* the newest event, if newer than the row's */
};

struct marks {
	struct dev_mark *v;
	size_t cap; /* a power of two, at least twice the batch */
};

static void marks_init(struct marks *m, size_t n)
{
	m->cap = 16;
	while (m->cap < 2 * n)
		m->cap *= 2;
	m->v = fl_xcalloc(m->cap, sizeof(*m->v));
}

/* @device's mark, made from the row's @row_seq when it has none yet. */
static struct dev_mark *mark_get(struct marks *m, const char *device,
				 int64_t row_seq)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	size_t i;

	for (const char *p = device; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	for (i = h & (m->cap - 1); m->v[i].device; i = (i + 1) & (m->cap - 1))
		if (strcmp(m->v[i].device, device) == 0)
			return &m->v[i];
	m->v[i] = (struct dev_mark){.device = device, .last_seq = row_seq};
	return &m->v[i];
}

/* The event against its device's newest: it->gap, and whether it is
 * newer (then it becomes the device's last event). */
static bool device_mark(struct marks *m, int64_t seq, const char *text,
			const struct event_ctx *e, struct srv_ingest_item *it)
{
	struct dev_mark *d = mark_get(m, it->device, e->last_seq);
	int64_t last = d->last_seq;

	it->gap = seq > last + 1 ? seq - last - 1 : 0;
	if (seq <= last)
		return false;
	d->last_seq = seq;
	d->text = text;
	return true;
}

/* Write every marked device: last seen now, and its newest event. */
static int marks_flush(struct srv_store_be *s, const struct marks *m,
		       int64_t now, struct fl_error *err)
{
	int rc = 0;

	for (size_t i = 0; i < m->cap && !rc; i++) {
		const struct dev_mark *d = &m->v[i];

		if (!d->device)
			continue;
		if (d->text)
			rc = db_run(s, NULL, err,
				    "UPDATE devices SET last_event = ?,"
				    " last_seen = ?, last_seq = ? WHERE id = ?",
				    "siis", d->text, now, d->last_seq,
				    d->device);
		else
			rc = db_run(s, NULL, err,
				    "UPDATE devices SET last_seen = ?"
				    " WHERE id = ?",
				    "is", now, d->device);
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

#define JOB_MOVE                                                           \
	"UPDATE jobs SET state = ?, stage = ?, reason = ?,"                \
	" bytes = coalesce(?, bytes), total = coalesce(?, total),"         \
	" from_version = coalesce(from_version, ?), updated = ?,"          \
	" seq = max(seq, ?)"

/* Record the event in its job's history (once per seq: *ret_new) and
 * move the job. */
static int job_move(struct srv_store_be *s, int64_t now, int64_t seq,
		    const char *job, const char *state, const char *text,
		    const struct srv_ingest_item *it, bool *ret_new,
		    struct fl_error *err)
{
	int n = 0, rc;

	rc = db_run(s, &n, err,
		    "INSERT INTO job_events (job, seq, ts, state, event)"
		    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (job, seq) DO NOTHING",
		    "siiss", job, seq, now, state, text);
	*ret_new = n == 1;
	if (rc || n != 1)
		return rc;
	/* "final" (indexed: jobs_open) is written only when it changes */
	return db_run(s, NULL, err,
		      fl_job_state_name_final(state)
			      ? JOB_MOVE ", final = 1 WHERE id = ?"
			      : JOB_MOVE " WHERE id = ?",
		      "sssnnsiis", state, it->f.stage,
		      it->f.reason, it->f.bytes,
		      it->f.total,
		      it->f.from_version, now, seq, job);
}

/*
 * An event of a job: recorded once per (job, seq) and moving the job
 * when the job's state machine allows it (judge); a repeat is a
 * duplicate, the rest is refused.  The common case (a new, legal event)
 * costs the insert and the job's update; only a refused one asks whether
 * it is a repeat.
 */
static int job_event(struct srv_store_be *s, int64_t now, int64_t seq,
		     const struct event_ctx *j, const char *text,
		     struct srv_ingest_item *it, struct fl_error *err)
{
	const char *state = it->f.state;
	int64_t seen = 0;
	bool fresh = false;
	int rc;

	if (!state) {
		it->result = SRV_INGEST_REJECTED;
		return 0;
	}
	it->result = judge(j, seq, state, it->f.type);
	if (it->result == SRV_INGEST_STORED) {
		rc = job_move(s, now, seq, j->id, state, text, it, &fresh, err);
		if (rc || fresh)
			return rc;
	}
	rc = db_query_rows(s, int_row, &seen, err,
			   "SELECT 1 FROM job_events WHERE job = ? AND seq = ?",
			   "si", j->id, seq);
	if (!rc && seen)
		it->result = SRV_INGEST_DUPLICATE;
	return rc;
}

static int event(struct srv_store_be *s, int64_t now, struct marks *m,
		 struct srv_ingest_item *it, struct fl_error *err)
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
		return job_event(s, now, seq, &e, text, it, err);
	if (it->f.job)
		it->result = SRV_INGEST_REJECTED; /* not this device's */
	else
		it->result = newer ? SRV_INGEST_STORED : SRV_INGEST_DUPLICATE;
	return 0;
}

int sq_ingest(struct srv_store_be *s, struct srv_ingest_item *items,
	      size_t n, struct fl_error *err)
{
	int64_t now = (int64_t)time(NULL);
	struct marks m;
	int rc;

	marks_init(&m, n);
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
			rc = event(s, now, &m, it, err);
			break;
		}
	}
	if (!rc)
		rc = marks_flush(s, &m, now, err);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	free(m.v);
	return rc;
}
