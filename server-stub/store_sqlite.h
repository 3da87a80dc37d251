/* SPDX-License-Identifier: MIT */
#ifndef SRV_STORE_SQLITE_H
#define SRV_STORE_SQLITE_H

/*
 * Internal to the SQLite driver (store_sqlite_drv.c, its schema in
 * store_sqlite_schema.c): the connection behind srv_store_be.conn.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store_sql.h"

/* Prepared statements kept for reuse, keyed by their SQL text: the
 * ingest path runs the same few statements thousands of times a second,
 * and preparing costs more than running them. */
#define DB_CACHE_SIZE 128

struct db_cached {
	uint64_t hash; /* 0: empty slot */
	char *sql;
	sqlite3_stmt *st;
	bool busy; /* handed out, not yet released */
};

struct sq_conn {
	sqlite3 *db;
	pthread_mutex_t cache_lock;
	struct db_cached cache[DB_CACHE_SIZE];
};

/* @s's SQLite connection. */
static inline struct sq_conn *sq_conn(struct srv_store_be *s)
{
	return s->conn;
}

/* Finalize every cached statement (before sqlite3_close). */
void sq_cache_clear(struct sq_conn *c);

/* Fail with the database's message. */
int sq_fail(struct sq_conn *c, struct fl_error *err, const char *what);

/* The driver's open, close and schema version (store_sqlite_schema.c). */
int sq_open(struct srv_store_be *s, const char *path, struct fl_error *err);
void sq_close(struct srv_store_be *s);
int sq_schema_version(struct srv_store_be *s);

#endif
