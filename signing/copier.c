/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "copier.h"
#include "util.h"

struct fsig_copier {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	fsig_copier_write_fn fn;
	void *ctx;
	const void *buf; /* the job, while busy */
	size_t len;
	bool busy, stop;
	int rc; /* first write error */
	struct fl_error err;
};

static void *copier_main(void *arg)
{
	struct fsig_copier *c = arg;
	int rc;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->busy && !c->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		if (!c->busy)
			break;
		pthread_mutex_unlock(&c->mu);
		/* the write runs unlocked; only this thread uses the sink */
		rc = c->rc ? 0 : c->fn(c->ctx, c->buf, c->len, &c->err);
		pthread_mutex_lock(&c->mu);
		if (rc && !c->rc)
			c->rc = rc;
		c->busy = false;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int fsig_copier_start(fsig_copier_write_fn fn, void *ctx,
		      struct fsig_copier **ret, struct fl_error *err)
{
	struct fsig_copier *c = fl_xcalloc(1, sizeof(*c));

	c->fn = fn;
	c->ctx = ctx;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->thread, NULL, copier_main, c) != 0) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		free(c);
		return fl_fail(err, FL_ERR, "cannot start the copy thread");
	}
	*ret = c;
	return 0;
}

/* Wait until no write is in flight; the first error so far. */
static int wait_idle(struct fsig_copier *c)
{
	while (c->busy)
		pthread_cond_wait(&c->cv, &c->mu);
	return c->rc;
}

static int report(struct fsig_copier *c, int rc, struct fl_error *err)
{
	if (rc)
		fl_fail(err, rc, "%s", c->err.msg);
	return rc;
}

int fsig_copier_submit(struct fsig_copier *c, const void *buf, size_t len,
		       struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&c->mu);
	rc = wait_idle(c);
	if (!rc) {
		c->buf = buf;
		c->len = len;
		c->busy = true;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return report(c, rc, err);
}

int fsig_copier_finish(struct fsig_copier *c, struct fl_error *err)
{
	int rc;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	rc = wait_idle(c);
	c->stop = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	rc = report(c, rc, err);
	free(c);
	return rc;
}
