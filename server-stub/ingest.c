/* SPDX-License-Identifier: MIT */
/*
 * Bounded queue and batch writer between fleetd's MQTT network thread
 * and the store (ingest.h).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest.h"
#include "jobs.h"
#include "json.h"
#include "log.h"
#include "proto.h"
#include "shadow.h"
#include "telemetry.h"
#include "util.h"
#include "validate.h"

#define RETRIES 4	   /* whole-batch attempts after the first */
#define RETRY_BASE_MS 100 /* doubling */
#define SEQ_MAX (INT64_C(1) << 53)
/* rejected telemetry is logged once a minute per slot of devices */
#define WARN_SLOTS 256
#define WARN_EVERY_MS 60000

struct msg {
	enum srv_ingest_kind kind;
	char device[FL_ID_MAX + 1];
	char *buf; /* the payload, then the strings @f points to */
	size_t len;
	bool ok;   /* parsed and checked by the pushing thread */
	struct srv_ingest_fields f;
	struct srv_tmsg *tele; /* telemetry: its points (f.tele) */
};

struct srv_ingest {
	struct srv_store *store;
	struct srv_ingest_cfg cfg;
	srv_ingest_ack_fn ack;
	void *ack_arg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full, idle;
	struct msg *ring; /* cfg.queue slots */
	size_t head, count, bytes;
	bool stopping, busy;
	struct srv_ingest_stats st;
	int64_t warned[WARN_SLOTS]; /* when a rejection was logged, by
				     * device hash (atomics) */
	struct srv_tpoint *pts;	    /* the writer's, for cfg.on_points */
	size_t pts_cap;
};

/* ------------------------------------------------------------------ */
/* Parsing: every payload is untrusted                                */
/* ------------------------------------------------------------------ */

static int check_event(const json_t *j, struct fl_error *err)
{
	const json_t *job = json_object_get(j, "job");
	const json_t *state = json_object_get(j, "state");
	int64_t seq;
	int rc = fl_json_int(j, "seq", 1, SEQ_MAX, &seq, err);

	if (!rc && job && !json_is_null(job) &&
	    !(json_is_string(job) && fl_valid_id(json_string_value(job))))
		rc = fl_fail(err, FL_EPARSE, "'job' is not an id");
	if (!rc && state && !json_is_null(state) &&
	    !(json_is_string(state) &&
	      fl_valid_text(json_string_value(state), 64)))
		rc = fl_fail(err, FL_EPARSE, "'state' is not a short text");
	return rc;
}

/*
 * Log that telemetry from @device was refused: at most once a minute per
 * device (devices whose ids hash alike share the minute).  Any thread.
 */
static void warn_rejected(struct srv_ingest *q, const char *device,
			  const char *why)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	int64_t now = fl_now_ms(), last;
	int64_t *slot;

	for (const char *p = device; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	slot = &q->warned[h % WARN_SLOTS];
	last = __atomic_load_n(slot, __ATOMIC_RELAXED);
	if ((last && now - last < WARN_EVERY_MS) ||
	    !__atomic_compare_exchange_n(slot, &last, now, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	fl_warn("telemetry from %s rejected: %s (logged once a minute at "
		"most)",
		device, why);
}

/* The message, parsed and checked; NULL when it is not acceptable.
 * Telemetry's points go to *@ret_tele. */
static json_t *parse(struct srv_ingest *q, enum srv_ingest_kind kind,
		     const char *device, const void *payload, size_t len,
		     struct srv_tmsg **ret_tele)
{
	struct fl_error err = {0};
	json_t *j = NULL;
	bool online;
	int rc;

	rc = fl_json_parse(payload, len, q->cfg.max_payload, &j, &err);
	if (!rc)
		rc = fl_json_require_object(j, "payload", &err);
	if (!rc && kind == SRV_INGEST_PRESENCE)
		rc = fl_json_bool(j, "online", &online, &err);
	if (!rc && kind == SRV_INGEST_EVENT)
		rc = check_event(j, &err);
	if (!rc && kind == SRV_INGEST_SHADOW)
		rc = fl_shadow_check_report(j, &err);
	if (!rc && kind == SRV_INGEST_TELEMETRY)
		rc = srv_telemetry_parse(j, fl_wall_ms(), ret_tele,
					 &err);
	if (rc && kind == SRV_INGEST_TELEMETRY)
		warn_rejected(q, device, err.msg);
	if (rc) {
		fl_debug("message from %s dropped: %s", device, err.msg);
		json_decref(j);
		return NULL;
	}
	return j;
}

/* Member @key of @o when it is a string of at most @max bytes. */
static const char *str(const json_t *o, const char *key, size_t max)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v && strlen(v) <= max ? v : NULL;
}

/*
 * A reported state member: its string as str() takes it, "" when the
 * device says null (it no longer knows: the store clears the column), or
 * NULL when absent (the store keeps what it has).
 */
static const char *reported(const json_t *o, const char *key, size_t max)
{
	return json_is_null(json_object_get(o, key)) ? "" : str(o, key, max);
}

/* A non-negative integer member, or -1. */
static int64_t int_or_none(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) >= 0
		       ? json_integer_value(v)
		       : -1;
}

void srv_ingest_fields_get(const json_t *j, struct srv_ingest_fields *f)
{
	*f = (struct srv_ingest_fields){
	    .seq = json_integer_value(json_object_get(j, "seq")),
	    .version = json_integer_value(json_object_get(j, "version")),
	    .bytes = int_or_none(j, "bytes"),
	    .total = int_or_none(j, "total"),
	    .online = json_is_true(json_object_get(j, "online")),
	    .job = str(j, "job", 64),
	    .cmd = str(j, "cmd", 64),
	    .type = str(j, "type", 64),
	    .state = str(j, "state", 64),
	    .stage = str(j, "stage", 512),
	    .reason = str(j, "reason", 512),
	    .from_version = str(j, "from_version", 64),
	    .agent = str(j, "agent", 64),
	    .firmware = reported(j, "firmware", 64),
	    .slot = reported(j, "slot", 64),
	    .health = reported(j, "health", 64)};
}

/* A final event's "history" into @out (SRV_HISTORY_MAX at most); a bad
 * one counts as none. */
static size_t history_get(const json_t *j, int64_t *out)
{
	size_t n = 0;

	if (fl_json_seqs(j, "history", SRV_HISTORY_MAX, out, &n, NULL))
		return 0;
	return n;
}

/* Where @f's history goes in a buffer of @used bytes (8-aligned). */
static size_t history_at(size_t used)
{
	return (used + 7) & ~(size_t)7;
}

/* Copy @n seqs of @h to @buf at @off and point @f at them. */
static void history_put(char *buf, size_t off, const int64_t *h, size_t n,
			struct srv_ingest_fields *f)
{
	memcpy(buf + off, h, n * sizeof(*h));
	f->history = (const int64_t *)(void *)(buf + off);
	f->n_history = n;
}

char *srv_ingest_item_json(struct srv_ingest_item *it, const json_t *j)
{
	char *text = fl_json_dumps(j);
	int64_t h[SRV_HISTORY_MAX];
	size_t n = history_get(j, h), off = history_at(strlen(text) + 1);

	srv_ingest_fields_get(j, &it->f);
	if (n) {
		text = fl_xrealloc(text, off + n * sizeof(*h));
		history_put(text, off, h, n, &it->f);
	}
	it->text = text;
	return text;
}

/*
 * @m's buffer: the payload and, after it, copies of the strings of its
 * fields (repointed there), so that the JSON is freed on this side and
 * the writer touches no JSON at all.
 */
static void pack(struct msg *m, const void *payload, const json_t *j)
{
	const char **strs[] = {&m->f.job,    &m->f.cmd,   &m->f.type,
			       &m->f.state,  &m->f.stage, &m->f.reason,
			       &m->f.from_version, &m->f.agent,
			       &m->f.firmware, &m->f.slot, &m->f.health};
	size_t size = m->len + 1, n_hist = 0;
	int64_t hist[SRV_HISTORY_MAX];
	char *p;

	if (j) {
		srv_ingest_fields_get(j, &m->f);
		n_hist = history_get(j, hist);
	}
	for (size_t i = 0; j && i < FL_ARRAY_SIZE(strs); i++)
		size += *strs[i] ? strlen(*strs[i]) + 1 : 0;
	m->buf = fl_xmalloc(history_at(size) + n_hist * sizeof(*hist));
	memcpy(m->buf, payload, m->len);
	m->buf[m->len] = '\0';
	p = m->buf + m->len + 1;
	for (size_t i = 0; j && i < FL_ARRAY_SIZE(strs); i++) {
		size_t n;

		if (!*strs[i])
			continue;
		n = strlen(*strs[i]) + 1;
		memcpy(p, *strs[i], n);
		*strs[i] = p;
		p += n;
	}
	if (n_hist)
		history_put(m->buf, history_at(size), hist, n_hist, &m->f);
	m->ok = j != NULL;
}

/* ------------------------------------------------------------------ */
/* The queue                                                          */
/* ------------------------------------------------------------------ */

static bool full(const struct srv_ingest *q, size_t len)
{
	return q->count == q->cfg.queue ||
	       (q->count > 0 && q->bytes + len > q->cfg.max_bytes);
}

bool srv_ingest_push(struct srv_ingest *q, enum srv_ingest_kind kind,
		     const char *device, const void *payload, size_t len)
{
	/* parsed here, in the network thread, so that the writer's
	 * single thread does only the store's part */
	struct msg m = {.kind = kind, .len = len};
	json_t *j = parse(q, kind, device, payload, len, &m.tele);
	int64_t since = 0;

	fl_strlcpy(m.device, device, sizeof(m.device));
	pack(&m, payload, j);
	m.f.tele = m.tele;
	json_decref(j);

	pthread_mutex_lock(&q->lock);
	if (full(q, len) && !q->stopping) {
		q->st.waits++;
		since = fl_now_ms();
		while (full(q, len) && !q->stopping)
			pthread_cond_wait(&q->not_full, &q->lock);
		q->st.wait_ms += (uint64_t)(fl_now_ms() - since);
	}
	if (q->stopping) {
		pthread_mutex_unlock(&q->lock);
		free(m.buf);
		free(m.tele);
		return false;
	}
	q->ring[(q->head + q->count) % q->cfg.queue] = m;
	q->count++;
	q->bytes += len;
	q->st.received++;
	if (q->count > q->st.high_water)
		q->st.high_water = q->count;
	if (q->count == 1 || q->count == q->cfg.batch)
		pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
	return true;
}

/*
 * With fewer than a batch queued, give the rest of a burst cfg.linger_ms
 * to arrive: a commit costs about as much as the dirty pages it writes,
 * so one of 500 events costs little more than one of 50.  The pusher
 * wakes the writer when the queue stops being empty or reaches a batch.
 */
static void linger(struct srv_ingest *q)
{
	struct timespec until;

	if (!q->cfg.linger_ms || q->count >= q->cfg.batch || q->stopping)
		return;
	fl_deadline(&until, q->cfg.linger_ms);
	while (q->count < q->cfg.batch && !q->stopping &&
	       pthread_cond_timedwait(&q->not_empty, &q->lock, &until) == 0)
		;
}

/* Move up to cfg.batch messages into @out; 0 once stopped and empty. */
static size_t take(struct srv_ingest *q, struct msg *out)
{
	size_t n = 0;

	pthread_mutex_lock(&q->lock);
	q->busy = false;
	pthread_cond_broadcast(&q->idle);
	while (!q->count && !q->stopping)
		pthread_cond_wait(&q->not_empty, &q->lock);
	linger(q);
	while (q->count && n < q->cfg.batch) {
		out[n] = q->ring[q->head];
		q->head = (q->head + 1) % q->cfg.queue;
		q->count--;
		q->bytes -= out[n++].len;
	}
	q->busy = n > 0;
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->lock);
	return n;
}

/* ------------------------------------------------------------------ */
/* The writer                                                         */
/* ------------------------------------------------------------------ */

/* Apply @n items: the batch, retried with backoff; when it keeps
 * failing, each item alone, so one bad item cannot block the rest. */
static void apply(struct srv_ingest *q, struct srv_ingest_item *items,
		  size_t n, uint64_t *ret_retries, uint64_t *ret_failed)
{
	struct fl_error err = {0};
	int rc = srv_store_ingest(q->store, items, n, &err);

	for (int i = 0; rc && i < RETRIES; i++) {
		fl_warn("storing %zu device messages: %s (retrying)", n,
			err.msg);
		fl_error_clear(&err);
		usleep((useconds_t)(RETRY_BASE_MS << i) * 1000);
		(*ret_retries)++;
		rc = srv_store_ingest(q->store, items, n, &err);
	}
	if (!rc)
		return;
	for (size_t i = 0; i < n; i++) {
		fl_error_clear(&err);
		if (srv_store_ingest(q->store, &items[i], 1, &err)) {
			fl_error("a message from %s is lost: %s",
				 items[i].device, err.msg);
			items[i].result = 0;
			(*ret_failed)++;
		}
	}
}

static bool final_job_event(const struct srv_ingest_item *it)
{
	return it->kind == SRV_INGEST_EVENT && it->result && it->f.job &&
	       fl_job_state_name_final(it->f.state);
}

static void confirm(struct srv_ingest *q, const struct srv_ingest_item *it)
{
	int64_t missing[SRV_HISTORY_MAX];
	size_t n = 0;

	for (size_t i = 0; i < it->f.n_history; i++)
		if (it->missing & (UINT32_C(1) << i))
			missing[n++] = it->f.history[i];
	q->ack(q->ack_arg, it->device, it->f.seq, it->f.job, it->f.state,
	       missing, n);
}

static void log_event(const struct srv_ingest_item *it)
{
	static const char *const results[] = {"lost",     "stored",
					      "duplicate", "rejected",
					      "stale",    "illegal"};
	const struct srv_ingest_fields *f = &it->f;

	fl_debug("event from %s: type=%s state=%s%s%s (seq %lld: %s)",
		 it->device, f->type ?: "?", f->state ?: "?",
		 f->reason ? " reason=" : "", f->reason ?: "",
		 (long long)f->seq, results[it->result]);
}

static void count(struct srv_ingest *q, const struct srv_ingest_item *items,
		  size_t n, size_t parsed, const struct srv_ingest_stats *d)
{
	pthread_mutex_lock(&q->lock);
	q->st.rejected += n - parsed;
	for (size_t i = 0; i < parsed; i++) {
		q->st.stored += items[i].result == SRV_INGEST_STORED;
		q->st.duplicates += items[i].result == SRV_INGEST_DUPLICATE;
		q->st.rejected += items[i].result == SRV_INGEST_REJECTED;
		q->st.job_stale += items[i].result == SRV_INGEST_STALE;
		q->st.job_illegal += items[i].result == SRV_INGEST_ILLEGAL;
		q->st.seq_gaps += (uint64_t)items[i].gap;
	}
	q->st.batches++;
	q->st.retries += d->retries;
	q->st.failed += d->failed;
	q->st.acks += d->acks;
	q->st.tele_points += d->tele_points;
	q->st.tele_duplicates += d->tele_duplicates;
	q->st.tele_rejected += d->tele_rejected;
	q->st.tele_dropped += d->tele_dropped;
	pthread_mutex_unlock(&q->lock);
}

#ifdef FLEET_TEST_HOOKS
/* Test builds only (fleetd-test): FLEETD_FAILPOINTS=ingest-lose-final
 * (or ingest-lose-progress) loses the first final (or progress) job
 * event after the broker's PUBACK, as a fleetd killed at that moment, or
 * a broker killed before delivering it, would: not stored, not
 * confirmed. */
static bool failpoint_lose(const struct srv_ingest_item *it)
{
	static bool lost;
	const char *fp = getenv("FLEETD_FAILPOINTS");
	bool final;

	if (lost || !fp || it->kind != SRV_INGEST_EVENT || !it->f.job ||
	    !it->f.state)
		return false;
	final = fl_job_state_name_final(it->f.state);
	if (!(fl_streq(fp, "ingest-lose-final") && final) &&
	    !(fl_streq(fp, "ingest-lose-progress") && !final))
		return false;
	lost = true;
	fl_warn("failpoint: event %lld from %s lost", (long long)it->f.seq,
		it->device);
	return true;
}
#else
static bool failpoint_lose(const struct srv_ingest_item *it)
{
	(void)it;
	return false;
}
#endif

/* A telemetry item's outcome into @d; a refused one is logged. */
static void tally_telemetry(struct srv_ingest *q,
			    const struct srv_ingest_item *it,
			    struct srv_ingest_stats *d)
{
	if (it->kind != SRV_INGEST_TELEMETRY)
		return;
	if (it->result == SRV_INGEST_STORED) {
		d->tele_points += it->f.tele->n;
		d->tele_dropped += (uint64_t)it->f.tele->dropped;
	}
	d->tele_duplicates += it->result == SRV_INGEST_DUPLICATE;
	if (it->result == SRV_INGEST_REJECTED) {
		d->tele_rejected++;
		warn_rejected(q, it->device, "no active device by that id");
	}
}

/* Hand every point the batch stored to cfg.on_points, in one call. */
static void hand_points(struct srv_ingest *q,
			const struct srv_ingest_item *items, size_t n)
{
	size_t total = 0;

	for (size_t i = 0; q->cfg.on_points && i < n; i++) {
		const struct srv_tmsg *m = items[i].f.tele;

		if (items[i].kind != SRV_INGEST_TELEMETRY ||
		    items[i].result != SRV_INGEST_STORED)
			continue;
		if (total + m->n > q->pts_cap) {
			q->pts_cap = 2 * (total + m->n);
			q->pts =
			    fl_xrealloc(q->pts, q->pts_cap * sizeof(*q->pts));
		}
		for (size_t p = 0; p < m->n; p++) {
			q->pts[total] = m->points[p];
			q->pts[total++].device = items[i].device;
		}
	}
	if (total)
		q->cfg.on_points(q->cfg.on_points_arg, q->pts, total);
}

static void write_batch(struct srv_ingest *q, struct msg *msgs, size_t n,
			struct srv_ingest_item *items)
{
	struct srv_ingest_stats d = {0};
	size_t k = 0, lost = 0;

	for (size_t i = 0; i < n; i++) {
		d.tele_rejected +=
		    !msgs[i].ok && msgs[i].kind == SRV_INGEST_TELEMETRY;
		if (!msgs[i].ok)
			continue;
		items[k] = (struct srv_ingest_item){.kind = msgs[i].kind,
						    .device = msgs[i].device,
						    .f = msgs[i].f,
						    .text = msgs[i].buf,
						    .result = SRV_INGEST_STORED};
		if (failpoint_lose(&items[k])) {
			lost++; /* neither stored nor rejected */
			continue;
		}
		items[k++].result = 0;
	}
	if (k)
		apply(q, items, k, &d.retries, &d.failed);
	for (size_t i = 0; i < k; i++) {
		if (items[i].kind == SRV_INGEST_EVENT)
			log_event(&items[i]);
		if (final_job_event(&items[i])) {
			confirm(q, &items[i]);
			d.acks++;
		}
		tally_telemetry(q, &items[i], &d);
	}
	hand_points(q, items, k);
	count(q, items, n - lost, k, &d);
	for (size_t i = 0; i < n; i++) {
		free(msgs[i].buf);
		free(msgs[i].tele);
	}
}

static void *writer(void *arg)
{
	struct srv_ingest *q = arg;
	struct msg *msgs = fl_xcalloc(q->cfg.batch, sizeof(*msgs));
	struct srv_ingest_item *items =
		fl_xcalloc(q->cfg.batch, sizeof(*items));
	size_t n;

	while ((n = take(q, msgs)) > 0)
		write_batch(q, msgs, n, items);
	free(items);
	free(msgs);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */
/* ------------------------------------------------------------------ */

int srv_ingest_start(struct srv_store *store, const struct srv_ingest_cfg *cfg,
		     srv_ingest_ack_fn ack, void *ack_arg,
		     struct srv_ingest **ret, struct fl_error *err)
{
	struct srv_ingest *q;

	if (!cfg->queue || !cfg->batch || !cfg->max_bytes ||
	    cfg->queue > SRV_INGEST_QUEUE_MAX)
		return fl_fail(err, FL_EINVAL, "bad ingest queue settings");
	q = fl_xcalloc(1, sizeof(*q));
	q->store = store;
	q->cfg = *cfg;
	q->ack = ack;
	q->ack_arg = ack_arg;
	q->ring = fl_xcalloc(cfg->queue, sizeof(*q->ring));
	q->st.capacity = cfg->queue;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	pthread_cond_init(&q->idle, NULL);
	if (pthread_create(&q->thread, NULL, writer, q) != 0) {
		free(q->ring);
		free(q);
		return fl_fail(err, FL_ERR, "cannot start the ingest thread");
	}
	*ret = q;
	return 0;
}

bool srv_ingest_drain(struct srv_ingest *q, int ms)
{
	struct timespec until;
	bool done;

	fl_deadline(&until, ms);
	pthread_mutex_lock(&q->lock);
	while ((q->count || q->busy) &&
	       pthread_cond_timedwait(&q->idle, &q->lock, &until) == 0)
		;
	done = !q->count && !q->busy;
	pthread_mutex_unlock(&q->lock);
	return done;
}

void srv_ingest_stats(struct srv_ingest *q, struct srv_ingest_stats *ret)
{
	pthread_mutex_lock(&q->lock);
	*ret = q->st;
	ret->depth = q->count;
	pthread_mutex_unlock(&q->lock);
}

void srv_ingest_stop(struct srv_ingest *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	pthread_cond_destroy(&q->idle);
	free(q->ring);
	free(q->pts);
	free(q);
}
