/* SPDX-License-Identifier: MIT */
/*
 * What devices report over MQTT, applied in batches (server-stub/ingest.c
 * feeds it): presence, status, and events with their jobs.  Every
 * statement is idempotent, so a message the broker delivers twice, or a
 * final event the device publishes again until fleetd confirms it,
 * changes nothing the second time.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "store.h"
#include "store_sqlite.h"
#include "util.h"

static const char *str(const json_t *o, const char *key, size_t max)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v && strlen(v) <= max ? v : NULL;
}

/* A non-negative integer member, or -1 (binds NULL). */
static int64_t int_or_null(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) >= 0
		       ? json_integer_value(v)
		       : -1;
}

static int changed(int n, struct srv_ingest_item *it)
{
	it->result = n ? SRV_INGEST_STORED : SRV_INGEST_REJECTED;
	return 0;
}

static int presence(struct srv_store_be *s, int64_t now,
		    struct srv_ingest_item *it, struct fl_error *err)
{
	int n = 0, rc;

	rc = db_run(s, &n, err,
		    "UPDATE devices SET online = ?, last_seen = ?,"
		    " agent = coalesce(?, agent), firmware = coalesce(?, firmware)"
		    " WHERE id = ? AND state = 'active'",
		    "disss", (int)json_is_true(json_object_get(it->msg, "online")),
		    now, str(it->msg, "agent", 64), str(it->msg, "firmware", 64),
		    it->device);
	return rc ? rc : changed(n, it);
}

static int status(struct srv_store_be *s, int64_t now,
		  struct srv_ingest_item *it, struct fl_error *err)
{
	int n = 0, rc;

	rc = db_run(s, &n, err,
		    "UPDATE devices SET last_seen = ?,"
		    " firmware = coalesce(?, firmware), slot = coalesce(?, slot),"
		    " health = coalesce(?, health) WHERE id = ? AND state = 'active'",
		    "issss", now, str(it->msg, "firmware", 64),
		    str(it->msg, "slot", 64), str(it->msg, "health", 64),
		    it->device);
	return rc ? rc : changed(n, it);
}

/* The device's newest event: last_event, last_seq; it->gap.  Sets
 * FL_ENOTFOUND (no message) for an unknown or decommissioned device. */
static int device_mark(struct srv_store_be *s, int64_t now, int64_t seq,
		       const char *text, struct srv_ingest_item *it,
		       bool *ret_newer, struct fl_error *err)
{
	json_t *row = NULL;
	int64_t last;
	int rc;

	rc = db_query_one(s, &row, NULL,
			  "SELECT last_seq FROM devices"
			  " WHERE id = ? AND state = 'active'",
			  "s", it->device);
	if (rc)
		return rc == FL_ENOTFOUND ? rc : db_fail(s, err, "device");
	last = json_integer_value(json_object_get(row, "last_seq"));
	json_decref(row);
	*ret_newer = seq > last;
	it->gap = seq > last + 1 ? seq - last - 1 : 0;
	if (!*ret_newer)
		return db_run(s, NULL, err,
			      "UPDATE devices SET last_seen = ? WHERE id = ?",
			      "is", now, it->device);
	return db_run(s, NULL, err,
		      "UPDATE devices SET last_event = ?, last_seen = ?,"
		      " last_seq = ? WHERE id = ?",
		      "siis", text, now, seq, it->device);
}

/* Append the event to its job's history once per (job, seq); move the
 * job when the event is newer than its last, or final. */
static int job_event(struct srv_store_be *s, int64_t now, int64_t seq,
		     const char *job, const char *text,
		     struct srv_ingest_item *it, struct fl_error *err)
{
	const char *state = str(it->msg, "state", 64);
	bool final = srv_job_state_final(state);
	json_t *row = NULL;
	int n = 0, rc;

	if (!state) {
		it->result = SRV_INGEST_REJECTED;
		return 0;
	}
	rc = db_run(s, &n, err,
		    "INSERT INTO job_events (job, seq, ts, state, event)"
		    " SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM jobs"
		    "  WHERE id = ?1 AND device = ?6 AND final = 0)"
		    " ON CONFLICT (job, seq) DO NOTHING",
		    "siisss", job, seq, now, state, text, it->device);
	if (!rc && n == 1) {
		it->result = SRV_INGEST_STORED;
		return db_run(s, NULL, err,
			      "UPDATE jobs SET state = ?, final = ?, stage = ?,"
			      " reason = ?, bytes = coalesce(?, bytes),"
			      " total = coalesce(?, total),"
			      " from_version = coalesce(from_version, ?),"
			      " updated = ?, seq = ? WHERE id = ? AND final = 0"
			      " AND (seq < ? OR ?)",
			      "sdssnnsiisid", state, (int)final,
			      str(it->msg, "stage", 512),
			      str(it->msg, "reason", 512),
			      int_or_null(it->msg, "bytes"),
			      int_or_null(it->msg, "total"),
			      str(it->msg, "from_version", 64), now, seq, job,
			      seq, (int)final);
	}
	if (rc)
		return rc;
	rc = db_query_one(s, &row, NULL,
			  "SELECT 1 FROM job_events WHERE job = ? AND seq = ?",
			  "si", job, seq);
	json_decref(row);
	if (rc && rc != FL_ENOTFOUND)
		return db_fail(s, err, "job event");
	it->result = rc ? SRV_INGEST_REJECTED : SRV_INGEST_DUPLICATE;
	return 0;
}

static int event(struct srv_store_be *s, int64_t now,
		 struct srv_ingest_item *it, struct fl_error *err)
{
	int64_t seq = json_integer_value(json_object_get(it->msg, "seq"));
	const char *job = str(it->msg, "job", 64);
	char *text = fl_json_dumps(it->msg);
	bool newer = false;
	int rc;

	rc = device_mark(s, now, seq, text, it, &newer, err);
	if (rc == FL_ENOTFOUND) {
		it->result = SRV_INGEST_REJECTED;
		rc = 0;
	} else if (!rc && job) {
		rc = job_event(s, now, seq, job, text, it, err);
	} else if (!rc) {
		it->result = newer ? SRV_INGEST_STORED : SRV_INGEST_DUPLICATE;
	}
	free(text);
	return rc;
}

int sq_ingest(struct srv_store_be *s, struct srv_ingest_item *items,
	      size_t n, struct fl_error *err)
{
	int64_t now = (int64_t)time(NULL);
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = db_begin(s, err);
	for (size_t i = 0; i < n && !rc; i++) {
		struct srv_ingest_item *it = &items[i];

		it->gap = 0;
		switch (it->kind) {
		case SRV_INGEST_PRESENCE:
			rc = presence(s, now, it, err);
			break;
		case SRV_INGEST_STATUS:
			rc = status(s, now, it, err);
			break;
		case SRV_INGEST_EVENT:
			rc = event(s, now, it, err);
			break;
		}
	}
	rc = db_end(s, rc, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}
