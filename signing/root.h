/* SPDX-License-Identifier: MIT */
#ifndef FSIG_ROOT_H
#define FSIG_ROOT_H

/*
 * The trust root (root.json, fleet-bundle(5)), TUF-style: a versioned,
 * expiring list of keys with a threshold for the "root" role (who may
 * sign the next root) and for the "targets" role (who may sign bundles).
 *
 * The file is an envelope that keeps the signed bytes exactly:
 *
 *   {"payload_type": "application/vnd.fleet.root+json",
 *    "payload": BASE64(body),
 *    "signatures": [{"keyid": HEX, "sig": BASE64}, ...]}
 *
 * where each signature covers "fleet-root-v1" NUL || body, and body is
 * the JSON object described in fleet-bundle(5).  Verifiers decode the
 * payload, check signatures over those bytes, and only then parse them,
 * so no canonical JSON is needed.
 *
 * Chain rule: root version N+1 is accepted on top of version N only if
 * it is signed by a threshold of N's root keys and by a threshold of its
 * own root keys, and its version is exactly N+1.  The newest root of a
 * chain must not be expired.  fsig_root_update() walks a chain; the
 * caller persists the result (fsig_root_save(), atomic).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "err.h"
#include "keys.h"
#include "reason.h"
#include "sigs.h"

#define FSIG_ROOT_MAX (64 * 1024) /* bytes of a root.json envelope */
#define FSIG_ROOT_KEYS_MAX 32	  /* keys listed in one root */
#define FSIG_ROOT_CHAIN_MAX 1024  /* candidate roots in one update */
#define FSIG_ROOT_PAYLOAD_TYPE "application/vnd.fleet.root+json"

enum fsig_role {
	FSIG_ROLE_ROOT = 0,
	FSIG_ROLE_TARGETS = 1,
};

struct fsig_root;

/* The keys of one role and its threshold, for init and rotate.  Keys
 * may be public only.  1 <= threshold <= n_keys; no key twice. */
struct fsig_role_spec {
	struct fsig_key *const *keys;
	size_t n_keys;
	unsigned threshold;
};

/*
 * Create an unsigned version 1 root that expires at @expires (must be in
 * the future).  Sign it with fsig_root_sign() before use.  FL_EINVAL for
 * a bad threshold, duplicate key or past expiry; FL_ELIMIT for more than
 * FSIG_ROOT_KEYS_MAX distinct keys.  Caller frees *ret.
 */
int fsig_root_init(const struct fsig_role_spec *root_role,
		   const struct fsig_role_spec *targets_role, time_t expires,
		   struct fsig_root **ret, struct fl_error *err);

/*
 * Create the unsigned successor of @prev: version prev+1 with the given
 * roles and expiry.  It must then be signed by a threshold of @prev's
 * root keys AND of its own root keys (fsig_root_sign() with each).
 */
int fsig_root_rotate(const struct fsig_root *prev,
		     const struct fsig_role_spec *root_role,
		     const struct fsig_role_spec *targets_role, time_t expires,
		     struct fsig_root **ret, struct fl_error *err);

/*
 * Add (or replace) @key's signature over the body.  Any key may sign:
 * a rotation needs signatures by keys of the previous version that the
 * new one may no longer list.  FL_ELIMIT when FSIG_SIGS_MAX are present.
 */
int fsig_root_sign(struct fsig_root *root, const struct fsig_key *key,
		   struct fl_error *err);

/*
 * Parse an envelope of @len bytes (<= FSIG_ROOT_MAX): structure, key ids
 * (each must be the SHA-256 of its key), roles and thresholds.  No
 * signature is checked: see fsig_root_check_self / fsig_root_update.
 * FL_EPARSE or FL_ELIMIT on malformed input.  Caller frees *ret.
 */
int fsig_root_parse(const void *buf, size_t len, struct fsig_root **ret,
		    struct fl_error *err);

/* fsig_root_parse on the contents of @path. */
int fsig_root_load(const char *path, struct fsig_root **ret,
		   struct fl_error *err);

/*
 * Check that @root carries a threshold of valid signatures by its own
 * root keys.  FL_EVERIFY with *reason as for fsig_siglist_check.
 */
int fsig_root_check_self(const struct fsig_root *root, enum fsig_reason *reason,
			 struct fl_error *err);

/*
 * Load the root a verifier already trusts (shipped with the device or
 * persisted by an earlier update): fsig_root_load + fsig_root_check_self.
 * Expiry is not checked here; fsig_root_update does it for the newest.
 */
int fsig_root_load_trusted(const char *path, struct fsig_root **ret,
			   enum fsig_reason *reason, struct fl_error *err);

/*
 * Walk the chain from @trusted through @candidates (any order; versions
 * at or below the current one are skipped as already known, so handing
 * over every root file the server has is fine).  Each step needs version
 * exactly +1 (FSIG_R_ROOT_VERSION when the chain has a gap or a version
 * appears twice) and both thresholds (FSIG_R_BAD_SIGNATURE,
 * FSIG_R_UNKNOWN_KEY, FSIG_R_THRESHOLD).  The newest root must not be
 * expired at @now (0: time(NULL)): FSIG_R_ROOT_EXPIRED.  All or nothing:
 * on success *ret_newest is a new root (a copy of @trusted when nothing
 * newer was given) the caller frees; on failure nothing is returned and
 * the caller keeps trusting @trusted.
 */
int fsig_root_update(const struct fsig_root *trusted,
		     struct fsig_root *const *candidates, size_t n, time_t now,
		     struct fsig_root **ret_newest, enum fsig_reason *reason,
		     struct fl_error *err);

/* True when @root has expired at @now (0: time(NULL)). */
bool fsig_root_expired(const struct fsig_root *root, time_t now);

uint64_t fsig_root_version(const struct fsig_root *root);
time_t fsig_root_expires(const struct fsig_root *root);

/*
 * The keys of @role (borrowed; live as long as @root) and its
 * threshold.
 */
void fsig_root_role(const struct fsig_root *root, enum fsig_role role,
		    struct fsig_key *const **ret_keys, size_t *ret_n,
		    unsigned *ret_threshold);

/* The signatures currently on @root (borrowed). */
const struct fsig_siglist *fsig_root_signatures(const struct fsig_root *r);

/*
 * The envelope as JSON text (two-space indent, trailing newline),
 * borrowed from @root and valid until the next fsig_root_sign.
 */
const char *fsig_root_text(const struct fsig_root *root, size_t *ret_len);

/* Write the envelope to @path atomically (fl_write_atomic, 0644). */
int fsig_root_save(const struct fsig_root *root, const char *path,
		   struct fl_error *err);

/*
 * A JSON description for `fleetctl root show`: version, expires, keys
 * (id, algorithm, PEM), roles (key ids, threshold) and signatures
 * (key id, and "valid": whether it verifies over the body).  Caller
 * decrefs.
 */
json_t *fsig_root_to_json(const struct fsig_root *root);

/* Free a root (NULL is fine). */
void fsig_root_free(struct fsig_root *root);

#endif
