/* SPDX-License-Identifier: MIT */
/* A background writer thread; see bgwrite.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bgwrite.h"
#include "fsutil.h"
#include "util.h"

struct fl_bgw {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	fl_bgw_fn fn;
	void *ctx;
	const void *buf; /* the job; NULL when idle */
	size_t len;
	uint64_t off;
	bool quit;
	int rc; /* first failed write */
	struct fl_error err;
};

/* The thread: take a job, write it unlocked (only this thread uses the
 * sink), record the first failure, signal idle. */
static void *run(void *arg)
{
	struct fl_bgw *w = arg;
	int rc;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->buf && !w->quit)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!w->buf)
			break;
		pthread_mutex_unlock(&w->lock);
		rc = w->fn(w->ctx, w->buf, w->len, w->off, &w->err);
		pthread_mutex_lock(&w->lock);
		if (rc && !w->rc)
			w->rc = rc;
		w->buf = NULL;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int fl_bgw_start(fl_bgw_fn fn, void *ctx, struct fl_bgw **ret,
		 struct fl_error *err)
{
	struct fl_bgw *w = fl_xcalloc(1, sizeof(*w));

	w->fn = fn;
	w->ctx = ctx;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (pthread_create(&w->thread, NULL, run, w)) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		free(w);
		return fl_fail(err, FL_ERR, "cannot start a writer thread");
	}
	*ret = w;
	return 0;
}

/* Wait until idle (lock held); the first failure, copied to @err. */
static int idle(struct fl_bgw *w, struct fl_error *err)
{
	while (w->buf)
		pthread_cond_wait(&w->cond, &w->lock);
	return w->rc ? fl_fail(err, w->rc, "%s", w->err.msg) : 0;
}

int fl_bgw_submit(struct fl_bgw *w, const void *buf, size_t len,
		  uint64_t off, struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	rc = idle(w, err);
	if (!rc && len) {
		w->buf = buf;
		w->len = len;
		w->off = off;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}

int fl_bgw_wait(struct fl_bgw *w, struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	rc = idle(w, err);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

int fl_bgw_finish(struct fl_bgw *w, struct fl_error *err)
{
	int rc;

	if (!w)
		return 0;
	pthread_mutex_lock(&w->lock);
	rc = idle(w, err);
	w->quit = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
	return rc;
}

int fl_bgw_pwrite(void *ctx, const void *buf, size_t len, uint64_t off,
		  struct fl_error *err)
{
	const struct fl_bgw_fd *f = ctx;

	if (fl_pwrite_all(f->fd, buf, len, off, err))
		return FL_EIO;
	if (f->writeback)
		sync_file_range(f->fd, (off64_t)off, (off64_t)len,
				SYNC_FILE_RANGE_WRITE);
	return 0;
}
