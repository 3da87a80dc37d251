/* SPDX-License-Identifier: MIT */
/*
 * Per-device token buckets in an open-addressing hash table keyed by
 * device id (linear probing, grown at half load, never shrunk: ids are
 * enrolled devices, since the broker only lets a device publish under
 * its own id).
 */
#include <stdlib.h>
#include <string.h>

#include "devlimit.h"
#include "util.h"
#include "validate.h"

struct slot {
	char id[FL_ID_MAX + 1]; /* "" = free */
	double tokens;
	int64_t last_ms;      /* last refill */
	int64_t window_ms;    /* start of the current drop window */
	uint64_t window_drops;
	uint64_t dropped;     /* in total */
	int64_t muted_until;  /* 0 = not muted */
};

struct srv_devlimit {
	struct srv_devlimit_cfg cfg;
	struct slot *v;
	size_t cap, n, muted;
};

/* FNV-1a */
static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

static struct slot *probe(struct slot *v, size_t cap, const char *id)
{
	size_t i = hash(id) & (cap - 1);

	while (v[i].id[0] && strcmp(v[i].id, id) != 0)
		i = (i + 1) & (cap - 1);
	return &v[i];
}

static void grow(struct srv_devlimit *l)
{
	size_t cap = l->cap * 2;
	struct slot *v = fl_xcalloc(cap, sizeof(*v));

	for (size_t i = 0; i < l->cap; i++)
		if (l->v[i].id[0])
			*probe(v, cap, l->v[i].id) = l->v[i];
	free(l->v);
	l->v = v;
	l->cap = cap;
}

struct srv_devlimit *srv_devlimit_new(const struct srv_devlimit_cfg *cfg)
{
	struct srv_devlimit *l = fl_xcalloc(1, sizeof(*l));

	l->cfg = *cfg;
	l->cap = 64;
	l->v = fl_xcalloc(l->cap, sizeof(*l->v));
	return l;
}

void srv_devlimit_free(struct srv_devlimit *l)
{
	if (!l)
		return;
	free(l->v);
	free(l);
}

/* The slot of @id, added with a full bucket; NULL when the table is full. */
static struct slot *lookup(struct srv_devlimit *l, const char *id,
			   int64_t now_ms)
{
	struct slot *s = probe(l->v, l->cap, id);
	size_t len = strlen(id);

	if (s->id[0])
		return s;
	if (l->n >= SRV_DEVLIMIT_MAX_DEVICES || len > FL_ID_MAX)
		return NULL;
	if (2 * (l->n + 1) > l->cap) {
		grow(l);
		s = probe(l->v, l->cap, id);
	}
	memcpy(s->id, id, len + 1);
	s->tokens = (double)l->cfg.burst;
	s->last_ms = now_ms;
	s->window_ms = now_ms;
	l->n++;
	return s;
}

static void refill(const struct srv_devlimit *l, struct slot *s,
		   int64_t now_ms)
{
	if (now_ms > s->last_ms) {
		s->tokens += (double)(now_ms - s->last_ms) *
			     (double)l->cfg.rate / 1000.0;
		if (s->tokens > (double)l->cfg.burst)
			s->tokens = (double)l->cfg.burst;
		s->last_ms = now_ms;
	}
}

enum srv_devlimit_verdict srv_devlimit_take(struct srv_devlimit *l,
					    const char *id, int64_t now_ms)
{
	struct slot *s = lookup(l, id, now_ms);

	if (!s)
		return SRV_DEVLIMIT_DROP;
	refill(l, s, now_ms);
	if (!s->muted_until && s->tokens >= 1.0) {
		s->tokens -= 1.0;
		return SRV_DEVLIMIT_PASS;
	}
	s->dropped++;
	if (s->muted_until)
		return SRV_DEVLIMIT_DROP;
	if (now_ms - s->window_ms >= SRV_DEVLIMIT_WINDOW_MS) {
		s->window_ms = now_ms;
		s->window_drops = 0;
	}
	if (++s->window_drops < l->cfg.mute_after)
		return SRV_DEVLIMIT_DROP;
	s->muted_until = now_ms + l->cfg.mute_ms;
	if (s->muted_until == 0)
		s->muted_until = 1;
	l->muted++;
	return SRV_DEVLIMIT_MUTE;
}

uint64_t srv_devlimit_dropped(const struct srv_devlimit *l, const char *id)
{
	const struct slot *s = probe(l->v, l->cap, id);

	return s->id[0] ? s->dropped : 0;
}

void srv_devlimit_expire(struct srv_devlimit *l, int64_t now_ms,
			 bool clear_all,
			 void (*fn)(const char *id, uint64_t dropped, void *arg),
			 void *arg)
{
	for (size_t i = 0; l->muted && i < l->cap; i++) {
		struct slot *s = &l->v[i];

		if (!s->muted_until || (!clear_all && now_ms < s->muted_until))
			continue;
		s->muted_until = 0;
		s->window_drops = 0;
		s->window_ms = now_ms;
		s->tokens = (double)l->cfg.burst;
		s->last_ms = now_ms;
		l->muted--;
		if (!clear_all && fn)
			fn(s->id, s->dropped, arg);
	}
}
