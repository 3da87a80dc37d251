/* SPDX-License-Identifier: MIT */
#ifndef SRV_ROLLOUT_SPEC_H
#define SRV_ROLLOUT_SPEC_H

/*
 * A rollout's spec (DESIGN §7, docs/protocol.md "Rollouts"): the JSON
 * body of POST /api/v1/rollouts and /api/v1/rollouts/plan, checked with
 * caps and filled with the documented defaults.  Pure: no store, no I/O.
 *
 *   {"id": NAME?, "bundle": ID | NAME@VERSION,
 *    "target": {"group"?, "labels"?: {K: V}, "hardware"?, "version"?,
 *               "devices"?: [ID...]},
 *    "waves"?: ["2%", "10%", 5, "100%"], "canaries"?: [ID...],
 *    "soak_s"?, "failure"?: {"percent"?, "min_sample"?},
 *    "health_window_s"?, "device_timeout_s"?, "rate_per_min"?,
 *    "concurrency"?, "auto_rollback"?}
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "rollout.h"
#include "validate.h"

/* Caps on what a spec may hold. */
#define SRV_ROLLOUT_MAX_DEVICES 10000 /* target.devices */
#define SRV_ROLLOUT_MAX_CANARIES 100
#define SRV_ROLLOUT_MAX_LABELS 16
#define SRV_ROLLOUT_MAX_SOAK (30 * 86400)
#define SRV_ROLLOUT_MAX_WINDOW (7 * 86400)
#define SRV_ROLLOUT_MAX_TIMEOUT (365 * 86400)
#define SRV_ROLLOUT_MAX_RATE 1000000

/* Defaults of the fields a spec leaves out. */
#define SRV_ROLLOUT_DEFAULT_WAVES "10%,50%,100%"
#define SRV_ROLLOUT_DEFAULT_SOAK 300
#define SRV_ROLLOUT_DEFAULT_WINDOW 60
#define SRV_ROLLOUT_DEFAULT_TIMEOUT 3600
#define SRV_ROLLOUT_DEFAULT_PERCENT 10
#define SRV_ROLLOUT_DEFAULT_MIN_SAMPLE 5

/* The target: every member optional; what is given must all match. */
struct srv_rollout_target {
	const char *group;    /* device group */
	const char *hardware; /* the device label "hardware" */
	const char *version;  /* the firmware the device reports now */
	size_t n_labels;
	const char *label_keys[SRV_ROLLOUT_MAX_LABELS];
	const char *label_values[SRV_ROLLOUT_MAX_LABELS];
	size_t n_devices;
	const char **devices; /* explicit device ids, or NULL */
};

/*
 * A parsed spec.  Strings are borrowed from the JSON it was parsed from
 * (keep that alive); the arrays are owned (srv_rollout_spec_release).
 */
struct srv_rollout_spec {
	const char *id;	    /* NULL: fleetd picks one ("r-" + hex) */
	const char *bundle; /* id, id prefix or NAME@VERSION */
	struct srv_rollout_target target;
	size_t n_waves;
	struct fl_wave_stop waves[FL_WAVES_MAX];
	size_t n_canaries;
	const char **canaries;
	int64_t soak_s, health_window_s, device_timeout_s;
	int64_t fail_percent; /* 0..100 */
	int64_t min_sample;   /* >= 1 */
	int64_t rate_per_min; /* 0: unlimited */
	int64_t concurrency;  /* 0: unlimited */
	bool auto_rollback;
};

/*
 * Parse and check @body (an object).  Fails with FL_EPARSE for a wrong
 * type or an out-of-range number, FL_EINVAL for a bad id, an unknown
 * key, waves that do not grow or add up, a device or canary named twice,
 * FL_ELIMIT over a cap; the message names the field.  Writes *@ret only
 * on success.
 */
int srv_rollout_spec_parse(const json_t *body, struct srv_rollout_spec *ret,
			   struct fl_error *err);

/* Free the arrays of @s (not the borrowed strings); NULL is fine. */
void srv_rollout_spec_release(struct srv_rollout_spec *s);

/*
 * The spec as fleetd stores and shows it, every default filled in:
 * {"id", "bundle" (@bundle_id: the resolved bundle), "target", "waves"
 * (canonical text), "canaries", "soak_s", "failure", "health_window_s",
 * "device_timeout_s", "rate_per_min", "concurrency", "auto_rollback"}.
 * @id is the rollout's id (the spec's or a picked one).
 */
json_t *srv_rollout_spec_json(const struct srv_rollout_spec *s,
			      const char *id, const char *bundle_id);

/* A new rollout id: "r-" and 16 hex digits, into @buf. */
void srv_rollout_new_id(char buf[FL_ID_MAX + 1]);

#endif
