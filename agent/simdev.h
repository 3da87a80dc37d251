/* SPDX-License-Identifier: MIT */
#ifndef AGENT_SIMDEV_H
#define AGENT_SIMDEV_H

/*
 * The sim device (simdev.c): one simulated device of sim mode, a
 * directory with the "sim" bootloader environment, file-backed slots
 * and a boot counter (`fleet-agent sim-init`, `run --sim DIR`).  Not
 * the fleet simulator (fleet-sim), which runs many agents.
 */
#include "boot.h"
#include "err.h"

#define AGENT_SIMDEV_BOOT_FILE "boot-count"
#define AGENT_SIMDEV_VERSION_TIMEOUT_MS 5000

/* What agent_simdev_power_on did. */
struct agent_simdev_boot {
	struct agent_boot_step step;
	unsigned long long boot; /* boot number, 1 for the first */
};

/*
 * Make @dir a sim device: the sim bootloader environment (slot a,
 * @bootlimit), @image copied to DIR/slot-a (0755).  Refuses a directory
 * that already holds slot-a (FL_ECONFLICT).  Returns 0, FL_ECONFLICT,
 * FL_EINVAL, FL_ENOTFOUND (no @image), FL_EIO.
 */
int agent_simdev_init(const char *dir, const char *image, unsigned bootlimit,
		      struct fl_error *err);

/*
 * A power-on of the sim device: the bootloader step (boot count,
 * fall-back; agent_boot_sim_step) and the boot number DIR/boot-count
 * counted up, which stands for the kernel's boot id in sim mode.
 * Returns 0, FL_ENOTFOUND (not a sim device: run sim-init), the
 * bootloader's codes.
 */
int agent_simdev_power_on(const char *dir, struct agent_simdev_boot *ret,
			  struct fl_error *err);

#endif
