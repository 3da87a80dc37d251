/* SPDX-License-Identifier: MIT */
#ifndef AGENT_SIM_INTERNAL_H
#define AGENT_SIM_INTERNAL_H

/*
 * struct sim and its devices, shared by sim.c (the loop: scheduling,
 * the connect cap, stats, the stop) and sim_dev.c (what a worker does
 * for a device: enrol, power on, step, reboot).  Not for use outside
 * agent/sim*.c.
 *
 * Ownership: a device in SD_BUSY belongs to the worker that runs its
 * task and nothing else touches it; in every other state it belongs to
 * the loop.  The pool's lock orders the hand-overs.
 */
#include <signal.h>
#include <stdint.h>

#include "agent.h"
#include "feature.h"
#include "journal.h"
#include "sim.h"
#include "sim_pool.h"
#include "validate.h"

struct agent_config;

enum sim_dev_state {
	SD_NEW,	 /* no DIR/ID yet: enrol first */
	SD_OFF,	 /* powered off until wake_ms */
	SD_ON,	 /* its agent runs on the loop */
	SD_BUSY, /* a worker has it */
	SD_DEAD, /* enrolment or start failed (logged); left alone */
};

enum sim_task_kind {
	TK_START,    /* enrol (SD_NEW), then power on */
	TK_POWER_ON, /* the sim bootloader step, then a new struct agent */
	TK_STEP,     /* agent_step while work is due; a reboot if asked */
};

/* The loop's queues of devices (FIFO): waiting for a handshake slot
 * under the connect cap, waiting for a free worker. */
enum sim_queue {
	SQ_CONNECT,
	SQ_WORK,
	SIM_Q_N,
};

struct sim_fifo {
	struct sim_dev *head, *tail;
	unsigned n;
};

struct sim_dev {
	struct sim_task task; /* first: the pool hands it back */
	struct sim *sim;
	char id[FL_ID_MAX + 1];
	char *dir; /* DIR/ID */
	enum sim_dev_state state;
	enum sim_task_kind kind;
	struct agent_config *cfg; /* loaded at the first power-on */
	struct agent *a;	  /* SD_ON (and SD_BUSY mostly) */

	/* the knobs' picks for this device */
	bool fault;  /* its sensor bus fails health checks */
	bool crashy; /* it power cycles on trial boots of an update */
	bool fault_written;
	bool enrolled; /* DIR/ID exists */
	char fw[32];   /* firmware booted, as last seen ("" unknown) */

	/* timers (monotonic ms; 0: none) */
	int64_t wake_ms;  /* SD_OFF: power on */
	int64_t crash_ms; /* SD_ON: the power cut of a trial boot */
	int64_t flap_ms;  /* SD_ON: the next network flap */

	/* the loop's view of the connection (for the cap and counts) */
	enum agent_link link;
	int reg_fd;	    /* registered with the epoll set, or -1 */
	short reg_ev;	    /* with these poll events */
	uint32_t reg_gen;   /* which registration (stale events differ) */
	bool busy_online; /* online when it went to a worker */
	bool in_q[SIM_Q_N]; /* in the loop's queues (sim.c) */
	struct sim_dev *q_next[SIM_Q_N];

	/* what a worker task reports back */
	int rc;
	struct fl_error err;
	bool enrolled_now;
	unsigned boots; /* power-ons in this run (a task may add two) */

	/* job outcomes counted (the id of the last counted final job) */
	bool job_seen;
	char counted_job[AGENT_JOB_ID_MAX + 1];
};

struct sim_counts {
	unsigned long long enrolled, enrol_failed, start_failed;
	unsigned long long power_ons, crashes, flaps;
	unsigned long long succeeded, failed, rolled_back;
};

struct sim {
	struct sim_opts o; /* strings are copies */
	char *stats_path;
	int lock_fd, wake_fd;
	struct sim_pool *pool;
	const volatile sig_atomic_t *stop;
	bool stopping;
	unsigned n;
	struct sim_dev *devs;

	/* the connect cap */
	unsigned connecting, connecting_peak;
	struct sim_fifo q[SIM_Q_N];

	/* the sweep: every device's timers about once a second */
	unsigned sweep_at;
	int64_t sweep_ms;
	double sweep_quota;

	/* every running device's socket in one epoll set */
	int epfd;

	int64_t started_ms, next_stats_ms, next_summary_ms;
	struct sim_counts c;

	/* the agent's features, with fleet-sim's diagnostics */
	const struct agent_feature *features[AGENT_FEATURES_MAX];
	size_t n_features;
};

/* sim_dev.c: the features of every device into @s: agent_features,
 * with agent_feature_diag_sim in diagnostics' place. */
void sim_dev_features(struct sim *s);

/* sim_dev.c: a worker's task for the device (sim_task.run). */
void sim_dev_task(struct sim_task *t);

/* sim_dev.c: the device's picks from the knobs, and where it starts
 * (SD_NEW or SD_OFF). */
void sim_dev_init(struct sim *s, struct sim_dev *d, unsigned index);

/* sim_dev.c: release what the device holds (its agent is freed without
 * a goodbye; sim.c stops agents cleanly first). */
void sim_dev_release(struct sim_dev *d);

/* sim_dev.c: the agent's OTA brief (ota.h), for the counts. */
struct agent_ota_brief;
void sim_dev_brief(const struct sim_dev *d, struct agent_ota_brief *ret);

#endif
