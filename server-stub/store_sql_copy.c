/* SPDX-License-Identifier: MIT */
/*
 * Moving an installation between databases (fleetd migrate): every row
 * of every table, in insertion order, into a new store of the same
 * schema version, in one transaction of the destination.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sql.h"
#include "util.h"

/* The tables in an order their references allow, with the columns both
 * schemas have (not PostgreSQL's own rowid).  @read: what the source
 * selects when not the columns themselves.  Leases are not copied: their
 * holders are the old installation's processes. */
static const struct {
	const char *table, *cols, *read;
} tables[] = {
    {"tokens",
     "id, hash, kind, name, role, grp, uses_left, created,"
     " expires, last_used, revoked, created_by",
     NULL},
    {"audit", "id, ts, actor, method, path, status, remote, detail", NULL},
    {"devices",
     "id, grp, state, created, enrolled_by, online, last_seen,"
     " firmware, slot, health, agent, last_event, last_seq",
     NULL},
    {"device_labels", "device, key, value", NULL},
    {"certs",
     "serial, device, not_before, not_after, issued, revoked,"
     " reason, pending, sha256",
     NULL},
    {"counters", "name, value", NULL},
    {"bundles",
     "id, sha256, name, version, security_version, hardware,"
     " size, manifest, created, uploaded_by",
     NULL},
    {"roots", "version, envelope, expires, added, added_by", NULL},
    {"jobs",
     "id, device, type, bundle, command, rollout, state, final,"
     " stage, reason, from_version, to_version, bytes, total,"
     " created, updated, created_by, expires, seq",
     NULL},
    {"job_events", "job, seq, ts, state, event", NULL},
    {"rollouts",
     "id, bundle, version, spec, state, reason, wave, waves,"
     " soak_s, health_window_s, device_timeout_s, fail_percent,"
     " min_sample, rate_per_min, concurrency, auto_rollback,"
     " tripped, base_failed, base_finished, soak_until,"
     " last_command, created, updated, finished, created_by",
     NULL},
    {"rollout_waves", "rollout, wave, stop, devices, started, done", NULL},
    {"rollout_devices",
     "rollout, device, wave, pos, state, active, job,"
     " rollback_job, from_version, reason, commanded, sent,"
     " sends, cancel_sent, finished, offline_since, updated",
     NULL},
    {"rollout_events", "id, rollout, ts, kind, device, wave, detail", NULL},
    {"shadows",
     "device, desired, desired_meta, desired_version,"
     " desired_updated, reported, reported_version,"
     " reported_updated",
     NULL},
    {"telemetry_state", "device, seq, reenrolled, dropped, points, oldest",
     NULL},
    /* a double as SQLite's text would lose digits */
    {"telemetry", "device, metric, ts, value, seq",
     "device, metric, ts, printf('%.17g', value), seq"},
    /* answers a retry after the move must still find */
    {"idempotency", "id_hash, request_hash, created, status, answer", NULL},
};

struct copy {
	struct srv_store_be *dst;
	const char *insert;
	int n;
	long rows;
	struct fl_error *err;
};

static int copy_row(struct db_row *r, void *ctx)
{
	struct copy *c = ctx;
	const char *vals[32];

	for (int i = 0; i < c->n && i < 32; i++)
		vals[i] = db_col_text(r, i);
	c->rows++;
	return c->dst->drv->run_text(c->dst, c->insert, c->n, vals, c->err);
}

/* "?, ?, ..." for the @n columns of @cols; caller frees. */
static char *marks(const char *cols, int *ret_n)
{
	int n = 1;
	char *m;

	for (const char *p = cols; *p; p++)
		n += *p == ',';
	m = fl_xcalloc((size_t)n, 3);
	for (int i = 0, o = 0; i < n; i++)
		o += snprintf(m + o, (size_t)(3 * n - o), i ? ", ?" : "?");
	*ret_n = n;
	return m;
}

static int copy_table(struct srv_store_be *dst, struct srv_store_be *src,
		      size_t t, long *rows, struct fl_error *err)
{
	struct copy c = {.dst = dst, .err = err};
	char *m = marks(tables[t].cols, &c.n);
	char *ins = fl_xasprintf("INSERT INTO %s (%s) VALUES (%s)",
				 tables[t].table, tables[t].cols, m);
	char *sel = fl_xasprintf(
	    "SELECT %s FROM %s%s",
	    tables[t].read ? tables[t].read : tables[t].cols, tables[t].table,
	    DB_DIALECT(src, " ORDER BY rowid", ""));
	int rc;

	c.insert = ins;
	rc = db_query_rows(src, copy_row, &c, err, sel, NULL);
	if (rc)
		fl_error_prefix(err, "%s", tables[t].table);
	*rows += c.rows;
	free(sel);
	free(ins);
	free(m);
	return rc;
}

/* After ids were copied, PostgreSQL's identities go on from the highest. */
static int identities(struct srv_store_be *dst, struct fl_error *err)
{
	static const char *const ids[] = {"audit", "rollout_events"};
	int rc = 0;

	for (size_t i = 0; !rc && dst->drv->dialect == DB_PG && i < 2; i++) {
		char *q = fl_xasprintf(
		    "SELECT setval(pg_get_serial_sequence('%s', 'id'),"
		    " (SELECT coalesce(max(id), 0) + 1 FROM %s), false)",
		    ids[i], ids[i]);

		rc = db_run(dst, NULL, err, q, NULL);
		free(q);
	}
	return rc;
}

static int copy_all(struct srv_store_be *dst, struct srv_store_be *src,
		    long *rows, struct fl_error *err)
{
	struct db_first f;
	int rc;

	rc = db_query_first(dst, &f, err,
			    "SELECT (SELECT count(*) FROM tokens)"
			    " + (SELECT count(*) FROM devices)",
			    NULL);
	if (!rc && f.i[0])
		rc = fl_fail(err, FL_ECONFLICT,
			     "the destination is not empty (%lld tokens and "
			     "devices)",
			     (long long)f.i[0]);
	db_first_free(&f);
	if (!rc)
		rc = db_run(dst, NULL, err, "DELETE FROM counters", NULL);
	for (size_t t = 0; !rc && t < FL_ARRAY_SIZE(tables); t++)
		rc = copy_table(dst, src, t, rows, err);
	return rc ? rc : identities(dst, err);
}

int sql_copy_from(struct srv_store_be *dst, struct srv_store_be *src,
		  long *ret_rows, struct fl_error *err)
{
	int rc;

	if (src->drv->schema_version(src) != dst->drv->schema_version(dst))
		return fl_fail(err, FL_ECONFLICT,
			       "the databases' schemas differ");
	pthread_mutex_lock(&src->lock);
	pthread_mutex_lock(&dst->lock);
	rc = db_begin(dst, err);
	if (!rc)
		rc = db_end(dst, copy_all(dst, src, ret_rows, err), err);
	pthread_mutex_unlock(&dst->lock);
	pthread_mutex_unlock(&src->lock);
	return rc;
}
