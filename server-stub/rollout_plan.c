/* SPDX-License-Identifier: MIT */
/* Which devices a rollout takes, in which order and wave (rollout_plan.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "rollout_plan.h"
#include "util.h"

void srv_rollout_plan_free(struct srv_rollout_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->order[i]);
	free(p->order);
	for (size_t i = 0; i < p->n_excluded; i++) {
		free(p->excluded[i].device);
		free(p->excluded[i].reason);
	}
	free(p->excluded);
	srv_strv_free(&p->notes);
	*p = (struct srv_rollout_plan){0};
}

size_t srv_rollout_plan_wave_of(const struct srv_rollout_plan *p, size_t pos)
{
	for (size_t k = 0; k < p->n_waves; k++)
		if (pos >= p->waves[k].first &&
		    pos < p->waves[k].first + p->waves[k].count)
			return k;
	return p->n_waves;
}

static const char *label(const struct srv_device_row *d, const char *key)
{
	for (size_t i = 0; i < d->labels.n; i++)
		if (strcmp(d->labels.v[i].key, key) == 0)
			return d->labels.v[i].value;
	return NULL;
}

/*
 * Does @d meet the target's criteria?  NULL when it does, else why not
 * (into @buf).
 */
static const char *misses(const struct srv_rollout_target *t,
			  const struct srv_device_row *d, char *buf,
			  size_t len)
{
	if (!fl_streq(d->state, "active"))
		snprintf(buf, len, "%s", d->state ? d->state : "not active");
	else if (t->group && !fl_streq(d->group, t->group))
		snprintf(buf, len, "not in group %s", t->group);
	else if (t->hardware && !fl_streq(label(d, "hardware"), t->hardware))
		snprintf(buf, len, "hardware is not %s", t->hardware);
	else if (t->version && !fl_streq(d->firmware, t->version))
		snprintf(buf, len, "runs %s, not %s",
			 d->firmware ? d->firmware : "unknown firmware",
			 t->version);
	else {
		for (size_t i = 0; i < t->n_labels; i++)
			if (!fl_streq(label(d, t->label_keys[i]),
				      t->label_values[i])) {
				snprintf(buf, len, "no label %s=%s",
					 t->label_keys[i], t->label_values[i]);
				return buf;
			}
		return NULL;
	}
	return buf;
}

static void exclude(struct srv_rollout_plan *p, const char *device,
		    const char *reason)
{
	p->excluded = fl_xrealloc(p->excluded,
				  (p->n_excluded + 1) * sizeof(*p->excluded));
	p->excluded[p->n_excluded++] = (struct srv_plan_excluded){
		fl_xstrdup(device), fl_xstrdup(reason)};
}

static const struct srv_device_row *find(const struct srv_device_list *l,
					 const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].id, id) == 0)
			return &l->v[i];
	return NULL;
}

/* A device and its sort key. */
struct keyed {
	unsigned char key[SHA256_DIGEST_LENGTH];
	const char *id;
};

static int by_key(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = memcmp(x->key, y->key, sizeof(x->key));

	return c ? c : strcmp(x->id, y->id);
}

static void sort_key(const char *rollout, const char *device,
		     unsigned char out[SHA256_DIGEST_LENGTH])
{
	size_t a = strlen(rollout) + 1, b = strlen(device); /* a: its NUL */
	unsigned char *buf = fl_xmalloc(a + b);

	memcpy(buf, rollout, a);
	memcpy(buf + a, device, b);
	SHA256(buf, a + b, out);
	free(buf);
}

static bool is_canary(const struct srv_rollout_spec *s, const char *id)
{
	for (size_t i = 0; i < s->n_canaries; i++)
		if (strcmp(s->canaries[i], id) == 0)
			return true;
	return false;
}

/*
 * The targeted devices into @t (borrowed ids), the excluded ones into
 * @p: the named devices in the order named, else every row of @devices;
 * FL_ENOTFOUND for a named device @devices lacks.
 */
static int select_devices(const struct srv_rollout_spec *s,
			  const char *version,
			  const struct srv_device_list *devices,
			  struct keyed *t, size_t *ret_n,
			  struct srv_rollout_plan *p, struct fl_error *err)
{
	char why[160];
	size_t n = 0;

	size_t count = s->target.devices ? s->target.n_devices : devices->n;

	for (size_t i = 0; i < count; i++) {
		const struct srv_device_row *d =
			s->target.devices ? find(devices, s->target.devices[i])
					  : &devices->v[i];
		const char *miss;

		if (!d)
			return fl_fail(err, FL_ENOTFOUND, "no device '%s'",
				       s->target.devices[i]);
		miss = misses(&s->target, d, why, sizeof(why));
		if (miss) {
			if (s->target.devices)
				exclude(p, d->id, miss);
		} else if (fl_streq(d->firmware, version)) {
			snprintf(why, sizeof(why), "already on %s", version);
			exclude(p, d->id, why);
		} else {
			t[n++].id = d->id;
		}
	}
	*ret_n = n;
	return 0;
}

/* The order: canaries as named, then the others by their keys. */
static int order(const struct srv_rollout_spec *s, const char *id,
		 struct keyed *t, size_t n, struct srv_rollout_plan *p,
		 struct fl_error *err)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n_canaries; i++) {
		size_t j = 0;

		while (j < n && strcmp(t[j].id, s->canaries[i]) != 0)
			j++;
		if (j == n) {
			for (size_t e = 0; e < p->n_excluded; e++)
				if (strcmp(p->excluded[e].device,
					   s->canaries[i]) == 0)
					return fl_fail(err, FL_EINVAL,
						       "canary %s is excluded: %s",
						       s->canaries[i],
						       p->excluded[e].reason);
			return fl_fail(err, FL_EINVAL,
				       "canary %s is not in the target",
				       s->canaries[i]);
		}
		p->order[k++] = fl_xstrdup(s->canaries[i]);
	}
	for (size_t i = 0; i < n; i++)
		sort_key(id, t[i].id, t[i].key);
	qsort(t, n, sizeof(*t), by_key);
	for (size_t i = 0; i < n; i++)
		if (!is_canary(s, t[i].id))
			p->order[k++] = fl_xstrdup(t[i].id);
	return 0;
}

static void note(struct srv_rollout_plan *p, char *text)
{
	p->notes.v = fl_xrealloc(p->notes.v,
				 (p->notes.n + 1) * sizeof(*p->notes.v));
	p->notes.v[p->notes.n++] = text;
}

/* Cut the order into waves; empty ones are dropped with a note. */
static void cut_waves(const struct srv_rollout_spec *s,
		      struct srv_rollout_plan *p)
{
	size_t done = 0;

	for (size_t k = 0; k < s->n_waves; k++) {
		size_t stop = fl_wave_stop_resolve(&s->waves[k], p->n);
		char text[FL_WAVE_STOP_TEXT];

		if (k == 0 && stop < s->n_canaries)
			stop = s->n_canaries;
		if (stop <= done) {
			fl_wave_stop_format(&s->waves[k], text);
			note(p, fl_xasprintf("wave %zu (%s) is empty and was "
					     "dropped", k + 1, text));
			continue;
		}
		p->waves[p->n_waves++] = (struct srv_plan_wave){
			s->waves[k], done, stop - done};
		done = stop;
	}
}

/* Why nothing is targeted, counted by reason. */
static int empty_target(const struct srv_rollout_plan *p, const char *version,
			struct fl_error *err)
{
	size_t already = 0;
	char want[80];

	if (!p->n_excluded)
		return fl_fail(err, FL_EINVAL,
			       "empty target: no active device matches it");
	snprintf(want, sizeof(want), "already on %s", version);
	for (size_t i = 0; i < p->n_excluded; i++)
		already += fl_streq(p->excluded[i].reason, want);
	return fl_fail(err, FL_EINVAL,
		       "empty target: %zu device(s) match, all excluded (%zu "
		       "already on %s)",
		       p->n_excluded, already, version);
}

int srv_rollout_plan_make(const struct srv_rollout_spec *spec, const char *id,
			  const char *version,
			  const struct srv_device_list *devices,
			  struct srv_rollout_plan *ret, struct fl_error *err)
{
	struct srv_rollout_plan p = {0};
	struct keyed *t = fl_xcalloc(devices->n + 1, sizeof(*t));
	size_t n = 0;
	int rc;

	rc = select_devices(spec, version, devices, t, &n, &p, err);
	if (!rc && n == 0)
		rc = empty_target(&p, version, err);
	if (!rc) {
		p.order = fl_xcalloc(n, sizeof(*p.order));
		rc = order(spec, id, t, n, &p, err);
		p.n = n;
	}
	if (!rc)
		rc = fl_wave_stops_cover(spec->waves, spec->n_waves, n, err);
	if (!rc)
		cut_waves(spec, &p);
	free(t);
	if (rc) {
		srv_rollout_plan_free(&p);
		return rc;
	}
	*ret = p;
	return 0;
}
