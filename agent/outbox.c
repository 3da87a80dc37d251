/* SPDX-License-Identifier: MIT */
/*
 * The outbox in SQLite (outbox.h).  One table of messages keyed by their
 * seq, one of counters (the last seq, the points dropped not yet
 * reported); counts and bytes are kept in memory, read once at open.
 * Every change is one transaction; synchronous=FULL makes a committed
 * message (and the seq counter) survive a power cut, not only kill -9
 * (docs/telemetry.md has the reasoning).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "log.h"
#include "outbox.h"
#include "util.h"

#define SCHEMA_VERSION 1
#define COUNT_MAX (1ull << 53) /* counters and seqs read back */
#define ROW_SCAN_MAX 64	       /* damaged rows skipped in one next */

struct flight {
	uint64_t seq;
	int mid; /* -1: handed out, not published yet */
};

struct agent_outbox {
	sqlite3 *db;
	struct agent_outbox_limits lim;
	uint64_t n, bytes; /* rows and their body bytes */
	uint64_t last_seq; /* counter */
	uint64_t dropped;  /* points dropped, not reported yet */
	uint64_t cursor;   /* highest seq handed out on this connection */
	struct flight fl[AGENT_OUTBOX_WINDOW];
	size_t n_fl;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS msg ("
    " seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL,"
    " weight INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " dropped INTEGER NOT NULL,"
    " body BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO meta VALUES ('seq', 0), ('dropped', 0);";

static int db_fail(struct agent_outbox *ob, struct fl_error *err,
		   const char *what)
{
	int code = sqlite3_errcode(ob->db);

	return fl_fail(err,
		       code == SQLITE_NOTADB || code == SQLITE_CORRUPT
			   ? FL_EPARSE
			   : FL_EIO,
		       "outbox: %s: %s", what, sqlite3_errmsg(ob->db));
}

static int exec(struct agent_outbox *ob, const char *sql, struct fl_error *err)
{
	if (sqlite3_exec(ob->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	return db_fail(ob, err, sql);
}

/* Prepare @sql and bind the int64 arguments (n of them). */
static sqlite3_stmt *prep(struct agent_outbox *ob, const char *sql, int n,
			  const int64_t *args)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(ob->db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(st, i + 1, args[i]);
	return st;
}

/* Run a statement without results. */
static int run(struct agent_outbox *ob, const char *sql, int n,
	       const int64_t *args, struct fl_error *err)
{
	sqlite3_stmt *st = prep(ob, sql, n, args);
	int rc = st ? sqlite3_step(st) : SQLITE_ERROR;

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_fail(ob, err, sql);
}

/* One integer from a one-row query; FL_EPARSE outside 0..COUNT_MAX. */
static int query_u64(struct agent_outbox *ob, const char *sql, uint64_t *ret,
		     struct fl_error *err)
{
	sqlite3_stmt *st = prep(ob, sql, 0, NULL);
	int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
	int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;

	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return db_fail(ob, err, sql);
	if (v < 0 || (uint64_t)v > COUNT_MAX)
		return fl_fail(err, FL_EPARSE,
			       "outbox: %s: %lld is out of range", sql,
			       (long long)v);
	*ret = (uint64_t)v;
	return 0;
}

static int set_meta(struct agent_outbox *ob, const char *k, uint64_t v,
		    struct fl_error *err)
{
	char sql[80];

	snprintf(sql, sizeof(sql), "UPDATE meta SET v = ? WHERE k = '%s'", k);
	return run(ob, sql, 1, (const int64_t[]){(int64_t)v}, err);
}

/* ------------------------------------------------------------------ */
/* Open                                                               */
/* ------------------------------------------------------------------ */

/* A file far larger than the byte bound cannot be one we wrote. */
static int check_size(const char *path, const struct agent_outbox_limits *lim,
		      struct fl_error *err)
{
	struct stat sb;

	if (!path || stat(path, &sb) != 0)
		return 0;
	if ((uint64_t)sb.st_size > lim->max_bytes * 2 + AGENT_OUTBOX_FILE_SLACK)
		return fl_fail(err, FL_ELIMIT,
			       "outbox: %s holds %lld bytes, over its bound",
			       path, (long long)sb.st_size);
	return 0;
}

/* The schema version: 0 (new file) or ours; FL_EPARSE for another. */
static int check_version(struct agent_outbox *ob, struct fl_error *err)
{
	uint64_t v = 0;
	int rc = query_u64(ob, "PRAGMA user_version", &v, err);

	if (rc)
		return rc;
	if (v != 0 && v != SCHEMA_VERSION)
		return fl_fail(err, FL_EPARSE,
			       "outbox: schema version %llu is not %d",
			       (unsigned long long)v, SCHEMA_VERSION);
	return 0;
}

static int check_integrity(struct agent_outbox *ob, struct fl_error *err)
{
	sqlite3_stmt *st = prep(ob, "PRAGMA quick_check(1)", 0, NULL);
	int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
	const char *txt =
	    rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	bool ok = txt && strcmp(txt, "ok") == 0;

	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return db_fail(ob, err, "integrity check");
	return ok ? 0 : fl_fail(err, FL_EPARSE, "outbox: damaged database");
}

/* Settings, schema and the counters read back (each capped). */
static int setup(struct agent_outbox *ob, struct fl_error *err)
{
	int rc;

	sqlite3_busy_timeout(ob->db, 2000);
	if ((rc = check_integrity(ob, err)) || (rc = check_version(ob, err)))
		return rc;
	if ((rc = exec(ob,
		       "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
		       "PRAGMA journal_size_limit = 4194304;",
		       err)) ||
	    (rc = exec(ob, schema, err)) ||
	    (rc = exec(ob, "PRAGMA user_version = 1", err)))
		return rc;
	if ((rc = query_u64(ob, "SELECT v FROM meta WHERE k = 'seq'",
			    &ob->last_seq, err)) ||
	    (rc = query_u64(ob, "SELECT v FROM meta WHERE k = 'dropped'",
			    &ob->dropped, err)) ||
	    (rc = query_u64(ob, "SELECT count(*) FROM msg", &ob->n, err)) ||
	    (rc =
		 query_u64(ob, "SELECT coalesce(sum(length(body)), 0) FROM msg",
			   &ob->bytes, err)))
		return rc;
	return 0;
}

int agent_outbox_open(const char *path, const struct agent_outbox_limits *lim,
		      struct agent_outbox **ret, struct fl_error *err)
{
	struct agent_outbox *ob;
	int rc;

	if (!lim->max_messages || !lim->max_bytes || lim->max_age_s < 1)
		return fl_fail(err, FL_EINVAL, "outbox: bounds must be >= 1");
	if ((rc = check_size(path, lim, err)))
		return rc;
	ob = fl_xcalloc(1, sizeof(*ob));
	ob->lim = *lim;
	if (sqlite3_open_v2(path ? path : ":memory:", &ob->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		rc = db_fail(ob, err, "open");
	else
		rc = setup(ob, err);
	if (rc) {
		fl_error_prefix(err, "%s", path ? path : "memory");
		agent_outbox_free(ob);
		return rc;
	}
	*ret = ob;
	return 0;
}

void agent_outbox_free(struct agent_outbox *ob)
{
	if (!ob)
		return;
	sqlite3_close_v2(ob->db);
	free(ob);
}

/* ------------------------------------------------------------------ */
/* In flight                                                          */
/* ------------------------------------------------------------------ */

static struct flight *flight_find(struct agent_outbox *ob, uint64_t seq,
				  int mid)
{
	for (size_t i = 0; i < ob->n_fl; i++)
		if (seq ? ob->fl[i].seq == seq : ob->fl[i].mid == mid)
			return &ob->fl[i];
	return NULL;
}

static void flight_remove(struct agent_outbox *ob, struct flight *f)
{
	if (!f)
		return;
	*f = ob->fl[--ob->n_fl];
}

void agent_outbox_sent(struct agent_outbox *ob, uint64_t seq, int mid)
{
	struct flight *f = flight_find(ob, seq, 0);

	if (f)
		f->mid = mid;
}

void agent_outbox_unsent(struct agent_outbox *ob, uint64_t seq)
{
	flight_remove(ob, flight_find(ob, seq, 0));
	if (ob->cursor >= seq)
		ob->cursor = seq - 1;
}

void agent_outbox_rewind(struct agent_outbox *ob)
{
	ob->n_fl = 0;
	ob->cursor = 0;
}

/* ------------------------------------------------------------------ */
/* Dropping under the bounds                                          */
/* ------------------------------------------------------------------ */

/* Delete row @seq (its @len bytes; @points dropped with it, reported
 * later), in the caller's transaction. */
static int drop_row(struct agent_outbox *ob, uint64_t seq, uint64_t len,
		    uint64_t points, struct fl_error *err)
{
	int rc = run(ob, "DELETE FROM msg WHERE seq = ?", 1,
		     (const int64_t[]){(int64_t)seq}, err);

	if (rc)
		return rc;
	ob->n--;
	ob->bytes -= len < ob->bytes ? len : ob->bytes;
	ob->dropped += points;
	flight_remove(ob, flight_find(ob, seq, 0));
	return set_meta(ob, "dropped", ob->dropped, err);
}

/*
 * Drop the oldest telemetry row queued before @older_than: one after
 * those in flight, else the oldest of all.  FL_ENOTFOUND when there is
 * no such row.
 */
static int drop_oldest(struct agent_outbox *ob, int64_t older_than,
		       struct fl_error *err)
{
	int64_t args[2] = {(int64_t)ob->cursor, older_than};

	for (int round = 0; round < 2; round++, args[0] = 0) {
		sqlite3_stmt *st =
		    prep(ob,
			 "SELECT seq, length(body), weight + dropped FROM msg"
			 " WHERE kind = 1 AND seq > ? AND ts < ?"
			 " ORDER BY seq LIMIT 1",
			 2, args);
		int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
		uint64_t seq = 0, len = 0, pts = 0;

		if (rc == SQLITE_ROW) {
			seq = (uint64_t)sqlite3_column_int64(st, 0);
			len = (uint64_t)sqlite3_column_int64(st, 1);
			pts = (uint64_t)sqlite3_column_int64(st, 2);
		}
		sqlite3_finalize(st);
		if (rc == SQLITE_ROW)
			return drop_row(ob, seq, len, pts % COUNT_MAX, err);
		if (rc != SQLITE_DONE)
			return db_fail(ob, err, "select");
	}
	return FL_ENOTFOUND;
}

/* Drop telemetry past max_age, in the caller's transaction. */
static int expire(struct agent_outbox *ob, int64_t now_ms, struct fl_error *err)
{
	int64_t cut = now_ms - ob->lim.max_age_s * 1000;
	int rc;

	while ((rc = drop_oldest(ob, cut, err)) == 0)
		;
	return rc == FL_ENOTFOUND ? 0 : rc;
}

/* Make room for one more message of @len bytes: 0, or FL_ENOTFOUND when
 * only events are left. */
static int make_room(struct agent_outbox *ob, size_t len, int64_t now_ms,
		     struct fl_error *err)
{
	int rc = expire(ob, now_ms, err);

	while (!rc && (ob->n + 1 > ob->lim.max_messages ||
		       ob->bytes + len > ob->lim.max_bytes))
		rc = drop_oldest(ob, INT64_MAX, err);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Put                                                                */
/* ------------------------------------------------------------------ */

static int insert(struct agent_outbox *ob, enum agent_outbox_kind kind,
		  const void *body, size_t len, unsigned weight, int64_t now_ms,
		  struct fl_error *err)
{
	uint64_t dropped = kind == AGENT_OUTBOX_TELEMETRY ? ob->dropped : 0;
	sqlite3_stmt *st =
	    prep(ob,
		 "INSERT INTO msg (seq, kind, weight, ts, dropped, body)"
		 " VALUES (?, ?, ?, ?, ?, ?)",
		 5,
		 (const int64_t[]){(int64_t)ob->last_seq + 1, kind, weight,
				   now_ms, (int64_t)dropped});
	int rc;

	if (st)
		sqlite3_bind_blob(st, 6, body, (int)len, SQLITE_STATIC);
	rc = st ? sqlite3_step(st) : SQLITE_ERROR;
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(ob, err, "insert");
	if ((rc = set_meta(ob, "seq", ob->last_seq + 1, err)) ||
	    (dropped && (rc = set_meta(ob, "dropped", 0, err))))
		return rc;
	ob->dropped -= dropped;
	ob->last_seq++;
	ob->n++;
	ob->bytes += len;
	return 0;
}

/* A refused telemetry message: its points count as dropped. */
static int refuse(struct agent_outbox *ob, unsigned weight,
		  struct fl_error *err)
{
	int rc;

	ob->dropped += weight;
	rc = set_meta(ob, "dropped", ob->dropped, err);
	if (!rc)
		rc = exec(ob, "COMMIT", err);
	if (rc) {
		exec(ob, "ROLLBACK", NULL);
		return rc;
	}
	return fl_fail(err, FL_ELIMIT,
		       "outbox full of events: telemetry message refused");
}

/* Counters as the db has them after a failed transaction. */
static void reload(struct agent_outbox *ob)
{
	exec(ob, "ROLLBACK", NULL);
	query_u64(ob, "SELECT v FROM meta WHERE k = 'seq'", &ob->last_seq,
		  NULL);
	query_u64(ob, "SELECT v FROM meta WHERE k = 'dropped'", &ob->dropped,
		  NULL);
	query_u64(ob, "SELECT count(*) FROM msg", &ob->n, NULL);
	query_u64(ob, "SELECT coalesce(sum(length(body)), 0) FROM msg",
		  &ob->bytes, NULL);
}

int agent_outbox_put(struct agent_outbox *ob, enum agent_outbox_kind kind,
		     const void *body, size_t len, unsigned weight,
		     int64_t now_ms, uint64_t *ret_seq, struct fl_error *err)
{
	bool tlm = kind == AGENT_OUTBOX_TELEMETRY;
	int rc;

	if ((!tlm && kind != AGENT_OUTBOX_EVENT) || !len ||
	    len > AGENT_OUTBOX_BODY_MAX || weight > AGENT_OUTBOX_WEIGHT_MAX)
		return fl_fail(err, FL_EINVAL, "outbox: bad message");
	if (ob->last_seq >= COUNT_MAX)
		return fl_fail(err, FL_ELIMIT, "outbox: seq exhausted");
	if ((rc = exec(ob, "BEGIN IMMEDIATE", err)))
		return rc;
	rc = tlm && len > ob->lim.max_bytes ? FL_ENOTFOUND
					    : make_room(ob, len, now_ms, err);
	if (rc == FL_ENOTFOUND)
		rc = tlm ? refuse(ob, weight, err) : 0;
	if (rc == FL_ELIMIT)
		return rc;
	if (!rc)
		rc = insert(ob, kind, body, len, weight, now_ms, err);
	if (!rc)
		rc = exec(ob, "COMMIT", err);
	if (rc) {
		reload(ob);
		return rc;
	}
	if (ret_seq)
		*ret_seq = ob->last_seq;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Next and acked                                                     */
/* ------------------------------------------------------------------ */

void agent_outbox_msg_release(struct agent_outbox_msg *m)
{
	if (!m)
		return;
	free(m->body);
	m->body = NULL;
}

/* Row @st as a message, or false when it breaks a cap. */
static bool read_row(sqlite3_stmt *st, struct agent_outbox_msg *m)
{
	int64_t seq = sqlite3_column_int64(st, 0);
	int64_t kind = sqlite3_column_int64(st, 1);
	int64_t weight = sqlite3_column_int64(st, 2);
	int len = sqlite3_column_bytes(st, 5);
	const void *body = sqlite3_column_blob(st, 5);

	if (seq < 1 || (uint64_t)seq > COUNT_MAX ||
	    (kind != AGENT_OUTBOX_TELEMETRY && kind != AGENT_OUTBOX_EVENT) ||
	    weight < 0 || weight > AGENT_OUTBOX_WEIGHT_MAX || len < 1 ||
	    len > AGENT_OUTBOX_BODY_MAX || !body ||
	    sqlite3_column_int64(st, 4) < 0 ||
	    (uint64_t)sqlite3_column_int64(st, 4) > COUNT_MAX)
		return false;
	m->seq = (uint64_t)seq;
	m->kind = (enum agent_outbox_kind)kind;
	m->ts_ms = sqlite3_column_int64(st, 3);
	m->dropped = (uint64_t)sqlite3_column_int64(st, 4);
	m->len = (size_t)len;
	m->body = fl_xmalloc(m->len + 1);
	memcpy(m->body, body, m->len);
	m->body[m->len] = '\0';
	return true;
}

/* The row after the cursor: 0, FL_ENOTFOUND (none), FL_EPARSE (a bad
 * row, deleted), FL_EIO. */
static int next_row(struct agent_outbox *ob, struct agent_outbox_msg *m,
		    struct fl_error *err)
{
	sqlite3_stmt *st = prep(ob,
				"SELECT seq, kind, weight, ts, dropped, body"
				" FROM msg WHERE seq > ? ORDER BY seq LIMIT 1",
				1, (const int64_t[]){(int64_t)ob->cursor});
	int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
	bool ok = rc == SQLITE_ROW && read_row(st, m);
	int64_t seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;

	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return FL_ENOTFOUND;
	if (rc != SQLITE_ROW)
		return db_fail(ob, err, "select");
	if (ok)
		return 0;
	fl_warn("outbox: row %lld breaks a cap (damaged db); deleted",
		(long long)seq);
	if ((rc = run(ob, "DELETE FROM msg WHERE seq = ?", 1,
		      (const int64_t[]){seq}, err)))
		return rc;
	reload(ob);
	if (seq > 0 && (uint64_t)seq > ob->cursor)
		ob->cursor = (uint64_t)seq;
	return FL_EPARSE;
}

/* Drop telemetry past max_age (its own transaction). */
static int expire_now(struct agent_outbox *ob, int64_t now_ms,
		      struct fl_error *err)
{
	int rc = exec(ob, "BEGIN IMMEDIATE", err);

	if (!rc)
		rc = expire(ob, now_ms, err);
	if (!rc)
		rc = exec(ob, "COMMIT", err);
	if (rc)
		reload(ob);
	return rc;
}

int agent_outbox_next(struct agent_outbox *ob, int64_t now_ms,
		      struct agent_outbox_msg *ret, struct fl_error *err)
{
	struct agent_outbox_msg m = {0};
	int rc;

	if (ob->n_fl >= AGENT_OUTBOX_WINDOW || ob->n == 0)
		return FL_ENOTFOUND;
	if ((rc = expire_now(ob, now_ms, err)))
		return rc;
	rc = FL_EPARSE;
	for (int i = 0; rc == FL_EPARSE && i < ROW_SCAN_MAX; i++)
		rc = next_row(ob, &m, err);
	if (rc)
		return rc == FL_EPARSE ? FL_ENOTFOUND : rc;
	ob->cursor = m.seq;
	ob->fl[ob->n_fl++] = (struct flight){m.seq, -1};
	*ret = m;
	return 0;
}

int agent_outbox_acked(struct agent_outbox *ob, int mid, uint64_t *ret_seq,
		       struct fl_error *err)
{
	struct flight *f = mid >= 0 ? flight_find(ob, 0, mid) : NULL;
	sqlite3_stmt *st;
	uint64_t seq;
	int rc, len = 0;

	if (!f)
		return FL_ENOTFOUND;
	seq = f->seq;
	flight_remove(ob, f);
	st = prep(ob, "DELETE FROM msg WHERE seq = ? RETURNING length(body)", 1,
		  (const int64_t[]){(int64_t)seq});
	rc = st ? sqlite3_step(st) : SQLITE_ERROR;
	if (rc == SQLITE_ROW)
		len = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(ob, err, "delete");
	if (rc == SQLITE_ROW) {
		ob->n--;
		ob->bytes -=
		    (uint64_t)len < ob->bytes ? (uint64_t)len : ob->bytes;
	}
	if (ret_seq)
		*ret_seq = seq;
	return 0;
}

int agent_outbox_discard(struct agent_outbox *ob, uint64_t seq,
			 struct fl_error *err)
{
	sqlite3_stmt *st;
	uint64_t len = 0, pts = 0;
	int rc = exec(ob, "BEGIN IMMEDIATE", err);

	if (rc)
		return rc;
	st = prep(ob,
		  "SELECT length(body), weight + dropped FROM msg"
		  " WHERE seq = ?",
		  1, (const int64_t[]){(int64_t)seq});
	rc = st ? sqlite3_step(st) : SQLITE_ERROR;
	if (rc == SQLITE_ROW) {
		len = (uint64_t)sqlite3_column_int64(st, 0);
		pts = (uint64_t)sqlite3_column_int64(st, 1) % COUNT_MAX;
	}
	sqlite3_finalize(st);
	rc = rc == SQLITE_ROW	 ? drop_row(ob, seq, len, pts, err)
	     : rc == SQLITE_DONE ? 0
				 : db_fail(ob, err, "select");
	if (!rc)
		rc = exec(ob, "COMMIT", err);
	if (rc)
		reload(ob);
	return rc;
}

uint64_t agent_outbox_depth(const struct agent_outbox *ob)
{
	return ob->n;
}

uint64_t agent_outbox_bytes(const struct agent_outbox *ob)
{
	return ob->bytes;
}

uint64_t agent_outbox_dropped(const struct agent_outbox *ob)
{
	return ob->dropped;
}
