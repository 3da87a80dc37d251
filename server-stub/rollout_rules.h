/* SPDX-License-Identifier: MIT */
#ifndef SRV_ROLLOUT_RULES_H
#define SRV_ROLLOUT_RULES_H

/*
 * The rollout engine's judgements as pure functions (DESIGN §7): the
 * failure gate, the verdict on one watched device row, and whether an
 * updated device needs a rollback.  No store, no clock: the engine
 * (rollout_engine.c) passes rows and the time in.
 */
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* Every state of a rollout's device row (store_rollouts.h), in the
 * order the API lists their counts; NULL-terminated. */
extern const char *const srv_rollout_device_states[];

/* A device offline this long during its health window or soak fails
 * (shorter gaps: a reboot, fleetd or the broker restarting). */
#define SRV_ROLLOUT_OFFLINE_GRACE 30
/* A command the device never answered is sent again this often while
 * the device is online (same command id: the agent runs it once). */
#define SRV_ROLLOUT_RESEND 60

/*
 * The gate: it trips when failed >= 1, failed * 100 > percent *
 * finished, and finished >= needed = min(min_sample, started), where
 * finished = healthy + failed devices and started = the devices of the
 * waves started so far that were not skipped (all after subtracting what
 * a resume accepted).
 */
struct srv_rollout_gate {
	int64_t failed, finished, started;
	int64_t percent, min_sample;
	int64_t needed; /* out */
	bool tripped;	/* out */
};

/* Fill g->needed and g->tripped from the other members. */
void srv_rollout_gate_eval(struct srv_rollout_gate *g);

/* The gate of rollout @r from its device counts @c, evaluated. */
void srv_rollout_gate_of(const struct srv_rollout_row *r,
			 const struct srv_rollout_count_list *c,
			 struct srv_rollout_gate *ret);

/* "gate tripped: 2 of 3 finished devices failed (66% > 10%)" into
 * @buf. */
void srv_rollout_gate_text(const struct srv_rollout_gate *g, char *buf,
			   size_t len);

/* What the engine decides about one watched row. */
enum srv_rollout_verdict_kind {
	SRV_VERDICT_NONE = 0,	     /* nothing changes (see offline_since) */
	SRV_VERDICT_UPDATED,	     /* commanded -> updated */
	SRV_VERDICT_HEALTHY,	     /* updated -> healthy */
	SRV_VERDICT_FAILED,	     /* -> failed, with the reason */
	SRV_VERDICT_ROLLED_BACK,     /* rolling-back -> rolled-back */
	SRV_VERDICT_ROLLBACK_FAILED, /* rolling-back -> rollback-failed */
};

struct srv_rollout_verdict {
	enum srv_rollout_verdict_kind kind;
	int64_t offline_since; /* -1 keep, 0 clear, else the time to set */
	bool resend;	       /* send the row's open command again */
	char reason[320];
};

/*
 * Judge @w at @now for a rollout to firmware @version with a health
 * window of @window seconds:
 *   commanded: its job final -> updated (succeeded) or failed (with the
 *     job's state, stage and reason); a decommissioned device fails; an
 *     open job's command is resent when never sent, or when the device
 *     is online, never reported on it, and SRV_ROLLOUT_RESEND passed or
 *     it went out before @presence_since (before fleetd's MQTT link
 *     came up: it may have died with fleetd or the broker).
 *   updated, healthy: fails when the device reports health "failed",
 *     firmware other than @version, is decommissioned, or stays offline
 *     SRV_ROLLOUT_OFFLINE_GRACE seconds (offline_since tracks it); an
 *     updated one becomes healthy once @window passed since it finished
 *     and it is online.
 *   rolling-back: its rollback job final -> rolled-back (succeeded) or
 *     rollback-failed; resends as for commanded.
 * Other states: nothing.  @presence_since: since when fleetd has learnt
 * presence without a break (its MQTT link up since then; 0: always), or
 * -1 while it learns none (the link is down): then being offline
 * neither fails a device nor starts or clears its offline time.  The
 * grace counts from offline_since or @presence_since, the later: a
 * fleetd that restarted or got its broker back gives every device the
 * whole grace to come back.
 */
void srv_rollout_judge(const struct srv_rollout_watch_row *w,
		       const char *version, int64_t window, int64_t now,
		       int64_t presence_since, struct srv_rollout_verdict *v);

/*
 * Does this rollout's device need a rollback to leave @version?  An
 * updated or healthy device does, a failed one when its update job
 * succeeded or it reports @version; never one that reports its
 * from_version again.
 */
bool srv_rollout_needs_rollback(const struct srv_rollout_watch_row *w,
				const char *version);

#endif
