/* SPDX-License-Identifier: MIT */
/* fleet-sim's knobs: deterministic picks, jitter, parsing (sim_knobs.h). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_knobs.h"
#include "util.h"
#include "validate.h"

#define FNV_PRIME UINT64_C(0x100000001b3)
#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= FNV_PRIME;
	}
	return h;
}

/* splitmix64's finaliser: every input bit moves every output bit. */
static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

uint64_t sim_hash(uint64_t seed, const char *knob, const char *id)
{
	uint64_t h = FNV_OFFSET ^ mix(seed);

	h = fnv(h, knob);
	h = fnv(h, "/");
	return mix(fnv(h, id));
}

bool sim_pick(uint64_t seed, const char *knob, const char *id, unsigned pct)
{
	if (pct == 0)
		return false;
	if (pct >= 100)
		return true;
	return sim_hash(seed, knob, id) % 10000 < (uint64_t)pct * 100;
}

int64_t sim_spread(uint64_t hash, int64_t base_ms)
{
	if (base_ms <= 1)
		return base_ms;
	return base_ms / 2 + (int64_t)(hash % (uint64_t)base_ms);
}

int sim_parse_duration_ms(const char *s, int64_t *ret, struct fl_error *err)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	size_t len = s ? strlen(s) : 0, n;
	int64_t mult = 1000;
	uint64_t v;
	char num[24];

	for (size_t i = 0; i < FL_ARRAY_SIZE(units); i++) {
		n = strlen(units[i].unit);
		if (len > n && strcmp(s + len - n, units[i].unit) == 0 &&
		    strchr("0123456789", s[len - n - 1])) {
			mult = units[i].ms;
			len -= n;
			break;
		}
	}
	if (len == 0 || len >= sizeof(num))
		goto bad;
	memcpy(num, s, len);
	num[len] = '\0';
	if (fl_parse_uint(num, (uint64_t)SIM_DURATION_MAX_MS, &v, NULL) ||
	    (int64_t)v > SIM_DURATION_MAX_MS / mult)
		goto bad;
	*ret = (int64_t)v * mult;
	return 0;
bad:
	return fl_fail(err, FL_EINVAL,
		       "bad duration '%.40s' (use e.g. 500ms, 2s, 1m; at most "
		       "a week)",
		       s ? s : "");
}

int sim_parse_pct(const char *s, unsigned *ret, struct fl_error *err)
{
	uint64_t v;

	if (!s || fl_parse_uint(s, 100, &v, NULL))
		return fl_fail(err, FL_EINVAL,
			       "bad percentage '%.40s' (0 to 100)", s ? s : "");
	*ret = (unsigned)v;
	return 0;
}

int sim_parse_rate(const char *s, double *ret, struct fl_error *err)
{
	char *end = NULL;
	double v = s && *s && !isspace((unsigned char)*s) ? strtod(s, &end)
							  : -1;

	if (!end || *end || !isfinite(v) || v < 0 || v > SIM_TELEMETRY_RATE_MAX)
		return fl_fail(err, FL_EINVAL,
			       "bad rate '%.40s' (points a second, 0 to %g)",
			       s ? s : "", SIM_TELEMETRY_RATE_MAX);
	*ret = v;
	return 0;
}

int sim_device_id(const char *prefix, unsigned index, char *buf, size_t size,
		  struct fl_error *err)
{
	int n = snprintf(buf, size, "%s-%04u", prefix, index);

	if (n < 0 || (size_t)n >= size || !fl_valid_id(buf))
		return fl_fail(err, FL_EINVAL,
			       "'%.64s-%04u' is not a valid device id (prefix: "
			       "lower-case letters, digits, '.', '_', '-')",
			       prefix, index);
	return 0;
}
