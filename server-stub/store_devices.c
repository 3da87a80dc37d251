/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "store.h"
#include "store_db.h"
#include "util.h"


int srv_store_enroll_token_check(struct srv_store *s, const char *hash_hex,
				 char ret_id[17], char *ret_group,
				 size_t group_len, struct fl_error *err)
{
	json_t *row = NULL;
	int rc;

	rc = db_lquery_one(s, &row, NULL,
			  "SELECT id, grp, kind, revoked, uses_left, expires"
			  " FROM tokens WHERE hash = ?",
			  "s", hash_hex);
	if (rc)
		return fl_fail(err, FL_EDENIED, "unknown enrolment token");
	if (!fl_streq(json_string_value(json_object_get(row, "kind")),
		      "enroll"))
		rc = fl_fail(err, FL_EDENIED, "not an enrolment token");
	else if (json_integer_value(json_object_get(row, "revoked")))
		rc = fl_fail(err, FL_EDENIED, "enrolment token is revoked");
	else if (json_integer_value(json_object_get(row, "uses_left")) == 0)
		rc = fl_fail(err, FL_EDENIED, "enrolment token is used up");
	else if (json_integer_value(json_object_get(row, "expires")) &&
		 json_integer_value(json_object_get(row, "expires")) <=
			 time(NULL))
		rc = fl_fail(err, FL_EDENIED, "enrolment token has expired");
	if (!rc) {
		fl_strlcpy(ret_group,
			   json_string_value(json_object_get(row, "grp"))
				   ?: "",
			   group_len);
		fl_strlcpy(ret_id,
			   json_string_value(json_object_get(row, "id")), 17);
	}
	json_decref(row);
	return rc;
}

static int insert_cert(struct srv_store *s, const struct srv_cert *c,
		       struct fl_error *err)
{
	return db_run(s, NULL, err,
		      "INSERT INTO certs (serial, device, not_before, not_after,"
		      " issued) VALUES (?, ?, ?, ?, ?)",
		      "ssiii", c->serial, c->device, c->not_before,
		      c->not_after, (int64_t)time(NULL));
}

/* Inside a transaction: consume one token use or fail FL_EDENIED. */
static int consume_token(struct srv_store *s, const char *hash,
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
static int upsert_device(struct srv_store *s, const char *id,
			 const char *group, const char *by,
			 bool allow_existing, struct fl_error *err)
{
	json_t *row = NULL;
	int rc;

	rc = db_query_one(s, &row, NULL,
			  "SELECT state FROM devices WHERE id = ?", "s", id);
	if (rc) /* new device */
		return db_run(s, NULL, err,
			      "INSERT INTO devices (id, grp, created, enrolled_by)"
			      " VALUES (?, ?, ?, ?)",
			      "ssis", id, group && *group ? group : NULL,
			      (int64_t)time(NULL), by);
	rc = fl_streq(json_string_value(json_object_get(row, "state")),
		      "active") &&
			     !allow_existing
		     ? fl_fail(err, FL_ECONFLICT,
			       "device '%s' is already enrolled", id)
		     : 0;
	json_decref(row);
	if (!rc) /* a decommissioned id comes back as a new enrolment */
		rc = db_run(s, NULL, err,
			    "UPDATE devices SET state = 'active', grp = ?,"
			    " enrolled_by = ?, created = ?, last_seq = 0,"
			    " last_event = NULL WHERE id = ?",
			    "ssis", group && *group ? group : NULL, by,
			    (int64_t)time(NULL), id);
	return rc;
}

int srv_store_device_enroll(struct srv_store *s, const char *id,
			    const char *group, const char *enrolled_by,
			    const char *token_hash, bool allow_existing,
			    const struct srv_cert *cert, struct fl_error *err)
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
		rc = insert_cert(s, cert, err);
	rc = db_end(s, rc, err);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int srv_store_cert_add(struct srv_store *s, const struct srv_cert *cert,
		       struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = insert_cert(s, cert, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int srv_store_certs_revoke(struct srv_store *s, const char *device,
			   const char *keep_serial, const char *reason,
			   json_t **ret_serials, struct fl_error *err)
{
	json_t *rows = NULL, *serials = json_array(), *row;
	int64_t now = time(NULL);
	size_t i;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = db_query_json(s, &rows, err,
				   "SELECT serial FROM certs WHERE device = ?"
				   " AND revoked = 0 AND serial IS NOT ?",
				   "ss", device, keep_serial);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "UPDATE certs SET revoked = ?, reason = ?"
			    " WHERE device = ? AND revoked = 0 AND serial IS NOT ?",
			    "isss", now, reason, device, keep_serial);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	json_array_foreach(rows, i, row)
		json_array_append(serials, json_object_get(row, "serial"));
	json_decref(rows);
	if (!rc && ret_serials)
		*ret_serials = serials;
	else
		json_decref(serials);
	return rc;
}

int srv_store_cert_get(struct srv_store *s, const char *serial, json_t **ret,
		       struct fl_error *err)
{
	int rc;

	rc = db_lquery_one(s, ret, err,
			  "SELECT serial, device, revoked != 0 AS revoked,"
			  " not_after FROM certs WHERE serial = ?",
			  "s", serial);
	if (!rc)
		json_object_set_new(*ret, "revoked",
				    json_boolean(json_integer_value(json_object_get(
					    *ret, "revoked"))));
	return rc;
}

int srv_store_crl_entries(struct srv_store *s, json_t **ret,
			  uint64_t *ret_number, struct fl_error *err)
{
	json_t *num = NULL, *rows = NULL;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = db_run(s, NULL, err,
			    "UPDATE counters SET value = value + 1"
			    " WHERE name = 'crl_number'",
			    NULL);
	if (!rc)
		rc = db_query_one(s, &num, err,
				  "SELECT value FROM counters"
				  " WHERE name = 'crl_number'",
				  NULL);
	if (!rc)
		rc = db_query_json(s, &rows, err,
				   "SELECT serial, revoked FROM certs"
				   " WHERE revoked > 0 AND not_after > ?"
				   " ORDER BY revoked",
				   "i", (int64_t)time(NULL) - 86400);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	if (!rc) {
		*ret_number = (uint64_t)json_integer_value(
			json_object_get(num, "value"));
		*ret = rows;
	} else {
		json_decref(rows);
	}
	json_decref(num);
	return rc;
}
