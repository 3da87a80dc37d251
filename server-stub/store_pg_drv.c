/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL driver (store_sql.h) on libpq, loaded on first use
 * (common/pq.h).  One connection, used under the store's lock.
 *
 * Statements: the ops' `?` and `?N` become `$N` when a statement is
 * first prepared (a `?` inside a quoted literal is refused: it would be
 * a parameter in SQLite and text here); each is prepared once per
 * connection under a name and kept, keyed by its text and bind types.
 * Parameters go as text with the types their bind letters say (s text,
 * i/d/n bigint, f double precision), so PostgreSQL never guesses one
 * (run_text's, letter u, have none: each takes its column's type).
 *
 * Errors read as SQLite's do: a constraint violation (SQLSTATE class 23)
 * is FL_ECONFLICT.  A serialisation failure or deadlock outside a
 * transaction is retried a few times.  A lost connection is opened again
 * on the next call, never inside a transaction: its statements fail
 * until the op's ROLLBACK.  Messages name host, port and database, never
 * the password.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "pq.h"
#include "store_pg.h"
#include "util.h"

#define PG_CACHE_SIZE 128
#define PG_RETRIES 3

/* Type OIDs (pg_type.h is server-side). */
#define OID_INT8 20
#define OID_TEXT 25
#define OID_FLOAT8 701

struct pg_stmt {
	uint64_t hash; /* 0: empty slot */
	char *sql, *types;
};

struct pg_conn {
	PGconn *conn;
	char where[256]; /* host:port/db, for messages */
	struct pg_stmt cache[PG_CACHE_SIZE];
	bool in_tx, lost; /* lost: the connection went inside @in_tx */
};

static struct pg_conn *pg_conn(struct srv_store_be *s)
{
	return s->conn;
}

static void on_notice(void *arg, const char *msg)
{
	(void)arg;
	fl_debug("postgres: %.*s", (int)strcspn(msg, "\n"), msg);
}

static uint64_t stmt_hash(const char *sql, const char *types)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (const char *p = sql; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	for (const char *p = types ? types : ""; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h ? h : 1;
}

static void cache_clear(struct pg_conn *c)
{
	for (size_t i = 0; i < PG_CACHE_SIZE; i++) {
		free(c->cache[i].sql);
		free(c->cache[i].types);
		c->cache[i] = (struct pg_stmt){0};
	}
}

/* The first line of @msg. */
static int line_len(const char *msg)
{
	return (int)strcspn(msg ? msg : "", "\n");
}

static int conn_fail(struct pg_conn *c, struct fl_error *err, const char *what)
{
	const char *msg = c->conn ? PQerrorMessage(c->conn) : "out of memory";

	return fl_fail(err, FL_EUNREACH, "database %s: %s: %.*s", c->where,
		       what, line_len(msg), msg);
}

static int res_fail(struct pg_conn *c, PGresult *res, struct fl_error *err,
		    const char *what)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	int code =
	    state && strncmp(state, "23", 2) == 0 ? FL_ECONFLICT : FL_EIO;

	if (!msg)
		msg = PQerrorMessage(c->conn);
	return fl_fail(err, code, "database: %s: %.*s", what, line_len(msg),
		       msg);
}

/*
 * @sql with its `?` and `?N` parameters as `$N` (SQLite's numbering: a
 * bare `?` is one more than the largest number so far), or NULL when a
 * `?` is inside a quoted literal or identifier.
 */
char *pg_translate(const char *sql)
{
	size_t cap = 8 * strlen(sql) + 16;
	char *out = fl_xmalloc(cap), *o = out;
	char quote = 0, *end;
	long max = 0, n;

	for (const char *p = sql; *p; p++) {
		if (quote || *p == '\'' || *p == '"') {
			if (*p == '?')
				return free(out), NULL;
			quote = !quote ? *p : *p == quote ? 0 : quote;
			*o++ = *p;
			continue;
		}
		if (*p != '?') {
			*o++ = *p;
			continue;
		}
		n = 0;
		if (isdigit((unsigned char)p[1])) { /* ?N; strtol alone would
						     * take "?-1" and "? 5" */
			n = strtol(p + 1, &end, 10);
			p = end - 1;
		}
		n = n > 0 ? n : max + 1;
		max = n > max ? n : max;
		o += snprintf(o, cap - (size_t)(o - out), "$%ld", n);
	}
	*o = '\0';
	return out;
}

static Oid *param_types(const char *types, int n)
{
	Oid *t = fl_xcalloc((size_t)n + 1, sizeof(*t));

	for (int i = 0; i < n; i++)
		t[i] = types[i] == 's'	 ? OID_TEXT
		       : types[i] == 'f' ? OID_FLOAT8
		       : types[i] == 'u' ? 0
					 : OID_INT8;
	return t;
}

/* Prepare @sql (@types) on the connection as statement "fl<slot>", or
 * find it prepared; *ret_name "" (the unnamed statement) when the cache
 * is full. */
static int stmt_prepare(struct pg_conn *c, const char *sql, const char *types,
			char ret_name[16], struct fl_error *err)
{
	uint64_t h = stmt_hash(sql, types);
	int n = types ? (int)strlen(types) : 0, slot = -1;
	char *text;
	Oid *oids;
	PGresult *res;

	for (int i = 0; i < PG_CACHE_SIZE; i++) {
		struct pg_stmt *st = &c->cache[i];

		if (st->hash == h && strcmp(st->sql, sql) == 0 &&
		    strcmp(st->types, types ? types : "") == 0) {
			snprintf(ret_name, 16, "fl%d", i);
			return 0;
		}
		if (!st->hash && slot < 0)
			slot = i;
	}
	text = pg_translate(sql);
	if (!text)
		return fl_fail(err, FL_ERR,
			       "database: a parameter inside a quoted literal");
	ret_name[0] = '\0';
	if (slot >= 0)
		snprintf(ret_name, 16, "fl%d", slot);
	oids = param_types(types ? types : "", n);
	res = PQprepare(c->conn, ret_name, text, n, oids);
	free(oids);
	free(text);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		int rc = res_fail(c, res, err, "prepare");

		PQclear(res);
		return rc;
	}
	PQclear(res);
	if (slot >= 0)
		c->cache[slot] = (struct pg_stmt){
		    h, fl_xstrdup(sql), fl_xstrdup(types ? types : "")};
	return 0;
}

/* The parameters as text (NULL for SQL NULL) in @vals, numbers in @buf. */
static void format_params(const char *types, va_list ap, const char **vals,
			  char (*buf)[32])
{
	for (int i = 0; types && types[i]; i++) {
		int64_t v;

		vals[i] = buf[i];
		switch (types[i]) {
		case 's':
			vals[i] = va_arg(ap, const char *);
			break;
		case 'd':
			snprintf(buf[i], 32, "%d", va_arg(ap, int));
			break;
		case 'f':
			snprintf(buf[i], 32, "%.17g", va_arg(ap, double));
			break;
		default: /* i, n */
			v = va_arg(ap, int64_t);
			snprintf(buf[i], 32, "%lld", (long long)v);
			if (types[i] == 'n' && v < 0)
				vals[i] = NULL;
		}
	}
}

/* Open the connection again (never inside a transaction). */
static int reconnect(struct pg_conn *c, struct fl_error *err)
{
	if (c->lost)
		return fl_fail(err, FL_EUNREACH,
			       "database %s: connection lost in a transaction",
			       c->where);
	cache_clear(c);
	PQreset(c->conn);
	if (PQstatus(c->conn) != CONNECTION_OK)
		return conn_fail(c, err, "reconnect");
	fl_info("database %s: connected again", c->where);
	return 0;
}

/* BEGIN, COMMIT and ROLLBACK: the transaction state they leave. */
static bool tx_control(struct pg_conn *c, const char *sql)
{
	if (strcmp(sql, "BEGIN") == 0)
		c->in_tx = true;
	else if (strcmp(sql, "COMMIT") == 0 || strcmp(sql, "ROLLBACK") == 0)
		c->in_tx = false;
	else
		return false;
	return true;
}

static bool retryable(PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return state &&
	       (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0);
}

/* One try of a statement; *ret the result on success (caller clears). */
static int exec_once(struct pg_conn *c, const char *sql, const char *types,
		     const char *const *vals, PGresult **ret,
		     struct fl_error *err)
{
	int n = types ? (int)strlen(types) : 0, rc;
	char name[16];
	PGresult *res;

	if (PQstatus(c->conn) != CONNECTION_OK && (rc = reconnect(c, err)))
		return rc;
	rc = stmt_prepare(c, sql, types, name, err);
	if (rc)
		return rc;
	res = PQexecPrepared(c->conn, name, n, vals, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK) {
		*ret = res;
		return 0;
	}
	rc = retryable(res) && !c->in_tx ? FL_ETIMEOUT
					 : res_fail(c, res, err, "step");
	PQclear(res);
	if (PQstatus(c->conn) != CONNECTION_OK) {
		c->lost = c->in_tx;
		rc = conn_fail(c, err, "connection lost");
	}
	return rc;
}

static int exec_v(struct srv_store_be *s, const char *sql, const char *types,
		  va_list ap, PGresult **ret, struct fl_error *err)
{
	struct pg_conn *c = pg_conn(s);
	int n = types ? (int)strlen(types) : 0, rc, tries = 0;
	const char **vals = fl_xcalloc((size_t)n + 1, sizeof(*vals));
	char(*buf)[32] = fl_xcalloc((size_t)n + 1, sizeof(*buf));
	bool was_lost = c->lost;

	format_params(types, ap, vals, buf);
	if (tx_control(c, sql) && !c->in_tx && was_lost) {
		c->lost = false; /* the server rolled it back */
		rc = strcmp(sql, "ROLLBACK") == 0
			 ? 0
			 : fl_fail(err, FL_EUNREACH,
				   "database %s: connection lost in a "
				   "transaction",
				   c->where);
		*ret = NULL;
	} else {
		do
			rc = exec_once(c, sql, types, vals, ret, err);
		while (rc == FL_ETIMEOUT && ++tries < PG_RETRIES);
		if (rc == FL_ETIMEOUT)
			rc = fl_fail(err, FL_EIO,
				     "database: serialisation failure, "
				     "%d tries",
				     tries);
	}
	free(vals);
	free(buf);
	return rc;
}

/* @res's rows to @row (NULL: none expected), *@ret_changes (may be
 * NULL) the rows it changed; @res cleared. */
static int res_rows(PGresult *res, int (*row)(struct db_row *, void *),
		    void *ctx, int *ret_changes)
{
	struct db_row r = {&db_pg_driver, res, 0};
	int n = PQntuples(res), rc = 0;

	for (r.i = 0; row && !rc && r.i < n; r.i++)
		rc = row(&r, ctx);
	if (!rc && ret_changes)
		*ret_changes = PQresultStatus(res) == PGRES_TUPLES_OK
				   ? n
				   : atoi(PQcmdTuples(res));
	PQclear(res);
	return rc;
}

static int run_v(struct srv_store_be *s, int *ret_changes, struct fl_error *err,
		 const char *sql, const char *types, va_list ap)
{
	PGresult *res = NULL;
	int rc = exec_v(s, sql, types, ap, &res, err);

	return rc ? rc : res_rows(res, NULL, NULL, ret_changes);
}

static int rows_v(struct srv_store_be *s, int (*row)(struct db_row *, void *),
		  void *ctx, struct fl_error *err, const char *sql,
		  const char *types, va_list ap)
{
	PGresult *res = NULL;
	int rc = exec_v(s, sql, types, ap, &res, err);

	return rc ? rc : res_rows(res, row, ctx, NULL);
}

static int rows_args(struct srv_store_be *s,
		     int (*row)(struct db_row *, void *), void *ctx,
		     int *ret_changes, struct fl_error *err, const char *sql,
		     size_t n, const struct db_arg *args)
{
	char *types = fl_xmalloc(n + 1);
	const char **vals = fl_xcalloc(n + 1, sizeof(*vals));
	char(*buf)[24] = fl_xcalloc(n + 1, sizeof(*buf));
	PGresult *res = NULL;
	int rc;

	for (size_t i = 0; i < n; i++) {
		types[i] = args[i].type;
		vals[i] = args[i].s;
		if (args[i].type == 's' ||
		    (args[i].type == 'n' && args[i].i < 0))
			continue;
		snprintf(buf[i], sizeof(buf[i]), "%lld", (long long)args[i].i);
		vals[i] = buf[i];
	}
	types[n] = '\0';
	rc = exec_once(pg_conn(s), sql, types, vals, &res, err);
	if (!rc)
		rc = res_rows(res, row, ctx, ret_changes);
	free(types);
	free(vals);
	free(buf);
	return rc;
}

static int run_text(struct srv_store_be *s, const char *sql, int n,
		    const char *const *vals, struct fl_error *err)
{
	char *types = fl_xmalloc((size_t)n + 1);
	PGresult *res = NULL;
	int rc;

	memset(types, 'u', (size_t)n);
	types[n] = '\0';
	rc = exec_once(pg_conn(s), sql, types, vals, &res, err);
	PQclear(res);
	free(types);
	return rc;
}

static const char *col_text(struct db_row *r, int i)
{
	return PQgetisnull(r->res, r->i, i) ? NULL
					    : PQgetvalue(r->res, r->i, i);
}

/* Booleans read as 1 and 0, as SQLite's comparisons give them. */
static int64_t col_int(struct db_row *r, int i)
{
	const char *v = col_text(r, i);

	if (!v)
		return 0;
	if (v[0] == 't' || v[0] == 'f')
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

static double col_double(struct db_row *r, int i)
{
	const char *v = col_text(r, i);

	return v ? strtod(v, NULL) : 0;
}

static bool col_null(struct db_row *r, int i)
{
	return PQgetisnull(r->res, r->i, i);
}

static int col_count(struct db_row *r)
{
	return PQnfields(r->res);
}

/* A script (several statements, no parameters), for the schema. */
static int exec_script(struct pg_conn *c, const char *sql, PGresult **ret,
		       struct fl_error *err)
{
	PGresult *res = PQexec(c->conn, sql);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = res_fail(c, res, err, "schema");
	if (!rc && ret)
		*ret = res;
	else
		PQclear(res);
	return rc;
}

static int version_read(struct pg_conn *c, struct fl_error *err)
{
	PGresult *res = NULL;
	int v = -1;

	if (exec_script(c, "SELECT version FROM schema_version", &res, err))
		return -1;
	v = PQntuples(res) ? atoi(PQgetvalue(res, 0, 0)) : 0;
	PQclear(res);
	return v;
}

static int migrate_in_tx(struct pg_conn *c, struct fl_error *err)
{
	int n = pg_schema_latest(), v, rc;
	char bump[96];

	rc = exec_script(c,
			 "SELECT pg_advisory_xact_lock(1718379841);"
			 "CREATE TABLE IF NOT EXISTS schema_version"
			 " (version BIGINT NOT NULL);",
			 NULL, err);
	v = rc ? -1 : version_read(c, err);
	if (v < 0)
		return rc ? rc : FL_EIO;
	if (v > n)
		return fl_fail(
		    err, FL_ECONFLICT,
		    "database schema %d is newer than this fleetd (%d)", v, n);
	for (; !rc && v < n; v++)
		if (pg_migration(v)) {
			rc = exec_script(c, pg_migration(v), NULL, err);
			if (rc)
				fl_error_prefix(err, "migration %d", v + 1);
		}
	snprintf(bump, sizeof(bump),
		 "DELETE FROM schema_version;"
		 "INSERT INTO schema_version VALUES (%d)",
		 n);
	return rc ? rc : exec_script(c, bump, NULL, err);
}

/* Every pending migration in one transaction, one fleetd at a time. */
static int migrate(struct pg_conn *c, struct fl_error *err)
{
	int rc = exec_script(c, "BEGIN", NULL, err);

	if (!rc)
		rc = migrate_in_tx(c, err);
	if (!rc)
		rc = exec_script(c, "COMMIT", NULL, err);
	if (rc)
		exec_script(c, "ROLLBACK", NULL, NULL);
	return rc;
}

/* host:port/db of @url for messages; the URL itself may hold a password. */
static int describe(struct pg_conn *c, const char *url, struct fl_error *err)
{
	const char *host = "", *port = "", *db = "";
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &msg);

	if (!opts) {
		PQfreemem(msg);
		return fl_fail(err, FL_EINVAL,
			       "database: not a valid PostgreSQL URL");
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
	}
	snprintf(c->where, sizeof(c->where), "postgresql://%s%s%s/%s", host,
		 *port ? ":" : "", port, db);
	PQconninfoFree(opts);
	return 0;
}

static int pg_open(struct srv_store_be *s, const char *url,
		   struct fl_error *err)
{
	static const char *const keys[] = {"dbname", "connect_timeout",
					   "application_name", NULL};
	const char *vals[] = {url, "10", "fleetd", NULL};
	struct pg_conn *c = fl_xcalloc(1, sizeof(*c));
	int rc;

	s->conn = c;
	rc = fl_pq_load(err);
	if (!rc)
		rc = describe(c, url, err);
	if (rc)
		return rc;
	c->conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(c->conn) != CONNECTION_OK)
		return conn_fail(c, err, "cannot connect");
	PQsetNoticeProcessor(c->conn, on_notice, NULL);
	rc = migrate(c, err);
	if (rc)
		fl_error_prefix(err, "%s", c->where);
	return rc;
}

static void pg_close(struct srv_store_be *s)
{
	struct pg_conn *c = pg_conn(s);

	if (!c)
		return;
	if (c->conn)
		PQfinish(c->conn);
	cache_clear(c);
	free(c);
}

static int pg_schema_version(struct srv_store_be *s)
{
	return version_read(pg_conn(s), NULL);
}

const struct db_driver db_pg_driver = {
    .name = "postgresql",
    .dialect = DB_PG,
    .open = pg_open,
    .close = pg_close,
    .schema_version = pg_schema_version,
    .run = run_v,
    .rows = rows_v,
    .run_text = run_text,
    .rows_args = rows_args,
    .begin_sql = "BEGIN",
    .col_text = col_text,
    .col_int = col_int,
    .col_double = col_double,
    .col_null = col_null,
    .col_count = col_count,
};
