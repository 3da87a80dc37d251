/* SPDX-License-Identifier: MIT */
#ifndef AGENT_SIM_POOL_H
#define AGENT_SIM_POOL_H

/*
 * fleet-sim's bounded worker pool: a fixed number of threads run the
 * work of simulated devices that may block (an enrolment over HTTPS, a
 * download and install, a health check, a rotation, a power cycle),
 * while the event loop keeps every other device's MQTT moving.  However
 * many devices there are, the process has 1 + @workers threads, and two
 * more per install in progress (download.c's network thread and the
 * slot's background writer), so at most 1 + 3 * @workers.
 *
 * Tasks are intrusive (struct sim_task inside the caller's object): no
 * allocation per task, no cap on the queue beyond the number of
 * objects.  The loop submits, a worker runs the task's function, and
 * the finished task goes to a done list that the loop collects, woken
 * by an eventfd it polls.  Between submit and collect the loop must not
 * touch the object.
 */
#include <stdbool.h>

#include "err.h"

#define SIM_POOL_WORKERS_MAX 64

struct sim_task {
	struct sim_task *next; /* the pool's */
	void (*run)(struct sim_task *t); /* on a worker thread */
};

struct sim_pool;

/* Start @workers threads (1..SIM_POOL_WORKERS_MAX).  Returns 0,
 * FL_EINVAL, FL_ERR (no thread or eventfd). */
int sim_pool_new(unsigned workers, struct sim_pool **ret, struct fl_error *err);

/* Queue @t (FIFO); a worker runs t->run(t) and moves it to done. */
void sim_pool_submit(struct sim_pool *p, struct sim_task *t);

/* A finished task, oldest first, or NULL; the loop owns it again. */
struct sim_task *sim_pool_done(struct sim_pool *p);

/* The descriptor that becomes readable when tasks finish (poll it with
 * POLLIN; sim_pool_done clears it). */
int sim_pool_fd(const struct sim_pool *p);

/* Tasks submitted and not yet collected; of them, queued (not started). */
unsigned sim_pool_pending(struct sim_pool *p);
unsigned sim_pool_queued(struct sim_pool *p);

/* Stop the threads once their current task is done and free.  Tasks
 * still queued are not run (collect everything first).  NULL is fine. */
void sim_pool_free(struct sim_pool *p);

#endif
