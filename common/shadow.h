/* SPDX-License-Identifier: MIT */
#ifndef FL_SHADOW_H
#define FL_SHADOW_H

/*
 * The device shadow's rules (docs/shadow.md), shared by fleetd, the
 * agent and fleetctl: which keys a document may have, how a write is
 * merged into the desired document, and the delta.
 *
 * Merge rule: a write is a patch of keys, and the write has a version.
 * Per key, the last writer wins by version: a key is changed only when
 * the write's version is not older than the version that last wrote
 * that key (kept in @meta, key -> version, also for deleted keys so an
 * older write cannot bring one back).  A null value deletes the key.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

/* Bytes of a desired message (below), by default and at most: the MQTT
 * payload cap of fleetd and the agent. */
#define FL_SHADOW_MAX_DEFAULT (64 * 1024)
#define FL_SHADOW_KEYS_MAX 256 /* keys of a document */
#define FL_SHADOW_KEY_MAX 64   /* bytes of a key */

/* A key: 1..FL_SHADOW_KEY_MAX bytes of [A-Za-z0-9_.-]. */
bool fl_shadow_key_valid(const char *key);

/*
 * Check a patch (or a whole document when @patch_nulls is false: no
 * nulls then): an object of at most FL_SHADOW_KEYS_MAX valid keys.
 * FL_EINVAL naming the first bad key.
 */
int fl_shadow_check(const json_t *doc, bool patch_nulls, struct fl_error *err);

/*
 * Merge @patch (checked) written at @version into @state and @meta
 * (objects, changed in place) by the rule above.  Returns how many keys
 * changed.
 */
size_t fl_shadow_merge(json_t *state, json_t *meta, const json_t *patch,
		       int64_t version);

/*
 * A device's report: {"version": N >= 0, "state": {...} (checked, no
 * nulls), "refused"?: {KEY: REASON (text)}}.  FL_EINVAL, FL_EPARSE.
 */
int fl_shadow_check_report(const json_t *report, struct fl_error *err);

/* Serialised size of @doc (compact JSON) in bytes. */
size_t fl_shadow_size(const json_t *doc);

/*
 * The desired message fleetd publishes, retained, on PREFIX/ID/
 * shadow/desired and the agent keeps: {"version": N, "updated":
 * RFC 3339, "state": {...}} (a new reference; @state borrowed).  Its
 * size is what the cap bounds.
 */
json_t *fl_shadow_desired_msg(const json_t *state, int64_t version,
			      int64_t updated);

/* The desired keys whose value differs from @reported's (or that it
 * lacks), as a new object. */
json_t *fl_shadow_delta(const json_t *desired, const json_t *reported);

#endif
