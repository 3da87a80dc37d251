/* SPDX-License-Identifier: MIT */
#ifndef AGENT_OTA_H
#define AGENT_OTA_H

/*
 * Updates and rollbacks on the device (issue 5, DESIGN §6, docs/ota.md):
 * the job state machine behind the "update" and "rollback" commands.
 *
 *   queued -> downloading -> verifying -> installing -> installed
 *          -> rebooting -> health-check -> succeeded
 *   failed (stage, reason) | rolled-back (reason)
 *
 * Every step is written to the journal (journal.h) before it is taken,
 * every transition is published on fleet/ID/events, and at start-up the
 * journal, the bootloader variables (boot.h) and whether the device has
 * rebooted since the journal asked for it decide how to go on, so that
 * kill -9 or a power cut at any point ends in a good slot and a
 * truthful final state.
 *
 * Files: ota.c (life cycle, commands, events, dispatch, the feature),
 * ota_install.c (download, verify, write the slot), ota_boot.c (switch,
 * reboot, health check, fall-back), simdev.c (the simulated device).
 */

#include <stdbool.h>

#include "journal.h"

/* The head of the bundle being installed (stream.h): its bytes before
 * the payload, kept for a resumed download. */
#define AGENT_HEAD_FILE "bundle.head"

/* What fleet-sim counts of a device: the booted firmware (NULL when
 * unknown or updates are off) and the current or last job (job_id NULL:
 * none).  The strings point into the feature's state: valid until the
 * agent's next step. */
struct agent_ota_brief {
	const char *firmware;
	const char *job_id;
	enum agent_job_type job_type;
	enum agent_job_state job_state;
	bool job_final;
};

/* The brief of the OTA feature's @state (agent_feature_state with
 * agent_feature_ota; NULL is fine). */
void agent_ota_brief(const void *state, struct agent_ota_brief *ret);

/* The feature (feature.h) is agent_feature_ota: it owns "update",
 * "rollback" and "cancel". */

#endif
