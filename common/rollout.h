/* SPDX-License-Identifier: MIT */
#ifndef FL_ROLLOUT_H
#define FL_ROLLOUT_H

/*
 * The rollout's words, shared by fleetd and fleetctl (DESIGN §7,
 * docs/protocol.md "Rollouts"): the states a rollout is in, the moves an
 * operator may ask for (pause, resume, abort, rollback) and the wave
 * stops ("2%", "5") with their parser.  fleetctl checks --waves with the
 * same parser fleetd uses, so a bad list is a usage error before any
 * request.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* ------------------------------------------------------------------ */
/* States and operator actions                                        */
/* ------------------------------------------------------------------ */

enum fl_rollout_state {
	FL_ROLLOUT_RUNNING = 1,
	FL_ROLLOUT_PAUSED,
	FL_ROLLOUT_ROLLING_BACK,
	FL_ROLLOUT_ROLLED_BACK,
	FL_ROLLOUT_COMPLETED,
	FL_ROLLOUT_ABORTED,
	FL_ROLLOUT_STATE_END
};

enum fl_rollout_action {
	FL_ROLLOUT_PAUSE = 1,
	FL_ROLLOUT_RESUME,
	FL_ROLLOUT_ABORT,
	FL_ROLLOUT_ROLLBACK,
	FL_ROLLOUT_ACTION_END
};

/* "running", "paused", "rolling-back", "rolled-back", "completed",
 * "aborted"; "unknown" otherwise. */
const char *fl_rollout_state_name(enum fl_rollout_state s);

/* The state named @name (NULL allowed); 0 when unknown. */
enum fl_rollout_state fl_rollout_state_parse(const char *name);

/* Nothing follows it: rolled-back, completed, aborted. */
bool fl_rollout_state_final(enum fl_rollout_state s);

/* "pause", "resume", "abort", "rollback"; "unknown" otherwise. */
const char *fl_rollout_action_name(enum fl_rollout_action a);
enum fl_rollout_action fl_rollout_action_parse(const char *name);

/*
 * The state an operator's @action moves a rollout in state @from to, or
 * 0 when the move is illegal (fleetd answers 409):
 *   pause:    running -> paused
 *   resume:   paused -> running
 *   abort:    running, paused -> aborted
 *   rollback: running, paused, completed -> rolling-back
 * Every other pair, and any unknown state or action, is illegal.
 */
enum fl_rollout_state fl_rollout_action_target(enum fl_rollout_state from,
					       enum fl_rollout_action action);

/* ------------------------------------------------------------------ */
/* Wave stops                                                         */
/* ------------------------------------------------------------------ */

#define FL_WAVES_MAX 32		   /* stops in one rollout */
#define FL_WAVE_COUNT_MAX 1000000  /* largest count stop */
#define FL_WAVE_STOP_TEXT 16	   /* "100%", "1000000", "12.25%" + NUL */

/*
 * One cumulative stop: a percentage of the target, in hundredths of a
 * percent (1..10000: "0.01%".."100%"), or a device count (1..
 * FL_WAVE_COUNT_MAX).  The wave ending at a stop takes the next devices
 * in order up to it.
 */
struct fl_wave_stop {
	bool percent;
	uint32_t value;
};

/*
 * Parse one stop: "N%" or "N.D%"/"N.DD%" (more than 0, at most 100) or
 * "N" (1..FL_WAVE_COUNT_MAX), no signs, spaces or exponents.  FL_EINVAL
 * with a message naming @s otherwise.
 */
int fl_wave_stop_parse(const char *s, struct fl_wave_stop *ret,
		       struct fl_error *err);

/* The canonical text of @w ("2%", "2.5%", "12.25%", "5") into @buf. */
void fl_wave_stop_format(const struct fl_wave_stop *w,
			 char buf[FL_WAVE_STOP_TEXT]);

/*
 * Check a list of stops (fl_wave_stops_parse does this too): 1..
 * FL_WAVES_MAX of them, each larger than the previous stop of its kind
 * (percent after percent, count after count), and a percent list must
 * end at 100% ("waves do not add up"); a list ending with a count is
 * checked against the target's size by fl_wave_stops_cover.  FL_EINVAL.
 */
int fl_wave_stops_check(const struct fl_wave_stop *v, size_t n,
			struct fl_error *err);

/*
 * Parse a comma-separated list ("2%,10%,50%,100%") into @ret (room for
 * FL_WAVES_MAX) and check it; *@ret_n stops.  FL_EINVAL.
 */
int fl_wave_stops_parse(const char *list, struct fl_wave_stop *ret,
			size_t *ret_n, struct fl_error *err);

/* How many of @total devices lie up to stop @w: a percentage rounds up,
 * a count is capped at @total. */
size_t fl_wave_stop_resolve(const struct fl_wave_stop *w, size_t total);

/*
 * Does the last stop of @v reach all @total devices (100% or a count of
 * at least @total)?  FL_EINVAL "waves do not add up" otherwise.
 */
int fl_wave_stops_cover(const struct fl_wave_stop *v, size_t n, size_t total,
			struct fl_error *err);

#endif
