/* SPDX-License-Identifier: MIT */
/* Device queries and updates for the API and the MQTT side. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "store.h"
#include "store_db.h"
#include "util.h"

#define MAX_LABELS 64

/* Columns of a device object; labels and the current certificate come
 * from subqueries so one row is one device.  The certificate subqueries
 * walk the (device, revoked) index: '+issued' keeps SQLite from walking
 * a device's whole history in issue order instead. */
#define DEVICE_SELECT                                                      \
	"SELECT d.id, d.grp AS \"group\", d.state, d.online != 0 AS online," \
	" " DB_TIME("d.last_seen") " AS last_seen, d.firmware, d.slot,"    \
	" d.health, d.agent, " DB_TIME("d.created") " AS created,"         \
	" d.enrolled_by,"                                                  \
	" (SELECT json_group_object(key, value) FROM device_labels"        \
	"  WHERE device = d.id) AS labels,"                                \
	" (SELECT serial FROM certs WHERE device = d.id AND revoked = 0"   \
	"  ORDER BY +issued DESC, +rowid DESC LIMIT 1) AS cert_serial,"      \
	" (SELECT strftime('%Y-%m-%dT%H:%M:%SZ', not_after, 'unixepoch')"  \
	"  FROM certs WHERE device = d.id AND revoked = 0"                 \
	"  ORDER BY +issued DESC, +rowid DESC LIMIT 1) AS cert_expires,"     \
	" (SELECT json_group_array(serial) FROM certs"                     \
	"  WHERE device = d.id AND revoked = 0) AS active_certs,"           \
	" d.last_event"                                                    \
	" FROM devices d"

/* Replace a JSON text column by its value (or @def when NULL). */
static void json_column(json_t *row, const char *key, json_t *def)
{
	const char *t = json_string_value(json_object_get(row, key));
	json_t *v = t ? json_loads(t, 0, NULL) : NULL;

	json_object_set_new(row, key, v ? v : def);
	if (v)
		json_decref(def);
}

/* SQLite hands back JSON columns as text and flags as integers. */
static void fix_rows(json_t *rows)
{
	size_t i;
	json_t *row;

	db_json_bools(rows, "online");
	json_array_foreach(rows, i, row) {
		json_column(row, "labels", json_object());
		json_column(row, "active_certs", json_array());
		json_column(row, "last_event", json_null());
	}
}

int srv_store_device_list(struct srv_store *s,
			  const struct srv_device_filter *f, json_t **ret,
			  struct fl_error *err)
{
	int rc;

	rc = db_lquery_json(
		s, ret, err,
		DEVICE_SELECT
		" WHERE (?1 IS NULL OR d.grp = ?1)"
		" AND (?2 IS NULL OR EXISTS (SELECT 1 FROM device_labels"
		"  WHERE device = d.id AND key = ?2 AND (?3 IS NULL OR value = ?3)))"
		" AND (?4 < 0 OR d.online = ?4)"
		" AND (?5 IS NULL OR d.firmware = ?5)"
		" AND (?6 OR d.state = 'active')"
		" ORDER BY d.id",
		"sssdsd", f->group, f->label_key, f->label_value, f->online,
		f->firmware, (int)f->include_decommissioned);
	if (!rc)
		fix_rows(*ret);
	return rc;
}

int srv_store_device_get(struct srv_store *s, const char *id, json_t **ret,
			 struct fl_error *err)
{
	json_t *rows;
	int rc;

	rc = db_lquery_json(s, &rows, err, DEVICE_SELECT " WHERE d.id = ?", "s",
			   id);
	if (rc)
		return rc;
	fix_rows(rows);
	if (json_array_size(rows) == 0) {
		json_decref(rows);
		return fl_fail(err, FL_ENOTFOUND, "no device '%s'", id);
	}
	*ret = json_incref(json_array_get(rows, 0));
	json_decref(rows);
	return 0;
}

static int exists_active(struct srv_store *s, const char *id,
			 struct fl_error *err)
{
	json_t *row;

	if (db_query_one(s, &row, NULL,
			 "SELECT 1 FROM devices WHERE id = ? AND state = 'active'",
			 "s", id))
		return fl_fail(err, FL_ENOTFOUND, "no active device '%s'", id);
	json_decref(row);
	return 0;
}

static int apply_labels(struct srv_store *s, const char *id,
			const json_t *set, const json_t *remove,
			struct fl_error *err)
{
	const char *key;
	json_t *v;
	size_t i;
	int rc = 0;

	json_object_foreach((json_t *)set, key, v)
		if (!rc)
			rc = db_run(s, NULL, err,
				    "INSERT OR REPLACE INTO device_labels"
				    " (device, key, value) VALUES (?, ?, ?)",
				    "sss", id, key, json_string_value(v));
	json_array_foreach(remove, i, v)
		if (!rc)
			rc = db_run(s, NULL, err,
				    "DELETE FROM device_labels"
				    " WHERE device = ? AND key = ?",
				    "ss", id, json_string_value(v));
	return rc;
}

int srv_store_device_labels(struct srv_store *s, const char *id,
			    const json_t *set, const json_t *remove,
			    struct fl_error *err)
{
	json_t *count = NULL;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = exists_active(s, id, err);
	if (!rc)
		rc = apply_labels(s, id, set, remove, err);
	if (!rc)
		rc = db_query_one(s, &count, err,
				  "SELECT count(*) AS n FROM device_labels"
				  " WHERE device = ?",
				  "s", id);
	if (!rc && json_integer_value(json_object_get(count, "n")) > MAX_LABELS)
		rc = fl_fail(err, FL_ELIMIT, "more than %d labels", MAX_LABELS);
	json_decref(count);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int srv_store_devices_all_offline(struct srv_store *s, struct fl_error *err)
{
	int rc;

	rc = db_lrun(s, NULL, err, "UPDATE devices SET online = 0", NULL);
	return rc;
}
