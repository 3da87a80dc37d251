/* SPDX-License-Identifier: MIT */
/*
 * The A/B boot protocol on top of the bootloader backends: validation of
 * every value read, and the transitions the OTA state machine needs.
 * Each transition reads the variables, decides, and hands the backend
 * the complete new set to store in one atomic write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot_internal.h"
#include "util.h"

const char *const boot_var_names[BOOT_NVARS] = {
    [BOOT_VAR_SLOT] = AGENT_BOOT_VAR_SLOT,
    [BOOT_VAR_TRY] = AGENT_BOOT_VAR_TRY,
    [BOOT_VAR_UPGRADE] = AGENT_BOOT_VAR_UPGRADE,
    [BOOT_VAR_COUNT] = AGENT_BOOT_VAR_COUNT,
    [BOOT_VAR_LIMIT] = AGENT_BOOT_VAR_LIMIT,
};

static const struct boot_ops *const backends[] = {
    &boot_uboot_ops,
    &boot_grub_ops,
    &boot_sim_ops,
};

void boot_vars_release(struct boot_vars *vars)
{
	for (size_t i = 0; i < BOOT_NVARS; i++) {
		free(vars->v[i]);
		vars->v[i] = NULL;
	}
}

bool agent_boot_valid_slot(const char *slot)
{
	return fl_streq(slot, "a") || fl_streq(slot, "b");
}

const char *agent_boot_other_slot(const char *slot)
{
	if (fl_streq(slot, "a"))
		return "b";
	if (fl_streq(slot, "b"))
		return "a";
	return NULL;
}

int agent_boot_open(const struct agent_boot_opts *opts,
		    struct agent_boot **ret_boot, struct fl_error *err)
{
	const struct boot_ops *ops = NULL;
	struct agent_boot *b;
	int rc;

	if (!opts || !opts->backend || !opts->path || !*opts->path)
		return fl_fail(err, FL_EINVAL,
			       "bootloader backend and path are required");
	for (size_t i = 0; i < FL_ARRAY_SIZE(backends); i++)
		if (fl_streq(backends[i]->name, opts->backend))
			ops = backends[i];
	if (!ops)
		return fl_fail(err, FL_EINVAL,
			       "unknown bootloader backend '%.40s' "
			       "(use uboot, grub or sim)",
			       opts->backend);
	b = fl_xcalloc(1, sizeof(*b));
	b->ops = ops;
	rc = ops->open(b, opts, err);
	if (rc) {
		free(b);
		return rc;
	}
	*ret_boot = b;
	return 0;
}

void agent_boot_close(struct agent_boot *boot)
{
	if (!boot)
		return;
	boot->ops->close(boot);
	free(boot);
}

const char *agent_boot_backend(const struct agent_boot *boot)
{
	return boot->ops->name;
}

/* Parse an optional bounded decimal; unset means 0. */
static int parse_num(const char *name, const char *s, unsigned max,
		     unsigned *ret, struct fl_error *err)
{
	uint64_t v;

	if (!s) {
		*ret = 0;
		return 0;
	}
	if (fl_parse_uint(s, max, &v, NULL))
		return fl_fail(err, FL_EPARSE,
			       "bootloader variable %s='%.20s' is not a number "
			       "in 0..%u",
			       name, s, max);
	*ret = (unsigned)v;
	return 0;
}

/* A loaded value; empty counts as unset (U-Boot cannot store ""). */
static const char *value(const struct boot_vars *vars, enum boot_var i)
{
	return vars->v[i] && *vars->v[i] ? vars->v[i] : NULL;
}

/*
 * Turn loaded strings into a validated state.  fleet_slot is required
 * (FL_ENOTFOUND without it); every other variable may be unset.
 */
static int parse_vars(const struct boot_vars *vars, struct agent_boot_state *st,
		      struct fl_error *err)
{
	const char *slot = value(vars, BOOT_VAR_SLOT);
	const char *try = value(vars, BOOT_VAR_TRY);
	const char *up = value(vars, BOOT_VAR_UPGRADE);
	int rc;

	memset(st, 0, sizeof(*st));
	for (size_t i = 0; i < BOOT_NVARS; i++)
		if (vars->v[i] && strlen(vars->v[i]) > BOOT_VALUE_MAX)
			return fl_fail(err, FL_EPARSE,
				       "bootloader variable %s is longer than "
				       "%d bytes",
				       boot_var_names[i], BOOT_VALUE_MAX);
	if (!slot)
		return fl_fail(err, FL_ENOTFOUND,
			       "bootloader variable %s is not set "
			       "(environment not initialised)",
			       AGENT_BOOT_VAR_SLOT);
	if (!agent_boot_valid_slot(slot))
		return fl_fail(err, FL_EPARSE,
			       "bootloader variable %s='%.20s' is not a or b",
			       AGENT_BOOT_VAR_SLOT, slot);
	fl_strlcpy(st->slot, slot, sizeof(st->slot));
	if (try) {
		if (!agent_boot_valid_slot(try))
			return fl_fail(err, FL_EPARSE,
				       "bootloader variable %s='%.20s' is not "
				       "a, b or empty",
				       AGENT_BOOT_VAR_TRY, try);
		fl_strlcpy(st->try_slot, try, sizeof(st->try_slot));
	}
	if (up && !fl_streq(up, "0") && !fl_streq(up, "1"))
		return fl_fail(err, FL_EPARSE,
			       "bootloader variable %s='%.20s' is not 0 or 1",
			       AGENT_BOOT_VAR_UPGRADE, up);
	st->upgrade_available = fl_streq(up, "1");
	rc = parse_num(AGENT_BOOT_VAR_COUNT, value(vars, BOOT_VAR_COUNT),
		       AGENT_BOOT_COUNT_MAX, &st->bootcount, err);
	if (rc)
		return rc;
	return parse_num(AGENT_BOOT_VAR_LIMIT, value(vars, BOOT_VAR_LIMIT),
			 AGENT_BOOT_LIMIT_MAX, &st->bootlimit, err);
}

/* Load and validate; on failure the message names the backend. */
static int load_state(struct agent_boot *b, struct agent_boot_state *st,
		      struct fl_error *err)
{
	struct boot_vars vars = {0};
	int rc;

	rc = b->ops->load(b, &vars, err);
	if (!rc)
		rc = parse_vars(&vars, st, err);
	boot_vars_release(&vars);
	return rc;
}

/* Store a complete state in one write. */
static int store_state(struct agent_boot *b, const struct agent_boot_state *st,
		       bool fresh, struct fl_error *err)
{
	struct boot_vars vars = {0};
	int rc;

	vars.v[BOOT_VAR_SLOT] = fl_xstrdup(st->slot);
	vars.v[BOOT_VAR_TRY] =
	    st->try_slot[0] ? fl_xstrdup(st->try_slot) : NULL;
	vars.v[BOOT_VAR_UPGRADE] =
	    fl_xstrdup(st->upgrade_available ? "1" : "0");
	vars.v[BOOT_VAR_COUNT] = fl_xasprintf("%u", st->bootcount);
	vars.v[BOOT_VAR_LIMIT] =
	    st->bootlimit ? fl_xasprintf("%u", st->bootlimit) : NULL;
	rc = b->ops->store(b, &vars, fresh, err);
	boot_vars_release(&vars);
	return rc;
}

int agent_boot_read(struct agent_boot *boot, struct agent_boot_state *ret_state,
		    struct fl_error *err)
{
	struct agent_boot_state st;
	int rc;

	rc = load_state(boot, &st, err);
	if (rc)
		return rc;
	*ret_state = st;
	return 0;
}

enum agent_boot_phase agent_boot_phase(const struct agent_boot_state *state)
{
	if (state->upgrade_available)
		return AGENT_BOOT_TRYING;
	if (state->try_slot[0] && !fl_streq(state->try_slot, state->slot))
		return AGENT_BOOT_FELL_BACK;
	return AGENT_BOOT_STABLE;
}

int agent_boot_init(struct agent_boot *boot, const char *slot,
		    unsigned bootlimit, struct fl_error *err)
{
	struct agent_boot_state st;
	struct boot_vars vars = {0};
	struct fl_error lerr = {0};
	int lrc, prc = 0;

	if (!agent_boot_valid_slot(slot))
		return fl_fail(err, FL_EINVAL, "slot must be a or b");
	if (bootlimit < 1 || bootlimit > AGENT_BOOT_LIMIT_MAX)
		return fl_fail(err, FL_EINVAL, "bootlimit must be in 1..%d",
			       AGENT_BOOT_LIMIT_MAX);
	lrc = boot->ops->load(boot, &vars, &lerr);
	if (!lrc)
		prc = parse_vars(&vars, &st, &lerr);
	boot_vars_release(&vars);
	if (lrc && lrc != FL_EPARSE && lrc != FL_ENOTFOUND)
		return fl_fail(err, lrc, "%s", lerr.msg);
	if (!lrc && prc && prc != FL_ENOTFOUND)
		return fl_fail(err, prc, "%s", lerr.msg);
	if (!lrc && !prc) {
		/* initialised already: only fill in a missing bootlimit */
		if (st.bootlimit)
			return 0;
		st.bootlimit = bootlimit;
		return store_state(boot, &st, false, err);
	}
	/* no fleet_slot yet (lrc == 0), or no valid environment (lrc) */
	memset(&st, 0, sizeof(st));
	fl_strlcpy(st.slot, slot, sizeof(st.slot));
	st.bootlimit = bootlimit;
	return store_state(boot, &st, lrc != 0, err);
}

/*
 * Put @target on trial: it boots next, counted, and the bootloader falls
 * back to the other slot after bootlimit failed boots.
 */
static int start_trial(struct agent_boot *b, struct agent_boot_state *st,
		       const char *target, struct fl_error *err)
{
	if (!st->bootlimit)
		return fl_fail(err, FL_EINVAL,
			       "%s is not set: a failing slot would never fall "
			       "back",
			       AGENT_BOOT_VAR_LIMIT);
	fl_strlcpy(st->slot, target, sizeof(st->slot));
	fl_strlcpy(st->try_slot, target, sizeof(st->try_slot));
	st->upgrade_available = true;
	st->bootcount = 0;
	return store_state(b, st, false, err);
}

int agent_boot_prepare_switch(struct agent_boot *boot, const char *target,
			      struct fl_error *err)
{
	struct agent_boot_state st;
	int rc;

	if (!agent_boot_valid_slot(target))
		return fl_fail(err, FL_EINVAL, "slot must be a or b");
	rc = load_state(boot, &st, err);
	if (rc)
		return rc;
	if (st.upgrade_available)
		return fl_fail(err, FL_ECONFLICT,
			       "slot %s is still on trial; mark it good or "
			       "roll back first",
			       st.slot);
	if (fl_streq(st.slot, target))
		return fl_fail(err, FL_EINVAL,
			       "slot %s is the booted slot, not the inactive "
			       "one",
			       target);
	return start_trial(boot, &st, target, err);
}

int agent_boot_mark_good(struct agent_boot *boot, struct fl_error *err)
{
	struct agent_boot_state st;
	int rc;

	rc = load_state(boot, &st, err);
	if (rc)
		return rc;
	if (!st.upgrade_available && !st.bootcount && !st.try_slot[0])
		return 0;
	st.upgrade_available = false;
	st.bootcount = 0;
	st.try_slot[0] = '\0';
	return store_state(boot, &st, false, err);
}

int agent_boot_rollback(struct agent_boot *boot, char ret_slot[2],
			struct fl_error *err)
{
	struct agent_boot_state st;
	int rc;

	rc = load_state(boot, &st, err);
	if (rc)
		return rc;
	rc = start_trial(boot, &st, agent_boot_other_slot(st.slot), err);
	if (rc)
		return rc;
	if (ret_slot)
		fl_strlcpy(ret_slot, st.slot, 2);
	return 0;
}

int agent_boot_sim_step(struct agent_boot *boot, struct agent_boot_step *ret,
			struct fl_error *err)
{
	struct agent_boot_state st;
	bool fell_back = false;
	int rc;

	rc = load_state(boot, &st, err);
	if (rc)
		return rc;
	if (st.upgrade_available) {
		if (st.bootcount < AGENT_BOOT_COUNT_MAX)
			st.bootcount++;
		if (st.bootlimit && st.bootcount > st.bootlimit) {
			fl_strlcpy(st.slot, agent_boot_other_slot(st.slot),
				   sizeof(st.slot));
			st.upgrade_available = false;
			st.bootcount = 0;
			fell_back = true;
		}
		rc = store_state(boot, &st, false, err);
		if (rc)
			return rc;
	}
	fl_strlcpy(ret->booted, st.slot, sizeof(ret->booted));
	ret->fell_back = fell_back;
	ret->bootcount = st.bootcount;
	return 0;
}
