/* SPDX-License-Identifier: MIT */
#ifndef AGENT_BOOT_INTERNAL_H
#define AGENT_BOOT_INTERNAL_H

/*
 * Private to agent/boot*.c: the table each backend fills.  The generic
 * layer (boot.c) validates values and decides transitions; a backend only
 * loads and stores the five variables as strings.
 */
#include <stdbool.h>

#include "boot.h"

enum boot_var {
	BOOT_VAR_SLOT,
	BOOT_VAR_TRY,
	BOOT_VAR_UPGRADE,
	BOOT_VAR_COUNT,
	BOOT_VAR_LIMIT,
	BOOT_NVARS
};

/* Longest value accepted; backends hand back what is stored (bounded by
 * the environment size) and the generic layer rejects longer ones. */
#define BOOT_VALUE_MAX 64

/* Values by enum boot_var; NULL = unset.  Owned by the struct. */
struct boot_vars {
	char *v[BOOT_NVARS];
};

extern const char *const boot_var_names[BOOT_NVARS];

void boot_vars_release(struct boot_vars *vars);

struct boot_ops {
	const char *name;
	/* Set up b->priv from @opts. */
	int (*open)(struct agent_boot *b, const struct agent_boot_opts *opts,
		    struct fl_error *err);
	/* Free b->priv. */
	void (*close)(struct agent_boot *b);
	/* Load the variables (missing ones NULL).  FL_EPARSE when no valid
	 * environment is stored, FL_ENOTFOUND when the store is absent. */
	int (*load)(struct agent_boot *b, struct boot_vars *ret,
		    struct fl_error *err);
	/* Store every variable in one durable, atomic write (NULL removes
	 * it).  With @fresh, a missing or invalid environment is replaced
	 * by a new one instead of failing. */
	int (*store)(struct agent_boot *b, const struct boot_vars *vars,
		     bool fresh, struct fl_error *err);
};

struct agent_boot {
	const struct boot_ops *ops;
	void *priv;
};

extern const struct boot_ops boot_uboot_ops;
extern const struct boot_ops boot_sim_ops;
extern const struct boot_ops boot_grub_ops;

/* Map libubootenv for one access (agent/lazy_ubootenv.c). */
int boot_ubootenv_hold(struct fl_error *err);
void boot_ubootenv_drop(void);

#endif
