/* SPDX-License-Identifier: MIT */
/*
 * What devices report over MQTT, applied in batches (server-stub/ingest.c
 * feeds it): presence, status, events with their jobs, shadow reports
 * and telemetry (store_sql_telemetry.c).  Every
 * statement is idempotent, so a message the broker delivers twice, or a
 * final event the device publishes again until fleetd confirms it,
 * changes nothing the second time.
 *
 * A batch costs a few statements per table, not a few per message (a
 * round trip each on PostgreSQL): the devices and jobs its events name
 * are read together (batch_lookup), new events are inserted and devices
 * and jobs updated with one multi-row statement per kind at its end.  On
 * PostgreSQL the lookup locks the batch's device rows, in id order, so
 * that replicas sharing the database apply one device's messages one
 * batch at a time and each batch's view stays exact.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs.h"
#include "log.h"
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

/* A batch_lookup row: the event_ctx of the item in column 0 (the first
 * row of an item wins). */
static int lookup_row(struct db_row *st, void *ctx)
{
	struct event_ctx *e = (struct event_ctx *)ctx + db_col_int(st, 0);

	if (e->device)
		return 0;
	e->device = true;
	e->last_seq = db_col_int(st, 1);
	e->job = !db_col_null(st, 2);
	copy_col(st, 2, e->id, sizeof(e->id));
	copy_col(st, 3, e->type, sizeof(e->type));
	copy_col(st, 4, e->state, sizeof(e->state));
	e->seq = db_col_int(st, 5);
	e->final = db_col_int(st, 6) != 0;
	return 0;
}

/* Multi-row statements take their rows in chunks of 64, 16, 4 or 1, so
 * that a few texts per statement are prepared and kept. */
#define CHUNK_MAX 64

static size_t chunk(size_t left)
{
	size_t c = CHUNK_MAX;

	while (c > left)
		c /= 4;
	return c;
}

/* Run the multi-row statement @head VALUES... @tail for the rows of
 * @cols parameters each in @a, in chunks; *@ret_changes (may be NULL)
 * the rows changed. */
static int run_chunked(struct srv_store_be *s, const char *head,
		       const char *tail, int cols, const struct db_args *a,
		       int (*row)(struct db_row *, void *), void *ctx,
		       int *ret_changes, struct fl_error *err)
{
	size_t rows = a->n / (size_t)cols, done = 0;
	int rc = 0, total = 0;

	while (done < rows && !rc) {
		size_t n = chunk(rows - done);
		char *sql = db_values_sql(head, cols, n, tail);
		struct db_args c = {a->v + done * (size_t)cols,
				    n * (size_t)cols};
		int changed = 0;

		rc = db_args_rows(s, row, ctx, &changed, err, sql, &c);
		total += changed;
		done += n;
		free(sql);
	}
	if (ret_changes)
		*ret_changes = total;
	return rc;
}

static int by_device(const void *a, const void *b)
{
	const struct srv_ingest_item *const *x = a, *const *y = b;

	return strcmp((*x)->device, (*y)->device);
}

/*
 * PostgreSQL: lock the rows of the devices in @order (sorted by id) in
 * that order, so that a replica sharing the database waits for this
 * batch before it reads or writes them (none can deadlock with another
 * on these locks: both take them in id order).
 */
static int lock_devices(struct srv_store_be *s,
			const struct srv_ingest_item **order, size_t n,
			struct fl_error *err)
{
	struct db_args a = {0};
	int rc;

	for (size_t i = 0; i < n; i++)
		if (!i || strcmp(order[i]->device, order[i - 1]->device))
			db_args_str(&a, order[i]->device);
	rc = run_chunked(s, "SELECT d.id FROM (VALUES",
			 ") AS k JOIN devices d ON d.id = k.column1"
			 " ORDER BY d.id FOR UPDATE OF d",
			 1, &a, NULL, NULL, NULL, err);
	db_args_free(&a);
	return rc;
}

/*
 * What every event needs to know first, read for the whole batch: its
 * device (active) and the job it names, by "job" or by
 * "cmd", the command that started it (rotations: the agent's events
 * carry no job id).  ctx[i] for @items[i].
 */
static int batch_lookup(struct srv_store_be *s, struct srv_ingest_item *items,
			size_t n, struct event_ctx *ctx, struct fl_error *err)
{
	const struct srv_ingest_item **order = fl_xcalloc(n, sizeof(*order));
	struct db_args a = {0};
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		order[i] = &items[i];
	qsort(order, n, sizeof(*order), by_device);
	if (s->drv->dialect == DB_PG)
		rc = lock_devices(s, order, n, err);
	for (size_t i = 0; i < n; i++) {
		const struct srv_ingest_item *it = order[i];

		if (it->kind != SRV_INGEST_EVENT)
			continue;
		db_args_int(&a, 'i', it - items);
		db_args_str(&a, it->device);
		db_args_str(&a, it->f.job);
		db_args_str(&a, it->f.job ? NULL : it->f.cmd);
	}
	if (!rc)
		rc = run_chunked(
		    s,
		    "SELECT k.column1, d.last_seq, j.id, j.type, j.state,"
		    " j.seq, j.final FROM (VALUES",
		    ") AS k JOIN devices d ON d.id = k.column2"
		    " AND d.state = 'active' LEFT JOIN jobs j"
		    " ON j.device = d.id AND (j.id = k.column3"
		    " OR j.command = k.column4)",
		    4, &a, lookup_row, ctx, NULL, err);
	db_args_free(&a);
	free(order);
	return rc;
}

/*
 * A batch's view of its devices and jobs.  Their rows are written once
 * per batch, when it ends, not once per event: the batch holds the
 * store's lock, and on PostgreSQL its devices' rows (lock_devices), so
 * no other batch writes them meanwhile and the view is exact.
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

/* Write every marked device: last seen now, and its newest event
 * (never an older one over a newer: see jobs_flush_some). */
static int devices_flush(struct srv_store_be *s, const struct marks *m,
			 int64_t now, struct fl_error *err)
{
	struct db_args a = {0};
	int rc;

	for (size_t i = 0; i < m->cap; i++) {
		const struct mark *d = &m->v[i];

		if (!d->key)
			continue;
		db_args_str(&a, d->key);
		db_args_str(&a, d->text);
		db_args_int(&a, 'n', d->text ? d->last_seq : -1);
		db_args_int(&a, 'i', now);
	}
	rc = run_chunked(s,
			 "UPDATE devices SET last_seen = v.column4,"
			 " last_event = CASE WHEN v.column3 > devices.last_seq"
			 " THEN v.column2 ELSE devices.last_event END,"
			 " last_seq = CASE WHEN v.column3 > devices.last_seq"
			 " THEN v.column3 ELSE devices.last_seq END"
			 " FROM (VALUES",
			 ") AS v WHERE devices.id = v.column1", 4, &a, NULL,
			 NULL, NULL, err);
	db_args_free(&a);
	return rc;
}

/* What becomes of @state, an event @seq of job @j (jobs.c rules).  An
 * event naming another job type is refused; an unknown "type" is not
 * judged (fleetd never required one).  A progress event older than the
 * job's newest, even of a final job, is history arriving late (a
 * device publishes again what fleetd missed: docs/protocol.md "ack"). */
static enum srv_ingest_result judge(const struct event_ctx *j, int64_t seq,
				    const char *state, const char *type)
{
	bool older = !fl_job_state_name_final(state) && seq <= j->seq;

	if (j->final && !older)
		return SRV_INGEST_REJECTED;
	if (srv_job_type_known(type) && !fl_streq(type, j->type))
		return SRV_INGEST_ILLEGAL;
	if (older)
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
	"UPDATE jobs SET updated = v.column9, state = v.column2,"              \
	" stage = v.column3,"                                                  \
	" reason = v.column4, bytes = coalesce(v.column5, jobs.bytes),"        \
	" total = coalesce(v.column6, jobs.total),"                            \
	" from_version = coalesce(jobs.from_version, v.column7),"              \
	" seq = CASE WHEN jobs.seq > v.column8 THEN jobs.seq"                  \
	" ELSE v.column8 END"
#define FROM_V " FROM (VALUES"

/* Write the jobs the batch moved (to a final state when @final: only
 * then is the indexed column "final" written, see jobs_open). */
static int jobs_flush_some(struct srv_store_be *s, const struct marks *m,
			   int64_t now, bool final, struct fl_error *err)
{
	struct db_args a = {0};
	int rc;

	for (size_t i = 0; i < m->cap; i++) {
		const struct mark *j = &m->v[i];

		if (!j->key || !j->moved || j->job.final != final)
			continue;
		db_args_str(&a, j->job.id);
		db_args_str(&a, j->job.state);
		db_args_str(&a, j->stage);
		db_args_str(&a, j->reason);
		db_args_int(&a, 'n', j->bytes);
		db_args_int(&a, 'n', j->total);
		db_args_str(&a, j->from_version);
		db_args_int(&a, 'i', j->job.seq);
		db_args_int(&a, 'i', now);
	}
	/* Alone, or with replicas behind lock_devices, the batch's view is
	 * exact and these conditions hold; they keep a job from moving back
	 * should a row have moved on (final, or at a newer seq) anyway. */
	rc = run_chunked(
	    s, final ? JOB_MOVE ", final = 1" FROM_V : JOB_MOVE FROM_V,
	    final ? ") AS v WHERE jobs.id = v.column1"
		    " AND jobs.final = 0"
		  : ") AS v WHERE jobs.id = v.column1"
		    " AND jobs.final = 0 AND jobs.seq < v.column8",
	    9, &a, NULL, NULL, NULL, err);
	db_args_free(&a);
	return rc;
}

/* A batch: its view of the devices and jobs it touches, what
 * batch_lookup read for each item, the events it stores. */
struct batch {
	int64_t now, now_ms;
	struct marks devices, jobs;
	struct event_ctx *ctx; /* ctx[i] for item i */
	struct db_args events; /* job_events rows: EVENT_COLS each */
};

#define EVENT_COLS 5

static void event_add(struct batch *b, const char *job, int64_t seq,
		      const char *state, const char *text)
{
	db_args_str(&b->events, job);
	db_args_int(&b->events, 'i', seq);
	db_args_int(&b->events, 'i', b->now);
	db_args_str(&b->events, state);
	db_args_str(&b->events, text);
}

static bool event_pending(const struct batch *b, const char *job, int64_t seq)
{
	for (size_t i = 0; i < b->events.n; i += EVENT_COLS)
		if (b->events.v[i + 1].i == seq &&
		    strcmp(b->events.v[i].s, job) == 0)
			return true;
	return false;
}

/* Insert the batch's new events. */
static int events_flush(struct srv_store_be *s, struct batch *b,
			struct fl_error *err)
{
	int n = 0, rc;

	rc = run_chunked(s,
			 "INSERT INTO job_events (job, seq, ts, state, event)"
			 " VALUES",
			 " ON CONFLICT (job, seq) DO NOTHING", EVENT_COLS,
			 &b->events, NULL, NULL, &n, err);
	if (!rc && (size_t)n != b->events.n / EVENT_COLS)
		fl_warn("ingest: %zu new job events, %d stored",
			b->events.n / EVENT_COLS, n);
	return rc;
}

/* Insert one event now (not newer than its job, so maybe a repeat):
 * 1 if it was new. */
static int event_insert(struct srv_store_be *s, const struct batch *b,
			const struct mark *j, const struct srv_ingest_item *it,
			int *ret_n, struct fl_error *err)
{
	return db_run(s, ret_n, err,
		      "INSERT INTO job_events (job, seq, ts, state, event)"
		      " VALUES (?, ?, ?, ?, ?)"
		      " ON CONFLICT (job, seq) DO NOTHING",
		      "siiss", j->job.id, it->f.seq, b->now, it->f.state,
		      it->text);
}

/*
 * An event of a job: recorded once per (job, seq) and moving the job
 * when the job's state machine allows it (judge, against the batch's
 * view of the job); an older one is recorded without moving it; a
 * repeat is a duplicate, the rest is refused.  A legal event newer than
 * any of its job cannot be a repeat (a job's seq is its events'
 * highest): it is kept for events_flush.
 */
static int job_event(struct srv_store_be *s, struct batch *b, struct mark *j,
		     struct srv_ingest_item *it, struct fl_error *err)
{
	const char *state = it->f.state;
	int64_t seq = it->f.seq, seen = 0;
	int n = 0, rc;

	if (!state) {
		it->result = SRV_INGEST_REJECTED;
		return 0;
	}
	it->result = judge(&j->job, seq, state, it->f.type);
	if (it->result == SRV_INGEST_STORED && seq > j->job.seq) {
		event_add(b, j->job.id, seq, state, it->text);
		job_moved(j, seq, state, &it->f);
		return 0;
	}
	if (event_pending(b, j->job.id, seq)) {
		it->result = SRV_INGEST_DUPLICATE;
		return 0;
	}
	if (it->result == SRV_INGEST_STORED || /* a final, older */
	    it->result == SRV_INGEST_STALE) {
		rc = event_insert(s, b, j, it, &n, err);
		if (!rc && n == 1 && it->result == SRV_INGEST_STORED)
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

/* A job_events row of the range missing_of asked for: clear its bit. */
static int history_row(struct db_row *st, void *ctx)
{
	struct srv_ingest_item *it = ctx;
	int64_t seq = db_col_int(st, 0);

	for (size_t i = 0; i < it->f.n_history; i++)
		if (it->f.history[i] == seq)
			it->missing &= ~(UINT32_C(1) << i);
	return 0;
}

/* A final event's history against its job's events (all of the batch
 * written by now): it->missing. */
static int missing_of(struct srv_store_be *s, const struct event_ctx *e,
		      struct srv_ingest_item *it, struct fl_error *err)
{
	int64_t lo = INT64_MAX, hi = 0;

	it->missing = 0;
	if (!e->job || !it->f.n_history || !it->result ||
	    !fl_job_state_name_final(it->f.state))
		return 0;
	for (size_t i = 0; i < it->f.n_history; i++) {
		int64_t h = it->f.history[i];

		it->missing |= UINT32_C(1) << i;
		lo = h < lo ? h : lo;
		hi = h > hi ? h : hi;
	}
	return db_query_rows(s, history_row, it, err,
			     "SELECT seq FROM job_events"
			     " WHERE job = ? AND seq BETWEEN ? AND ?",
			     "sii", e->id, lo, hi);
}

static int event(struct srv_store_be *s, struct batch *b,
		 struct srv_ingest_item *it, const struct event_ctx *e,
		 struct fl_error *err)
{
	bool newer;

	if (!e->device) {
		it->result = SRV_INGEST_REJECTED;
		return 0;
	}
	newer = device_mark(&b->devices, it->f.seq, it->text, e, it);
	if (e->job)
		return job_event(s, b, job_mark(&b->jobs, e), it, err);
	if (it->f.job)
		it->result = SRV_INGEST_REJECTED; /* not this device's */
	else
		it->result = newer ? SRV_INGEST_STORED : SRV_INGEST_DUPLICATE;
	return 0;
}

static int item(struct srv_store_be *s, struct batch *b, size_t i,
		struct srv_ingest_item *it, struct fl_error *err)
{
	it->gap = 0;
	switch (it->kind) {
	case SRV_INGEST_PRESENCE:
		return presence(s, b->now, it, err);
	case SRV_INGEST_STATUS:
		return status(s, b->now, it, err);
	case SRV_INGEST_EVENT:
		return event(s, b, it, &b->ctx[i], err);
	case SRV_INGEST_SHADOW:
		return db_shadow_report(s, b->now, it, err);
	case SRV_INGEST_TELEMETRY:
		return db_telemetry(s, b->now_ms, it, err);
	}
	return 0;
}

/* The batch's writes, in one transaction (caller holds the lock). */
static int apply(struct srv_store_be *s, struct batch *b,
		 struct srv_ingest_item *items, size_t n, struct fl_error *err)
{
	int rc = batch_lookup(s, items, n, b->ctx, err);

	for (size_t i = 0; i < n && !rc; i++)
		rc = item(s, b, i, &items[i], err);
	if (!rc)
		rc = db_telemetry_sweep(s, b->now_ms, err);
	if (!rc)
		rc = events_flush(s, b, err);
	for (size_t i = 0; i < n && !rc; i++)
		if (items[i].kind == SRV_INGEST_EVENT)
			rc = missing_of(s, &b->ctx[i], &items[i], err);
	if (!rc)
		rc = devices_flush(s, &b->devices, b->now, err);
	if (!rc)
		rc = jobs_flush_some(s, &b->jobs, b->now, false, err);
	if (!rc)
		rc = jobs_flush_some(s, &b->jobs, b->now, true, err);
	return rc;
}

int sql_ingest(struct srv_store_be *s, struct srv_ingest_item *items, size_t n,
	       struct fl_error *err)
{
	struct batch b = {.now_ms = fl_wall_ms()};
	int rc;

	b.now = b.now_ms / 1000;
	b.ctx = fl_xcalloc(n ? n : 1, sizeof(*b.ctx));
	marks_init(&b.devices, n);
	marks_init(&b.jobs, n);
	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = apply(s, &b, items, n, err);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	free(b.devices.v);
	free(b.jobs.v);
	free(b.ctx);
	db_args_free(&b.events);
	return rc;
}
