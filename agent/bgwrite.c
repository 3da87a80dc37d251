/* SPDX-License-Identifier: MIT */
/* A background writer thread; see bgwrite.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bgwrite.h"
#include "util.h"

struct agent_bgw {
	int fd, writeback;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	const void *buf; /* the job; NULL when idle */
	size_t len;
	uint64_t off;
	int err_no; /* errno of the first failed write */
	bool quit;
};

static int write_all_at(int fd, const char *p, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pwrite(fd, p + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EIO;
		done += (size_t)n;
	}
	return 0;
}

static void *run(void *arg)
{
	struct agent_bgw *w = arg;
	int e;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->buf && !w->quit)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!w->buf)
			break;
		pthread_mutex_unlock(&w->lock);
		e = write_all_at(w->fd, w->buf, w->len, w->off);
		if (!e && w->writeback)
			sync_file_range(w->fd, (off64_t)w->off, (off64_t)w->len,
					SYNC_FILE_RANGE_WRITE);
		pthread_mutex_lock(&w->lock);
		if (e && !w->err_no)
			w->err_no = e;
		w->buf = NULL;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int agent_bgw_start(int fd, int writeback, struct agent_bgw **ret,
		    struct fl_error *err)
{
	struct agent_bgw *w = fl_xcalloc(1, sizeof(*w));

	w->fd = fd;
	w->writeback = writeback;
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

/* Wait until idle (lock held); the first error. */
static int idle(struct agent_bgw *w, struct fl_error *err)
{
	while (w->buf)
		pthread_cond_wait(&w->cond, &w->lock);
	if (w->err_no) {
		errno = w->err_no;
		return fl_fail_errno(err, FL_EIO, "write failed");
	}
	return 0;
}

int agent_bgw_submit(struct agent_bgw *w, const void *buf, size_t len,
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

int agent_bgw_wait(struct agent_bgw *w, struct fl_error *err)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	rc = idle(w, err);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

void agent_bgw_stop(struct agent_bgw *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	while (w->buf)
		pthread_cond_wait(&w->cond, &w->lock);
	w->quit = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}
