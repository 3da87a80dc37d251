/* SPDX-License-Identifier: MIT */
/*
 * The SQLite driver (store_sql.h): statements prepared once and kept in
 * a cache, parameters bound by type, rows read in place.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite.h"
#include "util.h"

int sq_fail(struct sq_conn *c, struct fl_error *err, const char *what)
{
	int ext = sqlite3_extended_errcode(c->db);
	int code = FL_EIO;

	if ((ext & 0xff) == SQLITE_CONSTRAINT)
		code = FL_ECONFLICT;
	return fl_fail(err, code, "database: %s: %s", what,
		       sqlite3_errmsg(c->db));
}

static int bind_all(struct sq_conn *s, sqlite3_stmt *st, const char *types,
		    va_list ap, struct fl_error *err)
{
	int rc = SQLITE_OK;

	for (int i = 0; types && types[i]; i++) {
		const char *str;

		switch (types[i]) {
		case 's':
			str = va_arg(ap, const char *);
			rc = str ? sqlite3_bind_text(st, i + 1, str, -1,
						     SQLITE_TRANSIENT)
				 : sqlite3_bind_null(st, i + 1);
			break;
		case 'i':
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
			break;
		case 'd':
			rc = sqlite3_bind_int(st, i + 1, va_arg(ap, int));
			break;
		case 'f':
			rc = sqlite3_bind_double(st, i + 1, va_arg(ap, double));
			break;
		case 'n': {
			int64_t v = va_arg(ap, int64_t);

			rc = v < 0 ? sqlite3_bind_null(st, i + 1)
				   : sqlite3_bind_int64(st, i + 1, v);
			break;
		}
		default:
			return fl_fail(err, FL_ERR, "bad bind type '%c'",
				       types[i]);
		}
		if (rc != SQLITE_OK)
			return sq_fail(s, err, "bind");
	}
	return 0;
}

/* A cheap key for the statement cache: the length and the first and
 * last 32 bytes (a match is confirmed with strcmp).  Hashing every byte
 * of a 300-byte statement cost more than running a small one. */
static uint64_t sql_hash(const char *sql)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	size_t n = strlen(sql), i;

	for (i = 0; i < n && i < 32; i++)
		h = (h ^ (unsigned char)sql[i]) * 1099511628211ull;
	for (i = n > 64 ? n - 32 : i; i < n; i++)
		h = (h ^ (unsigned char)sql[i]) * 1099511628211ull;
	h ^= n;
	return h ? h : 1;
}

/* A free cached statement for @sql, or a new one cached when a slot is
 * free, or (cache full) a new one the caller finalizes. */
static sqlite3_stmt *stmt_get(struct sq_conn *s, const char *sql)
{
	uint64_t h = sql_hash(sql);
	struct db_cached *slot = NULL;
	sqlite3_stmt *st = NULL;

	pthread_mutex_lock(&s->cache_lock);
	for (size_t i = 0; i < DB_CACHE_SIZE; i++) {
		struct db_cached *c = &s->cache[i];

		if (c->hash == h && !c->busy && strcmp(c->sql, sql) == 0) {
			c->busy = true;
			pthread_mutex_unlock(&s->cache_lock);
			return c->st;
		}
		if (!c->hash && !slot)
			slot = c;
	}
	if (sqlite3_prepare_v3(s->db, sql, -1,
			       slot ? SQLITE_PREPARE_PERSISTENT : 0, &st,
			       NULL) == SQLITE_OK &&
	    slot) {
		*slot = (struct db_cached){
		    .hash = h, .sql = fl_xstrdup(sql), .st = st, .busy = true};
	}
	pthread_mutex_unlock(&s->cache_lock);
	return st;
}

/* Give @st back: reset for its next use, or finalize an uncached one. */
static void stmt_release(struct sq_conn *s, sqlite3_stmt *st)
{
	pthread_mutex_lock(&s->cache_lock);
	for (size_t i = 0; i < DB_CACHE_SIZE; i++)
		if (s->cache[i].hash && s->cache[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			s->cache[i].busy = false;
			pthread_mutex_unlock(&s->cache_lock);
			return;
		}
	pthread_mutex_unlock(&s->cache_lock);
	sqlite3_finalize(st);
}

void sq_cache_clear(struct sq_conn *s)
{
	for (size_t i = 0; i < DB_CACHE_SIZE; i++) {
		sqlite3_finalize(s->cache[i].st);
		free(s->cache[i].sql);
		s->cache[i] = (struct db_cached){0};
	}
}

static int prepare(struct sq_conn *s, const char *sql, const char *types,
		   va_list ap, sqlite3_stmt **ret, struct fl_error *err)
{
	sqlite3_stmt *st = stmt_get(s, sql);
	int rc;

	if (!st)
		return sq_fail(s, err, "prepare");
	rc = bind_all(s, st, types, ap, err);
	if (rc) {
		stmt_release(s, st);
		return rc;
	}
	*ret = st;
	return 0;
}

/* Step @st to its end: each row to @row (NULL: none expected),
 * *@ret_changes (may be NULL) the rows it changed; @st released. */
static int step_all(struct sq_conn *s, sqlite3_stmt *st,
		    int (*row)(struct db_row *, void *), void *ctx,
		    int *ret_changes, struct fl_error *err)
{
	struct db_row r = {&db_sqlite_driver, st, 0};
	int rc = 0, step;

	while ((step = sqlite3_step(st)) == SQLITE_ROW && row &&
	       !(rc = row(&r, ctx)))
		;
	if (!rc && step != SQLITE_DONE && step != SQLITE_ROW)
		rc = sq_fail(s, err, row ? "query" : "step");
	if (!rc && ret_changes)
		*ret_changes = sqlite3_changes(s->db);
	stmt_release(s, st);
	return rc;
}

static int run_v(struct srv_store_be *be, int *ret_changes,
		 struct fl_error *err, const char *sql, const char *types,
		 va_list ap)
{
	struct sq_conn *s = sq_conn(be);
	sqlite3_stmt *st;
	int rc;

	rc = prepare(s, sql, types, ap, &st, err);
	return rc ? rc : step_all(s, st, NULL, NULL, ret_changes, err);
}

static int rows_v(struct srv_store_be *be, int (*row)(struct db_row *, void *),
		  void *ctx, struct fl_error *err, const char *sql,
		  const char *types, va_list ap)
{
	struct sq_conn *s = sq_conn(be);
	sqlite3_stmt *st;
	int rc;

	rc = prepare(s, sql, types, ap, &st, err);
	return rc ? rc : step_all(s, st, row, ctx, NULL, err);
}

static int bind_arg(sqlite3_stmt *st, int k, const struct db_arg *a)
{
	if (a->type == 's')
		return a->s ? sqlite3_bind_text(st, k, a->s, -1, SQLITE_STATIC)
			    : sqlite3_bind_null(st, k);
	return a->type == 'n' && a->i < 0 ? sqlite3_bind_null(st, k)
					  : sqlite3_bind_int64(st, k, a->i);
}

static int rows_args(struct srv_store_be *be,
		     int (*row)(struct db_row *, void *), void *ctx,
		     int *ret_changes, struct fl_error *err, const char *sql,
		     size_t n, const struct db_arg *args)
{
	struct sq_conn *s = sq_conn(be);
	sqlite3_stmt *st = stmt_get(s, sql);

	if (!st)
		return sq_fail(s, err, "prepare");
	for (size_t i = 0; i < n; i++)
		if (bind_arg(st, (int)i + 1, &args[i]) != SQLITE_OK) {
			stmt_release(s, st);
			return sq_fail(s, err, "bind");
		}
	return step_all(s, st, row, ctx, ret_changes, err);
}

static int run_text(struct srv_store_be *be, const char *sql, int n,
		    const char *const *vals, struct fl_error *err)
{
	struct sq_conn *s = sq_conn(be);
	sqlite3_stmt *st = stmt_get(s, sql);
	int rc = st ? 0 : sq_fail(s, err, "prepare");

	for (int i = 0; !rc && i < n; i++)
		if ((vals[i] ? sqlite3_bind_text(st, i + 1, vals[i], -1,
						 SQLITE_TRANSIENT)
			     : sqlite3_bind_null(st, i + 1)) != SQLITE_OK)
			rc = sq_fail(s, err, "bind");
	if (!rc && sqlite3_step(st) != SQLITE_DONE)
		rc = sq_fail(s, err, "step");
	if (st)
		stmt_release(s, st);
	return rc;
}

static const char *col_text(struct db_row *r, int i)
{
	return (const char *)sqlite3_column_text(r->res, i);
}

static int64_t col_int(struct db_row *r, int i)
{
	return sqlite3_column_int64(r->res, i);
}

static double col_double(struct db_row *r, int i)
{
	return sqlite3_column_double(r->res, i);
}

static bool col_null(struct db_row *r, int i)
{
	return sqlite3_column_type(r->res, i) == SQLITE_NULL;
}

static int col_count(struct db_row *r)
{
	return sqlite3_column_count(r->res);
}

const struct db_driver db_sqlite_driver = {
    .name = "sqlite",
    .dialect = DB_SQLITE,
    .open = sq_open,
    .close = sq_close,
    .schema_version = sq_schema_version,
    .run = run_v,
    .rows = rows_v,
    .run_text = run_text,
    .rows_args = rows_args,
    .begin_sql = "BEGIN IMMEDIATE",
    .col_text = col_text,
    .col_int = col_int,
    .col_double = col_double,
    .col_null = col_null,
    .col_count = col_count,
};
