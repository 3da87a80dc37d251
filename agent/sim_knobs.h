/* SPDX-License-Identifier: MIT */
#ifndef AGENT_SIM_KNOBS_H
#define AGENT_SIM_KNOBS_H

/*
 * fleet-sim's failure knobs and their arithmetic (sim.h).  Which device
 * a knob hits, and when, is a pure function of the seed, the knob and
 * the device id: the same command line hits the same devices on every
 * run and every machine, so a test can name them in advance, and a
 * restart of fleet-sim does not reshuffle them.
 */
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

#define SIM_DURATION_MAX_MS (7LL * 86400 * 1000) /* a week */

struct sim_knobs {
	uint64_t seed;
	unsigned fail_pct;	  /* health check fails (a sensor fault) */
	unsigned crash_pct;	  /* power cycles while on a trial boot */
	int64_t install_delay_ms; /* installed -> switch, per update */
	int64_t flap_every_ms;	  /* mean time between network flaps; 0 */
	double telemetry_rate;	  /* points a second per device; 0 */
};

#define SIM_TELEMETRY_RATE_MAX 1000.0 /* points a second per device */

/*
 * 64 bits of hash of (@seed, @knob, @id): FNV-1a over the knob name, a
 * separator and the id, started from the seed, then the splitmix64
 * finaliser so that ids differing in one digit land far apart.
 */
uint64_t sim_hash(uint64_t seed, const char *knob, const char *id);

/* Is device @id one of the @pct percent (0..100) that @knob hits?
 * 0 never, 100 always; in between, the ids whose hash falls in the
 * lowest @pct of the range. */
bool sim_pick(uint64_t seed, const char *knob, const char *id, unsigned pct);

/* @base_ms spread over [base/2, base*3/2) by @hash (per-device jitter,
 * so that devices do not act in lock step). */
int64_t sim_spread(uint64_t hash, int64_t base_ms);

/*
 * Parse a duration for a knob: a number with a unit ms, s, m or h
 * ("250ms", "2s", "1m"; a bare number is seconds), at most
 * SIM_DURATION_MAX_MS.  Returns 0 or FL_EINVAL.
 */
int sim_parse_duration_ms(const char *s, int64_t *ret, struct fl_error *err);

/* Parse a percentage 0..100 (an integer).  0 or FL_EINVAL. */
int sim_parse_pct(const char *s, unsigned *ret, struct fl_error *err);

/* Parse a rate of points a second, 0..SIM_TELEMETRY_RATE_MAX ("1",
 * "0.5").  0 or FL_EINVAL. */
int sim_parse_rate(const char *s, double *ret, struct fl_error *err);

/* The id of device @index (1-based) for @prefix: PREFIX-NNNN, at least
 * four digits ("sim-0001", ..., "sim-10000") into @buf.  FL_EINVAL when
 * the result is not a valid device id (a bad prefix, or too long). */
int sim_device_id(const char *prefix, unsigned index, char *buf, size_t size,
		  struct fl_error *err);

#endif
