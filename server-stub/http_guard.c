/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http_guard.h"
#include "log.h"
#include "util.h"

#define REAP_TICK_MS 200
#define AUDIT_SLOTS 64

struct srv_conn {
	int fd;
	int64_t start_ms;    /* the current request began */
	int64_t deadline_ms; /* 0 = none */
	bool expired;        /* shut down by the reaper */
	struct srv_conn *prev, *next;
};

/* Refused anonymous requests from one address in the current window. */
struct audit_slot {
	char remote[64];
	int64_t start_ms;
	unsigned rows, dropped;
};

struct srv_http {
	struct srv *srv;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t reaper;
	bool stop;
	int64_t header_ms;
	struct srv_conn *conns;
	struct audit_slot slots[AUDIT_SLOTS];
	int64_t global_start_ms;
	unsigned global_rows;
	uint64_t global_dropped; /* counted, with no per-address row */
};

struct srv_conn *srv_guard_conn_new(struct srv_http *h, int fd)
{
	struct srv_conn *c = fl_xcalloc(1, sizeof(*c));

	c->fd = fd;
	c->start_ms = fl_now_ms();
	c->deadline_ms = c->start_ms + h->header_ms;
	pthread_mutex_lock(&h->lock);
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	pthread_mutex_unlock(&h->lock);
	return c;
}

void srv_guard_conn_free(struct srv_http *h, struct srv_conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&h->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&h->lock);
	free(c);
}

bool srv_guard_headers_done(struct srv_http *h, struct srv_conn *c,
			    int64_t secs)
{
	bool ok;

	pthread_mutex_lock(&h->lock);
	c->deadline_ms = c->start_ms + secs * 1000;
	ok = fl_now_ms() < c->deadline_ms;
	pthread_mutex_unlock(&h->lock);
	return ok;
}

bool srv_guard_in_time(struct srv_http *h, struct srv_conn *c)
{
	bool ok;

	pthread_mutex_lock(&h->lock);
	ok = !c->expired && (!c->deadline_ms || fl_now_ms() < c->deadline_ms);
	pthread_mutex_unlock(&h->lock);
	return ok;
}

void srv_guard_request_done(struct srv_http *h, struct srv_conn *c)
{
	pthread_mutex_lock(&h->lock);
	c->deadline_ms = 0;
	pthread_mutex_unlock(&h->lock);
}

void srv_guard_reply_done(struct srv_http *h, struct srv_conn *c)
{
	pthread_mutex_lock(&h->lock);
	if (c->expired) {
		pthread_mutex_unlock(&h->lock);
		return;
	}
	c->start_ms = fl_now_ms();
	c->deadline_ms = c->start_ms + h->header_ms;
	pthread_mutex_unlock(&h->lock);
}

/*
 * Shut down the sockets of connections past their deadline.  The socket
 * stays open until MHD has told srv_guard_conn_free (under the same
 * lock), so the descriptor cannot belong to anyone else here.
 */
static unsigned reap(struct srv_http *h, int64_t now)
{
	unsigned n = 0;

	for (struct srv_conn *c = h->conns; c; c = c->next) {
		if (!c->deadline_ms || now < c->deadline_ms)
			continue;
		shutdown(c->fd, SHUT_RDWR);
		c->deadline_ms = 0;
		c->expired = true;
		n++;
	}
	return n;
}

/* Write the summary row of a closed audit window. */
static void audit_summary(struct srv_http *h, const char *remote,
			  uint64_t dropped)
{
	struct fl_error err = {0};
	char path[96];

	snprintf(path, sizeof(path),
		 "(%llu refused requests not recorded: audit rate limit)",
		 (unsigned long long)dropped);
	fl_info("audit: %llu refused anonymous requests from %s not recorded "
		"one by one (rate limit)",
		(unsigned long long)dropped,
		remote ? remote : "many addresses");
	if (srv_store_audit(h->srv->store, "anonymous", "-", path, 429, remote,
			    NULL, &err))
		fl_error("audit: %s", err.msg);
}

/* Has the audit window that began at @start ended? */
static bool window_over(int64_t start, int64_t now)
{
	return now - start >= SRV_AUDIT_WINDOW_S * 1000LL;
}

/* Close the audit windows that ended; write their summaries unlocked. */
static void audit_flush(struct srv_http *h, int64_t now, bool all)
{
	struct {
		char remote[64];
		unsigned dropped;
	} out[AUDIT_SLOTS];
	uint64_t global = 0;
	size_t n = 0;

	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < AUDIT_SLOTS; i++) {
		struct audit_slot *s = &h->slots[i];

		if (!s->dropped || (!all && !window_over(s->start_ms, now)))
			continue;
		memcpy(out[n].remote, s->remote, sizeof(s->remote));
		out[n++].dropped = s->dropped;
		s->dropped = 0;
	}
	if (h->global_dropped &&
	    (all || window_over(h->global_start_ms, now))) {
		global = h->global_dropped;
		h->global_dropped = 0;
	}
	pthread_mutex_unlock(&h->lock);
	for (size_t i = 0; i < n; i++)
		audit_summary(h, out[i].remote, out[i].dropped);
	if (global)
		audit_summary(h, NULL, global);
}

static void *reaper_main(void *arg)
{
	struct srv_http *h = arg;
	struct timespec ts;
	unsigned n;

	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		fl_deadline(&ts, REAP_TICK_MS);
		pthread_cond_timedwait(&h->cond, &h->lock, &ts);
		n = reap(h, fl_now_ms());
		if (n)
			fl_debug("closed %u connections past their deadline",
				 n);
		pthread_mutex_unlock(&h->lock);
		audit_flush(h, fl_now_ms(), false);
		pthread_mutex_lock(&h->lock);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* The slot of @remote, or a free / the oldest one reset for it. */
static struct audit_slot *audit_slot(struct srv_http *h, const char *remote,
				     int64_t now)
{
	struct audit_slot *s = NULL;

	for (size_t i = 0; i < AUDIT_SLOTS; i++) {
		if (!strcmp(h->slots[i].remote, remote)) {
			s = &h->slots[i];
			break;
		}
		if (!s || h->slots[i].start_ms < s->start_ms)
			s = &h->slots[i];
	}
	if (strcmp(s->remote, remote) != 0) {
		h->global_dropped += s->dropped; /* evicted: count survives */
		memset(s, 0, sizeof(*s));
		fl_strlcpy(s->remote, remote, sizeof(s->remote));
		s->start_ms = now;
	} else if (window_over(s->start_ms, now) && !s->dropped) {
		s->rows = 0;
		s->start_ms = now;
	}
	return s;
}

bool srv_guard_audit_allowed(struct srv_http *h, const char *remote,
			     bool *ret_marker)
{
	int64_t now = fl_now_ms();
	struct audit_slot *s;
	bool ok, marker = false;

	pthread_mutex_lock(&h->lock);
	if (window_over(h->global_start_ms, now) && !h->global_dropped) {
		h->global_start_ms = now;
		h->global_rows = 0;
	}
	s = audit_slot(h, remote, now);
	ok = s->rows < SRV_AUDIT_PER_ADDR && h->global_rows < SRV_AUDIT_GLOBAL;
	if (ok) {
		s->rows++;
		h->global_rows++;
	} else if (s->rows >= SRV_AUDIT_PER_ADDR) {
		/* the marker row is the address's last one this window */
		marker = s->dropped++ == 0 && h->global_rows < SRV_AUDIT_GLOBAL;
		h->global_rows += marker;
	} else {
		h->global_dropped++;
	}
	pthread_mutex_unlock(&h->lock);
	if (ret_marker)
		*ret_marker = marker;
	return ok;
}

int srv_guard_start(struct srv *srv, struct fl_error *err)
{
	struct srv_http *h = fl_xcalloc(1, sizeof(*h));

	h->srv = srv;
	h->header_ms = srv->cfg.http.header_timeout * 1000;
	h->global_start_ms = fl_now_ms();
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	if (pthread_create(&h->reaper, NULL, reaper_main, h) != 0) {
		pthread_cond_destroy(&h->cond);
		pthread_mutex_destroy(&h->lock);
		free(h);
		return fl_fail(err, FL_EIO, "cannot start a thread");
	}
	srv->http = h;
	return 0;
}

void srv_guard_stop(struct srv *srv)
{
	struct srv_http *h = srv->http;

	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->reaper, NULL);
	audit_flush(h, fl_now_ms(), true);
	while (h->conns) /* MHD stopped: only leftovers of a failed start */
		srv_guard_conn_free(h, h->conns);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
	srv->http = NULL;
}
