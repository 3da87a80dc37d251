/* SPDX-License-Identifier: MIT */
/* Device queries and updates for the API and the MQTT side. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "store_sql.h"
#include "util.h"

#define MAX_LABELS 64

/* Columns of a device; labels and certificates come from queries of
 * their own (device_extras).  The certificate subqueries walk the
 * (device, revoked) index: '+issued' keeps SQLite from walking a
 * device's whole history in issue order instead. */
#define DEVICE_SELECT                                                          \
	"SELECT d.id, d.grp, d.state, d.online, d.last_seen, d.firmware,"      \
	" d.slot, d.health, d.agent, d.created, d.enrolled_by,"                \
	" (SELECT serial FROM certs WHERE device = d.id AND revoked = 0"       \
	"  ORDER BY +issued DESC, +rowid DESC LIMIT 1) AS cert_serial,"        \
	" (SELECT not_after FROM certs WHERE device = d.id AND revoked = 0"    \
	"  ORDER BY +issued DESC, +rowid DESC LIMIT 1) AS cert_expires,"       \
	" d.last_event"                                                        \
	" FROM devices d"

static int device_row(struct db_row *st, void *ctx)
{
	struct srv_device_row *d = DB_PUSH((struct srv_device_list *)ctx);

	d->id = db_col_str(st, 0);
	d->group = db_col_str(st, 1);
	d->state = db_col_str(st, 2);
	d->online = db_col_int(st, 3) != 0;
	d->last_seen = db_col_int(st, 4);
	d->firmware = db_col_str(st, 5);
	d->slot = db_col_str(st, 6);
	d->health = db_col_str(st, 7);
	d->agent = db_col_str(st, 8);
	d->created = db_col_int(st, 9);
	d->enrolled_by = db_col_str(st, 10);
	d->cert_serial = db_col_str(st, 11);
	d->cert_expires = db_col_int(st, 12);
	d->last_event = db_col_str(st, 13);
	return 0;
}

static int label_row(struct db_row *st, void *ctx)
{
	struct srv_label *l = DB_PUSH((struct srv_label_list *)ctx);

	l->key = db_col_str(st, 0);
	l->value = db_col_str(st, 1);
	return 0;
}

/* Lock held: each device's labels (by key) and unrevoked certificates
 * (the order of the (device, revoked, pending) index). */
static int device_extras(struct srv_store_be *s, struct srv_device_list *l,
			 struct fl_error *err)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < l->n; i++) {
		struct srv_device_row *d = &l->v[i];

		rc = db_query_rows(s, label_row, &d->labels, err,
				   "SELECT key, value FROM device_labels"
				   " WHERE device = ? ORDER BY key",
				   "s", d->id);
		if (!rc)
			rc =
			    db_query_rows(s, db_row_strv, &d->active_certs, err,
					  "SELECT serial FROM certs"
					  " WHERE device = ? AND revoked = 0"
					  " ORDER BY pending, rowid",
					  "s", d->id);
	}
	return rc;
}

int sql_device_list(struct srv_store_be *s, const struct srv_device_filter *f,
		    struct srv_device_list *ret, struct fl_error *err)
{
	struct srv_device_list l = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_query_rows(
	    s, device_row, &l, err,
	    DEVICE_SELECT
	    " WHERE (?1 IS NULL OR d.grp = ?1)"
	    " AND (?2 IS NULL OR EXISTS (SELECT 1 FROM device_labels"
	    "  WHERE device = d.id AND key = ?2 AND (?3 IS NULL OR value = "
	    "?3)))"
	    " AND (?4 < 0 OR d.online = ?4)"
	    " AND (?5 IS NULL OR d.firmware = ?5)"
	    " AND (?6 <> 0 OR d.state = 'active')"
	    " ORDER BY d.id",
	    "sssdsd", f->group, f->label_key, f->label_value, f->online,
	    f->firmware, (int)f->include_decommissioned);
	if (!rc)
		rc = device_extras(s, &l, err);
	pthread_mutex_unlock(&s->lock);
	return DB_GIVE(rc, l, ret, srv_device_list_free);
}

int sql_device_get(struct srv_store_be *s, const char *id,
		   struct srv_device_row *ret, struct fl_error *err)
{
	struct srv_device_list l = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_query_rows(s, device_row, &l, err,
			   DEVICE_SELECT " WHERE d.id = ?", "s", id);
	if (!rc)
		rc = device_extras(s, &l, err);
	pthread_mutex_unlock(&s->lock);
	if (!rc && l.n == 0)
		rc = fl_fail(err, FL_ENOTFOUND, "no device '%s'", id);
	return DB_GIVE_FIRST(rc, l, ret, srv_device_list_free);
}

int db_device_active(struct srv_store_be *s, const char *id,
		     struct fl_error *err)
{
	struct db_first row;
	int rc;

	rc = db_query_first(s, &row, NULL,
			    "SELECT 1 FROM devices WHERE id = ?"
			    " AND state = 'active'",
			    "s", id);
	db_first_free(&row);
	return rc ? fl_fail(err, FL_ENOTFOUND, "no active device '%s'", id) : 0;
}

static int apply_labels(struct srv_store_be *s, const char *id,
			const struct srv_label_list *set,
			const struct srv_strv *remove, struct fl_error *err)
{
	int rc = 0;

	for (size_t i = 0; !rc && set && i < set->n; i++)
		rc = db_run(s, NULL, err,
			    "INSERT INTO device_labels (device, key, value)"
			    " VALUES (?, ?, ?) ON CONFLICT (device, key)"
			    " DO UPDATE SET value = excluded.value",
			    "sss", id, set->v[i].key, set->v[i].value);
	for (size_t i = 0; !rc && remove && i < remove->n; i++)
		rc = db_run(s, NULL, err,
			    "DELETE FROM device_labels"
			    " WHERE device = ? AND key = ?",
			    "ss", id, remove->v[i]);
	return rc;
}

int sql_device_labels(struct srv_store_be *s, const char *id,
		      const struct srv_label_list *set,
		      const struct srv_strv *remove, struct fl_error *err)
{
	struct db_first count = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = db_device_active(s, id, err);
	if (!rc)
		rc = apply_labels(s, id, set, remove, err);
	if (!rc)
		rc = db_query_first(s, &count, err,
				    "SELECT count(*) FROM device_labels"
				    " WHERE device = ?",
				    "s", id);
	if (!rc && count.i[0] > MAX_LABELS)
		rc = fl_fail(err, FL_ELIMIT, "more than %d labels", MAX_LABELS);
	db_first_free(&count);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int sql_devices_all_offline(struct srv_store_be *s, struct fl_error *err)
{
	int rc;

	rc = db_lrun(s, NULL, err, "UPDATE devices SET online = 0", NULL);
	return rc;
}

int sql_device_by_cert(struct srv_store_be *s, const char *sha256,
		       struct srv_cert_holder *ret, struct fl_error *err)
{
	int64_t now = time(NULL);
	struct db_first row;
	int rc;

	/* 0 serial, 1 device, 2 revoked, 3 not_before, 4 not_after, 5 state */
	rc = db_lquery_first(s, &row, err,
			     "SELECT c.serial, c.device, c.revoked,"
			     " c.not_before, c.not_after, d.state FROM certs c"
			     " LEFT JOIN devices d ON d.id = c.device"
			     " WHERE c.sha256 = ?",
			     "s", sha256);
	if (!rc && (row.i[2] || row.i[3] > now || row.i[4] < now))
		rc =
		    fl_fail(err, FL_EDENIED,
			    "client certificate %s is revoked or not valid now",
			    row.t[0]);
	else if (!rc && !fl_streq(row.t[5], "active"))
		rc = fl_fail(err, FL_EDENIED, "device %s is not active",
			     row.t[1]);
	if (!rc) {
		fl_strlcpy(ret->serial, row.t[0], sizeof(ret->serial));
		fl_strlcpy(ret->device, row.t[1], sizeof(ret->device));
	}
	db_first_free(&row);
	return rc;
}

int sql_device_principal(struct srv_store_be *s, const char *serial,
			 const char *device, struct fl_error *err)
{
	struct db_first row;
	int rc;

	/* 0 device, 1 revoked, 2 not_after, 3 state */
	rc = db_lquery_first(s, &row, err,
			     "SELECT c.device, c.revoked, c.not_after, d.state"
			     " FROM certs c"
			     " LEFT JOIN devices d ON d.id = c.device"
			     " WHERE c.serial = ?",
			     "s", serial);
	if (rc == FL_ENOTFOUND)
		rc = fl_fail(err, FL_EDENIED,
			     "client certificate %s is unknown", serial);
	else if (!rc && (!fl_streq(row.t[0], device) || row.i[1] ||
			 row.i[2] < (int64_t)time(NULL)))
		rc = fl_fail(err, FL_EDENIED,
			     "client certificate %s is revoked, expired or "
			     "unknown",
			     serial);
	else if (!rc && !fl_streq(row.t[3], "active"))
		rc =
		    fl_fail(err, FL_EDENIED, "device %s is not active", device);
	db_first_free(&row);
	return rc;
}
