/* SPDX-License-Identifier: MIT */
/*
 * The rollout's words (rollout.h): state and action names, the table of
 * the moves operators may ask for, and the wave stops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollout.h"
#include "util.h"

static const char *const state_names[FL_ROLLOUT_STATE_END] = {
	[FL_ROLLOUT_RUNNING] = "running",
	[FL_ROLLOUT_PAUSED] = "paused",
	[FL_ROLLOUT_ROLLING_BACK] = "rolling-back",
	[FL_ROLLOUT_ROLLED_BACK] = "rolled-back",
	[FL_ROLLOUT_COMPLETED] = "completed",
	[FL_ROLLOUT_ABORTED] = "aborted",
};

static const char *const action_names[FL_ROLLOUT_ACTION_END] = {
	[FL_ROLLOUT_PAUSE] = "pause",
	[FL_ROLLOUT_RESUME] = "resume",
	[FL_ROLLOUT_ABORT] = "abort",
	[FL_ROLLOUT_ROLLBACK] = "rollback",
};

/* The legal operator moves: action, from, to. */
static const struct {
	enum fl_rollout_action action;
	enum fl_rollout_state from, to;
} moves[] = {
	{FL_ROLLOUT_PAUSE, FL_ROLLOUT_RUNNING, FL_ROLLOUT_PAUSED},
	{FL_ROLLOUT_RESUME, FL_ROLLOUT_PAUSED, FL_ROLLOUT_RUNNING},
	{FL_ROLLOUT_ABORT, FL_ROLLOUT_RUNNING, FL_ROLLOUT_ABORTED},
	{FL_ROLLOUT_ABORT, FL_ROLLOUT_PAUSED, FL_ROLLOUT_ABORTED},
	{FL_ROLLOUT_ROLLBACK, FL_ROLLOUT_RUNNING, FL_ROLLOUT_ROLLING_BACK},
	{FL_ROLLOUT_ROLLBACK, FL_ROLLOUT_PAUSED, FL_ROLLOUT_ROLLING_BACK},
	{FL_ROLLOUT_ROLLBACK, FL_ROLLOUT_COMPLETED, FL_ROLLOUT_ROLLING_BACK},
};

const char *fl_rollout_state_name(enum fl_rollout_state s)
{
	if ((unsigned)s < FL_ARRAY_SIZE(state_names) && state_names[s])
		return state_names[s];
	return "unknown";
}

enum fl_rollout_state fl_rollout_state_parse(const char *name)
{
	for (size_t i = 1; name && i < FL_ARRAY_SIZE(state_names); i++)
		if (fl_streq(state_names[i], name))
			return (enum fl_rollout_state)i;
	return 0;
}

bool fl_rollout_state_final(enum fl_rollout_state s)
{
	return s == FL_ROLLOUT_ROLLED_BACK || s == FL_ROLLOUT_COMPLETED ||
	       s == FL_ROLLOUT_ABORTED;
}

const char *fl_rollout_action_name(enum fl_rollout_action a)
{
	if ((unsigned)a < FL_ARRAY_SIZE(action_names) && action_names[a])
		return action_names[a];
	return "unknown";
}

enum fl_rollout_action fl_rollout_action_parse(const char *name)
{
	for (size_t i = 1; name && i < FL_ARRAY_SIZE(action_names); i++)
		if (fl_streq(action_names[i], name))
			return (enum fl_rollout_action)i;
	return 0;
}

enum fl_rollout_state fl_rollout_action_target(enum fl_rollout_state from,
					       enum fl_rollout_action action)
{
	for (size_t i = 0; i < FL_ARRAY_SIZE(moves); i++)
		if (moves[i].action == action && moves[i].from == from)
			return moves[i].to;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Wave stops                                                         */
/* ------------------------------------------------------------------ */

static bool all_digits(const char *s, size_t n)
{
	return n > 0 && strspn(s, "0123456789") >= n;
}

/* "N", "N.D" or "N.DD" (n bytes) as hundredths; false when malformed or
 * over 10000. */
static bool hundredths(const char *s, size_t n, uint32_t *ret)
{
	const char *dot = memchr(s, '.', n);
	size_t whole = dot ? (size_t)(dot - s) : n;
	size_t frac = dot ? n - whole - 1 : 0;
	uint64_t v = 0;

	if (!all_digits(s, whole) || whole > 3 || (dot && (frac < 1 ||
	    frac > 2 || !all_digits(dot + 1, frac))))
		return false;
	for (size_t i = 0; i < whole; i++)
		v = v * 10 + (uint64_t)(s[i] - '0');
	v *= 100;
	if (frac)
		v += (uint64_t)(dot[1] - '0') * 10 +
		     (frac == 2 ? (uint64_t)(dot[2] - '0') : 0);
	if (v > 10000)
		return false;
	*ret = (uint32_t)v;
	return true;
}

int fl_wave_stop_parse(const char *s, struct fl_wave_stop *ret,
		       struct fl_error *err)
{
	size_t n = s ? strlen(s) : 0;
	uint64_t count;
	uint32_t h;

	if (n && n < FL_WAVE_STOP_TEXT && s[n - 1] == '%') {
		if (hundredths(s, n - 1, &h) && h > 0) {
			*ret = (struct fl_wave_stop){.percent = true, .value = h};
			return 0;
		}
	} else if (n && n < FL_WAVE_STOP_TEXT && all_digits(s, n) &&
		   !fl_parse_uint(s, FL_WAVE_COUNT_MAX, &count, NULL) &&
		   count > 0) {
		*ret = (struct fl_wave_stop){.percent = false,
					     .value = (uint32_t)count};
		return 0;
	}
	return fl_fail(err, FL_EINVAL,
		       "bad wave '%.*s': a percentage above 0 and at most "
		       "100%% (\"2%%\", \"2.5%%\") or a device count 1..%d",
		       FL_WAVE_STOP_TEXT, s ? s : "", FL_WAVE_COUNT_MAX);
}

void fl_wave_stop_format(const struct fl_wave_stop *w,
			 char buf[FL_WAVE_STOP_TEXT])
{
	uint32_t whole = w->value / 100, frac = w->value % 100;

	if (!w->percent)
		snprintf(buf, FL_WAVE_STOP_TEXT, "%u", w->value);
	else if (!frac)
		snprintf(buf, FL_WAVE_STOP_TEXT, "%u%%", whole);
	else if (frac % 10 == 0)
		snprintf(buf, FL_WAVE_STOP_TEXT, "%u.%u%%", whole, frac / 10);
	else
		snprintf(buf, FL_WAVE_STOP_TEXT, "%u.%02u%%", whole, frac);
}

int fl_wave_stops_check(const struct fl_wave_stop *v, size_t n,
			struct fl_error *err)
{
	uint32_t last[2] = {0, 0};
	char a[FL_WAVE_STOP_TEXT], b[FL_WAVE_STOP_TEXT];

	if (n == 0 || n > FL_WAVES_MAX)
		return fl_fail(err, FL_EINVAL, "1 to %d waves, not %zu",
			       FL_WAVES_MAX, n);
	for (size_t i = 0; i < n; i++) {
		uint32_t *prev = &last[v[i].percent];

		if (*prev >= v[i].value) {
			struct fl_wave_stop p = {v[i].percent, *prev};

			fl_wave_stop_format(&p, a);
			fl_wave_stop_format(&v[i], b);
			return fl_fail(err, FL_EINVAL,
				       "waves must grow: %s comes after %s", b,
				       a);
		}
		*prev = v[i].value;
	}
	if (v[n - 1].percent && v[n - 1].value != 10000) {
		fl_wave_stop_format(&v[n - 1], a);
		return fl_fail(err, FL_EINVAL,
			       "waves do not add up: the last one stops at %s "
			       "(end with 100%%)",
			       a);
	}
	return 0;
}

int fl_wave_stops_parse(const char *list, struct fl_wave_stop *ret,
			size_t *ret_n, struct fl_error *err)
{
	struct fl_wave_stop v[FL_WAVES_MAX];
	const char *p = list ? list : "";
	size_t n = 0;
	int rc = 0;

	for (;;) {
		size_t len = strcspn(p, ",");
		char item[FL_WAVE_STOP_TEXT];

		if (n == FL_WAVES_MAX)
			return fl_fail(err, FL_EINVAL, "more than %d waves",
				       FL_WAVES_MAX);
		if (len >= sizeof(item))
			return fl_fail(err, FL_EINVAL, "bad wave '%.*s...'",
				       (int)sizeof(item) - 1, p);
		memcpy(item, p, len);
		item[len] = '\0';
		rc = fl_wave_stop_parse(item, &v[n++], err);
		if (rc)
			return rc;
		p += len;
		if (!*p)
			break;
		p++;
	}
	rc = fl_wave_stops_check(v, n, err);
	if (rc)
		return rc;
	memcpy(ret, v, n * sizeof(v[0]));
	*ret_n = n;
	return 0;
}

size_t fl_wave_stop_resolve(const struct fl_wave_stop *w, size_t total)
{
	uint64_t n;

	if (!w->percent)
		return w->value < total ? w->value : total;
	n = ((uint64_t)w->value * total + 9999) / 10000;
	return n < total ? (size_t)n : total;
}

int fl_wave_stops_cover(const struct fl_wave_stop *v, size_t n, size_t total,
			struct fl_error *err)
{
	char a[FL_WAVE_STOP_TEXT];

	if (n == 0)
		return fl_fail(err, FL_EINVAL, "no waves");
	if (fl_wave_stop_resolve(&v[n - 1], total) >= total &&
	    (v[n - 1].percent ? v[n - 1].value == 10000
			      : v[n - 1].value >= total))
		return 0;
	fl_wave_stop_format(&v[n - 1], a);
	return fl_fail(err, FL_EINVAL,
		       "waves do not add up: the last one stops at %s of %zu "
		       "devices (end with 100%% or at least %zu)",
		       a, total, total);
}
