/* SPDX-License-Identifier: MIT */
/*
 * The diagnostics relay table (diag.h): pending calls by correlation
 * id, their targets by device id, the bounds, and the completions.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "diag_relay.h"
#include "json.h"
#include "log.h"
#include "util.h"

/* A reply is an MQTT payload: the protocol's cap (mqtt.h). */
#define REPLY_MAX (64 * 1024)
/* The timer looks again at least this often (ms). */
#define TIMER_IDLE_MS 60000

struct srv_diag {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* new call or stop (timer); completion done */
	struct srv_diag_limits lim;
	struct srv_diag_call **calls; /* lim.max_calls slots, n used */
	size_t n;
	bool stopping;
	unsigned completing; /* taken out, done not returned yet */
	uint64_t replies, ignored;
	pthread_t timer;
	bool timer_started;
};

static const char *const state_names[] = {
    [SRV_DIAG_PENDING] = "pending",	[SRV_DIAG_ANSWERED] = "answered",
    [SRV_DIAG_FAILED] = "failed",	[SRV_DIAG_OFFLINE] = "offline",
    [SRV_DIAG_TIMED_OUT] = "timed-out",
};

const char *srv_diag_state_name(enum srv_diag_state s)
{
	return (unsigned)s < FL_ARRAY_SIZE(state_names) ? state_names[s]
							: "unknown";
}

struct srv_diag *srv_diag_new(const struct srv_diag_limits *l)
{
	struct srv_diag *d = fl_xcalloc(1, sizeof(*d));

	d->lim = *l;
	if (!d->lim.max_calls)
		d->lim.max_calls = 1;
	d->calls = fl_xcalloc(d->lim.max_calls, sizeof(*d->calls));
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	return d;
}

void srv_diag_free(struct srv_diag *d)
{
	if (!d)
		return;
	srv_diag_stop(d);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d->calls);
	free(d);
}

struct srv_diag_call *srv_diag_call_new(const char *caller, const char *check,
					size_t n, srv_diag_done_fn done,
					void *arg)
{
	struct srv_diag_call *c = fl_xcalloc(1, sizeof(*c));

	fl_strlcpy(c->caller, caller, sizeof(c->caller));
	fl_strlcpy(c->check, check, sizeof(c->check));
	c->n = n;
	c->t = fl_xcalloc(n ? n : 1, sizeof(*c->t));
	c->done = done;
	c->arg = arg;
	return c;
}

/* Lock held: take @c out of the table (it is in it). */
static void unlink_call(struct srv_diag *d, struct srv_diag_call *c)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->calls[i] == c) {
			d->calls[i] = d->calls[--d->n];
			d->calls[d->n] = NULL;
			break;
		}
	c->in_table = false;
}

void srv_diag_call_free(struct srv_diag_call *c)
{
	struct srv_diag *d;

	if (!c)
		return;
	d = __atomic_load_n(&c->d, __ATOMIC_ACQUIRE);
	if (d) { /* not completed: the table is there */
		pthread_mutex_lock(&d->lock);
		if (c->in_table)
			unlink_call(d, c);
		pthread_mutex_unlock(&d->lock);
	}
	for (size_t i = 0; i < c->n; i++) {
		json_decref(c->t[i].reply);
		free(c->t[i].error);
	}
	free(c->t);
	free(c);
}

/*
 * Lock held: take @c out for completion: the targets still pending time
 * out.  The caller runs finish_done for it once the lock is released.
 */
static void take(struct srv_diag *d, struct srv_diag_call *c)
{
	if (c->in_table)
		unlink_call(d, c);
	for (size_t i = 0; i < c->n; i++)
		if (c->t[i].state == SRV_DIAG_PENDING)
			c->t[i].state = SRV_DIAG_TIMED_OUT;
	c->pending = 0;
	/* done with the table: freeing the call needs none */
	__atomic_store_n(&c->d, NULL, __ATOMIC_RELEASE);
	d->completing++;
}

/* Lock not held: run the done callbacks of taken calls. */
static void finish_done(struct srv_diag *d, struct srv_diag_call **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i]->done(v[i], v[i]->arg);
	pthread_mutex_lock(&d->lock);
	d->completing -= (unsigned)n;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static int cmp_target(const void *a, const void *b)
{
	return strcmp(((const struct srv_diag_target *)a)->device,
		      ((const struct srv_diag_target *)b)->device);
}

/* Sort @c's targets and count the pending ones; false for a device
 * named twice or no device at all. */
static bool prepare(struct srv_diag_call *c)
{
	if (!c->n)
		return false;
	qsort(c->t, c->n, sizeof(*c->t), cmp_target);
	c->pending = 0;
	for (size_t i = 0; i < c->n; i++) {
		if (i && strcmp(c->t[i - 1].device, c->t[i].device) == 0)
			return false;
		c->t[i].ask = c->t[i].state == SRV_DIAG_PENDING;
		c->pending += c->t[i].ask;
	}
	return true;
}

/* Lock held: the waiting call with correlation id @corr, or NULL. */
static struct srv_diag_call *find_call(struct srv_diag *d, const void *corr,
				       size_t len)
{
	if (len != SRV_DIAG_CORR_LEN)
		return NULL;
	for (size_t i = 0; i < d->n; i++)
		if (memcmp(d->calls[i]->corr, corr, SRV_DIAG_CORR_LEN) == 0)
			return d->calls[i];
	return NULL;
}

/* Lock held: may @c wait in the table now? */
static enum srv_diag_admit admit(struct srv_diag *d,
				 const struct srv_diag_call *c)
{
	size_t mine = 0;

	if (d->stopping)
		return SRV_DIAG_STOPPING;
	for (size_t i = 0; i < d->n; i++)
		mine += fl_streq(d->calls[i]->caller, c->caller);
	if (mine >= d->lim.max_per_caller)
		return SRV_DIAG_CALLER_BUSY;
	if (d->n >= d->lim.max_calls)
		return SRV_DIAG_FULL;
	return SRV_DIAG_ADMITTED;
}

enum srv_diag_admit srv_diag_begin(struct srv_diag *d, struct srv_diag_call *c,
				   int64_t now, int64_t timeout_ms)
{
	enum srv_diag_admit a;

	if (!prepare(c))
		return SRV_DIAG_BAD_CALL;
	c->d = d;
	c->start_ms = now;
	c->deadline_ms = now + timeout_ms;
	pthread_mutex_lock(&d->lock);
	a = c->pending	  ? admit(d, c)
	    : d->stopping ? SRV_DIAG_STOPPING
			  : SRV_DIAG_ADMITTED;
	if (a == SRV_DIAG_ADMITTED && !c->pending) {
		take(d, c); /* nobody to ask: complete at once */
		pthread_mutex_unlock(&d->lock);
		finish_done(d, &c, 1);
		return a;
	}
	if (a == SRV_DIAG_ADMITTED) {
		do
			fl_random(c->corr, sizeof(c->corr), NULL);
		while (find_call(d, c->corr, sizeof(c->corr)));
		d->calls[d->n++] = c;
		c->in_table = true;
		pthread_cond_broadcast(&d->cond); /* a nearer deadline */
	}
	pthread_mutex_unlock(&d->lock);
	return a;
}

/* Lock held: @t of @c is settled; complete @c when it was the last. */
static bool settle(struct srv_diag *d, struct srv_diag_call *c)
{
	if (--c->pending)
		return false;
	take(d, c);
	return true;
}

void srv_diag_fail(struct srv_diag *d, struct srv_diag_call *c, size_t i,
		   const char *why, int64_t now)
{
	struct srv_diag_target *t = &c->t[i];
	bool last = false;

	pthread_mutex_lock(&d->lock);
	if (t->state == SRV_DIAG_PENDING && c->in_table) {
		t->state = SRV_DIAG_FAILED;
		t->error = fl_xstrdup(why);
		t->reply_ms = now;
		last = settle(d, c);
	}
	pthread_mutex_unlock(&d->lock);
	if (last)
		finish_done(d, &c, 1);
}

/*
 * What a reply says, parsed before any lock: the object in *@ret (NULL
 * with the reason in *@ret_why when it is garbage), "ok" in *@ret_ok and
 * the check it names (NULL: none; borrowed from *@ret) in *@ret_check.
 */
static void read_reply(const char *payload, size_t len, json_t **ret,
		       bool *ret_ok, const char **ret_check, char **ret_why)
{
	struct fl_error err = {0};
	json_t *j = NULL;

	*ret_ok = false;
	*ret_check = NULL;
	*ret_why = NULL;
	if (fl_json_parse(payload, len, REPLY_MAX, &j, &err) ||
	    fl_json_require_object(j, "reply", &err) ||
	    fl_json_bool(j, "ok", ret_ok, &err) ||
	    fl_json_str_opt(j, "check", SRV_DIAG_CHECK_MAX, ret_check, &err)) {
		*ret_why = fl_xasprintf("malformed reply: %s", err.msg);
		*ret_ok = false;
		*ret_check = NULL;
		json_decref(j);
		j = NULL;
	}
	*ret = j;
}

/* Lock held: the target of @c for @device, or NULL. */
static struct srv_diag_target *find_target(struct srv_diag_call *c,
					   const char *device)
{
	struct srv_diag_target key;

	if (fl_strlcpy(key.device, device, sizeof(key.device)) >=
	    sizeof(key.device))
		return NULL;
	return bsearch(&key, c->t, c->n, sizeof(*c->t), cmp_target);
}

/* Lock held: record a matched reply in @t of @c (takes *@reply and
 * *@why when it keeps them). */
static void keep_reply(struct srv_diag *d, struct srv_diag_call *c,
		       struct srv_diag_target *t, json_t **reply, bool ok,
		       const char *check, char **why, size_t len, int64_t now)
{
	if (!*why && check && !fl_streq(check, c->check)) {
		*why = fl_xasprintf("reply names check '%s', not '%s'", check,
				    c->check);
		ok = false;
	}
	t->state = ok ? SRV_DIAG_ANSWERED : SRV_DIAG_FAILED;
	t->reply_ms = now;
	if (*why) {
		t->error = *why;
		*why = NULL;
	} else if (c->bytes + len > d->lim.max_bytes) {
		t->error = fl_xasprintf("result not kept: this call's replies "
					"are over %zu bytes",
					d->lim.max_bytes);
	} else {
		t->reply = *reply;
		*reply = NULL;
		c->bytes += len;
	}
}

/* Lock held: how a reply from @device with @corr matches. */
static enum srv_diag_match match(struct srv_diag *d, const char *device,
				 const void *corr, size_t corr_len,
				 struct srv_diag_call **ret_c,
				 struct srv_diag_target **ret_t)
{
	struct srv_diag_call *c = find_call(d, corr, corr_len);
	struct srv_diag_target *t = c ? find_target(c, device) : NULL;

	if (!c)
		return SRV_DIAG_UNKNOWN;
	if (!t)
		return SRV_DIAG_STRANGER;
	if (t->state != SRV_DIAG_PENDING)
		return SRV_DIAG_REPEATED;
	*ret_c = c;
	*ret_t = t;
	return SRV_DIAG_MATCHED;
}

enum srv_diag_match srv_diag_reply(struct srv_diag *d, const char *device,
				   const void *corr, size_t corr_len,
				   const char *payload, size_t len, int64_t now)
{
	struct srv_diag_call *c = NULL;
	struct srv_diag_target *t = NULL;
	enum srv_diag_match m;
	const char *check;
	json_t *reply;
	char *why;
	bool ok, last = false;

	read_reply(payload, len, &reply, &ok, &check, &why);
	pthread_mutex_lock(&d->lock);
	m = match(d, device, corr, corr_len, &c, &t);
	if (m == SRV_DIAG_MATCHED) {
		keep_reply(d, c, t, &reply, ok, check, &why, len, now);
		d->replies++;
		last = settle(d, c);
	} else {
		d->ignored++;
	}
	pthread_mutex_unlock(&d->lock);
	json_decref(reply);
	free(why);
	if (last)
		finish_done(d, &c, 1);
	return m;
}

/* Lock held: take out every call due at @now (or all when stopping). */
static size_t take_due(struct srv_diag *d, int64_t now, bool all,
		       struct srv_diag_call **out)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n;) {
		struct srv_diag_call *c = d->calls[i];

		if (!all && c->deadline_ms > now) {
			i++;
			continue;
		}
		c->stopped = all;
		take(d, c); /* moves the last call into slot i */
		out[n++] = c;
	}
	return n;
}

static void complete_due(struct srv_diag *d, int64_t now, bool all)
{
	struct srv_diag_call **out;
	size_t n;

	out = fl_xcalloc(d->lim.max_calls, sizeof(*out));
	pthread_mutex_lock(&d->lock);
	n = take_due(d, now, all, out);
	pthread_mutex_unlock(&d->lock);
	if (n)
		finish_done(d, out, n);
	free(out);
}

void srv_diag_expire(struct srv_diag *d, int64_t now)
{
	complete_due(d, now, false);
}

/* Lock held. */
static int64_t next_deadline(const struct srv_diag *d)
{
	int64_t next = INT64_MAX;

	for (size_t i = 0; i < d->n; i++)
		if (d->calls[i]->deadline_ms < next)
			next = d->calls[i]->deadline_ms;
	return next;
}

void srv_diag_stop(struct srv_diag *d)
{
	bool join;

	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_broadcast(&d->cond);
	join = d->timer_started;
	d->timer_started = false;
	pthread_mutex_unlock(&d->lock);
	if (join)
		pthread_join(d->timer, NULL);
	complete_due(d, 0, true);
	pthread_mutex_lock(&d->lock);
	while (d->completing)
		pthread_cond_wait(&d->cond, &d->lock);
	pthread_mutex_unlock(&d->lock);
}

/* Sleep until the nearest deadline (or a new call, or stop), expire. */
static void *timer_main(void *arg)
{
	struct srv_diag *d = arg;
	struct timespec until;

	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		int64_t now = fl_now_ms(), next = next_deadline(d);

		if (next <= now) {
			pthread_mutex_unlock(&d->lock);
			srv_diag_expire(d, now);
			pthread_mutex_lock(&d->lock);
			continue;
		}
		fl_deadline(&until, next - now < TIMER_IDLE_MS ? next - now
							       : TIMER_IDLE_MS);
		pthread_cond_timedwait(&d->cond, &d->lock, &until);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int srv_diag_start_timer(struct srv_diag *d, struct fl_error *err)
{
	if (pthread_create(&d->timer, NULL, timer_main, d) != 0)
		return fl_fail(err, FL_ERR, "cannot start the diag timer");
	d->timer_started = true;
	return 0;
}

void srv_diag_stats(struct srv_diag *d, struct srv_diag_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	ret->calls = d->n;
	ret->replies = d->replies;
	ret->ignored = d->ignored;
	pthread_mutex_unlock(&d->lock);
}
