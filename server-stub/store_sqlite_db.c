/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite.h"
#include "util.h"

int db_fail(struct srv_store_be *s, struct fl_error *err, const char *what)
{
	int ext = sqlite3_extended_errcode(s->db);
	int code = FL_EIO;

	if ((ext & 0xff) == SQLITE_CONSTRAINT)
		code = FL_ECONFLICT;
	return fl_fail(err, code, "database: %s: %s", what,
		       sqlite3_errmsg(s->db));
}

static int bind_all(struct srv_store_be *s, sqlite3_stmt *st, const char *types,
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
			return db_fail(s, err, "bind");
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
static sqlite3_stmt *stmt_get(struct srv_store_be *s, const char *sql)
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
static void stmt_release(struct srv_store_be *s, sqlite3_stmt *st)
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

void db_cache_clear(struct srv_store_be *s)
{
	for (size_t i = 0; i < DB_CACHE_SIZE; i++) {
		sqlite3_finalize(s->cache[i].st);
		free(s->cache[i].sql);
		s->cache[i] = (struct db_cached){0};
	}
}

static int prepare(struct srv_store_be *s, const char *sql, const char *types,
		   va_list ap, sqlite3_stmt **ret, struct fl_error *err)
{
	sqlite3_stmt *st = stmt_get(s, sql);
	int rc;

	if (!st)
		return db_fail(s, err, "prepare");
	rc = bind_all(s, st, types, ap, err);
	if (rc) {
		stmt_release(s, st);
		return rc;
	}
	*ret = st;
	return 0;
}

static int run_v(struct srv_store_be *s, int *ret_changes, struct fl_error *err,
		 const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *st;
	int rc;

	rc = prepare(s, sql, types, ap, &st, err);
	if (rc)
		return rc;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		rc = db_fail(s, err, "step");
	} else {
		rc = 0;
		if (ret_changes)
			*ret_changes = sqlite3_changes(s->db);
	}
	stmt_release(s, st);
	return rc;
}

int db_run(struct srv_store_be *s, int *ret_changes, struct fl_error *err,
	   const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = run_v(s, ret_changes, err, sql, types, ap);
	va_end(ap);
	return rc;
}

int db_lrun(struct srv_store_be *s, int *ret_changes, struct fl_error *err,
	    const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	pthread_mutex_lock(&s->lock);
	rc = run_v(s, ret_changes, err, sql, types, ap);
	pthread_mutex_unlock(&s->lock);
	va_end(ap);
	return rc;
}

int db_begin(struct srv_store_be *s, struct fl_error *err)
{
	return db_run(s, NULL, err, "BEGIN IMMEDIATE", NULL);
}

int db_end(struct srv_store_be *s, int rc, struct fl_error *err)
{
	if (!rc)
		rc = db_run(s, NULL, err, "COMMIT", NULL);
	if (rc)
		db_run(s, NULL, NULL, "ROLLBACK", NULL);
	return rc;
}

static int rows_v(struct srv_store_be *s, int (*row)(sqlite3_stmt *, void *),
		  void *ctx, struct fl_error *err, const char *sql,
		  const char *types, va_list ap)
{
	sqlite3_stmt *st;
	int rc, step;

	rc = prepare(s, sql, types, ap, &st, err);
	if (rc)
		return rc;
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW)
		rc = row(st, ctx);
	if (!rc && step != SQLITE_DONE)
		rc = db_fail(s, err, "query");
	stmt_release(s, st);
	return rc;
}

int db_query_rows(struct srv_store_be *s, int (*row)(sqlite3_stmt *, void *),
		  void *ctx, struct fl_error *err, const char *sql,
		  const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = rows_v(s, row, ctx, err, sql, types, ap);
	va_end(ap);
	return rc;
}

int db_lquery_rows(struct srv_store_be *s, int (*row)(sqlite3_stmt *, void *),
		   void *ctx, struct fl_error *err, const char *sql,
		   const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	pthread_mutex_lock(&s->lock);
	rc = rows_v(s, row, ctx, err, sql, types, ap);
	pthread_mutex_unlock(&s->lock);
	va_end(ap);
	return rc;
}

static int first_row(sqlite3_stmt *st, void *ctx)
{
	struct db_first *r = ctx;
	int n = sqlite3_column_count(st);

	if (r->found)
		return 0;
	r->found = true;
	for (int i = 0; i < n && i < DB_FIRST_MAX; i++) {
		r->i[i] = db_col_int(st, i);
		r->t[i] = db_col_str(st, i);
	}
	return 0;
}

static int first_v(struct srv_store_be *s, struct db_first *ret,
		   struct fl_error *err, const char *sql, const char *types,
		   va_list ap)
{
	int rc;

	*ret = (struct db_first){0};
	rc = rows_v(s, first_row, ret, err, sql, types, ap);
	if (!rc && !ret->found)
		rc = fl_fail(err, FL_ENOTFOUND, "not found");
	return rc;
}

int db_query_first(struct srv_store_be *s, struct db_first *ret,
		   struct fl_error *err, const char *sql, const char *types,
		   ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = first_v(s, ret, err, sql, types, ap);
	va_end(ap);
	return rc;
}

int db_lquery_first(struct srv_store_be *s, struct db_first *ret,
		    struct fl_error *err, const char *sql, const char *types,
		    ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	pthread_mutex_lock(&s->lock);
	rc = first_v(s, ret, err, sql, types, ap);
	pthread_mutex_unlock(&s->lock);
	va_end(ap);
	return rc;
}

void db_first_free(struct db_first *r)
{
	for (int i = 0; i < DB_FIRST_MAX; i++)
		free(r->t[i]);
	*r = (struct db_first){0};
}

char *db_col_str(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? fl_xstrdup((const char *)t) : NULL;
}

int64_t db_col_int(sqlite3_stmt *st, int i)
{
	return sqlite3_column_int64(st, i);
}

int64_t db_col_int_or(sqlite3_stmt *st, int i, int64_t def)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL
		       ? def
		       : sqlite3_column_int64(st, i);
}

void *db_grow(void *v, size_t n, size_t size)
{
	if (n == 0 || (n & (n - 1)) == 0)
		v = fl_xrealloc(v, (n ? 2 * n : 1) * size);
	memset((char *)v + n * size, 0, size);
	return v;
}

void db_strv_add(struct srv_strv *l, const char *str)
{
	*DB_PUSH(l) = fl_xstrdup(str);
}

int db_row_strv(sqlite3_stmt *st, void *ctx)
{
	db_strv_add(ctx, (const char *)sqlite3_column_text(st, 0));
	return 0;
}
