/* SPDX-License-Identifier: MIT */
#ifndef SRV_ROLLOUTS_H
#define SRV_ROLLOUTS_H

/*
 * Staged rollouts (DESIGN §7, docs/protocol.md "Rollouts",
 * docs/decisions.md "Rollouts live in the store"): the service the API
 * calls (plan, create, show, operators' moves) and the engine fleetd's
 * main loop ticks.  Everything that matters is in the store; the engine
 * is a loop over it and can stop anywhere.
 */
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "rollout.h"
#include "rollout_plan.h"
#include "rollout_rules.h"
#include "store.h"

struct srv;

/* The lease the engine holds, and how long one tick's renewal lasts. */
#define SRV_ROLLOUT_LEASE "rollout-engine"
#define SRV_ROLLOUT_LEASE_TTL 15
/* Commands written per transaction (the rest wait for the next one). */
#define SRV_ROLLOUT_BATCH 1000

/* A plan as the API shows it (api_json.c: api_rollout_plan_json). */
struct srv_rollout_preview {
	char id[FL_ID_MAX + 1];
	bool generated; /* fleetd picked the id */
	struct srv_bundle_row bundle;
	json_t *spec; /* srv_rollout_spec_json */
	struct srv_rollout_plan plan;
	struct srv_strv busy; /* "DEVICE (rollout ID)", "DEVICE (job ID)" */
};
void srv_rollout_preview_release(struct srv_rollout_preview *p);

/*
 * Plan the rollout @body describes (rollout_spec.h) without writing
 * anything.  FL_ENOTFOUND for an unknown bundle or named device, the
 * spec's and the plan's own codes (FL_EINVAL: empty target, waves that
 * do not add up, ...).  Busy devices are listed, not refused.
 */
int srv_rollout_plan(struct srv *srv, const json_t *body,
		     struct srv_rollout_preview *ret, struct fl_error *err);

/*
 * Plan and record it (running, wave 1 started) in one transaction, by
 * @actor at @now; *@ret_id (FL_ID_MAX + 1 bytes) gets its id.  The
 * codes of srv_rollout_plan, and FL_ECONFLICT for an existing id or busy
 * devices (named in the message).
 */
int srv_rollout_create(struct srv *srv, const json_t *body, const char *actor,
		       int64_t now, char *ret_id, struct fl_error *err);

/* What GET /api/v1/rollouts/:id shows (api_rollout_json). */
struct srv_rollout_view {
	struct srv_rollout_row row;
	struct srv_rollout_wave_list waves;
	struct srv_rollout_count_list counts;
	struct srv_rollout_gate gate;
	struct srv_rollout_device_list failures; /* the newest 10 */
	struct srv_rollout_device_list devices;	 /* with @devices only */
	struct srv_rollout_event_list events;	 /* with @events only */
	bool with_devices, with_events;
};
void srv_rollout_view_release(struct srv_rollout_view *v);

/* Read rollout @id for showing; FL_ENOTFOUND. */
int srv_rollout_view(struct srv *srv, const char *id, bool devices, bool events,
		     struct srv_rollout_view *ret, struct fl_error *err);

/*
 * An operator's @action on rollout @id (store_rollouts.h
 * srv_store_rollout_action); an abort also tells the devices whose jobs
 * it cancelled (best effort).  FL_ENOTFOUND, FL_ECONFLICT.
 */
int srv_rollout_act(struct srv *srv, const char *id,
		    enum fl_rollout_action action, const char *actor,
		    int64_t now, struct fl_error *err);

/*
 * One pass of the engine at @now, when this fleetd holds (or takes) the
 * engine's lease: every running, paused or rolling-back rollout is
 * brought forward from what the store says (rollout_engine.c).  Errors
 * are logged; the next tick tries again.  A replica takes or renews
 * the lease at every tick, rollouts or not, so that one of them is
 * always the engine (srv->engine_held says whether it is this one).
 */
void srv_rollouts_tick(struct srv *srv, int64_t now);

/* A replica's engine lease handed back at @now (fleetd stops): another
 * replica takes the engine over at its next tick, not after the TTL. */
void srv_rollouts_release(struct srv *srv, int64_t now);

#endif
