/* SPDX-License-Identifier: MIT */
#ifndef AGENT_BOOT_H
#define AGENT_BOOT_H

/*
 * Bootloader backends behind one interface (DESIGN §6).  The agent keeps
 * its A/B slot protocol in bootloader variables:
 *
 *   fleet_slot          "a" or "b": the slot the bootloader boots
 *   fleet_try           slot under trial since the last switch, or unset
 *   upgrade_available   "1" while a new slot is on trial (boot counting on)
 *   bootcount           boots of the trial slot so far
 *   bootlimit           failed boots allowed before falling back
 *
 * Backends: "uboot" (libubootenv on the devices of a fw_env.config),
 * "grub" (a grubenv file, written with grub-editenv) and "sim" (the U-Boot
 * environment format on two files in a directory, through the same
 * libubootenv code; the directory also holds a fw_env.config so
 * `fw_printenv -c DIR/fw_env.config` reads it).  Every transition is one
 * durable, atomic write.  docs/bootloader.md has the protocol, the U-Boot
 * and GRUB scripts and the power-loss argument.
 */
#include <stdbool.h>

#include "err.h"

#define AGENT_BOOT_LIMIT_MAX 100	 /* largest bootlimit accepted */
#define AGENT_BOOT_COUNT_MAX 1000000	 /* largest bootcount accepted */
#define AGENT_BOOT_GRUBENV_MAX 65536	 /* largest grubenv file read */
#define AGENT_BOOT_TOOL_TIMEOUT_MS 10000 /* bound on one grub-editenv run */

/* Names of the variables, shared with the bootloader scripts. */
#define AGENT_BOOT_VAR_SLOT "fleet_slot"
#define AGENT_BOOT_VAR_TRY "fleet_try"
#define AGENT_BOOT_VAR_UPGRADE "upgrade_available"
#define AGENT_BOOT_VAR_COUNT "bootcount"
#define AGENT_BOOT_VAR_LIMIT "bootlimit"

struct agent_boot;

struct agent_boot_opts {
	/* "uboot", "grub" or "sim" */
	const char *backend;
	/* uboot: fw_env.config path; grub: grubenv path; sim: directory */
	const char *path;
	/* uboot only, optional: a "name=value" file that agent_boot_init
	 * starts from when no valid environment is stored (like
	 * `fw_setenv -f`).  Without it init refuses an invalid U-Boot
	 * environment rather than write one lacking bootcmd. */
	const char *default_env;
	/* grub only, optional: the grub-editenv program (default
	 * "grub-editenv", looked up in PATH) */
	const char *editenv;
	/* grub only, optional: bound on one grub-editenv run in ms (0:
	 * AGENT_BOOT_TOOL_TIMEOUT_MS) */
	int tool_timeout_ms;
};

/* What the bootloader variables say, validated. */
struct agent_boot_state {
	char slot[2];		/* "a" or "b" */
	char try_slot[2];	/* "a", "b", or "" when no trial is recorded */
	bool upgrade_available; /* a trial is running: boots are counted */
	unsigned bootcount;	/* 0..AGENT_BOOT_COUNT_MAX */
	unsigned bootlimit; /* 0 (unset: no fallback)..AGENT_BOOT_LIMIT_MAX */
};

enum agent_boot_phase {
	AGENT_BOOT_STABLE,   /* no trial: the booted slot is the good one */
	AGENT_BOOT_TRYING,   /* the booted slot is on trial: check health */
	AGENT_BOOT_FELL_BACK /* the trial slot failed and the bootloader
			      * went back to the other slot */
};

/* Result of one simulated power-on (agent_boot_sim_step). */
struct agent_boot_step {
	char booted[2];	    /* slot started */
	bool fell_back;	    /* this boot exceeded bootlimit and switched */
	unsigned bootcount; /* bootcount after the step */
};

/* True if @slot is "a" or "b". */
bool agent_boot_valid_slot(const char *slot);

/* The other slot: "b" for "a", "a" for "b", NULL for anything else. */
const char *agent_boot_other_slot(const char *slot);

/*
 * Open a backend.  Copies what it needs from @opts.  "sim" creates the
 * directory, its fw_env.config and two zero-filled environment files
 * (erased flash) when missing; the others write nothing.  On success
 * *ret_boot is set; free it with agent_boot_close.
 * Returns 0, FL_EINVAL (unknown backend, bad path), FL_EIO, FL_EPARSE
 * (fw_env.config rejected by libubootenv).
 */
int agent_boot_open(const struct agent_boot_opts *opts,
		    struct agent_boot **ret_boot, struct fl_error *err);

/* Release a backend; accepts NULL. */
void agent_boot_close(struct agent_boot *boot);

/* The backend name ("uboot", "grub", "sim"). */
const char *agent_boot_backend(const struct agent_boot *boot);

/*
 * Provisioning: make the environment hold valid fleet variables.  When
 * fleet_slot is missing it writes fleet_slot=@slot, upgrade_available=0,
 * bootcount=0, bootlimit=@bootlimit (1..AGENT_BOOT_LIMIT_MAX) in one
 * write.  When they are present and valid it changes nothing, except
 * setting bootlimit when it is unset.  With no valid environment stored
 * (missing or corrupt) "sim" and "grub" write a fresh one; "uboot" starts
 * from opts->default_env and refuses with FL_EPARSE without it.
 * Returns 0, FL_EINVAL, FL_EPARSE (fleet variables present but invalid),
 * FL_EIO, FL_ETIMEOUT.
 */
int agent_boot_init(struct agent_boot *boot, const char *slot,
		    unsigned bootlimit, struct fl_error *err);

/*
 * Read and validate the variables into *ret_state.
 * Returns 0, FL_ENOTFOUND (no fleet_slot: run agent_boot_init), FL_EPARSE
 * (no valid environment, or a value out of range), FL_EIO.
 */
int agent_boot_read(struct agent_boot *boot, struct agent_boot_state *ret_state,
		    struct fl_error *err);

/* Where a state stands in the protocol (see enum agent_boot_phase). */
enum agent_boot_phase agent_boot_phase(const struct agent_boot_state *state);

/*
 * Make @target the slot to try on the next boot: fleet_slot=@target,
 * fleet_try=@target, upgrade_available=1, bootcount=0, in one atomic
 * write.  Call it only after the slot's image is fully written and
 * verified: this write is what makes the new slot bootable.
 * Returns 0, FL_EINVAL (@target invalid or already the booted slot, or
 * bootlimit unset so a failing slot would never fall back), FL_ECONFLICT
 * (a trial is still running), FL_ENOTFOUND, FL_EPARSE, FL_EIO,
 * FL_ETIMEOUT.
 */
int agent_boot_prepare_switch(struct agent_boot *boot, const char *target,
			      struct fl_error *err);

/*
 * The booted slot is good: upgrade_available=0, bootcount=0, fleet_try
 * cleared.  Also acknowledges a fall-back (clears fleet_try).  Writes
 * nothing when there is nothing to clear.
 * Returns 0, FL_ENOTFOUND, FL_EPARSE, FL_EIO, FL_ETIMEOUT.
 */
int agent_boot_mark_good(struct agent_boot *boot, struct fl_error *err);

/*
 * Switch to the other slot on request (the previous firmware), as a
 * trial: fleet_slot=fleet_try=other, upgrade_available=1, bootcount=0.
 * The caller reboots, checks health and calls agent_boot_mark_good like
 * after an update; if the old slot no longer boots (say it was partly
 * overwritten by a later download), the bootloader returns to the
 * current slot after bootlimit boots.  Also ends a running trial.  If
 * @ret_slot is not NULL it receives the slot now selected.
 * Returns 0, FL_EINVAL (bootlimit unset), FL_ENOTFOUND, FL_EPARSE,
 * FL_EIO, FL_ETIMEOUT.
 */
int agent_boot_rollback(struct agent_boot *boot, char ret_slot[2],
			struct fl_error *err);

/*
 * Do what the bootloader does at power-on, on the stored variables: when
 * upgrade_available is set, count the boot; when bootcount then exceeds
 * bootlimit, switch to the other slot and clear upgrade_available and
 * bootcount (U-Boot's altbootcmd), keeping fleet_try so the agent sees the
 * fall-back.  Meant for "sim"; works on every backend (tests).
 * Returns 0, FL_ENOTFOUND, FL_EPARSE, FL_EIO, FL_ETIMEOUT.
 */
int agent_boot_sim_step(struct agent_boot *boot, struct agent_boot_step *ret,
			struct fl_error *err);

/*
 * Keep the U-Boot environment library (libubootenv, loaded on first use
 * and unmapped after each access: lazy_ubootenv.c) mapped for the rest
 * of the process.  For fleet-sim, whose thousands of devices access
 * their environments all the time: a dlopen and dlclose per access
 * would cost more than the access.  Returns 0 or FL_ERR (the library
 * cannot be loaded).
 */
int agent_boot_keep_loaded(struct fl_error *err);

#endif
