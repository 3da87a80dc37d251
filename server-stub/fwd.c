/* SPDX-License-Identifier: MIT */
/*
 * The forwarder's queue and thread (fwd.h); the backends are in
 * fwd_influx.c and fwd_pg.c, the settings in fwd_config.c.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fwd_internal.h"
#include "log.h"
#include "util.h"

struct srv_fwd {
	const struct fwd_backend *be;
	void *ctx;
	struct srv_fwd_config cfg; /* numbers only: strings stay in ctx */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* points arrived, or stop */
	/* waiting points: a ring of cap slots, n used from head */
	struct fwd_pt **ring;
	size_t cap, head, n;
	uint64_t ring_bytes;
	/* the batch in flight, owned by the thread (count under lock) */
	struct fwd_pt **batch;
	size_t batch_n;
	uint64_t batch_bytes;
	int64_t oldest_ms; /* when the oldest waiting point arrived */
	bool stopping;
	int64_t stop_by; /* monotonic ms: give up retrying after this */
	uint64_t rng;
	struct srv_fwd_stats st;
};

static size_t pt_bytes(const struct fwd_pt *p)
{
	return sizeof(*p) + strlen(p->device) + strlen(p->metric) + 2;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static struct fwd_pt *pt_copy(const struct srv_tpoint *in)
{
	size_t dl = strlen(in->device), ml = strlen(in->metric);
	struct fwd_pt *p = fl_xmalloc(sizeof(*p) + dl + ml + 2);

	p->ts_ms = in->ts_ms;
	p->value = in->value;
	memcpy(p->device, in->device, dl + 1);
	memcpy(p->device + dl + 1, in->metric, ml + 1);
	p->metric = p->device + dl + 1;
	return p;
}

static struct fwd_pt *ring_pop(struct srv_fwd *f)
{
	struct fwd_pt *p = f->ring[f->head];

	f->head = (f->head + 1) % f->cap;
	f->n--;
	f->ring_bytes -= pt_bytes(p);
	return p;
}

static void ring_grow(struct srv_fwd *f)
{
	size_t cap = f->cap ? f->cap * 2 : 64;
	struct fwd_pt **r = fl_xmalloc(cap * sizeof(*r));

	for (size_t i = 0; i < f->n; i++)
		r[i] = f->ring[(f->head + i) % f->cap];
	free(f->ring);
	f->ring = r;
	f->cap = cap;
	f->head = 0;
}

/* Append @p, first dropping the oldest waiting points that would put
 * the queue past either bound (caller holds the lock). */
static void ring_push(struct srv_fwd *f, struct fwd_pt *p)
{
	size_t b = pt_bytes(p);

	while (f->n && (f->n + 1 > f->cfg.queue_points ||
			f->ring_bytes + b > f->cfg.queue_bytes)) {
		free(ring_pop(f));
		f->st.dropped++;
	}
	if (b > f->cfg.queue_bytes || f->cfg.queue_points == 0) {
		free(p);
		f->st.dropped++;
		return;
	}
	if (f->n == f->cap)
		ring_grow(f);
	if (f->n == 0)
		f->oldest_ms = fl_now_ms();
	f->ring[(f->head + f->n) % f->cap] = p;
	f->n++;
	f->ring_bytes += b;
}

void srv_fwd_submit(struct srv_fwd *f, const struct srv_tpoint *pts, size_t n)
{
	uint64_t dropped;

	pthread_mutex_lock(&f->lock);
	dropped = f->st.dropped;
	for (size_t i = 0; i < n; i++) {
		if (!valid_name(pts[i].device) || !valid_name(pts[i].metric) ||
		    !isfinite(pts[i].value)) {
			f->st.refused++;
			continue;
		}
		ring_push(f, pt_copy(&pts[i]));
	}
	if (f->n)
		pthread_cond_signal(&f->wake);
	dropped = f->st.dropped - dropped;
	pthread_mutex_unlock(&f->lock);
	if (dropped)
		fl_debug("%s: queue full, dropped the %llu oldest points",
			 f->be->name, (unsigned long long)dropped);
}

/* Stopping and out of time (lock held). */
static bool past_stop(const struct srv_fwd *f)
{
	return f->stopping && fl_now_ms() >= f->stop_by;
}

/* Wait until a batch is due (full, lingered long enough, or stopping
 * with points left); false when stopping with nothing left. */
static bool wait_batch(struct srv_fwd *f)
{
	for (;;) {
		int64_t due = f->oldest_ms + (int64_t)f->cfg.linger_ms;
		struct timespec ts;

		if (past_stop(f))
			return false;
		if (f->n >= f->cfg.batch || (f->n && f->stopping) ||
		    (f->n && fl_now_ms() >= due))
			return true;
		if (f->stopping)
			return false;
		if (!f->n) {
			pthread_cond_wait(&f->wake, &f->lock);
			continue;
		}
		fl_deadline(&ts, due - fl_now_ms());
		pthread_cond_timedwait(&f->wake, &f->lock, &ts);
	}
}

static void take_batch(struct srv_fwd *f)
{
	f->batch_n = 0;
	f->batch_bytes = 0;
	while (f->n && f->batch_n < f->cfg.batch) {
		struct fwd_pt *p = ring_pop(f);

		f->batch[f->batch_n++] = p;
		f->batch_bytes += pt_bytes(p);
	}
	if (f->n)
		f->oldest_ms = fl_now_ms();
}

/* Remove the first @k points of the batch (sent or refused). */
static void batch_consume(struct srv_fwd *f, size_t k)
{
	for (size_t i = 0; i < k; i++) {
		f->batch_bytes -= pt_bytes(f->batch[i]);
		free(f->batch[i]);
	}
	memmove(f->batch, f->batch + k, (f->batch_n - k) * sizeof(*f->batch));
	f->batch_n -= k;
}

/* The next retry delay: min(max, min * 2^tries), jittered into its
 * upper half so that forwarders that failed together spread out. */
static int64_t backoff_ms(struct srv_fwd *f, unsigned tries)
{
	uint64_t d = f->cfg.retry_min_ms;

	while (tries-- && d < f->cfg.retry_max_ms)
		d *= 2;
	if (d > f->cfg.retry_max_ms)
		d = f->cfg.retry_max_ms;
	f->rng ^= f->rng << 13;
	f->rng ^= f->rng >> 7;
	f->rng ^= f->rng << 17;
	return (int64_t)(d / 2 + (d ? f->rng % (d / 2 + 1) : 0));
}

/* Sleep @ms unless stopping cuts it short (lock held). */
static void pause_ms(struct srv_fwd *f, int64_t ms)
{
	int64_t until = fl_now_ms() + ms;
	struct timespec ts;

	if (f->stopping && until > f->stop_by)
		until = f->stop_by;
	while (fl_now_ms() < until) {
		fl_deadline(&ts, until - fl_now_ms());
		pthread_cond_timedwait(&f->wake, &f->lock, &ts);
		if (f->stopping && until > f->stop_by)
			until = f->stop_by;
	}
}

/* Account for one attempt at the first @k batch points (lock held);
 * returns the next attempt's size. */
static size_t after_send(struct srv_fwd *f, int rc, size_t k,
			 const struct fl_error *e, unsigned *tries)
{
	if (rc == 0) {
		f->st.sent += k;
		batch_consume(f, k);
		*tries = 0;
		return f->cfg.batch;
	}
	fl_strlcpy(f->st.last_error, e->msg, sizeof(f->st.last_error));
	if (rc == FWD_BAD_BATCH && k > 1)
		return k / 2;
	if (rc == FWD_BAD_BATCH) {
		fl_warn("%s: point refused, dropped: %s", f->be->name, e->msg);
		f->st.refused++;
		batch_consume(f, 1);
		return f->cfg.batch;
	}
	f->st.retries++;
	fl_debug("%s: send failed (retry %u): %s", f->be->name, *tries + 1,
		 e->msg);
	pause_ms(f, backoff_ms(f, (*tries)++));
	return k;
}

/* The forwarder's thread: take a batch, send it until it is gone. */
static void *run(void *arg)
{
	struct srv_fwd *f = arg;
	unsigned tries = 0;

	pthread_mutex_lock(&f->lock);
	while (wait_batch(f)) {
		size_t k = f->cfg.batch;

		take_batch(f);
		while (f->batch_n && !past_stop(f)) {
			struct fl_error e = {0};
			int rc;

			if (k > f->batch_n)
				k = f->batch_n;
			pthread_mutex_unlock(&f->lock);
			rc = f->be->send(f->ctx, f->batch, k, &e);
			pthread_mutex_lock(&f->lock);
			k = after_send(f, rc, k, &e, &tries);
		}
		if (f->batch_n)
			break; /* stopping, past the deadline */
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

const char *srv_fwd_name(const struct srv_fwd *f)
{
	return f->be->name;
}

void srv_fwd_get_stats(struct srv_fwd *f, struct srv_fwd_stats *ret)
{
	pthread_mutex_lock(&f->lock);
	*ret = f->st;
	ret->queued = f->n + f->batch_n;
	ret->queued_bytes = f->ring_bytes + f->batch_bytes;
	pthread_mutex_unlock(&f->lock);
}

json_t *srv_fwd_stats_json(struct srv_fwd *f)
{
	struct srv_fwd_stats s;

	srv_fwd_get_stats(f, &s);
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "backend",
			 f->be->name, "queued", (json_int_t)s.queued,
			 "queued_bytes", (json_int_t)s.queued_bytes, "sent",
			 (json_int_t)s.sent, "retries", (json_int_t)s.retries,
			 "dropped", (json_int_t)s.dropped, "refused",
			 (json_int_t)s.refused, "last_error", s.last_error);
}

int srv_fwd_start(const struct srv_fwd_config *cfg, struct srv_fwd **ret,
		  struct fl_error *err)
{
	struct srv_fwd *f = fl_xcalloc(1, sizeof(*f));
	int rc;

	f->be = cfg->kind == SRV_FWD_INFLUX ? &srv_fwd_influx : &srv_fwd_pg;
	f->cfg = *cfg;
	f->cfg.url = f->cfg.database = f->cfg.measurement = NULL;
	f->cfg.username = f->cfg.conninfo = f->cfg.table = NULL;
	f->cfg.password_file = NULL;
	rc = f->be->open(cfg, &f->ctx, err);
	if (rc) {
		free(f);
		return rc;
	}
	if (fl_random(&f->rng, sizeof(f->rng), NULL) || !f->rng)
		f->rng = (uint64_t)fl_now_ms() | 1;
	f->batch = fl_xcalloc(cfg->batch, sizeof(*f->batch));
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->wake, NULL);
	if (pthread_create(&f->thread, NULL, run, f)) {
		f->be->close(f->ctx);
		pthread_mutex_destroy(&f->lock);
		pthread_cond_destroy(&f->wake);
		free(f->batch);
		free(f);
		return fl_fail(err, FL_ERR, "cannot start the %s forwarder",
			       cfg->kind == SRV_FWD_INFLUX ? "influx"
							   : "postgres");
	}
	*ret = f;
	return 0;
}

void srv_fwd_stop(struct srv_fwd *f, int64_t wait_ms)
{
	uint64_t left;

	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = true;
	f->stop_by = fl_now_ms() + wait_ms;
	pthread_cond_signal(&f->wake);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	left = f->n + f->batch_n;
	batch_consume(f, f->batch_n);
	while (f->n)
		free(ring_pop(f));
	if (left)
		fl_warn("%s: stopped with %llu points not sent (dropped)",
			f->be->name, (unsigned long long)left);
	f->be->close(f->ctx);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->wake);
	free(f->ring);
	free(f->batch);
	free(f);
}
