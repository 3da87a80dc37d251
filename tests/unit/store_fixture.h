/* SPDX-License-Identifier: MIT */
/*
 * The store unit tests' fixture: a fresh SQLite store in its own temp
 * dir, opened by setup and removed by teardown (cmocka setup/teardown).
 * With FLEET_TEST_PG set to a PostgreSQL URL (tests/e2e/t1401 sets it)
 * the store is that database instead, emptied first; f->pg says so.
 * Include after cmocka.h.
 */
#ifndef FLEET_TEST_STORE_FIXTURE_H
#define FLEET_TEST_STORE_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "tmpdir.h"

#include "pq.h"
#include "fsutil.h"
#include "store.h"
#include "util.h"

struct fixture {
	char dir[64];
	char *db;
	bool pg;
	struct srv_store *s;
};

static bool fx_is_pg(const char *db)
{
	return strncmp(db, "postgresql://", 13) == 0;
}

/* A PostgreSQL connection to @url (NULL when it fails). */
static PGconn *fx_pg_connect(const char *url)
{
	const char *keys[] = {"dbname", NULL}, *vals[] = {url, NULL};
	PGconn *c;

	if (fl_pq_load(NULL))
		return NULL;
	c = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(c) == CONNECTION_OK)
		return c;
	fprintf(stderr, "fx_pg_connect: %s", PQerrorMessage(c));
	PQfinish(c);
	return NULL;
}

static int fx_pg_sql(const char *url, const char *q, char *out, size_t size)
{
	PGconn *c = fx_pg_connect(url);
	PGresult *res = c ? PQexec(c, q) : NULL;
	ExecStatusType st = PQresultStatus(res);
	int rc = st == PGRES_TUPLES_OK && PQntuples(res) > 0	   ? 1
		 : st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK ? 0
								   : -1;

	if (rc < 0)
		fprintf(stderr, "fx_sql: %s: %s", q, PQerrorMessage(c));
	if (rc > 0 && out)
		fl_strlcpy(out, PQgetvalue(res, 0, 0), size);
	PQclear(res);
	PQfinish(c);
	return rc;
}

static int fx_sqlite_sql(const char *path, const char *q, char *out,
			 size_t size)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) ==
		SQLITE_OK &&
	    sqlite3_busy_timeout(h, 5000) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, q, -1, &st, NULL) == SQLITE_OK) {
		step = sqlite3_step(st);
		rc = step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : -1;
	}
	if (rc > 0 && out)
		fl_strlcpy(out, (const char *)sqlite3_column_text(st, 0), size);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return rc;
}

/*
 * Raw SQL @q on database @db (a SQLite path or a PostgreSQL URL) over a
 * separate connection: 1 with the first column of the first row as text
 * in @out (may be NULL), 0 without a row, -1 on an error.
 */
static inline int fx_sql(const char *db, const char *q, char *out, size_t size)
{
	return fx_is_pg(db) ? fx_pg_sql(db, q, out, size)
			    : fx_sqlite_sql(db, q, out, size);
}

/* Raw SQL's first column of the first row as an integer, -1 for none. */
static inline int64_t fx_sql_int(const char *db, const char *q)
{
	char v[32];

	return fx_sql(db, q, v, sizeof(v)) > 0 ? strtoll(v, NULL, 10) : -1;
}

/* Empty PostgreSQL database @url: a new public schema. */
static int pg_reset(const char *url)
{
	return fx_pg_sql(url,
			 "SET client_min_messages = warning;"
			 "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
			 NULL, 0) < 0
		   ? -1
		   : 0;
}

/* Skip the running test when the store is on PostgreSQL: it tests
 * SQLite itself (its files, migrations of old SQLite schemas, its VM). */
#define FX_SQLITE_ONLY(f)                                                      \
	do {                                                                   \
		if ((f)->pg)                                                   \
			skip();                                                \
	} while (0)

static int setup(void **state)
{
	struct fixture *f = fl_xcalloc(1, sizeof(*f));
	struct fl_error err = {0};

	if (test_mkdtemp(f->dir, "store")) {
		free(f);
		return -1;
	}
	f->pg = getenv("FLEET_TEST_PG") != NULL;
	f->db = f->pg ? fl_xstrdup(getenv("FLEET_TEST_PG"))
		      : fl_path_join(f->dir, "fleet.db");
	*state = f;
	if (f->pg && pg_reset(f->db))
		return -1;
	return srv_store_open(f->db, &f->s, &err) ? -1 : 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	srv_store_close(f->s);
	rc = test_rmtree(f->dir);
	free(f->db);
	free(f);
	return rc;
}

#endif
