/* SPDX-License-Identifier: MIT */
/*
 * Modbus sources (agent_modbus.h, docs/modbus.md): a poller thread per source
 * reads the map's requests every interval into a bounded ring of polls;
 * the agent's thread (the service hook) takes them under the lock,
 * aggregates where the map says so, and hands the points to telemetry.
 * The pollers never touch the agent, the agent never waits on a device.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <modbus.h>

#include "agent_telemetry.h"
#include "fsutil.h"
#include "log.h"
#include "agent_modbus.h"
#include "modbus_map.h"
#include "modbus_targets.h"
#include "util.h"

/* A window being aggregated (agent's thread only). */
struct agg {
	int64_t start_ms; /* wall clock, aligned to the window */
	uint64_t n;
	double sum, min, max, last;
};

/* A pending write (for the poller). */
struct mb_write {
	enum agent_mb_fn fn;
	uint16_t addr, count;
	uint16_t raw[2];
	char name[AGENT_MB_NAME_MAX + 1];
};

struct src {
	struct agent_modbus *mb;
	const struct agent_mb_source *s; /* in mb->map */
	pthread_t th;
	bool started;
	/* under mb->lock: */
	double *ring_v;	  /* AGENT_MB_PENDING_MAX polls of n_regs values */
	uint8_t *ring_ok; /* which were read */
	int64_t ring_ts[AGENT_MB_PENDING_MAX];
	size_t head, n_ring;
	bool up;
	int up_pending; /* -1: nothing; 0/1: SOURCE.up to send */
	int64_t up_ts, last_poll_ms, last_ok_ms;
	uint64_t polls, errors, dropped;
	char last_error[AGENT_MB_ERROR_MAX];
	double *cur; /* the newest value of each register */
	uint8_t *have;
	struct mb_write writes[AGENT_MB_WRITES_MAX];
	size_t n_writes;
	/* the agent's thread only: */
	struct agg *agg;
};

struct agent_modbus {
	struct agent_host *h;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* stop, or a write queued */
	bool stop;
	struct agent_mb_map *file_map;	  /* agent.conf's; may be NULL */
	struct agent_mb_map *shadow_map;  /* the shadow's; NULL: none */
	struct agent_mb_targets *targets; /* what the shadow's may poll */
	char *shadow_text;
	const struct agent_mb_map *map; /* in force: one of the two */
	struct src *src;
	size_t n_src;
	bool running, held;
	uint64_t samples, points; /* read, and handed to telemetry */
};

/* ------------------------------------------------------------------ */
/* The poller thread                                                  */
/* ------------------------------------------------------------------ */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep @ms, or less when the agent stops or (@writes) a write is
 * queued; true when writes wait. */
static bool nap(struct src *x, int64_t ms, bool writes_wake)
{
	struct agent_modbus *mb = x->mb;
	int64_t end = mono_ms() + ms;
	struct timespec ts = {end / 1000, (end % 1000) * 1000000};
	bool writes;

	pthread_mutex_lock(&mb->lock);
	while (!mb->stop && !(writes_wake && x->n_writes) &&
	       pthread_cond_timedwait(&mb->cond, &mb->lock, &ts) != ETIMEDOUT)
		;
	writes = x->n_writes > 0;
	pthread_mutex_unlock(&mb->lock);
	return writes;
}

static bool stopping(struct agent_modbus *mb)
{
	bool stop;

	pthread_mutex_lock(&mb->lock);
	stop = mb->stop;
	pthread_mutex_unlock(&mb->lock);
	return stop;
}

/* The source answers (@up) or not (@why); SOURCE.up is sent on a
 * change.  Under the lock. */
static void set_up(struct src *x, bool up, const char *why)
{
	if (why) {
		x->errors++;
		snprintf(x->last_error, sizeof(x->last_error), "%s", why);
	}
	if (up == x->up && x->up_ts)
		return;
	if (up)
		fl_info("modbus: source %s answers", x->s->name);
	else
		fl_warn("modbus: source %s down: %s", x->s->name, why);
	x->up = up;
	x->up_pending = up;
	x->up_ts = agent_tlm_now_ms();
}

static void note(struct src *x, bool up, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(struct src *x, bool up, const char *fmt, ...)
{
	char why[AGENT_MB_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&x->mb->lock);
	set_up(x, up, why);
	pthread_mutex_unlock(&x->mb->lock);
	agent_host_wake(x->mb->h);
}

/* A connected context for @x's source, or NULL (noted). */
static modbus_t *open_ctx(struct src *x)
{
	const struct agent_mb_source *s = x->s;
	char port[8];
	modbus_t *ctx;

	snprintf(port, sizeof(port), "%u", s->port);
	ctx = *s->host ? modbus_new_tcp_pi(s->host, port)
		       : modbus_new_rtu(s->device, (int)s->baud, s->parity,
					s->data_bits, s->stop_bits);
	if (!ctx) {
		note(x, false, "cannot make a context: %s",
		     modbus_strerror(errno));
		return NULL;
	}
	modbus_set_slave(ctx, s->unit_id);
	modbus_set_response_timeout(ctx, (uint32_t)(s->timeout_ms / 1000),
				    (uint32_t)(s->timeout_ms % 1000) * 1000);
	if (modbus_connect(ctx) != 0) {
		note(x, false, "connect: %s", modbus_strerror(errno));
		modbus_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Read group @g into @raw (registers, or bits widened to 0/1). */
static int read_group(modbus_t *ctx, const struct agent_mb_group *g,
		      uint16_t *raw)
{
	uint8_t bits[AGENT_MB_READ_BITS_MAX];
	int rc;

	switch (g->fn) {
	case AGENT_MB_HOLDING:
		return modbus_read_registers(ctx, g->addr, g->count, raw);
	case AGENT_MB_INPUT:
		return modbus_read_input_registers(ctx, g->addr, g->count, raw);
	case AGENT_MB_COIL:
		rc = modbus_read_bits(ctx, g->addr, g->count, bits);
		break;
	default:
		rc = modbus_read_input_bits(ctx, g->addr, g->count, bits);
	}
	for (int i = 0; i < rc; i++)
		raw[i] = bits[i];
	return rc;
}

/*
 * One poll: every group read and decoded into @v/@ok.  An exception or
 * a bad answer fails that group only (the device answers); anything
 * else (timeout, connection lost) fails the poll: -1, errno kept.
 */
static int poll_once(struct src *x, modbus_t *ctx, double *v, uint8_t *ok,
		     char *why, size_t why_len)
{
	const struct agent_mb_source *s = x->s;
	uint16_t raw[AGENT_MB_READ_BITS_MAX];

	memset(ok, 0, s->n_regs);
	for (size_t g = 0; g < s->n_groups; g++) {
		const struct agent_mb_group *gr = &s->groups[g];

		if (read_group(ctx, gr, raw) != gr->count) {
			int e = errno;

			snprintf(why, why_len, "read %s %u+%u: %s",
				 agent_mb_fn_name(gr->fn), gr->addr, gr->count,
				 modbus_strerror(e));
			if (e < MODBUS_ENOBASE)
				return -1;
			continue;
		}
		for (size_t i = gr->first; i < gr->first + gr->n; i++) {
			size_t k = s->order[i];
			const struct agent_mb_reg *r = &s->regs[k];

			v[k] = agent_mb_decode(r, raw + (r->addr - gr->addr));
			ok[k] = 1;
		}
	}
	return 0;
}

/* Keep a poll for the agent (the oldest goes when the ring is full).
 * Under the lock. */
static void keep(struct src *x, const double *v, const uint8_t *ok, int64_t ts)
{
	size_t n = x->s->n_regs, slot;

	if (x->n_ring == AGENT_MB_PENDING_MAX) {
		x->head = (x->head + 1) % AGENT_MB_PENDING_MAX;
		x->n_ring--;
		x->dropped++;
	}
	slot = (x->head + x->n_ring++) % AGENT_MB_PENDING_MAX;
	memcpy(x->ring_v + slot * n, v, n * sizeof(*v));
	memcpy(x->ring_ok + slot * n, ok, n);
	x->ring_ts[slot] = ts;
	for (size_t i = 0; i < n; i++)
		if (ok[i]) {
			x->cur[i] = v[i];
			x->have[i] = 1;
		}
}

/* The writes queued for @x, done in order; false on a lost link. */
static bool do_writes(struct src *x, modbus_t *ctx)
{
	struct mb_write w[AGENT_MB_WRITES_MAX];
	size_t n;
	bool link = true;

	pthread_mutex_lock(&x->mb->lock);
	n = x->n_writes;
	memcpy(w, x->writes, n * sizeof(*w));
	x->n_writes = 0;
	pthread_mutex_unlock(&x->mb->lock);
	for (size_t i = 0; i < n && link; i++) {
		int rc = w[i].fn == AGENT_MB_COIL
			     ? modbus_write_bit(ctx, w[i].addr, w[i].raw[0])
			     : modbus_write_registers(ctx, w[i].addr,
						      w[i].count, w[i].raw);

		if (rc < 0) {
			link = errno >= MODBUS_ENOBASE;
			note(x, link, "write %s: %s", w[i].name,
			     modbus_strerror(errno));
		} else {
			fl_info("modbus: wrote %s.%s", x->s->name, w[i].name);
		}
	}
	return link;
}

/* Poll, keep and wake the agent; false when the link is lost. */
static bool poll_keep(struct src *x, modbus_t *ctx, double *v, uint8_t *ok)
{
	char why[AGENT_MB_ERROR_MAX] = "";
	int rc = poll_once(x, ctx, v, ok, why, sizeof(why));
	int64_t ts = agent_tlm_now_ms();

	pthread_mutex_lock(&x->mb->lock);
	x->polls++;
	x->last_poll_ms = ts;
	if (rc == 0) {
		x->last_ok_ms = ts;
		keep(x, v, ok, ts);
	}
	set_up(x, rc == 0, *why ? why : NULL);
	pthread_mutex_unlock(&x->mb->lock);
	agent_host_wake(x->mb->h);
	return rc == 0;
}

/* The next wait after a failure: 1 s, doubling, capped. */
static int64_t backoff_next(int64_t b)
{
	b = b ? b * 2 : 1000;
	return b > AGENT_MB_BACKOFF_MAX ? AGENT_MB_BACKOFF_MAX : b;
}

static void ctx_close(modbus_t **ctx)
{
	if (*ctx) {
		modbus_close(*ctx);
		modbus_free(*ctx);
	}
	*ctx = NULL;
}

static void *poller(void *arg)
{
	struct src *x = arg;
	const struct agent_mb_source *s = x->s;
	double *v = fl_xcalloc(s->n_regs + 1, sizeof(*v));
	uint8_t *ok = fl_xcalloc(s->n_regs + 1, 1);
	int64_t backoff = 0, next;
	modbus_t *ctx = NULL;

	while (!stopping(x->mb)) {
		if (!ctx && !(ctx = open_ctx(x))) {
			nap(x, backoff = backoff_next(backoff), false);
			continue;
		}
		next = mono_ms() + s->interval_ms;
		if (!do_writes(x, ctx) || !poll_keep(x, ctx, v, ok)) {
			ctx_close(&ctx); /* a new connection after the wait */
			nap(x, backoff = backoff_next(backoff), false);
			continue;
		}
		backoff = 0;
		while (!stopping(x->mb) && mono_ms() < next)
			if (nap(x, next - mono_ms(), true) &&
			    !do_writes(x, ctx))
				break;
	}
	ctx_close(&ctx);
	free(v);
	free(ok);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Starting and stopping                                              */
/* ------------------------------------------------------------------ */

static void src_release(struct src *x)
{
	free(x->ring_v);
	free(x->ring_ok);
	free(x->cur);
	free(x->have);
	free(x->agg);
}

/* Stop the pollers and forget their state (aggregates in progress are
 * dropped: a new map may not have their registers). */
static void stop_all(struct agent_modbus *mb)
{
	struct src *src = mb->src;
	size_t n = mb->n_src;

	pthread_mutex_lock(&mb->lock);
	mb->stop = true;
	pthread_cond_broadcast(&mb->cond);
	pthread_mutex_unlock(&mb->lock);
	for (size_t i = 0; i < n; i++)
		if (src[i].started)
			pthread_join(src[i].th, NULL);
	pthread_mutex_lock(&mb->lock); /* diag may be reading them */
	mb->src = NULL;
	mb->n_src = 0;
	mb->stop = false;
	pthread_mutex_unlock(&mb->lock);
	for (size_t i = 0; i < n; i++)
		src_release(&src[i]);
	free(src);
	mb->running = false;
	if (mb->held)
		agent_modbus_lib_drop();
	mb->held = false;
}

/* Start a poller for each source of the map in force. */
static void start_all(struct agent_modbus *mb)
{
	struct fl_error err = {0};

	mb->running = true;
	if (!mb->map || !mb->map->n_src)
		return;
	/* the pollers wake the agent; made only here, where there are
	 * pollers: fleet-sim's thousands of devices need no descriptor */
	if (agent_host_wake_init(mb->h, &err) || agent_modbus_lib_hold(&err)) {
		fl_error("modbus: %s", err.msg);
		return;
	}
	mb->held = true;
	/* filled under the lock: the diag check reads them from its own
	 * thread (a poller that needs the lock waits for the loop's end) */
	pthread_mutex_lock(&mb->lock);
	mb->n_src = mb->map->n_src;
	mb->src = fl_xcalloc(mb->n_src, sizeof(*mb->src));
	for (size_t i = 0; i < mb->n_src; i++) {
		struct src *x = &mb->src[i];
		size_t n = mb->map->src[i].n_regs + 1;

		x->mb = mb;
		x->s = &mb->map->src[i];
		x->up_pending = -1;
		x->ring_v =
		    fl_xcalloc(AGENT_MB_PENDING_MAX * n, sizeof(double));
		x->ring_ok = fl_xcalloc(AGENT_MB_PENDING_MAX, n);
		x->cur = fl_xcalloc(n, sizeof(*x->cur));
		x->have = fl_xcalloc(n, 1);
		x->agg = fl_xcalloc(n, sizeof(*x->agg));
		x->started = pthread_create(&x->th, NULL, poller, x) == 0;
		if (!x->started)
			fl_error("modbus: cannot start the poller of %s",
				 x->s->name);
	}
	pthread_mutex_unlock(&mb->lock);
	fl_info("modbus: polling %zu sources, %zu registers", mb->n_src,
		mb->map->n_regs);
}

int agent_modbus_use(struct agent_modbus *mb, const char *text,
		     struct fl_error *err)
{
	struct agent_mb_map *m = NULL;
	int rc;

	if (!mb)
		return fl_fail(err, FL_EINVAL, "no Modbus feature");
	if (!text ? !mb->shadow_text
		  : mb->shadow_text && !strcmp(text, mb->shadow_text))
		return 0;
	if (text &&
	    ((rc = agent_mb_map_parse("modbus", text, strlen(text), &m, err)) ||
	     (rc = agent_mb_targets_check(mb->targets, m, "modbus", err)))) {
		agent_mb_map_free(m);
		return rc;
	}
	stop_all(mb); /* no source left for diag to read */
	agent_mb_map_free(mb->shadow_map);
	pthread_mutex_lock(&mb->lock);
	free(mb->shadow_text);
	mb->shadow_text = text ? fl_xstrdup(text) : NULL;
	pthread_mutex_unlock(&mb->lock);
	mb->shadow_map = m;
	mb->map = m ? m : mb->file_map;
	fl_info("modbus: using the map of the %s", m ? "shadow" : "agent.conf");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Points                                                             */
/* ------------------------------------------------------------------ */

struct points {
	struct agent_tlm_point *p;
	size_t n, cap;
};

static void add(struct points *pts, const char *src, const char *name, double v,
		int64_t ts)
{
	struct agent_tlm_point *p;

	if (pts->n == pts->cap) {
		pts->cap = pts->cap ? pts->cap * 2 : 64;
		pts->p = fl_xrealloc(pts->p, pts->cap * sizeof(*pts->p));
	}
	p = &pts->p[pts->n++];
	snprintf(p->metric, sizeof(p->metric), "%s.%s", src, name);
	p->value = v;
	p->ts_ms = ts;
}

/* The point of a closed window. */
static void agg_flush(struct points *pts, const struct agent_mb_source *s,
		      const struct agent_mb_reg *r, struct agg *a)
{
	double v[] = {0,       a->sum / (double)a->n, a->min, a->max,
		      a->last, (double)a->n};

	add(pts, s->name, r->name, v[r->agg], a->start_ms);
	a->n = 0;
}

/* A value read: a point, or into its window. */
static void sample(struct points *pts, const struct agent_mb_source *s,
		   const struct agent_mb_reg *r, struct agg *a, double v,
		   int64_t ts)
{
	int64_t w = r->window_s * 1000;

	if (r->agg == AGENT_MB_RAW) {
		add(pts, s->name, r->name, v, ts);
		return;
	}
	if (a->n && ts - ts % w != a->start_ms)
		agg_flush(pts, s, r, a);
	if (!a->n) {
		a->start_ms = ts - ts % w;
		a->sum = 0;
		a->min = a->max = v;
	}
	a->n++;
	a->sum += v;
	a->min = fmin(a->min, v);
	a->max = fmax(a->max, v);
	a->last = v;
}

/* The polls @x kept, as points in @pts, a change of SOURCE.up in @ev.
 * Under the lock. */
static uint64_t take(struct src *x, struct points *pts, struct points *ev)
{
	const struct agent_mb_source *s = x->s;
	uint64_t read = 0;

	if (x->up_pending >= 0)
		add(ev, s->name, "up", x->up_pending, x->up_ts);
	x->up_pending = -1;
	for (; x->n_ring; x->n_ring--) {
		size_t slot = x->head;
		const double *v = x->ring_v + slot * s->n_regs;
		const uint8_t *ok = x->ring_ok + slot * s->n_regs;

		for (size_t i = 0; i < s->n_regs; i++)
			if (ok[i]) {
				sample(pts, s, &s->regs[i], &x->agg[i], v[i],
				       x->ring_ts[slot]);
				read++;
			}
		x->head = (x->head + 1) % AGENT_MB_PENDING_MAX;
	}
	return read;
}

/* Windows that ended by @now, also without a newer sample (a source
 * that went down). */
static void close_windows(struct src *x, struct points *pts, int64_t now)
{
	for (size_t i = 0; i < x->s->n_regs; i++) {
		const struct agent_mb_reg *r = &x->s->regs[i];

		if (x->agg[i].n &&
		    now >= x->agg[i].start_ms + r->window_s * 1000)
			agg_flush(pts, x->s, r, &x->agg[i]);
	}
}

static void service(struct agent_host *h, void *state)
{
	struct agent_modbus *mb = state;
	struct points pts = {0}, ev = {0};
	int64_t now = agent_tlm_now_ms();

	if (!mb->running)
		start_all(mb);
	pthread_mutex_lock(&mb->lock);
	for (size_t i = 0; i < mb->n_src; i++) {
		mb->samples += take(&mb->src[i], &pts, &ev);
		close_windows(&mb->src[i], &pts, now);
	}
	mb->points += pts.n + ev.n;
	pthread_mutex_unlock(&mb->lock);
	if (ev.n) /* modbus.down / modbus.up: never dropped */
		agent_tlm_submit(h, ev.p, ev.n, true);
	if (pts.n)
		agent_tlm_submit(h, pts.p, pts.n, false);
	free(ev.p);
	free(pts.p);
}

/* ------------------------------------------------------------------ */
/* Writes, diagnostics, status                                        */
/* ------------------------------------------------------------------ */

int agent_modbus_write(struct agent_modbus *mb, const char *source,
		       const char *name, double value, struct fl_error *err)
{
	struct src *x = NULL;
	const struct agent_mb_reg *r;
	struct mb_write w = {0};
	int rc = 0;

	for (size_t i = 0; mb && i < mb->n_src; i++)
		if (!strcmp(mb->src[i].s->name, source))
			x = &mb->src[i];
	if (!x || !(r = agent_mb_reg(x->s, name)))
		return fl_fail(err, FL_ENOTFOUND, "no Modbus register %s.%s",
			       source, name);
	if ((rc = agent_mb_encode(r, value, w.raw, err)))
		return rc;
	w.fn = r->fn;
	w.addr = r->addr;
	w.count = r->count;
	fl_strlcpy(w.name, r->name, sizeof(w.name));
	pthread_mutex_lock(&mb->lock);
	if (x->n_writes == AGENT_MB_WRITES_MAX)
		rc = fl_fail(err, FL_ELIMIT, "%s: %d writes already wait",
			     source, AGENT_MB_WRITES_MAX);
	else
		x->writes[x->n_writes++] = w;
	pthread_cond_broadcast(&mb->cond);
	pthread_mutex_unlock(&mb->lock);
	return rc;
}

/* Wall-clock @ms as RFC 3339 text, or null for 0 (never). */
static json_t *time_json(int64_t ms)
{
	char buf[21];

	if (!ms)
		return json_null();
	fl_time_rfc3339((time_t)(ms / 1000), buf);
	return json_string(buf);
}

/* A value as telemetry sends it: whole ones as integers. */
static json_t *num_json(double v)
{
	if (v == trunc(v) && fabs(v) < 9007199254740992.0)
		return json_integer((json_int_t)v);
	return json_real(v);
}

/* One source for diag.  Under the lock. */
static json_t *src_json(const struct src *x)
{
	const struct agent_mb_source *s = x->s;
	json_t *values = json_object();
	char target[300];

	if (*s->host)
		snprintf(target, sizeof(target), "%s:%u", s->host, s->port);
	else
		snprintf(target, sizeof(target), "%s", s->device);
	for (size_t i = 0; i < s->n_regs; i++)
		if (x->have[i])
			json_object_set_new(values, s->regs[i].name,
					    num_json(x->cur[i]));
	return json_pack("{s:s, s:s, s:s, s:i, s:b, s:o, s:o, s:I, s:I, "
			 "s:s, s:o}",
			 "name", s->name, "kind", *s->host ? "tcp" : "rtu",
			 "target", target, "unit_id", s->unit_id, "up", x->up,
			 "last_poll", time_json(x->last_poll_ms), "last_ok",
			 time_json(x->last_ok_ms), "polls",
			 (json_int_t)x->polls, "errors", (json_int_t)x->errors,
			 "last_error", x->last_error, "values", values);
}

json_t *agent_modbus_diag(struct agent_modbus *mb)
{
	json_t *list = json_array();

	pthread_mutex_lock(&mb->lock);
	for (size_t i = 0; i < mb->n_src; i++)
		json_array_append_new(list, src_json(&mb->src[i]));
	pthread_mutex_unlock(&mb->lock);
	return json_pack("{s:s, s:I, s:I, s:o}", "map",
			 mb->shadow_text ? "shadow" : "agent.conf",
			 "samples_read", (json_int_t)mb->samples, "points_sent",
			 (json_int_t)mb->points, "sources", list);
}

static void report(void *state, json_t *into)
{
	struct agent_modbus *mb = state;

	if (mb->map && mb->map->n_src)
		json_object_set_new(into, "modbus",
				    json_pack("{s:I, s:I}", "samples_read",
					      (json_int_t)mb->samples,
					      "points_sent",
					      (json_int_t)mb->points));
}

static int init(struct agent_host *h, void **ret_state, struct fl_error *err)
{
	const char *path = agent_host_config(h)->modbus_map;
	struct agent_modbus *mb = fl_xcalloc(1, sizeof(*mb));
	pthread_condattr_t ca;
	struct fl_error e = {0};

	mb->h = h;
	pthread_mutex_init(&mb->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&mb->cond, &ca);
	pthread_condattr_destroy(&ca);
	*ret_state = mb;
	if (path && agent_mb_map_load(path, &mb->file_map, &e))
		fl_error("modbus: no sources: %s", e.msg);
	if (agent_mb_targets_parse(agent_host_config(h)->modbus_shadow_targets,
				   &mb->targets, &e))
		fl_error("modbus: [modbus] shadow_targets: %s; maps from the"
			 " shadow may poll nothing",
			 e.msg);
	mb->map = mb->file_map;
	return 0;
}

static void mb_free(void *state)
{
	struct agent_modbus *mb = state;

	if (!mb)
		return;
	stop_all(mb);
	agent_mb_map_free(mb->file_map);
	agent_mb_map_free(mb->shadow_map);
	agent_mb_targets_free(mb->targets);
	free(mb->shadow_text);
	pthread_mutex_destroy(&mb->lock);
	pthread_cond_destroy(&mb->cond);
	free(mb);
}

const struct agent_feature agent_feature_modbus = {
    .name = "modbus",
    .init = init,
    .service = service,
    .report = report,
    .free = mb_free,
};
