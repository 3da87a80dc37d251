/* SPDX-License-Identifier: MIT */
#ifndef AGENT_SIM_H
#define AGENT_SIM_H

/*
 * fleet-sim (DESIGN §1, docs/sim.md): many simulated devices in one
 * process, each with its own key, certificate, MQTT connection, state
 * directory and sim-mode slots, each running the agent's real core
 * (struct agent with the real features: journal, signature and hash
 * checks, the update state machine, events, the command log).
 *
 * One event loop drives every device's MQTT session (agent_service on
 * poll()) and timers; a device with work that may block (a command, an
 * update, a rotation, a power cycle, its enrolment) goes to a bounded
 * worker pool (sim_pool.h) and comes back when the work is done.  Idle
 * devices cost the loop O(1) each per second.  A "reboot" re-runs the
 * sim bootloader step for the device and starts its struct agent again
 * inside the process.
 *
 * DIR/ID holds a device: agent.conf, state/ (identity, journals), sim/
 * (bootloader environment, slot-a, slot-b, boot counter).  A device
 * that has no DIR/ID yet is enrolled with the claim token (once: a
 * restart reuses the identities).  DIR/stats.json (or opts.stats_file)
 * is rewritten every second with counts (sim_stats_json).
 */
#include <signal.h>
#include <stdbool.h>

#include "err.h"
#include "sim_knobs.h"

#define SIM_DEVICES_MAX 100000
#define SIM_WORKERS_DEFAULT 8
#define SIM_CONNECTING_DEFAULT 64 /* TLS handshakes in flight */
#define SIM_STATS_FILE "stats.json"
#define SIM_LOCK_FILE "fleet-sim.lock"
#define SIM_FAULT_FILE "fault-sensor-bus" /* in DIR/ID/sim */

struct sim_opts {
	const char *dir;      /* required */
	unsigned count;	      /* 1..SIM_DEVICES_MAX */
	const char *prefix;   /* device ids PREFIX-0001...; NULL: "sim" */
	const char *server_url, *ca_file, *token; /* for enrolment */
	const char *image;    /* slot a of new devices */
	unsigned bootlimit;   /* of new devices; 0: 3 */
	unsigned workers;     /* 0: SIM_WORKERS_DEFAULT */
	unsigned connecting;  /* 0: SIM_CONNECTING_DEFAULT */
	const char *stats_file; /* NULL: DIR/stats.json */
	struct sim_knobs knobs;
};

struct sim;

/*
 * Check @o, take DIR's lock (one fleet-sim per DIR), find which devices
 * exist, raise RLIMIT_NOFILE to its hard limit and start the workers.
 * Returns 0, FL_EINVAL (bad options; devices to enrol without --server,
 * --ca, a token or --image), FL_ECONFLICT (DIR is in use), FL_ELIMIT
 * (more devices than file descriptors: the message says how many are
 * needed and what the hard limit is), FL_EIO, FL_ERR.
 */
int sim_new(const struct sim_opts *o, struct sim **ret, struct fl_error *err);

/* An eventfd: a signal handler that sets the stop flag writes an
 * 8-byte 1 here so that the loop notices at once. */
int sim_wake_fd(const struct sim *s);

/*
 * Run until *@stop becomes non-zero, then stop every device cleanly
 * (offline presence, disconnect) and return 0; FL_ETIMEOUT when some
 * device's work did not end within the stop bound (it is left running).
 */
int sim_run(struct sim *s, const volatile sig_atomic_t *stop,
	    struct fl_error *err);

/* Free; NULL is fine. */
void sim_free(struct sim *s);

#endif
