/* SPDX-License-Identifier: MIT */
/*
 * agent/sim_pool: fleet-sim's bounded worker pool runs every task once,
 * never more at a time than it has workers (and reaches that many), in
 * the order submitted; the loop is woken through the pool's descriptor
 * and collects each finished task exactly once; the counts of pending
 * and queued tasks are right; a bad size is refused.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim_pool.h"
#include "util.h"

#define TASKS 64
#define WORKERS 4

struct job {
	struct sim_task t; /* first */
	int index, runs, started;
	bool collected;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int running, most, order;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;

static void run(struct sim_task *t)
{
	struct job *j = (struct job *)t;

	pthread_mutex_lock(&lock);
	j->runs++;
	j->started = order++;
	if (++running > most)
		most = running;
	pthread_mutex_unlock(&lock);
	pthread_mutex_lock(&gate_lock);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	poll(NULL, 0, 2);
	pthread_mutex_lock(&lock);
	running--;
	pthread_mutex_unlock(&lock);
}

static void test_bounded_and_collected(void **state)
{
	static struct job jobs[TASKS];
	struct sim_pool *p = NULL;
	struct pollfd pfd;
	int collected = 0;

	assert_int_equal(sim_pool_new(WORKERS, &p, NULL), 0);
	pfd = (struct pollfd){sim_pool_fd(p), POLLIN, 0};
	assert_int_equal(poll(&pfd, 1, 0), 0); /* nothing finished yet */
	for (int i = 0; i < TASKS; i++) {
		jobs[i] = (struct job){.t.run = run, .index = i};
		sim_pool_submit(p, &jobs[i].t);
	}
	assert_int_equal(sim_pool_pending(p), TASKS);
	/* the workers take the first ones and wait at the gate */
	for (int i = 0; i < 200 && sim_pool_queued(p) != TASKS - WORKERS; i++)
		poll(NULL, 0, 5);
	assert_int_equal(sim_pool_queued(p), TASKS - WORKERS);
	assert_null(sim_pool_done(p));
	pthread_mutex_lock(&gate_lock);
	gate_open = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	while (collected < TASKS) {
		struct sim_task *t;

		assert_int_equal(poll(&pfd, 1, 5000), 1); /* woken */
		while ((t = sim_pool_done(p))) {
			struct job *j = (struct job *)t;

			assert_false(j->collected);
			j->collected = true;
			collected++;
		}
	}
	assert_int_equal(sim_pool_pending(p), 0);
	assert_int_equal(poll(&pfd, 1, 0), 0); /* drained */
	for (int i = 0; i < TASKS; i++) {
		assert_int_equal(jobs[i].runs, 1);
		/* FIFO: a task starts before any submitted after the
		 * workers' first batch */
		if (i >= WORKERS)
			assert_true(jobs[i].started >= WORKERS);
	}
	assert_int_equal(most, WORKERS);
	sim_pool_free(p);
}

/* One worker: tasks run and come back in the order submitted. */
static void test_fifo(void **state)
{
	static struct job jobs[10];
	struct sim_pool *p = NULL;
	struct sim_task *t;
	int next = 0;

	order = 0;
	gate_open = true;
	assert_int_equal(sim_pool_new(1, &p, NULL), 0);
	for (int i = 0; i < 10; i++) {
		jobs[i] = (struct job){.t.run = run, .index = i};
		sim_pool_submit(p, &jobs[i].t);
	}
	for (int i = 0; i < 500 && next < 10; i++) {
		poll(NULL, 0, 5);
		while ((t = sim_pool_done(p)))
			assert_int_equal(((struct job *)t)->index, next++);
	}
	assert_int_equal(next, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(jobs[i].started, i);
	sim_pool_free(p);
}

static void test_sizes(void **state)
{
	struct sim_pool *p = NULL;

	assert_int_equal(sim_pool_new(0, &p, NULL), FL_EINVAL);
	assert_int_equal(sim_pool_new(SIM_POOL_WORKERS_MAX + 1, &p, NULL),
			 FL_EINVAL);
	assert_null(p);
	assert_int_equal(sim_pool_new(1, &p, NULL), 0);
	sim_pool_free(p);
	sim_pool_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bounded_and_collected),
	    cmocka_unit_test(test_fifo),
	    cmocka_unit_test(test_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
