/* SPDX-License-Identifier: MIT */
/*
 * The outgoing job event queue (evq.h): coalesced progress, final
 * events kept until fleetd's ack.  Both lists are tiny (a device runs
 * one job at a time), so they are plain arrays in arrival order.
 */
#include <stdlib.h>
#include <string.h>

#include "agent_mqtt.h"
#include "cmd.h"
#include "evq.h"
#include "journal.h"
#include "json.h"
#include "util.h"
#include "validate.h"

#define SEQ_MAX (UINT64_C(1) << 53)

struct evq_final {
	char job[AGENT_JOB_ID_MAX + 1];
	uint64_t seq;
	json_t *ev;
	int64_t due_ms;
	struct agent_backoff backoff;
	bool sent; /* by this process: later sends are repeats */
};

struct evq_progress {
	char job[AGENT_JOB_ID_MAX + 1];
	json_t *ev;
};

struct agent_evq {
	char *path;
	int64_t retry_min_ms;
	struct evq_final finals[AGENT_EVQ_FINALS_MAX];
	size_t n_finals;
	struct evq_progress pending[AGENT_EVQ_JOBS_MAX];
	size_t n_pending;
};

bool agent_evq_state_final(const char *state)
{
	static const char *const finals[] = {
	    "succeeded", "failed", "rolled-back", "cancelled", "expired"};

	for (size_t i = 0; state && i < FL_ARRAY_SIZE(finals); i++)
		if (strcmp(state, finals[i]) == 0)
			return true;
	return false;
}

static uint32_t rnd32(void)
{
	uint32_t r = 0;

	if (fl_random(&r, sizeof(r), NULL))
		r = (uint32_t)fl_now_ms() * 2654435761u;
	return r;
}

/* ------------------------------------------------------------------ */
/* Lists                                                              */
/* ------------------------------------------------------------------ */

static void final_drop(struct agent_evq *q, size_t i)
{
	json_decref(q->finals[i].ev);
	memmove(&q->finals[i], &q->finals[i + 1],
		(q->n_finals - i - 1) * sizeof(q->finals[0]));
	q->n_finals--;
}

static void pending_drop(struct agent_evq *q, size_t i)
{
	json_decref(q->pending[i].ev);
	memmove(&q->pending[i], &q->pending[i + 1],
		(q->n_pending - i - 1) * sizeof(q->pending[0]));
	q->n_pending--;
}

static struct evq_progress *pending_find(struct agent_evq *q, const char *job)
{
	for (size_t i = 0; i < q->n_pending; i++)
		if (fl_streq(q->pending[i].job, job))
			return &q->pending[i];
	return NULL;
}

/* Append a final (owning @ev), due now; the oldest goes when full. */
static void final_add(struct agent_evq *q, const char *job, uint64_t seq,
		      json_t *ev)
{
	struct evq_final *f;

	if (q->n_finals == AGENT_EVQ_FINALS_MAX)
		final_drop(q, 0);
	f = &q->finals[q->n_finals++];
	fl_strlcpy(f->job, job, sizeof(f->job));
	f->seq = seq;
	f->ev = ev;
	f->due_ms = 0;
	f->backoff =
	    (struct agent_backoff){q->retry_min_ms, AGENT_EVQ_RETRY_MAX_MS, 0};
}

/* ------------------------------------------------------------------ */
/* The file                                                           */
/* ------------------------------------------------------------------ */

static int save(const struct agent_evq *q, struct fl_error *err)
{
	json_t *arr = json_array(), *doc;
	int rc;

	for (size_t i = 0; i < q->n_finals; i++)
		json_array_append(arr, q->finals[i].ev);
	doc = json_pack("{s:i, s:o}", "version", 1, "events", arr);
	rc = fl_json_save_file(doc, q->path, 0600, err);
	json_decref(doc);
	return rc;
}

/* Check one stored event: an object with a seq, a job, a final state. */
static int check_final(const json_t *ev, const char **ret_job,
		       uint64_t *ret_seq, struct fl_error *err)
{
	const char *job, *state;
	int64_t seq;
	int rc;

	rc = fl_json_require_object(ev, "unconfirmed event", err);
	if (!rc)
		rc = fl_json_int(ev, "seq", 1, (int64_t)SEQ_MAX, &seq, err);
	if (!rc)
		rc = fl_json_str(ev, "job", AGENT_JOB_ID_MAX, &job, err);
	if (!rc)
		rc = fl_json_str(ev, "state", 32, &state, err);
	if (!rc && (!fl_valid_label(job) || !agent_evq_state_final(state)))
		rc = fl_fail(err, FL_EPARSE, "bad unconfirmed event");
	if (!rc) {
		*ret_job = job;
		*ret_seq = (uint64_t)seq;
	}
	return rc;
}

static int load(struct agent_evq *q, struct fl_error *err)
{
	size_t max = AGENT_EVQ_FINALS_MAX * (AGENT_EVENT_MAX + 64) + 1024;
	json_t *doc = NULL, *arr = NULL;
	const char *job;
	uint64_t seq;
	size_t i;
	int rc;

	rc = fl_json_load_file(q->path, max, &doc, err);
	if (rc == FL_ENOTFOUND) {
		fl_error_clear(err);
		return 0;
	}
	if (!rc)
		rc = fl_json_array(doc, "events", AGENT_EVQ_FINALS_MAX, &arr,
				   err);
	for (i = 0; !rc && i < json_array_size(arr); i++)
		rc = check_final(json_array_get(arr, i), &job, &seq, err);
	for (i = 0; !rc && i < json_array_size(arr); i++) {
		json_t *ev = json_array_get(arr, i);

		check_final(ev, &job, &seq, NULL);
		final_add(q, job, seq, json_deep_copy(ev));
	}
	json_decref(doc);
	return rc;
}

int agent_evq_open(const char *path, int64_t retry_min_ms,
		   struct agent_evq **ret, struct fl_error *err)
{
	struct agent_evq *q;
	int rc;

	if (retry_min_ms < 1000 || retry_min_ms > AGENT_EVQ_RETRY_MAX_MS)
		return fl_fail(err, FL_EINVAL, "event retry delay %lld ms",
			       (long long)retry_min_ms);
	q = fl_xcalloc(1, sizeof(*q));
	q->path = fl_xstrdup(path);
	q->retry_min_ms = retry_min_ms;
	rc = load(q, err);
	if (rc) {
		fl_error_prefix(err, "unconfirmed events '%s'", path);
		agent_evq_free(q);
		return rc;
	}
	*ret = q;
	return 0;
}

void agent_evq_free(struct agent_evq *q)
{
	if (!q)
		return;
	while (q->n_finals)
		final_drop(q, q->n_finals - 1);
	while (q->n_pending)
		pending_drop(q, q->n_pending - 1);
	free(q->path);
	free(q);
}

/* ------------------------------------------------------------------ */
/* Events in, acks in                                                 */
/* ------------------------------------------------------------------ */

void agent_evq_progress(struct agent_evq *q, const char *job, const json_t *ev)
{
	struct evq_progress *p = pending_find(q, job);

	if (p) {
		json_decref(p->ev);
		p->ev = json_deep_copy(ev);
		return;
	}
	if (q->n_pending == AGENT_EVQ_JOBS_MAX)
		pending_drop(q, 0);
	p = &q->pending[q->n_pending++];
	fl_strlcpy(p->job, job, sizeof(p->job));
	p->ev = json_deep_copy(ev);
}

int agent_evq_final(struct agent_evq *q, const char *job, const json_t *ev,
		    struct fl_error *err)
{
	char *text = fl_json_dumps(ev);
	size_t len = strlen(text);
	json_int_t seq = json_integer_value(json_object_get(ev, "seq"));

	free(text);
	if (len > AGENT_EVENT_MAX)
		return fl_fail(err, FL_ELIMIT, "event of %zu bytes", len);
	for (size_t i = q->n_pending; i-- > 0;)
		if (fl_streq(q->pending[i].job, job))
			pending_drop(q, i);
	for (size_t i = q->n_finals; i-- > 0;)
		if (fl_streq(q->finals[i].job, job))
			final_drop(q, i);
	final_add(q, job, (uint64_t)seq, json_deep_copy(ev));
	return save(q, err);
}

int agent_evq_ack(struct agent_evq *q, const char *job, uint64_t seq,
		  struct fl_error *err)
{
	for (size_t i = 0; i < q->n_finals; i++) {
		if (q->finals[i].seq == seq &&
		    fl_streq(q->finals[i].job, job)) {
			final_drop(q, i);
			return save(q, err);
		}
	}
	return fl_fail(err, FL_ENOTFOUND, "no unconfirmed event %llu of %s",
		       (unsigned long long)seq, job);
}

void agent_evq_on_connect(struct agent_evq *q)
{
	for (size_t i = 0; i < q->n_finals; i++) {
		q->finals[i].due_ms = 0;
		agent_backoff_reset(&q->finals[i].backoff);
	}
}

/* ------------------------------------------------------------------ */
/* Events out                                                         */
/* ------------------------------------------------------------------ */

void agent_evq_flush(struct agent_evq *q, int64_t now_ms, unsigned room,
		     const struct agent_evq_sink *s)
{
	for (size_t i = 0; room && i < q->n_finals; i++) {
		struct evq_final *f = &q->finals[i];

		if (now_ms < f->due_ms)
			continue;
		s->send_final(s->user, f->ev, f->sent);
		f->sent = true;
		f->due_ms = now_ms + agent_backoff_next(&f->backoff, rnd32());
		room--;
	}
	while (room && q->n_pending) {
		if (s->send_progress(s->user, q->pending[0].ev))
			return; /* kept; the next flush tries again */
		pending_drop(q, 0);
		room--;
	}
}

size_t agent_evq_unconfirmed(const struct agent_evq *q)
{
	return q->n_finals;
}

size_t agent_evq_pending(const struct agent_evq *q)
{
	return q->n_pending;
}

int64_t agent_evq_next_due(const struct agent_evq *q)
{
	int64_t next = INT64_MAX;

	for (size_t i = 0; i < q->n_finals; i++)
		if (q->finals[i].due_ms < next)
			next = q->finals[i].due_ms;
	return next;
}
