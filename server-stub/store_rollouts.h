/* SPDX-License-Identifier: MIT */
#ifndef SRV_STORE_ROLLOUTS_H
#define SRV_STORE_ROLLOUTS_H

/*
 * The store's side of rollouts (included by store.h; docs/decisions.md
 * "Rollouts live in the store"): a rollout row, its waves, one row per
 * device (wave, order, state, job, rollback job, from_version, reason,
 * times), the rollout's decision log and the engine's lease.  The engine
 * (rollout_engine.c) keeps nothing in memory: each function here is one
 * transaction that writes a decision before fleetd acts on it, and the
 * guards in them (a row is commanded only from "pending", a state moves
 * only from the one the caller saw) make a decision happen once even
 * when two fleetds or a restart race for it.  Times are passed in (the
 * engine's clock), Unix seconds.
 *
 * Device row states: pending, commanded (its update job is open),
 * updated (the job succeeded; health window), healthy, failed, skipped
 * (never commanded), cancelled (its job was cancelled by an abort),
 * rolling-back, rolled-back, rollback-failed.  A row is "active" (holds
 * its device) from creation until the rollout ends; the store lets a
 * device be active in one rollout only (a unique partial index).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct srv_store;
struct srv_job;
struct srv_strv;

/* A rollout to record, with its plan. */
struct srv_rollout {
	const char *id, *bundle, *version, *spec, *created_by;
	int64_t soak_s, health_window_s, device_timeout_s;
	int64_t fail_percent, min_sample, rate_per_min, concurrency;
	bool auto_rollback;
	size_t n_waves;
	const char *const *wave_stops; /* canonical text, per wave */
	const size_t *wave_sizes;
	size_t n_devices;
	const char *const *devices; /* in rollout order */
	const size_t *device_wave;  /* 0-based wave of each */
};

/*
 * Record @r running in wave 0 (started @now), its waves and one pending,
 * active row per device, in one transaction: nothing is written on any
 * error.  FL_ECONFLICT when the id exists, or when a device is active in
 * another rollout or has an open update or rollback job: then
 * *@ret_busy (may be NULL) gets "DEVICE (rollout ID)" / "DEVICE (job
 * ID)" for each, in @r's order.
 */
int srv_store_rollout_add(struct srv_store *s, const struct srv_rollout *r,
			  int64_t now, struct srv_strv *ret_busy,
			  struct fl_error *err);

/*
 * The devices a plan chooses from (rollout_plan.h), each with only id,
 * group, state, online, firmware, health and labels filled: the @n_ids
 * devices @ids (any state; unknown ones are missing), or with @ids NULL
 * every active device (of @group when not NULL).  By id.
 */
struct srv_device_list;
int srv_store_rollout_candidates(struct srv_store *s, const char *group,
				 const char *const *ids, size_t n_ids,
				 struct srv_device_list *ret,
				 struct fl_error *err);

/* Which of @devices are busy (as above), without writing anything. */
int srv_store_rollout_busy(struct srv_store *s, const char *const *devices,
			   size_t n, struct srv_strv *ret_busy,
			   struct fl_error *err);

struct srv_rollout_row {
	char *id, *bundle, *version, *state, *reason, *spec, *created_by;
	int64_t wave, n_waves; /* current wave, 0-based; how many */
	int64_t soak_s, health_window_s, device_timeout_s;
	int64_t fail_percent, min_sample, rate_per_min, concurrency;
	bool auto_rollback;
	bool tripped;                      /* paused by its gate */
	int64_t base_failed, base_finished; /* accepted at a resume */
	int64_t soak_until;  /* 0: the current wave's soak has not begun */
	int64_t last_command; /* the rate limit's clock, in ms */
	int64_t created, updated, finished;
	int64_t devices; /* rows */
};

struct srv_rollout_list {
	size_t n;
	struct srv_rollout_row *v;
};
void srv_rollout_row_free(struct srv_rollout_row *r);
void srv_rollout_list_free(struct srv_rollout_list *l);

/* One rollout; FL_ENOTFOUND. */
int srv_store_rollout_get(struct srv_store *s, const char *id,
			  struct srv_rollout_row *ret, struct fl_error *err);

/*
 * Rollouts newest first, at most @limit (default 100); with @active only
 * those still running, paused or rolling back (oldest first: the
 * engine's order).
 */
int srv_store_rollout_list(struct srv_store *s, bool active, int limit,
			   struct srv_rollout_list *ret, struct fl_error *err);

struct srv_rollout_wave_row {
	int64_t index; /* 0-based */
	char *stop;
	int64_t devices, started, done; /* done: all its devices finished */
};

struct srv_rollout_wave_list {
	size_t n;
	struct srv_rollout_wave_row *v;
};
void srv_rollout_wave_list_free(struct srv_rollout_wave_list *l);

/* How many devices of @wave are in @state. */
struct srv_rollout_count {
	int64_t wave;
	char *state;
	int64_t n;
};

struct srv_rollout_count_list {
	size_t n;
	struct srv_rollout_count *v;
};
void srv_rollout_count_list_free(struct srv_rollout_count_list *l);

/* The waves of @id, and the device counts by wave and state. */
int srv_store_rollout_waves(struct srv_store *s, const char *id,
			    struct srv_rollout_wave_list *ret,
			    struct fl_error *err);
int srv_store_rollout_counts(struct srv_store *s, const char *id,
			     struct srv_rollout_count_list *ret,
			     struct fl_error *err);

struct srv_rollout_device_row {
	char *device, *state, *job, *rollback_job, *from_version, *reason;
	int64_t wave, pos;
	int64_t commanded, sent, sends, finished, updated;
};

struct srv_rollout_device_list {
	size_t n;
	struct srv_rollout_device_row *v;
};
void srv_rollout_device_row_free(struct srv_rollout_device_row *d);
void srv_rollout_device_list_free(struct srv_rollout_device_list *l);

/*
 * The device rows of @id in rollout order; with @failures only the
 * failed and rollback-failed ones, newest first, at most @limit
 * (0: all).
 */
int srv_store_rollout_devices(struct srv_store *s, const char *id,
			      bool failures, int limit,
			      struct srv_rollout_device_list *ret,
			      struct fl_error *err);

/* One entry of a rollout's decision log. */
struct srv_rollout_event {
	int64_t id, time, wave; /* wave -1: none */
	char *kind, *device, *detail;
};

struct srv_rollout_event_list {
	size_t n;
	struct srv_rollout_event *v;
};
void srv_rollout_event_list_free(struct srv_rollout_event_list *l);

/* The newest @limit entries of @id's log, newest first. */
int srv_store_rollout_events(struct srv_store *s, const char *id, int limit,
			     struct srv_rollout_event_list *ret,
			     struct fl_error *err);

/*
 * An operator's move (common/rollout.h: pause, resume, abort, rollback)
 * by @actor, in one transaction with what it implies:
 *   pause:    paused, reason "paused by ACTOR".
 *   resume:   running; after a gate trip, the failures so far are
 *             accepted (the gate counts from here on).
 *   abort:    aborted: pending rows skipped, open update jobs cancelled
 *             (their rows "cancelled"), every row released.
 *   rollback: rolling-back, reason "rollback by ACTOR"; from completed,
 *             the rows that may need it hold their devices again.
 * FL_ENOTFOUND; FL_ECONFLICT when the move is illegal from the
 * rollout's state ("rollout X is completed: cannot pause") or a device
 * to roll back is active in another rollout.  *@ret_cancelled (may be
 * NULL) gets the ids of the jobs an abort cancelled, so the caller can
 * tell their devices.
 */
int srv_store_rollout_action(struct srv_store *s, const char *id, int action,
			     const char *actor, int64_t now,
			     struct srv_strv *ret_cancelled,
			     struct fl_error *err);

/* --- the engine (store_sqlite_engine.c) --- */

/*
 * Take or renew lease @name for @holder until @now + @ttl: granted when
 * nobody holds it, @holder does, or the holder's lease ended.
 * FL_ECONFLICT otherwise, *@ret_holder (may be NULL) the holder.
 */
int srv_store_lease_take(struct srv_store *s, const char *name,
			 const char *holder, int64_t now, int64_t ttl,
			 char **ret_holder, struct fl_error *err);

/* The ids of up to @limit pending devices of @wave, in rollout order. */
int srv_store_rollout_pending(struct srv_store *s, const char *id,
			      int64_t wave, int limit, struct srv_strv *ret,
			      struct fl_error *err);

/* A device row as the engine watches it, with its jobs and device. */
struct srv_rollout_watch_row {
	char *device, *state, *reason;
	int64_t wave, pos;
	int64_t commanded, sent, sends, finished, offline_since;
	bool cancel_sent;
	char *from_version;
	/* the update job; then the rollback job (NULL strings: none) */
	char *job, *command, *job_state, *job_stage, *job_reason;
	bool job_final;
	int64_t job_seq; /* 0: the device never reported on it */
	char *rb_job, *rb_command, *rb_state, *rb_stage, *rb_reason;
	bool rb_final;
	int64_t rb_seq;
	/* the device now */
	char *dev_state, *dev_firmware, *dev_health;
	bool dev_online;
};

struct srv_rollout_watch_list {
	size_t n;
	struct srv_rollout_watch_row *v;
};
void srv_rollout_watch_list_free(struct srv_rollout_watch_list *l);

/*
 * The rows of @id the engine looks at: commanded, updated and
 * rolling-back ones; healthy ones of wave @healthy_wave (-1: none, e.g.
 * the current wave while it soaks) whose device the health watch would
 * judge (inactive, unhealthy, on other firmware, offline, or back
 * online); and with @all every other one too (rolling back: which
 * updated devices need it).  In rollout order.
 */
int srv_store_rollout_watch(struct srv_store *s, const char *id,
			    int64_t healthy_wave, bool all,
			    struct srv_rollout_watch_list *ret,
			    struct fl_error *err);

/* A decision about one device row. */
struct srv_rollout_change {
	const char *device;
	const char *from;   /* only if the row is still in this state */
	const char *to;     /* new state; NULL keeps it */
	const char *reason; /* NULL keeps it */
	bool finished;      /* set its finished time to now */
	int64_t offline_since; /* -1 keep, 0 clear, else set */
	bool cancel_sent;   /* a cancel goes out for its open job */
	const char *event;  /* logged with @reason; NULL: not logged */
};

/*
 * Apply @n changes to rollout @id in one transaction (a change whose row
 * left state @from meanwhile is skipped).  *@ret_applied (may be NULL)
 * gets how many applied.
 */
int srv_store_rollout_apply(struct srv_store *s, const char *id,
			    const struct srv_rollout_change *c, size_t n,
			    int64_t now, size_t *ret_applied,
			    struct fl_error *err);

/* Commanding one device: an update (row pending, rollout running) or a
 * rollback (rollout rolling back; job->type "rollback"). */
struct srv_rollout_cmd {
	const char *device;
	const struct srv_job *job; /* id and command chosen by the caller */
	/* out: 0 commanded; FL_ECONFLICT the device had another open job
	 * (the row is skipped, or rollback-failed, with that reason);
	 * FL_ENOTFOUND the row was no longer waiting for this (nothing
	 * written, nothing to send) */
	int result;
};

/*
 * Write each command in @cmds in one transaction: the job row (state
 * queued, its command id already set) and the device row (commanded or
 * rolling-back, with the job, from_version, commanded now, not sent),
 * and the log, and sets the rollout's rate clock (last_command) to
 * @clock.  Only then may the caller send the commands.  The whole
 * batch fails with FL_ECONFLICT when the rollout left the state that
 * commands need (running; rolling-back for rollbacks).
 */
int srv_store_rollout_command(struct srv_store *s, const char *id,
			      struct srv_rollout_cmd *cmds, size_t n,
			      int64_t now, int64_t clock, struct fl_error *err);

/* The command of each of @devices went out at @now (sends + 1). */
int srv_store_rollout_sent(struct srv_store *s, const char *id,
			   const char *const *devices, size_t n, int64_t now,
			   struct fl_error *err);

/* A rollout-level decision by the engine. */
struct srv_rollout_step {
	const char *from;   /* only if the rollout is still in this state */
	const char *to;     /* NULL keeps it */
	const char *reason; /* NULL keeps it */
	int64_t wave;       /* -1 keeps it; else that wave starts now */
	int64_t soak_until; /* -1 keeps it */
	int64_t wave_done;  /* -1; else that wave is marked done now */
	int tripped;        /* -1 keeps it, 0 or 1 */
	bool skip_pending;  /* pending rows become skipped */
	bool release;       /* every row gives its device back; finished */
	const char *event;  /* logged and audited with @detail */
	const char *detail;
	const char *actor;  /* for the audit log */
};

/* Apply @st to rollout @id in one transaction; FL_ECONFLICT when the
 * rollout left state @st->from. */
int srv_store_rollout_step(struct srv_store *s, const char *id,
			   const struct srv_rollout_step *st, int64_t now,
			   struct fl_error *err);

#endif
