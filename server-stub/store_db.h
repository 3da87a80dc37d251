/* SPDX-License-Identifier: MIT */
#ifndef SRV_STORE_DB_H
#define SRV_STORE_DB_H

/*
 * Internal to the store: the handle and small SQLite helpers shared by
 * the store_*.c files.  Not for use outside server-stub/store*.c.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "err.h"

/* Prepared statements kept for reuse, keyed by their SQL text: the
 * ingest path runs the same few statements thousands of times a second,
 * and preparing costs more than running them. */
#define DB_CACHE_SIZE 64

struct db_cached {
	uint64_t hash; /* 0: empty slot */
	char *sql;
	sqlite3_stmt *st;
	bool busy; /* handed out, not yet released */
};

struct srv_store {
	sqlite3 *db;
	pthread_mutex_t lock;
	pthread_mutex_t cache_lock;
	struct db_cached cache[DB_CACHE_SIZE];
};

/* Finalize every cached statement (before sqlite3_close). */
void db_cache_clear(struct srv_store *s);

/*
 * Bind types for the helpers below, one letter per argument:
 *   s  const char * (NULL binds SQL NULL)
 *   i  int64_t
 *   d  int
 *   n  int64_t, negative binds SQL NULL
 */

/* Run a statement that returns no rows; *ret_changes (may be NULL) gets
 * the number of rows changed.  Caller holds the lock. */
int db_run(struct srv_store *s, int *ret_changes, struct fl_error *err,
	   const char *sql, const char *types, ...);

/* Run a query and collect every row as a JSON object keyed by column
 * name (INTEGER -> integer, REAL -> real, TEXT -> string, NULL -> null).
 * Caller holds the lock. */
int db_query_json(struct srv_store *s, json_t **ret, struct fl_error *err,
		  const char *sql, const char *types, ...);

/* As db_query_json but exactly one row: FL_ENOTFOUND when none. */
int db_query_one(struct srv_store *s, json_t **ret, struct fl_error *err,
		 const char *sql, const char *types, ...);

/* As db_run, db_query_json and db_query_one, taking the store's lock
 * around the one statement (callers that need more hold it themselves). */
int db_lrun(struct srv_store *s, int *ret_changes, struct fl_error *err,
	    const char *sql, const char *types, ...);
int db_lquery_json(struct srv_store *s, json_t **ret, struct fl_error *err,
		   const char *sql, const char *types, ...);
int db_lquery_one(struct srv_store *s, json_t **ret, struct fl_error *err,
		  const char *sql, const char *types, ...);

/* BEGIN IMMEDIATE; and its end: COMMIT when @rc is 0, else ROLLBACK.
 * db_end returns @rc or the commit's error.  Caller holds the lock. */
int db_begin(struct srv_store *s, struct fl_error *err);
int db_end(struct srv_store *s, int rc, struct fl_error *err);

/* Fail with the database's message. */
int db_fail(struct srv_store *s, struct fl_error *err, const char *what);

/* Turn integer members @key of every object in @arr into booleans. */
void db_json_bools(json_t *arr, const char *key);

/* SQL expression: RFC 3339 text of a Unix-seconds column, NULL if 0. */
#define DB_TIME(col)                                                       \
	"CASE WHEN " col " > 0 THEN strftime('%Y-%m-%dT%H:%M:%SZ', " col   \
	", 'unixepoch') END"

#endif
