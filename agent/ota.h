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
 * Files: ota.c (life cycle, commands, events, dispatch), ota_install.c
 * (download, verify, write the slot), ota_boot.c (switch, reboot,
 * health check, fall-back), sim.c (the simulated device).
 */
#include <stdbool.h>

#include <jansson.h>

#include "agent_config.h"
#include "boot.h"
#include "err.h"

struct agent;
struct agent_ota;

#define AGENT_PARTIAL_FILE "bundle.partial"
#define AGENT_SIM_BOOT_FILE "boot-count"
#define AGENT_SIM_VERSION_TIMEOUT_MS 5000

/*
 * Set up OTA for @a (at agent start, after the command log is open):
 * open the bootloader backend when [boot] and [slots] are configured,
 * load the journal, learn the booted slot, the boot ids and what the
 * slots hold.  A journal that does not load is kept aside as
 * ota.json.corrupt and replaced by an empty one.  Returns 0, or the
 * bootloader's codes (FL_EPARSE, FL_EIO, ...) when it cannot be read.
 */
int agent_ota_new(struct agent *a, struct agent_ota **ret,
		  struct fl_error *err);

/* Free; NULL is fine. */
void agent_ota_free(struct agent_ota *o);

/*
 * At start-up, before interrupted commands are failed: finish the
 * command of a job that reached its final state without the command
 * being completed.  Returns true when @cmd_id belongs to the running
 * job (so it is not failed as interrupted).
 */
bool agent_ota_owns_cmd(const struct agent_ota *o, const char *cmd_id);
void agent_ota_reconcile(struct agent *a);

/* From agent_step: carry the running job forward (may block for a
 * download or a health check, pumping MQTT meanwhile). */
void agent_ota_tick(struct agent *a);

/* After every (re)connect: queue the current state of a job that is not
 * final as a progress event again (final events: evq.h). */
void agent_ota_on_connect(struct agent *a);

/* True once the job asked for a reboot: agent_run returns, and the
 * program reboots (or, in sim mode, restarts itself). */
bool agent_ota_reboot_requested(const struct agent_ota *o);

/* For presence and status (NULL when unknown): firmware version of the
 * booted slot, the booted slot, health ("ok", "checking", "failed"). */
const char *agent_ota_firmware(const struct agent_ota *o);
const char *agent_ota_slot(const struct agent_ota *o);
const char *agent_ota_health(const struct agent_ota *o);

/* {"id", "type", "state", "bytes"?, "total"?} of the job, or null
 * (caller decrefs). */
json_t *agent_ota_job_brief(const struct agent_ota *o);

/*
 * What `fleet-agent status` shows about updates, added to @into: the
 * bootloader variables and phase, the slots with their versions, the
 * floor, the trust root version, the job.  Reads only.  Returns 0, or
 * the journal's and bootloader's codes.
 */
int agent_ota_status(const struct agent_config *cfg, json_t *into,
		     struct fl_error *err);

/* ------------------------------------------------------------------ */
/* Sim mode (sim.c)                                                   */
/* ------------------------------------------------------------------ */

/* What agent_sim_power_on did. */
struct agent_sim_boot {
	struct agent_boot_step step;
	unsigned long long boot; /* boot number, 1 for the first */
};

/*
 * Make @dir a simulated device: the sim bootloader environment (slot
 * a, @bootlimit), @image copied to DIR/slot-a (0755).  Refuses a
 * directory that already holds slot-a (FL_ECONFLICT).  Returns 0,
 * FL_ECONFLICT, FL_EINVAL, FL_ENOTFOUND (no @image), FL_EIO.
 */
int agent_sim_init(const char *dir, const char *image, unsigned bootlimit,
		   struct fl_error *err);

/*
 * A power-on of the simulated device: the bootloader step (boot count,
 * fall-back; agent_boot_sim_step) and the boot number DIR/boot-count
 * counted up, which stands for the kernel's boot id in sim mode.
 * Returns 0, FL_ENOTFOUND (not a sim directory: run sim-init), the
 * bootloader's codes.
 */
int agent_sim_power_on(const char *dir, struct agent_sim_boot *ret,
		       struct fl_error *err);

#endif
