/* SPDX-License-Identifier: MIT */
/*
 * The outgoing job event queue (evq.h): coalesced progress, final
 * events kept until fleetd's ack, sent progress kept until fleetd has
 * it.  The lists are tiny (a device runs one job at a time), so they
 * are plain arrays in arrival order.
 */
#include <stdlib.h>
#include <string.h>

#include "agent_mqtt.h"
#include "cmd.h"
#include "evq.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "util.h"
#include "validate.h"

#define SEQ_MAX (UINT64_C(1) << 53)

struct evq_final {
	char job[AGENT_JOB_ID_MAX + 1];
	uint64_t seq;
	json_t *ev;
	int64_t due_ms;
	struct agent_backoff backoff;
	bool sent;	  /* by this process: later sends are repeats */
	unsigned repairs; /* acks that named missing events */
};

/* A progress event as sent, kept until its job's final is confirmed. */
struct evq_sent {
	char job[AGENT_JOB_ID_MAX + 1];
	uint64_t seq;
	json_t *ev;
	bool due; /* fleetd misses it: publish again */
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
	struct evq_sent sent[AGENT_EVQ_SENT_MAX];
	size_t n_sent;
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

/* Remove pending event @i from the list; the caller owns its JSON. */
static json_t *pending_take(struct agent_evq *q, size_t i)
{
	json_t *ev = q->pending[i].ev;

	memmove(&q->pending[i], &q->pending[i + 1],
		(q->n_pending - i - 1) * sizeof(q->pending[0]));
	q->n_pending--;
	return ev;
}

static void pending_drop(struct agent_evq *q, size_t i)
{
	json_decref(pending_take(q, i));
}

static void sent_drop(struct agent_evq *q, size_t i)
{
	json_decref(q->sent[i].ev);
	memmove(&q->sent[i], &q->sent[i + 1],
		(q->n_sent - i - 1) * sizeof(q->sent[0]));
	q->n_sent--;
}

static void sent_drop_job(struct agent_evq *q, const char *job)
{
	for (size_t i = q->n_sent; i-- > 0;)
		if (fl_streq(q->sent[i].job, job))
			sent_drop(q, i);
}

static const char *ev_state(const json_t *ev)
{
	return json_string_value(json_object_get(ev, "state"));
}

/* Where a new sent event goes when the list is full: the oldest of its
 * job in the same state (a download's earlier progress), else the
 * oldest of all. */
static size_t sent_victim(const struct agent_evq *q, const char *job,
			  const json_t *ev)
{
	for (size_t i = 0; i < q->n_sent; i++)
		if (fl_streq(q->sent[i].job, job) &&
		    fl_streq(ev_state(q->sent[i].ev), ev_state(ev)))
			return i;
	return 0;
}

/* Append a sent event (owning @ev, its "seq" set). */
static void sent_add(struct agent_evq *q, const char *job, uint64_t seq,
		     json_t *ev)
{
	struct evq_sent *e;

	if (q->n_sent == AGENT_EVQ_SENT_MAX)
		sent_drop(q, sent_victim(q, job, ev));
	e = &q->sent[q->n_sent++];
	fl_strlcpy(e->job, job, sizeof(e->job));
	e->seq = seq;
	e->ev = ev;
	e->due = false;
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
	json_t *arr = json_array(), *sent = json_array(), *doc;
	int rc;

	for (size_t i = 0; i < q->n_finals; i++)
		json_array_append(arr, q->finals[i].ev);
	for (size_t i = 0; i < q->n_sent; i++)
		json_array_append(sent, q->sent[i].ev);
	doc = json_pack("{s:i, s:o, s:o}", "version", 1, "events", arr, "sent",
			sent);
	rc = fl_json_save_file(doc, q->path, 0600, err);
	json_decref(doc);
	return rc;
}

/* Check one stored event: an object with a seq, a job, a state final
 * or not as @final says. */
static int check_kept(const json_t *ev, bool final, const char **ret_job,
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
	if (!rc &&
	    (!fl_valid_label(job) || agent_evq_state_final(state) != final))
		rc = fl_fail(err, FL_EPARSE, "bad unconfirmed event");
	if (!rc) {
		*ret_job = job;
		*ret_seq = (uint64_t)seq;
	}
	return rc;
}

/* Check every event of @arr, then keep each (finals or sent ones). */
static int load_list(struct agent_evq *q, const json_t *arr, bool final,
		     struct fl_error *err)
{
	const char *job;
	uint64_t seq;
	size_t i;
	int rc = 0;

	for (i = 0; !rc && i < json_array_size(arr); i++)
		rc = check_kept(json_array_get(arr, i), final, &job, &seq, err);
	for (i = 0; !rc && i < json_array_size(arr); i++) {
		json_t *ev = json_array_get(arr, i);

		check_kept(ev, final, &job, &seq, NULL);
		if (final)
			final_add(q, job, seq, json_deep_copy(ev));
		else
			sent_add(q, job, seq, json_deep_copy(ev));
	}
	return rc;
}

static int load(struct agent_evq *q, struct fl_error *err)
{
	size_t max = (AGENT_EVQ_FINALS_MAX + AGENT_EVQ_SENT_MAX) *
			 (AGENT_EVENT_MAX + 64) +
		     1024;
	json_t *doc = NULL, *arr = NULL, *sent = NULL;
	int rc;

	rc = fl_json_load_file(q->path, max, &doc, err);
	if (rc == FL_ENOTFOUND) {
		fl_error_clear(err);
		return 0;
	}
	if (!rc)
		rc = fl_json_array(doc, "events", AGENT_EVQ_FINALS_MAX, &arr,
				   err);
	if (!rc && json_object_get(doc, "sent"))
		rc = fl_json_array(doc, "sent", AGENT_EVQ_SENT_MAX, &sent, err);
	if (!rc)
		rc = load_list(q, arr, true, err);
	if (!rc)
		rc = load_list(q, sent, false, err);
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
	while (q->n_sent)
		sent_drop(q, q->n_sent - 1);
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

/* A copy of final @ev with "history": @job's sent seqs, if any. */
static json_t *with_history(const struct agent_evq *q, const char *job,
			    const json_t *ev)
{
	json_t *copy = json_deep_copy(ev), *h = json_array();

	for (size_t i = 0; i < q->n_sent; i++)
		if (fl_streq(q->sent[i].job, job))
			json_array_append_new(
			    h, json_integer((json_int_t)q->sent[i].seq));
	if (json_array_size(h))
		json_object_set_new(copy, "history", h);
	else
		json_decref(h);
	return copy;
}

int agent_evq_final(struct agent_evq *q, const char *job, const json_t *ev,
		    struct fl_error *err)
{
	json_t *copy = with_history(q, job, ev);
	char *text = fl_json_dumps(copy);
	size_t len = strlen(text);
	json_int_t seq = json_integer_value(json_object_get(ev, "seq"));

	free(text);
	if (len > AGENT_EVENT_MAX) {
		json_decref(copy);
		return fl_fail(err, FL_ELIMIT, "event of %zu bytes", len);
	}
	for (size_t i = q->n_pending; i-- > 0;)
		if (fl_streq(q->pending[i].job, job))
			pending_drop(q, i);
	for (size_t i = q->n_finals; i-- > 0;)
		if (fl_streq(q->finals[i].job, job))
			final_drop(q, i);
	final_add(q, job, (uint64_t)seq, copy);
	return save(q, err);
}

/* Mark @job's sent events that @missing names due again: how many. */
static size_t sent_due(struct agent_evq *q, const char *job,
		       const uint64_t *missing, size_t n_missing)
{
	size_t n = 0;

	for (size_t i = 0; i < q->n_sent; i++) {
		struct evq_sent *e = &q->sent[i];

		for (size_t k = 0; k < n_missing; k++)
			if (missing[k] == e->seq && fl_streq(e->job, job)) {
				e->due = true;
				n++;
				break;
			}
	}
	return n;
}

int agent_evq_ack(struct agent_evq *q, const char *job, uint64_t seq,
		  const uint64_t *missing, size_t n_missing, size_t *ret_resent,
		  struct fl_error *err)
{
	struct evq_final *f = NULL;
	size_t i, n = 0;

	for (i = 0; i < q->n_finals && !f; i++)
		if (q->finals[i].seq == seq && fl_streq(q->finals[i].job, job))
			f = &q->finals[i];
	if (ret_resent)
		*ret_resent = 0;
	if (!f)
		return fl_fail(err, FL_ENOTFOUND,
			       "no unconfirmed event %llu of %s",
			       (unsigned long long)seq, job);
	if (f->repairs < AGENT_EVQ_REPAIRS_MAX)
		n = sent_due(q, job, missing, n_missing);
	if (n) {
		f->repairs++;
		f->due_ms = 0; /* right after the events it misses */
		if (ret_resent)
			*ret_resent = n;
		return 0;
	}
	final_drop(q, (size_t)(f - q->finals));
	sent_drop_job(q, job);
	return save(q, err);
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

/* Hand over pending progress, each kept as sent; true if any was. */
static bool flush_progress(struct agent_evq *q, unsigned *room,
			   const struct agent_evq_sink *s)
{
	bool any = false;

	while (*room && q->n_pending) {
		char job[AGENT_JOB_ID_MAX + 1];
		json_t *ev;

		if (s->send_progress(s->user, q->pending[0].ev))
			break; /* kept; the next flush tries again */
		fl_strlcpy(job, q->pending[0].job, sizeof(job));
		ev = pending_take(q, 0);
		sent_add(
		    q, job,
		    (uint64_t)json_integer_value(json_object_get(ev, "seq")),
		    ev);
		(*room)--;
		any = true;
	}
	return any;
}

void agent_evq_flush(struct agent_evq *q, int64_t now_ms, unsigned room,
		     const struct agent_evq_sink *s)
{
	struct fl_error err = {0};

	for (size_t i = 0; room && i < q->n_sent; i++) {
		if (!q->sent[i].due)
			continue;
		s->send_final(s->user, q->sent[i].ev, true);
		q->sent[i].due = false;
		room--;
	}
	for (size_t i = 0; room && i < q->n_finals; i++) {
		struct evq_final *f = &q->finals[i];

		if (now_ms < f->due_ms)
			continue;
		s->send_final(s->user, f->ev, f->sent);
		f->sent = true;
		f->due_ms = now_ms + agent_backoff_next(&f->backoff, rnd32());
		room--;
	}
	if (flush_progress(q, &room, s) && save(q, &err))
		fl_warn("sent events: %s", err.msg);
}

size_t agent_evq_unconfirmed(const struct agent_evq *q)
{
	return q->n_finals;
}

size_t agent_evq_pending(const struct agent_evq *q)
{
	return q->n_pending;
}

size_t agent_evq_sent(const struct agent_evq *q)
{
	return q->n_sent;
}

int64_t agent_evq_next_due(const struct agent_evq *q)
{
	int64_t next = INT64_MAX;

	for (size_t i = 0; i < q->n_sent; i++)
		if (q->sent[i].due)
			return 0;
	for (size_t i = 0; i < q->n_finals; i++)
		if (q->finals[i].due_ms < next)
			next = q->finals[i].due_ms;
	return next;
}
