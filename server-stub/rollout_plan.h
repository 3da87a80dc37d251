/* SPDX-License-Identifier: MIT */
#ifndef SRV_ROLLOUT_PLAN_H
#define SRV_ROLLOUT_PLAN_H

/*
 * Which devices a rollout takes, in which order and wave (DESIGN §7):
 * pure functions over the spec and device rows, so `rollout plan` and
 * `rollout create` compute exactly the same thing.
 *
 * Order: the canaries first, as named; then every other targeted device
 * by SHA-256(rollout id || "\0" || device id), bytes compared as
 * unsigned, ties (never seen) by device id.  Waves: wave k takes the
 * next devices in that order up to its stop (fl_wave_stop_resolve); the
 * first wave takes at least all the canaries; a wave left with no device
 * is dropped, with a note.
 */
#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "rollout_spec.h"
#include "store.h"

/* A wave as planned. */
struct srv_plan_wave {
	struct fl_wave_stop stop;
	size_t first, count; /* positions in the plan's order */
};

/* A device that matched but is left out, and why. */
struct srv_plan_excluded {
	char *device, *reason;
};

struct srv_rollout_plan {
	size_t n;       /* devices targeted */
	char **order;   /* their ids in rollout order */
	size_t n_waves; /* non-empty waves */
	struct srv_plan_wave waves[FL_WAVES_MAX];
	size_t n_excluded;
	struct srv_plan_excluded *excluded;
	struct srv_strv notes; /* "wave 2 (10%) is empty and was dropped" */
};

void srv_rollout_plan_free(struct srv_rollout_plan *p);

/*
 * Plan rollout @id of @spec, to firmware @version, over @devices: the
 * device rows the store found (srv_store_rollout_candidates: the
 * explicit target.devices, or the active devices of target.group, with
 * labels and firmware).  A device is targeted when it is active and
 * matches every criterion of the target (group, labels, the label
 * "hardware", the firmware "version"); it is excluded, with the reason,
 * when it already runs @version or, for an explicitly named device, when
 * it is decommissioned or misses a criterion.  Fails with FL_ENOTFOUND
 * for an explicitly named device @devices lacks, FL_EINVAL for an empty
 * target, a canary outside it, or waves that do not add up for its size.
 */
int srv_rollout_plan_make(const struct srv_rollout_spec *spec, const char *id,
			  const char *version,
			  const struct srv_device_list *devices,
			  struct srv_rollout_plan *ret, struct fl_error *err);

/* The wave (0-based) of position @pos in @p; p->n_waves if none. */
size_t srv_rollout_plan_wave_of(const struct srv_rollout_plan *p, size_t pos);

#endif
