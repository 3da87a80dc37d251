/* SPDX-License-Identifier: MIT */
#ifndef SRV_STORE_PG_H
#define SRV_STORE_PG_H

/*
 * Internal to the PostgreSQL driver (store_pg_drv.c, its schema in
 * store_pg_schema.c).
 */
#include "store_sql.h"

/* @sql with its `?` and `?N` parameters as `$N` (SQLite's numbering),
 * owned; NULL when a `?` is inside a quoted literal or identifier. */
char *pg_translate(const char *sql);

/* Migration @v (to version @v + 1); NULL when that version has nothing
 * for PostgreSQL (a new database starts at the first non-NULL one). */
const char *pg_migration(int v);
/* The schema version this fleetd brings a database to. */
int pg_schema_latest(void);

#endif
