/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL backend (docs/telemetry.md "Forwarding"): one table
 *
 *     device text, metric text, ts timestamptz, value double precision,
 *     PRIMARY KEY (device, metric, ts)
 *
 * made a TimescaleDB hypertable when the extension can be had, a plain
 * table otherwise; a batch is one multi-row INSERT ... ON CONFLICT DO
 * NOTHING (one statement: one transaction), so a retried batch stores
 * nothing twice.  After a failure that is not the data's, the next
 * attempt opens a new connection (and checks the table again).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "fwd_internal.h"
#include "log.h"
#include "pq.h"
#include "util.h"

struct pg {
	PGconn *conn; /* NULL while disconnected */
	char *conninfo, *table, *password;
	char connect_timeout[16], tcp_timeout[16], options[48];
	bool hypertable_logged;
};

static void on_notice(void *arg, const char *msg)
{
	fl_debug("postgres: %.*s", (int)strcspn(msg, "\n"), msg);
}

static void disconnect(struct pg *pg)
{
	PQfinish(pg->conn);
	pg->conn = NULL;
}

/* Run @sql; 0 when it succeeded, else the error (SQLSTATE class 22 or
 * 23, a data or constraint error, is FWD_BAD_BATCH). */
static int check_result(struct pg *pg, PGresult *res, struct fl_error *err)
{
	ExecStatusType st = PQresultStatus(res);
	const char *state;
	int rc;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		PQclear(res);
		return 0;
	}
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	rc = state && (strncmp(state, "22", 2) == 0 ||
		       strncmp(state, "23", 2) == 0)
		 ? FWD_BAD_BATCH
		 : FL_ERR;
	fl_fail(err, rc, "postgres: %.*s",
		(int)strcspn(PQerrorMessage(pg->conn), "\n"),
		PQerrorMessage(pg->conn));
	PQclear(res);
	if (PQstatus(pg->conn) != CONNECTION_OK)
		disconnect(pg);
	return rc;
}

static int exec(struct pg *pg, const char *sql, struct fl_error *err)
{
	return check_result(pg, PQexec(pg->conn, sql), err);
}

/* The hypertable, where TimescaleDB is installed (it is not packaged
 * for Debian 12: there the plain table is what runs). */
static void try_hypertable(struct pg *pg)
{
	struct fl_error e = {0};
	char *sql;

	if (exec(pg, "CREATE EXTENSION IF NOT EXISTS timescaledb", &e)) {
		if (!pg->hypertable_logged)
			fl_info("postgres: no timescaledb (%s): a plain table",
				e.msg);
		pg->hypertable_logged = true;
		return;
	}
	sql = fl_xasprintf("SELECT create_hypertable('%s', 'ts', "
			   "if_not_exists => TRUE, migrate_data => TRUE)",
			   pg->table);
	if (exec(pg, sql, &e))
		fl_warn("postgres: no hypertable: %s", e.msg);
	free(sql);
}

static int create_table(struct pg *pg, struct fl_error *err)
{
	char *sql =
	    fl_xasprintf("CREATE TABLE IF NOT EXISTS %s (device text NOT NULL, "
			 "metric text NOT NULL, ts timestamptz NOT NULL, "
			 "value double precision NOT NULL, "
			 "PRIMARY KEY (device, metric, ts))",
			 pg->table);
	int rc = exec(pg, sql, err);

	free(sql);
	if (!rc)
		try_hypertable(pg);
	return pg->conn ? rc : fl_fail(err, FL_EUNREACH, "postgres: lost");
}

/* Connect (the conninfo's own settings win over our timeouts). */
static int connect_db(struct pg *pg, struct fl_error *err)
{
	const char *keys[] = {"connect_timeout",
			      "tcp_user_timeout",
			      "options",
			      "application_name",
			      "password",
			      "dbname",
			      NULL};
	const char *vals[] = {
	    pg->connect_timeout, pg->tcp_timeout, pg->options, "fleetd",
	    pg->password,	 pg->conninfo,	  NULL};

	if (!pg->password) { /* libpq then reads PGPASSWORD or passfile */
		keys[4] = "dbname";
		vals[4] = pg->conninfo;
		keys[5] = vals[5] = NULL;
	}
	pg->conn = PQconnectdbParams(keys, vals, 1);
	if (!pg->conn)
		return fl_fail(err, FL_ENOMEM, "postgres: out of memory");
	if (PQstatus(pg->conn) != CONNECTION_OK) {
		fl_fail(err, FL_EUNREACH, "postgres: %.*s",
			(int)strcspn(PQerrorMessage(pg->conn), "\n"),
			PQerrorMessage(pg->conn));
		disconnect(pg);
		return FL_EUNREACH;
	}
	PQsetNoticeProcessor(pg->conn, on_notice, NULL);
	return create_table(pg, err);
}

/* ISO 8601 UTC with milliseconds, what timestamptz reads exactly. */
static void format_ts(int64_t ms, char buf[static 40])
{
	int64_t s = ms / 1000, frac = ms % 1000;
	time_t t;
	struct tm tm;

	if (frac < 0) {
		frac += 1000;
		s--;
	}
	t = (time_t)s;
	gmtime_r(&t, &tm);
	snprintf(buf, 40, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)frac);
}

/* INSERT INTO t VALUES ($1,$2,$3,$4),... ON CONFLICT DO NOTHING */
static char *insert_sql(const char *table, size_t n)
{
	size_t cap = 128 + strlen(table) + n * 48, len;
	char *sql = fl_xmalloc(cap);

	len = (size_t)snprintf(sql, cap,
			       "INSERT INTO %s (device, metric, ts, value) "
			       "VALUES ",
			       table);
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(
		    sql + len, cap - len, "%s($%zu, $%zu, $%zu, $%zu)",
		    i ? ", " : "", 4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4);
	snprintf(sql + len, cap - len, " ON CONFLICT DO NOTHING");
	return sql;
}

static int pg_insert(struct pg *pg, struct fwd_pt *const *pts, size_t n,
		     struct fl_error *err)
{
	const char **vals = fl_xcalloc(4 * n, sizeof(*vals));
	char(*nums)[2][40] = fl_xcalloc(n, sizeof(*nums));
	char *sql = insert_sql(pg->table, n);
	int rc;

	for (size_t i = 0; i < n; i++) {
		format_ts(pts[i]->ts_ms, nums[i][0]);
		snprintf(nums[i][1], 40, "%.17g", pts[i]->value);
		vals[4 * i] = pts[i]->device;
		vals[4 * i + 1] = pts[i]->metric;
		vals[4 * i + 2] = nums[i][0];
		vals[4 * i + 3] = nums[i][1];
	}
	rc = check_result(pg,
			  PQexecParams(pg->conn, sql, (int)(4 * n), NULL, vals,
				       NULL, NULL, 0),
			  err);
	free(sql);
	free(nums);
	free(vals);
	return rc;
}

static int pg_send(void *ctx, struct fwd_pt *const *pts, size_t n,
		   struct fl_error *err)
{
	struct pg *pg = ctx;
	int rc = pg->conn ? 0 : connect_db(pg, err);

	if (!rc)
		rc = pg_insert(pg, pts, n, err);
	/* anything but bad data: start afresh next time, so a table
	 * dropped or a grant fixed meanwhile is seen by CREATE TABLE */
	if (rc && rc != FWD_BAD_BATCH && pg->conn)
		disconnect(pg);
	return rc;
}

static void pg_close(void *ctx)
{
	struct pg *pg = ctx;

	if (!pg)
		return;
	if (pg->conn)
		disconnect(pg);
	free(pg->conninfo);
	free(pg->table);
	fl_free_secret(pg->password);
	free(pg);
}

/* A password belongs in password_file, PGPASSWORD or a passfile: the
 * conninfo is in fleetd.conf and in messages. */
static int check_conninfo(const char *conninfo, struct fl_error *err)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	bool pw = false;

	if (!opts) {
		fl_fail(err, FL_EINVAL, "[postgres] conninfo: %.*s",
			msg ? (int)strcspn(msg, "\n") : 7,
			msg ? msg : "invalid");
		PQfreemem(msg);
		return FL_EINVAL;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		pw |= strcmp(o->keyword, "password") == 0 && o->val;
	PQconninfoFree(opts);
	return pw ? fl_fail(err, FL_EINVAL,
			    "[postgres] conninfo: no password here; use "
			    "password_file, PGPASSWORD or a passfile")
		  : 0;
}

static int pg_open(const struct srv_fwd_config *cfg, void **ret_ctx,
		   struct fl_error *err)
{
	struct pg *pg;
	int rc = fl_pq_load(err);

	if (!rc)
		rc = check_conninfo(cfg->conninfo, err);
	if (rc)
		return rc;
	pg = fl_xcalloc(1, sizeof(*pg));
	pg->conninfo = fl_xstrdup(cfg->conninfo);
	pg->table = fl_xstrdup(cfg->table);
	snprintf(pg->connect_timeout, sizeof(pg->connect_timeout), "%llu",
		 (unsigned long long)(cfg->timeout_ms + 999) / 1000);
	snprintf(pg->tcp_timeout, sizeof(pg->tcp_timeout), "%llu",
		 (unsigned long long)cfg->timeout_ms);
	snprintf(pg->options, sizeof(pg->options), "-c statement_timeout=%llu",
		 (unsigned long long)cfg->timeout_ms);
	rc = srv_fwd_password(cfg, &pg->password, err);
	if (rc) {
		pg_close(pg);
		return rc;
	}
	*ret_ctx = pg;
	return 0;
}

const struct fwd_backend srv_fwd_pg = {
    .name = "postgres",
    .open = pg_open,
    .send = pg_send,
    .close = pg_close,
};
