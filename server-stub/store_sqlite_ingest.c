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

#include "jobs.h"
#include "json.h"
#include "proto.h"
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

/* One integer column: the row's value into *(int64_t *)ctx. */
static int int_row(sqlite3_stmt *st, void *ctx)
{
	*(int64_t *)ctx = db_col_int(st, 0);
	return 0;
}

/* The device's newest event: last_event, last_seq; it->gap.  Sets
 * FL_ENOTFOUND (no message) for an unknown or decommissioned device. */
static int device_mark(struct srv_store_be *s, int64_t now, int64_t seq,
		       const char *text, struct srv_ingest_item *it,
		       bool *ret_newer, struct fl_error *err)
{
	int64_t last = -1;
	int rc;

	rc = db_query_rows(s, int_row, &last, err,
			   "SELECT last_seq FROM devices"
			   " WHERE id = ? AND state = 'active'",
			   "s", it->device);
	if (rc)
		return rc;
	if (last < 0)
		return FL_ENOTFOUND;
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

/* The job an event names, as the state machine needs it. */
struct job_ref {
	bool found, final;
	char id[65], type[16], state[32];
	int64_t seq;
};

static int job_ref_row(sqlite3_stmt *st, void *ctx)
{
	struct job_ref *j = ctx;
	const char *id = (const char *)sqlite3_column_text(st, 0);
	const char *type = (const char *)sqlite3_column_text(st, 1);
	const char *state = (const char *)sqlite3_column_text(st, 2);

	j->found = true;
	fl_strlcpy(j->id, id ? id : "", sizeof(j->id));
	fl_strlcpy(j->type, type ? type : "", sizeof(j->type));
	fl_strlcpy(j->state, state ? state : "", sizeof(j->state));
	j->seq = db_col_int(st, 3);
	j->final = db_col_int(st, 4) != 0;
	return 0;
}

/*
 * The job @it names: by "job", or by "cmd", the command that started it
 * (rotations: the agent's events carry no job id).  j->found is false
 * when there is none.
 */
static int find_job(struct srv_store_be *s, const struct srv_ingest_item *it,
		    struct job_ref *j, struct fl_error *err)
{
	const char *job = str(it->msg, "job", 64);
	const char *cmd = job ? NULL : str(it->msg, "cmd", 64);

	*j = (struct job_ref){0};
	if (!job && !cmd)
		return 0;
	return db_query_rows(s, job_ref_row, j, err,
			     "SELECT id, type, state, seq, final FROM jobs"
			     " WHERE device = ?1 AND (id = ?2 OR command = ?3)"
			     " LIMIT 1",
			     "sss", it->device, job, cmd);
}

/* What becomes of @state, an event @seq of job @j (jobs.c rules).  An
 * event naming another job type is refused; an unknown "type" is not
 * judged (fleetd never required one). */
static enum srv_ingest_result judge(const struct job_ref *j, int64_t seq,
				    const char *state, const char *type)
{
	if (j->final)
		return SRV_INGEST_REJECTED;
	if (srv_job_type_known(type) && !fl_streq(type, j->type))
		return SRV_INGEST_ILLEGAL;
	if (!fl_job_state_name_final(state) && seq <= j->seq)
		return SRV_INGEST_STALE;
	return srv_job_transition_ok(j->type, j->state, state)
		       ? SRV_INGEST_STORED
		       : SRV_INGEST_ILLEGAL;
}

/* Record the event in its job's history (once per seq: *ret_new) and
 * move the job. */
static int job_move(struct srv_store_be *s, int64_t now, int64_t seq,
		    const char *job, const char *state, const char *text,
		    const struct srv_ingest_item *it, bool *ret_new,
		    struct fl_error *err)
{
	int n = 0, rc;

	rc = db_run(s, &n, err,
		    "INSERT INTO job_events (job, seq, ts, state, event)"
		    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (job, seq) DO NOTHING",
		    "siiss", job, seq, now, state, text);
	*ret_new = n == 1;
	if (rc || n != 1)
		return rc;
	return db_run(s, NULL, err,
		      "UPDATE jobs SET state = ?, final = ?, stage = ?,"
		      " reason = ?, bytes = coalesce(?, bytes),"
		      " total = coalesce(?, total),"
		      " from_version = coalesce(from_version, ?),"
		      " updated = ?, seq = max(seq, ?) WHERE id = ?",
		      "sdssnnsiis", state, (int)fl_job_state_name_final(state),
		      str(it->msg, "stage", 512), str(it->msg, "reason", 512),
		      int_or_null(it->msg, "bytes"),
		      int_or_null(it->msg, "total"),
		      str(it->msg, "from_version", 64), now, seq, job);
}

/*
 * An event of a job: recorded once per (job, seq) and moving the job
 * when the job's state machine allows it (judge); a repeat is a
 * duplicate, the rest is refused.  The common case (a new, legal event)
 * costs the insert and the job's update; only a refused one asks whether
 * it is a repeat.
 */
static int job_event(struct srv_store_be *s, int64_t now, int64_t seq,
		     const struct job_ref *j, const char *text,
		     struct srv_ingest_item *it, struct fl_error *err)
{
	const char *state = str(it->msg, "state", 64);
	int64_t seen = 0;
	bool fresh = false;
	int rc;

	if (!state) {
		it->result = SRV_INGEST_REJECTED;
		return 0;
	}
	it->result = judge(j, seq, state, str(it->msg, "type", 64));
	if (it->result == SRV_INGEST_STORED) {
		rc = job_move(s, now, seq, j->id, state, text, it, &fresh, err);
		if (rc || fresh)
			return rc;
	}
	rc = db_query_rows(s, int_row, &seen, err,
			   "SELECT 1 FROM job_events WHERE job = ? AND seq = ?",
			   "si", j->id, seq);
	if (!rc && seen)
		it->result = SRV_INGEST_DUPLICATE;
	return rc;
}

static int event(struct srv_store_be *s, int64_t now,
		 struct srv_ingest_item *it, struct fl_error *err)
{
	int64_t seq = json_integer_value(json_object_get(it->msg, "seq"));
	char *dumped = it->text ? NULL : fl_json_dumps(it->msg);
	const char *text = it->text ? it->text : dumped;
	struct job_ref job = {0};
	bool newer = false;
	int rc;

	rc = device_mark(s, now, seq, text, it, &newer, err);
	if (!rc)
		rc = find_job(s, it, &job, err);
	if (rc == FL_ENOTFOUND) {
		it->result = SRV_INGEST_REJECTED;
		rc = 0;
	} else if (!rc && job.found) {
		rc = job_event(s, now, seq, &job, text, it, err);
	} else if (!rc && str(it->msg, "job", 64)) {
		it->result = SRV_INGEST_REJECTED; /* not a job of this device */
	} else if (!rc) {
		it->result = newer ? SRV_INGEST_STORED : SRV_INGEST_DUPLICATE;
	}
	free(dumped);
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
