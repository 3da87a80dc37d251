/* SPDX-License-Identifier: MIT */
/* Device shadows in SQLite (store.h; the rules: common/shadow.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "shadow.h"
#include "store.h"
#include "store_sql.h"
#include "util.h"

/* A stored document: an object, whatever the column holds. */
static json_t *col_object(struct db_row *st, int i)
{
	const char *text = db_col_text(st, i);
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;

	if (json_is_object(j))
		return j;
	json_decref(j);
	return json_object();
}

/* Member @key of @o when it is an object, else a new empty one. */
static json_t *member(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_object(v) ? json_incref(v) : json_object();
}

static int shadow_row(struct db_row *st, void *ctx)
{
	struct srv_shadow_row *r = ctx;
	json_t *report = col_object(st, 5);

	r->device = db_col_str(st, 0);
	r->desired = col_object(st, 1);
	r->desired_meta = col_object(st, 2);
	r->desired_version = db_col_int(st, 3);
	r->desired_updated = db_col_int(st, 4);
	r->reported = member(report, "state");
	r->refused = member(report, "refused");
	r->reported_version = db_col_int(st, 6);
	r->reported_updated = db_col_int(st, 7);
	json_decref(report);
	return 0;
}

/* The shadow of @id (empty when it has none yet); caller holds the
 * lock.  FL_ENOTFOUND for no device @id. */
static int load(struct srv_store_be *s, const char *id,
		struct srv_shadow_row *ret, struct fl_error *err)
{
	struct srv_shadow_row r = {0};
	int rc;

	rc = db_query_rows(s, shadow_row, &r, err,
			   "SELECT d.id, h.desired, h.desired_meta,"
			   " h.desired_version, h.desired_updated, h.reported,"
			   " h.reported_version, h.reported_updated"
			   " FROM devices d LEFT JOIN shadows h"
			   " ON h.device = d.id WHERE d.id = ?",
			   "s", id);
	if (!rc && !r.device)
		rc = fl_fail(err, FL_ENOTFOUND, "no device '%s'", id);
	if (rc)
		srv_shadow_row_free(&r);
	else
		*ret = r;
	return rc;
}

int sql_shadow_get(struct srv_store_be *s, const char *id,
		   struct srv_shadow_row *ret, struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = load(s, id, ret, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Write @r's desired side. */
static int save_desired(struct srv_store_be *s, const struct srv_shadow_row *r,
			struct fl_error *err)
{
	char *doc = fl_json_dumps(r->desired);
	char *meta = fl_json_dumps(r->desired_meta);
	int rc;

	rc = db_run(s, NULL, err,
		    "INSERT INTO shadows (device, desired, desired_meta,"
		    " desired_version, desired_updated) VALUES (?, ?, ?, ?, ?)"
		    " ON CONFLICT (device) DO UPDATE SET"
		    " desired = excluded.desired,"
		    " desired_meta = excluded.desired_meta,"
		    " desired_version = excluded.desired_version,"
		    " desired_updated = excluded.desired_updated",
		    "sssii", r->device, doc, meta, r->desired_version,
		    r->desired_updated);
	free(doc);
	free(meta);
	return rc;
}

/* The version check, the merge and the size cap on @r. */
static int merge(struct srv_shadow_row *r, const struct srv_shadow_write *w,
		 struct fl_error *err)
{
	json_t *msg;
	size_t size;

	if (w->if_version >= 0 && w->if_version != r->desired_version)
		return fl_fail(
		    err, FL_ECONFLICT, "desired is at version %lld, not %lld",
		    (long long)r->desired_version, (long long)w->if_version);
	r->desired_version++;
	r->desired_updated = time(NULL);
	fl_shadow_merge(r->desired, r->desired_meta, w->patch,
			r->desired_version);
	msg = fl_shadow_desired_msg(r->desired, r->desired_version,
				    r->desired_updated);
	size = fl_shadow_size(msg);
	json_decref(msg);
	if (size > w->max_size)
		return fl_fail(err, FL_ELIMIT,
			       "the desired document would be %zu bytes, over "
			       "the cap of %zu bytes",
			       size, w->max_size);
	return 0;
}

int sql_shadow_update(struct srv_store_be *s, const char *id,
		      const struct srv_shadow_write *w,
		      struct srv_shadow_row *ret, struct fl_error *err)
{
	struct srv_shadow_row r = {0};
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	if (!rc)
		rc = db_device_active(s, id, err);
	if (!rc)
		rc = load(s, id, &r, err);
	if (!rc)
		rc = merge(&r, w, err);
	if (!rc)
		rc = save_desired(s, &r, err);
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	if (!rc && ret)
		*ret = r;
	else
		srv_shadow_row_free(&r);
	return rc;
}

int db_shadow_report(struct srv_store_be *s, int64_t now,
		     struct srv_ingest_item *it, struct fl_error *err)
{
	int n = 0, rc;

	if (db_device_active(s, it->device, NULL)) {
		it->result = SRV_INGEST_REJECTED;
		return 0;
	}
	rc = db_run(s, &n, err,
		    "INSERT INTO shadows (device, reported, reported_version,"
		    " reported_updated) VALUES (?, ?, ?, ?)"
		    " ON CONFLICT (device) DO UPDATE SET"
		    " reported = excluded.reported,"
		    " reported_version = excluded.reported_version,"
		    " reported_updated = excluded.reported_updated"
		    " WHERE shadows.reported_version <="
		    " excluded.reported_version",
		    "ssii", it->device, it->text, it->f.version, now);
	if (!rc)
		it->result = n ? SRV_INGEST_STORED : SRV_INGEST_DUPLICATE;
	return rc;
}
