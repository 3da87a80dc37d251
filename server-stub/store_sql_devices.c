/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "store.h"
#include "store_sql.h"
#include "util.h"

int sql_enroll_token_check(struct srv_store_be *s, const char *hash_hex,
			   char ret_id[17], char *ret_group, size_t group_len,
			   struct fl_error *err)
{
	struct db_first r;
	int rc;

	/* 0 id, 1 grp, 2 kind, 3 revoked, 4 uses_left, 5 expires */
	rc = db_lquery_first(s, &r, NULL,
			     "SELECT id, grp, kind, revoked, uses_left, expires"
			     " FROM tokens WHERE hash = ?",
			     "s", hash_hex);
	if (rc)
		rc = fl_fail(err, FL_EDENIED, "unknown enrolment token");
	else if (!fl_streq(r.t[2], "enroll"))
		rc = fl_fail(err, FL_EDENIED, "not an enrolment token");
	else if (r.i[3])
		rc = fl_fail(err, FL_EDENIED, "enrolment token is revoked");
	else if (r.i[4] == 0)
		rc = fl_fail(err, FL_EDENIED, "enrolment token is used up");
	else if (r.i[5] && r.i[5] <= time(NULL))
		rc = fl_fail(err, FL_EDENIED, "enrolment token has expired");
	if (!rc) {
		fl_strlcpy(ret_group, r.t[1] ?: "", group_len);
		fl_strlcpy(ret_id, r.t[0], 17);
	}
	db_first_free(&r);
	return rc;
}

/* Inside a transaction: insert @c only while its device is active, in
 * the same statement, so no certificate is ever recorded for a device
 * that is decommissioned (or gone). */
static int insert_cert(struct srv_store_be *s, const struct srv_cert *c,
		       bool pending, struct fl_error *err)
{
	int n = 0, rc;

	rc = db_run(s, &n, err,
		    "INSERT INTO certs (serial, device, not_before, not_after,"
		    " issued, pending, sha256)"
		    " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7"
		    " WHERE EXISTS (SELECT 1 FROM devices WHERE id = ?2"
		    " AND state = 'active')",
		    "ssiiids", c->serial, c->device, c->not_before,
		    c->not_after, (int64_t)time(NULL), (int)pending, c->sha256);
	if (!rc && n != 1)
		rc = fl_fail(err, FL_ECONFLICT,
			     "device '%s' is not active: no certificate issued",
			     c->device);
	return rc;
}

/* Inside a transaction: consume one token use or fail FL_EDENIED. */
static int consume_token(struct srv_store_be *s, const char *hash,
			 struct fl_error *err)
{
	int n = 0, rc;

	rc = db_run(s, &n, err,
		    "UPDATE tokens SET uses_left = uses_left - 1,"
		    " last_used = ?2 WHERE hash = ?1 AND kind = 'enroll'"
		    " AND revoked = 0 AND uses_left > 0"
		    " AND (expires = 0 OR expires > ?2)",
		    "si", hash, (int64_t)time(NULL));
	if (!rc && n != 1)
		rc = fl_fail(err, FL_EDENIED, "enrolment token is not usable");
	return rc;
}

/* Inside a transaction: create the device or allow a re-enrolment. */
static int upsert_device(struct srv_store_be *s, const char *id,
			 const char *group, const char *by, bool allow_existing,
			 struct fl_error *err)
{
	struct db_first row;
	int rc;

	rc = db_query_first(s, &row, NULL,
			    "SELECT state FROM devices WHERE id = ?", "s", id);
	if (rc) /* new device */
		return db_run(
		    s, NULL, err,
		    "INSERT INTO devices (id, grp, created, enrolled_by)"
		    " VALUES (?, ?, ?, ?)",
		    "ssis", id, group && *group ? group : NULL,
		    (int64_t)time(NULL), by);
	if (!fl_streq(row.t[0], "active"))
		rc = fl_fail(err, FL_ECONFLICT,
			     "device id '%s' was decommissioned and cannot be"
			     " enrolled again: use a new id",
			     id);
	else if (!allow_existing)
		rc = fl_fail(err, FL_ECONFLICT,
			     "device '%s' is already enrolled", id);
	db_first_free(&row);
	return rc;
}

int sql_device_enroll(struct srv_store_be *s, const char *id, const char *group,
		      const char *enrolled_by, const char *token_hash,
		      bool allow_existing, const struct srv_cert *cert,
		      struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (rc)
		goto out;
	if (token_hash)
		rc = consume_token(s, token_hash, err);
	if (!rc)
		rc = upsert_device(s, id, group, enrolled_by, allow_existing,
				   err);
	if (!rc)
		rc = insert_cert(s, cert, false, err);
	if (!rc) /* an id enrolled again: a new telemetry stream */
		rc = db_telemetry_reenrolled(s, id, err);
	rc = db_end(s, rc, err);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Inside a transaction: the device's state, FL_ENOTFOUND if unknown. */
static int device_state(struct srv_store_be *s, const char *id,
			bool *ret_active, struct fl_error *err)
{
	struct db_first row;
	int rc;

	rc = db_query_first(s, &row, NULL,
			    "SELECT state = 'active' FROM devices WHERE id = ?",
			    "s", id);
	if (!rc)
		*ret_active = row.i[0] != 0;
	db_first_free(&row);
	return rc ? fl_fail(err, FL_ENOTFOUND, "no device '%s'", id) : 0;
}

/* Inside a transaction: one integer from a query of one row. */
static int query_int(struct srv_store_be *s, int64_t *ret, struct fl_error *err,
		     const char *sql, const char *types, const char *a,
		     int64_t b)
{
	struct db_first row;
	int rc = db_query_first(s, &row, err, sql, types, a, b);

	if (!rc)
		*ret = row.i[0];
	db_first_free(&row);
	return rc;
}

/*
 * Inside a transaction: the re-enrolment bounds of one device.  Every
 * query walks an index on (device, ...), so the cost does not grow with
 * the device's history.
 */
static int check_limits(struct srv_store_be *s, const char *device,
			const struct srv_reenroll_limits *lim,
			int64_t *ret_retry, struct fl_error *err)
{
	int64_t now = time(NULL), n = 0, oldest = 0;
	int rc;

	rc = query_int(s, &n, err,
		       "SELECT count(*) AS n FROM certs WHERE device = ?"
		       " AND issued > ?",
		       "si", device, now - 3600);
	if (!rc && n >= lim->per_hour) {
		rc = query_int(s, &oldest, err,
			       "SELECT min(issued) AS n FROM certs"
			       " WHERE device = ? AND issued > ?",
			       "si", device, now - 3600);
		*ret_retry = rc ? 3600 : oldest + 3600 - now + 1;
		return rc ? rc
			  : fl_fail(err, FL_ELIMIT,
				    "device '%s' re-enrolled %lld times in"
				    " the last hour (limit %lld)",
				    device, (long long)n,
				    (long long)lim->per_hour);
	}
	if (!rc)
		rc =
		    query_int(s, &n, err,
			      "SELECT count(*) AS n FROM certs WHERE device = ?"
			      " AND revoked > 0 AND not_after > ?",
			      "si", device, now - SRV_CRL_GRACE);
	if (!rc && n >= lim->max_revoked) {
		rc = query_int(s, &oldest, err,
			       "SELECT min(not_after) AS n FROM certs"
			       " WHERE device = ? AND revoked > 0"
			       " AND not_after > ?",
			       "si", device, now - SRV_CRL_GRACE);
		*ret_retry = rc ? 3600 : oldest + SRV_CRL_GRACE - now + 1;
		return rc ? rc
			  : fl_fail(err, FL_ELIMIT,
				    "device '%s' has %lld revoked"
				    " certificates in the CRL (limit %lld)",
				    device, (long long)n,
				    (long long)lim->max_revoked);
	}
	return rc;
}

/* Inside a transaction: revoke @device's certificates matching @which
 * (an SQL condition on certs, no parameters) except @keep (may be NULL),
 * appending the serials to @serials. */
static int revoke_where(struct srv_store_be *s, const char *device,
			const char *which, const char *keep, const char *reason,
			struct srv_strv *serials, struct fl_error *err)
{
	size_t before = serials->n;
	char *q, *u;
	int rc;

	q = fl_xasprintf(
	    "SELECT serial FROM certs WHERE device = ?1"
	    " AND revoked = 0 AND serial IS DISTINCT FROM ?2 AND %s",
	    which);
	u = fl_xasprintf("UPDATE certs SET revoked = ?3, reason = ?4,"
			 " pending = 0 WHERE device = ?1 AND revoked = 0"
			 " AND serial IS DISTINCT FROM ?2 AND %s",
			 which);
	rc = db_query_rows(s, db_row_strv, serials, err, q, "ss", device, keep);
	if (!rc && serials->n > before)
		rc = db_run(s, NULL, err, u, "ssis", device, keep,
			    (int64_t)time(NULL), reason);
	free(q);
	free(u);
	return rc;
}

/* Inside a transaction: the CRL as it stands in this transaction, handed
 * to @crl (nothing to do without one). */
static int crl_row(struct db_row *st, void *ctx)
{
	struct srv_crl_entry *e = DB_PUSH((struct srv_crl_list *)ctx);

	e->serial = db_col_str(st, 0);
	e->revoked = db_col_int(st, 1);
	return 0;
}

static int publish_in_tx(struct srv_store_be *s, const struct srv_crl_hook *crl,
			 struct fl_error *err)
{
	struct srv_crl_list entries = {0};
	int64_t number = 0;
	int rc;

	if (!crl)
		return 0;
	rc = db_run(s, NULL, err,
		    "UPDATE counters SET value = value + 1"
		    " WHERE name = 'crl_number'",
		    NULL);
	if (!rc)
		rc = query_int(s, &number, err,
			       "SELECT value AS n FROM counters WHERE name = ?",
			       "s", "crl_number", 0);
	if (!rc)
		rc = db_query_rows(s, crl_row, &entries, err,
				   "SELECT serial, revoked FROM certs"
				   " WHERE revoked > 0 AND not_after > ?"
				   " ORDER BY revoked",
				   "i", (int64_t)time(NULL) - SRV_CRL_GRACE);
	if (!rc)
		rc = crl->publish(crl->ctx, &entries, (uint64_t)number, err);
	srv_crl_list_free(&entries);
	return rc;
}

/* Hand @serials to *@ret (may be NULL) on success, else drop them. */
static int give_serials(int rc, struct srv_strv *serials, struct srv_strv *ret)
{
	if (!rc && ret)
		*ret = *serials;
	else
		srv_strv_free(serials);
	return rc;
}

static int cert_add_tx(struct srv_store_be *s, const struct srv_reenroll *re,
		       struct srv_strv *superseded, int64_t *retry,
		       struct fl_error *err)
{
	const char *dev = re->cert->device;
	int64_t live = 0;
	bool active = false;
	int rc;

	rc = device_state(s, dev, &active, err);
	if (!rc && !active)
		rc = fl_fail(err, FL_ECONFLICT,
			     "device '%s' is not active: no certificate issued",
			     dev);
	if (!rc && re->limits)
		rc = check_limits(s, dev, re->limits, retry, err);
	if (!rc)
		rc = revoke_where(s, dev, "pending = 1", re->caller_serial,
				  "superseded", superseded, err);
	if (!rc)
		rc =
		    query_int(s, &live, err,
			      "SELECT count(*) AS n FROM certs WHERE device = ?"
			      " AND revoked = 0 AND not_after > ?",
			      "si", dev, (int64_t)time(NULL));
	if (!rc && live >= SRV_MAX_LIVE_CERTS)
		rc = fl_fail(err, FL_ECONFLICT,
			     "device '%s' has %lld valid certificates: confirm"
			     " the pending one first",
			     dev, (long long)live);
	if (!rc)
		rc = insert_cert(s, re->cert, true, err);
	if (!rc && superseded->n)
		rc = publish_in_tx(s, re->crl, err);
	return rc;
}

int sql_reenroll_check(struct srv_store_be *s, const char *device,
		       const struct srv_reenroll_limits *lim,
		       int64_t *ret_retry_after, struct fl_error *err)
{
	int64_t retry = 0;
	bool active = false;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = device_state(s, device, &active, err);
	if (!rc && !active)
		rc = fl_fail(err, FL_ECONFLICT, "device '%s' is not active",
			     device);
	if (!rc && lim)
		rc = check_limits(s, device, lim, &retry, err);
	pthread_mutex_unlock(&s->lock);
	if (ret_retry_after)
		*ret_retry_after = rc == FL_ELIMIT ? retry : 0;
	return rc;
}

int sql_cert_add(struct srv_store_be *s, const struct srv_reenroll *re,
		 struct srv_strv *ret_superseded, int64_t *ret_retry_after,
		 struct fl_error *err)
{
	struct srv_strv superseded = {0};
	int64_t retry = 0;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = db_end(s, cert_add_tx(s, re, &superseded, &retry, err),
			    err);
	pthread_mutex_unlock(&s->lock);
	if (ret_retry_after)
		*ret_retry_after = rc == FL_ELIMIT ? retry : 0;
	return give_serials(rc, &superseded, ret_superseded);
}

static int confirm_tx(struct srv_store_be *s, const char *device,
		      const char *serial, const struct srv_crl_hook *crl,
		      struct srv_strv *revoked, struct fl_error *err)
{
	struct srv_strv newest = {0};
	bool active = false;
	int rc;

	rc = device_state(s, device, &active, err);
	if (!rc && !active)
		rc = fl_fail(err, FL_ECONFLICT, "device '%s' is not active",
			     device);
	if (!rc)
		rc = db_query_rows(
		    s, db_row_strv, &newest, err,
		    "SELECT serial FROM certs WHERE device = ?"
		    " AND revoked = 0 AND pending = 1"
		    /* '+': walk the live index, not the history */
		    " ORDER BY +issued DESC, +rowid DESC LIMIT 1",
		    "s", device);
	if (rc || newest.n == 0) /* nothing pending */
		goto out;
	if (!fl_streq(newest.v[0], serial))
		rc = fl_fail(err, FL_EDENIED,
			     "certificate %s is not the newest pending"
			     " certificate of '%s': only that one confirms",
			     serial, device);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "UPDATE certs SET pending = 0 WHERE serial = ?",
			    "s", serial);
	if (!rc)
		rc = revoke_where(s, device, "TRUE", serial, "superseded", revoked,
				  err);
	if (!rc && revoked->n)
		rc = publish_in_tx(s, crl, err);
out:
	srv_strv_free(&newest);
	return rc;
}

int sql_cert_confirm(struct srv_store_be *s, const char *device,
		     const char *serial, const struct srv_crl_hook *crl,
		     struct srv_strv *ret_revoked, struct fl_error *err)
{
	struct srv_strv revoked = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc) {
		rc = confirm_tx(s, device, serial, crl, &revoked, err);
		/* re-enrolled: its next telemetry may start a new stream */
		if (!rc)
			rc = db_telemetry_reenrolled(s, device, err);
		rc = db_end(s, rc, err);
	}
	pthread_mutex_unlock(&s->lock);
	return give_serials(rc, &revoked, ret_revoked);
}

int sql_device_decommission(struct srv_store_be *s, const char *id,
			    const struct srv_crl_hook *crl,
			    struct srv_strv *ret_revoked, struct fl_error *err)
{
	struct srv_strv revoked = {0};
	int n = 0, rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (rc)
		goto out;
	rc = db_run(s, &n, err,
		    "UPDATE devices SET state = 'decommissioned', online = 0"
		    " WHERE id = ? AND state = 'active'",
		    "s", id);
	if (!rc && n == 0)
		rc = fl_fail(err, FL_ENOTFOUND, "no active device '%s'", id);
	if (!rc)
		rc = revoke_where(s, id, "TRUE", NULL, "decommissioned", &revoked,
				  err);
	if (!rc)
		rc = publish_in_tx(s, crl, err);
	rc = db_end(s, rc, err);
out:
	pthread_mutex_unlock(&s->lock);
	return give_serials(rc, &revoked, ret_revoked);
}

static int cert_row(struct db_row *st, void *ctx)
{
	struct srv_cert_row *c = ctx;

	c->serial = db_col_str(st, 0);
	c->device = db_col_str(st, 1);
	c->revoked = db_col_int(st, 2) != 0;
	c->pending = db_col_int(st, 3) != 0;
	c->not_after = db_col_int(st, 4);
	return 0;
}

int sql_cert_get(struct srv_store_be *s, const char *serial,
		 struct srv_cert_row *ret, struct fl_error *err)
{
	struct srv_cert_row c = {0};
	int rc;

	rc = db_lquery_rows(s, cert_row, &c, err,
			    "SELECT serial, device, revoked, pending, not_after"
			    " FROM certs WHERE serial = ?",
			    "s", serial);
	if (!rc && !c.serial)
		rc = fl_fail(err, FL_ENOTFOUND, "no certificate '%s'", serial);
	if (!rc)
		*ret = c;
	return rc;
}

int sql_crl_publish(struct srv_store_be *s, const struct srv_crl_hook *crl,
		    struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = db_end(s, publish_in_tx(s, crl, err), err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- technicians' certificates (issue 12) ------------------------------ */

/* Technicians' rows: device in ['tech-', 'tech.'), SRV_TECH_PREFIX's range
 * ('.' follows '-'), so the certs_device index serves it. */
#define TECH_RANGE "device >= 'tech-' AND device < 'tech.'"

static int tech_add_tx(struct srv_store_be *s, const struct srv_cert *c,
		       struct fl_error *err)
{
	int64_t live = 0;
	int rc;

	rc = query_int(s, &live, err,
		       "SELECT count(*) AS n FROM certs WHERE device = ?"
		       " AND revoked = 0 AND not_after > ?",
		       "si", c->device, (int64_t)time(NULL));
	if (!rc && live)
		rc = fl_fail(err, FL_ECONFLICT,
			     "%s holds a valid certificate; revoke it first",
			     c->device);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "INSERT INTO certs (serial, device, not_before,"
			    " not_after, issued, sha256)"
			    " VALUES (?, ?, ?, ?, ?, ?)",
			    "ssiiis", c->serial, c->device, c->not_before,
			    c->not_after, (int64_t)time(NULL), c->sha256);
	return rc;
}

int sql_tech_add(struct srv_store_be *s, const struct srv_cert *cert,
		 struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = db_end(s, tech_add_tx(s, cert, err), err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int tech_row(struct db_row *st, void *ctx)
{
	struct srv_tech_row *t = DB_PUSH((struct srv_tech_list *)ctx);

	t->cn = db_col_str(st, 0);
	t->serial = db_col_str(st, 1);
	t->issued = db_col_int(st, 2);
	t->not_after = db_col_int(st, 3);
	t->revoked = db_col_int(st, 4);
	return 0;
}

int sql_tech_list(struct srv_store_be *s, struct srv_tech_list *ret,
		  struct fl_error *err)
{
	struct srv_tech_list l = {0};
	int rc;

	rc = db_lquery_rows(s, tech_row, &l, err,
			    "SELECT device, serial, issued, not_after, revoked"
			    " FROM certs WHERE " TECH_RANGE
			    " ORDER BY issued DESC, rowid DESC LIMIT ?",
			    "i", (int64_t)SRV_TECH_LIST_MAX);
	return DB_GIVE(rc, l, ret, srv_tech_list_free);
}

int sql_tech_revoke(struct srv_store_be *s, const char *cn,
		    const struct srv_crl_hook *crl,
		    struct srv_strv *ret_revoked, struct fl_error *err)
{
	struct srv_strv revoked = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (rc)
		goto out;
	rc = revoke_where(s, cn, "TRUE", NULL, "revoked", &revoked, err);
	if (!rc && !revoked.n)
		rc = fl_fail(err, FL_ENOTFOUND,
			     "%s has no certificate to revoke", cn);
	if (!rc)
		rc = publish_in_tx(s, crl, err);
	rc = db_end(s, rc, err);
out:
	pthread_mutex_unlock(&s->lock);
	return give_serials(rc, &revoked, ret_revoked);
}
