/* SPDX-License-Identifier: MIT */
/* fleet-sim's bounded worker pool (sim_pool.h). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sim_pool.h"
#include "util.h"

struct list {
	struct sim_task *head, *tail;
};

struct sim_pool {
	pthread_mutex_t lock;
	pthread_cond_t work; /* queued tasks, or quit */
	struct list queued, done;
	unsigned pending, n_queued;
	bool quit;
	int efd;
	unsigned n_threads;
	pthread_t threads[SIM_POOL_WORKERS_MAX];
};

static void push(struct list *l, struct sim_task *t)
{
	t->next = NULL;
	if (l->tail)
		l->tail->next = t;
	else
		l->head = t;
	l->tail = t;
}

static struct sim_task *pop(struct list *l)
{
	struct sim_task *t = l->head;

	if (t) {
		l->head = t->next;
		if (!l->head)
			l->tail = NULL;
		t->next = NULL;
	}
	return t;
}

static void *worker(void *arg)
{
	struct sim_pool *p = arg;
	uint64_t one = 1;
	struct sim_task *t;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->quit && !p->queued.head)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->quit)
			break;
		t = pop(&p->queued);
		p->n_queued--;
		pthread_mutex_unlock(&p->lock);
		t->run(t);
		pthread_mutex_lock(&p->lock);
		push(&p->done, t);
		/* a full counter (never, at 2^64 - 2) only means a wake-up
		 * is already pending */
		if (write(p->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			abort();
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int sim_pool_new(unsigned workers, struct sim_pool **ret, struct fl_error *err)
{
	struct sim_pool *p;

	if (workers < 1 || workers > SIM_POOL_WORKERS_MAX)
		return fl_fail(err, FL_EINVAL, "%u workers (1 to %d)", workers,
			       SIM_POOL_WORKERS_MAX);
	p = fl_xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->efd < 0) {
		sim_pool_free(p);
		return fl_fail_errno(err, FL_ERR, "eventfd");
	}
	for (; p->n_threads < workers; p->n_threads++)
		if (pthread_create(&p->threads[p->n_threads], NULL, worker,
				   p)) {
			sim_pool_free(p);
			return fl_fail(err, FL_ERR, "cannot start a worker");
		}
	*ret = p;
	return 0;
}

void sim_pool_submit(struct sim_pool *p, struct sim_task *t)
{
	pthread_mutex_lock(&p->lock);
	push(&p->queued, t);
	p->n_queued++;
	p->pending++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

struct sim_task *sim_pool_done(struct sim_pool *p)
{
	struct sim_task *t;
	uint64_t n;

	pthread_mutex_lock(&p->lock);
	t = pop(&p->done);
	if (t)
		p->pending--;
	else if (read(p->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		abort();
	pthread_mutex_unlock(&p->lock);
	return t;
}

int sim_pool_fd(const struct sim_pool *p)
{
	return p->efd;
}

unsigned sim_pool_pending(struct sim_pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->pending;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned sim_pool_queued(struct sim_pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->n_queued;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void sim_pool_free(struct sim_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	if (p->efd >= 0)
		close(p->efd);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
