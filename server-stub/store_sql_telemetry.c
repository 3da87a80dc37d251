/* SPDX-License-Identifier: MIT */
/*
 * Device telemetry in SQLite (store.h; the wire rules: telemetry.h): a
 * message's points stored once by its device's seq high-water mark, and
 * each device's recent window trimmed as its points arrive.  The state
 * row counts the device's points and knows its oldest sample time, so a
 * trim deletes only what is over the window, through the (device, ts)
 * index: its work is bounded by what the batch added.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_sql.h"
#include "util.h"

/* Silent devices trimmed per sweep, and how often a sweep runs. */
#define SWEEP_DEVICES 32
#define SWEEP_EVERY_MS 60000

/* A device's telemetry stream as stored (zeros: none yet). */
struct tstate {
	bool device; /* known and active */
	bool reenrolled;
	int64_t seq, dropped, points, oldest;
};

static int state_row(struct db_row *st, void *ctx)
{
	struct tstate *t = ctx;

	*t = (struct tstate){.device = true,
			     .seq = db_col_int(st, 0),
			     .reenrolled = db_col_int(st, 1) != 0,
			     .dropped = db_col_int(st, 2),
			     .points = db_col_int(st, 3),
			     .oldest = db_col_int(st, 4)};
	return 0;
}

static int load_state(struct srv_store_be *s, const char *device,
		      struct tstate *t, struct fl_error *err)
{
	*t = (struct tstate){0};
	return db_query_rows(
	    s, state_row, t, err,
	    "SELECT t.seq, t.reenrolled, t.dropped, t.points,"
	    " t.oldest FROM devices d LEFT JOIN telemetry_state"
	    " t ON t.device = d.id"
	    " WHERE d.id = ? AND d.state = 'active'",
	    "s", device);
}

static int save_state(struct srv_store_be *s, const char *device,
		      const struct tstate *t, struct fl_error *err)
{
	return db_run(s, NULL, err,
		      "INSERT INTO telemetry_state (device, seq, dropped,"
		      " points, oldest) VALUES (?, ?, ?, ?, ?)"
		      " ON CONFLICT (device) DO UPDATE SET seq = excluded.seq,"
		      " reenrolled = 0, dropped = excluded.dropped,"
		      " points = excluded.points, oldest = excluded.oldest",
		      "siiii", device, t->seq, t->dropped, t->points,
		      t->oldest);
}

/* Insert @m's points; @t counts them and follows their oldest time. */
static int insert_points(struct srv_store_be *s, const char *device,
			 const struct srv_tmsg *m, struct tstate *t,
			 struct fl_error *err)
{
	int rc = 0;

	for (size_t i = 0; i < m->n && !rc; i++) {
		const struct srv_tpoint *p = &m->points[i];

		rc = db_run(s, NULL, err,
			    "INSERT INTO telemetry (device, metric, ts, value,"
			    " seq) VALUES (?, ?, ?, ?, ?)",
			    "ssifi", device, p->metric, p->ts_ms, p->value,
			    m->seq);
		if (!t->points || p->ts_ms < t->oldest)
			t->oldest = p->ts_ms;
		t->points++;
	}
	return rc;
}

/* The device's oldest sample time, after a trim. */
static int find_oldest(struct srv_store_be *s, const char *device,
		       struct tstate *t, struct fl_error *err)
{
	struct db_first row;
	int rc = db_query_first(s, &row, err,
				"SELECT coalesce(min(ts), 0) FROM telemetry"
				" WHERE device = ?",
				"s", device);

	if (!rc)
		t->oldest = row.i[0];
	db_first_free(&row);
	return rc;
}

/* Trim @device's window: points sampled before @now_ms - keep_ms, then
 * the oldest beyond keep_points.  @t follows. */
static int trim(struct srv_store_be *s, const char *device, int64_t now_ms,
		struct tstate *t, struct fl_error *err)
{
	int64_t cutoff = now_ms - s->tw.keep_ms, was = t->points;
	int n = 0, rc = 0;

	if (t->points > 0 && t->oldest < cutoff) {
		rc = db_run(s, &n, err,
			    "DELETE FROM telemetry WHERE device = ? AND ts < ?",
			    "si", device, cutoff);
		t->points -= n;
	}
	if (!rc && t->points > s->tw.keep_points) {
		rc = db_run(s, &n, err,
			    "DELETE FROM telemetry WHERE rowid IN"
			    " (SELECT rowid FROM telemetry WHERE device = ?"
			    " ORDER BY ts, rowid LIMIT ?)",
			    "si", device, t->points - s->tw.keep_points);
		t->points -= n;
	}
	if (!rc && t->points != was)
		rc = find_oldest(s, device, t, err);
	return rc;
}

int db_telemetry(struct srv_store_be *s, int64_t now_ms,
		 struct srv_ingest_item *it, struct fl_error *err)
{
	const struct srv_tmsg *m = it->f.tele;
	struct tstate t;
	int rc = load_state(s, it->device, &t, err);

	it->result = SRV_INGEST_REJECTED;
	if (rc || !t.device)
		return rc;
	it->result = SRV_INGEST_DUPLICATE;
	if (srv_telemetry_seq(t.seq, t.reenrolled, m->seq) ==
	    SRV_TSEQ_DUPLICATE)
		return 0;
	t.seq = m->seq;
	t.dropped += m->dropped;
	rc = insert_points(s, it->device, m, &t, err);
	if (!rc)
		rc = trim(s, it->device, now_ms, &t, err);
	if (!rc)
		rc = save_state(s, it->device, &t, err);
	if (!rc)
		it->result = SRV_INGEST_STORED;
	return rc;
}

static int sweep_row(struct db_row *st, void *ctx)
{
	db_strv_add(ctx, db_col_text(st, 0));
	return 0;
}

int db_telemetry_sweep(struct srv_store_be *s, int64_t now_ms,
		       struct fl_error *err)
{
	struct srv_strv devs = {0};
	int rc;

	if (now_ms - s->tw_swept_ms < SWEEP_EVERY_MS)
		return 0;
	s->tw_swept_ms = now_ms;
	rc =
	    db_query_rows(s, sweep_row, &devs, err,
			  "SELECT device FROM telemetry_state WHERE points > 0"
			  " AND oldest < ? ORDER BY oldest LIMIT ?",
			  "ii", now_ms - s->tw.keep_ms, (int64_t)SWEEP_DEVICES);
	for (size_t i = 0; i < devs.n && !rc; i++) {
		struct tstate t;

		rc = db_query_rows(
		    s, state_row, &t, err,
		    "SELECT seq, reenrolled, dropped, points,"
		    " oldest FROM telemetry_state WHERE device = ?",
		    "s", devs.v[i]);
		if (!rc)
			rc = trim(s, devs.v[i], now_ms, &t, err);
		if (!rc)
			rc = db_run(s, NULL, err,
				    "UPDATE telemetry_state SET points = ?,"
				    " oldest = ? WHERE device = ?",
				    "iis", t.points, t.oldest, devs.v[i]);
	}
	srv_strv_free(&devs);
	return rc;
}

int db_telemetry_reenrolled(struct srv_store_be *s, const char *device,
			    struct fl_error *err)
{
	return db_run(s, NULL, err,
		      "UPDATE telemetry_state SET reenrolled = 1"
		      " WHERE device = ?",
		      "s", device);
}

void sql_telemetry_window(struct srv_store_be *s,
			  const struct srv_telemetry_window *w)
{
	pthread_mutex_lock(&s->lock);
	s->tw = *w;
	pthread_mutex_unlock(&s->lock);
}

static int point_row(struct db_row *st, void *ctx)
{
	struct srv_telemetry_list *l = ctx;
	struct srv_telemetry_row *r = DB_PUSH(l);

	r->metric = db_col_str(st, 0);
	r->value = db_col_double(st, 1);
	r->ts_ms = db_col_int(st, 2);
	return 0;
}

/* Newest first from the query: turn @l around. */
static void reverse(struct srv_telemetry_list *l)
{
	for (size_t i = 0; i < l->n / 2; i++) {
		struct srv_telemetry_row r = l->v[i];

		l->v[i] = l->v[l->n - 1 - i];
		l->v[l->n - 1 - i] = r;
	}
}

/* The device (any state) and its dropped count; FL_ENOTFOUND. */
static int device_dropped(struct srv_store_be *s, const char *device,
			  int64_t *ret, struct fl_error *err)
{
	struct db_first row;
	int rc =
	    db_query_first(s, &row, NULL,
			   "SELECT coalesce(t.dropped, 0) FROM devices d"
			   " LEFT JOIN telemetry_state t ON t.device = d.id"
			   " WHERE d.id = ?",
			   "s", device);

	if (!rc)
		*ret = row.i[0];
	db_first_free(&row);
	return rc ? fl_fail(err, FL_ENOTFOUND, "no device '%s'", device) : 0;
}

int sql_telemetry_get(struct srv_store_be *s,
		      const struct srv_telemetry_query *q,
		      struct srv_telemetry_list *ret, struct fl_error *err)
{
	struct srv_telemetry_list l = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = device_dropped(s, q->device, &l.dropped, err);
	if (!rc)
		rc = db_query_rows(s, point_row, &l, err,
				   "SELECT metric, value, ts FROM telemetry"
				   " WHERE device = ?1 AND ts >= ?2"
				   " AND (?3 IS NULL OR metric = ?3)"
				   " ORDER BY ts DESC, rowid DESC LIMIT ?4",
				   "sisi", q->device, q->since_ms, q->metric,
				   (int64_t)q->limit);
	pthread_mutex_unlock(&s->lock);
	if (!rc)
		reverse(&l);
	return DB_GIVE(rc, l, ret, srv_telemetry_list_free);
}
